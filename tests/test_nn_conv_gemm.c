// test_nn_conv_gemm.c -- the GEMM convolution (conv_gemm.c) against the reference loops of
// conv2d.c: forward, backward data and the weight gradient added to a gradient, on nChw8c and
// nChw16c, for ResNet-18's stride-2 3x3 shapes, odd image sides, a 1x1 stride-2 shortcut and a
// stride-1 layer; blocks of one image and of several, batches that leave a thread without a
// block. Prints the worst error of each comparison.
#define _POSIX_C_SOURCE 200809L  /* setenv */
#include "blocked_util.h"
#include "check.h"
#include "ncelab/layers.h"
#include "ncelab/rng.h"
#include "../src/nn/conv_gemm.h"

#include <stdlib.h>
#include <string.h>

static Rng rng;

static void fill(float *v, size_t n) {
    for (size_t i = 0; i < n; i++) v[i] = (float)rng_normal(&rng);
}

static void one_shape(int n, int c, int k, int h, int w, int ks, int stride, int pad, int blk, const char *rows) {
    if (rows) setenv("NCELAB_CGEMM_ROWS", rows, 1); else unsetenv("NCELAB_CGEMM_ROWS");
    GemmConv g;
    int rc = cgemm_init(&g, n, c, k, h, w, ks, stride, pad, blk);
    CHECK(rc == 0, "n=%d c=%d k=%d %dx%d, %dx%d stride %d pad %d, nChw%dc: planned (%d images a block)", n, c, k, h, w, ks,
          ks, stride, pad, blk, g.imgs);
    if (rc) return;
    ConvShape s = {n, c, h, w, k, ks, stride, pad, g.oh, g.ow};
    size_t nx = (size_t)n * c * h * w, ny = (size_t)n * k * g.oh * g.ow, nw = (size_t)k * c * ks * ks;
    float *x = malloc(sizeof(float) * nx), *wt = malloc(sizeof(float) * nw), *dy = malloc(sizeof(float) * ny);
    float *y_ref = calloc(ny, sizeof(float)), *dx_ref = calloc(nx, sizeof(float)), *dw_ref = calloc(nw, sizeof(float));
    float *xb = malloc(sizeof(float) * nx), *dyb = malloc(sizeof(float) * ny), *yb = malloc(sizeof(float) * ny);
    float *dxb = malloc(sizeof(float) * nx), *y = malloc(sizeof(float) * ny), *dx = malloc(sizeof(float) * nx);
    float *g0 = malloc(sizeof(float) * nw), *dw = malloc(sizeof(float) * nw), *dw2 = malloc(sizeof(float) * nw);
    fill(x, nx); fill(wt, nw); fill(dy, ny); fill(g0, nw);
    conv2d_forward(y_ref, x, wt, NULL, &s);
    conv2d_backward(dx_ref, dw_ref, NULL, dy, x, wt, &s);
    for (size_t i = 0; i < nw; i++) dw_ref[i] += g0[i];           /* the gradient it is added to */
    float *scratch = malloc(sizeof(float) * cgemm_scratch_floats(&g)), *wbuf = malloc(sizeof(float) * cgemm_wbuf_floats(&g));
    cgemm_set_work(&g, scratch, wbuf);
    to_blocked_b(xb, x, n, c, h * w, blk);
    to_blocked_b(dyb, dy, n, k, g.oh * g.ow, blk);
    memset(yb, 0x7f, sizeof(float) * ny);                         /* every element must be written */
    cgemm_weights(&g, wt, CGEMM_FWD);
    cgemm_forward(&g, xb, yb);
    from_blocked_b(y, yb, n, k, g.oh * g.ow, blk);
    memset(dxb, 0x7f, sizeof(float) * nx);
    memcpy(dw, g0, sizeof(float) * nw);
    cgemm_backward_weights(&g, xb, dyb, dw);
    cgemm_weights(&g, wt, CGEMM_BWD_DATA);
    cgemm_backward_data(&g, dyb, dxb, 0);
    from_blocked_b(dx, dxb, n, c, h * w, blk);
    {   /* accumulating: a gradient already there plus this one (its patches added onto it) */
        float *ga = malloc(sizeof(float) * nx), *gsum = malloc(sizeof(float) * nx);
        fill(ga, nx);
        for (size_t i = 0; i < nx; i++) gsum[i] = ga[i] + dxb[i];
        cgemm_backward_data(&g, dyb, ga, 1);
        double ea = worst_rel(ga, gsum, nx);
        CHECK(ea < 1e-6, "  backward data added to a gradient: worst error %.2e of the largest against adding the "
              "overwritten one", ea);
        free(ga); free(gsum);
    }
    memcpy(dw2, g0, sizeof(float) * nw);                          /* again: the same bits */
    cgemm_backward_weights(&g, xb, dyb, dw2);
    if (n > 1) {  /* images 1 .. n - 1 alone: their outputs and input gradients, bit for bit */
        GemmConv g2;
        cgemm_init(&g2, n - 1, c, k, h, w, ks, stride, pad, blk);
        float *s2 = malloc(sizeof(float) * cgemm_scratch_floats(&g2)), *w2 = malloc(sizeof(float) * cgemm_wbuf_floats(&g2));
        float *y2 = malloc(sizeof(float) * ny), *dx2 = malloc(sizeof(float) * nx);
        cgemm_set_work(&g2, s2, w2);
        size_t xi = nx / n, yi = ny / n;
        cgemm_weights(&g2, wt, CGEMM_FWD);
        cgemm_forward(&g2, xb + xi, y2);
        cgemm_weights(&g2, wt, CGEMM_BWD_DATA);
        cgemm_backward_data(&g2, dyb + yi, dx2, 0);
        CHECK(!memcmp(y2, yb + yi, sizeof(float) * (ny - yi)) && !memcmp(dx2, dxb + xi, sizeof(float) * (nx - xi)),
              "  a batch without its first image (%d images a block): the others' outputs and input gradients, "
              "the same bits", g2.imgs);
        free(s2); free(w2); free(y2); free(dx2);
    }
    double ey = worst_rel(y, y_ref, ny), ex = worst_rel(dx, dx_ref, nx), ew = worst_rel(dw, dw_ref, nw);
    CHECK(ey < 1e-5, "  forward: worst error %.2e of the largest output", ey);
    CHECK(ex < 1e-5, "  backward data: worst error %.2e of the largest input gradient", ex);
    CHECK(ew < 1e-5, "  weight gradient added to a gradient: worst error %.2e of the largest", ew);
    CHECK(memcmp(dw, dw2, sizeof(float) * nw) == 0, "  the weight gradient again: the same bits");
    free(x); free(wt); free(dy); free(y_ref); free(dx_ref); free(dw_ref); free(xb); free(dyb); free(yb);
    free(dxb); free(y); free(dx); free(g0); free(dw); free(dw2); free(scratch); free(wbuf);
}

