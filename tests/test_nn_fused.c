// test_nn_fused.c -- the fused batch norm + ReLU + 2x2 max pool (or global average pool) of
// bn_relu_pool.c against the chain of plain-loop layers (batchnorm.c, relu.c, maxpool.c,
// avgpool.c): statistics, forward in training and evaluation mode, and the gradients of the input,
// gamma and beta; the backward's two steps against the one-call form, and the sums on 1 and 3
// threads against the default count, bit for bit. Prints the worst errors.
#include "blocked_util.h"
#include "check.h"
#include "ncelab/layers.h"
#include "ncelab/rng.h"
#include "../src/nn/bn_relu_pool.h"

#include <omp.h>
#include <string.h>

static Rng rng;

static void one_shape(int n, int c, int h, int w) {
    int hw = h * w, oh = h / 2, ow = w / 2;
    size_t nx = (size_t)n * c * hw, ny = (size_t)n * c * oh * ow;
    float *x = malloc(sizeof(float) * nx), *xb = malloc(sizeof(float) * nx), *gamma = malloc(sizeof(float) * c);
    float *beta = malloc(sizeof(float) * c), *dy = malloc(sizeof(float) * ny), *dyb = malloc(sizeof(float) * ny);
    float *bn = malloc(sizeof(float) * nx), *re = malloc(sizeof(float) * nx), *y_ref = malloc(sizeof(float) * ny);
    float *mean_ref = malloc(sizeof(float) * c), *invstd = malloc(sizeof(float) * c);
    float *dre = calloc(nx, sizeof(float)), *dbn = calloc(nx, sizeof(float)), *dx_ref = calloc(nx, sizeof(float));
    float *dg_ref = calloc(c, sizeof(float)), *db_ref = calloc(c, sizeof(float));
    float *mean = malloc(sizeof(float) * c), *var = malloc(sizeof(float) * c), *yb = malloc(sizeof(float) * ny);
    float *y = malloc(sizeof(float) * ny), *dxb = malloc(sizeof(float) * nx), *dx = malloc(sizeof(float) * nx);
    float *dg = malloc(sizeof(float) * c), *db = malloc(sizeof(float) * c), *var_ref = malloc(sizeof(float) * c);
    uint8_t *idx = malloc(ny);
    double *scr = malloc(sizeof(double) * bnp_scratch_doubles(c));
    /* a mean far from zero per channel (the statistics' shift), unit-ish spread */
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++) x[((size_t)i * c + ch) * hw + p] = (float)(3.0 * ch - 20.0 + rng_normal(&rng));
    for (int ch = 0; ch < c; ch++) { gamma[ch] = (float)(1.0 + 0.3 * rng_normal(&rng)); beta[ch] = (float)(0.2 * rng_normal(&rng)); }
    for (size_t i = 0; i < ny; i++) dy[i] = (float)rng_normal(&rng);
    batchnorm_forward_train(bn, mean_ref, invstd, NULL, NULL, x, gamma, beta, n, c, hw, 1e-5f, 0.1f);
    relu_forward(re, bn, (long)nx);
    maxpool2d_forward(y_ref, re, n, c, h, w, 2, 2);
    maxpool2d_backward(dre, dy, re, y_ref, n, c, h, w, 2, 2);
    relu_backward(dbn, dre, re, (long)nx);
    batchnorm_backward(dx_ref, dg_ref, db_ref, dbn, x, mean_ref, invstd, gamma, n, c, hw);
    for (int ch = 0; ch < c; ch++) var_ref[ch] = 1.0f / (invstd[ch] * invstd[ch]) - 1e-5f;
    to_blocked(xb, x, n, c, hw);
    to_blocked(dyb, dy, n, c, oh * ow);
    bnp_stats(mean, var, xb, n, c, h, w, scr);
    bnp_forward(yb, idx, NULL, xb, mean, var, gamma, beta, 1e-5f, n, c, h, w);
    from_blocked(y, yb, n, c, oh * ow);
    bnp_backward(dxb, dg, db, dyb, idx, xb, NULL, mean, var, gamma, 1e-5f, n, c, h, w, scr);
    from_blocked(dx, dxb, n, c, hw);
    {   /* the sums from the inputs kept at the maxima: the bits of the sums picked from x */
        float *xk = malloc(sizeof(float) * ny), *yk = malloc(sizeof(float) * ny), *dxk = malloc(sizeof(float) * nx);
        float dgk[64], dbk[64];
        uint8_t *idk = malloc(ny);
        bnp_forward(yk, idk, xk, xb, mean, var, gamma, beta, 1e-5f, n, c, h, w);
        bnp_backward(dxk, dgk, dbk, dyb, idk, xb, xk, mean, var, gamma, 1e-5f, n, c, h, w, scr);
        CHECK(memcmp(yk, yb, sizeof(float) * ny) == 0 && memcmp(idk, idx, ny) == 0 &&
              memcmp(dxk, dxb, sizeof(float) * nx) == 0 && memcmp(dgk, dg, sizeof(float) * c) == 0 &&
              memcmp(dbk, db, sizeof(float) * c) == 0,
              "backward with the inputs kept at the maxima: the same bits (output, positions, dx, dgamma, dbeta)");
        free(xk); free(yk); free(dxk); free(idk);
    }
    {   /* the sums in fixed parts of the batch: 1 and 3 threads give the bits of the default count */
        float m2[1024], v2[1024];
        float *dx2 = malloc(sizeof(float) * nx), dg2[1024], db2[1024];
        int was = omp_get_max_threads(), same = 1;
        for (int t = 1; t <= 3; t += 2) {
            omp_set_num_threads(t);
            bnp_stats(m2, v2, xb, n, c, h, w, scr);
            bnp_backward(dx2, dg2, db2, dyb, idx, xb, NULL, mean, var, gamma, 1e-5f, n, c, h, w, scr);
            same &= !memcmp(m2, mean, sizeof(float) * c) && !memcmp(v2, var, sizeof(float) * c) &&
                    !memcmp(dx2, dxb, sizeof(float) * nx) && !memcmp(dg2, dg, sizeof(float) * c) &&
                    !memcmp(db2, db, sizeof(float) * c);
        }
        omp_set_num_threads(was);
        CHECK(same, "statistics and backward on 1 and 3 threads: the bits of %d threads", was);
        free(dx2);
    }
    double em = worst_rel(mean, mean_ref, c), ev = worst_rel(var, var_ref, c), ey = worst_rel(y, y_ref, ny);
    double ex = worst_rel(dx, dx_ref, nx), eg = worst_rel(dg, dg_ref, c), eb = worst_rel(db, db_ref, c);
    CHECK(em < 1e-6 && ev < 1e-4, "n=%d c=%d %dx%d: batch mean worst %.1e, variance %.1e", n, c, h, w, em, ev);
    CHECK(ey < 1e-5, "forward (training statistics): worst %.1e of the largest output", ey);
    CHECK(ex < 1e-4, "input gradient: worst %.1e of the largest", ex);
    CHECK(eg < 1e-4 && eb < 1e-5, "gamma gradient worst %.1e, beta gradient %.1e", eg, eb);
    /* evaluation mode: given statistics */
    for (int ch = 0; ch < c; ch++) { mean[ch] = (float)(3.0 * ch - 19.5); var[ch] = 2.0f; invstd[ch] = 1.0f / sqrtf(2.0f + 1e-5f); }
    batchnorm_forward_eval(bn, x, gamma, beta, mean, var, n, c, hw, 1e-5f);
    relu_forward(re, bn, (long)nx);
    maxpool2d_forward(y_ref, re, n, c, h, w, 2, 2);
    bnp_forward(yb, idx, NULL, xb, mean, var, gamma, beta, 1e-5f, n, c, h, w);
    from_blocked(y, yb, n, c, oh * ow);
    CHECK((ey = worst_rel(y, y_ref, ny)) < 1e-5, "forward (given statistics): worst %.1e of the largest output", ey);
    free(x); free(xb); free(gamma); free(beta); free(dy); free(dyb); free(bn); free(re); free(y_ref);
    free(mean_ref); free(invstd); free(dre); free(dbn); free(dx_ref); free(dg_ref); free(db_ref); free(mean);
    free(var); free(yb); free(y); free(dxb); free(dx); free(dg); free(db); free(var_ref); free(idx); free(scr);
}

