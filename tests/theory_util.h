// theory_util.h -- shared helpers of the theory tests: random feasible Gram matrices, the
// enumeration oracle over multinomial counts, and symmetric finite differences.
#ifndef NCELAB_TEST_THEORY_UTIL_H
#define NCELAB_TEST_THEORY_UTIL_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ncelab/rng.h"
#include "ncelab/theory.h"

/* A random Gram matrix G = F F^T, F (M, d) with row norms uniform in [0.3 R, R]. */
static inline void random_gram(double *G, int M, int d, double R, uint64_t seed) {
    Rng r;
    rng_init(&r, seed, 7, 0, 0);
    double *F = malloc(sizeof(double) * M * d);
    for (int x = 0; x < M; x++) {
        double nrm = 0;
        for (int j = 0; j < d; j++) { F[x * d + j] = rng_normal(&r); nrm += F[x * d + j] * F[x * d + j]; }
        double target = R * (0.3 + 0.7 * rng_uniform(&r));
        for (int j = 0; j < d; j++) F[x * d + j] *= target / sqrt(nrm);
    }
    for (int x = 0; x < M; x++)
        for (int y = 0; y < M; y++) {
            double s = 0;
            for (int j = 0; j < d; j++) s += F[x * d + j] * F[y * d + j];
            G[x * M + y] = s;
        }
    free(F);
}

/* Enumeration over count vectors n (sum n = k) of the multinomial(k, D) law. */
typedef struct {
    int M;
    long k;
    const double *D, *w;  /* w_y = exp(G[x][y] - G[x][x+]) */
    double *dw;           /* accumulates E[n_y / (1 + S)] */
    int *n;
} EnumCtx;

static double enum_rec(EnumCtx *c, int y, long left, double logp, double S) {
    if (y == c->M - 1) {
        c->n[y] = (int)left;
        double lp = logp + (left ? left * log(c->D[y]) : 0.0) - lgamma(left + 1.0);
        if (c->D[y] <= 0 && left) return 0.0;
        double p = exp(lp), Sf = S + left * c->w[y];
        for (int j = 0; j < c->M; j++) c->dw[j] += p * c->n[j] / (1.0 + Sf);
        return p * log1p(Sf);
    }
    double tot = 0;
    for (long ny = 0; ny <= left; ny++) {
        if (c->D[y] <= 0 && ny) break;
        c->n[y] = (int)ny;
        double lp = logp + (ny ? ny * log(c->D[y]) : 0.0) - lgamma(ny + 1.0);
        tot += enum_rec(c, y + 1, left - ny, lp, S + ny * c->w[y]);
    }
    return tot;
}

/* enum_loss: InfoNCE population loss and raw-symmetrised gradient by exact enumeration. */
static inline double enum_loss(const TheoryModel *m, long k, const double *G, double *C) {
    int M = m->M;
    double L = 0;
    double *w = malloc(sizeof(double) * M), *dw = malloc(sizeof(double) * M);
    int *n = malloc(sizeof(int) * M);
    if (C) memset(C, 0, sizeof(double) * M * M);
    for (int x = 0; x < M; x++)
        for (int xp = 0; xp < M; xp++) {
            double pi = m->pair[x * M + xp];
            if (pi <= 0) continue;
            for (int y = 0; y < M; y++) { w[y] = exp(G[x * M + y] - G[x * M + xp]); dw[y] = 0; }
            EnumCtx c = {M, k, m->D, w, dw, n};
            L += pi * enum_rec(&c, 0, k, lgamma(k + 1.0), 0.0);
            if (C) {
                double tot = 0;
                for (int y = 0; y < M; y++) {
                    double gy = pi * dw[y] * w[y];
                    C[x * M + y] += gy;
                    tot += gy;
                }
                C[x * M + xp] -= tot;
            }
        }
    if (C)
        for (int i = 0; i < M; i++)
            for (int j = i + 1; j < M; j++) {
                double v = 0.5 * (C[i * M + j] + C[j * M + i]);
                C[i * M + j] = C[j * M + i] = v;
            }
    free(w); free(dw); free(n);
    return L;
}

#endif
