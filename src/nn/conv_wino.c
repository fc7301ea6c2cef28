// conv_wino.c -- Winograd F(4x4, 3x3) for 3x3 convolutions with stride 1 and padding 1, on
// oneDNN's nChw8c layout (8 channels of a pixel = one AVX2 register), AVX2/FMA.
//
// With alpha = 6 points, a 4x4 output tile is A^T [(G g G^T) . (B^T d B)] A for the 6x6 input
// patch d around it and each 3x3 filter g: 36 multiplications per tile and channel pair
// instead of 144. Per block of tb tiles a thread
//   1. transforms the input patches:  V[xi][t][c]   = (B^T d B)[xi]      (36, tb, C)
//   2. multiplies, per point xi:      M[xi][t][k]   = sum_c V[xi][t][c] U[xi][c][k]
//      (U stored in panels of 16 filters, [xi][k / 16][c][16], read contiguously)
//   3. transforms M back to 4x4 output tiles.
// The backward data pass is the same with the filters rotated and transposed. The weight
// gradient uses the transposed algorithm F(3x3, 4x4) on the same points:
//   dW = G^T [sum_t (A dY_t A^T) . (B^T d_t B)] G,
// so the input transform of step 1 is shared and the sums over tiles are GEMMs again.
// The forward and backward data passes hand blocks to the threads as they free up (a block's
// results, its batch-norm sums too, are its own); so does the weight gradient its parts, fixed
// ranges of tiles with sums of their own: results depend on neither the thread count nor which
// thread ran what.
// Above 256 x 256 channels every block would re-read 9 MB or more of U: there (the global mode)
// steps 1-3 each run over all tiles of the batch at once, the products split by point and
// block of 96 tiles, rows padded by 16 floats against cache-set conflicts.
// From 128 x 128 channels the weight gradient keeps one sum D for the batch: the threads
// transform a block of tiles together (all of them in the global mode), then split its GEMMs by
// point and 64 filters, so D is read once a block, not once per thread's few tiles.
#include "conv_wino.h"
#include "kern_avx2.h"
#include "taps_avx2.h"

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NXI 36                  /* 6 x 6 transform points */
#define WKG 64                  /* filters per GEMM job of the weight gradient */
#define WTC 128                 /* tiles per GEMM call of the weight gradient */
#define TBW 48                  /* tiles a thread transforms at a time for its own weight-gradient
                                   sums once they exceed 512 KiB (64 x 128 channels: 12 -> 48 tiles
                                   took the pass 10-12% faster in medians, 96 about as fast, 192 slower) */
#define WPARTS 8                /* the weight gradient's parts in tiles mode below 128 x 128 channels:
                                   taken as threads free up, so that a thread slowed by the host no
                                   longer keeps the other waiting for its fixed half */
#define WTB 96                  /* tiles per shared weight-gradient block in tiles mode: V's and Y's
                                   planes then lie 2 KiB off a multiple of 4 KiB apart at 128
                                   channels (64 or 128 tiles put all 36 in one L1 set: 7-15% slower) */
typedef __m256 v8;

int wino_supported(int c, int k) {
    if (c % 16 || k % 16 || c <= 0 || k <= 0) return 0;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    const char *off = getenv("NCELAB_WINOGRAD");
    return !(off && *off == '0');
}

/* ---- 1-D transforms, each on 8 channels at once ---- */

/* t = B^T d (6 -> 6) */
static inline void bt6(v8 *t, const v8 *d) {
    const v8 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f), five = _mm256_set1_ps(5.0f);
    t[0] = _mm256_fmadd_ps(four, d[0], _mm256_fnmadd_ps(five, d[2], d[4]));
    t[1] = _mm256_fnmadd_ps(four, _mm256_add_ps(d[1], d[2]), _mm256_add_ps(d[3], d[4]));
    t[2] = _mm256_fmadd_ps(four, _mm256_sub_ps(d[1], d[2]), _mm256_sub_ps(d[4], d[3]));
    t[3] = _mm256_fmadd_ps(two, _mm256_sub_ps(d[3], d[1]), _mm256_sub_ps(d[4], d[2]));
    t[4] = _mm256_fmadd_ps(two, _mm256_sub_ps(d[1], d[3]), _mm256_sub_ps(d[4], d[2]));
    t[5] = _mm256_fmadd_ps(four, d[1], _mm256_fnmadd_ps(five, d[3], d[5]));
}

/* y = A^T m (6 -> 4) */
static inline void at4(v8 *y, const v8 *m) {
    const v8 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f), eight = _mm256_set1_ps(8.0f);
    v8 s12 = _mm256_add_ps(m[1], m[2]), d12 = _mm256_sub_ps(m[1], m[2]);
    v8 s34 = _mm256_add_ps(m[3], m[4]), d34 = _mm256_sub_ps(m[3], m[4]);
    y[0] = _mm256_add_ps(_mm256_add_ps(m[0], s12), s34);
    y[1] = _mm256_fmadd_ps(two, d34, d12);
    y[2] = _mm256_fmadd_ps(four, s34, s12);
    y[3] = _mm256_add_ps(_mm256_fmadd_ps(eight, d34, d12), m[5]);
}

/* t = A g (4 -> 6): the output gradient's transform in the weight gradient */
static inline void a6(v8 *t, const v8 *g) {
    const v8 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f);
    v8 s02 = _mm256_add_ps(g[0], g[2]), s13 = _mm256_add_ps(g[1], g[3]);
    v8 q02 = _mm256_fmadd_ps(four, g[2], g[0]), q13 = _mm256_fmadd_ps(four, g[3], g[1]);
    t[0] = g[0];
    t[1] = _mm256_add_ps(s02, s13);
    t[2] = _mm256_sub_ps(s02, s13);
    t[3] = _mm256_fmadd_ps(two, q13, q02);
    t[4] = _mm256_fnmadd_ps(two, q13, q02);
    t[5] = g[3];
}

/* u = G g (3 -> 6), scalar: the reference of g6v */
static void g6(float *u, const float *g, int stride) {
    float g0 = g[0], g1 = g[stride], g2 = g[2 * stride];
    u[0] = g0 / 4.0f;
    u[1] = -(g0 + g1 + g2) / 6.0f;
    u[2] = -(g0 - g1 + g2) / 6.0f;
    u[3] = g0 / 24.0f + g1 / 12.0f + g2 / 6.0f;
    u[4] = g0 / 24.0f - g1 / 12.0f + g2 / 6.0f;
    u[5] = g2;
}

