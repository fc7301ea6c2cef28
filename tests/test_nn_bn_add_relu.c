// test_nn_bn_add_relu.c -- the fused batch norm + residual add + ReLU of bn_add_relu.c against the
// chain of plain-loop layers (batchnorm.c, an add, relu.c) on nChw8c and nChw16c: forward with
// the batch's statistics and with given ones, and the gradients of the input, of the residual,
// of gamma and of beta. Prints the worst errors.
#include "blocked_util.h"
#include "check.h"
#include "ncelab/layers.h"
#include "ncelab/rng.h"
#include "../src/nn/bn_add_relu.h"

#include <stdlib.h>
#include <string.h>

static Rng rng;

static float *vec(size_t n) { return calloc(n, sizeof(float)); }

static void one_shape(int n, int c, int h, int w, int B) {
    int hw = h * w;
    size_t nx = (size_t)n * c * hw;
    float *x = vec(nx), *r = vec(nx), *dy = vec(nx), *gamma = vec(c), *beta = vec(c);
    float *bn = vec(nx), *sum = vec(nx), *y_ref = vec(nx), *dsum = vec(nx), *dx_ref = vec(nx);
    float *mean = vec(c), *invstd = vec(c), *var = vec(c), *dg_ref = vec(c), *db_ref = vec(c);
    float *xb = vec(nx), *rb = vec(nx), *dyb = vec(nx), *yb = vec(nx), *dxb = vec(nx), *drb = vec(nx);
    float *y = vec(nx), *dx = vec(nx), *dr = vec(nx), *dg = vec(c), *db = vec(c);
    double *sdy = malloc(sizeof(double) * c), *sdyx = malloc(sizeof(double) * c);
    uint8_t *mask = malloc(nx / 8 + 1);
    /* a mean far from zero per channel, and a residual of the same size: about half the sums are
       negative, so the ReLU cuts */
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++) {
                size_t o = ((size_t)i * c + ch) * hw + p;
                x[o] = (float)(2.0 * ch - 10.0 + rng_normal(&rng));
                r[o] = (float)rng_normal(&rng);
            }
    for (int ch = 0; ch < c; ch++) { gamma[ch] = (float)(1.0 + 0.3 * rng_normal(&rng)); beta[ch] = (float)(0.2 * rng_normal(&rng)); }
    for (size_t i = 0; i < nx; i++) dy[i] = (float)rng_normal(&rng);
    batchnorm_forward_train(bn, mean, invstd, NULL, NULL, x, gamma, beta, n, c, hw, 1e-5f, 0.1f);
    for (size_t i = 0; i < nx; i++) sum[i] = bn[i] + r[i];
    relu_forward(y_ref, sum, (long)nx);
    relu_backward(dsum, dy, y_ref, (long)nx);   /* the gradient of the sum: of r, and of the bn output */
    batchnorm_backward(dx_ref, dg_ref, db_ref, dsum, x, mean, invstd, gamma, n, c, hw);
    for (int ch = 0; ch < c; ch++) var[ch] = 1.0f / (invstd[ch] * invstd[ch]) - 1e-5f;
    to_blocked_b(xb, x, n, c, hw, B);
    to_blocked_b(rb, r, n, c, hw, B);
    to_blocked_b(dyb, dy, n, c, hw, B);
    memset(mask, 0xa5, nx / 8 + 1);
    bar_forward(yb, mask, xb, rb, mean, var, gamma, beta, 1e-5f, B, n, c, hw);
    from_blocked_b(y, yb, n, c, hw, B);
    size_t bad = 0;  /* the mask: bit e % 8 of byte e / 8 set exactly where the output is positive */
    for (size_t e = 0; e < nx; e++) bad += ((mask[e / 8] >> (e % 8)) & 1) != (yb[e] > 0);
    CHECK(bad == 0 && mask[nx / 8] == 0xa5, "n=%d c=%d %dx%d, nChw%dc: the ReLU's mask, bit for bit (%zu wrong)", n, c,
          h, w, B, bad);
    bar_backward_sums(sdy, sdyx, dyb, mask, xb, mean, var, 1e-5f, B, n, c, hw);
    for (int ch = 0; ch < c; ch++) { db[ch] = (float)sdy[ch]; dg[ch] = (float)sdyx[ch]; }
    memset(dxb, 0x7f, sizeof(float) * nx);  /* every element must be written */
    memset(drb, 0x7f, sizeof(float) * nx);
    bar_backward_dx(dxb, drb, dyb, mask, xb, mean, var, gamma, 1e-5f, sdy, sdyx, (double)n * hw, B, n, c, hw);
    from_blocked_b(dx, dxb, n, c, hw, B);
    from_blocked_b(dr, drb, n, c, hw, B);
    double ey = worst_rel(y, y_ref, nx), ex = worst_rel(dx, dx_ref, nx), er = worst_rel(dr, dsum, nx);
    double eg = worst_rel(dg, dg_ref, c), eb = worst_rel(db, db_ref, c);
    CHECK(ey < 1e-5, "n=%d c=%d %dx%d, nChw%dc: forward (batch statistics) worst %.1e of the largest output", n, c, h, w,
          B, ey);
    CHECK(ex < 1e-4, "  input gradient worst %.1e of the largest", ex);
    CHECK(er == 0, "  residual gradient: the ReLU's, exactly (worst %.1e)", er);
    CHECK(eg < 1e-4 && eb < 1e-5, "  gamma gradient worst %.1e, beta gradient %.1e", eg, eb);
    /* evaluation mode: given statistics */
    for (int ch = 0; ch < c; ch++) { mean[ch] = (float)(2.0 * ch - 9.5); var[ch] = 2.0f; }
    batchnorm_forward_eval(bn, x, gamma, beta, mean, var, n, c, hw, 1e-5f);
    for (size_t i = 0; i < nx; i++) sum[i] = bn[i] + r[i];
    relu_forward(y_ref, sum, (long)nx);
    bar_forward(yb, NULL, xb, rb, mean, var, gamma, beta, 1e-5f, B, n, c, hw);
    from_blocked_b(y, yb, n, c, hw, B);
    ey = worst_rel(y, y_ref, nx);
    CHECK(ey < 1e-5, "  forward (given statistics) worst %.1e", ey);
    free(x); free(r); free(dy); free(gamma); free(beta); free(bn); free(sum); free(y_ref); free(dsum); free(dx_ref);
    free(mean); free(invstd); free(var); free(dg_ref); free(db_ref); free(xb); free(rb); free(dyb); free(yb);
    free(dxb); free(drb); free(y); free(dx); free(dr); free(dg); free(db); free(sdy); free(sdyx);
    free(mask);
}

int main(void) {
    rng_init(&rng, 13, 0, 0, 0);
    if (!bar_supported(16, 8)) {
        printf("SKIP  this CPU has no AVX2/FMA: the fused kernels are not used\n");
        return check_done();
    }
    CHECK(!bar_supported(12, 8) && !bar_supported(16, 4) && !bar_supported(24, 16),
          "blocks other than 8 and 16, and channels not a multiple of the block, are refused");
    one_shape(3, 16, 6, 10, 8);
    one_shape(3, 16, 6, 10, 16);
    one_shape(4, 64, 8, 8, 8);
    one_shape(2, 32, 7, 7, 16);
    one_shape(1, 8, 1, 1, 8);
    return check_done();
}
