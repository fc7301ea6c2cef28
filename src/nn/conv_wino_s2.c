// conv_wino_s2.c -- a 3x3 convolution with stride 2 and padding 1 by polyphase Winograd, on
// oneDNN's nChw8c layout (8 channels of a pixel = one AVX2 register), AVX2/FMA.
//
// Along one axis an output o of a stride-2 3x3 convolution reads the input at 2o - 1, 2o and
// 2o + 1: the even sample 2o through the centre tap w1, the odd samples e[o] = x[2o - 1] and
// e[o + 1] through the outer taps w0 and w2. The odd part is a stride-1 correlation of e with the
// 2-tap filter (w0, w2), which Winograd F(4, 2) computes on 5 points (0, 1, -1, 2, infinity); the
// even part is 4 plain products. So along an axis the 9 input samples x[2 o0 - 1 .. 2 o0 + 7] of
// 4 outputs map to 9 points (4 even samples as they are, 5 transformed odd ones), and in 2-D a
// 4x4 output tile is 81 products per channel pair instead of the direct 144:
//   1. input:   V[p][t][c] = (T^T d T)[p] of the 9x9 input patch d of tile t (81 points)
//   2. product: M[p][t][k] = sum_c V[p][t][c] U[plane(p)][c][k]
//   3. output:  the 4x4 tile = S^T M S, S^T the 9 -> 4 map (even points added as they are, the odd
//      ones through F(4, 2)'s A^T).
// The filters along an axis take 6 values (w1 at the 4 even points, G (w0, w2) at the 5 odd ones),
// so U has 36 distinct planes, like F(4x4, 3x3)'s. Up to 128 x 256 channels the forward and the
// backward data give each thread its own blocks of tiles, taken as it frees up, which it
// transforms, multiplies and transforms back in its L2; above, blocks of tb tiles are shared by
// the threads: all transform a block's inputs, then split its 81 products by point, then transform
// it back. Every output is the same chain of operations whatever the thread count, the block size
// or which of the two. The weight gradient likewise: up to 128 x 256 each thread sums its static
// share of the blocks into its own sums (bits that depend on the thread count), above the threads
// share blocks and one sum.
#include "conv_wino_s2.h"
#include "kern_avx2.h"
#include "taps_avx2.h"

#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define NPT 81                  /* 9 x 9 points */
#define NPL 36                  /* 6 x 6 distinct filter planes */
typedef __m256 v8;

int ws2_supported(int c, int k) {
    if (c % 16 || k % 16 || c <= 0 || k <= 0) return 0;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    const char *all = getenv("NCELAB_WINOGRAD"), *off = getenv("NCELAB_WINO_S2");
    return !(all && *all == '0') && !(off && *off == '0');
}

/* The filter plane of point q along an axis: 0 for the even points 0-3, 1-5 for the odd 4-8. */
static inline int plane_1d(int q) { return q < 4 ? 0 : q - 3; }
static inline int plane_of(int p) { return plane_1d(p / 9) * 6 + plane_1d(p % 9); }

/* ---- 1-D transforms, each on 8 channels at once ---- */

/* u = F(4, 2)'s B^T e (5 -> 5), rows (2 -1 -2 1 0) (0 -2 -1 1 0) (0 2 -3 1 0) (0 -1 0 1 0)
   (0 2 -1 -2 1) */
static inline void bt5(v8 *u, v8 e0, v8 e1, v8 e2, v8 e3, v8 e4) {
    const v8 two = _mm256_set1_ps(2.0f);
    v8 d31 = _mm256_sub_ps(e3, e1), d32 = _mm256_sub_ps(e3, e2);
    u[0] = _mm256_fmadd_ps(two, _mm256_sub_ps(e0, e2), d31);
    u[1] = _mm256_fnmadd_ps(two, e1, d32);
    u[2] = _mm256_fmadd_ps(two, _mm256_sub_ps(e1, e2), d32);
    u[3] = d31;
    u[4] = _mm256_fmadd_ps(two, _mm256_sub_ps(e1, e3), _mm256_sub_ps(e4, e2));
}

/* o = F(4, 2)'s A^T n (5 -> 4), rows (1 1 1 1 0) (0 1 -1 2 0) (0 1 1 4 0) (0 1 -1 8 1) */
static inline void at5(v8 *o, const v8 *n) {
    const v8 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f), eight = _mm256_set1_ps(8.0f);
    v8 s12 = _mm256_add_ps(n[1], n[2]), d12 = _mm256_sub_ps(n[1], n[2]);
    o[0] = _mm256_add_ps(_mm256_add_ps(n[0], s12), n[3]);
    o[1] = _mm256_fmadd_ps(two, n[3], d12);
    o[2] = _mm256_fmadd_ps(four, n[3], s12);
    o[3] = _mm256_add_ps(_mm256_fmadd_ps(eight, n[3], d12), n[4]);
}

