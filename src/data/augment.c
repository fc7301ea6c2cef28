// augment.c -- random resized crop, pad-and-crop, flip, colour jitter, grayscale and normalisation of one image.
#include "ncelab/augment.h"

#include <math.h>
#include <string.h>

#define AUG_MAX_SIDE 1024   /* largest output side: the resampling tables live on the stack */

static void preset_base(AugConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->rrc_rmin = 3.0 / 4.0;
    cfg->rrc_rmax = 4.0 / 3.0;
    cfg->rrc_smin = 0.08;
    cfg->rrc_smax = 1.0;
    for (int i = 0; i < 3; i++) {
        cfg->mean[i] = 0.0f;
        cfg->std[i] = 1.0f;
    }
}

void aug_preset_none(AugConfig *cfg) { preset_base(cfg); }

void aug_preset_simclr_cifar(AugConfig *cfg) {
    preset_base(cfg);
    cfg->rrc = 1;
    cfg->rrc_smin = 0.2;
    cfg->rrc_smax = 1.0;
    cfg->p_flip = 0.5;
    cfg->p_jitter = 0.8;
    cfg->brightness = cfg->contrast = cfg->saturation = 0.4;
    cfg->hue = 0.1;
    cfg->p_gray = 0.2;
}

void aug_preset_crop_flip(AugConfig *cfg) {
    preset_base(cfg);
    cfg->pad = 4;
    cfg->pad_mode = AUG_PAD_ZERO;
    cfg->p_flip = 0.5;
}

int aug_preset(const char *name, const char *what, AugConfig *cfg, NcError *err) {
    if (strcmp(name, "simclr") == 0 || strcmp(name, "simclr_cifar") == 0) aug_preset_simclr_cifar(cfg);
    else if (strcmp(name, "crop_flip") == 0) aug_preset_crop_flip(cfg);
    else if (strcmp(name, "none") == 0) aug_preset_none(cfg);
    else return nc_fail(err, NC_EUSAGE, "%s: expected simclr, crop_flip or none, got '%s'", what, name);
    return NC_OK;
}

static int bad_prob(double p) { return !(p >= 0.0 && p <= 1.0); }
static int bad_strength(double s) { return !(s >= 0.0 && s <= 1e6); }