/* G^T = S H with S = diag(1/24, 1/12, 1/6) and H integer, rows (6 -4 -4 1 1 0) (0 -2 2 1 -1 0)
   (0 -1 -1 1 1 6), so that the 2-D G^T D G = S (H D H^T) S is two passes of additions and
   products by powers of 2 (exact) and one product per tap by S_r S_q (GT_SCALE), where G^T's
   entries would take 54 divisions per (c, k).
   w = H z (6 -> 3), in double: the weight gradient's sums are large */
static void gt3(double *w, const double *z, int stride) {
    double z0 = z[0], z1 = z[stride], z2 = z[2 * stride], z3 = z[3 * stride], z4 = z[4 * stride], z5 = z[5 * stride];
    w[0] = 2.0 * (z0 + 2.0 * (z0 - (z1 + z2))) + (z3 + z4);
    w[1] = 2.0 * (z2 - z1) + (z3 - z4);
    w[2] = ((z3 + z4) - (z1 + z2)) + (4.0 * z5 + 2.0 * z5);
}

static const double GT_SCALE[3][3] = {
    {1.0 / 576.0, 1.0 / 288.0, 1.0 / 144.0}, {1.0 / 288.0, 1.0 / 144.0, 1.0 / 72.0}, {1.0 / 144.0, 1.0 / 72.0, 1.0 / 36.0}};

/* ---- tiles ---- */

typedef struct { int n, y0, x0; } Tile;   /* image, top-left output pixel */

static Tile tile_at(const WinoConv *wc, long t) {
    long per = (long)wc->tiles_y * wc->tiles_x;
    Tile r;
    r.n = (int)(t / per);
    int q = (int)(t % per);
    r.y0 = (q / wc->tiles_x) * 4;
    r.x0 = (q % wc->tiles_x) * 4;
    return r;
}

/* Rows of V, M and Y: cn floats, padded by 16 in the global mode, where a row stride of a
   power-of-two channel count (512 floats = 2 KiB) maps the rows of a GEMM onto a few L1 sets. */
static int row_stride(const WinoConv *wc, int cn) { return wc->global ? cn + 16 : cn; }

/* In the tiles mode a thread's block of tb tiles lies in 36 planes of V, M (and Y) tb + 1 tiles
   apart: at the convnet's shapes tb rows are 3 KiB (V) or 6 KiB (M), which puts the 36 planes a
   tile's transform stores to (or loads from) into 4 or 2 sets of the L1 cache; one more row
   spreads them (convnet forward 11.2 -> 10.4 ms at 32 x 64 channels, 8.2 -> 7.9 at 64 x 128;
   ResNet-18's first stage unchanged). The arithmetic is the same, so are the bits. */
static int tb_planes(const WinoConv *wc) { return wc->tb + 1; }

/* Rows of the weight gradient's V and Y: padded in every mode (its GEMM walks them by columns). */
static int wrow_stride(int cn) { return cn + 16; }

/* V[xi][tl][c] = B^T d B for the 6x6 patch (padding 1) of tile t of x (cn channels). */
static void input_tile(const WinoConv *wc, const float *x, int cn, int ld, Tile tt, float *V, int tl, int tb) {
    int H = wc->h, W = wc->w, CB = cn / 8;
    for (int cb = 0; cb < CB; cb++) {
        const float *base = x + (size_t)(tt.n * CB + cb) * H * W * 8;
        v8 d[6], tr[6][6], col[6], out[6];
        for (int r = 0; r < 6; r++) {
            int y = tt.y0 - 1 + r;
            for (int j = 0; j < 6; j++) {
                int xx = tt.x0 - 1 + j;
                d[j] = (y >= 0 && y < H && xx >= 0 && xx < W) ? _mm256_loadu_ps(base + ((size_t)y * W + xx) * 8)
                                                              : _mm256_setzero_ps();
            }
            bt6(tr[r], d);
        }
        for (int j = 0; j < 6; j++) {
            for (int r = 0; r < 6; r++) col[r] = tr[r][j];
            bt6(out, col);
            for (int i = 0; i < 6; i++) _mm256_storeu_ps(V + ((size_t)(i * 6 + j) * tb + tl) * ld + cb * 8, out[i]);
        }
    }
}

/* The per-channel sums a forward pass adds its output to (wino_forward_sums): shift (k floats)
   and this thread's s1, s2 (k doubles each); NULL in every other pass. */
typedef struct { const float *shift; double *s1, *s2; } OutSums;

/* y tile (kn channels) = A^T M A from M[xi][tl][k] (acc 1: y tile += it, 2: y tile = it by
   non-temporal stores, past the caches), clipped to the image; with os, the tile's sums of
   y - shift and (y - shift)^2 in float, added to os's in double. */
static inline __attribute__((always_inline)) void output_tile_sums(const WinoConv *wc, const float *M, int kn, int tl,
                                                                   int tb, Tile tt, float *y, int acc,
                                                                   const OutSums *os) {
    int ld = row_stride(wc, kn);
    int H = wc->h, W = wc->w, KB = kn / 8;
    for (int kb = 0; kb < KB; kb++) {
        float *base = y + (size_t)(tt.n * KB + kb) * H * W * 8;
        v8 m[6], tr[6][4], col[6], out[4], t1 = _mm256_setzero_ps(), t2 = t1, sh = t1;
        if (os) sh = _mm256_loadu_ps(os->shift + kb * 8);
        for (int i = 0; i < 6; i++) {
            for (int j = 0; j < 6; j++) m[j] = _mm256_loadu_ps(M + ((size_t)(i * 6 + j) * tb + tl) * ld + kb * 8);
            at4(tr[i], m);
        }
        for (int b = 0; b < 4; b++) {
            int xx = tt.x0 + b;
            for (int i = 0; i < 6; i++) col[i] = tr[i][b];
            at4(out, col);
            if (xx >= W) continue;
            for (int a = 0; a < 4; a++) {
                if (tt.y0 + a >= H) continue;
                float *p = base + ((size_t)(tt.y0 + a) * W + xx) * 8;
                if (acc == 2) _mm256_stream_ps(p, out[a]);  /* y and its rows are 32-byte aligned */
                else _mm256_storeu_ps(p, acc ? _mm256_add_ps(_mm256_loadu_ps(p), out[a]) : out[a]);
                if (os) {
                    v8 v = _mm256_sub_ps(out[a], sh);
                    t1 = _mm256_add_ps(t1, v);
                    t2 = _mm256_fmadd_ps(v, v, t2);
                }
            }
        }
        if (os) {
            double *d1 = os->s1 + kb * 8, *d2 = os->s2 + kb * 8;
            _mm256_storeu_pd(d1, _mm256_add_pd(_mm256_loadu_pd(d1), _mm256_cvtps_pd(_mm256_castps256_ps128(t1))));
            _mm256_storeu_pd(d1 + 4, _mm256_add_pd(_mm256_loadu_pd(d1 + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(t1, 1))));
            _mm256_storeu_pd(d2, _mm256_add_pd(_mm256_loadu_pd(d2), _mm256_cvtps_pd(_mm256_castps256_ps128(t2))));
            _mm256_storeu_pd(d2 + 4, _mm256_add_pd(_mm256_loadu_pd(d2 + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(t2, 1))));
        }
    }
}

