// l2norm.c -- row-wise L2 normalisation z = y / max(|y|, 1e-12), and the residual add.
#include "ncelab/layers.h"

#include <math.h>
#include <stddef.h>

void l2norm_forward(float *z, const float *y, int n, int d) {
    for (int i = 0; i < n; i++) {
        const float *yi = y + (size_t)i * d;
        double s = 0.0;
        for (int j = 0; j < d; j++) s += (double)yi[j] * yi[j];
        float inv = 1.0f / fmaxf((float)sqrt(s), 1e-12f);
        for (int j = 0; j < d; j++) z[(size_t)i * d + j] = yi[j] * inv;
    }
}

// z = y / r with r = |y|: dz/dy = (I - z z^T) / r, so dy = (dz - z (z . dz)) / r.
void l2norm_backward(float *dy, const float *dz, const float *z, const float *y, int n, int d) {
    for (int i = 0; i < n; i++) {
        const float *zi = z + (size_t)i * d, *gi = dz + (size_t)i * d, *yi = y + (size_t)i * d;
        double s = 0.0, dot = 0.0;
        for (int j = 0; j < d; j++) { s += (double)yi[j] * yi[j]; dot += (double)zi[j] * gi[j]; }
        double r = sqrt(s);
        if (r <= 1e-12) { for (int j = 0; j < d; j++) dy[(size_t)i * d + j] += gi[j] / 1e-12f; continue; }
        for (int j = 0; j < d; j++) dy[(size_t)i * d + j] += (float)((gi[j] - zi[j] * dot) / r);
    }
}

void add_forward(float *out, const float *a, const float *b, long len) {
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < len; i++) out[i] = a[i] + b[i];
}

void add_backward(float *da, float *db, const float *dout, long len) {
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < len; i++) { da[i] += dout[i]; db[i] += dout[i]; }
}