int aug_check(const AugConfig *cfg, int h, int w, int c, NcError *err) {
    if (c != 1 && c != 3) return nc_fail(err, NC_EUSAGE, "aug: images have %d channels; expected 1 or 3", c);
    if (h < 1 || w < 1) return nc_fail(err, NC_EUSAGE, "aug: empty image %d x %d", h, w);
    if (cfg->out_h < 0 || cfg->out_w < 0 || cfg->out_h > AUG_MAX_SIDE || cfg->out_w > AUG_MAX_SIDE)
        return nc_fail(err, NC_EUSAGE, "aug: output size %d x %d must be in 1..%d (0: the input's)", cfg->out_h,
                       cfg->out_w, AUG_MAX_SIDE);
    if ((cfg->out_h ? 0 : h) > AUG_MAX_SIDE || (cfg->out_w ? 0 : w) > AUG_MAX_SIDE)
        return nc_fail(err, NC_EUSAGE, "aug: input %d x %d is larger than %d; set an output size", h, w, AUG_MAX_SIDE);
    if (cfg->rrc) {
        if (!(cfg->rrc_smin > 0 && cfg->rrc_smin <= cfg->rrc_smax && cfg->rrc_smax <= 1))
            return nc_fail(err, NC_EUSAGE, "aug: crop scale %g..%g must satisfy 0 < smin <= smax <= 1", cfg->rrc_smin,
                           cfg->rrc_smax);
        if (!(cfg->rrc_rmin > 0 && cfg->rrc_rmin <= cfg->rrc_rmax && cfg->rrc_rmax < 1e6))
            return nc_fail(err, NC_EUSAGE, "aug: crop ratio %g..%g must satisfy 0 < rmin <= rmax", cfg->rrc_rmin,
                           cfg->rrc_rmax);
        if (cfg->pad) return nc_fail(err, NC_EUSAGE, "aug: pad %d together with a random resized crop; choose one", cfg->pad);
    }
    if (cfg->pad < 0 || cfg->pad > 4096) return nc_fail(err, NC_EUSAGE, "aug: pad %d must be in 0..4096", cfg->pad);
    if (cfg->pad_mode != AUG_PAD_ZERO && cfg->pad_mode != AUG_PAD_REFLECT)
        return nc_fail(err, NC_EUSAGE, "aug: pad mode %d is neither zero (0) nor reflect (1)", cfg->pad_mode);
    if (cfg->pad_mode == AUG_PAD_REFLECT && cfg->pad > 0 && (cfg->pad >= h || cfg->pad >= w))
        return nc_fail(err, NC_EUSAGE, "aug: reflection pad %d must be smaller than the image %d x %d", cfg->pad, h, w);
    if (bad_prob(cfg->p_flip)) return nc_fail(err, NC_EUSAGE, "aug: flip probability %g not in [0, 1]", cfg->p_flip);
    if (bad_prob(cfg->p_jitter)) return nc_fail(err, NC_EUSAGE, "aug: jitter probability %g not in [0, 1]", cfg->p_jitter);
    if (bad_prob(cfg->p_gray)) return nc_fail(err, NC_EUSAGE, "aug: grayscale probability %g not in [0, 1]", cfg->p_gray);
    if (bad_strength(cfg->brightness)) return nc_fail(err, NC_EUSAGE, "aug: brightness %g must be >= 0", cfg->brightness);
    if (bad_strength(cfg->contrast)) return nc_fail(err, NC_EUSAGE, "aug: contrast %g must be >= 0", cfg->contrast);
    if (bad_strength(cfg->saturation)) return nc_fail(err, NC_EUSAGE, "aug: saturation %g must be >= 0", cfg->saturation);
    if (!(cfg->hue >= 0 && cfg->hue <= 0.5)) return nc_fail(err, NC_EUSAGE, "aug: hue %g not in [0, 0.5]", cfg->hue);
    for (int i = 0; i < c; i++) {
        if (!isfinite(cfg->mean[i])) return nc_fail(err, NC_EUSAGE, "aug: mean[%d] = %g is not finite", i, cfg->mean[i]);
        if (!(cfg->std[i] > 0) || !isfinite(cfg->std[i]))
            return nc_fail(err, NC_EUSAGE, "aug: std[%d] = %g must be > 0", i, cfg->std[i]);
    }
    return NC_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* drawing the parameters */

static double uniform_in(Rng *r, double lo, double hi) { return lo + (hi - lo) * rng_uniform(r); }

/* The factor of ColorJitter for strength s: U[max(0, 1 - s), 1 + s]; 1 (unused) when s = 0. */
static float jitter_factor(Rng *r, double s) {
    double u = rng_uniform(r);
    if (s <= 0) return 1.0f;
    double lo = 1.0 - s > 0 ? 1.0 - s : 0.0;
    return (float)(lo + (1.0 + s - lo) * u);
}

/* torchvision RandomResizedCrop.get_params */
static void draw_rrc(AugParams *p, const AugConfig *cfg, int h, int w, Rng *r) {
    double area = (double)h * w, lr0 = log(cfg->rrc_rmin), lr1 = log(cfg->rrc_rmax);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * uniform_in(r, cfg->rrc_smin, cfg->rrc_smax);
        double ratio = exp(uniform_in(r, lr0, lr1));
        int cw = (int)nearbyint(sqrt(target * ratio)), ch = (int)nearbyint(sqrt(target / ratio));
        if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
            p->y0 = (int)rng_below(r, (uint64_t)(h - ch + 1));
            p->x0 = (int)rng_below(r, (uint64_t)(w - cw + 1));
            p->ch = ch;
            p->cw = cw;
            return;
        }
    }
    double in_ratio = (double)w / h;
    int cw = w, ch = h;
    if (in_ratio < cfg->rrc_rmin) {
        ch = (int)nearbyint(w / cfg->rrc_rmin);
    } else if (in_ratio > cfg->rrc_rmax) {
        cw = (int)nearbyint(h * cfg->rrc_rmax);
    }
    if (ch < 1) ch = 1;
    if (cw < 1) cw = 1;
    if (ch > h) ch = h;
    if (cw > w) cw = w;
    p->ch = ch;
    p->cw = cw;
    p->y0 = (h - ch) / 2;
    p->x0 = (w - cw) / 2;
}

