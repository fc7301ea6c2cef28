// first_grad.c -- the first convolution's batch-norm statistics and weight gradient from small
// moments of the batch, instead of passes over its (n, k, h, w) output and output gradient.
//
// The convnet's first block spends most of its time moving (n, 32, 32, 32) tensors: the batch
// norm reads the convolution's output y once for its statistics, once to normalise and pool, and
// twice in backward, writing dy (the input gradient) that the weight gradient reads again. But
// y = W col is linear in the input patches, so its per-channel sums are W S and W G W^T with the
// patches' first and second moments S (27 numbers) and G (27 x 27), which depend on the images
// alone; and dy is consumed only by the weight gradient, and per channel it is affine in y apart
// from the routed gradient dy' (non-zero at one pixel in four at most):
//   dy_o(p) = kc_o (dy'_o(p) - ka_o - kb_o (y_o(p) - mean_o)),
// so  dW[o] = sum_p dy_o(p) col(p) = kc_o (P[o] - ka_o S - kb_o (W[o] G - mean_o S))
// with P[o] the routed gradient's patch sum, a sparse sum over the pooled values. The two sums
// that give ka and kb need y only at each window's maximum, which the forward keeps (xk).
// Per image, G's dot products run over the patches laid out row by row, P's gathers over the
// pixels padded to 4 inputs; both fit in L2, the latter in L1.
#include "first_grad.h"

#include "bnp_window.h"

#include "ncelab/core.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

typedef __m256 v8;

int fg_supported(int c, int k, int h, int w) {
    if (c < 1 || c > 3 || k % 8 || k < 8 || k > 1024 || h % 2 || w % 2 || h < 2 || w < 2 || (h * w) % 8) return 0;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    const char *off = getenv("NCELAB_FIRST_GRAD");
    return !(off && *off == '0');
}

/* per-thread sizes in floats (pad: the padded image, with 8 floats of slack for the row loads) */
static size_t pad_floats(const FirstGrad *g) { return (size_t)g->c * (g->h + 2) * (g->w + 2) + 8; }
static size_t pix_floats(const FirstGrad *g) { return (size_t)(g->h + 2) * (g->w + 2) * 4; }
static size_t rows_floats(const FirstGrad *g) {  /* the patches row by row, or the image padded wide */
    size_t a = (size_t)9 * g->c * g->h * g->w, b = (size_t)g->c * (g->h + 2) * (g->w + 4) + 8;
    return a > b ? a : b;
}
static size_t img_floats(const FirstGrad *g) { return (size_t)FG_J * FG_J + (size_t)g->k * FG_J; }
static size_t tab_floats(const FirstGrad *g) { return (size_t)16 * (g->h / 2) * (g->w / 2); }  /* routed_patches' table */
static size_t work_floats(const FirstGrad *g) {
    return pad_floats(g) + pix_floats(g) + rows_floats(g) + img_floats(g) + tab_floats(g);
}
static size_t acc_doubles(const FirstGrad *g) { return (size_t)FG_J * FG_J + FG_J + (size_t)g->k * (FG_J + 2); }

int fg_init(FirstGrad *g, int n, int c, int k, int h, int w) {
    memset(g, 0, sizeof *g);
    if (!fg_supported(c, k, h, w)) return -1;
    g->n = n; g->c = c; g->k = k; g->h = h; g->w = w;
    g->nthr = omp_get_max_threads();
    g->nparts = n < FG_PARTS ? n : FG_PARTS;
    g->work = nc_malloc(sizeof(float) * work_floats(g) * g->nthr);
    g->acc = nc_malloc(sizeof(double) * acc_doubles(g) * (g->nparts + 1));
    g->G = g->acc + acc_doubles(g) * g->nparts;  /* the totals: laid out as each part's sums */
    g->S = g->G + FG_J * FG_J;
    g->P = g->S + FG_J;
    g->sdy = g->P + (size_t)k * FG_J;
    g->sdyx = g->sdy + k;
    memset(g->G, 0, sizeof(double) * acc_doubles(g));
    g->xk = nc_malloc(sizeof(float) * (size_t)n * k * (h / 2) * (w / 2));
    g->wtap = nc_malloc(sizeof(float) * 9 * c * k);
    return 0;
}

void fg_free(FirstGrad *g) {
    free(g->work);
    free(g->acc);
    free(g->xk);
    free(g->wtap);
    memset(g, 0, sizeof *g);
}

/* The parts' sums of elements [e0, e1) of acc, in part order, into the totals. */
static void reduce(FirstGrad *g, size_t e0, size_t e1) {
    size_t na = acc_doubles(g);
    for (size_t e = e0; e < e1; e++) {
        double v = 0.0;
        for (int p = 0; p < g->nparts; p++) v += g->acc[na * p + e];
        g->G[e] = v;
    }
}