/* The forward's input: t = T^T s (9 -> 9), s the samples x[2 o0 - 1 + q]; t[0..3] the even
   ones, t[4..8] B^T of the odd ones (s0, s2, s4, s6, s8). */
static inline void bt9(v8 *t, const v8 *s) {
    t[0] = s[1]; t[1] = s[3]; t[2] = s[5]; t[3] = s[7];
    bt5(t + 4, s[0], s[2], s[4], s[6], s[8]);
}

/* The forward's output: y = S^T m (9 -> 4), the even points plus A^T of the odd ones. */
static inline void st4(v8 *y, const v8 *m) {
    v8 o[4];
    at5(o, m + 4);
    for (int i = 0; i < 4; i++) y[i] = _mm256_add_ps(m[i], o[i]);
}

/* The backward data's input, the output gradients f = dy[o0 .. o0 + 4] (5 -> 9): the even
   points f[0..3] (dx[2 (o0 + i)] = w1 dy[o0 + i]), the odd ones B^T f (dx[2 (o0 + i) + 1] =
   w2 dy[o0 + i] + w0 dy[o0 + i + 1], the rotated 2-tap filter). */
static inline void bt9d(v8 *t, const v8 *f) {
    t[0] = f[0]; t[1] = f[1]; t[2] = f[2]; t[3] = f[3];
    bt5(t + 4, f[0], f[1], f[2], f[3], f[4]);
}

/* The backward data's output (9 -> 8): dx[2 (o0 + i)] = m[i], dx[2 (o0 + i) + 1] = A^T m[4..8]. */
static inline void st8(v8 *y, const v8 *m) {
    v8 o[4];
    at5(o, m + 4);
    for (int i = 0; i < 4; i++) { y[2 * i] = m[i]; y[2 * i + 1] = o[i]; }
}

/* The weight gradient's output-gradient transform (4 -> 9): g as it is at the even points, A g
   (A = the transpose of A^T) at the odd ones. */
static inline void a9(v8 *t, const v8 *g) {
    const v8 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f);
    v8 s02 = _mm256_add_ps(g[0], g[2]), s13 = _mm256_add_ps(g[1], g[3]);
    t[0] = g[0]; t[1] = g[1]; t[2] = g[2]; t[3] = g[3];
    t[4] = g[0];
    t[5] = _mm256_add_ps(s02, s13);
    t[6] = _mm256_sub_ps(s02, s13);
    t[7] = _mm256_fmadd_ps(two, _mm256_fmadd_ps(four, g[3], g[1]), _mm256_fmadd_ps(four, g[2], g[0]));
    t[8] = g[3];
}

/* u = the filter along an axis (3 taps -> 6 plane values): w1, then F(4, 2)'s G (w0, w2) with
   rows (1/2 0) (-1/2 -1/2) (-1/6 1/6) (1/6 1/3) (0 1); scalar, the reference of f6v. */
static void f6(float *u, float w0, float w1, float w2) {
    u[0] = w1;
    u[1] = w0 * 0.5f;
    u[2] = (w0 + w2) * -0.5f;
    u[3] = (w2 - w0) / 6.0f;
    u[4] = (w0 + w2 * 2.0f) / 6.0f;
    u[5] = w2;
}

/* f6 of 8 filters at once: f6's operations in f6's order, so f6's bits */
static inline void f6v(v8 *u, v8 w0, v8 w1, v8 w2) {
    const v8 six = _mm256_set1_ps(6.0f);
    u[0] = w1;
    u[1] = _mm256_mul_ps(w0, _mm256_set1_ps(0.5f));
    u[2] = _mm256_mul_ps(_mm256_add_ps(w0, w2), _mm256_set1_ps(-0.5f));
    u[3] = _mm256_div_ps(_mm256_sub_ps(w2, w0), six);
    u[4] = _mm256_div_ps(_mm256_add_ps(w0, _mm256_mul_ps(w2, _mm256_set1_ps(2.0f))), six);
    u[5] = w2;
}

/* ---- tiles ---- */

typedef struct { int n, y0, x0; } Tile;   /* image, top-left output pixel */

static Tile tile_at(const Ws2Conv *wc, long t) {
    long per = (long)wc->tiles_y * wc->tiles_x;
    Tile r;
    r.n = (int)(t / per);
    int q = (int)(t % per);
    r.y0 = (q / wc->tiles_x) * 4;
    r.x0 = (q % wc->tiles_x) * 4;
    return r;
}

/* Rows of V, M and Y: the channels and 16 floats, against cache-set conflicts of power-of-two
   strides (as conv_wino.c's global mode). */
static int row_stride(int cn) { return cn + 16; }

