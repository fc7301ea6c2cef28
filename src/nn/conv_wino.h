// conv_wino.h -- Winograd F(4x4, 3x3) convolution (3x3, stride 1, padding 1) on oneDNN's nChw8c
// layout with AVX2/FMA: forward, backward data and backward weights. conv2d.c is its reference.
#ifndef NCELAB_NN_CONV_WINO_H
#define NCELAB_NN_CONV_WINO_H

#include <stddef.h>

typedef struct {
    int n, c, k, h, w;        /* input (n, c, h, w) and output (n, k, h, w), both nChw8c */
    int tiles_y, tiles_x;     /* 4x4 output tiles per image */
    long tiles;               /* n tiles_y tiles_x */
    int tb;                   /* tiles per block, the unit of work of one thread */
    int nthr;
    int global;               /* 1: all tiles at once (tb = tiles; large c k), 0: blocks of tb */
    float *u_fwd;             /* (36, k/16, c, 16) transformed weights of the forward pass */
    float *u_bwd;             /* (36, c/16, k, 16) transformed rotated weights, backward data */
    float *scratch;           /* per thread (global: shared): V and M, each (36, tb, max(c, k)) */
    float *dw_acc;            /* per thread (global: one): (36, c, k) weight-gradient sums */
    size_t per_thread;        /* floats of scratch per thread */
} WinoConv;

/* wino_supported: whether this CPU runs the kernels and (c, k) suit them (multiples of 16);
   NCELAB_WINOGRAD=0 turns the kernels off. */
int wino_supported(int c, int k);

/* wino_init: buffers for a batch of n; 0 on success, -1 when unsupported (or when the global
   mode would need more than 512 MiB). */
int wino_init(WinoConv *wc, int n, int c, int k, int h, int w);
void wino_free(WinoConv *wc);

/* wino_set_weights: transforms w (k, c, 3, 3) for both passes; call after every update. */
void wino_set_weights(WinoConv *wc, const float *w);

/* wino_forward: y (n, k, h, w) = x (n, c, h, w) conv w, both nChw8c. */
void wino_forward(WinoConv *wc, const float *x, float *y);

/* wino_backward_data: dx (n, c, h, w) = the gradient from dy (n, k, h, w) (overwritten). */
void wino_backward_data(WinoConv *wc, const float *dy, float *dx);

/* wino_backward_weights: dw (k, c, 3, 3), plain, overwritten with the sum over the batch. */
void wino_backward_weights(WinoConv *wc, const float *x, const float *dy, float *dw);

#endif
