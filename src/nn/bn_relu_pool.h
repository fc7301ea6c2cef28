// bn_relu_pool.h -- batch norm (training statistics or given ones), ReLU and 2x2 max pooling with
// stride 2 (or a global average pool) fused, on oneDNN's nChw8c layout (AVX2/FMA). Reference:
// batchnorm.c, relu.c, maxpool.c, avgpool.c.
#ifndef NCELAB_NN_BN_RELU_POOL_H
#define NCELAB_NN_BN_RELU_POOL_H

#include <stdint.h>
#include <stdlib.h>

/* bnp_supported: whether this CPU runs the kernels and the shape suits them (c % 8 == 0, even
   h and w, c <= 1024); NCELAB_FUSED_POOL=0 turns them off. */
int bnp_supported(int c, int h, int w);

/* The batch's sums are taken in BNP_PARTS fixed parts of the images (fewer for smaller batches),
   added in part order: their bits depend on neither the thread count nor the schedule.
   bnp_scratch_doubles: the doubles of scratch the sums need for c channels (2 c per part). */
#define BNP_PARTS 16
size_t bnp_scratch_doubles(int c);

/* bnp_stats: mean and biased variance (c) of x (n, c, h, w) per channel. scratch:
   bnp_scratch_doubles(c) doubles. */
void bnp_stats(float *mean, float *var, const float *x, int n, int c, int h, int w, double *scratch);

/* bnp_forward: y (n, c, h/2, w/2) = maxpool(relu(gamma (x - mean) / sqrt(var + eps) + beta));
   idx (n, c, h/2, w/2 bytes, nChw8c order): the window position 0-3 of the first maximum, 4 when
   the maximum is not positive (no gradient flows); xk (as y, or NULL): the input x at that
   position (position 0 for 4), which is all of x that the backward's sums need (first_grad.c). */
void bnp_forward(float *y, uint8_t *idx, float *xk, const float *x, const float *mean, const float *var, const float *gamma,
                 const float *beta, float eps, int n, int c, int h, int w);

/* The backward in two steps, so that the sums can be added up over replicas in between:
   bnp_backward_sums: sdy = sum dy' and sdyxhat = sum dy' xhat (c doubles each), dy' the gradient
   of the batch norm's output (dy routed through the pool and the ReLU), xhat = (x - mean) invstd;
   they are also this batch's dbeta and dgamma. scratch as for bnp_stats.
   The gradient flows only at each window's maximum: with xk (bnp_forward's, or NULL) the sums
   read the input there from xk, a quarter of x, else they pick it from x; the bits are the same.
   bnp_backward_dx: dx (n, c, h, w), overwritten, = gamma invstd / m (m dy' - sdy - xhat sdyxhat)
   with the sums over all m values that mean and var were taken over. */
void bnp_backward_sums(double *sdy, double *sdyxhat, const float *dy, const uint8_t *idx, const float *x,
                       const float *xk, const float *mean, const float *var, float eps, int n, int c, int h, int w,
                       double *scratch);
void bnp_backward_dx(float *dx, const float *dy, const uint8_t *idx, const float *x, const float *mean,
                     const float *var, const float *gamma, float eps, const double *sdy, const double *sdyxhat,
                     double m, int n, int c, int h, int w);

/* bnp_backward: dx (n, c, h, w), dgamma and dbeta (c), all overwritten, from dy (n, c, h/2, w/2),
   for batch statistics mean and var (training mode); xk as for bnp_backward_sums. scratch as for
   bnp_stats. */
void bnp_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const uint8_t *idx, const float *x,
                  const float *xk, const float *mean, const float *var, const float *gamma, float eps, int n, int c,
                  int h, int w, double *scratch);

/* The same with a global average pool instead of the max pool: y (n, c), plain, = the mean over
   h w of relu(gamma (x - mean) / sqrt(var + eps) + beta); g (n, c) its gradient, and the ReLU's
   mask recomputed from x and the statistics (the forward's operations, so its bits). Any h and w;
   c % 8 == 0 and c <= 1024 (bnp_gap_supported; NCELAB_FUSED_GAP=0 or NCELAB_FUSED_POOL=0 turns it
   off). kept (n, 2 c doubles; training, else NULL): per image and channel the count of pixels
   the ReLU passes and the sum of their x - mean, from which bnp_gap_backward_sums takes the two
   sums without reading x (every passing pixel's gradient is g / (h w)). */
int bnp_gap_supported(int c);
void bnp_gap_forward(float *y, double *kept, const float *x, const float *mean, const float *var, const float *gamma,
                     const float *beta, float eps, int n, int c, int h, int w);
void bnp_gap_backward_sums(double *sdy, double *sdyxhat, const float *g, const double *kept, const float *var,
                           float eps, int n, int c, int h, int w, double *scratch);
void bnp_gap_backward_dx(float *dx, const float *g, const float *x, const float *mean, const float *var,
                         const float *gamma, const float *beta, float eps, const double *sdy, const double *sdyxhat,
                         double m, int n, int c, int h, int w);
void bnp_gap_backward(float *dx, float *dgamma, float *dbeta, const float *g, const double *kept, const float *x,
                      const float *mean, const float *var, const float *gamma, const float *beta, float eps, int n,
                      int c, int h, int w, double *scratch);

#endif
