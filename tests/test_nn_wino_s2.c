// test_nn_wino_s2.c -- the polyphase Winograd convolution with stride 2 (conv_wino_s2.c) against
// the reference loops of conv2d.c on ResNet-18's stride-2 shapes and on odd and small image
// sides: forward, backward data (also added onto a gradient) and the weight gradient added to
// one; the AVX2 weight transforms and the weight gradient's last step against their scalar
// references, bit for bit; the forward and backward data the same bits in shared blocks of other
// sizes and in each thread's own blocks (of other sizes); the weight gradient in each thread's own
// blocks and sums on one thread the same bits as in shared blocks, and on 3 threads against the
// reference. Prints the worst error of each comparison.
#define _POSIX_C_SOURCE 200809L  /* setenv */
#include "blocked_util.h"
#include "check.h"
#include "ncelab/layers.h"
#include "ncelab/rng.h"
#include "../src/nn/conv_wino_s2.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

static Rng rng;

static void fill(float *v, size_t n) {
    for (size_t i = 0; i < n; i++) v[i] = (float)rng_normal(&rng);
}

/* The layer planned with shared blocks of tb tiles, each thread's own blocks of ttb tiles for
   the forward and backward data and of tbw for the weight gradient (NULL: the defaults; "0":
   shared blocks) on threads threads (0: the default) and its buffers. */
static int plan_on(Ws2Conv *wc, const char *tb, const char *ttb, const char *tbw, int threads, int n, int c, int k,
                   int h, int w) {
    if (tb) setenv("NCELAB_WS2_TB", tb, 1); else unsetenv("NCELAB_WS2_TB");
    if (ttb) setenv("NCELAB_WS2_TTB", ttb, 1); else unsetenv("NCELAB_WS2_TTB");
    if (tbw) setenv("NCELAB_WS2_TBW", tbw, 1); else unsetenv("NCELAB_WS2_TBW");
    int was = omp_get_max_threads();
    if (threads) omp_set_num_threads(threads);
    int rc = ws2_init(wc, n, c, k, h, w);
    omp_set_num_threads(was);
    unsetenv("NCELAB_WS2_TB");
    unsetenv("NCELAB_WS2_TTB");
    unsetenv("NCELAB_WS2_TBW");
    if (rc != 0) return -1;
    ws2_set_work(wc, malloc(sizeof(float) * ws2_scratch_floats(wc)), malloc(sizeof(float) * ws2_wbuf_floats(wc)));
    return 0;
}

static int plan(Ws2Conv *wc, const char *tb, const char *ttb, int n, int c, int k, int h, int w) {
    return plan_on(wc, tb, ttb, NULL, 0, n, c, k, h, w);
}

static void unplan(Ws2Conv *wc) { free(wc->scratch); free(wc->u); }

/* The weight gradient in each thread's own blocks and sums: on one thread the same chain of FMAs
   per element as shared blocks of the same size (the same bits); on 3 threads (some with no
   block on small shapes) against the reference, and its last step against the scalar one. */
static void own_weight_sums(int n, int c, int k, int h, int w, const float *xb, const float *dyb, const float *g0,
                            const float *dw_ref) {
    size_t nw = (size_t)k * c * 9;
    Ws2Conv sh, o1, o3;
    if (plan_on(&sh, "12", NULL, "0", 0, n, c, k, h, w) || plan_on(&o1, NULL, NULL, "12", 1, n, c, k, h, w) ||
        plan_on(&o3, NULL, NULL, "6", 3, n, c, k, h, w)) {
        CHECK(0, "  planned the weight gradient's own blocks");
        return;
    }
    float *d_sh = malloc(sizeof(float) * nw), *d_o1 = malloc(sizeof(float) * nw), *d_o3 = malloc(sizeof(float) * nw);
    float *d_ref = malloc(sizeof(float) * nw);
    memcpy(d_sh, g0, sizeof(float) * nw);
    memcpy(d_o1, g0, sizeof(float) * nw);
    memcpy(d_o3, g0, sizeof(float) * nw);
    memcpy(d_ref, g0, sizeof(float) * nw);
    ws2_backward_weights(&sh, xb, dyb, d_sh);
    ws2_backward_weights(&o1, xb, dyb, d_o1);
    CHECK(sh.tbw == 0 && o1.tbw == 12 && o1.dsums == 1 && !memcmp(d_sh, d_o1, sizeof(float) * nw),
          "  weight gradient in one thread's own blocks of 12 tiles: the same bits as shared blocks of 12");
    ws2_backward_weights(&o3, xb, dyb, d_o3);   /* (its parallel regions ask for 3 threads) */
    double e3 = worst_rel(d_o3, dw_ref, nw);
    CHECK(o3.dsums == 3 && e3 < 2e-5, "  weight gradient in own blocks of 6 tiles and sums on 3 threads: worst error %.2e",
          e3);
    ws2_weights_from_sums_ref(&o3, d_ref);
    CHECK(!memcmp(d_ref, d_o3, sizeof(float) * nw), "  its F^T D F over 3 sums, AVX2 against scalar: the same bits");
    free(d_sh); free(d_o1); free(d_o3); free(d_ref);
    unplan(&sh); unplan(&o1); unplan(&o3);
}

