// test_augment.c -- augmentations: identities, closed forms, an independent HSV reference, statistics of the draws.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ncelab/augment.h"
#include "ncelab/rng.h"

enum { H = 32, W = 32 };

static void random_image(uint8_t *img, int h, int w, int c, uint64_t seed) {
    Rng r;
    rng_init(&r, seed, 0, 0, 0);
    for (int i = 0; i < h * w * c; i++) img[i] = (uint8_t)(rng_u32(&r) & 255);
}

/* pixel (y, x, ch) of an HWC image as the float the pipeline starts from */
static float px(const uint8_t *img, int w, int c, int y, int x, int ch) {
    return (float)img[(y * w + x) * c + ch] / 255.0f;
}

static void test_identity(void) {
    uint8_t img[H * W * 3];
    float out[3 * H * W];
    random_image(img, H, W, 3, 1);
    AugConfig a;
    aug_preset_none(&a);
    a.rrc = 1;
    a.rrc_smin = a.rrc_smax = 1.0;
    a.rrc_rmin = a.rrc_rmax = 1.0;
    int exact = 1;
    for (uint32_t key = 0; key < 20; key++) {
        aug_apply(out, img, H, W, 3, &a, 5, 0, key, 0);
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) exact &= out[(ch * H + y) * W + x] == px(img, W, 3, y, x, ch);
    }
    CHECK(exact, "crop of scale 1 and ratio 1 without flip, mean 0 std 1: out == pixel/255 exactly (20 keys)");

    /* strength-0 jitter applied with probability 1 changes nothing */
    AugConfig j;
    aug_preset_none(&j);
    j.p_jitter = 1.0;
    aug_apply(out, img, H, W, 3, &j, 5, 0, 3, 0);
    exact = 1;
    for (int ch = 0; ch < 3; ch++)
        for (int i = 0; i < H * W; i++) exact &= out[ch * H * W + i] == px(img, W, 3, i / W, i % W, ch);
    CHECK(exact, "colour jitter of strength 0 (applied with p = 1) is the identity");
    float x[3 * H * W], y[3 * H * W];
    for (int i = 0; i < 3 * H * W; i++) x[i] = y[i] = out[i];
    aug_brightness(y, 3, H * W, 1.0f);
    aug_contrast(y, 3, H * W, 1.0f);
    aug_saturation(y, 3, H * W, 1.0f);
    CHECK(memcmp(x, y, sizeof x) == 0, "brightness, contrast and saturation with factor 1 are the identity");

    /* normalisation: (x - mean) / std */
    AugConfig n;
    aug_preset_none(&n);
    float mean[3] = {0.4914f, 0.4822f, 0.4465f}, sd[3] = {0.247f, 0.243f, 0.261f};
    memcpy(n.mean, mean, sizeof mean);
    memcpy(n.std, sd, sizeof sd);
    aug_apply(out, img, H, W, 3, &n, 5, 0, 0, 0);
    double worst = 0;
    for (int ch = 0; ch < 3; ch++)
        for (int i = 0; i < H * W; i++)
            worst = fmax(worst, fabs(out[ch * H * W + i] - (px(img, W, 3, i / W, i % W, ch) - mean[ch]) / sd[ch]));
    CHECK(worst < 1e-5, "per-channel normalisation (x/255 - mean)/std: worst error %.2e", worst);
}