/* output_tile_sums without and with the sums, each compiled on its own */
static void output_tile(const WinoConv *wc, const float *M, int kn, int tl, int tb, Tile tt, float *y, int acc) {
    output_tile_sums(wc, M, kn, tl, tb, tt, y, acc, NULL);
}

static void output_tile_os(const WinoConv *wc, const float *M, int kn, int tl, int tb, Tile tt, float *y, int acc,
                           const OutSums *os) {
    output_tile_sums(wc, M, kn, tl, tb, tt, y, acc, os);
}

/* Y[xi][tl][kb 8 ..] = A g A^T for channel block kb of the 4x4 output-gradient tile (zero outside).
   A function of its own, not inlined into the loop over the blocks: so compiled, the weight
   gradient's transforms took 4.2-4.9 -> 2.7 ms alone at the convnet's conv2 (32 x 64 channels),
   and the pass 3-10% less in medians of interleaved runs; the same bits. */
static __attribute__((noinline)) void grad_tile_block(const WinoConv *wc, const float *dy, int KB, int kb, int ld,
                                                      Tile tt, float *Y, int tl, int tb) {
    int H = wc->h, W = wc->w;
    const float *base = dy + (size_t)(tt.n * KB + kb) * H * W * 8;
    v8 g[4], tr[4][6], col[4], out[6];
    for (int a = 0; a < 4; a++) {
        int y = tt.y0 + a;
        for (int b = 0; b < 4; b++) {
            int xx = tt.x0 + b;
            g[b] = (y < H && xx < W) ? _mm256_loadu_ps(base + ((size_t)y * W + xx) * 8) : _mm256_setzero_ps();
        }
        a6(tr[a], g);
    }
    for (int j = 0; j < 6; j++) {
        for (int a = 0; a < 4; a++) col[a] = tr[a][j];
        a6(out, col);
        for (int i = 0; i < 6; i++) _mm256_storeu_ps(Y + ((size_t)(i * 6 + j) * tb + tl) * ld + kb * 8, out[i]);
    }
}

/* Y[xi][tl][k] = A g A^T for the 4x4 output-gradient tile, every channel block. */
static void grad_tile(const WinoConv *wc, const float *dy, int kn, int ld, Tile tt, float *Y, int tl, int tb) {
    for (int kb = 0; kb < kn / 8; kb++) grad_tile_block(wc, dy, kn / 8, kb, ld, tt, Y, tl, tb);
}

/* ---- set-up ---- */

int wino_init(WinoConv *wc, int n, int c, int k, int h, int w) {
    memset(wc, 0, sizeof *wc);
    if (!wino_supported(c, k) || n <= 0 || h <= 0 || w <= 0) return -1;
    wc->n = n; wc->c = c; wc->k = k; wc->h = h; wc->w = w;
    wc->tiles_y = (h + 3) / 4;
    wc->tiles_x = (w + 3) / 4;
    wc->tiles = (long)n * wc->tiles_y * wc->tiles_x;
    wc->nthr = omp_get_max_threads();
    /* Outputs above 4 MiB (8 times the L2 cache; the 32 MiB L3 is shared) are written by
       non-temporal stores, which need not read the lines first: the convnet's conv2 forward and
       backward data passes alone 8-10% faster, its step and ResNet-18's about 5% (interleaved
       rounds, 4 MiB against never). The reader, the batch norm or the next layer's backward,
       mostly found them in memory anyway. NCELAB_WINO_STREAM_MB=M sets the size in MiB. */
    const char *st = getenv("NCELAB_WINO_STREAM_MB");
    double big = (st && *st ? atof(st) : 4.0) * 1048576.0;
    wc->stream_fwd = (double)n * k * h * w * sizeof(float) > big;
    wc->stream_bwd = (double)n * c * h * w * sizeof(float) > big;
    /* Transformed filters above 24 MiB (512 x 512 channels: 38 MB, more than the L3 holds) are
       written past the caches too: at 512 x 512 the transform alone went from about 7 to 3 ms, the
       forward that reads them stayed as it was. NCELAB_WINO_STREAM_U_MB=M sets the size. */
    const char *su = getenv("NCELAB_WINO_STREAM_U_MB");
    wc->stream_u = (double)NXI * ((double)c * k + 16) * sizeof(float) > (su && *su ? atof(su) : 24.0) * 1048576.0;
    int cmax = c > k ? c : k;
    /* Blocked: each block of tb tiles reads all 36 c x k transformed filters, which pays while
       they are not too large: at 256 x 256 channels (9.4 MB of them, ResNet-18's third stage) the
       blocks took 0.85 of the global mode's forward and backward data and 0.92-0.98 of its weight
       gradient, at 512 x 512 (38 MB) 1.45. Beyond 256 x 256 the whole batch is transformed first
       and the 36 products run over all tiles at once (global), if that fits in 512 MiB. */
    wc->global = (long)c * k > 256L * 256;
    if (wc->global) {
        size_t need = (size_t)2 * NXI * wc->tiles * (cmax + 16);
        if (need > ((size_t)512 << 20) / sizeof(float)) { memset(wc, 0, sizeof *wc); return -1; }
        wc->tb = (int)wc->tiles;
        wc->per_thread = need;
        wc->wtb = (int)wc->tiles;
    } else {
        /* V and M of a block within about 384 KiB (the L2 cache is 512 KiB on the Zen 3 host; on a
           host with 1 MiB, blocks of twice the tiles were no faster: bench/README.md) */
        int tb = 98304 / (NXI * (c + k));
        const char *env = getenv("NCELAB_WINO_TB");
        if (env && atoi(env) > 0) tb = atoi(env);
        tb = tb < 6 ? 6 : tb / 6 * 6;
        wc->tb = tb;
        wc->per_thread = (size_t)2 * NXI * (tb + 1) * cmax;  /* planes tb + 1 tiles apart: tb_planes */
        /* The weight gradient: from 128 x 128 channels in blocks of WTB tiles shared by the
           threads, below in wparts fixed parts of the tiles. */
        if ((long)c * k >= 128L * 128) {
            long wtb = WTB;
            const char *wenv = getenv("NCELAB_WINO_WTB");
            if (wenv && atoi(wenv) > 0) wtb = atoi(wenv);
            wtb = wtb < 16 ? 16 : wtb / 16 * 16;
            wc->wtb = (int)(wtb < wc->tiles ? wtb : wc->tiles);
        }
        /* Below, each part's sums D cross the caches once per tbw tiles: tb while D is
           within 512 KiB, else TBW (NCELAB_WINO_TBW=N sets it). */
        long tbw = (size_t)NXI * c * k * sizeof(float) > (512u << 10) ? TBW : tb;
        const char *tenv = getenv("NCELAB_WINO_TBW");
        if (tenv && atoi(tenv) > 0) tbw = atoi(tenv);
        wc->tbw = (int)tbw;
        if (!wc->wtb) {
            long wp = WPARTS;
            const char *penv = getenv("NCELAB_WINO_WPARTS");
            if (penv && atoi(penv) > 0) wp = atoi(penv);
            wc->wparts = (int)(wp < wc->tiles ? wp : wc->tiles);
        }
    }
    return 0;
}