/* The images of part p: a fixed share of the batch, so that the sums do not depend on which
   thread takes the part (the parts are taken as threads free up). */
static int part_begin(const FirstGrad *g, int p) { return (int)((long)g->n * p / g->nparts); }

/* xp (c, h + 2, w + 2): image x with a border of zeros */
static void pad_image(float *xp, const float *x, int c, int h, int w) {
    int W = w + 2;
    memset(xp, 0, sizeof(float) * ((size_t)c * (h + 2) * W + 8));
    for (int ci = 0; ci < c; ci++)
        for (int y = 0; y < h; y++) memcpy(xp + ((size_t)ci * (h + 2) + y + 1) * W + 1, x + ((size_t)ci * h + y) * w, sizeof(float) * w);
}

/* rows (9 c, h w): row (ci, a, b) holds input pixel (y + a - 1, x + b - 1) of channel ci at (y, x) */
static void patch_rows(float *rows, const float *xp, int c, int h, int w) {
    int W = w + 2;
    for (int ci = 0; ci < c; ci++)
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) {
                float *r = rows + (size_t)((ci * 3 + a) * 3 + b) * h * w;
                for (int y = 0; y < h; y++) {
                    const float *src = xp + ((size_t)ci * (h + 2) + y + a) * W + b;
                    float *dst = r + (size_t)y * w;
                    for (int x = 0; x < w; x++) dst[x] = src[x];
                }
            }
}

static inline float hsum(v8 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* gimg (FG_J x FG_J): the dot products of the K rows (K a multiple of 3, each hw floats, hw a
   multiple of 8), in blocks of 3 x 3 over the upper triangle, mirrored */
static void gram(float *gimg, const float *rows, int K, int hw) {
    for (int bi = 0; bi < K; bi += 3)
        for (int bj = bi; bj < K; bj += 3) {
            const float *a0 = rows + (size_t)bi * hw, *a1 = a0 + hw, *a2 = a1 + hw;
            const float *b0 = rows + (size_t)bj * hw, *b1 = b0 + hw, *b2 = b1 + hw;
            v8 s[9];
            for (int t = 0; t < 9; t++) s[t] = _mm256_setzero_ps();
            for (int p = 0; p < hw; p += 8) {
                v8 x0 = _mm256_loadu_ps(a0 + p), x1 = _mm256_loadu_ps(a1 + p), x2 = _mm256_loadu_ps(a2 + p);
                v8 y0 = _mm256_loadu_ps(b0 + p), y1 = _mm256_loadu_ps(b1 + p), y2 = _mm256_loadu_ps(b2 + p);
                s[0] = _mm256_fmadd_ps(x0, y0, s[0]); s[1] = _mm256_fmadd_ps(x0, y1, s[1]); s[2] = _mm256_fmadd_ps(x0, y2, s[2]);
                s[3] = _mm256_fmadd_ps(x1, y0, s[3]); s[4] = _mm256_fmadd_ps(x1, y1, s[4]); s[5] = _mm256_fmadd_ps(x1, y2, s[5]);
                s[6] = _mm256_fmadd_ps(x2, y0, s[6]); s[7] = _mm256_fmadd_ps(x2, y1, s[7]); s[8] = _mm256_fmadd_ps(x2, y2, s[8]);
            }
            for (int r = 0; r < 3; r++)
                for (int q = 0; q < 3; q++) {
                    float v = hsum(s[r * 3 + q]);
                    gimg[(bi + r) * FG_J + bj + q] = v;
                    gimg[(bj + q) * FG_J + bi + r] = v;
                }
        }
}

/* xq (h + 2, w + 2, 4): image x (c, h, w) with a border of zeros, pixel by pixel, each pixel's
   c inputs padded to 4; a window row of 3 pixels is then one 8-float and one 4-float load. */
static void pad_pixels(float *xq, const float *x, int c, int h, int w) {
    int W = w + 2;
    size_t rowf = (size_t)W * 4;
    memset(xq, 0, sizeof(float) * rowf);                          /* the border rows */
    memset(xq + (h + 1) * rowf, 0, sizeof(float) * rowf);
    const v8 zero = _mm256_setzero_ps();
    for (int y = 0; y < h; y++) {
        float *d = xq + (y + 1) * rowf;
        const float *x0 = x + (size_t)y * w, *x1 = x0 + (size_t)h * w, *x2 = x1 + (size_t)h * w;
        _mm_storeu_ps(d, _mm_setzero_ps());                          /* the border columns */
        _mm_storeu_ps(d + (size_t)(w + 1) * 4, _mm_setzero_ps());
        int xx = 0;
        for (; xx + 8 <= w; xx += 8) {  /* 8 pixels: the c rows' 8 floats transposed into 8 pixels of 4 */
            v8 c0 = _mm256_loadu_ps(x0 + xx), c1 = c > 1 ? _mm256_loadu_ps(x1 + xx) : zero;
            v8 c2 = c > 2 ? _mm256_loadu_ps(x2 + xx) : zero;
            v8 t0 = _mm256_unpacklo_ps(c0, c1), t1 = _mm256_unpackhi_ps(c0, c1);
            v8 t2 = _mm256_unpacklo_ps(c2, zero), t3 = _mm256_unpackhi_ps(c2, zero);
            v8 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);  /* pixels 0, 4 and 1, 5 */
            v8 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);  /* 2, 6 and 3, 7 */
            float *p = d + (size_t)(xx + 1) * 4;
            _mm256_storeu_ps(p, _mm256_permute2f128_ps(u0, u1, 0x20));
            _mm256_storeu_ps(p + 8, _mm256_permute2f128_ps(u2, u3, 0x20));
            _mm256_storeu_ps(p + 16, _mm256_permute2f128_ps(u0, u1, 0x31));
            _mm256_storeu_ps(p + 24, _mm256_permute2f128_ps(u2, u3, 0x31));
        }
        for (; xx < w; xx++) {
            float *p = d + (size_t)(xx + 1) * 4;
            p[0] = x0[xx]; p[1] = c > 1 ? x1[xx] : 0.0f; p[2] = c > 2 ? x2[xx] : 0.0f; p[3] = 0.0f;
        }
    }
}