static void test_resample(void) {
    uint8_t img[H * W * 3];
    random_image(img, H, W, 3, 2);
    AugConfig a;
    aug_preset_none(&a);
    a.out_h = H / 2;
    a.out_w = W / 2;
    AugParams p;
    memset(&p, 0, sizeof p);
    p.ch = H;
    p.cw = W;
    float out[3 * H * W];
    aug_render(out, img, H, W, 3, &a, &p);
    double worst = 0;
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < H / 2; y++)
            for (int x = 0; x < W / 2; x++) {
                double box = (px(img, W, 3, 2 * y, 2 * x, ch) + px(img, W, 3, 2 * y, 2 * x + 1, ch) +
                              px(img, W, 3, 2 * y + 1, 2 * x, ch) + px(img, W, 3, 2 * y + 1, 2 * x + 1, ch)) / 4;
                worst = fmax(worst, fabs(out[(ch * (H / 2) + y) * (W / 2) + x] - box));
            }
    CHECK(worst < 1e-6, "bilinear 2x downscale (half-pixel centres) is the 2x2 box mean: worst %.2e", worst);

    /* a ramp in x: resampling a window reproduces the ramp at s = (X + 0.5) len/OW - 0.5 */
    uint8_t ramp[H * W];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) ramp[y * W + x] = (uint8_t)(7 * x + 3);
    aug_preset_none(&a);
    a.out_h = 20;
    a.out_w = W;
    p.y0 = 5;
    p.ch = 10;
    p.x0 = 4;
    p.cw = 16;
    aug_render(out, ramp, H, W, 1, &a, &p);
    worst = 0;
    for (int y = 0; y < 20; y++)
        for (int X = 1; X < W - 1; X++) {
            double s = (X + 0.5) * 16.0 / W - 0.5, want = (7 * (4 + s) + 3) / 255;
            worst = fmax(worst, fabs(out[y * W + X] - want));
        }
    CHECK(worst < 1e-5, "bilinear 2x upscale of a window of a ramp is the ramp at the source positions: worst %.2e",
          worst);
}

static void test_flip(void) {
    uint8_t img[H * W * 3];
    random_image(img, H, W, 3, 3);
    float a[3 * H * W], b[3 * H * W], orig[3 * H * W];
    AugConfig c;
    aug_preset_none(&c);
    aug_apply(orig, img, H, W, 3, &c, 1, 0, 0, 0);
    memcpy(a, orig, sizeof a);
    aug_hflip(a, 3, H, W);
    int mirrored = 1;
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) mirrored &= a[(ch * H + y) * W + x] == orig[(ch * H + y) * W + W - 1 - x];
    aug_hflip(a, 3, H, W);
    CHECK(mirrored && memcmp(a, orig, sizeof a) == 0, "a flip mirrors columns and flipping twice is the identity");
    c.p_flip = 1.0;
    aug_apply(b, img, H, W, 3, &c, 1, 0, 0, 0);
    aug_hflip(b, 3, H, W);
    CHECK(memcmp(b, orig, sizeof b) == 0, "the pipeline's flip (p = 1) followed by aug_hflip is the identity");
}