/* U and the weight-gradient sums D are 36 planes of c k floats, plane floats apart: 64 bytes
   more than c k, so that the 36 planes' rows of one channel (a power-of-two distance apart
   otherwise) do not fall into one cache set when weights_from_sums or wino_weights walks them
   together (layer-4 shapes, 2 threads: weights_from_sums about 16 ms without the padding and
   9-11 with it, wino_weights 10-12 and 6-8). */
size_t wino_plane(const WinoConv *wc) { return (size_t)wc->c * wc->k + 16; }

size_t wino_u_floats(const WinoConv *wc) { return NXI * wino_plane(wc); }

/* The weight-gradient sums D (36, c, k) of one thread lie in planes like U: (xi, c, k) at
   xi plane + c k + k. */
static size_t dsum_at(const WinoConv *wc, int xi, int c, int k) {
    return xi * wino_plane(wc) + (size_t)c * wc->k + k;
}

static size_t dsum_floats(const WinoConv *wc) { return wino_u_floats(wc); }

size_t wino_scratch_floats(const WinoConv *wc) {
    size_t conv = wc->per_thread * (wc->global ? 1 : wc->nthr);
    size_t wgrad = wc->wtb ? (size_t)NXI * wc->wtb * (wc->c + wc->k + 32)
                           : (size_t)NXI * (wc->tbw + 1) * (wc->c + wc->k) * wc->nthr;
    return conv > wgrad ? conv : wgrad;
}

size_t wino_wbuf_floats(const WinoConv *wc) {
    return dsum_floats(wc) * wino_dw_sums(wc);  /* the sums; U is one of them */
}

void wino_set_work(WinoConv *wc, float *scratch, float *wbuf) {
    wc->scratch = scratch;
    wc->u = wc->dw_acc = wbuf;
}

/* ---- the weight transform: U[xi] = G g G^T of every 3x3 filter g, in the panels of a pass ----
   A pass computes dst (cout channels) from src (cin channels); its U is (36, cout / 16, cin, 16):
   row (ob, i) of a point holds the 16 filters from input channel i to output channels ob*16 ..
   ob*16 + 15. The forward reads w (k, c, 3, 3) as it is (cin = c, cout = k); the backward data
   pass the filters rotated by 180 degrees and transposed (cin = k, cout = c). The rotation is
   not a permutation of the transformed points (they are 0, +-1, +-2 and infinity, and rotating
   maps the point 2 to 1/2), so each pass transforms w itself. */

/* Where the filters of a pass's U rows lie in w: row (ob, i), lane j at
   w + ob * 16 * lane + i * inner + j * lane (9 floats each). */
typedef struct { int cin, cout; long lane, inner; int rotate; } WinoRows;

static WinoRows pass_rows(const WinoConv *wc, WinoPass pass) {
    if (pass == WINO_FWD) return (WinoRows){wc->c, wc->k, 9L * wc->c, 9, 0};
    return (WinoRows){wc->k, wc->c, 9, 9L * wc->c, 1};
}

/* U[xi] = G g G^T of a 3x3 filter g (read backwards for the rotation), scalar. */
static void filter_transform(const float *g, int rotate, float *u36) {
    float gg[9], t[6][3];
    for (int i = 0; i < 9; i++) gg[i] = rotate ? g[8 - i] : g[i];
    for (int s = 0; s < 3; s++) {      /* along y, per column s */
        float col[6];
        g6(col, gg + s, 3);
        for (int i = 0; i < 6; i++) t[i][s] = col[i];
    }
    for (int i = 0; i < 6; i++) g6(u36 + i * 6, t[i], 1);  /* along x */
}

void wino_weights_ref(WinoConv *wc, const float *w, WinoPass pass) {
    WinoRows r = pass_rows(wc, pass);
    int nb = r.cout / 16;
    size_t plane = wino_plane(wc);
    #pragma omp parallel for collapse(2) schedule(static) num_threads(wc->nthr)
    for (int ob = 0; ob < nb; ob++)
        for (int i = 0; i < r.cin; i++) {
            float t[16][NXI];
            const float *g = w + ob * 16 * r.lane + i * r.inner;
            for (int j = 0; j < 16; j++) filter_transform(g + j * r.lane, r.rotate, t[j]);
            for (int xi = 0; xi < NXI; xi++) {
                float *dst = wc->u + xi * plane + ((size_t)ob * r.cin + i) * 16;
                for (int j = 0; j < 16; j++) dst[j] = t[j][xi];
            }
        }
}

