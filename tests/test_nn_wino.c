// test_nn_wino.c -- the Winograd F(4x4, 3x3) convolution against the reference loops of
// conv2d.c: forward, backward data and backward weights on several shapes, including images
// whose sides are not multiples of the 4x4 tile, in the tiles and the global mode; the AVX2
// weight transform and the weight gradient's last step against their scalar references.
// The weight gradient in shared blocks, and in each part's chunks of tiles, against itself in
// other block sizes, and in the tiles mode on 1 and 3 threads, bit for bit.
// Prints the worst error of each comparison.
#define _POSIX_C_SOURCE 200809L
#include "blocked_util.h"
#include "check.h"
#include "ncelab/layers.h"
#include "ncelab/rng.h"
#include "../src/nn/conv_wino.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static Rng rng;

static void fill(float *v, size_t n) {
    for (size_t i = 0; i < n; i++) v[i] = (float)rng_normal(&rng);
}

/* The AVX2 weight transform of both passes against the scalar one, element by element. */
static void check_weights(WinoConv *wc, const float *wt) {
    size_t nu = wino_u_floats(wc);
    float *ref = malloc(sizeof(float) * nu), *save = wc->u;
    const char *names[2] = {"forward", "backward data"};
    for (int pass = WINO_FWD; pass <= WINO_BWD_DATA; pass++) {
        wc->u = ref;
        memset(ref, 0x7f, sizeof(float) * nu);     /* the padding between planes stays as it was */
        wino_weights_ref(wc, wt, (WinoPass)pass);
        wc->u = save;
        memset(wc->u, 0x7f, sizeof(float) * nu);  /* every element must be written */
        wino_weights(wc, wt, (WinoPass)pass);
        double e = worst_rel(wc->u, ref, nu);
        CHECK(e < 1e-6, "  weight transform (%s), AVX2 against scalar: worst error %.2e of the largest", names[pass], e);
    }
    free(ref);
}

/* NCHW <-> nChw8c */
/* The weight gradient sums every element over the tiles in order, one chain of FMAs (per part
   in the tiles mode): other block sizes give the bits of wc's. Shared blocks (env
   NCELAB_WINO_WTB) of 16 tiles and of 160 (a GEMM call of 128 tiles and one of 32); in the tiles
   mode each part's tiles (NCELAB_WINO_TBW) tb at a time with 4-row GEMMs, or 5 at a time with
   6-row ones. */
/* In the tiles mode the parts are fixed ranges of tiles, whichever thread sums them: 1 and 3
   threads give the bits of wc's. */
static void same_bits_any_threads(const WinoConv *wc, const float *xb, const float *dyb, const float *dw) {
    size_t nw = (size_t)wc->k * wc->c * 9;
    float *dw2 = malloc(sizeof(float) * nw);
    int was = omp_get_max_threads(), threads[2] = {1, 3};
    for (int i = 0; i < 2; i++) {
        WinoConv w2;
        omp_set_num_threads(threads[i]);
        int ok = wino_init(&w2, wc->n, wc->c, wc->k, wc->h, wc->w) == 0;
        if (ok) {
            float *scratch = malloc(sizeof(float) * wino_scratch_floats(&w2)), *wbuf = malloc(sizeof(float) * wino_wbuf_floats(&w2));
            wino_set_work(&w2, scratch, wbuf);
            wino_backward_weights(&w2, xb, dyb, dw2, 0);
            free(scratch); free(wbuf);
        }
        omp_set_num_threads(was);
        CHECK(ok && w2.nthr == threads[i] && memcmp(dw2, dw, sizeof(float) * nw) == 0, "  weight gradient on %d thread%s "
              "(%d parts of %ld tiles): the bits of %d threads (worst difference %.2e)", threads[i], threads[i] > 1 ? "s" : "",
              wc->wparts, wc->tiles, wc->nthr, ok ? worst_rel(dw2, dw, nw) : 0.0);
    }
    free(dw2);
}