/* V[p][tl][c] = T^T d T for the 9x9 input patch (rows 2 y0 - 1 .. 2 y0 + 7, zero outside) of tile
   tt of x (cn channels), rows ld floats apart. */
static void input_tile(const Ws2Conv *wc, const float *x, int cn, int ld, Tile tt, float *V, int tl, int tb) {
    int H = wc->h, W = wc->w, CB = cn / 8;
    for (int cb = 0; cb < CB; cb++) {
        const float *base = x + (size_t)(tt.n * CB + cb) * H * W * 8;
        v8 s[9], tr[9][9], col[9], out[9];
        for (int r = 0; r < 9; r++) {
            int y = 2 * tt.y0 - 1 + r;
            for (int j = 0; j < 9; j++) {
                int xx = 2 * tt.x0 - 1 + j;
                s[j] = (y >= 0 && y < H && xx >= 0 && xx < W) ? _mm256_loadu_ps(base + ((size_t)y * W + xx) * 8)
                                                              : _mm256_setzero_ps();
            }
            bt9(tr[r], s);
        }
        for (int j = 0; j < 9; j++) {
            for (int r = 0; r < 9; r++) col[r] = tr[r][j];
            bt9(out, col);
            for (int i = 0; i < 9; i++) _mm256_storeu_ps(V + ((size_t)(i * 9 + j) * tb + tl) * ld + cb * 8, out[i]);
        }
    }
}

/* The 4x4 output tile tt of y (kn channels) = S^T M S from M[p][tl][k], rows ld floats apart,
   clipped to the output. */
static void output_tile(const Ws2Conv *wc, const float *M, int kn, int ld, int tl, int tb, Tile tt, float *y) {
    int OH = wc->oh, OW = wc->ow, KB = kn / 8;
    for (int kb = 0; kb < KB; kb++) {
        float *base = y + (size_t)(tt.n * KB + kb) * OH * OW * 8;
        v8 m[9], tr[9][4], col[9], out[4];
        for (int i = 0; i < 9; i++) {
            for (int j = 0; j < 9; j++) m[j] = _mm256_loadu_ps(M + ((size_t)(i * 9 + j) * tb + tl) * ld + kb * 8);
            st4(tr[i], m);
        }
        for (int b = 0; b < 4; b++) {
            int xx = tt.x0 + b;
            for (int i = 0; i < 9; i++) col[i] = tr[i][b];
            st4(out, col);
            if (xx >= OW) continue;
            for (int a = 0; a < 4; a++)
                if (tt.y0 + a < OH) _mm256_storeu_ps(base + ((size_t)(tt.y0 + a) * OW + xx) * 8, out[a]);
        }
    }
}

/* The backward data's input: V[p][tl][k] from the 5x5 output-gradient patch (rows y0 .. y0 + 4,
   zero outside) of tile tt of dy (kn channels). */
static void grad_in_tile(const Ws2Conv *wc, const float *dy, int kn, int ld, Tile tt, float *V, int tl, int tb) {
    int OH = wc->oh, OW = wc->ow, KB = kn / 8;
    for (int kb = 0; kb < KB; kb++) {
        const float *base = dy + (size_t)(tt.n * KB + kb) * OH * OW * 8;
        v8 f[5], tr[5][9], col[5], out[9];
        for (int r = 0; r < 5; r++) {
            int y = tt.y0 + r;
            for (int j = 0; j < 5; j++) {
                int xx = tt.x0 + j;
                f[j] = (y < OH && xx < OW) ? _mm256_loadu_ps(base + ((size_t)y * OW + xx) * 8) : _mm256_setzero_ps();
            }
            bt9d(tr[r], f);
        }
        for (int j = 0; j < 9; j++) {
            for (int r = 0; r < 5; r++) col[r] = tr[r][j];
            bt9d(out, col);
            for (int i = 0; i < 9; i++) _mm256_storeu_ps(V + ((size_t)(i * 9 + j) * tb + tl) * ld + kb * 8, out[i]);
        }
    }
}

/* The backward data's output: the 8x8 input-gradient patch (rows 2 y0 .. 2 y0 + 7) of tile tt
   of dx (cn channels) from M[p][tl][c], clipped to the image; acc 1 adds it onto dx. */
static void grad_out_tile(const Ws2Conv *wc, const float *M, int cn, int ld, int tl, int tb, Tile tt, float *dx, int acc) {
    int H = wc->h, W = wc->w, CB = cn / 8;
    for (int cb = 0; cb < CB; cb++) {
        float *base = dx + (size_t)(tt.n * CB + cb) * H * W * 8;
        v8 m[9], tr[9][8], col[9], out[8];
        for (int i = 0; i < 9; i++) {
            for (int j = 0; j < 9; j++) m[j] = _mm256_loadu_ps(M + ((size_t)(i * 9 + j) * tb + tl) * ld + cb * 8);
            st8(tr[i], m);
        }
        for (int b = 0; b < 8; b++) {
            int xx = 2 * tt.x0 + b;
            if (xx >= W) break;
            for (int i = 0; i < 9; i++) col[i] = tr[i][b];
            st8(out, col);
            for (int a = 0; a < 8; a++) {
                int y = 2 * tt.y0 + a;
                if (y >= H) break;
                float *p = base + ((size_t)y * W + xx) * 8;
                _mm256_storeu_ps(p, acc ? _mm256_add_ps(_mm256_loadu_ps(p), out[a]) : out[a]);
            }
        }
    }
}