static void test_colour_ops(void) {
    uint8_t img[H * W * 3];
    random_image(img, H, W, 3, 4);
    int n = H * W;
    float x[3 * H * W], y[3 * H * W];
    AugConfig c;
    aug_preset_none(&c);
    aug_apply(x, img, H, W, 3, &c, 1, 0, 0, 0);

    /* grayscale through the pipeline */
    c.p_gray = 1.0;
    aug_apply(y, img, H, W, 3, &c, 1, 0, 0, 0);
    double worst = 0;
    int equal = 1;
    for (int i = 0; i < n; i++) {
        double l = 0.299 * x[i] + 0.587 * x[n + i] + 0.114 * x[2 * n + i];
        equal &= y[i] == y[n + i] && y[i] == y[2 * n + i];
        worst = fmax(worst, fabs(y[i] - l));
    }
    CHECK(equal && worst < 1e-6, "grayscale: equal channels, luma 0.299/0.587/0.114, worst %.2e", worst);

    /* brightness through the pipeline: parameters set by hand */
    AugParams p;
    memset(&p, 0, sizeof p);
    p.ch = H;
    p.cw = W;
    p.jitter = 1;
    p.brightness = 1.3f;
    p.contrast = p.saturation = 1.0f;
    for (int i = 0; i < 4; i++) p.order[i] = 3 - i;
    aug_preset_none(&c);
    aug_render(y, img, H, W, 3, &c, &p);
    worst = 0;
    int clamped = 0;
    for (int i = 0; i < 3 * n; i++) {
        double want = fmin(1.0, 1.3 * x[i]);
        clamped += want == 1.0;
        worst = fmax(worst, fabs(y[i] - want));
    }
    CHECK(worst < 1e-6 && clamped > 100, "brightness 1.3 multiplies pixel values, clamped at 1 (%d clamped): worst %.2e",
          clamped, worst);
    memcpy(y, x, sizeof y);
    aug_brightness(y, 3, n, 0.5f);
    worst = 0;
    for (int i = 0; i < 3 * n; i++) worst = fmax(worst, fabs(y[i] - 0.5 * x[i]));
    CHECK(worst < 1e-7, "brightness 0.5 halves pixel values: worst %.2e", worst);

    /* contrast and saturation against the blend formulas, in double */
    double m = 0;
    for (int i = 0; i < n; i++) m += 0.299 * x[i] + 0.587 * x[n + i] + 0.114 * x[2 * n + i];
    m /= n;
    memcpy(y, x, sizeof y);
    aug_contrast(y, 3, n, 1.6f);
    worst = 0;
    for (int i = 0; i < 3 * n; i++) worst = fmax(worst, fabs(y[i] - fmin(1, fmax(0, 1.6 * x[i] - 0.6 * m))));
    CHECK(worst < 1e-5, "contrast 1.6 = clamp(1.6 x - 0.6 mean_luma): worst %.2e", worst);
    memcpy(y, x, sizeof y);
    aug_saturation(y, 3, n, 0.3f);
    worst = 0;
    for (int i = 0; i < n; i++) {
        double l = 0.299 * x[i] + 0.587 * x[n + i] + 0.114 * x[2 * n + i];
        for (int ch = 0; ch < 3; ch++)
            worst = fmax(worst, fabs(y[ch * n + i] - fmin(1, fmax(0, 0.3 * x[ch * n + i] + 0.7 * l))));
    }
    CHECK(worst < 1e-6, "saturation 0.3 = clamp(0.3 x + 0.7 luma): worst %.2e", worst);
}

/* An independent HSV reference (Python's colorsys), in double. */
static void ref_rgb_to_hsv(double r, double g, double b, double *h, double *s, double *v) {
    double maxc = fmax(r, fmax(g, b)), minc = fmin(r, fmin(g, b));
    *v = maxc;
    if (minc == maxc) { *h = 0; *s = 0; return; }
    *s = (maxc - minc) / maxc;
    double rc = (maxc - r) / (maxc - minc), gc = (maxc - g) / (maxc - minc), bc = (maxc - b) / (maxc - minc);
    if (r == maxc) *h = bc - gc;
    else if (g == maxc) *h = 2.0 + rc - bc;
    else *h = 4.0 + gc - rc;
    *h = *h / 6.0;
    *h -= floor(*h);
}
static void ref_hsv_to_rgb(double h, double s, double v, double *r, double *g, double *b) {
    if (s == 0) { *r = *g = *b = v; return; }
    int i = (int)(h * 6.0);
    double f = h * 6.0 - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    switch (i % 6) {
    case 0: *r = v; *g = t; *b = p; break;
    case 1: *r = q; *g = v; *b = p; break;
    case 2: *r = p; *g = v; *b = t; break;
    case 3: *r = p; *g = q; *b = v; break;
    case 4: *r = t; *g = p; *b = v; break;
    default: *r = v; *g = p; *b = q; break;
    }
}

