// avgpool.c -- reference average pooling (k x k windows, stride s) and global average pooling.
#include "ncelab/layers.h"

#include <stddef.h>

void avgpool2d_forward(float *out, const float *x, int n, int c, int h, int w, int k, int s) {
    int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
    float inv = 1.0f / (float)(k * k);
    #pragma omp parallel for schedule(static)
    for (long p = 0; p < (long)n * c; p++) {
        const float *xi = x + (size_t)p * h * w;
        float *o = out + (size_t)p * oh * ow;
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                float acc = 0.0f;
                for (int a = 0; a < k; a++)
                    for (int b = 0; b < k; b++) acc += xi[(i * s + a) * w + j * s + b];
                o[i * ow + j] = acc * inv;
            }
    }
}

void avgpool2d_backward(float *dx, const float *dout, int n, int c, int h, int w, int k, int s) {
    int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
    float inv = 1.0f / (float)(k * k);
    #pragma omp parallel for schedule(static)
    for (long p = 0; p < (long)n * c; p++) {
        const float *g = dout + (size_t)p * oh * ow;
        float *d = dx + (size_t)p * h * w;
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++)
                for (int a = 0; a < k; a++)
                    for (int b = 0; b < k; b++) d[(i * s + a) * w + j * s + b] += g[i * ow + j] * inv;
    }
}

void gap_forward(float *out, const float *x, int n, int c, int hw) {
    #pragma omp parallel for schedule(static)
    for (long p = 0; p < (long)n * c; p++) {
        double acc = 0.0;
        for (int j = 0; j < hw; j++) acc += x[(size_t)p * hw + j];
        out[p] = (float)(acc / hw);
    }
}

void gap_backward(float *dx, const float *dout, int n, int c, int hw) {
    #pragma omp parallel for schedule(static)
    for (long p = 0; p < (long)n * c; p++) {
        float g = dout[p] / (float)hw;
        for (int j = 0; j < hw; j++) dx[(size_t)p * hw + j] += g;
    }
}