/* The weight gradient's output-gradient transform: Y[p][tl][k] from the 4x4 tile tt of dy (zero
   outside). */
static void grad_w_tile(const Ws2Conv *wc, const float *dy, int kn, int ld, Tile tt, float *Y, int tl, int tb) {
    int OH = wc->oh, OW = wc->ow, KB = kn / 8;
    for (int kb = 0; kb < KB; kb++) {
        const float *base = dy + (size_t)(tt.n * KB + kb) * OH * OW * 8;
        v8 g[4], tr[4][9], col[4], out[9];
        for (int a = 0; a < 4; a++) {
            int y = tt.y0 + a;
            for (int b = 0; b < 4; b++) {
                int xx = tt.x0 + b;
                g[b] = (y < OH && xx < OW) ? _mm256_loadu_ps(base + ((size_t)y * OW + xx) * 8) : _mm256_setzero_ps();
            }
            a9(tr[a], g);
        }
        for (int j = 0; j < 9; j++) {
            for (int a = 0; a < 4; a++) col[a] = tr[a][j];
            a9(out, col);
            for (int i = 0; i < 9; i++) _mm256_storeu_ps(Y + ((size_t)(i * 9 + j) * tb + tl) * ld + kb * 8, out[i]);
        }
    }
}

/* ---- set-up ---- */

int ws2_init(Ws2Conv *wc, int n, int c, int k, int h, int w) {
    memset(wc, 0, sizeof *wc);
    if (!ws2_supported(c, k) || n <= 0 || h <= 0 || w <= 0) return -1;
    wc->n = n; wc->c = c; wc->k = k; wc->h = h; wc->w = w;
    wc->oh = (h + 1) / 2;
    wc->ow = (w + 1) / 2;
    wc->tiles_y = (wc->oh + 3) / 4;
    wc->tiles_x = (wc->ow + 3) / 4;
    wc->tiles = (long)n * wc->tiles_y * wc->tiles_x;
    wc->nthr = omp_get_max_threads();
    long tb = 48;
    const char *env = getenv("NCELAB_WS2_TB");
    if (env && atoi(env) > 0) tb = atoi(env);
    tb = tb < 6 ? 6 : tb / 6 * 6;
    wc->tb = (int)(tb < wc->tiles ? tb : wc->tiles);
    /* Each thread's own blocks up to 128 x 256 channels (ResNet-18's layer3.0.conv1, 6 tiles: V and M
       in 809 KB), as many tiles as fit 768 KiB of L2, at least 6; at 256 x 512 shared blocks were
       faster (the 36 planes of U, 19 MB, read once a block) */
    long ttb = (long)c * k <= 128L * 256 ? (768L << 10) / ((long)NPT * 4 * (row_stride(c) + row_stride(k))) : 0;
    const char *tenv = getenv("NCELAB_WS2_TTB");
    if (tenv) ttb = atoi(tenv);
    wc->ttb = ttb <= 0 ? 0 : (int)(ttb < 6 ? 6 : ttb / 6 * 6);
    /* The weight gradient in each thread's own blocks and sums over the same channel range: with
       shared blocks the threads pass the transforms and the sums to each other every block */
    long tbw = (long)c * k <= 128L * 256 ? 48 : 0;
    const char *wenv = getenv("NCELAB_WS2_TBW");
    if (wenv) tbw = atoi(wenv);
    wc->tbw = tbw <= 0 ? 0 : (int)(tbw < 6 ? 6 : tbw / 6 * 6);
    wc->dsums = wc->tbw ? wc->nthr : 1;
    return 0;
}

size_t ws2_scratch_floats(const Ws2Conv *wc) {
    size_t shared = (size_t)NPT * wc->tb, own = (size_t)NPT * wc->ttb * wc->nthr, ownw = (size_t)NPT * wc->tbw * wc->nthr;
    if (own < ownw) own = ownw;
    return (shared > own ? shared : own) * (row_stride(wc->c) + row_stride(wc->k));
}

size_t ws2_plane(const Ws2Conv *wc) { return (size_t)wc->c * wc->k + 16; }

size_t ws2_wbuf_floats(const Ws2Conv *wc) { return (size_t)NPL * ws2_plane(wc) * wc->dsums; }