/* One pooled pixel's share of routed_patches: gradient gv times the patch whose first pixel is at
   r in xq, added to the five sums. */
static inline __attribute__((always_inline)) void route_one(v8 *s0, v8 *s1, v8 *s2, v8 *s01, __m128 *s2b,
                                                            const float *r, v8 gv, int W) {
    *s0 = _mm256_fmadd_ps(gv, _mm256_loadu_ps(r), *s0);
    *s1 = _mm256_fmadd_ps(gv, _mm256_loadu_ps(r + 4 * W), *s1);
    *s2 = _mm256_fmadd_ps(gv, _mm256_loadu_ps(r + 8 * W), *s2);
    *s01 = _mm256_fmadd_ps(gv, _mm256_loadu2_m128(r + 4 * W + 8, r + 8), *s01);
    *s2b = _mm_fmadd_ps(_mm256_castps256_ps128(gv), _mm_loadu_ps(r + 8 * W + 8), *s2b);
}

/* One image's share of fg_moments, channel block by channel block (8 channels):
   - first a pass over the block's pooled pixels q, 8 channels at once: the batch norm's two sums
     s1 += sum dy', s2 += sum dy' (xk - mean) per lane (dy' the gradient where the window passes
     one), and a table of each (q, channel)'s patch offset in xq and its gradient dy' (offset 0
     and gradient 0 where none passes);
   - then per channel the routed gradient's patch sums from the table, gathered from xq (in L1):
     sums a0-a2 of window rows 0-2's first two pixels, b01 of rows 0 and 1's third pixel, b2 of
     row 2's, into pimg (k, FG_J).
   The table takes the index arithmetic and the loads it depends on out of the gather loop; the
   sums are those of the separate passes, in their order (the same bits). */
