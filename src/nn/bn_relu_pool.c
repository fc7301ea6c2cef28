// bn_relu_pool.c -- batch norm, ReLU and 2x2 max pooling (stride 2) in two passes over the
// activations instead of five, on oneDNN's nChw8c layout with AVX2/FMA. The convnet's first
// block spends most of its time moving its 32 x H x W activations through memory; this keeps
// one read for the statistics and one for normalise + ReLU + pool, and the same in backward.
// The plain-loop layers (batchnorm.c, relu.c, maxpool.c) are its reference. The same for a
// global average pool after the ReLU (the convnet's last block): the pooled output is one value
// per image and channel, and the ReLU's mask in backward is recomputed from x and the statistics.
//
// Max pooling routes the gradient to the first maximum of its window; after a ReLU that is the
// first maximum of the pre-activations when it is positive, and nowhere otherwise. So the
// forward pass keeps one byte per pooled value: the window position 0-3, or 4 for none.
#include "bn_relu_pool.h"
#include "bnp_window.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <string.h>

typedef __m256 v8;

int bnp_supported(int c, int h, int w) {
    if (c % 8 || c > 1024 || h % 2 || w % 2 || h < 2 || w < 2) return 0;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    const char *off = getenv("NCELAB_FUSED_POOL");
    return !(off && *off == '0');
}

int bnp_gap_supported(int c) {
    const char *off = getenv("NCELAB_FUSED_GAP");
    return bnp_supported(c, 2, 2) && !(off && *off == '0');
}

/* Sums over one row are kept in float, across rows in double (a1, a2: 8 lanes). */
static inline void add_row(double *a1, double *a2, v8 r1, v8 r2) {
    float f1[8], f2[8];
    _mm256_storeu_ps(f1, r1);
    _mm256_storeu_ps(f2, r2);
    for (int l = 0; l < 8; l++) { a1[l] += f1[l]; a2[l] += f2[l]; }
}

size_t bnp_scratch_doubles(int c) { return (size_t)2 * c * BNP_PARTS; }

/* The sums over the batch are taken in parts of images, fixed ranges whatever the thread count,
   each part's in scratch (2 c doubles), the parts taken by the threads as they free up (a slowed
   thread no longer keeps the other waiting at the end of its static half) and added in part
   order: the bits depend on neither the thread count nor the schedule. */
static int sum_parts(int n) { return n < BNP_PARTS ? n : BNP_PARTS; }
static int part_first(int n, int p) { return (int)((long)n * p / sum_parts(n)); }

/* Channel ch's two sums over the np parts' partials (2 c doubles each), in part order. */
static void part_sums(double *s1, double *s2, const double *scratch, int np, int c, int ch) {
    *s1 = 0.0;
    *s2 = 0.0;
    for (int t = 0; t < np; t++) { *s1 += scratch[(size_t)t * 2 * c + ch]; *s2 += scratch[(size_t)t * 2 * c + c + ch]; }
}

/* The backward's two sums from the parts' partials: sdy, and sdyxhat (the partial sums are of
   dy' (x - mean); times invstd). sdy and sdyxhat may be scratch's first 2 c doubles. */
static void backward_sums_done(double *sdy, double *sdyxhat, const double *scratch, int np, int c, const float *var,
                               float eps) {
    for (int ch = 0; ch < c; ch++) {
        double s1, s2;
        part_sums(&s1, &s2, scratch, np, c, ch);
        sdy[ch] = s1;
        sdyxhat[ch] = s2 * (1.0 / sqrt((double)var[ch] + eps));
    }
}

/* The input gradient's per-channel coefficients, dx = kc (dy' - ka - (x - mean) kb), from the two
   sums over the m values the statistics came from. */
static void dx_coefficients(float *ka, float *kb, float *kc, const float *var, const float *gamma, float eps,
                            const double *sdy, const double *sdyxhat, double m, int c) {
    for (int ch = 0; ch < c; ch++) {
        double invstd = 1.0 / sqrt((double)var[ch] + eps);
        ka[ch] = (float)(sdy[ch] / m);
        kb[ch] = (float)(sdyxhat[ch] * invstd / m);
        kc[ch] = (float)(gamma[ch] * invstd);
    }
}

/* Per-channel sums over (n, h, w) of each part's images, shifted by the first pixel of each
   channel against cancellation: s1 = sum (x - s), s2 = sum (x - s)^2, in double. */