void aug_draw(AugParams *p, const AugConfig *cfg, int h, int w, Rng *r) {
    memset(p, 0, sizeof *p);
    p->y0 = p->x0 = 0;
    p->ch = h;
    p->cw = w;
    if (cfg->rrc) {
        draw_rrc(p, cfg, h, w, r);
    } else if (cfg->pad > 0) {
        p->y0 = (int)rng_below(r, (uint64_t)(2 * cfg->pad + 1)) - cfg->pad;
        p->x0 = (int)rng_below(r, (uint64_t)(2 * cfg->pad + 1)) - cfg->pad;
    }
    p->flip = rng_uniform(r) < cfg->p_flip;
    /* colour jitter: the decision, then every factor and the order, drawn whatever happens */
    p->jitter = rng_uniform(r) < cfg->p_jitter;
    p->brightness = jitter_factor(r, cfg->brightness);
    p->contrast = jitter_factor(r, cfg->contrast);
    p->saturation = jitter_factor(r, cfg->saturation);
    double uh = rng_uniform(r);
    p->hue = cfg->hue > 0 ? (float)(cfg->hue * (2.0 * uh - 1.0)) : 0.0f;
    for (int i = 0; i < 4; i++) p->order[i] = i;
    for (int i = 3; i > 0; i--) {
        int j = (int)rng_below(r, (uint64_t)(i + 1)), t = p->order[i];
        p->order[i] = p->order[j];
        p->order[j] = t;
    }
    if (!(cfg->brightness > 0 || cfg->contrast > 0 || cfg->saturation > 0 || cfg->hue > 0)) p->jitter = 0;
    p->gray = rng_uniform(r) < cfg->p_gray;
}

/* ---------------------------------------------------------------------------------------- */
/* the single operations on float CHW images in [0, 1] */

/* cond ? a : b on the bits: both operands are computed, so the compiler cannot turn the choice
   into a branch around a floating-point operation that might trap (which blocks vectorisation
   under the default -ftrapping-math) */
static inline float select_f(int cond, float a, float b) {
    uint32_t ua, ub, m = 0u - (uint32_t)(cond != 0);
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    ua = (ua & m) | (ub & ~m);
    memcpy(&a, &ua, sizeof a);
    return a;
}

static inline float clamp01(float v) { return select_f(v > 1.0f, 1.0f, select_f(v < 0.0f, 0.0f, v)); }

void aug_brightness(float *x, int c, int n, float b) {
#pragma omp simd
    for (long i = 0; i < (long)c * n; i++) x[i] = clamp01(x[i] * b);
}

void aug_contrast(float *x, int c, int n, float f) {
    double s = 0;
    if (c == 3) {
        const float *r = x, *g = x + n, *b = x + 2 * n;
        for (int i = 0; i < n; i++) s += 0.299f * r[i] + 0.587f * g[i] + 0.114f * b[i];
    } else {
        for (int i = 0; i < n; i++) s += x[i];
    }
    float m = (float)(s / n), add = (1.0f - f) * m;
#pragma omp simd
    for (long i = 0; i < (long)c * n; i++) x[i] = clamp01(f * x[i] + add);
}

void aug_saturation(float *x, int c, int n, float f) {
    if (c != 3) return;
    float *r = x, *g = x + n, *b = x + 2 * n, f1 = 1.0f - f;
#pragma omp simd
    for (int i = 0; i < n; i++) {
        float l = f1 * (0.299f * r[i] + 0.587f * g[i] + 0.114f * b[i]);
        r[i] = clamp01(f * r[i] + l);
        g[i] = clamp01(f * g[i] + l);
        b[i] = clamp01(f * b[i] + l);
    }
}

/* RGB -> HSV -> RGB with the hue turned by shift, as torchvision's _rgb2hsv / _hsv2rgb, written
   without branches so that the loop vectorises: the sector formulas of _hsv2rgb are the same as
   channel_n = v - v s clamp(min(k, 4 - k), 0, 1) with k = (n + 6 h) mod 6, n = 5, 3, 1 for R, G, B.
   A gray pixel (max = min) has s = 0 and comes back unchanged. */
