// conv_gemm.h -- a convolution as patch matrix x filter matrix, with one-thread OpenBLAS GEMMs on
// whole images (one image, or a block of them, per thread at a time), on oneDNN's nChw8c or
// nChw16c layout: forward, backward data and backward weights. ncelab runs ResNet-18's stride-2 3x3
// convolutions here, where oneDNN's direct kernels reach about half the FMA peak on AVX2. AVX2/FMA.
// conv2d.c is its reference.
#ifndef NCELAB_NN_CONV_GEMM_H
#define NCELAB_NN_CONV_GEMM_H

#include <stddef.h>

/* A layer's plan. It owns no memory: the caller hands it work buffers (cgemm_set_work), which
   layers that never run at the same time share (the executor shares them with the Winograd
   layers'). */
typedef struct {
    int n, c, k, h, w;        /* input (n, c, h, w) and output (n, k, oh, ow), both nChw<blk>c */
    int ks, stride, pad;      /* square ks x ks filters */
    int oh, ow, blk;
    int kc;                   /* ks ks c: a patch, ordered (ky, kx, c) */
    int imgs;                 /* images per block of the weight gradient */
    int nthr;
    size_t per_thread;        /* floats of scratch per thread: patches (rows, kc), outputs (rows, k) */
    float *scratch;
    float *wt;                /* the filters packed for one pass (cgemm_weights) */
    float *dwt;               /* per thread (kc, k): weight-gradient sums */
} GemmConv;

/* cgemm_supported: whether this CPU runs the kernels (AVX2, FMA), blk is 8 or 16 and c and k are
   multiples of 16; NCELAB_CONV_GEMM=0 turns the path off. */
int cgemm_supported(int c, int k, int blk);

/* cgemm_init: plans the layer for a batch of n; 0 on success, -1 when unsupported. Allocates
   nothing. NCELAB_CGEMM_ROWS sets the output pixels a block aims at (default 512). */
int cgemm_init(GemmConv *g, int n, int c, int k, int h, int w, int ks, int stride, int pad, int blk);

/* The floats of scratch (every thread's) and of the weight buffer (the filters and every thread's
   weight-gradient sums) the layer needs; cgemm_set_work hands it both. */
size_t cgemm_scratch_floats(const GemmConv *g);
size_t cgemm_wbuf_floats(const GemmConv *g);
void cgemm_set_work(GemmConv *g, float *scratch, float *wbuf);

/* The pass a packing of the filters is for. */
typedef enum { CGEMM_FWD = 0, CGEMM_BWD_DATA = 1 } CgemmPass;

/* cgemm_weights: w (k, c, ks, ks) packed into g->wt for one pass: forward (k / 16, kc, 16),
   backward data (kc / 16, k, 16); call right before cgemm_forward or cgemm_backward_data (other
   layers sharing the buffer overwrite it). */
void cgemm_weights(GemmConv *g, const float *w, CgemmPass pass);

/* cgemm_forward: y (n, k, oh, ow) = x (n, c, h, w) conv w. */
void cgemm_forward(GemmConv *g, const float *x, float *y);

/* cgemm_backward_weights: dw (k, c, ks, ks) += the weight gradient from x (the forward's input)
   and dy (plain layout; each element gets the float of the threads' sums added to it).
   cgemm_backward_data: dx (n, c, h, w) = the input gradient from dy (acc 0), or dx + it (acc 1:
   each pixel's patch contributions are added onto dx's value instead of onto zero); g->wt from
   cgemm_weights(CGEMM_BWD_DATA). */
void cgemm_backward_weights(GemmConv *g, const float *x, const float *dy, float *dw);
void cgemm_backward_data(GemmConv *g, const float *dy, float *dx, int acc);

#endif
