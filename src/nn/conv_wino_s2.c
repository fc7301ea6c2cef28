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
// so U has 36 distinct planes, like F(4x4, 3x3)'s. Blocks of tb tiles are shared by the threads:
// all transform a block's inputs, then split its 81 products by point, then transform it back.
// Every output is the same chain of operations whatever the thread count or block size.
#include "conv_wino_s2.h"
#include "kern_avx2.h"

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
    const char *off = getenv("NCELAB_WINO_S2");
    return !(off && *off == '0');
}

/* The filter plane of point q along an axis: 0 for the even points 0-3, 1-5 for the odd 4-8. */
static inline int plane_1d(int q) { return q < 4 ? 0 : q - 3; }
static inline int plane_of(int p) { return plane_1d(p / 9) * 6 + plane_1d(p % 9); }

/* ---- 1-D transforms, each on 8 channels at once ---- */

/* t = T^T s (9 -> 9): s the samples x[2 o0 - 1 + q]; t[0..3] the even ones, t[4..8] F(4, 2)'s
   B^T of the odd ones e = (s0, s2, s4, s6, s8), rows (2 -1 -2 1 0) (0 -2 -1 1 0) (0 2 -3 1 0)
   (0 -1 0 1 0) (0 2 -1 -2 1). */
static inline void bt9(v8 *t, const v8 *s) {
    const v8 two = _mm256_set1_ps(2.0f);
    v8 d31 = _mm256_sub_ps(s[6], s[2]), d32 = _mm256_sub_ps(s[6], s[4]);
    t[0] = s[1]; t[1] = s[3]; t[2] = s[5]; t[3] = s[7];
    t[4] = _mm256_fmadd_ps(two, _mm256_sub_ps(s[0], s[4]), d31);
    t[5] = _mm256_fnmadd_ps(two, s[2], d32);
    t[6] = _mm256_fmadd_ps(two, _mm256_sub_ps(s[2], s[4]), d32);
    t[7] = d31;
    t[8] = _mm256_fmadd_ps(two, _mm256_sub_ps(s[2], s[6]), _mm256_sub_ps(s[8], s[4]));
}

/* y = S^T m (9 -> 4): m[0..3] added as they are, F(4, 2)'s A^T of m[4..8], rows (1 1 1 1 0)
   (0 1 -1 2 0) (0 1 1 4 0) (0 1 -1 8 1). */
static inline void st4(v8 *y, const v8 *m) {
    const v8 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f), eight = _mm256_set1_ps(8.0f);
    v8 s12 = _mm256_add_ps(m[5], m[6]), d12 = _mm256_sub_ps(m[5], m[6]);
    y[0] = _mm256_add_ps(_mm256_add_ps(m[0], m[4]), _mm256_add_ps(s12, m[7]));
    y[1] = _mm256_add_ps(m[1], _mm256_fmadd_ps(two, m[7], d12));
    y[2] = _mm256_add_ps(m[2], _mm256_fmadd_ps(four, m[7], s12));
    y[3] = _mm256_add_ps(m[3], _mm256_add_ps(_mm256_fmadd_ps(eight, m[7], d12), m[8]));
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

/* the 4x4 tile tt of y (kn channels) = S^T M S from M[p][tl][k], rows ld floats apart, clipped
   to the output. */
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
    long tb = 96;
    const char *env = getenv("NCELAB_WS2_TB");
    if (env && atoi(env) > 0) tb = atoi(env);
    tb = tb < 6 ? 6 : tb / 6 * 6;
    wc->tb = (int)(tb < wc->tiles ? tb : wc->tiles);
    return 0;
}

/* Rows of V and M: the channels and 16 floats, against cache-set conflicts of power-of-two
   strides (as conv_wino.c's global mode). */
static int row_stride(int cn) { return cn + 16; }

size_t ws2_scratch_floats(const Ws2Conv *wc) {
    return (size_t)NPT * wc->tb * (row_stride(wc->c) + row_stride(wc->k));
}

size_t ws2_plane(const Ws2Conv *wc) { return (size_t)wc->c * wc->k + 16; }

size_t ws2_wbuf_floats(const Ws2Conv *wc) { return NPL * ws2_plane(wc); }