/* u = G g (3 -> 6) of 8 filters at once: g6's operations in g6's order, so g6's bits */
static inline void g6v(v8 *u, v8 g0, v8 g1, v8 g2) {
    const v8 neg = _mm256_set1_ps(-0.0f);
    v8 a = _mm256_div_ps(g0, _mm256_set1_ps(24.0f)), b = _mm256_div_ps(g1, _mm256_set1_ps(12.0f));
    v8 c = _mm256_div_ps(g2, _mm256_set1_ps(6.0f)), six = _mm256_set1_ps(6.0f);
    u[0] = _mm256_div_ps(g0, _mm256_set1_ps(4.0f));
    u[1] = _mm256_div_ps(_mm256_xor_ps(neg, _mm256_add_ps(_mm256_add_ps(g0, g1), g2)), six);
    u[2] = _mm256_div_ps(_mm256_xor_ps(neg, _mm256_add_ps(_mm256_sub_ps(g0, g1), g2)), six);
    u[3] = _mm256_add_ps(_mm256_add_ps(a, b), c);
    u[4] = _mm256_add_ps(_mm256_sub_ps(a, b), c);
    u[5] = g2;
}

/* filter_transform of 8 filters, lane j's at g + j * lane: u[xi] holds point xi of each. */
static inline void filter_transform8(v8 *u, const float *g, long lane, int rotate) {
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)lane));
    v8 gg[9], t[6][3], col[6];
    for (int q = 0; q < 9; q++) gg[q] = _mm256_i32gather_ps(g + (rotate ? 8 - q : q), idx, 4);
    for (int s = 0; s < 3; s++) {      /* along y, per column s */
        g6v(col, gg[s], gg[s + 3], gg[s + 6]);
        for (int i = 0; i < 6; i++) t[i][s] = col[i];
    }
    for (int i = 0; i < 6; i++) g6v(u + i * 6, t[i][0], t[i][1], t[i][2]);  /* along x */
}

/* The transformed filters by non-temporal stores (wc->stream_u), a whole line at a time: both
   halves of a row of 16 filters, plane after plane, so that each write-combining buffer fills
   before the next is opened (16-byte pieces over the 36 planes at once had been 2x slower). */
static void weights_streamed(WinoConv *wc, const float *w, WinoRows r) {
    int nb = r.cout / 16;
    size_t plane = wino_plane(wc);
    #pragma omp parallel num_threads(wc->nthr)
    {
        #pragma omp for collapse(2) schedule(static)
        for (int ob = 0; ob < nb; ob++)
            for (int i = 0; i < r.cin; i++) {
                v8 u0[NXI], u1[NXI];
                filter_transform8(u0, w + (ob * 16) * r.lane + i * r.inner, r.lane, r.rotate);
                filter_transform8(u1, w + (ob * 16 + 8) * r.lane + i * r.inner, r.lane, r.rotate);
                float *dst = wc->u + ((size_t)ob * r.cin + i) * 16;
                for (int xi = 0; xi < NXI; xi++) {
                    _mm256_stream_ps(dst + xi * plane, u0[xi]);
                    _mm256_stream_ps(dst + xi * plane + 8, u1[xi]);
                }
            }
        _mm_sfence();
    }
}

void wino_weights(WinoConv *wc, const float *w, WinoPass pass) {
    WinoRows r = pass_rows(wc, pass);
    int nb = r.cout / 16;
    size_t plane = wino_plane(wc);
    if (wc->stream_u && (uintptr_t)wc->u % 64 == 0) {
        weights_streamed(wc, w, r);
        return;
    }
    #pragma omp parallel for collapse(3) schedule(static) num_threads(wc->nthr)
    for (int ob = 0; ob < nb; ob++)
        for (int i = 0; i < r.cin; i++)
            for (int half = 0; half < 2; half++) {
                v8 u[NXI];
                filter_transform8(u, w + (ob * 16 + half * 8) * r.lane + i * r.inner, r.lane, r.rotate);
                for (int xi = 0; xi < NXI; xi++)
                    _mm256_storeu_ps(wc->u + xi * plane + ((size_t)ob * r.cin + i) * 16 + half * 8, u[xi]);
            }
}

/* ---- passes ---- */

/* dst (cout channels) = src (cin channels) conv the filters whose transforms are U (36, cin, cout). */
/* The global mode of wino_conv: all tiles transformed, then per (point, block of 96 tiles) the
   product with every filter, then all tiles transformed back. */
/* The sums of part j (a thread's in the global mode, a block's in the tiles mode: sums of
   wino_forward_sums's part), or NULL. */
static OutSums *part_sums(OutSums *os, const float *shift, double *part, long j, int cout) {
    if (!part) return NULL;
    os->shift = shift;
    os->s1 = part + (size_t)j * 2 * cout;
    os->s2 = os->s1 + cout;
    return os;
}

static long tile_blocks(const WinoConv *wc) { return (wc->tiles + wc->tb - 1) / wc->tb; }

/* The parts of wino_forward_sums's sums: one per thread in the global mode, per block of tb tiles
   in the tiles mode. */
static long sum_parts(const WinoConv *wc) { return wc->global ? wc->nthr : tile_blocks(wc); }

size_t wino_sums_doubles(const WinoConv *wc) { return (size_t)2 * wc->k * sum_parts(wc); }

/* The loops whose results do not depend on which thread runs an iteration are scheduled
   dynamically, here and in the tiles mode: on a shared host one of the two threads is often
   slowed for a while, and with static halves the other then waits at the end of every pass
   (the convnet's forward and backward data, tiles mode: 3-14% less in medians of interleaved
   runs, the same bits). */