static void test_hue(void) {
    uint8_t img[H * W * 3];
    random_image(img, H, W, 3, 5);
    int n = H * W;
    float x[3 * H * W], y[3 * H * W];
    AugConfig c;
    aug_preset_none(&c);
    aug_apply(x, img, H, W, 3, &c, 1, 0, 0, 0);
    double w0 = 0, w1 = 0, wneg = 0;
    memcpy(y, x, sizeof y);
    aug_hue(y, 3, n, 0.0f);
    for (int i = 0; i < 3 * n; i++) w0 = fmax(w0, fabs(y[i] - x[i]));
    memcpy(y, x, sizeof y);
    aug_hue(y, 3, n, 1.0f);
    for (int i = 0; i < 3 * n; i++) w1 = fmax(w1, fabs(y[i] - x[i]));
    memcpy(y, x, sizeof y);
    aug_hue(y, 3, n, 0.3f);
    aug_hue(y, 3, n, -0.3f);
    for (int i = 0; i < 3 * n; i++) wneg = fmax(wneg, fabs(y[i] - x[i]));
    CHECK(w0 < 1e-5 && w1 < 1e-5, "hue shift 0 and one full turn are the identity: worst %.2e, %.2e", w0, w1);
    CHECK(wneg < 1e-5, "hue +0.3 then -0.3 turns is the identity: worst %.2e", wneg);

    float red[3] = {1, 0, 0};
    aug_hue(red, 3, 1, 1.0f / 3);
    CHECK(fabs(red[0]) < 1e-6 && fabs(red[1] - 1) < 1e-6 && fabs(red[2]) < 1e-6,
          "red turned by 1/3 is green: (%g, %g, %g)", red[0], red[1], red[2]);

    double shifts[4] = {0.1, -0.1, 0.37, -0.49};
    double worst = 0;
    for (int t = 0; t < 4; t++) {
        memcpy(y, x, sizeof y);
        aug_hue(y, 3, n, (float)shifts[t]);
        for (int i = 0; i < n; i++) {
            double h, s, v, r, g, b;
            ref_rgb_to_hsv(x[i], x[n + i], x[2 * n + i], &h, &s, &v);
            h += shifts[t];
            h -= floor(h);
            ref_hsv_to_rgb(h, s, v, &r, &g, &b);
            worst = fmax(worst, fmax(fabs(y[i] - r), fmax(fabs(y[n + i] - g), fabs(y[2 * n + i] - b))));
        }
    }
    CHECK(worst < 1e-5, "hue shifts 0.1, -0.1, 0.37, -0.49 against a double-precision colorsys reference: worst %.2e",
          worst);
}

static void test_determinism(void) {
    uint8_t img[H * W * 3];
    random_image(img, H, W, 3, 6);
    float a[3 * H * W], b[3 * H * W];
    AugConfig c;
    aug_preset_simclr_cifar(&c);
    int same = 1, diff_view = 0, diff_epoch = 0;
    for (uint32_t i = 0; i < 50; i++) {
        aug_apply(a, img, H, W, 3, &c, 9, 2, i, 0);
        aug_apply(b, img, H, W, 3, &c, 9, 2, i, 0);
        same &= memcmp(a, b, sizeof a) == 0;
        aug_apply(b, img, H, W, 3, &c, 9, 2, i, 1);
        diff_view += memcmp(a, b, sizeof a) != 0;
        aug_apply(b, img, H, W, 3, &c, 9, 3, i, 0);
        diff_epoch += memcmp(a, b, sizeof a) != 0;
    }
    CHECK(same, "the same (seed, epoch, index, view) gives bit-identical views");
    CHECK(diff_view == 50 && diff_epoch == 50, "another view or epoch gives another view (%d/50, %d/50)", diff_view,
          diff_epoch);
}

/* E[area fraction] of torchvision's RandomResizedCrop on a square image, ignoring rounding:
   an attempt draws s ~ U[s0, s1], log r ~ U[-L, L] and fits iff |log r| <= -log s. */
static double expected_rrc_area(double s0, double s1, double L) {
    int m = 20000;
    double ia = 0, isa = 0, hs = (s1 - s0) / m;
    for (int i = 0; i <= m; i++) {
        double s = s0 + i * hs, acc = fmin(1.0, -log(s) / L), wt = (i == 0 || i == m) ? 1 : (i % 2 ? 4 : 2);
        ia += wt * acc;
        isa += wt * s * acc;
    }
    ia *= hs / 3;
    isa *= hs / 3;
    double pa = ia / (s1 - s0), fail = pow(1 - pa, 10);
    return (1 - fail) * isa / ia + fail * 1.0;
}