static void one_shape(int n, int c, int k, int h, int w) {
    Ws2Conv wc;
    int rc = plan(&wc, NULL, NULL, n, c, k, h, w);
    CHECK(rc == 0, "n=%d c=%d k=%d %dx%d: planned (%ld tiles, shared blocks of %d, own blocks of %d, weight gradient's %d)",
          n, c, k, h, w, wc.tiles, wc.tb, wc.ttb, wc.tbw);
    if (rc) return;
    ConvShape s = {n, c, h, w, k, 3, 2, 1, wc.oh, wc.ow};
    size_t nx = (size_t)n * c * h * w, ny = (size_t)n * k * wc.oh * wc.ow, nw = (size_t)k * c * 9;
    float *x = malloc(sizeof(float) * nx), *wt = malloc(sizeof(float) * nw), *y_ref = calloc(ny, sizeof(float));
    float *xb = malloc(sizeof(float) * nx), *yb = malloc(sizeof(float) * ny), *y = malloc(sizeof(float) * ny);
    float *dy = malloc(sizeof(float) * ny), *dyb = malloc(sizeof(float) * ny), *dx_ref = calloc(nx, sizeof(float));
    float *dxb = malloc(sizeof(float) * nx), *dx = malloc(sizeof(float) * nx), *g0 = malloc(sizeof(float) * nw);
    float *dw_ref = calloc(nw, sizeof(float)), *dw = malloc(sizeof(float) * nw);
    fill(x, nx); fill(wt, nw); fill(dy, ny); fill(g0, nw);
    conv2d_forward(y_ref, x, wt, NULL, &s);
    conv2d_backward(dx_ref, dw_ref, NULL, dy, x, wt, &s);
    for (size_t i = 0; i < nw; i++) dw_ref[i] += g0[i];           /* the gradient it is added to */
    to_blocked(xb, x, n, c, h * w);
    to_blocked(dyb, dy, n, k, wc.oh * wc.ow);

    /* the AVX2 weight transforms against the scalar ones, bit for bit */
    size_t nu = ws2_wbuf_floats(&wc);
    float *uref = malloc(sizeof(float) * nu), *save = wc.u;
    for (int pass = WS2_FWD; pass <= WS2_BWD_DATA; pass++) {
        memset(uref, 0x7f, sizeof(float) * nu);
        wc.u = uref;
        ws2_weights_ref(&wc, wt, (Ws2Pass)pass);
        wc.u = save;
        memset(wc.u, 0x7f, sizeof(float) * nu);
        ws2_weights(&wc, wt, (Ws2Pass)pass);
        CHECK(!memcmp(uref, wc.u, sizeof(float) * nu), "  weight transform (%s), AVX2 against scalar: the same bits",
              pass == WS2_FWD ? "forward" : "backward data");
    }
    free(uref);

    ws2_weights(&wc, wt, WS2_FWD);
    memset(yb, 0x7f, sizeof(float) * ny);      /* every element must be written */
    ws2_forward(&wc, xb, yb);
    from_blocked(y, yb, n, k, wc.oh * wc.ow);
    double ey = worst_rel(y, y_ref, ny);
    CHECK(ey < 2e-5, "  forward: worst error %.2e of the largest output", ey);

    memcpy(dw, g0, sizeof(float) * nw);
    ws2_backward_weights(&wc, xb, dyb, dw);
    double ew = worst_rel(dw, dw_ref, nw);
    CHECK(ew < 2e-5, "  weight gradient added to a gradient: worst error %.2e of the largest", ew);
    {   /* the last step against its scalar reference, on the sums the weight gradient left */
        float *d1 = malloc(sizeof(float) * nw), *d2 = malloc(sizeof(float) * nw);
        memcpy(d1, g0, sizeof(float) * nw);
        memcpy(d2, g0, sizeof(float) * nw);
        ws2_weights_from_sums_ref(&wc, d1);
        ws2_weights_from_sums_ref(&wc, d2);   /* (the reference twice: it reads the sums only) */
        float *d3 = malloc(sizeof(float) * nw);
        memcpy(d3, g0, sizeof(float) * nw);
        ws2_backward_weights(&wc, xb, dyb, d3);
        CHECK(!memcmp(d1, d3, sizeof(float) * nw) && !memcmp(d1, d2, sizeof(float) * nw),
              "  weight gradient's F^T D F, AVX2 against scalar: the same bits");
        free(d1); free(d2); free(d3);
    }

    ws2_weights(&wc, wt, WS2_BWD_DATA);
    memset(dxb, 0x7f, sizeof(float) * nx);
    ws2_backward_data(&wc, dyb, dxb, 0);
    from_blocked(dx, dxb, n, c, h * w);
    double ex = worst_rel(dx, dx_ref, nx);
    CHECK(ex < 2e-5, "  backward data: worst error %.2e of the largest input gradient", ex);
    {   /* added onto a gradient: the bits of adding the overwritten one */
        float *ga = malloc(sizeof(float) * nx), *gsum = malloc(sizeof(float) * nx);
        fill(ga, nx);
        for (size_t i = 0; i < nx; i++) gsum[i] = ga[i] + dxb[i];
        ws2_backward_data(&wc, dyb, ga, 1);
        CHECK(!memcmp(ga, gsum, sizeof(float) * nx), "  backward data added to a gradient: the same bits as adding");
        free(ga); free(gsum);
    }

    /* shared blocks of 6 and of 18 tiles, each thread's own blocks of 12: the same bits */
    const char *blocks[3] = {"6", "18", "48"}, *own[3] = {"0", "0", "12"};
    for (int b = 0; b < 3; b++) {
        Ws2Conv w2;
        if (plan(&w2, blocks[b], own[b], n, c, k, h, w)) { CHECK(0, "  planned with blocks of %s tiles", blocks[b]); continue; }
        float *y2 = malloc(sizeof(float) * ny), *dx2 = malloc(sizeof(float) * nx), *dw2 = malloc(sizeof(float) * nw);
        ws2_weights(&w2, wt, WS2_FWD);
        ws2_forward(&w2, xb, y2);
        ws2_weights(&w2, wt, WS2_BWD_DATA);
        ws2_backward_data(&w2, dyb, dx2, 0);
        CHECK(!memcmp(y2, yb, sizeof(float) * ny) && !memcmp(dx2, dxb, sizeof(float) * nx),
              "  forward and backward data in %s blocks of %d tiles: the same bits", w2.ttb ? "each thread's own" : "shared",
              w2.ttb ? w2.ttb : w2.tb);
        memcpy(dw2, g0, sizeof(float) * nw);
        ws2_backward_weights(&w2, xb, dyb, dw2);
        double e2 = worst_rel(dw2, dw_ref, nw);
        CHECK(e2 < 2e-5, "  weight gradient in blocks of %d tiles: worst error %.2e of the largest", w2.tb, e2);
        free(y2); free(dx2); free(dw2);
        unplan(&w2);
    }
    own_weight_sums(n, c, k, h, w, xb, dyb, g0, dw_ref);
    unplan(&wc);
    free(x); free(wt); free(y_ref); free(xb); free(yb); free(y);
    free(dy); free(dyb); free(dx_ref); free(dxb); free(dx); free(g0); free(dw_ref); free(dw);
}

int main(void) {
    rng_init(&rng, 11, 0, 0, 0);
    if (!ws2_supported(16, 16)) {
        printf("SKIP  this CPU has no AVX2/FMA: the stride-2 Winograd kernels are not used\n");
        return check_done();
    }
    CHECK(!ws2_supported(3, 32) && !ws2_supported(32, 24), "channel counts that are not multiples of 16 are refused");
    one_shape(3, 64, 128, 32, 32);  /* ResNet-18's layer2.0.conv1 */
    one_shape(2, 128, 256, 16, 16); /* layer3.0.conv1 */
    one_shape(2, 256, 512, 8, 8);   /* layer4.0.conv1 */
    one_shape(2, 16, 32, 7, 9);     /* odd sides: clipped tiles, the last input row and column read */
    one_shape(1, 32, 16, 1, 3);     /* one output row */
    one_shape(5, 16, 16, 10, 10);   /* output 5x5: a tile of one row and column */
    return check_done();
}