void ws2_set_work(Ws2Conv *wc, float *scratch, float *wbuf) {
    wc->scratch = scratch;
    wc->u = wc->dw_acc = wbuf;
}

/* ---- the weight transform: U[a][b] = F g F^T of every 3x3 filter g (F: f6 along an axis), in
   panels of 16 filters of the pass's output channels: for the forward (36, k / 16, c, 16), for
   the backward data the filters rotated by 180 degrees and transposed, (36, c / 16, k, 16). Row
   (ob, i), lane j of a pass is the filter at w + (ob 16 + j) lane + i inner (9 floats). */

typedef struct { int cin, cout; long lane, inner; int rotate; } Rows;

static Rows pass_rows(const Ws2Conv *wc, Ws2Pass pass) {
    if (pass == WS2_FWD) return (Rows){wc->c, wc->k, 9L * wc->c, 9, 0};
    return (Rows){wc->k, wc->c, 9, 9L * wc->c, 1};
}

static void filter_transform(const float *g, int rotate, float *u36) {
    float gg[9], t[6][3];
    for (int q = 0; q < 9; q++) gg[q] = rotate ? g[8 - q] : g[q];
    for (int s = 0; s < 3; s++) {      /* along y, per column s */
        float col[6];
        f6(col, gg[s], gg[3 + s], gg[6 + s]);
        for (int a = 0; a < 6; a++) t[a][s] = col[a];
    }
    for (int a = 0; a < 6; a++) f6(u36 + a * 6, t[a][0], t[a][1], t[a][2]);  /* along x */
}

void ws2_weights_ref(Ws2Conv *wc, const float *w, Ws2Pass pass) {
    Rows r = pass_rows(wc, pass);
    size_t plane = ws2_plane(wc);
    for (int ob = 0; ob < r.cout / 16; ob++)
        for (int i = 0; i < r.cin; i++)
            for (int j = 0; j < 16; j++) {
                float u[NPL];
                filter_transform(w + (ob * 16 + j) * r.lane + i * r.inner, r.rotate, u);
                for (int pl = 0; pl < NPL; pl++) wc->u[pl * plane + ((size_t)ob * r.cin + i) * 16 + j] = u[pl];
            }
}

void ws2_weights(Ws2Conv *wc, const float *w, Ws2Pass pass) {
    Rows r = pass_rows(wc, pass);
    size_t plane = ws2_plane(wc);
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)r.lane));
    #pragma omp parallel for collapse(3) schedule(static) num_threads(wc->nthr)
    for (int ob = 0; ob < r.cout / 16; ob++)
        for (int i = 0; i < r.cin; i++)
            for (int half = 0; half < 2; half++) {
                const float *g = w + (ob * 16 + half * 8) * r.lane + i * r.inner;
                v8 gg[9], t[6][3], col[6], u[6];
                for (int q = 0; q < 9; q++) gg[q] = _mm256_i32gather_ps(g + (r.rotate ? 8 - q : q), idx, 4);
                for (int s = 0; s < 3; s++) {
                    f6v(col, gg[s], gg[3 + s], gg[6 + s]);
                    for (int a = 0; a < 6; a++) t[a][s] = col[a];
                }
                float *dst = wc->u + ((size_t)ob * r.cin + i) * 16 + half * 8;
                for (int a = 0; a < 6; a++) {
                    f6v(u, t[a][0], t[a][1], t[a][2]);
                    for (int b = 0; b < 6; b++) _mm256_storeu_ps(dst + (a * 6 + b) * plane, u[b]);
                }
            }
}

/* ---- the forward and the backward data ---- */

/* The 81 products of a block of sn tiles: M[p] = V[p] U[plane(p)] */
static void block_products(const Ws2Conv *wc, int cin, int cout, const float *V, int lv, float *M, int lm, int tb,
                           int p, int sn) {
    const float *Vp = V + (size_t)p * tb * lv, *Up = wc->u + plane_of(p) * ws2_plane(wc);
    float *Mp = M + (size_t)p * tb * lm;
    for (int kb = 0; kb < cout; kb += 16)
        for (int t = 0; t < sn; t += 6)
            kern_any(sn - t < 6 ? sn - t : 6, cin, Vp + (size_t)t * lv, lv, 1, Up + (size_t)kb * cin, 16,
                     Mp + (size_t)t * lm + kb, lm, 0);
}

/* Each thread's own blocks of ttb tiles, taken from a shared counter as it frees up: its inputs
   transformed, the 81 products, transformed back, all in the thread's L2. An output is the same
   chain of operations as in shared blocks (kern's sums do not depend on the rows beside them):
   the same bits. */
