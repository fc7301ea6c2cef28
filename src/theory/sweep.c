// sweep.c -- the optimum for a list of k, warm-starting each solve from the previous one.
#include "ncelab/theory.h"

#include <stdlib.h>
#include <string.h>

int theory_sweep(const TheoryModel *m, const long *ks, int nk, const TheorySolveOpts *o,
                 TheorySolution *out, TheoryProgress progress, void *ctx, NcError *err) {
    memset(out, 0, sizeof(TheorySolution) * nk);
    for (int i = 0; i < nk; i++) {
        int rc = theory_solve(m, ks[i], i > 0 ? out[i - 1].V : NULL, o, &out[i], err);
        if (rc) {
            for (int j = 0; j <= i; j++) theory_solution_free(&out[j]);
            return rc;
        }
        if (progress) progress(ctx, i + 1, nk);
    }
    return NC_OK;
}

void theory_support_banded(int N, int M, double eps, double **P) {
    int b = M / N;
    double *p = nc_malloc(sizeof(double) * N * M);
    for (int c = 0; c < N; c++)
        for (int x = 0; x < M; x++)
            p[(size_t)c * M + x] = x / b == c ? (1.0 - eps) / b : eps / (M - b);
    *P = p;
}
