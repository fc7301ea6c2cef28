// bn_add_relu.h -- batch norm, residual add and ReLU fused, y = max(0, bn(x) + r), on the blocked
// layouts [n][c / B][h w][B] (B = 8: nChw8c, 16: nChw16c), AVX2/FMA. The plain loops of
// batchnorm.c and relu.c and the executors' add are its reference.
#ifndef NCELAB_NN_BN_ADD_RELU_H
#define NCELAB_NN_BN_ADD_RELU_H

#include <stdint.h>

/* bar_supported: whether this CPU runs the kernels and the layout suits them (B = 8 or 16,
   c a multiple of B); NCELAB_FUSED_ADD=0 turns them off. */
int bar_supported(int c, int B);

/* bar_forward: y = max(0, gamma (x - mean) / sqrt(var + eps) + beta + r), all (n, c, hw) in
   the layout of block B; mask (training; NULL: none), one byte per 8 consecutive elements of the
   layout, element e at bit e % 8 of mask[e / 8]: 1 where y > 0, the ReLU's decision, which the
   backward reads instead of y (an eighth of its bytes). */
void bar_forward(float *y, uint8_t *mask, const float *x, const float *r, const float *mean, const float *var,
                 const float *gamma, const float *beta, float eps, int B, int n, int c, int hw);

/* The backward in two steps, so that the sums can be added up over replicas in between. g is
   dy where the forward's mask is set, else 0 (the ReLU's gradient).
   bar_backward_sums: sdy = sum g and sdyxhat = sum g xhat (c doubles each), xhat = (x - mean)
   invstd; they are also this batch's dbeta and dgamma. Each channel is summed by one thread in
   a fixed order: the sums do not depend on the thread count.
   bar_backward_dx: dx = gamma invstd / m (m g - sdy - xhat sdyxhat) and dr = g, both
   overwritten, with the sums over all m values that mean and var were taken over. */
void bar_backward_sums(double *sdy, double *sdyxhat, const float *dy, const uint8_t *mask, const float *x,
                       const float *mean, const float *var, float eps, int B, int n, int c, int hw);
void bar_backward_dx(float *dx, float *dr, const float *dy, const uint8_t *mask, const float *x, const float *mean,
                     const float *var, const float *gamma, float eps, const double *sdy, const double *sdyxhat,
                     double m, int B, int n, int c, int hw);

#endif