static void test_statistics(void) {
    AugConfig c;
    aug_preset_simclr_cifar(&c);
    int N = 5000, flips = 0, jit = 0, gray = 0, first[4] = {0};
    double bmin = 9, bmax = -9, bsum = 0, hmin = 9, hmax = -9;
    for (int i = 0; i < N; i++) {
        Rng r;
        AugParams p;
        rng_init(&r, 11, 0, (uint32_t)i, 0);
        aug_draw(&p, &c, H, W, &r);
        flips += p.flip;
        jit += p.jitter;
        gray += p.gray;
        first[p.order[0]]++;
        bmin = fmin(bmin, p.brightness);
        bmax = fmax(bmax, p.brightness);
        bsum += p.brightness;
        hmin = fmin(hmin, p.hue);
        hmax = fmax(hmax, p.hue);
    }
    CHECK(fabs(flips / (double)N - 0.5) < 0.02, "flip rate %.4f = 0.5 +- 0.02 over %d draws", flips / (double)N, N);
    CHECK(fabs(jit / (double)N - 0.8) < 0.02, "jitter rate %.4f = 0.8 +- 0.02", jit / (double)N);
    CHECK(fabs(gray / (double)N - 0.2) < 0.02, "grayscale rate %.4f = 0.2 +- 0.02", gray / (double)N);
    CHECK(bmin >= 0.6 && bmax <= 1.4 && bmin < 0.62 && bmax > 1.38 && fabs(bsum / N - 1.0) < 0.015,
          "brightness factor uniform on [0.6, 1.4]: min %.3f max %.3f mean %.4f", bmin, bmax, bsum / N);
    CHECK(hmin >= -0.1 && hmax <= 0.1 && hmin < -0.098 && hmax > 0.098, "hue shift in [-0.1, 0.1]: %.4f..%.4f", hmin,
          hmax);
    int ok = 1;
    for (int i = 0; i < 4; i++) ok &= fabs(first[i] / (double)N - 0.25) < 0.025;
    CHECK(ok, "jitter order: each operation first 1/4 of the time (%d %d %d %d)", first[0], first[1], first[2], first[3]);

    /* random resized crop on a large square image (rounding negligible) */
    int S = 1000, M = 20000, in_range = 1, ratio_ok = 1;
    double sum = 0, sum2 = 0;
    for (int i = 0; i < M; i++) {
        Rng r;
        AugParams p;
        rng_init(&r, 12, 0, (uint32_t)i, 0);
        aug_draw(&p, &c, S, S, &r);
        double a = (double)p.ch * p.cw / ((double)S * S), ratio = (double)p.cw / p.ch;
        in_range &= a >= 0.2 * 0.995 && a <= 1.0 && p.y0 >= 0 && p.x0 >= 0 && p.y0 + p.ch <= S && p.x0 + p.cw <= S;
        ratio_ok &= ratio >= 0.75 * 0.995 && ratio <= 4.0 / 3 * 1.005;
        sum += a;
        sum2 += a * a;
    }
    double mean = sum / M, se = sqrt((sum2 / M - mean * mean) / M), want = expected_rrc_area(0.2, 1.0, log(4.0 / 3));
    CHECK(in_range && ratio_ok, "crop area fraction in [0.2, 1], aspect ratio in [3/4, 4/3], window inside the image");
    CHECK(fabs(mean - want) < 4 * se + 1e-3, "mean crop area %.4f = %.4f (uniform area, rejection as torchvision) +- %.4f",
          mean, want, 4 * se + 1e-3);
}

