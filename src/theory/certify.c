// certify.c -- a rigorous bound on L(G) - L* from convex duality, and checks of user Gram matrices.
//
// With C = dL/dG at G and any lambda >= 0 such that Z = C + Diag(lambda) is PSD, convexity gives
// for every feasible G' (PSD, G'_xx <= R^2):
//   L(G') >= L(G) + <C, G' - G> = L(G) - <C, G> + <Z, G'> - sum_x lambda_x G'_xx
//         >= L(G) - (<C, G> + R^2 sum_x lambda_x),
// so gap = <C, G> + R^2 sum lambda bounds L(G) - L*. lambda starts from stationarity,
// lambda_x = -(C G)_xx / G_xx (rows on the sphere: (C F)_x = -lambda_x F_x), and is shifted by
// the most negative eigenvalue of Z.
#include "ncelab/theory.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int theory_min_eig(const double *A, int n, double *lmin) {
    /* dsyevr's w needs n slots even when one eigenvalue is asked for */
    double *a = nc_malloc(sizeof(double) * n * n), *w = nc_malloc(sizeof(double) * n), z[1];
    memcpy(a, A, sizeof(double) * n * n);
    lapack_int found = 0, isuppz[2];
    lapack_int info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'N', 'I', 'U', n, a, n, 0.0, 0.0, 1, 1,
                                     0.0, &found, w, z, 1, isuppz);
    *lmin = w[0];
    free(a);
    free(w);
    return info != 0 || found != 1 ? NC_ENUM : NC_OK;
}

int theory_certify(const TheoryModel *m, long k, const double *G, TheoryCert *cert, NcError *err) {
    int M = m->M;
    double R2 = m->R * m->R;
    double *C = nc_malloc(sizeof(double) * M * M), *CG = nc_malloc(sizeof(double) * M * M);
    double *lam = nc_malloc(sizeof(double) * M);
    double L = theory_loss(m, k, G, C);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, M, M, 1.0, C, M, G, M, 0.0, CG, M);
    double inner = 0.0, kkt = 0.0;
    for (int x = 0; x < M; x++) {
        double gxx = G[(size_t)x * M + x], cgxx = CG[(size_t)x * M + x];
        inner += cgxx;
        lam[x] = gxx > 1e-14 * R2 ? fmax(0.0, -cgxx / gxx) : 0.0;
        /* |(C F)_x + lambda_x F_x|^2 = (C G C)_xx + 2 lambda (C G)_xx + lambda^2 G_xx */
        double cgc = 0.0;
        for (int j = 0; j < M; j++) cgc += CG[(size_t)x * M + j] * C[(size_t)x * M + j];
        double r2 = cgc + 2.0 * lam[x] * cgxx + lam[x] * lam[x] * gxx;
        double r = sqrt(fmax(0.0, r2)) + lam[x] * fabs(R2 - gxx);
        if (r > kkt) kkt = r;
    }
    for (int x = 0; x < M; x++) C[(size_t)x * M + x] += lam[x];  /* C is now Z */
    double mu;
    int rc = theory_min_eig(C, M, &mu);
    if (rc == NC_OK) {
        double shift = mu < 0 ? -mu : 0.0, suml = 0.0;
        for (int x = 0; x < M; x++) suml += lam[x] + shift;
        cert->gap = inner + R2 * suml;
        cert->min_eig = mu;
        cert->kkt_residual = kkt;
        cert->optimal = cert->gap <= 1e-9 * fmax(1.0, L);
    } else {
        rc = nc_fail(err, NC_ENUM, "certificate: the eigenvalue solver failed (M = %d)", M);
    }
    free(C); free(CG); free(lam);
    return rc;
}

int theory_check_gram(const TheoryModel *m, const double *G, const char *what, NcError *err) {
    int M = m->M;
    double amax = 0.0;
    for (int i = 0; i < M * M; i++) {
        if (!isfinite(G[i])) return nc_fail(err, NC_EFILE, "%s: entry (%d,%d) is not finite", what, i / M + 1, i % M + 1);
        amax = fmax(amax, fabs(G[i]));
    }
    for (int i = 0; i < M; i++)
        for (int j = i + 1; j < M; j++)
            if (fabs(G[i * M + j] - G[j * M + i]) > 1e-9 * fmax(1.0, amax))
                return nc_fail(err, NC_EFILE, "%s: not symmetric: entry (%d,%d) = %.12g but (%d,%d) = %.12g",
                               what, i + 1, j + 1, G[i * M + j], j + 1, i + 1, G[j * M + i]);
    double R2 = m->R * m->R;
    for (int i = 0; i < M; i++)
        if (G[i * M + i] > R2 * (1 + 1e-9))
            return nc_fail(err, NC_EFILE, "%s: diagonal entry %d is %.12g > R^2 = %.12g (norm bound)",
                           what, i + 1, G[i * M + i], R2);
    double mu;
    if (theory_min_eig(G, M, &mu) != NC_OK)
        return nc_fail(err, NC_EFILE, "%s: the eigenvalue solver failed", what);
    if (mu < -1e-9 * fmax(1.0, amax))
        return nc_fail(err, NC_EFILE, "%s: not positive semidefinite (smallest eigenvalue %.6g)", what, mu);
    return NC_OK;
}
