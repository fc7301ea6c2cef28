// downstream.c -- downstream losses of the mean classifier and the structure of a representation.
//
// Everything is a function of the Gram matrix: with S = G P^T (M x N), S[x][j] = f(x).mu_j is
// the mean classifier's logit of class j at point x, and P G P^T holds mu_i.mu_j.
#include "ncelab/theory.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

void theory_downstream(const TheoryModel *m, long k, const double *G, TheoryDownstream *ds) {
    int N = m->N, M = m->M;
    double *S = nc_malloc(sizeof(double) * M * N);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, M, 1.0, G, M, m->P, M, 0.0, S, N);
    double sumsq = 0.0;
    for (int c = 0; c < N; c++) sumsq += m->rho[c] * m->rho[c];
    double *g = nc_malloc(sizeof(double) * N), *p = nc_malloc(sizeof(double) * N);
    NceWork w = {0};
    memset(ds, 0, sizeof *ds);
    for (int c = 0; c < N; c++) {
        for (int x = 0; x < M; x++) {
            double pcx = m->P[(size_t)c * M + x];
            if (pcx <= 0) continue;
            const double *s = S + (size_t)x * N;
            double mx = s[0];
            for (int j = 1; j < N; j++) mx = fmax(mx, s[j]);
            double z = 0.0;
            int ties = 0, win = 0;
            for (int j = 0; j < N; j++) {
                z += exp(s[j] - mx);
                if (s[j] >= mx - 1e-12 * fmax(1.0, fabs(mx))) { ties++; win |= j == c; }
            }
            double ce = mx + log(z) - s[c];
            ds->mean_ce += m->rho[c] * pcx * ce;
            ds->mean_ce_balanced += pcx * ce / N;
            if (win) ds->mean_acc += m->rho[c] * pcx / ties;
            for (int j = 0; j < N; j++)
                if (j != c) ds->avg_binary_ce += m->rho[c] * m->rho[j] / (1.0 - sumsq) * pcx * softplus(s[j] - s[c]);
            /* (k+1)-way: k negative classes i.i.d. from rho conditioned on != c */
            int n = 0;
            for (int j = 0; j < N; j++)
                if (j != c) { g[n] = s[j]; p[n] = m->rho[j] / (1.0 - m->rho[c]); n++; }
            double a = s[c], one = 1.0;
            ds->kplus1_ce += m->rho[c] * pcx * nce_anchor(n, g, p, 1, &a, &one, k, m->h, NULL, NULL, &w);
        }
    }
    nce_work_free(&w);
    free(S); free(g); free(p);
}

void theory_structure(const TheoryModel *m, const double *G, TheoryStructure *st) {
    int N = m->N, M = m->M;
    double *PG = nc_malloc(sizeof(double) * N * M), *MU = nc_malloc(sizeof(double) * N * N);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, M, M, 1.0, m->P, M, G, M, 0.0, PG, M);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, M, 1.0, PG, M, m->P, M, 0.0, MU, N);
    st->simplex_deviation = 0.0;
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) {
            double den = sqrt(MU[i * N + i] * MU[j * N + j]);
            double cs = den > 0 ? MU[i * N + j] / den : 0.0;
            st->simplex_deviation = fmax(st->simplex_deviation, fabs(cs + 1.0 / (N - 1)));
        }
    st->class_spread = 0.0;
    for (int c = 0; c < N; c++) {
        double e2 = 0.0;
        for (int x = 0; x < M; x++) e2 += m->P[(size_t)c * M + x] * G[(size_t)x * M + x];
        st->class_spread = fmax(st->class_spread, e2 - MU[c * N + c]);
    }
    st->min_norm = INFINITY;
    st->max_norm = 0.0;
    for (int x = 0; x < M; x++) {
        double nx = sqrt(fmax(0.0, G[(size_t)x * M + x]));
        st->min_norm = fmin(st->min_norm, nx);
        st->max_norm = fmax(st->max_norm, nx);
    }
    /* numerical rank: eigenvalues of G above 1e-6 R^2 (trace minus the small ones) */
    double *ev = nc_malloc(sizeof(double) * M), *a = nc_malloc(sizeof(double) * M * M);
    memcpy(a, G, sizeof(double) * M * M);
    st->rank = 0;
    if (LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', M, a, M, ev) == 0)
        for (int x = 0; x < M; x++) st->rank += ev[x] > 1e-6 * m->R * m->R;
    free(ev); free(a); free(PG); free(MU);
}