static void same_bits_any_block(const WinoConv *wc, const float *xb, const float *dyb, const float *dw, const char *env) {
    size_t nw = (size_t)wc->k * wc->c * 9;
    float *dw2 = malloc(sizeof(float) * nw);
    char tb[16];
    snprintf(tb, sizeof tb, "%d", wc->tb);
    const char *shared[] = {"16", "160"}, *own[] = {tb, "5"}, **blocks = wc->wtb ? shared : own;
    for (int b = 0; b < 2; b++) {
        WinoConv w2;
        setenv(env, blocks[b], 1);
        int ok = wino_init(&w2, wc->n, wc->c, wc->k, wc->h, wc->w) == 0;
        unsetenv(env);
        if (!ok) { CHECK(0, "  set up with blocks of %s tiles", blocks[b]); continue; }
        float *scratch = malloc(sizeof(float) * wino_scratch_floats(&w2)), *wbuf = malloc(sizeof(float) * wino_wbuf_floats(&w2));
        wino_set_work(&w2, scratch, wbuf);
        wino_backward_weights(&w2, xb, dyb, dw2, 0);
        CHECK(memcmp(dw2, dw, sizeof(float) * nw) == 0, "  weight gradient in %s blocks of %d tiles (%ld tiles): the bits of "
              "blocks of %d (worst difference %.2e)", wc->wtb ? "shared" : "each part's", wc->wtb ? w2.wtb : w2.tbw,
              w2.tiles, wc->wtb ? wc->wtb : wc->tbw, worst_rel(dw2, dw, nw));
        free(scratch); free(wbuf);
    }
    free(dw2);
}

/* wino_forward_sums: the output of wino_forward bit for bit, and the sums of y - shift and
   (y - shift)^2 against sums in double over that output (y, plain); shift near the channel's
   mean (as a batch norm's running mean is) or 0. */
static void check_sums(WinoConv *wc, const float *xb, const float *yb, const float *y) {
    int k = wc->k;
    long m = (long)wc->n * wc->h * wc->w;
    size_t ny = (size_t)m * k;
    float *y2 = malloc(sizeof(float) * ny), *shift = malloc(sizeof(float) * k);
    double *s1 = malloc(sizeof(double) * k), *s2 = malloc(sizeof(double) * k);
    double *part = malloc(sizeof(double) * wino_sums_doubles(wc));
    for (int o = 0; o < k; o++) {  /* near the mean, or 0 for half the channels */
        double mu = 0.0;
        for (long p = 0; p < m; p++) mu += y[(size_t)(p / (wc->h * wc->w) * k + o) * wc->h * wc->w + p % (wc->h * wc->w)];
        shift[o] = o % 2 ? 0.0f : (float)(mu / m + 0.1);
    }
    memset(y2, 0x7f, sizeof(float) * ny);
    wino_forward_sums(wc, xb, y2, shift, s1, s2, part);
    CHECK(memcmp(y2, yb, sizeof(float) * ny) == 0, "  forward with the sums: the output of the forward, bit for bit");
    double e1 = 0.0, e2 = 0.0;
    for (int o = 0; o < k; o++) {
        double r1 = 0.0, r2 = 0.0, a1 = 0.0;
        for (long p = 0; p < m; p++) {
            double v = (double)y[(size_t)(p / (wc->h * wc->w) * k + o) * wc->h * wc->w + p % (wc->h * wc->w)] - shift[o];
            r1 += v; r2 += v * v; a1 += fabs(v);
        }
        e1 = fmax(e1, fabs(s1[o] - r1) / a1);
        e2 = fmax(e2, fabs(s2[o] - r2) / r2);
    }
    CHECK(e1 < 1e-6 && e2 < 1e-6, "  the sums of y - shift and its square: worst error %.1e of the sum of |y - shift|, "
          "%.1e of the sum of squares", e1, e2);
    free(y2); free(shift); free(s1); free(s2); free(part);
}

