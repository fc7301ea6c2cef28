// conv_gemm.c -- a convolution as GEMMs on blocks of whole images, on nChw8c or nChw16c.
//
// For a block of whole images a thread gathers the patch matrix P (rows = output pixels, kc =
// ks ks c columns ordered (ky, kx, c), so that a pixel's channel block is one contiguous copy) and
//   forward:           Y (rows, k)  = P Wt,           Wt (kc, k) = the filters transposed
//   backward data:     dP (rows, kc) = dY Wt^T, then scattered back onto dx (col2im)
//   weight gradient:   dWt         += P^T dY          (this thread's sums)
// The first two run on the micro-kernel of kern_avx2.h with the filters packed in panels of 16
// (as the Winograd layers' U), whose result for a row does not depend on the rows beside it: an
// image's output and input gradient are the same bits whatever the batch and the thread count,
// as with oneDNN's kernels (replicas and ranks see parts of a batch; OpenBLAS's bits for a row
// depend on the GEMM's shape and the row's place in it). The weight gradient, a sum over the
// batch anyway, is a one-thread OpenBLAS sgemm per block (OpenBLAS's own threads would spin
// against the OpenMP team, as in infonce.c); blocks go to threads in a fixed order, so its sums
// depend only on the batch and the thread count.
#include "conv_gemm.h"
#include "kern_avx2.h"
#include "ncelab/core.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

int cgemm_supported(int c, int k, int blk) {
    if (blk != 8 && blk != 16) return 0;
    if (c <= 0 || k <= 0 || c % 16 || k % 16) return 0;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    const char *env = getenv("NCELAB_CONV_GEMM");
    return !(env && !strcmp(env, "0"));
}

int cgemm_init(GemmConv *g, int n, int c, int k, int h, int w, int ks, int stride, int pad, int blk) {
    memset(g, 0, sizeof *g);
    if (!cgemm_supported(c, k, blk) || n <= 0 || h <= 0 || w <= 0 || ks <= 0 || stride <= 0 || pad < 0) return -1;
    int oh = (h + 2 * pad - ks) / stride + 1, ow = (w + 2 * pad - ks) / stride + 1;
    if (oh <= 0 || ow <= 0) return -1;
    g->n = n; g->c = c; g->k = k; g->h = h; g->w = w;
    g->ks = ks; g->stride = stride; g->pad = pad; g->oh = oh; g->ow = ow; g->blk = blk;
    g->kc = ks * ks * c;
    g->nthr = omp_get_max_threads();
    /* the weight gradient's blocks: about 512 output pixels (GEMMs summing 512 rows run near
       OpenBLAS's best), but every thread a block */
    int target = 512;
    const char *env = getenv("NCELAB_CGEMM_ROWS");
    if (env && atoi(env) > 0) target = atoi(env);
    int per_img = oh * ow;
    int imgs = (target + per_img - 1) / per_img;
    int fair = (n + g->nthr - 1) / g->nthr;
    g->imgs = imgs < fair ? imgs : fair;
    g->per_thread = (size_t)g->imgs * per_img * (g->kc + k);
    return 0;
}

size_t cgemm_scratch_floats(const GemmConv *g) { return g->per_thread * g->nthr; }

size_t cgemm_wbuf_floats(const GemmConv *g) { return (size_t)g->kc * g->k * (1 + g->nthr); }

void cgemm_set_work(GemmConv *g, float *scratch, float *wbuf) {
    g->scratch = scratch;
    g->wt = wbuf;
    g->dwt = wbuf + (size_t)g->kc * g->k;
}

