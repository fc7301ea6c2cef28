// layers.h -- reference layers: plain loops over NCHW float32, each a forward/backward pair.
// These are the readable definitions the fast oneDNN path (nn_dnnl.c) is tested against.
// Conventions: outputs first, then inputs, then shapes; backward accumulates (+=) into every
// gradient it produces, so callers zero gradients once per step.
#ifndef NCELAB_LAYERS_H
#define NCELAB_LAYERS_H

#include <stdint.h>

typedef struct {
    int n, cin, h, w;       /* input (n, cin, h, w) */
    int cout, k, stride, pad;
    int oh, ow;             /* output (n, cout, oh, ow): oh = (h + 2 pad - k) / stride + 1 */
} ConvShape;

/* conv2d_forward: out (n, cout, oh, ow) = inp (n, cin, h, w) * w (cout, cin, k, k) + b (cout; may be NULL). */
void conv2d_forward(float *out, const float *inp, const float *w, const float *b, const ConvShape *s);
/* conv2d_backward: dinp (may be NULL), dw, db (may be NULL) += from dout (n, cout, oh, ow). */
void conv2d_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                     const float *w, const ConvShape *s);

/* batchnorm_forward_train: out = gamma (x - mean) / sqrt(var + eps) + beta with the batch's
   per-channel mean and biased variance over (n, h, w); saves mean and invstd (c); updates
   running_mean/var (may be NULL) with momentum, using the unbiased variance. */
void batchnorm_forward_train(float *out, float *mean, float *invstd, float *running_mean,
                             float *running_var, const float *x, const float *gamma,
                             const float *beta, int n, int c, int hw, float eps, float momentum);
/* batchnorm_forward_eval: the same with the running statistics. */
void batchnorm_forward_eval(float *out, const float *x, const float *gamma, const float *beta,
                            const float *running_mean, const float *running_var, int n, int c,
                            int hw, float eps);
/* batchnorm_backward: dx, dgamma, dbeta += (training mode). With xhat = (x - mean) invstd:
   dx = gamma invstd / m (m dy - sum dy - xhat sum(dy xhat)), m = n hw. */
void batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dout, const float *x,
                        const float *mean, const float *invstd, const float *gamma, int n, int c,
                        int hw);

/* Synchronised batch norm (several replicas, each on a slice of one batch) in two steps each way:
   local sums, summed over the replicas by the caller, then the layer with the global sums. */
/* batchnorm_sums: s1 = sum x, s2 = sum x^2 (c doubles each) per channel over (n, hw) of x (n, c, hw). */
void batchnorm_sums(double *s1, double *s2, const float *x, int n, int c, int hw);
/* batchnorm_forward_sums: batchnorm_forward_train with the statistics of m values given by their
   sums s1, s2 (c each): mean = s1 / m, biased var = max(s2 / m - mean^2, 0); running
   statistics updated with the unbiased var m / (m - 1). */
void batchnorm_forward_sums(float *out, float *mean, float *invstd, float *running_mean, float *running_var,
                            const float *x, const float *gamma, const float *beta, const double *s1,
                            const double *s2, double m, int n, int c, int hw, float eps, float momentum);
/* batchnorm_backward_sums: sdy = sum dy and sdyxhat = sum dy xhat (c doubles each) per channel of
   this batch, from dout (n, c, hw) and the forward's x, mean and invstd; dgamma = sdyxhat and
   dbeta = sdy are this batch's parameter gradients. */
void batchnorm_backward_sums(double *sdy, double *sdyxhat, const float *dout, const float *x, const float *mean,
                             const float *invstd, int n, int c, int hw);
/* batchnorm_backward_from_sums: dx (n, c, hw) += gamma invstd / m (m dy - sdy - xhat sdyxhat)
   with the sums over all m values the statistics came from. */
void batchnorm_backward_from_sums(float *dx, const float *dout, const float *x, const float *mean,
                                  const float *invstd, const float *gamma, const double *sdy,
                                  const double *sdyxhat, double m, int n, int c, int hw);

/* relu: out = max(x, 0); backward dx += dout where out > 0. */
void relu_forward(float *out, const float *x, long len);
void relu_backward(float *dx, const float *dout, const float *out, long len);

/* maxpool2d: k x k windows, stride s, no padding: out (n, c, oh, ow), oh = (h - k) / s + 1.
   Backward routes dout to the first maximum of each window. */
void maxpool2d_forward(float *out, const float *x, int n, int c, int h, int w, int k, int s);
void maxpool2d_backward(float *dx, const float *dout, const float *x, const float *out, int n,
                        int c, int h, int w, int k, int s);

/* avgpool2d: k x k windows, stride s, no padding. */
void avgpool2d_forward(float *out, const float *x, int n, int c, int h, int w, int k, int s);
void avgpool2d_backward(float *dx, const float *dout, int n, int c, int h, int w, int k, int s);

/* global average pool: out (n, c) = mean over (h, w) of x (n, c, h, w). */
void gap_forward(float *out, const float *x, int n, int c, int hw);
void gap_backward(float *dx, const float *dout, int n, int c, int hw);

/* linear: out (n, fout) = x (n, fin) w^T + b, w (fout, fin), b (fout; may be NULL). */
void linear_forward(float *out, const float *x, const float *w, const float *b, int n, int fin, int fout);
void linear_backward(float *dx, float *dw, float *db, const float *dout, const float *x,
                     const float *w, int n, int fin, int fout);

/* l2norm: z = y / max(|y|, 1e-12) row-wise, y (n, d); dy += (dz - z (z.dz)) / |y|. */
void l2norm_forward(float *z, const float *y, int n, int d);
void l2norm_backward(float *dy, const float *dz, const float *z, const float *y, int n, int d);

/* residual add: out = a + b; backward da += dout, db += dout. */
void add_forward(float *out, const float *a, const float *b, long len);
void add_backward(float *da, float *db, const float *dout, long len);

#endif