void ws2_set_work(Ws2Conv *wc, float *scratch, float *wbuf) {
    wc->scratch = scratch;
    wc->u = wbuf;
}

/* ---- the weight transform: U[a][b] = F g F^T of every 3x3 filter g (F: f6 along an axis), in
   panels of 16 filters: filter (ob 16 + j, channel i) at plane a 6 + b, float (ob c + i) 16 + j. */

static void filter_transform(const float *g, float *u36) {
    float t[6][3];
    for (int s = 0; s < 3; s++) {      /* along y, per column s */
        float col[6];
        f6(col, g[s], g[3 + s], g[6 + s]);
        for (int a = 0; a < 6; a++) t[a][s] = col[a];
    }
    for (int a = 0; a < 6; a++) f6(u36 + a * 6, t[a][0], t[a][1], t[a][2]);  /* along x */
}

void ws2_weights_ref(Ws2Conv *wc, const float *w) {
    int C = wc->c, nb = wc->k / 16;
    size_t plane = ws2_plane(wc);
    for (int ob = 0; ob < nb; ob++)
        for (int i = 0; i < C; i++)
            for (int j = 0; j < 16; j++) {
                float u[NPL];
                filter_transform(w + ((size_t)(ob * 16 + j) * C + i) * 9, u);
                for (int pl = 0; pl < NPL; pl++) wc->u[pl * plane + ((size_t)ob * C + i) * 16 + j] = u[pl];
            }
}

void ws2_weights(Ws2Conv *wc, const float *w) {
    int C = wc->c, nb = wc->k / 16;
    size_t plane = ws2_plane(wc);
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(9 * C));
    #pragma omp parallel for collapse(3) schedule(static) num_threads(wc->nthr)
    for (int ob = 0; ob < nb; ob++)
        for (int i = 0; i < C; i++)
            for (int half = 0; half < 2; half++) {
                const float *g = w + ((size_t)(ob * 16 + half * 8) * C + i) * 9;
                v8 gg[9], t[6][3], col[6], u[6];
                for (int q = 0; q < 9; q++) gg[q] = _mm256_i32gather_ps(g + q, idx, 4);
                for (int s = 0; s < 3; s++) {
                    f6v(col, gg[s], gg[3 + s], gg[6 + s]);
                    for (int a = 0; a < 6; a++) t[a][s] = col[a];
                }
                float *dst = wc->u + ((size_t)ob * C + i) * 16 + half * 8;
                for (int a = 0; a < 6; a++) {
                    f6v(u, t[a][0], t[a][1], t[a][2]);
                    for (int b = 0; b < 6; b++) _mm256_storeu_ps(dst + (a * 6 + b) * plane, u[b]);
                }
            }
}

/* ---- the forward ---- */

void ws2_forward(Ws2Conv *wc, const float *x, float *y) {
    int C = wc->c, K = wc->k, tb = wc->tb, lv = row_stride(C), lm = row_stride(K);
    long T = wc->tiles;
    size_t plane = ws2_plane(wc);
    float *V = wc->scratch, *M = V + (size_t)NPT * tb * lv;
    for (long s0 = 0; s0 < T; s0 += tb) {
        int sn = (int)(T - s0 < tb ? T - s0 : tb);
        #pragma omp parallel num_threads(wc->nthr)
        {
            #pragma omp for schedule(static)
            for (int t = 0; t < sn; t++) input_tile(wc, x, C, lv, tile_at(wc, s0 + t), V, t, tb);
            #pragma omp for schedule(static)
            for (int p = 0; p < NPT; p++) {
                const float *Vp = V + (size_t)p * tb * lv, *Up = wc->u + plane_of(p) * plane;
                float *Mp = M + (size_t)p * tb * lm;
                for (int kb = 0; kb < K; kb += 16)
                    for (int t = 0; t < sn; t += 6)
                        kern_any(sn - t < 6 ? sn - t : 6, C, Vp + (size_t)t * lv, lv, 1, Up + (size_t)kb * C, 16,
                                 Mp + (size_t)t * lm + kb, lm, 0);
            }
            #pragma omp for schedule(static)
            for (int t = 0; t < sn; t++) output_tile(wc, M, K, lm, t, tb, tile_at(wc, s0 + t), y);
        }
    }
}