void cgemm_weights(GemmConv *g, const float *w, CgemmPass pass) {
    int C = g->c, K = g->k, kk2 = g->ks * g->ks, kc = g->kc;
    float *u = g->wt;
    /* A job is 16 filters (forward) or 16 input channels (backward data) of one partner: their
       taps are read as whole rows of w and written as whole 16-float lines of u. */
    #pragma omp parallel for collapse(2) schedule(static) num_threads(g->nthr)
    for (int b16 = 0; b16 < (pass == CGEMM_FWD ? K : C) / 16; b16++)
        for (int o = 0; o < (pass == CGEMM_FWD ? C : K); o++) {
            int ci0 = pass == CGEMM_FWD ? o : b16 * 16, ko0 = pass == CGEMM_FWD ? b16 * 16 : o;
            for (int kk = 0; kk < kk2; kk++) {
                float *line = pass == CGEMM_FWD ? u + ((size_t)b16 * kc + (size_t)kk * C + ci0) * 16  /* (k/16, kc, 16) */
                                                : u + ((size_t)((kk * C + ci0) / 16) * K + ko0) * 16;  /* (kc/16, k, 16) */
                for (int j = 0; j < 16; j++)
                    line[j] = pass == CGEMM_FWD ? w[((size_t)(ko0 + j) * C + ci0) * kk2 + kk]
                                                : w[((size_t)ko0 * C + ci0 + j) * kk2 + kk];
            }
        }
}

/* c (rows, n) = a (rows, kd; rows lda apart) times b packed as (n / 16, kd, 16), with the
   micro-kernel: blocks of 48 rows and 256 steps of kd (a block of a in L2, a panel's step in L1).
   Every row gets the same sums in the same order, wherever it sits. */
static void gemm_packed(int rows, int n, int kd, const float *a, long lda, const float *bp, float *c, long ldc) {
    for (int r0 = 0; r0 < rows; r0 += 48) {
        int r1 = r0 + 48 < rows ? r0 + 48 : rows;
        for (int p0 = 0; p0 < kd; p0 += 256) {
            int np = kd - p0 < 256 ? kd - p0 : 256;
            for (int nb = 0; nb < n; nb += 16)
                for (int r = r0; r < r1; r += 6)
                    kern_any(r1 - r < 6 ? r1 - r : 6, np, a + (size_t)r * lda + p0, lda, 1, bp + (size_t)nb * kd + (size_t)p0 * 16,
                             16, c + (size_t)r * ldc + nb, ldc, p0 > 0);
        }
    }
}

/* ---- between the blocked layout and the GEMMs' row-major matrices ---- */

static inline void copy_blk(float *dst, const float *src, int B) {
    if (B == 8) for (int j = 0; j < 8; j++) dst[j] = src[j];
    else for (int j = 0; j < 16; j++) dst[j] = src[j];
}

static inline void add_blk(float *dst, const float *src, int B) {
    if (B == 8) for (int j = 0; j < 8; j++) dst[j] += src[j];
    else for (int j = 0; j < 16; j++) dst[j] += src[j];
}

/* back 0: col (rows, kc) = the patches of images i0 .. i1 - 1 of x (zero outside the image);
   back 1: x (those images, overwritten) = the sum of the patches in col that read each pixel;
   back 2: that sum added onto x. */
static void patches(const GemmConv *g, float *x, int i0, int i1, float *col, int back) {
    int B = g->blk, CB = g->c / B, H = g->h, W = g->w, ks = g->ks;
    size_t plane = (size_t)H * W * B;                  /* one channel block of one image */
    if (back == 1) memset(x + (size_t)i0 * CB * plane, 0, sizeof(float) * (size_t)(i1 - i0) * CB * plane);
    float *row = col;
    for (int img = i0; img < i1; img++) {
        float *xi = x + (size_t)img * CB * plane;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++, row += g->kc) {
                float *p = row;
                for (int ky = 0; ky < ks; ky++) {
                    int iy = oy * g->stride - g->pad + ky;
                    for (int kx = 0; kx < ks; kx++, p += g->c) {
                        int ix = ox * g->stride - g->pad + kx;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) {
                            if (!back) memset(p, 0, sizeof(float) * g->c);
                            continue;
                        }
                        float *px = xi + ((size_t)iy * W + ix) * B;
                        if (back) for (int cb = 0; cb < CB; cb++) add_blk(px + cb * plane, p + cb * B, B);
                        else for (int cb = 0; cb < CB; cb++) copy_blk(p + cb * B, px + cb * plane, B);
                    }
                }
            }
    }
}