static void one_shape(int n, int c, int k, int h, int w) {
    ConvShape s = {n, c, h, w, k, 3, 1, 1, h, w};
    size_t nx = (size_t)n * c * h * w, ny = (size_t)n * k * h * w, nw = (size_t)k * c * 9;
    float *x = malloc(sizeof(float) * nx), *wt = malloc(sizeof(float) * nw), *dy = malloc(sizeof(float) * ny);
    float *y_ref = calloc(ny, sizeof(float)), *dx_ref = calloc(nx, sizeof(float)), *dw_ref = calloc(nw, sizeof(float));
    float *xb = malloc(sizeof(float) * nx), *dyb = malloc(sizeof(float) * ny), *yb = NULL, *dxb = NULL;
    float *y = malloc(sizeof(float) * ny), *dx = malloc(sizeof(float) * nx);
    /* 32-byte aligned, as the executor's arena is: the outputs the layer streams (non-temporal
       stores, above NCELAB_WINO_STREAM_MB) need it */
    if (posix_memalign((void **)&yb, 64, sizeof(float) * ny) || posix_memalign((void **)&dxb, 64, sizeof(float) * nx))
        abort();
    float *dw = malloc(sizeof(float) * nw);
    fill(x, nx); fill(wt, nw); fill(dy, ny);
    conv2d_forward(y_ref, x, wt, NULL, &s);
    conv2d_backward(dx_ref, dw_ref, NULL, dy, x, wt, &s);
    WinoConv wc;
    CHECK(wino_init(&wc, n, c, k, h, w) == 0, "winograd set up for n=%d c=%d k=%d %dx%d (%s mode%s%s)", n, c, k, h, w,
          wc.global ? "global" : wc.wtb ? "tiles, weight gradient in shared blocks" : "tiles",
          wc.stream_fwd ? ", outputs by non-temporal stores" : "", wc.stream_u ? ", filters by non-temporal stores" : "");
    if (wc.n) {
        float *scratch = malloc(sizeof(float) * wino_scratch_floats(&wc)), *wbuf = NULL;
        if (posix_memalign((void **)&wbuf, 64, sizeof(float) * wino_wbuf_floats(&wc))) abort();
        wino_set_work(&wc, scratch, wbuf);
        to_blocked(xb, x, n, c, h * w);
        to_blocked(dyb, dy, n, k, h * w);
        check_weights(&wc, wt);
        wino_weights(&wc, wt, WINO_FWD);
        wino_forward(&wc, xb, yb);
        from_blocked(y, yb, n, k, h * w);
        check_sums(&wc, xb, yb, y);
        memset(dxb, 0x7f, sizeof(float) * nx);  /* every element must be written */
        wino_weights(&wc, wt, WINO_BWD_DATA);
        wino_backward_data(&wc, dyb, dxb, 0);
        from_blocked(dx, dxb, n, c, h * w);
        {   /* accumulating: a gradient already there + the overwrite's float, bit for bit */
            float *ga = malloc(sizeof(float) * nx), *gsum = malloc(sizeof(float) * nx);
            fill(ga, nx);
            for (size_t i = 0; i < nx; i++) gsum[i] = ga[i] + dxb[i];
            wino_backward_data(&wc, dyb, ga, 1);
            CHECK(memcmp(ga, gsum, sizeof(float) * nx) == 0, "  backward data added to a gradient: the same bits as "
                  "adding the overwritten one (worst error %.2e)", worst_rel(ga, gsum, nx));
            free(ga); free(gsum);
        }
        wino_backward_weights(&wc, xb, dyb, dw, 0);
        float *dw_sref = malloc(sizeof(float) * nw);  /* its last step, G^T D G, against the scalar one */
        wino_weights_from_sums_ref(&wc, wino_dw_sums(&wc), dw_sref);
        CHECK(memcmp(dw_sref, dw, sizeof(float) * nw) == 0, "  weight gradient's G^T D G (%d partial sums), AVX2 against scalar: "
              "the same bits (worst error %.2e)", wino_dw_sums(&wc), worst_rel(dw, dw_sref, nw));
        /* accumulating: g + the overwrite's float, bit for bit */
        float *g = malloc(sizeof(float) * nw), *g_ref = malloc(sizeof(float) * nw);
        fill(g, nw);
        for (size_t i = 0; i < nw; i++) g_ref[i] = g[i] + dw[i];
        wino_backward_weights(&wc, xb, dyb, g, 1);
        CHECK(memcmp(g_ref, g, sizeof(float) * nw) == 0, "  weight gradient added to a gradient: the same bits as adding "
              "the overwritten one (worst error %.2e)", worst_rel(g, g_ref, nw));
        free(g); free(g_ref);
        free(dw_sref);
        if (wc.wtb && !wc.global) same_bits_any_block(&wc, xb, dyb, dw, "NCELAB_WINO_WTB");
        if (!wc.wtb && wc.tbw != wc.tb) same_bits_any_block(&wc, xb, dyb, dw, "NCELAB_WINO_TBW");
        if (!wc.wtb) same_bits_any_threads(&wc, xb, dyb, dw);
        double ey = worst_rel(y, y_ref, ny), ex = worst_rel(dx, dx_ref, nx), ew = worst_rel(dw, dw_ref, nw);
        CHECK(ey < 2e-5, "forward, n=%d c=%d k=%d %dx%d: worst error %.2e of the largest output", n, c, k, h, w, ey);
        CHECK(ex < 2e-5, "backward data: worst error %.2e of the largest input gradient", ex);
        CHECK(ew < 2e-5, "backward weights: worst error %.2e of the largest weight gradient", ew);
        free(scratch);
        free(wbuf);
    }
    free(x); free(wt); free(dy); free(y_ref); free(dx_ref); free(dw_ref);
    free(xb); free(dyb); free(yb); free(dxb); free(y); free(dx); free(dw);
}