int main(void) {
    rng_init(&rng, 11, 0, 0, 0);
    CHECK(!cgemm_supported(12, 16, 8) && !cgemm_supported(16, 24, 16) && !cgemm_supported(16, 16, 4),
          "channel counts that are not multiples of the block, and blocks other than 8 and 16, are refused");
    GemmConv g;
    CHECK(cgemm_init(&g, 2, 16, 16, 2, 2, 5, 1, 0, 8) != 0, "a filter larger than the padded image is refused");
    for (int blk = 8; blk <= 16; blk += 8) {
        one_shape(4, 64, 128, 16, 16, 3, 2, 1, blk, NULL);    /* ResNet-18's layer2.0.conv1 at 16 x 16 */
        one_shape(5, 32, 64, 9, 9, 3, 2, 1, blk, "20");      /* odd sides, one image a block, a short last block */
        one_shape(3, 128, 256, 8, 8, 3, 2, 1, blk, "48");    /* several images a block */
        one_shape(1, 16, 32, 7, 5, 3, 2, 1, blk, NULL);      /* one image: a thread without a block */
        one_shape(3, 32, 64, 8, 8, 1, 2, 0, blk, NULL);      /* a 1x1 stride-2 shortcut */
        one_shape(2, 16, 16, 6, 6, 3, 1, 1, blk, "12");      /* stride 1 */
    }
    return check_done();
}
