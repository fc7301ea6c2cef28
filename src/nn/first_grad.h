// first_grad.h -- a network's first convolution (3x3, stride 1, padding 1, no bias, at most 3
// input channels) with the batch norm + ReLU + 2x2 max pool fused after it (bn_relu_pool.c):
// the batch norm's statistics in the forward and the convolution's weight gradient in the
// backward from small moments of the batch, without reading the convolution's output for them
// or ever forming its gradient (first_grad.c). The references are bnp_stats, and
// bnp_backward followed by conv2d_backward.
#ifndef NCELAB_NN_FIRST_GRAD_H
#define NCELAB_NN_FIRST_GRAD_H

#include <stddef.h>
#include <stdint.h>

#define FG_J 32      /* a patch's 9 c <= 27 inputs, padded */
#define FG_PARTS 16  /* the batch's moments are summed in 16 parts of images (fewer for smaller batches),
                        taken by the threads as they free up, then added in part order: the bits
                        depend on neither the thread count nor which thread took a part */

/* A layer's plan and work (fg_init allocates it, fg_free frees it). */
typedef struct {
    int n, c, k, h, w;   /* input (n, c, h, w) NCHW; convolution output (n, k, h, w) nChw8c, pooled (h/2, w/2) */
    int nthr;
    int nparts;          /* min(n, FG_PARTS) */
    float *work;         /* per thread: the padded image, its pixels padded to 4 inputs, its patches row by
                            row (9 c, h w), one image's moments in float (G, P), and the backward's table of
                            the routed gradient (a patch offset and a gradient per pooled value of a block) */
    double *acc;         /* per part: G (FG_J x FG_J), S (FG_J), P (k x FG_J), the two sums (2 k), in double */
    double *G, *S, *P;   /* the batch's moments, summed over the parts in order */
    double *sdy, *sdyx;  /* the batch norm's two sums over this batch (k each), as bnp_backward_sums's */
    float *wtap;         /* fg_forward's filters tap by tap in blocks of 16 filters, (k / 16, 9 c, 16) */
    float *xk;           /* (n, k, h/2, w/2) nChw8c: the convolution's output at each window's maximum,
                            kept by bnp_forward for the backward's sums */
} FirstGrad;

/* fg_supported: whether this CPU runs the kernels and the shape suits them (c <= 3, k a multiple
   of 8 up to 1024, even sides, h w a multiple of 8); NCELAB_FIRST_GRAD=0 turns them off. */
int fg_supported(int c, int k, int h, int w);

/* fg_init: plans and allocates the layer for a batch of n; 0 on success, -1 when unsupported. */
int fg_init(FirstGrad *g, int n, int c, int k, int h, int w);
void fg_free(FirstGrad *g);

/* fg_gram: the moments of the input x (n, c, h, w) alone, with col(p) the 9 c inputs of output
   pixel p (zero outside the image):  G = sum_p col(p) col(p)^T,  S = sum_p col(p). */
void fg_gram(FirstGrad *g, const float *x);

/* fg_stats: with y = W col the convolution's output for filters wt (k, c, 3, 3), the per-channel
   sums s1 = sum_p y(p) = W S and s2 = sum_p y(p)^2 = W G W^T (k doubles each), from fg_gram's. */
void fg_stats(const FirstGrad *g, const float *wt, double *s1, double *s2);

/* fg_forward_supported: whether fg_forward runs this layer (k a multiple of 16). */
int fg_forward_supported(const FirstGrad *g);

/* fg_forward: the convolution, batch norm (mean, var, gamma, beta, eps), ReLU and max pool in
   one pass over the input x (n, c, h, w) with filters wt (k, c, 3, 3): y (n, k, h/2, w/2) and idx
   as bnp_forward's, and g->xk when xk is non-zero; the convolution's output is never stored.
   Each pooled window's four outputs are summed in registers, tap by tap. */
void fg_forward(FirstGrad *g, float *y, uint8_t *idx, int xk, const float *x, const float *wt, const float *mean,
                const float *var, const float *gamma, const float *beta, float eps);

/* fg_moments: from the pooled gradient dy (n, k, h/2, w/2, nChw8c), the pool's window positions
   idx (bn_relu_pool.h) and g->xk, with the batch norm's mean and var: g->sdy and g->sdyx, the
   sums of bnp_backward_sums, and g->P[o] = sum over the pooled values of channel o that pass a
   gradient of dy col(their argmax). x: the input, as for fg_gram. */
void fg_moments(FirstGrad *g, const float *x, const float *dy, const uint8_t *idx, const float *mean,
                const float *var, float eps);

/* fg_weight_grad: dw (k, c, 3, 3) += the convolution's weight gradient, from the moments, its
   filters wt, the batch norm's mean, var, gamma, eps and the two sums over all m values
   (all-reduced when the batch norm is synchronised). With the batch norm's input gradient
   dx = kc (dy' - ka - kb (y - mean)) per channel and y = W col:
     dW[o] = kc_o (P[o] - ka_o S - kb_o (W[o] G - mean_o S)). */
void fg_weight_grad(const FirstGrad *g, float *dw, const float *wt, const float *mean, const float *var,
                    const float *gamma, float eps, const double *sdy, const double *sdyx, double m);

#endif