/* to_rows 1: r (rows, k) = the output pixels of images i0 .. i1 - 1 of y; 0: the other way. */
static void pixels(const GemmConv *g, float *y, int i0, int i1, float *r, int to_rows) {
    int B = g->blk, KB = g->k / B, P = g->oh * g->ow;
    for (int img = i0; img < i1; img++)
        for (int kb = 0; kb < KB; kb++) {
            float *yp = y + ((size_t)img * KB + kb) * P * B;
            float *rp = r + (size_t)(img - i0) * P * g->k + kb * B;
            for (int p = 0; p < P; p++, yp += B, rp += g->k) {
                if (to_rows) copy_blk(rp, yp, B);
                else copy_blk(yp, rp, B);
            }
        }
}

/* ---- the passes ---- */

/* Block b of the batch: its images i0 .. i1 - 1, their output rows, and the calling thread's
   patch matrix (col) and row matrix (mat: outputs or output gradients) */
typedef struct { int i0, i1, rows; float *col, *mat; } Block;

static int n_blocks(const GemmConv *g) { return (g->n + g->imgs - 1) / g->imgs; }

static Block block_at(const GemmConv *g, int b) {
    Block k;
    k.i0 = b * g->imgs;
    k.i1 = k.i0 + g->imgs < g->n ? k.i0 + g->imgs : g->n;
    k.rows = (k.i1 - k.i0) * g->oh * g->ow;
    k.col = g->scratch + (size_t)omp_get_thread_num() * g->per_thread;
    k.mat = k.col + (size_t)g->imgs * g->oh * g->ow * g->kc;
    return k;
}

void cgemm_forward(GemmConv *g, const float *x, float *y) {
    int nb = n_blocks(g);
    #pragma omp parallel for schedule(dynamic, 1) num_threads(g->nthr)
    for (int b = 0; b < nb; b++) {
        Block k = block_at(g, b);
        patches(g, (float *)x, k.i0, k.i1, k.col, 0);
        gemm_packed(k.rows, g->k, g->kc, k.col, g->kc, g->wt, k.mat, g->k);
        pixels(g, y, k.i0, k.i1, k.mat, 0);
    }
}

/* dw += the threads' sums of P^T dY in thread order; a row ci writes, for every filter, its
   ks ks floats beside those of row ci - 1 */
void cgemm_backward_weights(GemmConv *g, const float *x, const float *dy, float *dw) {
    size_t wsz = (size_t)g->kc * g->k;
    memset(g->dwt, 0, sizeof(float) * wsz * g->nthr);
    int nb = n_blocks(g);
    nc_blas_single_begin();
    #pragma omp parallel for schedule(static) num_threads(g->nthr)
    for (int b = 0; b < nb; b++) {
        Block k = block_at(g, b);
        pixels(g, (float *)dy, k.i0, k.i1, k.mat, 1);
        patches(g, (float *)x, k.i0, k.i1, k.col, 0);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, g->kc, g->k, k.rows, 1.0f, k.col, g->kc, k.mat, g->k, 1.0f,
                    g->dwt + (size_t)omp_get_thread_num() * wsz, g->k);
    }
    nc_blas_single_end();
    int C = g->c, K = g->k, kk2 = g->ks * g->ks, nthr = g->nthr;
    #pragma omp parallel for schedule(static) num_threads(g->nthr)
    for (int ci = 0; ci < C; ci++)
        for (int kk = 0; kk < kk2; kk++) {
            const float *src = g->dwt + ((size_t)kk * C + ci) * K;
            for (int ko = 0; ko < K; ko++) {
                double s = 0.0;
                for (int t = 0; t < nthr; t++) s += src[(size_t)t * wsz + ko];
                dw[((size_t)ko * C + ci) * kk2 + kk] += (float)s;
            }
        }
}

void cgemm_backward_data(GemmConv *g, const float *dy, float *dx, int acc) {
    int nb = n_blocks(g);
    #pragma omp parallel for schedule(dynamic, 1) num_threads(g->nthr)
    for (int b = 0; b < nb; b++) {
        Block k = block_at(g, b);
        pixels(g, (float *)dy, k.i0, k.i1, k.mat, 1);
        gemm_packed(k.rows, g->kc, g->k, k.mat, g->k, g->wt, k.col, g->kc);
        patches(g, dx, k.i0, k.i1, k.col, acc ? 2 : 1);
    }
}