static void conv_pass_own(Ws2Conv *wc, int bwd, const float *src, float *dst, int acc) {
    int cin = bwd ? wc->k : wc->c, cout = bwd ? wc->c : wc->k, tb = wc->ttb;
    int lv = row_stride(cin), lm = row_stride(cout);
    long T = wc->tiles, nblk = (T + tb - 1) / tb, next = 0;
    #pragma omp parallel num_threads(wc->nthr)
    {
        float *V = wc->scratch + (size_t)omp_get_thread_num() * NPT * tb * (lv + lm), *M = V + (size_t)NPT * tb * lv;
        for (;;) {
            long blk;
            #pragma omp atomic capture
            blk = next++;
            if (blk >= nblk) break;
            long s0 = blk * tb;
            int sn = (int)(T - s0 < tb ? T - s0 : tb);
            for (int t = 0; t < sn; t++) {
                if (bwd) grad_in_tile(wc, src, cin, lv, tile_at(wc, s0 + t), V, t, tb);
                else input_tile(wc, src, cin, lv, tile_at(wc, s0 + t), V, t, tb);
            }
            for (int p = 0; p < NPT; p++) block_products(wc, cin, cout, V, lv, M, lm, tb, p, sn);
            for (int t = 0; t < sn; t++) {
                if (bwd) grad_out_tile(wc, M, cout, lm, t, tb, tile_at(wc, s0 + t), dst, acc);
                else output_tile(wc, M, cout, lm, t, tb, tile_at(wc, s0 + t), dst);
            }
        }
    }
}

/* Per block of tb tiles: the inputs transformed, the 81 products split by point, the block
   transformed back (or each thread's own blocks: conv_pass_own). bwd 0: y = x conv w; bwd 1: dx
   (=, or += with acc) from dy. */
static void conv_pass(Ws2Conv *wc, int bwd, const float *src, float *dst, int acc) {
    if (wc->ttb) { conv_pass_own(wc, bwd, src, dst, acc); return; }
    int cin = bwd ? wc->k : wc->c, cout = bwd ? wc->c : wc->k, tb = wc->tb;
    int lv = row_stride(cin), lm = row_stride(cout);
    long T = wc->tiles;
    float *V = wc->scratch, *M = V + (size_t)NPT * tb * lv;
    for (long s0 = 0; s0 < T; s0 += tb) {
        int sn = (int)(T - s0 < tb ? T - s0 : tb);
        #pragma omp parallel num_threads(wc->nthr)
        {
            #pragma omp for schedule(dynamic, 16)
            for (int t = 0; t < sn; t++) {
                if (bwd) grad_in_tile(wc, src, cin, lv, tile_at(wc, s0 + t), V, t, tb);
                else input_tile(wc, src, cin, lv, tile_at(wc, s0 + t), V, t, tb);
            }
            #pragma omp for schedule(dynamic, 1)
            for (int p = 0; p < NPT; p++) block_products(wc, cin, cout, V, lv, M, lm, tb, p, sn);
            #pragma omp for schedule(dynamic, 16)
            for (int t = 0; t < sn; t++) {
                if (bwd) grad_out_tile(wc, M, cout, lm, t, tb, tile_at(wc, s0 + t), dst, acc);
                else output_tile(wc, M, cout, lm, t, tb, tile_at(wc, s0 + t), dst);
            }
        }
    }
}

void ws2_forward(Ws2Conv *wc, const float *x, float *y) { conv_pass(wc, 0, x, y, 0); }

void ws2_backward_data(Ws2Conv *wc, const float *dy, float *dx, int acc) { conv_pass(wc, 1, dy, dx, acc); }

/* ---- the weight gradient ---- */

/* The sums D[plane] (c, k) = sum over the tiles and the plane's points of V[p]^T Y[p]. Shared
   blocks: per block of tb tiles the transforms of x and dy, then per (plane, 64 filters) a GEMM
   over the block's tiles for each point of the plane in order, added to D. An element is one
   chain of FMAs over the blocks, the points and the tiles in that order: the same bits for a
   given tb whatever the thread count. Plane 0 has 16 points, 10 planes 4 and 25 one: the jobs go
   out largest first. Own blocks (tbw): each thread the same over its static share of the blocks
   of tbw tiles, into its own D. */
#define WKG 64

typedef struct { int pts[NPL][16], npts[NPL], order[NPL]; } Planes;

static Planes planes_by_size(void) {
    Planes P;
    memset(&P, 0, sizeof P);
    for (int p = 0; p < NPT; p++) { int pl = plane_of(p); P.pts[pl][P.npts[pl]++] = p; }
    for (int i = 0, at = 0; i < 3; i++)               /* planes by size: 16, then 4, then 1 point */
        for (int pl = 0; pl < NPL; pl++)
            if (P.npts[pl] == (i == 0 ? 16 : i == 1 ? 4 : 1)) P.order[at++] = pl;
    return P;
}

