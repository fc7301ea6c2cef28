// relu.c -- reference rectified linear unit.
#include "ncelab/layers.h"

void relu_forward(float *out, const float *x, long len) {
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < len; i++) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward(float *dx, const float *dout, const float *out, long len) {
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < len; i++) dx[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}
