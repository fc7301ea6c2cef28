// test_nn_first_grad.c -- the first convolution's batch-norm statistics and weight gradient
// through its fused batch norm, ReLU and max pool (first_grad.c) against the chain they replace:
// bn_relu_pool.c's statistics and sums over the convolution's output, its input gradient, then
// the plain-loop convolution's weight gradient (conv2d.c); and the moments G and S against sums
// in double over explicit patches. Prints the worst errors.
#include "blocked_util.h"
#include "check.h"
#include "ncelab/layers.h"
#include "ncelab/rng.h"
#include "../src/nn/bn_relu_pool.h"
#include "../src/nn/first_grad.h"

#include <omp.h>
#include <string.h>

static Rng rng;

/* the input of output pixel (y, x) at patch entry j = (ci, a, b), zero outside the image */
static double patch(const float *img, int h, int w, int y, int x, int j) {
    int ci = j / 9, a = j / 3 % 3, b = j % 3, sy = y + a - 1, sx = x + b - 1;
    return sy < 0 || sy >= h || sx < 0 || sx >= w ? 0.0 : img[((size_t)ci * h + sy) * w + sx];
}

static void one_shape(int n, int c, int k, int h, int w) {
    int hw = h * w, oh = h / 2, ow = w / 2, K = 9 * c;
    size_t nx = (size_t)n * c * hw, ny = (size_t)n * k * hw, np = (size_t)n * k * oh * ow, nw = (size_t)k * K;
    float *x = malloc(sizeof(float) * nx), *wt = malloc(sizeof(float) * nw), *y = malloc(sizeof(float) * ny);
    float *yb = malloc(sizeof(float) * ny), *pooled = malloc(sizeof(float) * np), *dy = malloc(sizeof(float) * np);
    float *dyb = malloc(sizeof(float) * np), *dxb = malloc(sizeof(float) * ny), *dx = malloc(sizeof(float) * ny);
    float *gamma = malloc(sizeof(float) * k), *beta = malloc(sizeof(float) * k), *mean = malloc(sizeof(float) * k);
    float *var = malloc(sizeof(float) * k), *dg = malloc(sizeof(float) * k), *db = malloc(sizeof(float) * k);
    float *dw_ref = calloc(nw, sizeof(float)), *dw = malloc(sizeof(float) * nw), *before = malloc(sizeof(float) * nw);
    uint8_t *idx = malloc(np);
    double *scr = malloc(sizeof(double) * bnp_scratch_doubles(k)), *sdy = malloc(sizeof(double) * k);
    double *sdyx = malloc(sizeof(double) * k);
    /* images away from zero mean, filters of either sign, a spread of gammas */
    for (size_t i = 0; i < nx; i++) x[i] = (float)(0.4 + rng_normal(&rng));
    for (size_t i = 0; i < nw; i++) wt[i] = (float)(0.3 * rng_normal(&rng));
    for (int o = 0; o < k; o++) { gamma[o] = (float)(1.0 + 0.4 * rng_normal(&rng)); beta[o] = (float)(0.2 * rng_normal(&rng)); }
    for (size_t i = 0; i < np; i++) dy[i] = (float)rng_normal(&rng);
    ConvShape cs = {n, c, h, w, k, 3, 1, 1, h, w};
    conv2d_forward(y, x, wt, NULL, &cs);
    to_blocked(yb, y, n, k, hw);
    to_blocked(dyb, dy, n, k, oh * ow);
    bnp_stats(mean, var, yb, n, k, h, w, scr);
    FirstGrad fg;
    CHECK(fg_init(&fg, n, c, k, h, w) == 0, "n=%d c=%d k=%d %dx%d: planned", n, c, k, h, w);
    /* the statistics from the moments */
    double *s1 = malloc(sizeof(double) * k), *s2 = malloc(sizeof(double) * k), em = 0.0, ev = 0.0, mm = 0.0, vm = 0.0;
    fg_gram(&fg, x);
    fg_stats(&fg, wt, s1, s2);
    for (int o = 0; o < k; o++) {
        double mu = s1[o] / ((double)n * hw), v = s2[o] / ((double)n * hw) - mu * mu;
        em = fmax(em, fabs(mu - mean[o]));
        ev = fmax(ev, fabs(v - var[o]));
        mm = fmax(mm, fabs(mean[o]));
        vm = fmax(vm, fabs(var[o]));
    }
    CHECK(em / mm < 1e-5 && ev / vm < 1e-5, "batch mean from the moments: worst %.1e of the largest, variance %.1e",
          em / mm, ev / vm);
    bnp_forward(pooled, idx, fg.xk, yb, mean, var, gamma, beta, 1e-5f, n, k, h, w);
    /* the forward in one pass from the input: the same pooled values, positions and kept maxima
       but where rounding decides between two window values within 1e-5 of each other */
    if (fg_forward_supported(&fg)) {
        float *y2 = malloc(sizeof(float) * np), *xk_ref = malloc(sizeof(float) * np);
        uint8_t *idx2 = malloc(np);
        memcpy(xk_ref, fg.xk, sizeof(float) * np);
        fg_forward(&fg, y2, idx2, 1, x, wt, mean, var, gamma, beta, 1e-5f);
        size_t differ = 0;
        double ex = 0.0, xm = 0.0;
        for (size_t e = 0; e < np; e++) {
            if (idx2[e] != idx[e]) { differ++; continue; }
            ex = fmax(ex, fabs(fg.xk[e] - xk_ref[e]));
            xm = fmax(xm, fabs(xk_ref[e]));
        }
        double ey = worst_rel(y2, pooled, np);
        CHECK(ey < 1e-5 && ex / xm < 1e-5 && differ <= np / 1000, "forward in one pass: pooled values worst %.1e of the "
              "largest, kept maxima %.1e, %zu of %zu window positions differ", ey, ex / xm, differ, np);
        memcpy(fg.xk, xk_ref, sizeof(float) * np);
        free(y2); free(xk_ref); free(idx2);
    }
    /* the reference: the input gradient, then the convolution's weight gradient */
    bnp_backward(dxb, dg, db, dyb, idx, yb, NULL, mean, var, gamma, 1e-5f, n, k, h, w, scr);
    from_blocked(dx, dxb, n, k, hw);
    conv2d_backward(NULL, dw_ref, NULL, dx, x, wt, &cs);
    /* first_grad.c, adding to what dw holds */
    for (size_t i = 0; i < nw; i++) before[i] = dw[i] = (float)rng_normal(&rng);
    bnp_backward_sums(sdy, sdyx, dyb, idx, yb, NULL, mean, var, 1e-5f, n, k, h, w, scr);
    fg_moments(&fg, x, dyb, idx, mean, var, 1e-5f);
    double e1 = 0.0, e2 = 0.0, m1 = 0.0, m2 = 0.0;
    for (int o = 0; o < k; o++) {
        e1 = fmax(e1, fabs(fg.sdy[o] - sdy[o]));
        e2 = fmax(e2, fabs(fg.sdyx[o] - sdyx[o]));
        m1 = fmax(m1, fabs(sdy[o]));
        m2 = fmax(m2, fabs(sdyx[o]));
    }
    CHECK(e1 / m1 < 1e-6 && e2 / m2 < 1e-6, "the two sums from the kept maxima: worst %.1e and %.1e of the largest",
          e1 / m1, e2 / m2);
    fg_weight_grad(&fg, dw, wt, mean, var, gamma, 1e-5f, fg.sdy, fg.sdyx, (double)n * hw);
    for (size_t i = 0; i < nw; i++) dw[i] -= before[i];
    /* the moments against double sums over explicit patches */
    double eg = 0.0, es = 0.0, gmax = 0.0, smax = 0.0;
    for (int a = 0; a < K; a++) {
        double s = 0.0;
        for (int i = 0; i < n; i++)
            for (int p = 0; p < hw; p++) s += patch(x + (size_t)i * c * hw, h, w, p / w, p % w, a);
        smax = fmax(smax, fabs(s));
        es = fmax(es, fabs(s - fg.S[a]));
        for (int b = 0; b < K; b++) {
            double t = 0.0;
            for (int i = 0; i < n; i++)
                for (int p = 0; p < hw; p++) {
                    const float *img = x + (size_t)i * c * hw;
                    t += patch(img, h, w, p / w, p % w, a) * patch(img, h, w, p / w, p % w, b);
                }
            gmax = fmax(gmax, fabs(t));
            eg = fmax(eg, fabs(t - fg.G[a * FG_J + b]));
        }
    }
    double ew = worst_rel(dw, dw_ref, nw);
    CHECK(eg / gmax < 1e-6 && es / smax < 1e-6, "n=%d c=%d k=%d %dx%d: moments G worst %.1e, S %.1e of the largest",
          n, c, k, h, w, eg / gmax, es / smax);
    CHECK(ew < 5e-6, "weight gradient: worst %.1e of the largest against the input gradient's chain", ew);
    /* the same bits a second time */
    float *dw2 = malloc(sizeof(float) * nw);
    for (size_t i = 0; i < nw; i++) dw[i] += before[i];
    memcpy(dw2, dw, sizeof(float) * nw);
    memcpy(dw, before, sizeof(float) * nw);
    fg_gram(&fg, x);
    fg_moments(&fg, x, dyb, idx, mean, var, 1e-5f);
    fg_weight_grad(&fg, dw, wt, mean, var, gamma, 1e-5f, fg.sdy, fg.sdyx, (double)n * hw);
    CHECK(memcmp(dw, dw2, sizeof(float) * nw) == 0, "a second run gives the same bits");
    fg_free(&fg);
    free(x); free(wt); free(y); free(yb); free(pooled); free(dy); free(dyb); free(dxb); free(dx); free(gamma);
    free(beta); free(mean); free(var); free(dg); free(db); free(dw_ref); free(dw); free(before); free(idx); free(scr);
    free(sdy); free(sdyx); free(dw2); free(s1); free(s2);
}

int main(void) {
    rng_init(&rng, 23, 0, 0, 0);
    if (!fg_supported(3, 32, 32, 32)) {
        printf("SKIP  this CPU has no AVX2/FMA: the kernels are not used\n");
        return check_done();
    }
    CHECK(!fg_supported(4, 32, 8, 8) && !fg_supported(3, 12, 8, 8) && !fg_supported(3, 8, 7, 8) &&
          !fg_supported(3, 8, 2, 2), "more than 3 channels, filters not a multiple of 8, odd sides or h w not a "
          "multiple of 8 are refused");
    one_shape(4, 3, 32, 32, 32);
    one_shape(3, 1, 8, 4, 6);
    one_shape(5, 2, 16, 2, 4);
    one_shape(2, 3, 64, 8, 16);
    one_shape(3, 3, 16, 6, 24);   /* G's rows: 16 columns and 8 more */
    one_shape(2, 2, 16, 2, 8);    /* two rows: the row pairs two apart are empty */
    return check_done();
}