void bnp_stats(float *mean, float *var, const float *x, int n, int c, int h, int w, double *scratch) {
    int CB = c / 8, hw = h * w, np = sum_parts(n);
    const float *shift = x;  /* image 0, pixel 0: 8 channels per block, at x + cb hw 8 */
    #pragma omp parallel for schedule(dynamic, 1)
    for (int pt = 0; pt < np; pt++) {
        double *p1 = scratch + (size_t)pt * 2 * c, *p2 = p1 + c;
        memset(p1, 0, sizeof(double) * 2 * c);
        for (int i = part_first(n, pt); i < part_first(n, pt + 1); i++)
            for (int cb = 0; cb < CB; cb++) {
                const float *src = x + ((size_t)i * CB + cb) * hw * 8;
                v8 s = _mm256_loadu_ps(shift + (size_t)cb * hw * 8);
                double a1[8] = {0}, a2[8] = {0};
                for (int y = 0; y < h; y++) {  /* float sums over one row, double across rows */
                    v8 r1 = _mm256_setzero_ps(), r2 = _mm256_setzero_ps();
                    for (int xx = 0; xx < w; xx++) {
                        v8 v = _mm256_sub_ps(_mm256_loadu_ps(src + ((size_t)y * w + xx) * 8), s);
                        r1 = _mm256_add_ps(r1, v);
                        r2 = _mm256_fmadd_ps(v, v, r2);
                    }
                    add_row(a1, a2, r1, r2);
                }
                for (int l = 0; l < 8; l++) { p1[cb * 8 + l] += a1[l]; p2[cb * 8 + l] += a2[l]; }
            }
    }
    double m = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double s1, s2;
        part_sums(&s1, &s2, scratch, np, c, ch);
        double mu = s1 / m, v = s2 / m - mu * mu;
        mean[ch] = (float)(shift[(size_t)(ch / 8) * hw * 8 + ch % 8] + mu);
        var[ch] = (float)(v > 0 ? v : 0);
    }
}

/* The four inputs of pooled pixel (oy, ox) of one channel block. */
#define WINDOW(src, oy, ox, w)                                                     \
    const float *p0_ = (src) + ((size_t)(2 * (oy)) * (w) + 2 * (ox)) * 8;           \
    v8 x0 = _mm256_loadu_ps(p0_), x1 = _mm256_loadu_ps(p0_ + 8);                    \
    v8 x2 = _mm256_loadu_ps(p0_ + (size_t)(w) * 8), x3 = _mm256_loadu_ps(p0_ + (size_t)(w) * 8 + 8)

void bnp_forward(float *y, uint8_t *idx, float *xk, const float *x, const float *mean, const float *var, const float *gamma,
                 const float *beta, float eps, int n, int c, int h, int w) {
    int CB = c / 8, oh = h / 2, ow = w / 2;
    /* the passes that write outputs in 64 chunks taken as threads free up (a slowed thread no longer
       holds the other at the end; one chunk per 8 images held bn3 0.45 ms longer in the grabs) */
    #pragma omp parallel for collapse(2) schedule(dynamic, (n * CB + 63) / 64)
    for (int i = 0; i < n; i++)
        for (int cb = 0; cb < CB; cb++) {
            v8 vs, vb;
            bnp_scale_shift(&vs, &vb, mean, var, gamma, beta, eps, cb);
            const float *src = x + ((size_t)i * CB + cb) * h * w * 8;
            float *dst = y + ((size_t)i * CB + cb) * oh * ow * 8;
            uint8_t *ix = idx + ((size_t)i * CB + cb) * oh * ow * 8;
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    WINDOW(src, oy, ox, w);
                    size_t o = ((size_t)oy * ow + ox) * 8;
                    bnp_pool_window(dst + o, ix + o, xk ? xk + ((size_t)i * CB + cb) * oh * ow * 8 + o : NULL, x0, x1, x2, x3,
                                    vs, vb);
                }
        }
}

/* The pooled gradient of one window, routed: g where the window's index is pos, else 0. */
static inline v8 routed(v8 g, v8 k, float pos) {
    return _mm256_and_ps(g, _mm256_cmp_ps(k, _mm256_set1_ps(pos), _CMP_EQ_OQ));
}