static void routed_patches(float *pimg, double *s1, double *s2, int32_t *toff, float *tg, const float *xq,
                           const float *dy, const uint8_t *idx, const float *xk, const float *mean, int c, int k,
                           int h, int w) {
    int oh = h / 2, ow = w / 2, q_n = oh * ow, W = w + 2;
    const __m256i one = _mm256_set1_epi32(1), four = _mm256_set1_epi32(4), row = _mm256_set1_epi32(4 * W);
    for (int cb = 0; cb < k / 8; cb++) {
        size_t o = (size_t)cb * q_n * 8;
        const float *g = dy + o, *xb = xk + o;
        const uint8_t *ix = idx + o;
        v8 r1 = _mm256_setzero_ps(), r2 = r1, mu = _mm256_loadu_ps(mean + cb * 8);
        for (int oy = 0, q = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++, q++) {
                __m256i pos = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(ix + (size_t)q * 8)));
                __m256i live = _mm256_cmpgt_epi32(four, pos);  /* position 4: no gradient */
                v8 gv = _mm256_and_ps(_mm256_loadu_ps(g + (size_t)q * 8), _mm256_castsi256_ps(live));
                r1 = _mm256_add_ps(r1, gv);
                r2 = _mm256_fmadd_ps(gv, _mm256_sub_ps(_mm256_loadu_ps(xb + (size_t)q * 8), mu), r2);
                /* the window's first pixel (2 oy, 2 ox), then pos's column (pos & 1) and row (pos >> 1) */
                __m256i off = _mm256_add_epi32(_mm256_slli_epi32(_mm256_and_si256(pos, one), 2),
                                               _mm256_mullo_epi32(_mm256_srli_epi32(pos, 1), row));
                off = _mm256_and_si256(_mm256_add_epi32(off, _mm256_set1_epi32((2 * oy * W + 2 * ox) * 4)), live);
                _mm256_storeu_si256((__m256i *)(toff + (size_t)q * 8), off);
                _mm256_storeu_ps(tg + (size_t)q * 8, gv);
            }
        float f1[8], f2[8];
        _mm256_storeu_ps(f1, r1);
        _mm256_storeu_ps(f2, r2);
        for (int l = 0; l < 8; l++) { s1[cb * 8 + l] += f1[l]; s2[cb * 8 + l] += f2[l]; }
        for (int l = 0; l < 8; l++) {
            /* two sets of sums, for even and odd pooled pixels, so that the FMA's latency hides */
            v8 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, b01 = a0, e0 = a0, e1 = a0, e2 = a0, f01 = a0;
            __m128 b2 = _mm_setzero_ps(), fb2 = b2;
            int q = 0;
            for (; q + 1 < q_n; q += 2) {
                route_one(&a0, &a1, &a2, &b01, &b2, xq + toff[q * 8 + l], _mm256_broadcast_ss(tg + q * 8 + l), W);
                route_one(&e0, &e1, &e2, &f01, &fb2, xq + toff[q * 8 + 8 + l], _mm256_broadcast_ss(tg + q * 8 + 8 + l), W);
            }
            if (q < q_n) route_one(&a0, &a1, &a2, &b01, &b2, xq + toff[q * 8 + l], _mm256_broadcast_ss(tg + q * 8 + l), W);
            a0 = _mm256_add_ps(a0, e0); a1 = _mm256_add_ps(a1, e1); a2 = _mm256_add_ps(a2, e2);
            b01 = _mm256_add_ps(b01, f01); b2 = _mm_add_ps(b2, fb2);
            float t[5][8], *d = pimg + (size_t)(cb * 8 + l) * FG_J;
            _mm256_storeu_ps(t[0], a0); _mm256_storeu_ps(t[1], a1); _mm256_storeu_ps(t[2], a2);
            _mm256_storeu_ps(t[3], b01); _mm_storeu_ps(t[4], b2);
            for (int j = 0; j < FG_J; j++) d[j] = 0.0f;
            for (int ci = 0; ci < c; ci++)
                for (int ra = 0; ra < 3; ra++) {  /* patch entry (ci, ra, b) at ci 9 + ra 3 + b */
                    float *e = d + ci * 9 + ra * 3;
                    e[0] = t[ra][ci];
                    e[1] = t[ra][4 + ci];
                    e[2] = ra < 2 ? t[3][4 * ra + ci] : t[4][ci];
                }
        }
    }
}

/* xs (c, h + 2, w + 4) and 8 floats of slack: image x with a border of zeros, two columns wide
   left and right (row length w + 4; pixel (y, x) at row y + 1, column x + 2) */
static void pad_wide(float *xs, const float *x, int c, int h, int w) {
    int W = w + 4;
    memset(xs, 0, sizeof(float) * ((size_t)c * (h + 2) * W + 8));
    for (int ci = 0; ci < c; ci++)
        for (int y = 0; y < h; y++) memcpy(xs + ((size_t)ci * (h + 2) + y + 1) * W + 2, x + ((size_t)ci * h + y) * w, sizeof(float) * w);
}

/* One row pair's share of gram_rows's sums, added to f: f[0..4] the correlations C_d (d = -2..2)
   of row r1 with row r2 shifted by d over the real columns 1..w of the padded rows, 8 columns a
   vector (two sets of sums, for even and odd vectors, so that the FMA's latency hides); f[5]
   and f[6] in lane d + 2 column w (which b = 0 leaves out of its window) and column 1 (which
   b = 2 leaves out) of r1 against r2 shifted by d. */