static void wino_conv_global(WinoConv *wc, const float *U, int cin, int cout, const float *src, float *dst, int acc,
                             const float *shift, double *part) {
    int T = (int)wc->tiles, nb = (T + 95) / 96, lv = row_stride(wc, cin), lm = row_stride(wc, cout);
    float *V = wc->scratch, *M = V + (size_t)NXI * T * lv;
    #pragma omp parallel num_threads(wc->nthr)
    {
        #pragma omp for schedule(dynamic, 16)
        for (int t = 0; t < T; t++) input_tile(wc, src, cin, lv, tile_at(wc, t), V, t, T);
        #pragma omp for schedule(dynamic, 1)
        for (int job = 0; job < NXI * nb; job++) {
            int xi = job / nb, t0 = job % nb * 96, t1 = t0 + 96 < T ? t0 + 96 : T;
            const float *Vx = V + (size_t)xi * T * lv, *Ux = U + xi * wino_plane(wc);
            float *Mx = M + (size_t)xi * T * lm;
            for (int kb = 0; kb < cout; kb += 16)
                for (int t = t0; t < t1; t += 6)
                    kern_any(t1 - t < 6 ? t1 - t : 6, cin, Vx + (size_t)t * lv, lv, 1, Ux + (size_t)kb * cin, 16,
                             Mx + (size_t)t * lm + kb, lm, 0);
        }
        OutSums ts, *os = part_sums(&ts, shift, part, omp_get_thread_num(), cout);
        if (os) {  /* each thread's sums over its static share */
            #pragma omp for schedule(static)
            for (int t = 0; t < T; t++) output_tile_os(wc, M, cout, t, T, tile_at(wc, t), dst, acc, os);
        } else {
            #pragma omp for schedule(dynamic, 16)
            for (int t = 0; t < T; t++) output_tile(wc, M, cout, t, T, tile_at(wc, t), dst, acc);
        }
        if (acc == 2) _mm_sfence();  /* the non-temporal stores visible before the threads join */
    }
}

/* Prefetching into L2 the images a thread's next tiles read while it multiplies the current
   ones, a 36th of them per transform point, when they are at most PREFETCH_MAX bytes (the
   convnet's 16 x 16 images: 1.5-2 images of 32-64 KB; ResNet-18's first stage would bring
   256-512 KB of 32 x 32 images into the L2 its block works in). */
#define PREFETCH_MAX (256 << 10)
typedef struct { const char *p, *end; size_t step; } Prefetch;

/* pf = the images of src (cin channels) that tiles [t0, t1) read; nothing when t0 >= t1 */
static Prefetch prefetch_tiles(const WinoConv *wc, const float *src, int cin, long t0, long t1) {
    Prefetch pf = {NULL, NULL, 0};
    if (t1 > wc->tiles) t1 = wc->tiles;
    if (t0 >= t1) return pf;
    long per = (long)wc->tiles_y * wc->tiles_x;
    size_t img = (size_t)cin * wc->h * wc->w;
    pf.p = (const char *)(src + (size_t)(t0 / per) * img);
    pf.end = (const char *)(src + (size_t)((t1 - 1) / per + 1) * img);
    if (pf.end - pf.p > PREFETCH_MAX) return (Prefetch){NULL, NULL, 0};  /* whole images would evict the block */
    pf.step = ((size_t)(pf.end - pf.p) / NXI + 63) / 64 * 64;
    return pf;
}

/* the next 36th */
static inline void prefetch_step(Prefetch *pf) {
    if (!pf->p) return;
    const char *e = (size_t)(pf->end - pf->p) > pf->step ? pf->p + pf->step : pf->end;
    for (; pf->p < e; pf->p += 64) _mm_prefetch(pf->p, _MM_HINT_T1);
}

/* The tiles mode: each thread takes blocks of tb tiles as it frees up (a shared counter), one block
   ahead, and while it multiplies a block it prefetches the images the next one reads: the input
   transform then finds them in L2 instead of waiting on memory for each 6x6 patch. */
static void wino_conv(WinoConv *wc, const float *U, int cin, int cout, const float *src, float *dst, int acc,
                      const float *shift, double *part) {
    if (part) memset(part, 0, sizeof(double) * 2 * cout * sum_parts(wc));
    if (wc->global) { wino_conv_global(wc, U, cin, cout, src, dst, acc, shift, part); return; }
    long nblk = tile_blocks(wc), next = 0;
    int tb = tb_planes(wc);
    #pragma omp parallel num_threads(wc->nthr)
    {
        float *V = wc->scratch + (size_t)omp_get_thread_num() * wc->per_thread;
        float *M = V + (size_t)NXI * tb * cin;
        long blk, nb;
        #pragma omp atomic capture
        blk = next++;
        while (blk < nblk) {
            #pragma omp atomic capture
            nb = next++;
            Prefetch pf = prefetch_tiles(wc, src, cin, nb * wc->tb, (nb + 1) * wc->tb);
            long t0 = blk * wc->tb;
            int tn = (int)(wc->tiles - t0 < wc->tb ? wc->tiles - t0 : wc->tb);
            for (int tl = 0; tl < tn; tl++) input_tile(wc, src, cin, cin, tile_at(wc, t0 + tl), V, tl, tb);
            for (int xi = 0; xi < NXI; xi++) {
                prefetch_step(&pf);
                const float *Vx = V + (size_t)xi * tb * cin, *Ux = U + xi * wino_plane(wc);
                float *Mx = M + (size_t)xi * tb * cout;
                for (int kb = 0; kb < cout; kb += 16)
                    for (int t = 0; t < tn; t += 6)
                        kern_any(tn - t < 6 ? tn - t : 6, cin, Vx + (size_t)t * cin, cin, 1, Ux + (size_t)kb * cin, 16,
                                 Mx + (size_t)t * cout + kb, cout, 0);
            }
            OutSums ts, *os = part_sums(&ts, shift, part, blk, cout);  /* the block's own sums */
            for (int tl = 0; tl < tn; tl++) {
                if (os) output_tile_os(wc, M, cout, tl, tb, tile_at(wc, t0 + tl), dst, acc, os);
                else output_tile(wc, M, cout, tl, tb, tile_at(wc, t0 + tl), dst, acc);
            }
            blk = nb;
        }
        if (acc == 2) _mm_sfence();  /* the non-temporal stores visible before the threads join */
    }
}

