// linear.c -- reference fully connected layer y = x w^T + b.
#include "ncelab/layers.h"

#include <stddef.h>

void linear_forward(float *out, const float *x, const float *w, const float *b, int n, int fin, int fout) {
    #pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int o = 0; o < fout; o++) {
            const float *xi = x + (size_t)i * fin, *wo = w + (size_t)o * fin;
            float acc = b ? b[o] : 0.0f;
            for (int j = 0; j < fin; j++) acc += xi[j] * wo[j];
            out[(size_t)i * fout + o] = acc;
        }
}

// Forward was y[i][o] = sum_j x[i][j] w[o][j] + b[o]: dx = dy w, dw = dy^T x, db = sum_i dy.
void linear_backward(float *dx, float *dw, float *db, const float *dout, const float *x,
                     const float *w, int n, int fin, int fout) {
    if (dx) {
        #pragma omp parallel for schedule(static)
        for (int i = 0; i < n; i++)
            for (int o = 0; o < fout; o++) {
                float g = dout[(size_t)i * fout + o];
                const float *wo = w + (size_t)o * fin;
                for (int j = 0; j < fin; j++) dx[(size_t)i * fin + j] += g * wo[j];
            }
    }
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < fout; o++) {
        for (int i = 0; i < n; i++) {
            float g = dout[(size_t)i * fout + o];
            const float *xi = x + (size_t)i * fin;
            for (int j = 0; j < fin; j++) dw[(size_t)o * fin + j] += g * xi[j];
            if (db) db[o] += g;
        }
    }
}