int main(void) {
    rng_init(&rng, 7, 0, 0, 0);
    if (!wino_supported(16, 16)) {
        printf("SKIP  this CPU has no AVX2/FMA: the Winograd kernels are not used\n");
        return check_done();
    }
    CHECK(!wino_supported(3, 32) && !wino_supported(32, 24), "channel counts that are not multiples of 16 are refused");
    one_shape(2, 16, 32, 8, 8);     /* tiles fit exactly */
    one_shape(3, 32, 16, 7, 7);     /* clipped tiles (Fashion-MNIST's last stage) */
    one_shape(2, 32, 64, 16, 16);   /* CIFAR-10's second stage */
    one_shape(1, 16, 16, 5, 9);     /* non-square, one partial tile per row */
    one_shape(5, 64, 32, 14, 14);   /* several tile blocks per thread */
    one_shape(3, 128, 128, 28, 28); /* 128 x 128: the weight gradient in shared blocks (96 + 51 tiles) */
    one_shape(1, 512, 32, 20, 20);  /* shared blocks, 32 filters: a GEMM job narrower than 64 */
    one_shape(8, 64, 128, 8, 8);    /* the convnet's conv3 in the fixtures: 64 x 128, tiles mode, sums of 1.2 MB */
    one_shape(40, 64, 128, 8, 8);   /* the same over 160 tiles: two chunks for each thread */
    one_shape(2, 256, 256, 8, 8);   /* 256 x 256, tiles mode: ResNet-18's third stage */
    one_shape(3, 256, 320, 4, 4);   /* the global mode (c k > 256 x 256), like ResNet-18's last stage */
    one_shape(2, 256, 512, 6, 6);   /* the global mode with clipped tiles */
    setenv("NCELAB_WINO_STREAM_MB", "0", 1);  /* the outputs and the transformed filters by */
    setenv("NCELAB_WINO_STREAM_U_MB", "0", 1);  /* non-temporal stores, in both modes */
    one_shape(3, 32, 16, 7, 7);
    one_shape(2, 32, 64, 16, 16);
    one_shape(2, 256, 320, 6, 6);   /* global */
    unsetenv("NCELAB_WINO_STREAM_MB");
    unsetenv("NCELAB_WINO_STREAM_U_MB");
    return check_done();
}