/* acc 2 (non-temporal stores) where the layer streams that output and y is 32-byte aligned */
static int stream_mode(int stream, const float *y) { return stream && (uintptr_t)y % 32 == 0 ? 2 : 0; }

void wino_forward(WinoConv *wc, const float *x, float *y) {
    wino_conv(wc, wc->u, wc->c, wc->k, x, y, stream_mode(wc->stream_fwd, y), NULL, NULL);
}

void wino_forward_sums(WinoConv *wc, const float *x, float *y, const float *shift, double *s1, double *s2,
                       double *part) {
    int k = wc->k;
    wino_conv(wc, wc->u, wc->c, k, x, y, stream_mode(wc->stream_fwd, y), shift, part);
    long np = sum_parts(wc);
    for (int ch = 0; ch < k; ch++) {  /* the parts' sums in order */
        double a = 0.0, b = 0.0;
        for (long t = 0; t < np; t++) { a += part[(size_t)t * 2 * k + ch]; b += part[(size_t)t * 2 * k + k + ch]; }
        s1[ch] = a;
        s2[ch] = b;
    }
}

void wino_backward_data(WinoConv *wc, const float *dy, float *dx, int acc) {
    wino_conv(wc, wc->u, wc->k, wc->c, dy, dx, acc ? 1 : stream_mode(wc->stream_bwd, dx), NULL, NULL);
}

/* D[xi] (C, K) = sum over all tiles of V[xi]^T Y[xi], one sum for the batch: per block of wtb
   tiles (all of them in the global mode) the transforms of the block, then per (point, 64
   filters) a GEMM over its tiles, 128 at a time so that the 16 filters' Y rows stay in L1 while
   the 6-channel blocks walk V, added to D. Every element is one chain of FMAs over the tiles in
   order (kern resumes the chain from D), so the bits depend on neither the block sizes nor the
   thread count. */
static void backward_weights_blocks(WinoConv *wc, const float *x, const float *dy) {
    int C = wc->c, K = wc->k, tb = wc->wtb, lv = wrow_stride(C), ly = wrow_stride(K), nkg = (K + WKG - 1) / WKG;
    long T = wc->tiles;
    float *V = wc->scratch, *Y = V + (size_t)NXI * tb * lv;
    for (long s0 = 0; s0 < T; s0 += tb) {
        int sn = (int)(T - s0 < tb ? T - s0 : tb);
        #pragma omp parallel num_threads(wc->nthr)
        {
            #pragma omp for schedule(static)
            for (int t = 0; t < sn; t++) {
                Tile tt = tile_at(wc, s0 + t);
                input_tile(wc, x, C, lv, tt, V, t, tb);
                grad_tile(wc, dy, K, ly, tt, Y, t, tb);
            }
            #pragma omp for schedule(static)
            for (int job = 0; job < NXI * nkg; job++) {
                int xi = job / nkg, k0 = job % nkg * WKG, k1 = k0 + WKG < K ? k0 + WKG : K;
                const float *Vx = V + (size_t)xi * tb * lv, *Yx = Y + (size_t)xi * tb * ly;
                float *Dx = wc->dw_acc + dsum_at(wc, xi, 0, 0);
                for (int t0 = 0; t0 < sn; t0 += WTC) {
                    int tn = sn - t0 < WTC ? sn - t0 : WTC, acc = s0 + t0 > 0;
                    for (int kb = k0; kb < k1; kb += 16)
                        for (int c = 0; c < C; c += 6)   /* 6 rows: 12 accumulators hide the FMA latency */
                            kern_any(C - c < 6 ? C - c : 6, tn, Vx + (size_t)t0 * lv + c, 1, lv,
                                     Yx + (size_t)t0 * ly + kb, ly, Dx + (size_t)c * K + kb, K, acc);
                }
            }
        }
    }
}

/* dw (k, c, 3, 3) = S H D H^T S (gt3: G^T D G; or dw += it), D (36, c, k) the sum of the nsums sums in
   wc->dw_acc in order, all in double, 4 filters at a time: the operations of the scalar
   reference (wino_weights_from_sums_ref) in its order, so its bits (ISO C contracts no
   products). Per block of WFK filters, the channels c in order: each c reads WFK / 16 cache
   lines of each of the 36 planes of D and the WFK filters' dw rows are written sequentially.
   (Channels outside the filters would touch all K filters' lines per c, at a stride of 9 C
   floats that maps them into a few cache sets.) At 512 x 512 channels (medians of 9, D out of
   the caches) blocks of 64 filters and taps_store4 took 5.2 ms where 16 filters and stores lane
   by lane took 5.9 ms; the step is bound by its loads of D, so the products that replaced 54
   divisions gained little alone. */
#define WFK 64
typedef __m256d v4d;

static inline void gt3v(v4d *w, v4d z0, v4d z1, v4d z2, v4d z3, v4d z4, v4d z5) {
    const v4d two = _mm256_set1_pd(2.0), four = _mm256_set1_pd(4.0);
    v4d s12 = _mm256_add_pd(z1, z2), s34 = _mm256_add_pd(z3, z4);
    w[0] = _mm256_add_pd(_mm256_mul_pd(two, _mm256_add_pd(z0, _mm256_mul_pd(two, _mm256_sub_pd(z0, s12)))), s34);
    w[1] = _mm256_add_pd(_mm256_mul_pd(two, _mm256_sub_pd(z2, z1)), _mm256_sub_pd(z3, z4));
    w[2] = _mm256_add_pd(_mm256_sub_pd(s34, s12), _mm256_add_pd(_mm256_mul_pd(four, z5), _mm256_mul_pd(two, z5)));
}

