// explore_shrink.c -- a counterexample made small: fewer classes, a disjoint support, a rounder prior.
//
// Greedy: the candidates below are tried in order (simplest change first); the first that still
// has a certified rise of the metric replaces the instance and the search starts over, until no
// candidate keeps the rise or the budget of sweeps is spent.
#define _POSIX_C_SOURCE 200809L
#include "ncelab/explore.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the prior rounded to d decimals, every class at least 10^-d, summing to 1 exactly in decimal;
   NULL when it cannot be */
static char *rho_rounded(const double *rho, int N, int d) {
    long unit = 1, sum = 0;
    for (int i = 0; i < d; i++) unit *= 10;
    long *q = nc_malloc(sizeof(long) * N);
    int top = 0;
    for (int c = 0; c < N; c++) {
        q[c] = lround(rho[c] * (double)unit);
        if (q[c] < 1) q[c] = 1;
        sum += q[c];
        if (q[c] > q[top]) top = c;
    }
    q[top] += unit - sum;
    char *s = NULL;
    if (q[top] >= 1) {
        NcBuf b = {0};
        for (int c = 0; c < N; c++) nc_buf_printf(&b, "%s%.*f", c ? "," : "", d, (double)q[c] / (double)unit);
        s = b.s;
    }
    free(q);
    return s;
}

static char *rho_list(const double *rho, int N) {
    NcBuf b = {0};
    for (int c = 0; c < N; c++) nc_buf_printf(&b, "%s%.12g", c ? "," : "", rho[c]);
    return b.s;
}

/* candidate t of the instance cur into *r (0 when t is past the last candidate, -1 when candidate t
   does not apply) */
static int candidate(const ExploreConfig *c, const ExploreRecord *cur, int t, const char *name, ExploreRecord *r) {
    int N = cur->N, M = cur->M, S = cur->shared;
    memset(r, 0, sizeof *r);
    r->index = -1;
    if (t < N) {  /* drop class order[t]: the classes by increasing prior */
        if (N <= 2 || S < 0) return -1;  /* a user's support keeps its classes */
        int *ord = nc_malloc(sizeof(int) * N);
        for (int i = 0; i < N; i++) ord[i] = i;
        for (int i = 1; i < N; i++)
            for (int j = i; j > 0 && cur->rho[ord[j]] < cur->rho[ord[j - 1]]; j--) { int x = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = x; }
        int drop = ord[t];
        free(ord);
        double *rho = nc_malloc(sizeof(double) * N), z = 1.0 - cur->rho[drop];
        int n = 0;
        for (int i = 0; i < N; i++)
            if (i != drop) rho[n++] = cur->rho[i] / z;
        char *spec = rho_list(rho, n);
        double *P = NULL;
        if (S > 0) {  /* own points 0..N-1, shared N..M-1: the row and the own point of drop go */
            P = nc_malloc(sizeof(double) * (size_t)n * (M - 1));
            int rr = 0;
            for (int i = 0; i < N; i++) {
                if (i == drop) continue;
                int cc = 0;
                for (int x = 0; x < M; x++)
                    if (x != drop) P[(size_t)rr * (M - 1) + cc++] = cur->P[(size_t)i * M + x];
                rr++;
            }
        }
        explore_set_instance(c, r, "shrunk", n, spec, cur->R, cur->loss, S, P, M - 1, name);
        free(spec); free(rho); free(P);
        return 1;
    }
    t -= N;
    if (t == 0) {  /* a disjoint support */
        if (S == 0) return -1;
        if (cur->M != N && S < 0) return -1;  /* the file's points are not one per class */
        explore_set_instance(c, r, "shrunk", N, cur->rho_spec, cur->R, cur->loss, 0, NULL, N, name);
        return 1;
    }
    if (t == 1) {  /* one shared point fewer: its mass goes to each class's own point */
        if (S < 2) return -1;
        double *P = nc_malloc(sizeof(double) * (size_t)N * (M - 1));
        for (int i = 0; i < N; i++) {
            for (int x = 0; x < M - 1; x++) P[(size_t)i * (M - 1) + x] = cur->P[(size_t)i * M + x];
            double v = P[(size_t)i * (M - 1) + i] + cur->P[(size_t)i * M + M - 1];
            char b[40];
            snprintf(b, sizeof b, "%.12g", v);
            P[(size_t)i * (M - 1) + i] = strtod(b, NULL);
        }
        explore_set_instance(c, r, "shrunk", N, cur->rho_spec, cur->R, cur->loss, S - 1, P, M - 1, name);
        free(P);
        return 1;
    }
    if (t == 2) {  /* R = 1 */
        if (cur->R == 1.0) return -1;
        explore_set_instance(c, r, "shrunk", N, cur->rho_spec, 1.0, cur->loss, S, cur->P, M, name);
        return 1;
    }
    if (t >= 3 && t <= 5) {  /* the prior to 1, 2, 3 decimals */
        if (!strchr(cur->rho_spec, ',')) return -1;
        char *spec = rho_rounded(cur->rho, N, t - 2);
        if (!spec || strcmp(spec, cur->rho_spec) == 0) { free(spec); return -1; }
        explore_set_instance(c, r, "shrunk", N, spec, cur->R, cur->loss, S, cur->P, M, name);
        free(spec);
        return 1;
    }
    return 0;
}

static void record_copy(ExploreRecord *dst, const ExploreRecord *src) {
    *dst = *src;
    dst->rho = nc_malloc(sizeof(double) * src->N);
    memcpy(dst->rho, src->rho, sizeof(double) * src->N);
    dst->rho_spec = nc_strdup(src->rho_spec);
    dst->command = nc_strdup(src->command);
    dst->P = NULL;
    dst->support_file = src->support_file ? nc_strdup(src->support_file) : NULL;
    if (src->P) {
        dst->P = nc_malloc(sizeof(double) * src->N * src->M);
        memcpy(dst->P, src->P, sizeof(double) * src->N * src->M);
    }
    dst->k = nc_malloc(sizeof(long) * src->nk);
    memcpy(dst->k, src->k, sizeof(long) * src->nk);
    for (int m = 0; m < EXPLORE_METRICS; m++) {
        dst->curve[m] = nc_malloc(sizeof(double) * src->nk);
        dst->spread[m] = nc_malloc(sizeof(double) * src->nk);
        memcpy(dst->curve[m], src->curve[m], sizeof(double) * src->nk);
        memcpy(dst->spread[m], src->spread[m], sizeof(double) * src->nk);
    }
}

int explore_shrink(const ExploreConfig *c, const ExploreRecord *from, int m, int max_evals, ExploreRecord *out,
                   NcError *err) {
    ExploreRecord cur;
    record_copy(&cur, from);
    char name[64];
    snprintf(name, sizeof name, "shrunk-%s", explore_metric_name[m]);
    int evals = 0, moved = 1, changed = 0;
    while (moved && evals < max_evals) {
        moved = 0;
        for (int t = 0; evals < max_evals; t++) {
            ExploreRecord r;
            int k = candidate(c, &cur, t, name, &r);
            if (k == 0) break;
            if (k < 0) continue;
            evals++;
            int rc = explore_evaluate(c, &r, err);
            if (rc) { explore_record_free(&r); explore_record_free(&cur); return rc; }
            if (r.certified && r.rise[m] > 0) {
                explore_record_free(&cur);
                cur = r;
                moved = changed = 1;
                break;
            }
            explore_record_free(&r);
        }
    }
    if (changed && cur.support_file) {
        int rc = explore_write_support(&cur, err);
        if (rc) { explore_record_free(&cur); return rc; }
    }
    *out = cur;
    return NC_OK;
}