static inline __attribute__((always_inline)) void row_pair(v8 *f, const float *r1, const float *r2, int w) {
    v8 t0 = _mm256_setzero_ps(), t1 = t0, t2 = t0, t3 = t0, t4 = t0;
    int v = 2;
    for (; v + 8 < w + 2; v += 16) {  /* padded columns v - 1 = 1..w */
        v8 p = _mm256_loadu_ps(r1 + v), q = _mm256_loadu_ps(r1 + v + 8);
        f[0] = _mm256_fmadd_ps(p, _mm256_loadu_ps(r2 + v - 2), f[0]);
        f[1] = _mm256_fmadd_ps(p, _mm256_loadu_ps(r2 + v - 1), f[1]);
        f[2] = _mm256_fmadd_ps(p, _mm256_loadu_ps(r2 + v), f[2]);
        f[3] = _mm256_fmadd_ps(p, _mm256_loadu_ps(r2 + v + 1), f[3]);
        f[4] = _mm256_fmadd_ps(p, _mm256_loadu_ps(r2 + v + 2), f[4]);
        t0 = _mm256_fmadd_ps(q, _mm256_loadu_ps(r2 + v + 6), t0);
        t1 = _mm256_fmadd_ps(q, _mm256_loadu_ps(r2 + v + 7), t1);
        t2 = _mm256_fmadd_ps(q, _mm256_loadu_ps(r2 + v + 8), t2);
        t3 = _mm256_fmadd_ps(q, _mm256_loadu_ps(r2 + v + 9), t3);
        t4 = _mm256_fmadd_ps(q, _mm256_loadu_ps(r2 + v + 10), t4);
    }
    for (; v < w + 2; v += 8) {
        v8 p = _mm256_loadu_ps(r1 + v);
        f[0] = _mm256_fmadd_ps(p, _mm256_loadu_ps(r2 + v - 2), f[0]);
        f[1] = _mm256_fmadd_ps(p, _mm256_loadu_ps(r2 + v - 1), f[1]);
        f[2] = _mm256_fmadd_ps(p, _mm256_loadu_ps(r2 + v), f[2]);
        f[3] = _mm256_fmadd_ps(p, _mm256_loadu_ps(r2 + v + 1), f[3]);
        f[4] = _mm256_fmadd_ps(p, _mm256_loadu_ps(r2 + v + 2), f[4]);
    }
    f[0] = _mm256_add_ps(f[0], t0); f[1] = _mm256_add_ps(f[1], t1); f[2] = _mm256_add_ps(f[2], t2);
    f[3] = _mm256_add_ps(f[3], t3); f[4] = _mm256_add_ps(f[4], t4);
    f[5] = _mm256_fmadd_ps(_mm256_broadcast_ss(r1 + w + 1), _mm256_loadu_ps(r2 + w - 1), f[5]);
    f[6] = _mm256_fmadd_ps(_mm256_broadcast_ss(r1 + 2), _mm256_loadu_ps(r2), f[6]);
}

/* f's sums as numbers: cd[d + 2] = C_d, e0 and e2 the left-out columns' lanes */
static void row_sums(float *cd, float *e0, float *e2, const v8 *f) {
    for (int d = 0; d < 5; d++) cd[d] = hsum(f[d]);
    _mm256_storeu_ps(e0, f[5]);
    _mm256_storeu_ps(e2, f[6]);
}

/* gimg (FG_J x FG_J) and simg (FG_J) of one image from xs (pad_wide), w a multiple of 8. Patch
   entries (ci, a, b) and (cj, a2, b2) multiply padded rows r = y + a of channel ci and r + da of
   cj (da = a2 - a), y = 0..h-1, shifted by b and b2: the 3 x 3 entries over b, b2 are 5
   correlations C_d (d = b2 - b) of each row pair over the real columns, less the one column that
   b = 0 or b = 2 leaves out of its window. The row pairs depend on a only through the range of r,
   and the border rows are zeros: for da != 0 every a sums the same pairs (those of two real
   rows), for da = 0 a = 0 leaves out row h and a = 2 row 1. So per channel pair and da the sums
   run once over the rows (24 of them for 3 channels, not 45 row-type pairs; each row pair
   5 FMAs a vector of columns), and da = 0 subtracts its border row. */