static inline v8 load_idx(const uint8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

/* bnp_backward_sums's sums of one image's channel block cb into a1, a2 (8 lanes each), the input
   at each window's maximum read from xk (kept: xk's block) or picked from x's window (src): the
   same value, so the same bits. */
static inline __attribute__((always_inline)) void window_sums(double *a1, double *a2, const float *src,
                                                              const float *xkb, const float *g, const uint8_t *ix,
                                                              v8 mu, int oh, int ow, int w, const int kept) {
    for (int oy = 0; oy < oh; oy++) {
        v8 r1 = _mm256_setzero_ps(), r2 = _mm256_setzero_ps();
        for (int ox = 0; ox < ow; ox++) {
            size_t o = ((size_t)oy * ow + ox) * 8;
            v8 gv = _mm256_loadu_ps(g + o), k = load_idx(ix + o), xs;
            if (kept) {
                xs = _mm256_loadu_ps(xkb + o);
            } else {
                WINDOW(src, oy, ox, w);
                xs = _mm256_blendv_ps(x0, x1, _mm256_cmp_ps(k, _mm256_set1_ps(1), _CMP_EQ_OQ));
                xs = _mm256_blendv_ps(xs, x2, _mm256_cmp_ps(k, _mm256_set1_ps(2), _CMP_EQ_OQ));
                xs = _mm256_blendv_ps(xs, x3, _mm256_cmp_ps(k, _mm256_set1_ps(3), _CMP_EQ_OQ));
            }
            gv = _mm256_and_ps(gv, _mm256_cmp_ps(k, _mm256_set1_ps(4), _CMP_LT_OQ));
            r1 = _mm256_add_ps(r1, gv);
            r2 = _mm256_fmadd_ps(gv, _mm256_sub_ps(xs, mu), r2);
        }
        add_row(a1, a2, r1, r2);
    }
}

void bnp_backward_sums(double *sdy, double *sdyxhat, const float *dy, const uint8_t *idx, const float *x,
                       const float *xk, const float *mean, const float *var, float eps, int n, int c, int h, int w,
                       double *scratch) {
    int CB = c / 8, oh = h / 2, ow = w / 2, np = sum_parts(n);
    /* sum dy and sum dy (x - mean) over the positions the gradient reaches, per part */
    #pragma omp parallel for schedule(dynamic, 1)
    for (int pt = 0; pt < np; pt++) {
        double *p1 = scratch + (size_t)pt * 2 * c, *p2 = p1 + c;
        memset(p1, 0, sizeof(double) * 2 * c);
        for (int i = part_first(n, pt); i < part_first(n, pt + 1); i++)
            for (int cb = 0; cb < CB; cb++) {
                size_t bo = ((size_t)i * CB + cb) * oh * ow * 8;
                const float *src = x + ((size_t)i * CB + cb) * h * w * 8;
                v8 mu = _mm256_loadu_ps(mean + cb * 8);
                double a1[8] = {0}, a2[8] = {0};
                if (xk) window_sums(a1, a2, src, xk + bo, dy + bo, idx + bo, mu, oh, ow, w, 1);
                else window_sums(a1, a2, src, NULL, dy + bo, idx + bo, mu, oh, ow, w, 0);
                for (int l = 0; l < 8; l++) { p1[cb * 8 + l] += a1[l]; p2[cb * 8 + l] += a2[l]; }
            }
    }
    backward_sums_done(sdy, sdyxhat, scratch, np, c, var, eps);
}

void bnp_backward_dx(float *dx, const float *dy, const uint8_t *idx, const float *x, const float *mean,
                     const float *var, const float *gamma, float eps, const double *sdy, const double *sdyxhat,
                     double m, int n, int c, int h, int w) {
    int CB = c / 8, oh = h / 2, ow = w / 2;
    float ka[1024], kb[1024], kc[1024];  /* dx = kc (dy - ka - (x - mean) kb) */
    dx_coefficients(ka, kb, kc, var, gamma, eps, sdy, sdyxhat, m, c);
    #pragma omp parallel for collapse(2) schedule(dynamic, (n * CB + 63) / 64)
    for (int i = 0; i < n; i++)
        for (int cb = 0; cb < CB; cb++) {
            const float *src = x + ((size_t)i * CB + cb) * h * w * 8;
            const float *g = dy + ((size_t)i * CB + cb) * oh * ow * 8;
            const uint8_t *ix = idx + ((size_t)i * CB + cb) * oh * ow * 8;
            float *out = dx + ((size_t)i * CB + cb) * h * w * 8;
            v8 mu = _mm256_loadu_ps(mean + cb * 8), va = _mm256_loadu_ps(ka + cb * 8);
            v8 vb = _mm256_loadu_ps(kb + cb * 8), vc = _mm256_loadu_ps(kc + cb * 8);
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    WINDOW(src, oy, ox, w);
                    size_t o = ((size_t)oy * ow + ox) * 8;
                    v8 gv = _mm256_loadu_ps(g + o), k = load_idx(ix + o);
                    v8 xs[4] = {x0, x1, x2, x3};
                    float *q = out + ((size_t)(2 * oy) * w + 2 * ox) * 8;
                    float *qs[4] = {q, q + 8, q + (size_t)w * 8, q + (size_t)w * 8 + 8};
                    for (int p = 0; p < 4; p++) {
                        v8 t = _mm256_sub_ps(routed(gv, k, (float)p), va);
                        t = _mm256_fnmadd_ps(_mm256_sub_ps(xs[p], mu), vb, t);
                        _mm256_storeu_ps(qs[p], _mm256_mul_ps(t, vc));
                    }
                }
        }
}