/* Transforms tile s0 + t of x into V and of dy into Y, at row t of blocks of tb tiles. */
static void wgrad_tile(const Ws2Conv *wc, const float *x, const float *dy, long s0, int t, float *V, float *Y, int tb) {
    Tile tt = tile_at(wc, s0 + t);
    input_tile(wc, x, wc->c, row_stride(wc->c), tt, V, t, tb);
    grad_w_tile(wc, dy, wc->k, row_stride(wc->k), tt, Y, t, tb);
}

/* D[pl] (c, k0 .. k1) += (or =, with first) the products of the plane's points over sn tiles, in
   point order. */
static void plane_sums(const Ws2Conv *wc, const Planes *P, int pl, int k0, int k1, const float *V, const float *Y,
                       int tb, int sn, float *D, int first) {
    int C = wc->c, K = wc->k, lv = row_stride(C), ly = row_stride(K);
    float *Dp = D + pl * ws2_plane(wc);
    for (int q = 0; q < P->npts[pl]; q++) {
        const float *Vp = V + (size_t)P->pts[pl][q] * tb * lv, *Yp = Y + (size_t)P->pts[pl][q] * tb * ly;
        int acc = !first || q > 0;
        for (int kb = k0; kb < k1; kb += 16)
            for (int c = 0; c < C; c += 6)
                kern_any(C - c < 6 ? C - c : 6, sn, Vp + c, 1, lv, Yp + kb, ly, Dp + (size_t)c * K + kb, K, acc);
    }
}

static void weight_sums_own(Ws2Conv *wc, const float *x, const float *dy) {
    int tb = wc->tbw;
    long T = wc->tiles, nblk = (T + tb - 1) / tb;
    size_t per = (size_t)NPT * tb * (row_stride(wc->c) + row_stride(wc->k)), dsz = NPL * ws2_plane(wc);
    Planes P = planes_by_size();
    #pragma omp parallel num_threads(wc->nthr)
    {
        int me = omp_get_thread_num(), nt = omp_get_num_threads();
        float *V = wc->scratch + per * me, *Y = V + (size_t)NPT * tb * row_stride(wc->c), *D = wc->dw_acc + dsz * me;
        long b0 = nblk * me / nt, b1 = nblk * (me + 1) / nt;
        if (b0 == b1) memset(D, 0, sizeof(float) * dsz);
        for (int th = nt; th < wc->nthr && me == 0; th++) memset(wc->dw_acc + dsz * th, 0, sizeof(float) * dsz);
        for (long b = b0; b < b1; b++) {
            long s0 = b * tb;
            int sn = (int)(T - s0 < tb ? T - s0 : tb);
            for (int t = 0; t < sn; t++) wgrad_tile(wc, x, dy, s0, t, V, Y, tb);
            for (int i = 0; i < NPL; i++) plane_sums(wc, &P, i, 0, wc->k, V, Y, tb, sn, D, b == b0);
        }
    }
}

static void weight_sums(Ws2Conv *wc, const float *x, const float *dy) {
    if (wc->tbw) { weight_sums_own(wc, x, dy); return; }
    int tb = wc->tb, nkg = (wc->k + WKG - 1) / WKG;
    long T = wc->tiles;
    float *V = wc->scratch, *Y = V + (size_t)NPT * tb * row_stride(wc->c);
    Planes P = planes_by_size();
    for (long s0 = 0; s0 < T; s0 += tb) {
        int sn = (int)(T - s0 < tb ? T - s0 : tb);
        #pragma omp parallel num_threads(wc->nthr)
        {
            #pragma omp for schedule(dynamic, 16)
            for (int t = 0; t < sn; t++) wgrad_tile(wc, x, dy, s0, t, V, Y, tb);
            #pragma omp for schedule(dynamic, 1)
            for (int job = 0; job < NPL * nkg; job++) {
                int pl = P.order[job / nkg], k0 = job % nkg * WKG, k1 = k0 + WKG < wc->k ? k0 + WKG : wc->k;
                plane_sums(wc, &P, pl, k0, k1, V, Y, tb, sn, wc->dw_acc, s0 == 0);
            }
        }
    }
}

/* dw (k, c, 3, 3) += F^T D F, F^T along an axis (6 plane values -> 3 taps): tap 1 = z0 (the even
   points, summed in D already), taps 0 and 2 = G^T (z1 .. z5) with G^T rows (1/2 -1/2 -1/6 1/6 0)
   and (0 -1/2 1/6 1/3 1). F^T = S H with S = diag(1/6, 1, 1/6) and H integer, rows
   (0 3 -3 -1 1 0) (1 0 0 0 0 0) (0 0 -3 1 2 6): F^T D F = S (H D H^T) S, additions and
   products by powers of 2 (exact) and one product a tap by S_r S_q (FT_SCALE).
   ft3: w = H z, in double, scalar: the reference of the vectorised step. */