static void gram_rows(float *gimg, float *simg, const float *xs, int c, int h, int w) {
    int W = w + 4;
    for (int ci = 0; ci < c; ci++)
        for (int cj = ci; cj < c; cj++)
            for (int da = ci == cj ? 0 : -2; da <= 2; da++) {
                const float *x1 = xs + (size_t)ci * (h + 2) * W, *x2 = xs + (size_t)cj * (h + 2) * W;
                int r0 = da < 0 ? 1 - da : 1, r1 = da > 0 ? h - da : h;  /* both rows real */
                v8 f[7], fb[2][7];
                for (int j = 0; j < 7; j++) f[j] = fb[0][j] = fb[1][j] = _mm256_setzero_ps();
                for (int r = r0; r <= r1; r++) row_pair(f, x1 + (size_t)r * W, x2 + (size_t)(r + da) * W, w);
                float cd[3][5], e0[3][8], e2[3][8];  /* [a]: a's sums */
                row_sums(cd[1], e0[1], e2[1], f);
                if (da == 0) {  /* a = 0 leaves out row h, a = 2 row 1 */
                    row_pair(fb[0], x1 + (size_t)h * W, x2 + (size_t)h * W, w);
                    row_pair(fb[1], x1 + W, x2 + W, w);
                    float bcd[5], be0[8], be2[8];
                    for (int k = 0; k < 2; k++) {
                        int a = k == 0 ? 0 : 2;
                        row_sums(bcd, be0, be2, fb[k]);
                        for (int d = 0; d < 5; d++) cd[a][d] = cd[1][d] - bcd[d];
                        for (int l = 0; l < 8; l++) { e0[a][l] = e0[1][l] - be0[l]; e2[a][l] = e2[1][l] - be2[l]; }
                    }
                } else {
                    memcpy(cd[0], cd[1], sizeof cd[1]); memcpy(cd[2], cd[1], sizeof cd[1]);
                    memcpy(e0[0], e0[1], sizeof e0[1]); memcpy(e0[2], e0[1], sizeof e0[1]);
                    memcpy(e2[0], e2[1], sizeof e2[1]); memcpy(e2[2], e2[1], sizeof e2[1]);
                }
                for (int a = 0; a < 3; a++) {
                    int a2 = a + da;
                    if (a2 < 0 || a2 > 2) continue;
                    for (int b = 0; b < 3; b++)
                        for (int bb = 0; bb < 3; bb++) {
                            int d = bb - b;
                            float v = cd[a][d + 2] - (b == 0 ? e0[a][d + 2] : 0.0f) - (b == 2 ? e2[a][d + 2] : 0.0f);
                            int j1 = (ci * 3 + a) * 3 + b, j2 = (cj * 3 + a2) * 3 + bb;
                            gimg[j1 * FG_J + j2] = v;
                            gimg[j2 * FG_J + j1] = v;
                        }
                }
            }
    for (int ci = 0; ci < c; ci++) {  /* S: the window sums, rows a .. a + h - 1 less the column left out */
        const float *x1 = xs + (size_t)ci * (h + 2) * W;
        v8 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        float cw = 0.0f, c1 = 0.0f;  /* columns w and 1 */
        for (int r = 1; r <= h; r++) {
            const float *row = x1 + (size_t)r * W;
            for (int v = 2, j = 0; v < w + 2; v += 8, j = (j + 1) & 3) acc[j] = _mm256_add_ps(acc[j], _mm256_loadu_ps(row + v));
            cw += row[w + 1];
            c1 += row[2];
        }
        float t = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
        for (int a = 0; a < 3; a++) {  /* the border rows are zeros: a = 0 leaves out row h, a = 2 row 1 */
            float ta = t, wa = cw, ca = c1;
            if (a != 1) {
                const float *row = x1 + (size_t)(a == 0 ? h : 1) * W;
                v8 rs = _mm256_setzero_ps();
                for (int v = 2; v < w + 2; v += 8) rs = _mm256_add_ps(rs, _mm256_loadu_ps(row + v));
                ta -= hsum(rs);
                wa -= row[w + 1];
                ca -= row[2];
            }
            simg[(ci * 3 + a) * 3 + 0] = ta - wa;
            simg[(ci * 3 + a) * 3 + 1] = ta;
            simg[(ci * 3 + a) * 3 + 2] = ta - ca;
        }
    }
}

void fg_gram(FirstGrad *g, const float *x) {
    int c = g->c, h = g->h, w = g->w, hw = h * w, K = 9 * c;
    size_t na = acc_doubles(g), nw = work_floats(g), e1 = (size_t)FG_J * FG_J + FG_J;
    for (int p = 0; p < g->nparts; p++) memset(g->acc + na * p, 0, sizeof(double) * e1);
    #pragma omp parallel num_threads(g->nthr)
    {
        int t = omp_get_thread_num();
        float *xp = g->work + nw * t, *rows = xp + pad_floats(g) + pix_floats(g), *gimg = rows + rows_floats(g);
        float simg[FG_J];
        #pragma omp for schedule(dynamic, 1)
        for (int pt = 0; pt < g->nparts; pt++) {
            double *aG = g->acc + na * pt, *aS = aG + FG_J * FG_J;
            for (int i = part_begin(g, pt); i < part_begin(g, pt + 1); i++) {
                if (w % 8 == 0) {  /* the correlations, from the image padded wide (in rows' place) */
                    pad_wide(rows, x + (size_t)i * c * hw, c, h, w);
                    gram_rows(gimg, simg, rows, c, h, w);
                } else {  /* the dot products of the patches laid out row by row */
                    pad_image(xp, x + (size_t)i * c * hw, c, h, w);
                    patch_rows(rows, xp, c, h, w);
                    gram(gimg, rows, K, hw);
                    for (int j = 0; j < K; j++) {
                        const float *r = rows + (size_t)j * hw;
                        v8 s = _mm256_setzero_ps();
                        for (int p = 0; p < hw; p += 8) s = _mm256_add_ps(s, _mm256_loadu_ps(r + p));
                        simg[j] = hsum(s);
                    }
                }
                for (int a = 0; a < K; a++)
                    for (int b = 0; b < K; b++) aG[a * FG_J + b] += gimg[a * FG_J + b];
                for (int j = 0; j < K; j++) aS[j] += simg[j];
            }
        }
    }
    reduce(g, 0, e1);
}

