// conv_wino_s2.h -- a 3x3 convolution with stride 2 and padding 1 by polyphase Winograd on
// oneDNN's nChw8c layout with AVX2/FMA (conv_wino_s2.c); conv2d.c is its reference.
#ifndef NCELAB_NN_CONV_WINO_S2_H
#define NCELAB_NN_CONV_WINO_S2_H

#include <stddef.h>

/* A layer's plan; like conv_wino.h's WinoConv it owns no memory (ws2_set_work). */
typedef struct {
    int n, c, k, h, w;        /* input (n, c, h, w), output (n, k, oh, ow), both nChw8c */
    int oh, ow;               /* (h + 1) / 2, (w + 1) / 2 */
    int tiles_y, tiles_x;     /* 4x4 output tiles per image */
    long tiles;               /* n tiles_y tiles_x */
    int tb;                   /* tiles per block, shared by the threads (NCELAB_WS2_TB sets it) */
    int nthr;
    float *scratch;           /* V (81, tb, c + 16) then M (81, tb, k + 16) of one block */
    float *u;                 /* the transformed filters: 36 planes (k / 16, c, 16), ws2_plane apart */
} Ws2Conv;

/* ws2_supported: whether this CPU runs the kernels and (c, k) suit them (multiples of 16);
   NCELAB_WINO_S2=0 turns them off. */
int ws2_supported(int c, int k);

/* ws2_init: plans the layer for a batch of n; 0 on success, -1 when unsupported. */
int ws2_init(Ws2Conv *wc, int n, int c, int k, int h, int w);

/* The floats of scratch and of the weight buffer the layer needs, and the distance between two
   planes of the transformed filters. */
size_t ws2_scratch_floats(const Ws2Conv *wc);
size_t ws2_wbuf_floats(const Ws2Conv *wc);
size_t ws2_plane(const Ws2Conv *wc);

void ws2_set_work(Ws2Conv *wc, float *scratch, float *wbuf);

/* ws2_weights: transforms w (k, c, 3, 3) into wc->u for the forward (AVX2, 8 filters at a time);
   ws2_weights_ref: the same with scalar code (the same operations, so the same bits). */
void ws2_weights(Ws2Conv *wc, const float *w);
void ws2_weights_ref(Ws2Conv *wc, const float *w);

/* ws2_forward: y (n, k, oh, ow) = x (n, c, h, w) conv w, stride 2, padding 1; wc->u from
   ws2_weights. */
void ws2_forward(Ws2Conv *wc, const float *x, float *y);

#endif