/* The global average pool: the same chain with gap_forward/backward, on odd sides too. */
static void one_gap(int n, int c, int h, int w) {
    int hw = h * w;
    size_t nx = (size_t)n * c * hw, ny = (size_t)n * c;
    float *x = malloc(sizeof(float) * nx), *xb = malloc(sizeof(float) * nx), *gamma = malloc(sizeof(float) * c);
    float *beta = malloc(sizeof(float) * c), *dy = malloc(sizeof(float) * ny);
    float *bn = malloc(sizeof(float) * nx), *re = malloc(sizeof(float) * nx), *y_ref = malloc(sizeof(float) * ny);
    float *mean_ref = malloc(sizeof(float) * c), *invstd = malloc(sizeof(float) * c);
    float *dre = calloc(nx, sizeof(float)), *dbn = calloc(nx, sizeof(float)), *dx_ref = calloc(nx, sizeof(float));
    float *dg_ref = calloc(c, sizeof(float)), *db_ref = calloc(c, sizeof(float)), *y = malloc(sizeof(float) * ny);
    float *mean = malloc(sizeof(float) * c), *var = malloc(sizeof(float) * c), *dxb = malloc(sizeof(float) * nx);
    float *dx = malloc(sizeof(float) * nx), *dx2 = malloc(sizeof(float) * nx), *dg = malloc(sizeof(float) * c);
    float *db = malloc(sizeof(float) * c);
    double *scr = malloc(sizeof(double) * bnp_scratch_doubles(c)), sdy[1024], sdx[1024];
    double *kept = malloc(sizeof(double) * 2 * ny);
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++) x[((size_t)i * c + ch) * hw + p] = (float)(ch % 5 - 2.0 + rng_normal(&rng));
    for (int ch = 0; ch < c; ch++) { gamma[ch] = (float)(1.0 + 0.3 * rng_normal(&rng)); beta[ch] = (float)(0.2 * rng_normal(&rng)); }
    for (size_t i = 0; i < ny; i++) dy[i] = (float)rng_normal(&rng);
    batchnorm_forward_train(bn, mean_ref, invstd, NULL, NULL, x, gamma, beta, n, c, hw, 1e-5f, 0.1f);
    relu_forward(re, bn, (long)nx);
    gap_forward(y_ref, re, n, c, hw);
    gap_backward(dre, dy, n, c, hw);
    relu_backward(dbn, dre, re, (long)nx);
    batchnorm_backward(dx_ref, dg_ref, db_ref, dbn, x, mean_ref, invstd, gamma, n, c, hw);
    to_blocked(xb, x, n, c, hw);
    bnp_stats(mean, var, xb, n, c, h, w, scr);
    bnp_gap_forward(y, kept, xb, mean, var, gamma, beta, 1e-5f, n, c, h, w);   /* (n, c): the same in both layouts */
    bnp_gap_backward(dxb, dg, db, dy, kept, xb, mean, var, gamma, beta, 1e-5f, n, c, h, w, scr);
    from_blocked(dx, dxb, n, c, hw);
    double ey = worst_rel(y, y_ref, ny), ex = worst_rel(dx, dx_ref, nx);
    double eg = worst_rel(dg, dg_ref, c), eb = worst_rel(db, db_ref, c);
    CHECK(ey < 1e-5, "n=%d c=%d %dx%d, global average pool: forward worst %.1e of the largest output", n, c, h, w, ey);
    CHECK(ex < 1e-4, "  input gradient: worst %.1e of the largest", ex);
    CHECK(eg < 1e-4 && eb < 1e-5, "  gamma gradient worst %.1e, beta gradient %.1e", eg, eb);
    /* (means near zero: x vs + vb with vs near 1 and vb near -mean rounds to about |mean| 6e-8, and
       a pre-activation that close to 0 would pass its ReLU on one side and not on the other) */
    /* the two steps (as synchronised training runs them) give the one call's bits */
    bnp_gap_backward_sums(sdy, sdx, dy, kept, var, 1e-5f, n, c, h, w, scr);
    bnp_gap_backward_dx(dx2, dy, xb, mean, var, gamma, beta, 1e-5f, sdy, sdx, (double)n * hw, n, c, h, w);
    CHECK(!memcmp(dx2, dxb, sizeof(float) * nx), "  backward in two steps: the same bits");
    /* evaluation mode: given statistics */
    for (int ch = 0; ch < c; ch++) { mean[ch] = (float)(ch % 5 - 1.5); var[ch] = 2.0f; }
    batchnorm_forward_eval(bn, x, gamma, beta, mean, var, n, c, hw, 1e-5f);
    relu_forward(re, bn, (long)nx);
    gap_forward(y_ref, re, n, c, hw);
    bnp_gap_forward(y, NULL, xb, mean, var, gamma, beta, 1e-5f, n, c, h, w);
    CHECK((ey = worst_rel(y, y_ref, ny)) < 1e-5, "  forward (given statistics): worst %.1e of the largest output", ey);
    free(x); free(xb); free(gamma); free(beta); free(dy); free(bn); free(re); free(y_ref); free(mean_ref);
    free(invstd); free(dre); free(dbn); free(dx_ref); free(dg_ref); free(db_ref); free(y); free(mean); free(var);
    free(dxb); free(dx); free(dx2); free(dg); free(db); free(scr); free(kept);
}

int main(void) {
    rng_init(&rng, 11, 0, 0, 0);
    if (!bnp_supported(8, 2, 2)) {
        printf("SKIP  this CPU has no AVX2/FMA: the fused kernels are not used\n");
        return check_done();
    }
    CHECK(!bnp_supported(12, 8, 8) && !bnp_supported(16, 7, 8), "channels not a multiple of 8 or odd sides are refused");
    one_shape(3, 16, 6, 10);
    one_shape(5, 32, 28, 28);
    one_shape(2, 8, 2, 2);
    one_gap(6, 128, 8, 8);   /* the convnet's last block */
    one_gap(3, 16, 7, 5);    /* odd sides */
    one_gap(2, 8, 1, 1);
    return check_done();
}