int fg_forward_supported(const FirstGrad *g) { return g->k % 16 == 0; }

/* The four outputs of the pooled window at px (its first pixel in xq, rows W4 floats apart) for
   the 16 channels whose taps are at wv (tap t's 16 filters at wv + 16 t): s[p][j], pixel p,
   channels 8 j .. 8 j + 7. C, the input channels, is a constant so that the 9 C taps unroll;
   with the window's 4 rows in registers and the filters 16 floats a tap, every load is at a
   constant offset (filters k floats a tap and rows at run-time offsets made the compiler keep
   27 offsets on the stack: a third more loads). */
static inline __attribute__((always_inline)) void window_conv(v8 s[4][2], const float *px, const float *wv, int W4,
                                                              const int C) {
    const float *rw[4] = {px, px + W4, px + 2 * W4, px + 3 * W4};
    for (int p = 0; p < 4; p++) s[p][0] = s[p][1] = _mm256_setzero_ps();
    #pragma GCC unroll 27
    for (int t = 0; t < 9 * C; t++) {
        int ci = t % C, tap = t / C, a = tap / 3, b = tap % 3;
        const float *r = rw[a] + b * 4 + ci, *rn = rw[a + 1] + b * 4 + ci;
        v8 w0 = _mm256_loadu_ps(wv + 16 * t), w1 = _mm256_loadu_ps(wv + 16 * t + 8);
        v8 b0 = _mm256_broadcast_ss(r), b1 = _mm256_broadcast_ss(r + 4);
        v8 b2 = _mm256_broadcast_ss(rn), b3 = _mm256_broadcast_ss(rn + 4);
        s[0][0] = _mm256_fmadd_ps(b0, w0, s[0][0]); s[0][1] = _mm256_fmadd_ps(b0, w1, s[0][1]);
        s[1][0] = _mm256_fmadd_ps(b1, w0, s[1][0]); s[1][1] = _mm256_fmadd_ps(b1, w1, s[1][1]);
        s[2][0] = _mm256_fmadd_ps(b2, w0, s[2][0]); s[2][1] = _mm256_fmadd_ps(b2, w1, s[2][1]);
        s[3][0] = _mm256_fmadd_ps(b3, w0, s[3][0]); s[3][1] = _mm256_fmadd_ps(b3, w1, s[3][1]);
    }
}

/* fg_forward's work on image i (its pixels already in xq), for C input channels. */
static inline __attribute__((always_inline)) void forward_image(FirstGrad *g, float *y, uint8_t *idx, int keep,
                                                                const float *xq, int i, const float *mean,
                                                                const float *var, const float *gamma,
                                                                const float *beta, float eps, const int C) {
    int k = g->k, oh = g->h / 2, ow = g->w / 2, q_n = oh * ow, W = g->w + 2;
    for (int cb = 0; cb < k / 8; cb += 2) {
        v8 vs0, vb0, vs1, vb1, s[4][2];
        bnp_scale_shift(&vs0, &vb0, mean, var, gamma, beta, eps, cb);
        bnp_scale_shift(&vs1, &vb1, mean, var, gamma, beta, eps, cb + 1);
        size_t o0 = ((size_t)i * (k / 8) + cb) * q_n * 8, o1 = o0 + (size_t)q_n * 8;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                window_conv(s, xq + ((size_t)(2 * oy) * W + 2 * ox) * 4, g->wtap + (size_t)cb * 8 * 9 * C, 4 * W, C);
                size_t q = ((size_t)oy * ow + ox) * 8;
                bnp_pool_window(y + o0 + q, idx + o0 + q, keep ? g->xk + o0 + q : NULL, s[0][0], s[1][0], s[2][0], s[3][0],
                            vs0, vb0);
                bnp_pool_window(y + o1 + q, idx + o1 + q, keep ? g->xk + o1 + q : NULL, s[0][1], s[1][1], s[2][1], s[3][1],
                            vs1, vb1);
            }
    }
}

