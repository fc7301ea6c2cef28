// loss.c -- the exact population contrastive loss L_k(G) and its gradient dL/dG.
//
// InfoNCE: L = sum_{x,x+} pi(x,x+) E_{x_i ~ D} log(1 + sum_{i<=k} exp(G[x][x_i] - G[x][x+])).
// For each anchor x the positives x+ share one integral (nce_integral.c), so an evaluation
// costs O(M^2 Q) with Q ~ 100-250 nodes, for any k.
// NCE (Gutmann-Hyvarinen, noise ratio k, score s(x,y) = G[x][y] - log k):
// L = sum pi(x,x+) softplus(-s(x,x+)) + k sum_{x,y} D(x) D(y) softplus(s(x,y)),
// the expected binary logistic loss of telling the positive from k noise samples.
#include "ncelab/theory.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static double sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

/* raw[x][y]: derivative treating every entry as independent; the symmetric gradient is its
   symmetric part. */
static void symmetrise(double *C, int M) {
    for (int i = 0; i < M; i++)
        for (int j = i + 1; j < M; j++) {
            double v = 0.5 * (C[(size_t)i * M + j] + C[(size_t)j * M + i]);
            C[(size_t)i * M + j] = C[(size_t)j * M + i] = v;
        }
}

static double loss_nce(const TheoryModel *m, long k, const double *G, double *C) {
    int M = m->M;
    double lk = log((double)k), kd = (double)k, L = 0.0;
    for (int x = 0; x < M; x++) {
        for (int y = 0; y < M; y++) {
            size_t i = (size_t)x * M + y;
            double sc = G[i] - lk;
            double pp = m->pair[i], nn = kd * m->D[x] * m->D[y];
            if (pp > 0) L += pp * softplus(-sc);
            if (nn > 0) L += nn * softplus(sc);
            if (C) C[i] = -pp * sigmoid(-sc) + nn * sigmoid(sc);
        }
    }
    return L;
}

/* Below this many points an evaluation takes tens of microseconds, about what waking a second
   thread costs: one thread does it (a sweep of N = 10 beside busy processes: 1.0 s on one thread,
   2.3 s on two). */
enum { THEORY_PARALLEL_MIN_M = 32 };

static double loss_infonce(const TheoryModel *m, long k, const double *G, double *C) {
    int M = m->M;
    double L = 0.0;
    #pragma omp parallel reduction(+:L) if (M >= THEORY_PARALLEL_MIN_M)
    {
        NceWork w = {0};
        double *a = nc_malloc(sizeof(double) * M);
        double *da = nc_malloc(sizeof(double) * M);
        #pragma omp for schedule(dynamic, 1)
        for (int x = 0; x < M; x++) {
            if (m->D[x] <= 0) continue;
            const double *gx = G + (size_t)x * M, *pw = m->pair + (size_t)x * M;
            for (int j = 0; j < M; j++) { a[j] = gx[j]; da[j] = 0.0; }
            double *cx = C ? C + (size_t)x * M : NULL;
            L += nce_anchor(M, gx, m->D, M, a, pw, k, m->h, cx, C ? da : NULL, &w);
            if (cx) for (int j = 0; j < M; j++) cx[j] += da[j];
        }
        free(a);
        free(da);
        nce_work_free(&w);
    }
    return L;
}

double theory_loss(const TheoryModel *m, long k, const double *G, double *grad) {
    if (grad) memset(grad, 0, sizeof(double) * m->M * m->M);
    double L = m->loss == NC_LOSS_NCE ? loss_nce(m, k, G, grad) : loss_infonce(m, k, G, grad);
    if (grad) symmetrise(grad, m->M);
    return L;
}