void aug_hue(float *x, int c, int n, float shift) {
    if (c != 3) return;
    float *R = x, *G = x + n, *B = x + 2 * n;
    float sh = shift - floorf(shift);
#pragma omp simd
    for (int i = 0; i < n; i++) {
        float r = R[i], g = G[i], b = B[i];
        float maxc = select_f(r > g, r, g), minc = select_f(r < g, r, g);
        maxc = select_f(maxc > b, maxc, b);
        minc = select_f(minc < b, minc, b);
        float cr = maxc - minc;
        /* + 1e-30 instead of a select keeps the division unconditional (a select around it
           becomes a branch); it changes nothing unless max or max - min is below ~1e-22 */
        float s = cr / (maxc + 1e-30f), inv = 1.0f / (cr + 1e-30f);
        float rc = (maxc - r) * inv, gc = (maxc - g) * inv, bc = (maxc - b) * inv;
        float h = select_f(maxc == r, bc - gc, select_f(maxc == g, 2.0f + rc - bc, 4.0f + gc - rc));
        h = h / 6.0f + 1.0f + sh;          /* in [5/6, 3): truncation is floor */
        h -= (float)(int)h;
        float h6 = h * 6.0f, vs = maxc * s;
        float kr = 5.0f + h6, kg = 3.0f + h6, kb = 1.0f + h6;
        kr = select_f(kr >= 6.0f, kr - 6.0f, kr);
        kg = select_f(kg >= 6.0f, kg - 6.0f, kg);
        kb = select_f(kb >= 6.0f, kb - 6.0f, kb);
        float ur = 4.0f - kr, ug = 4.0f - kg, ub = 4.0f - kb;
        float tr = select_f(ur < kr, ur, kr), tg = select_f(ug < kg, ug, kg), tb = select_f(ub < kb, ub, kb);
        tr = clamp01(tr);
        tg = clamp01(tg);
        tb = clamp01(tb);
        R[i] = clamp01(maxc - vs * tr);
        G[i] = clamp01(maxc - vs * tg);
        B[i] = clamp01(maxc - vs * tb);
    }
}

void aug_grayscale(float *x, int c, int n) {
    if (c != 3) return;
    float *r = x, *g = x + n, *b = x + 2 * n;
#pragma omp simd
    for (int i = 0; i < n; i++) {
        float l = 0.299f * r[i] + 0.587f * g[i] + 0.114f * b[i];
        r[i] = g[i] = b[i] = l;
    }
}