void fg_forward(FirstGrad *g, float *y, uint8_t *idx, int keep, const float *x, const float *wt, const float *mean,
                const float *var, const float *gamma, const float *beta, float eps) {
    int c = g->c, k = g->k, hw = g->h * g->w;
    size_t nw = work_floats(g);
    for (int o = 0; o < k; o++)  /* wtap[o / 16][t][o % 16], t = (a 3 + b) c + ci: wt[o][ci][a][b] */
        for (int ci = 0; ci < c; ci++)
            for (int t = 0; t < 9; t++)
                g->wtap[((size_t)(o / 16) * 9 * c + t * c + ci) * 16 + o % 16] = wt[((size_t)o * c + ci) * 9 + t];
    #pragma omp parallel num_threads(g->nthr)
    {
        float *xq = g->work + nw * omp_get_thread_num() + pad_floats(g);
        #pragma omp for schedule(dynamic, 1)
        for (int i = 0; i < g->n; i++) {
            pad_pixels(xq, x + (size_t)i * c * hw, c, g->h, g->w);
            if (c == 3) forward_image(g, y, idx, keep, xq, i, mean, var, gamma, beta, eps, 3);
            else if (c == 2) forward_image(g, y, idx, keep, xq, i, mean, var, gamma, beta, eps, 2);
            else forward_image(g, y, idx, keep, xq, i, mean, var, gamma, beta, eps, 1);
        }
    }
}

void fg_stats(const FirstGrad *g, const float *wt, double *s1, double *s2) {
    int K = 9 * g->c;
    for (int o = 0; o < g->k; o++) {
        const float *wo = wt + (size_t)o * K;
        double a = 0.0, b = 0.0;
        for (int i = 0; i < K; i++) {
            double gw = 0.0;
            for (int j = 0; j < K; j++) gw += g->G[i * FG_J + j] * wo[j];
            a += wo[i] * g->S[i];
            b += wo[i] * gw;
        }
        s1[o] = a;
        s2[o] = b;
    }
}

void fg_moments(FirstGrad *g, const float *x, const float *dy, const uint8_t *idx, const float *mean,
                const float *var, float eps) {
    int c = g->c, k = g->k, h = g->h, w = g->w, hw = h * w, q_n = (h / 2) * (w / 2);
    size_t na = acc_doubles(g), nw = work_floats(g), e0 = (size_t)FG_J * FG_J + FG_J;
    size_t qk = (size_t)k * q_n;
    for (int p = 0; p < g->nparts; p++) memset(g->acc + na * p + e0, 0, sizeof(double) * (na - e0));
    #pragma omp parallel num_threads(g->nthr)
    {
        int t = omp_get_thread_num();
        float *xq = g->work + nw * t + pad_floats(g), *pimg = xq + pix_floats(g) + rows_floats(g) + FG_J * FG_J;
        int32_t *toff = (int32_t *)(pimg + (size_t)k * FG_J);
        float *tg = (float *)(toff + (size_t)8 * q_n);
        #pragma omp for schedule(dynamic, 1)
        for (int pt = 0; pt < g->nparts; pt++) {
            double *aP = g->acc + na * pt + e0, *a1 = aP + (size_t)k * FG_J, *a2 = a1 + k;
            for (int i = part_begin(g, pt); i < part_begin(g, pt + 1); i++) {
                pad_pixels(xq, x + (size_t)i * c * hw, c, h, w);
                routed_patches(pimg, a1, a2, toff, tg, xq, dy + (size_t)i * qk, idx + (size_t)i * qk, g->xk + (size_t)i * qk,
                               mean, c, k, h, w);
                for (size_t e = 0; e < (size_t)k * FG_J; e++) aP[e] += pimg[e];
            }
        }
    }
    reduce(g, e0, na);
    for (int o = 0; o < k; o++) g->sdyx[o] *= 1.0 / sqrt((double)var[o] + eps);
}

void fg_weight_grad(const FirstGrad *g, float *dw, const float *wt, const float *mean, const float *var,
                    const float *gamma, float eps, const double *sdy, const double *sdyx, double m) {
    int K = 9 * g->c;
    for (int o = 0; o < g->k; o++) {
        double invstd = 1.0 / sqrt((double)var[o] + eps);
        double ka = sdy[o] / m, kb = sdyx[o] * invstd / m, kc = gamma[o] * invstd;
        const float *wo = wt + (size_t)o * K;
        for (int j = 0; j < K; j++) {
            double wg = 0.0;  /* sum_p y_o(p) col_j(p) */
            for (int a = 0; a < K; a++) wg += (double)wo[a] * g->G[a * FG_J + j];
            double v = g->P[(size_t)o * FG_J + j] - ka * g->S[j] - kb * (wg - (double)mean[o] * g->S[j]);
            dw[(size_t)o * K + j] += (float)(kc * v);
        }
    }
}