void bnp_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const uint8_t *idx, const float *x,
                  const float *xk, const float *mean, const float *var, const float *gamma, float eps, int n, int c,
                  int h, int w, double *scratch) {
    double sdy[1024], sdyxhat[1024];
    bnp_backward_sums(sdy, sdyxhat, dy, idx, x, xk, mean, var, eps, n, c, h, w, scratch);
    for (int ch = 0; ch < c; ch++) {
        dbeta[ch] = (float)sdy[ch];
        dgamma[ch] = (float)sdyxhat[ch];
    }
    bnp_backward_dx(dx, dy, idx, x, mean, var, gamma, eps, sdy, sdyxhat, (double)n * h * w, n, c, h, w);
}

/* ---- with a global average pool ----
   The pre-activation is gamma invstd (x - mean) + beta here, not x vs + vb: vb = beta - mean vs
   cancels to about |mean| 6e-8 near zero, and a pre-activation that close to 0 then passes its
   ReLU where PyTorch's (x - mean) invstd gamma + beta does not (a 5-step SGD fixture met one). */

/* channel block cb's gamma invstd, mean and beta */
static void scale_mean_beta(v8 *vs, v8 *mu, v8 *be, const float *mean, const float *var, const float *gamma,
                            const float *beta, float eps, int cb) {
    float sc[8];
    for (int l = 0; l < 8; l++) sc[l] = gamma[cb * 8 + l] / sqrtf(var[cb * 8 + l] + eps);
    *vs = _mm256_loadu_ps(sc);
    *mu = _mm256_loadu_ps(mean + cb * 8);
    *be = _mm256_loadu_ps(beta + cb * 8);
}

static inline v8 gap_pre(v8 xv, v8 vs, v8 mu, v8 be) { return _mm256_fmadd_ps(_mm256_sub_ps(xv, mu), vs, be); }

void bnp_gap_forward(float *y, double *kept, const float *x, const float *mean, const float *var, const float *gamma,
                     const float *beta, float eps, int n, int c, int h, int w) {
    int CB = c / 8, hw = h * w;
    #pragma omp parallel for collapse(2) schedule(dynamic, (n * CB + 63) / 64)
    for (int i = 0; i < n; i++)
        for (int cb = 0; cb < CB; cb++) {
            v8 vs, mu, be, zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f), acc = zero;
            scale_mean_beta(&vs, &mu, &be, mean, var, gamma, beta, eps, cb);
            const float *src = x + ((size_t)i * CB + cb) * hw * 8;
            if (kept) {  /* and per row, the ReLU's passes and their x - mean, in float, then double */
                double *k1 = kept + (size_t)i * 2 * c + cb * 8, *k2 = k1 + c;
                memset(k1, 0, sizeof(double) * 8);
                memset(k2, 0, sizeof(double) * 8);
                for (int r = 0; r < h; r++) {
                    v8 r1 = zero, r2 = zero;
                    for (int q = 0; q < w; q++) {
                        v8 xv = _mm256_loadu_ps(src + ((size_t)r * w + q) * 8), pre = gap_pre(xv, vs, mu, be);
                        v8 pass = _mm256_cmp_ps(pre, zero, _CMP_GT_OQ);
                        acc = _mm256_add_ps(acc, _mm256_max_ps(pre, zero));
                        r1 = _mm256_add_ps(r1, _mm256_and_ps(pass, one));
                        r2 = _mm256_add_ps(r2, _mm256_and_ps(pass, _mm256_sub_ps(xv, mu)));
                    }
                    add_row(k1, k2, r1, r2);
                }
            } else {
                for (int p = 0; p < hw; p++)
                    acc = _mm256_add_ps(acc, _mm256_max_ps(gap_pre(_mm256_loadu_ps(src + (size_t)p * 8), vs, mu, be), zero));
            }
            _mm256_storeu_ps(y + (size_t)i * c + cb * 8, _mm256_div_ps(acc, _mm256_set1_ps((float)hw)));
        }
}

