// batchnorm.c -- reference 2-D batch normalisation: batch statistics in training, running in eval;
// in training the statistics may also come from sums over several replicas' batches (SyncBN).
#include "ncelab/layers.h"

#include <math.h>
#include <stddef.h>

/* Channel ch in training mode, given its batch mean mu and biased variance var over m values:
   saves mean and invstd, updates the running statistics (unbiased variance), normalises. */
static void train_channel(float *out, float *mean, float *invstd, float *running_mean, float *running_var,
                          const float *x, const float *gamma, const float *beta, double mu, double var,
                          double m, int n, int c, int hw, int ch, float eps, float momentum) {
    double is = 1.0 / sqrt(var + eps);
    mean[ch] = (float)mu;
    invstd[ch] = (float)is;
    if (running_mean) {
        running_mean[ch] = (1.0f - momentum) * running_mean[ch] + momentum * (float)mu;
        running_var[ch] = (1.0f - momentum) * running_var[ch] + momentum * (float)(m > 1 ? var * m / (m - 1) : var);
    }
    float g = gamma[ch] * (float)is, b = beta[ch] - (float)mu * g;
    for (int i = 0; i < n; i++) {
        const float *p = x + ((size_t)i * c + ch) * hw;
        float *o = out + ((size_t)i * c + ch) * hw;
        for (int j = 0; j < hw; j++) o[j] = p[j] * g + b;
    }
}

void batchnorm_forward_train(float *out, float *mean, float *invstd, float *running_mean,
                             float *running_var, const float *x, const float *gamma,
                             const float *beta, int n, int c, int hw, float eps, float momentum) {
    double m = (double)n * hw;
    #pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0, s2 = 0.0;
        for (int i = 0; i < n; i++) {
            const float *p = x + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) s += p[j];
        }
        double mu = s / m;
        for (int i = 0; i < n; i++) {
            const float *p = x + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) s2 += (p[j] - mu) * (p[j] - mu);
        }
        train_channel(out, mean, invstd, running_mean, running_var, x, gamma, beta, mu, s2 / m, m, n, c, hw, ch,
                      eps, momentum);
    }
}

void batchnorm_sums(double *s1, double *s2, const float *x, int n, int c, int hw) {
    #pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double a = 0.0, a2 = 0.0;
        for (int i = 0; i < n; i++) {
            const float *p = x + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) { a += p[j]; a2 += (double)p[j] * p[j]; }
        }
        s1[ch] = a;
        s2[ch] = a2;
    }
}

void batchnorm_forward_sums(float *out, float *mean, float *invstd, float *running_mean, float *running_var,
                            const float *x, const float *gamma, const float *beta, const double *s1,
                            const double *s2, double m, int n, int c, int hw, float eps, float momentum) {
    #pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double mu = s1[ch] / m, var = s2[ch] / m - mu * mu;
        train_channel(out, mean, invstd, running_mean, running_var, x, gamma, beta, mu, var > 0 ? var : 0.0, m, n,
                      c, hw, ch, eps, momentum);
    }
}

void batchnorm_forward_eval(float *out, const float *x, const float *gamma, const float *beta,
                            const float *running_mean, const float *running_var, int n, int c,
                            int hw, float eps) {
    #pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        float g = gamma[ch] / sqrtf(running_var[ch] + eps), b = beta[ch] - running_mean[ch] * g;
        for (int i = 0; i < n; i++) {
            const float *p = x + ((size_t)i * c + ch) * hw;
            float *o = out + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) o[j] = p[j] * g + b;
        }
    }
}

/* Channel ch's sums of the backward pass: sdy = sum dy, sdyx = sum dy xhat. */
static void channel_grad_sums(double *sdy, double *sdyx, const float *dout, const float *x, float mu, float is,
                              int n, int c, int hw, int ch) {
    double a = 0.0, b = 0.0;
    for (int i = 0; i < n; i++) {
        const float *p = x + ((size_t)i * c + ch) * hw, *g = dout + ((size_t)i * c + ch) * hw;
        for (int j = 0; j < hw; j++) {
            a += g[j];
            b += g[j] * (p[j] - mu) * is;
        }
    }
    *sdy = a;
    *sdyx = b;
}

/* Channel ch's input gradient, with the sums sdy, sdyx over the m values the statistics came from.
   Forward was y = gamma xhat + beta, xhat = (x - mean) invstd, mean and variance over those m values;
   so dx = gamma invstd / m (m dy - sum dy - xhat sum(dy xhat)), both sums over the same m values. */
static void channel_dx(float *dx, const float *dout, const float *x, float mu, float is, float gamma, double sdy,
                       double sdyx, double m, int n, int c, int hw, int ch) {
    float k = gamma * is / (float)m;
    for (int i = 0; i < n; i++) {
        const float *p = x + ((size_t)i * c + ch) * hw, *g = dout + ((size_t)i * c + ch) * hw;
        float *d = dx + ((size_t)i * c + ch) * hw;
        for (int j = 0; j < hw; j++)
            d[j] += k * ((float)m * g[j] - (float)sdy - (p[j] - mu) * is * (float)sdyx);
    }
}

void batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dout, const float *x,
                        const float *mean, const float *invstd, const float *gamma, int n, int c,
                        int hw) {
    double m = (double)n * hw;
    #pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double sdy, sdyx;
        channel_grad_sums(&sdy, &sdyx, dout, x, mean[ch], invstd[ch], n, c, hw, ch);
        dgamma[ch] += (float)sdyx;
        dbeta[ch] += (float)sdy;
        if (dx) channel_dx(dx, dout, x, mean[ch], invstd[ch], gamma[ch], sdy, sdyx, m, n, c, hw, ch);
    }
}

void batchnorm_backward_sums(double *sdy, double *sdyxhat, const float *dout, const float *x, const float *mean,
                             const float *invstd, int n, int c, int hw) {
    #pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++)
        channel_grad_sums(&sdy[ch], &sdyxhat[ch], dout, x, mean[ch], invstd[ch], n, c, hw, ch);
}

void batchnorm_backward_from_sums(float *dx, const float *dout, const float *x, const float *mean,
                                  const float *invstd, const float *gamma, const double *sdy,
                                  const double *sdyxhat, double m, int n, int c, int hw) {
    #pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++)
        channel_dx(dx, dout, x, mean[ch], invstd[ch], gamma[ch], sdy[ch], sdyxhat[ch], m, n, c, hw, ch);
}