static void ft3(double *w, const double *z, int stride) {
    double z0 = z[0], z1 = z[stride], z2 = z[2 * stride], z3 = z[3 * stride], z4 = z[4 * stride], z5 = z[5 * stride];
    double d12 = z1 - z2;
    w[0] = (z4 - z3) + (2.0 * d12 + d12);
    w[1] = z0;
    w[2] = (4.0 * z5 + 2.0 * z5) + ((z3 + 2.0 * z4) - (2.0 * z2 + z2));
}

static const double FT_SCALE[3][3] = {
    {1.0 / 36.0, 1.0 / 6.0, 1.0 / 36.0}, {1.0 / 6.0, 1.0, 1.0 / 6.0}, {1.0 / 36.0, 1.0 / 6.0, 1.0 / 36.0}};

void ws2_weights_from_sums_ref(const Ws2Conv *wc, float *dw) {
    int C = wc->c, K = wc->k;
    size_t plane = ws2_plane(wc);
    for (int c = 0; c < C; c++)
        for (int k = 0; k < K; k++) {
            double z[NPL], t[6][3], o[3];
            for (int pl = 0; pl < NPL; pl++) {
                z[pl] = wc->dw_acc[pl * plane + (size_t)c * K + k];
                for (int th = 1; th < wc->dsums; th++) z[pl] += wc->dw_acc[(th * NPL + pl) * plane + (size_t)c * K + k];
            }
            for (int a = 0; a < 6; a++) ft3(t[a], z + a * 6, 1);   /* along x */
            for (int q = 0; q < 3; q++) {                          /* along y */
                double col[6];
                for (int a = 0; a < 6; a++) col[a] = t[a][q];
                ft3(o, col, 1);
                for (int r = 0; r < 3; r++) dw[((size_t)k * C + c) * 9 + r * 3 + q] += (float)(o[r] * FT_SCALE[r][q]);
            }
        }
}

typedef __m256d v4d;

static inline void ft3v(v4d *w, v4d z0, v4d z1, v4d z2, v4d z3, v4d z4, v4d z5) {
    const v4d two = _mm256_set1_pd(2.0), four = _mm256_set1_pd(4.0);
    v4d d12 = _mm256_sub_pd(z1, z2);
    w[0] = _mm256_add_pd(_mm256_sub_pd(z4, z3), _mm256_add_pd(_mm256_mul_pd(two, d12), d12));
    w[1] = z0;
    w[2] = _mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(four, z5), _mm256_mul_pd(two, z5)),
                         _mm256_sub_pd(_mm256_add_pd(z3, _mm256_mul_pd(two, z4)), _mm256_add_pd(_mm256_mul_pd(two, z2), z2)));
}

/* ft3's operations in its order, 4 filters at a time (ISO C contracts no products: the same
   bits), in blocks of WFK filters written by taps_store4, as conv_wino.c's weights_from_sums */
#define WFK 64
static void weights_from_sums(const Ws2Conv *wc, float *dw) {
    int C = wc->c, K = wc->k;
    size_t plane = ws2_plane(wc);
    #pragma omp parallel for collapse(2) schedule(static) num_threads(wc->nthr)
    for (int kb = 0; kb < K; kb += WFK)
        for (int c = 0; c < C; c++)
            for (int k4 = kb; k4 < kb + WFK && k4 < K; k4 += 4) {
                v4d z[NPL], t[6][3], o[3];
                __m128 tap[9];
                for (int pl = 0; pl < NPL; pl++) {
                    const float *d = wc->dw_acc + pl * plane + (size_t)c * K + k4;
                    z[pl] = _mm256_cvtps_pd(_mm_loadu_ps(d));
                    for (int th = 1; th < wc->dsums; th++)
                        z[pl] = _mm256_add_pd(z[pl], _mm256_cvtps_pd(_mm_loadu_ps(d + (size_t)th * NPL * plane)));
                }
                for (int a = 0; a < 6; a++)
                    ft3v(t[a], z[a * 6], z[a * 6 + 1], z[a * 6 + 2], z[a * 6 + 3], z[a * 6 + 4], z[a * 6 + 5]);
                for (int q = 0; q < 3; q++) {
                    ft3v(o, t[0][q], t[1][q], t[2][q], t[3][q], t[4][q], t[5][q]);
                    for (int r = 0; r < 3; r++)
                        tap[r * 3 + q] = _mm256_cvtpd_ps(_mm256_mul_pd(o[r], _mm256_set1_pd(FT_SCALE[r][q])));
                }
                taps_store4(dw + ((size_t)k4 * C + c) * 9, (size_t)C * 9, tap, 1);
            }
}

void ws2_backward_weights(Ws2Conv *wc, const float *x, const float *dy, float *dw) {
    weight_sums(wc, x, dy);
    weights_from_sums(wc, dw);
}
