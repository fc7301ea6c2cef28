// batchnorm.c -- reference 2-D batch normalisation: batch statistics in training, running in eval.
#include "ncelab/layers.h"

#include <math.h>
#include <stddef.h>

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
        double var = s2 / m, is = 1.0 / sqrt(var + eps);
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

void batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dout, const float *x,
                        const float *mean, const float *invstd, const float *gamma, int n, int c,
                        int hw) {
    double m = (double)n * hw;
    #pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double sdy = 0.0, sdyx = 0.0;
        float mu = mean[ch], is = invstd[ch];
        for (int i = 0; i < n; i++) {
            const float *p = x + ((size_t)i * c + ch) * hw, *g = dout + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) {
                sdy += g[j];
                sdyx += g[j] * (p[j] - mu) * is;
            }
        }
        dgamma[ch] += (float)sdyx;
        dbeta[ch] += (float)sdy;
        if (!dx) continue;
        float k = gamma[ch] * is / (float)m;
        for (int i = 0; i < n; i++) {
            const float *p = x + ((size_t)i * c + ch) * hw, *g = dout + ((size_t)i * c + ch) * hw;
            float *d = dx + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++)
                d[j] += k * ((float)m * g[j] - (float)sdy - (p[j] - mu) * is * (float)sdyx);
        }
    }
}