static void test_pad_crop(void) {
    uint8_t img[H * W * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int ch = 0; ch < 3; ch++) img[(y * W + x) * 3 + ch] = (uint8_t)(1 + (y * 37 + x * 5 + ch * 80) % 250);
    float out[3 * H * W];
    for (int mode = 0; mode < 2; mode++) {
        AugConfig c;
        aug_preset_crop_flip(&c);
        c.p_flip = 0;
        c.pad_mode = mode;
        int ok = 1, seen[9][9] = {{0}}, distinct = 0;
        for (uint32_t i = 0; i < 400; i++) {
            Rng r;
            AugParams p;
            rng_init(&r, 13, 0, i, 0);
            aug_draw(&p, &c, H, W, &r);
            if (p.y0 < -4 || p.y0 > 4 || p.x0 < -4 || p.x0 > 4) { ok = 0; continue; }
            distinct += !seen[p.y0 + 4][p.x0 + 4]++;
            aug_render(out, img, H, W, 3, &c, &p);
            for (int ch = 0; ch < 3; ch++)
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++) {
                        int sy = y + p.y0, sx = x + p.x0;
                        float want;
                        if (mode == AUG_PAD_ZERO) {
                            want = (sy < 0 || sy >= H || sx < 0 || sx >= W) ? 0.0f : px(img, W, 3, sy, sx, ch);
                        } else {
                            sy = sy < 0 ? -sy : (sy >= H ? 2 * H - 2 - sy : sy);
                            sx = sx < 0 ? -sx : (sx >= W ? 2 * W - 2 - sx : sx);
                            want = px(img, W, 3, sy, sx, ch);
                        }
                        ok &= out[(ch * H + y) * W + x] == want;
                    }
        }
        CHECK(ok && distinct == 81, "pad 4 (%s) and crop: the pattern shifted by the offset, all 81 offsets seen",
              mode ? "reflect" : "zeros");
    }
}

static void test_gray_input_and_errors(void) {
    uint8_t img[H * W];
    random_image(img, H, W, 1, 7);
    float out[H * W];
    AugConfig c;
    aug_preset_simclr_cifar(&c);
    c.rrc_smin = c.rrc_smax = c.rrc_rmin = c.rrc_rmax = 1.0;
    c.p_flip = 0;
    c.p_jitter = 0;
    c.p_gray = 1.0;   /* a no-op on one channel */
    aug_apply(out, img, H, W, 1, &c, 1, 0, 0, 0);
    int exact = 1;
    for (int i = 0; i < H * W; i++) exact &= out[i] == (float)img[i] / 255.0f;
    CHECK(exact, "one-channel image: grayscale is a no-op and the identity crop is exact");

    NcError err = {0};
    aug_preset_simclr_cifar(&c);
    CHECK(aug_check(&c, H, W, 3, &err) == NC_OK, "the simclr preset is valid");
    c.hue = 0.7;
    int rc = aug_check(&c, H, W, 3, &err);
    CHECK(rc == NC_EUSAGE && strstr(err.msg, "hue") && strstr(err.msg, "0.7"), "hue 0.7 rejected: %s", err.msg);
    aug_preset_crop_flip(&c);
    c.std[1] = 0;
    rc = aug_check(&c, H, W, 3, &err);
    CHECK(rc == NC_EUSAGE && strstr(err.msg, "std[1]"), "std 0 rejected: %s", err.msg);
    aug_preset_none(&c);
    c.p_flip = NAN;
    rc = aug_check(&c, H, W, 3, &err);
    CHECK(rc == NC_EUSAGE && strstr(err.msg, "flip"), "NaN probability rejected: %s", err.msg);
    rc = aug_check(&c, H, W, 2, &err);
    CHECK(rc == NC_EUSAGE && strstr(err.msg, "2 channels"), "2 channels rejected: %s", err.msg);
    rc = aug_preset("bogus", "--aug", &c, &err);
    CHECK(rc == NC_EUSAGE && strstr(err.msg, "--aug") && strstr(err.msg, "bogus"), "unknown preset: %s", err.msg);
}

int main(void) {
    test_identity();
    test_resample();
    test_flip();
    test_colour_ops();
    test_hue();
    test_determinism();
    test_statistics();
    test_pad_crop();
    test_gray_input_and_errors();
    return check_done();
}
