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
    int ttb;                  /* the forward's and backward data's tiles per block of one thread, each
                                 thread taking blocks as it frees up, where c k <= 128 x 256 (its V and M
                                 then about fit L2); 0: those passes in shared blocks of tb
                                 (NCELAB_WS2_TTB sets it) */
    int tbw;                  /* the weight gradient's tiles per block of one thread, where c k <=
                                 128 x 256: each thread sums its static share of the blocks into its
                                 own D; 0: shared blocks of tb and one D (NCELAB_WS2_TBW sets it) */
    int nthr;
    int dsums;                /* the weight gradient's sums D: nthr with tbw, else 1 */
    float *scratch;           /* V (81, tb, c + 16) then M (81, tb, k + 16) of one block; or each
                                 thread's V and M (or Y) of ttb (tbw) tiles */
    float *u;                 /* the transformed filters of the pass about to run (ws2_weights):
                                 36 planes, ws2_plane floats apart, forward (k / 16, c, 16),
                                 backward data (c / 16, k, 16) */
    float *dw_acc;            /* the weight gradient's sums, dsums sets of 36 planes (c, k), ws2_plane
                                 floats apart; the same memory as u */
} Ws2Conv;

/* The pass a set of transformed weights is for. */
typedef enum { WS2_FWD = 0, WS2_BWD_DATA = 1 } Ws2Pass;

/* ws2_supported: whether this CPU runs the kernels and (c, k) suit them (multiples of 16);
   NCELAB_WINO_S2=0 turns them off, as does NCELAB_WINOGRAD=0 (all Winograd kernels). */
int ws2_supported(int c, int k);

/* ws2_init: plans the layer for a batch of n; 0 on success, -1 when unsupported. */
int ws2_init(Ws2Conv *wc, int n, int c, int k, int h, int w);

/* The floats of scratch and of the weight buffer the layer needs, and the distance between two
   planes of the transformed filters. */
size_t ws2_scratch_floats(const Ws2Conv *wc);
size_t ws2_wbuf_floats(const Ws2Conv *wc);
size_t ws2_plane(const Ws2Conv *wc);

void ws2_set_work(Ws2Conv *wc, float *scratch, float *wbuf);

/* ws2_weights: transforms w (k, c, 3, 3) into wc->u for one pass (AVX2, 8 filters at a time),
   right before it runs; ws2_weights_ref: the same with scalar code (the same operations, so the
   same bits). */
void ws2_weights(Ws2Conv *wc, const float *w, Ws2Pass pass);
void ws2_weights_ref(Ws2Conv *wc, const float *w, Ws2Pass pass);

/* ws2_forward: y (n, k, oh, ow) = x (n, c, h, w) conv w, stride 2, padding 1; wc->u from
   WS2_FWD. */
void ws2_forward(Ws2Conv *wc, const float *x, float *y);

/* ws2_backward_data: dx (n, c, h, w) = the gradient from dy (n, k, oh, ow) (acc 0), or that
   gradient added to dx (acc 1: dx[i] + the float acc 0 would have written); wc->u from
   WS2_BWD_DATA. */
void ws2_backward_data(Ws2Conv *wc, const float *dy, float *dx, int acc);

/* ws2_backward_weights: dw (k, c, 3, 3), plain, += the sum over the batch; overwrites wc->u.
   Its bits depend on the block size and the batch; with tbw also on the thread count (each
   thread's sum over its share of the tiles, the sums added in double in thread order). */
void ws2_backward_weights(Ws2Conv *wc, const float *x, const float *dy, float *dw);

/* The last step of ws2_backward_weights, dw += F^T D F from the sums in wc->dw_acc, with scalar
   code: the reference of the vectorised step (the same operations, so the same bits). */
void ws2_weights_from_sums_ref(const Ws2Conv *wc, float *dw);

#endif
