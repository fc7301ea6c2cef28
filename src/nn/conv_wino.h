// conv_wino.h -- Winograd F(4x4, 3x3) convolution (3x3, stride 1, padding 1) on oneDNN's nChw8c
// layout with AVX2/FMA: forward, backward data and backward weights. conv2d.c is its reference.
#ifndef NCELAB_NN_CONV_WINO_H
#define NCELAB_NN_CONV_WINO_H

#include <stddef.h>

/* A layer's plan: shapes and the sizes of the memory it works in. It owns no memory: the caller
   hands it work buffers (wino_set_work), which layers that never run at the same time share. */
typedef struct {
    int n, c, k, h, w;        /* input (n, c, h, w) and output (n, k, h, w), both nChw8c */
    int tiles_y, tiles_x;     /* 4x4 output tiles per image */
    long tiles;               /* n tiles_y tiles_x */
    int tb;                   /* tiles per block, the unit of work of one thread */
    int wtb;                  /* tiles per block of the weight gradient shared by the threads (global
                                 mode: all tiles; 0: each thread sums its own tb-tile blocks;
                                 NCELAB_WINO_WTB=N sets it in the tiles mode where it is not 0) */
    int tbw;                  /* tiles mode without wtb: tiles a thread transforms at a time for its
                                 weight-gradient sums (NCELAB_WINO_TBW=N sets it) */
    int wparts;               /* tiles mode without wtb: the weight gradient's parts, fixed ranges of
                                 the blocks of tb tiles, each summed into its own D, taken by the
                                 threads as they free up (NCELAB_WINO_WPARTS=N sets it) */
    int nthr;
    int stream_fwd;           /* 1: the forward's output is written past the caches (non-temporal
                                 stores: it is above 4 MiB, NCELAB_WINO_STREAM_MB), when 32-byte aligned */
    int stream_bwd;           /* 1: so is the backward data pass's input gradient (when overwritten) */
    int stream_u;             /* 1: the transformed filters are written by non-temporal stores (they
                                 are above 24 MiB, NCELAB_WINO_STREAM_U_MB), when 64-byte aligned */
    int global;               /* 1: all tiles at once (tb = tiles; large c k), 0: blocks of tb */
    size_t per_thread;        /* floats of scratch per thread (global: the one set) */
    float *scratch;           /* per thread (global: shared): V and M, each (36, tb, max(c, k)) */
    float *u;                 /* the transformed weights of the pass about to run (wino_weights):
                                 forward (36, k/16, c, 16), backward data (36, c/16, k, 16),
                                 the 36 planes wino_plane floats apart */
    float *dw_acc;            /* per part (shared blocks: one): (36, c, k) weight-gradient sums; the same
                                 memory as u, which the weight gradient does not read */
} WinoConv;

/* The pass a set of transformed weights is for. */
typedef enum { WINO_FWD = 0, WINO_BWD_DATA = 1 } WinoPass;

/* wino_supported: whether this CPU runs the kernels and (c, k) suit them (multiples of 16);
   NCELAB_WINOGRAD=0 turns the kernels off. */
int wino_supported(int c, int k);

/* wino_init: plans the layer for a batch of n; 0 on success, -1 when unsupported (or when the
   global mode would need more than 512 MiB of scratch). Allocates nothing. */
int wino_init(WinoConv *wc, int n, int c, int k, int h, int w);

/* wino_scratch_floats: the floats of scratch (V and M of every thread) the layer needs;
   wino_wbuf_floats: the floats of its weight buffer, the larger of one pass's transformed
   weights (wino_u_floats) and its weight-gradient sums (one per part in tiles mode). */
size_t wino_scratch_floats(const WinoConv *wc);
size_t wino_wbuf_floats(const WinoConv *wc);

/* wino_plane: the floats from one transform point's plane of U (or of the sums) to the next,
   c k and a little padding; wino_u_floats: the floats of U, 36 such planes. */
size_t wino_plane(const WinoConv *wc);
size_t wino_u_floats(const WinoConv *wc);

/* wino_set_work: the layer works in scratch (wino_scratch_floats) and wbuf (wino_wbuf_floats),
   which the caller owns and may hand to other layers that run at other times. */
void wino_set_work(WinoConv *wc, float *scratch, float *wbuf);

/* wino_weights: transforms w (k, c, 3, 3) into wc->u for one pass (AVX2, 8 filters at a time);
   call right before wino_forward (WINO_FWD) or wino_backward_data (WINO_BWD_DATA): the weight
   gradient and the other layers sharing the buffer overwrite it.
   wino_weights_ref: the same with scalar code, its reference (the same operations, so the same
   bits). */
void wino_weights(WinoConv *wc, const float *w, WinoPass pass);
void wino_weights_ref(WinoConv *wc, const float *w, WinoPass pass);

/* wino_forward: y (n, k, h, w) = x (n, c, h, w) conv w, both nChw8c; wc->u from WINO_FWD. */
void wino_forward(WinoConv *wc, const float *x, float *y);

/* wino_forward_sums: wino_forward (the same y), and the per-channel sums over the batch of y - shift
   (s1) and (y - shift)^2 (s2), k doubles each, for a batch norm that reads y: each tile's sums in
   float, each part's in double, the parts' added in order. The parts are the blocks of tb tiles
   in the tiles mode (the bits depend on tb alone), the threads in the global mode (on the thread
   count). shift (k floats): a guess of the mean, against cancellation in s2 - s1^2 / m.
   part: wino_sums_doubles(wc) doubles of scratch. */
size_t wino_sums_doubles(const WinoConv *wc);
void wino_forward_sums(WinoConv *wc, const float *x, float *y, const float *shift, double *s1, double *s2,
                       double *part);

/* wino_backward_data: dx (n, c, h, w) = the gradient from dy (n, k, h, w) (acc 0), or that
   gradient added to dx (acc 1: dx[i] + the float acc 0 would have written, so its bits);
   wc->u from WINO_BWD_DATA. */
void wino_backward_data(WinoConv *wc, const float *dy, float *dx, int acc);

/* wino_backward_weights: dw (k, c, 3, 3), plain, overwritten with the sum over the batch (acc 0)
   or that sum added to it (acc 1: dw[i] += the float the overwrite would have written);
   overwrites wc->u. */
void wino_backward_weights(WinoConv *wc, const float *x, const float *dy, float *dw, int acc);

/* The last step of wino_backward_weights, dw = G^T D G with D the sum of the wino_dw_sums(wc)
   partial sums (36, c, k) in wc->dw_acc (one per part in tiles mode), with scalar code: the
   reference of the vectorised step (the same operations, so the same bits). */
int wino_dw_sums(const WinoConv *wc);
void wino_weights_from_sums_ref(const WinoConv *wc, int nsums, float *dw);

#endif
