// maxpool.c -- reference max pooling over k x k windows with stride s (no padding).
#include "ncelab/layers.h"

#include <stddef.h>

void maxpool2d_forward(float *out, const float *x, int n, int c, int h, int w, int k, int s) {
    int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
    #pragma omp parallel for schedule(static)
    for (long p = 0; p < (long)n * c; p++) {
        const float *xi = x + (size_t)p * h * w;
        float *o = out + (size_t)p * oh * ow;
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                float m = xi[i * s * w + j * s];
                for (int a = 0; a < k; a++)
                    for (int b = 0; b < k; b++) {
                        float v = xi[(i * s + a) * w + j * s + b];
                        if (v > m) m = v;
                    }
                o[i * ow + j] = m;
            }
    }
}

void maxpool2d_backward(float *dx, const float *dout, const float *x, const float *out, int n,
                        int c, int h, int w, int k, int s) {
    int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
    #pragma omp parallel for schedule(static)
    for (long p = 0; p < (long)n * c; p++) {
        const float *xi = x + (size_t)p * h * w;
        const float *o = out + (size_t)p * oh * ow, *g = dout + (size_t)p * oh * ow;
        float *d = dx + (size_t)p * h * w;
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                int done = 0;
                for (int a = 0; a < k && !done; a++)
                    for (int b = 0; b < k && !done; b++) {
                        int idx = (i * s + a) * w + j * s + b;
                        if (xi[idx] == o[i * ow + j]) { d[idx] += g[i * ow + j]; done = 1; }
                    }
            }
    }
}
