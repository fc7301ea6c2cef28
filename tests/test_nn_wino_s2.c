// test_nn_wino_s2.c -- the polyphase Winograd convolution with stride 2 (conv_wino_s2.c) against
// the reference loops of conv2d.c on ResNet-18's stride-2 shapes and on odd and small image
// sides; the AVX2 weight transform against its scalar reference, bit for bit; the outputs the
// same bits in blocks of other sizes. Prints the worst error of each comparison.
#define _POSIX_C_SOURCE 200809L  /* setenv */
#include "blocked_util.h"
#include "check.h"
#include "ncelab/layers.h"
#include "ncelab/rng.h"
#include "../src/nn/conv_wino_s2.h"

#include <stdlib.h>
#include <string.h>

static Rng rng;

static void fill(float *v, size_t n) {
    for (size_t i = 0; i < n; i++) v[i] = (float)rng_normal(&rng);
}

/* The layer planned with blocks of tb tiles (NULL: the default) and its buffers. */
static int plan(Ws2Conv *wc, const char *tb, int n, int c, int k, int h, int w) {
    if (tb) setenv("NCELAB_WS2_TB", tb, 1); else unsetenv("NCELAB_WS2_TB");
    if (ws2_init(wc, n, c, k, h, w) != 0) return -1;
    ws2_set_work(wc, malloc(sizeof(float) * ws2_scratch_floats(wc)), malloc(sizeof(float) * ws2_wbuf_floats(wc)));
    return 0;
}

static void unplan(Ws2Conv *wc) { free(wc->scratch); free(wc->u); }

static void one_shape(int n, int c, int k, int h, int w) {
    Ws2Conv wc;
    int rc = plan(&wc, NULL, n, c, k, h, w);
    CHECK(rc == 0, "n=%d c=%d k=%d %dx%d: planned (%ld tiles, blocks of %d)", n, c, k, h, w, wc.tiles, wc.tb);
    if (rc) return;
    ConvShape s = {n, c, h, w, k, 3, 2, 1, wc.oh, wc.ow};
    size_t nx = (size_t)n * c * h * w, ny = (size_t)n * k * wc.oh * wc.ow, nw = (size_t)k * c * 9;
    float *x = malloc(sizeof(float) * nx), *wt = malloc(sizeof(float) * nw), *y_ref = calloc(ny, sizeof(float));
    float *xb = malloc(sizeof(float) * nx), *yb = malloc(sizeof(float) * ny), *y = malloc(sizeof(float) * ny);
    fill(x, nx); fill(wt, nw);
    conv2d_forward(y_ref, x, wt, NULL, &s);
    to_blocked(xb, x, n, c, h * w);

    /* the AVX2 weight transform against the scalar one, bit for bit */
    size_t nu = ws2_wbuf_floats(&wc);
    float *uref = malloc(sizeof(float) * nu), *save = wc.u;
    memset(uref, 0x7f, sizeof(float) * nu);
    wc.u = uref;
    ws2_weights_ref(&wc, wt);
    wc.u = save;
    memset(wc.u, 0x7f, sizeof(float) * nu);
    ws2_weights(&wc, wt);
    CHECK(!memcmp(uref, wc.u, sizeof(float) * nu), "  weight transform, AVX2 against scalar: the same bits");
    free(uref);

    memset(yb, 0x7f, sizeof(float) * ny);      /* every element must be written */
    ws2_forward(&wc, xb, yb);
    from_blocked(y, yb, n, k, wc.oh * wc.ow);
    double ey = worst_rel(y, y_ref, ny);
    CHECK(ey < 2e-5, "  forward: worst error %.2e of the largest output", ey);

    /* blocks of 6 and of 18 tiles: the same bits */
    const char *blocks[2] = {"6", "18"};
    for (int b = 0; b < 2; b++) {
        Ws2Conv w2;
        if (plan(&w2, blocks[b], n, c, k, h, w)) { CHECK(0, "  planned with blocks of %s tiles", blocks[b]); continue; }
        float *y2 = malloc(sizeof(float) * ny);
        ws2_weights(&w2, wt);
        ws2_forward(&w2, xb, y2);
        CHECK(!memcmp(y2, yb, sizeof(float) * ny), "  forward in blocks of %d tiles: the same bits", w2.tb);
        free(y2);
        unplan(&w2);
    }
    unsetenv("NCELAB_WS2_TB");
    unplan(&wc);
    free(x); free(wt); free(y_ref); free(xb); free(yb); free(y);
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