static void weights_from_sums(const WinoConv *wc, int nsums, float *dw, int acc) {
    int C = wc->c, K = wc->k;
    size_t dsz = dsum_floats(wc);
    #pragma omp parallel for collapse(2) schedule(static) num_threads(wc->nthr)
    for (int kb = 0; kb < K; kb += WFK)
        for (int c = 0; c < C; c++)
            for (int k4 = kb; k4 < kb + WFK && k4 < K; k4 += 4) {
                v4d z[NXI], t[6][3], o[3];
                __m128 tap[9];
                for (int xi = 0; xi < NXI; xi++) {
                    const float *d = wc->dw_acc + dsum_at(wc, xi, c, k4);
                    v4d sum = _mm256_setzero_pd();
                    for (int th = 0; th < nsums; th++) sum = _mm256_add_pd(sum, _mm256_cvtps_pd(_mm_loadu_ps(d + th * dsz)));
                    z[xi] = sum;
                }
                for (int i = 0; i < 6; i++)                               /* along x */
                    gt3v(t[i], z[i * 6], z[i * 6 + 1], z[i * 6 + 2], z[i * 6 + 3], z[i * 6 + 4], z[i * 6 + 5]);
                for (int q = 0; q < 3; q++) {                             /* along y */
                    gt3v(o, t[0][q], t[1][q], t[2][q], t[3][q], t[4][q], t[5][q]);
                    for (int r = 0; r < 3; r++)
                        tap[r * 3 + q] = _mm256_cvtpd_ps(_mm256_mul_pd(o[r], _mm256_set1_pd(GT_SCALE[r][q])));
                }
                taps_store4(dw + ((size_t)k4 * C + c) * 9, (size_t)C * 9, tap, acc);
            }
}

void wino_weights_from_sums_ref(const WinoConv *wc, int nsums, float *dw) {
    int C = wc->c, K = wc->k;
    size_t dsz = dsum_floats(wc);
    for (int c = 0; c < C; c++)
        for (int k = 0; k < K; k++) {
            double z[NXI], t[6][3], o[3];
            for (int xi = 0; xi < NXI; xi++) {
                double sum = 0.0;
                for (int th = 0; th < nsums; th++) sum += wc->dw_acc[th * dsz + dsum_at(wc, xi, c, k)];
                z[xi] = sum;
            }
            for (int i = 0; i < 6; i++) gt3(t[i], z + i * 6, 1);    /* along x */
            for (int q = 0; q < 3; q++) {                            /* along y */
                double col[6];
                for (int i = 0; i < 6; i++) col[i] = t[i][q];
                gt3(o, col, 1);
                for (int r = 0; r < 3; r++) dw[((size_t)k * C + c) * 9 + r * 3 + q] = (float)(o[r] * GT_SCALE[r][q]);
            }
        }
}

int wino_dw_sums(const WinoConv *wc) { return wc->wtb ? 1 : wc->wparts; }

/* The first tile of weight-gradient part p (p = wparts: the end). The parts shrink linearly, part
   p of np in proportion to np - p, so that the last ones taken are short and a thread that frees
   up late has little left to finish (8 parts: from two ninths of the tiles down to a 36th). In
   the convnet's step the threads then finished its weight gradients 0.3-0.5 ms apart on
   average, against 0.9-2.0 ms with 8 equal parts and 1.4-3.6 ms with fixed halves. */
static long part_tile(const WinoConv *wc, int p) {
    long np = wc->wparts, cum = p * np - (long)p * (p - 1) / 2;
    return wc->tiles * cum / (np * (np + 1) / 2);
}

/* Below 128 x 128 channels: the tiles in wparts fixed parts (part_tile), each summed into its own
   D, the parts taken by the threads as they free up (with fixed halves, the convnet's threads
   finished its weight gradients 1.4-3.6 ms apart on average, a tenth to a quarter of the pass:
   the host slows one vCPU or the other for a while). A part's tiles tbw at a time (V and Y of
   tbw tiles, then their GEMMs); its first chunk writes D, the others add to it. Every element of
   a part's D is one chain of FMAs over the part's tiles in order, whatever tbw, thread count or
   schedule; the last step adds the parts' sums in part order. */
static void backward_weights_tiles(WinoConv *wc, const float *x, const float *dy) {
    int C = wc->c, K = wc->k, tbw = wc->tbw, tb = tbw + 1, np = wc->wparts;
    size_t dsz = dsum_floats(wc);
    #pragma omp parallel num_threads(wc->nthr)
    {
        int tid = omp_get_thread_num();
        float *V = wc->scratch + (size_t)tid * NXI * tb * (C + K), *Y = V + (size_t)NXI * tb * C;
        #pragma omp for schedule(dynamic, 1)
        for (int part = 0; part < np; part++) {
            long lo = part_tile(wc, part), hi = part_tile(wc, part + 1);
            float *D = wc->dw_acc + (size_t)part * dsz;
            if (lo == hi) memset(D, 0, sizeof(float) * dsz);  /* a part with no tiles (small batches) */
            for (long t0 = lo; t0 < hi; t0 += tbw) {
                int tn = (int)(hi - t0 < tbw ? hi - t0 : tbw), acc = t0 > lo;
                long n1 = t0 + tn + tbw < hi ? t0 + tn + tbw : hi;  /* the next chunk's tiles: their images */
                Prefetch px = prefetch_tiles(wc, x, C, t0 + tn, n1), pd = prefetch_tiles(wc, dy, K, t0 + tn, n1);
                for (int tl = 0; tl < tn; tl++) {
                    Tile tt = tile_at(wc, t0 + tl);
                    input_tile(wc, x, C, C, tt, V, tl, tb);
                    grad_tile(wc, dy, K, K, tt, Y, tl, tb);
                }
                for (int xi = 0; xi < NXI; xi++) {
                    prefetch_step(&px);
                    prefetch_step(&pd);
                    const float *Vx = V + (size_t)xi * tb * C, *Yx = Y + (size_t)xi * tb * K;
                    float *Dx = D + dsum_at(wc, xi, 0, 0);
                    if (tbw == wc->tb)
                        for (int c = 0; c < C; c += 4)
                            for (int kb = 0; kb < K; kb += 16)
                                kern(4, tn, Vx + c, 1, C, Yx + kb, K, Dx + (size_t)c * K + kb, K, acc);
                    else
                        for (int kb = 0; kb < K; kb += 16)
                            for (int c = 0; c < C; c += 6)
                                kern_any(C - c < 6 ? C - c : 6, tn, Vx + c, 1, C, Yx + kb, K, Dx + (size_t)c * K + kb, K,
                                         acc);
                }
            }
        }
    }
}

void wino_backward_weights(WinoConv *wc, const float *x, const float *dy, float *dw, int acc) {
    if (wc->wtb) backward_weights_blocks(wc, x, dy);
    else backward_weights_tiles(wc, x, dy);
    weights_from_sums(wc, wino_dw_sums(wc), dw, acc);
}