/* The gradient of the batch norm's output at x: g / hw where the ReLU passed x, else 0. */
static inline v8 gap_routed(v8 gh, v8 xv, v8 vs, v8 mu, v8 be) {
    return _mm256_and_ps(gh, _mm256_cmp_ps(gap_pre(xv, vs, mu, be), _mm256_setzero_ps(), _CMP_GT_OQ));
}

/* Every pixel of image i and channel ch gets the gradient g[i][ch] / hw where its ReLU passed, so
   the sums over the pixels are that gradient times the forward's kept count and sum of x - mean:
   no pass over x. */
void bnp_gap_backward_sums(double *sdy, double *sdyxhat, const float *g, const double *kept, const float *var,
                           float eps, int n, int c, int h, int w, double *scratch) {
    int np = sum_parts(n);
    float fhw = (float)(h * w);
    for (int pt = 0; pt < np; pt++) {
        double *p1 = scratch + (size_t)pt * 2 * c, *p2 = p1 + c;
        memset(p1, 0, sizeof(double) * 2 * c);
        for (int i = part_first(n, pt); i < part_first(n, pt + 1); i++) {
            const double *k1 = kept + (size_t)i * 2 * c, *k2 = k1 + c;
            for (int ch = 0; ch < c; ch++) {
                double gh = g[(size_t)i * c + ch] / fhw;  /* the float the dx pass routes */
                p1[ch] += gh * k1[ch];
                p2[ch] += gh * k2[ch];
            }
        }
    }
    backward_sums_done(sdy, sdyxhat, scratch, np, c, var, eps);
}

void bnp_gap_backward_dx(float *dx, const float *g, const float *x, const float *mean, const float *var,
                         const float *gamma, const float *beta, float eps, const double *sdy, const double *sdyxhat,
                         double m, int n, int c, int h, int w) {
    int CB = c / 8, hw = h * w;
    float ka[1024], kb[1024], kc[1024];  /* dx = kc (dy - ka - (x - mean) kb) */
    dx_coefficients(ka, kb, kc, var, gamma, eps, sdy, sdyxhat, m, c);
    #pragma omp parallel for collapse(2) schedule(dynamic, (n * CB + 63) / 64)
    for (int i = 0; i < n; i++)
        for (int cb = 0; cb < CB; cb++) {
            const float *src = x + ((size_t)i * CB + cb) * hw * 8;
            float *out = dx + ((size_t)i * CB + cb) * hw * 8;
            v8 vs, mu, be, va = _mm256_loadu_ps(ka + cb * 8);
            v8 vk = _mm256_loadu_ps(kb + cb * 8), vc = _mm256_loadu_ps(kc + cb * 8);
            scale_mean_beta(&vs, &mu, &be, mean, var, gamma, beta, eps, cb);
            v8 gh = _mm256_div_ps(_mm256_loadu_ps(g + (size_t)i * c + cb * 8), _mm256_set1_ps((float)hw));
            for (int p = 0; p < hw; p++) {
                v8 xv = _mm256_loadu_ps(src + (size_t)p * 8);
                v8 t = _mm256_sub_ps(gap_routed(gh, xv, vs, mu, be), va);
                t = _mm256_fnmadd_ps(_mm256_sub_ps(xv, mu), vk, t);
                _mm256_storeu_ps(out + (size_t)p * 8, _mm256_mul_ps(t, vc));
            }
        }
}

void bnp_gap_backward(float *dx, float *dgamma, float *dbeta, const float *g, const double *kept, const float *x,
                      const float *mean, const float *var, const float *gamma, const float *beta, float eps, int n,
                      int c, int h, int w, double *scratch) {
    double sdy[1024], sdyxhat[1024];
    bnp_gap_backward_sums(sdy, sdyxhat, g, kept, var, eps, n, c, h, w, scratch);
    for (int ch = 0; ch < c; ch++) {
        dbeta[ch] = (float)sdy[ch];
        dgamma[ch] = (float)sdyxhat[ch];
    }
    bnp_gap_backward_dx(dx, g, x, mean, var, gamma, beta, eps, sdy, sdyxhat, (double)n * h * w, n, c, h, w);
}