void aug_hflip(float *x, int c, int h, int w) {
    for (long row = 0; row < (long)c * h; row++) {
        float *p = x + row * w;
        for (int i = 0, j = w - 1; i < j; i++, j--) {
            float t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
    }
}

void aug_normalize(float *x, int c, int n, const float *mean, const float *std) {
    for (int ch = 0; ch < c; ch++) {
        float m = mean[ch], s = std[ch], *p = x + (long)ch * n;
#pragma omp simd
        for (int i = 0; i < n; i++) p[i] = (p[i] - m) / s;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* rendering */

/* Source index for a coordinate outside [0, n) after padding: reflection (edge not repeated),
   or -1 for a zero pixel. */
static int pad_index(int i, int n, int mode) {
    if (i >= 0 && i < n) return i;
    if (mode == AUG_PAD_ZERO) return -1;
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;   /* n >= 2 when reflecting */
    return i;
}

/* The bilinear taps along one axis: output o in [0, on) reads window positions
   s = (o + 0.5) * len / on - 0.5, clamped to [0, len - 1] (crop, then resize with
   align_corners=False). i0/i1 are the source indices times stride, w0/w1 their weights; a zero
   padding pixel gets weight 0 on index 0, so the resampling loop has no branch. */
static void axis_taps(int *i0, int *i1, float *w0, float *w1, int on, int start, int len, int n, int pad_mode,
                      int stride) {
    double scale = (double)len / on;
    for (int o = 0; o < on; o++) {
        double s = (o + 0.5) * scale - 0.5;
        if (s < 0) s = 0;
        int a = (int)s;
        if (a > len - 1) a = len - 1;
        int b = a + 1 < len ? a + 1 : len - 1;
        float fr = a == b ? 0.0f : (float)(s - a);
        int ia = pad_index(start + a, n, pad_mode), ib = pad_index(start + b, n, pad_mode);
        w0[o] = ia >= 0 ? 1.0f - fr : 0.0f;
        w1[o] = ib >= 0 ? fr : 0.0f;
        i0[o] = (ia >= 0 ? ia : 0) * stride;
        i1[o] = (ib >= 0 ? ib : 0) * stride;
    }
}

/* out (c, OH, OW) = the bilinear samples in pixel units (0..255), columns mirrored if flip;
   c is a constant where this is inlined, so the channel loop unrolls. */
static inline void resample(float *out, const uint8_t *img, const int c, int OH, int OW, const int *oy0,
                            const int *oy1, const float *wy0, const float *wy1, const int *ox0, const int *ox1,
                            const float *wx0, const float *wx1, int flip) {
    int n = OH * OW;
    for (int Y = 0; Y < OH; Y++) {
        const uint8_t *r0 = img + oy0[Y], *r1 = img + oy1[Y];
        float a0 = wy0[Y], a1 = wy1[Y];
        float *o = out + (long)Y * OW;
        for (int X = 0; X < OW; X++) {
            int xd = flip ? OW - 1 - X : X;
            const uint8_t *p00 = r0 + ox0[X], *p01 = r0 + ox1[X], *p10 = r1 + ox0[X], *p11 = r1 + ox1[X];
            float b0 = wx0[X], b1 = wx1[X];
            for (int ch = 0; ch < c; ch++)
                o[(long)ch * n + xd] = ((float)p00[ch] * b0 + (float)p01[ch] * b1) * a0 +
                                       ((float)p10[ch] * b0 + (float)p11[ch] * b1) * a1;
        }
    }
}

void aug_render(float *out, const uint8_t *img, int h, int w, int c, const AugConfig *cfg,
                const AugParams *p) {
    int OH = cfg->out_h ? cfg->out_h : h, OW = cfg->out_w ? cfg->out_w : w, n = OH * OW;
    int oy0[AUG_MAX_SIDE], oy1[AUG_MAX_SIDE], ox0[AUG_MAX_SIDE], ox1[AUG_MAX_SIDE];
    float wy0[AUG_MAX_SIDE], wy1[AUG_MAX_SIDE], wx0[AUG_MAX_SIDE], wx1[AUG_MAX_SIDE];
    axis_taps(oy0, oy1, wy0, wy1, OH, p->y0, p->ch, h, cfg->pad_mode, w * c);
    axis_taps(ox0, ox1, wx0, wx1, OW, p->x0, p->cw, w, cfg->pad_mode, c);
    if (c == 3) resample(out, img, 3, OH, OW, oy0, oy1, wy0, wy1, ox0, ox1, wx0, wx1, p->flip);
    else resample(out, img, 1, OH, OW, oy0, oy1, wy0, wy1, ox0, ox1, wx0, wx1, p->flip);
#pragma omp simd
    for (long i = 0; i < (long)c * n; i++) out[i] = out[i] / 255.0f;
    if (p->jitter) {
        for (int i = 0; i < 4; i++) {
            switch (p->order[i]) {
            case 0: if (p->brightness != 1.0f) aug_brightness(out, c, n, p->brightness); break;
            case 1: if (p->contrast != 1.0f) aug_contrast(out, c, n, p->contrast); break;
            case 2: if (p->saturation != 1.0f) aug_saturation(out, c, n, p->saturation); break;
            default: if (p->hue != 0.0f) aug_hue(out, c, n, p->hue); break;
            }
        }
    }
    if (p->gray) aug_grayscale(out, c, n);
    aug_normalize(out, c, n, cfg->mean, cfg->std);
}

void aug_apply(float *out, const uint8_t *img, int h, int w, int c, const AugConfig *cfg,
               uint64_t seed, uint32_t epoch, uint32_t index, uint32_t view) {
    Rng r;
    AugParams p;
    rng_init(&r, seed, epoch, index, view);
    aug_draw(&p, cfg, h, w, &r);
    aug_render(out, img, h, w, c, cfg, &p);
}
