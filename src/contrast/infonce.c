// infonce.c -- InfoNCE and binary NCE with exactly k negatives per anchor, and their gradients.
#include "ncelab/loss.h"
#include "ncelab/rng.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* softplus(x) = log(1 + e^x) added into *l and sigmoid(x) returned, with one exp: e = exp(-|x|),
   x + log1p(e) or log1p(e), 1 / (1 + e) or e / (1 + e), each branch stable */
static double softplus_sigmoid(double x, double *l) {
    double e = exp(x > 0 ? -x : x);
    *l += x > 0 ? x + log1p(e) : log1p(e);
    return x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

static const float *row_of(const float *z, const float *queue, int B, int D, int r) {
    return r < 2 * B ? z + (size_t)r * D : queue + (size_t)(r - 2 * B) * D;
}

static float dotf(const float *a, const float *b, int D) {
    float s = 0.0f;
    for (int j = 0; j < D; j++) s += a[j] * b[j];
    return s;
}

int contrast_loss(NcLoss type, const float *z, int B, int D, const int32_t *neg, int k,
                  const float *queue, int Q, float T, float *loss, float *dz, NcError *err) {
    double part;
    int rc = contrast_loss_part(type, z, B, D, neg, k, queue, Q, T, 0, B, &part, dz, NULL, err);
    if (!rc) *loss = (float)part;
    return rc;
}

/* One anchor's loss and its coefficients: c[1..k] hold the negatives' scores s_j (already / T) on
   entry; on return c[0] = d loss_i / d s_pos and c[j] = d loss_i / d s_j. Each exp is taken once
   and kept (taking them twice was two thirds of the convnet's loss row, 1.7 ms a step). */
static double anchor_coef(NcLoss type, double sp, double *c, int k, double lk) {
    if (type == NC_LOSS_INFONCE) {
        double mx = sp;
        for (int j = 0; j < k; j++)
            if (c[j + 1] > mx) mx = c[j + 1];
        double ep = exp(sp - mx), sum = ep;
        for (int j = 0; j < k; j++) {
            c[j + 1] = exp(c[j + 1] - mx);
            sum += c[j + 1];
        }
        c[0] = ep / sum - 1.0;
        for (int j = 0; j < k; j++) c[j + 1] /= sum;
        return mx + log(sum) - sp;
    }
    double l = 0.0;
    c[0] = -softplus_sigmoid(lk - sp, &l);
    for (int j = 0; j < k; j++) c[j + 1] = softplus_sigmoid(c[j + 1] - lk, &l);
    return l;
}

/* The plain loops: a dot product per score, and the gradient's rows split over the threads. */
static double part_plain(NcLoss type, const float *z, int B, int D, const int32_t *neg, int k, const float *queue,
                         float T, int a0, int a1, double *coef, float *dz) {
    double total = 0.0, lk = log((double)k);
    #pragma omp parallel for reduction(+:total) schedule(static)
    for (int i = a0; i < a1; i++) {
        const float *zi = z + (size_t)i * D;
        double *c = coef + (size_t)(i - a0) * (k + 1);
        double sp = dotf(zi, z + (size_t)(B + i) * D, D) / T;
        for (int j = 0; j < k; j++) c[j + 1] = dotf(zi, row_of(z, queue, B, D, neg[(size_t)i * k + j]), D) / T;
        total += anchor_coef(type, sp, c, k, lk);
    }
    if (dz) {
        /* s = z_i . z_r / T: d/dz_i += c z_r / (T B), d/dz_r += c z_i / (T B). Each thread owns a
           block of rows and walks every (anchor, column) pair in the order one thread would,
           adding only into its own rows: every row sums in the same order whatever the number
           of threads, so the result is that of the plain loop, bit for bit. */
        memset(dz, 0, sizeof(float) * 2 * (size_t)B * D);
        float scale = 1.0f / (T * (float)B);
        #pragma omp parallel
        {
            int nt = omp_get_num_threads(), th = omp_get_thread_num();
            int lo = (int)(2L * B * th / nt), hi = (int)(2L * B * (th + 1) / nt);
            for (int i = a0; i < a1; i++) {
                const double *c = coef + (size_t)(i - a0) * (k + 1);
                const float *zi = z + (size_t)i * D;
                float *di = i >= lo && i < hi ? dz + (size_t)i * D : NULL;
                for (int j = 0; j <= k; j++) {
                    int r = j == 0 ? B + i : neg[(size_t)i * k + j - 1];
                    int mine = r >= lo && r < hi;  /* queue rows (r >= 2B) take no gradient */
                    if (!di && !mine) continue;
                    float cj = (float)c[j] * scale;
                    if (di) {
                        const float *zr = row_of(z, queue, B, D, r);
                        for (int t = 0; t < D; t++) di[t] += cj * zr[t];
                    }
                    if (mine) {
                        float *dr = dz + (size_t)r * D;
                        for (int t = 0; t < D; t++) dr[t] += cj * zi[t];
                    }
                }
            }
        }
    }
    return total;
}

/* C (m, n) = op(A) op(B) + beta C, row-major, its rows split over the OpenMP team, each share one
   one-thread OpenBLAS call: OpenBLAS's own threads would spin after the call against the team's
   (on 2 cores that made the steps around the loss up to twice as slow, at random). */
static void gemm_rows(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int kk, const float *a, int lda,
                      const float *b, int ldb, float beta, float *c, int ldc) {
    if (m <= 0) return;
    nc_blas_single_begin();
    #pragma omp parallel
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int r0 = (int)((long)m * t / nt), r1 = (int)((long)m * (t + 1) / nt);
        const float *ar = ta == CblasNoTrans ? a + (size_t)r0 * lda : a + r0;
        if (r1 > r0)
            cblas_sgemm(CblasRowMajor, ta, tb, r1 - r0, n, kk, 1.0f, ar, lda, b, ldb, beta, c + (size_t)r0 * ldc, ldc);
    }
    nc_blas_single_end();
}

/* The same with GEMMs, for many negatives: every score of the anchors against every row of the
   batch and of the queue at once, S = Za [z; queue]^T, then the coefficients scattered into a
   matrix C of the same shape, and the gradients dZa = C [z; queue] and d[z] += C_z^T Za. */
static double part_gemm(NcLoss type, const float *z, int B, int D, const int32_t *neg, int k, const float *queue,
                        int Q, float T, int a0, int a1, double *coef, float *S, float *dz) {
    int na = a1 - a0, R = 2 * B + (queue ? Q : 0);   /* S: (na, R), later C */
    const float *za = z + (size_t)a0 * D;
    gemm_rows(CblasNoTrans, CblasTrans, na, 2 * B, D, za, D, z, D, 0.0f, S, R);
    if (queue) gemm_rows(CblasNoTrans, CblasTrans, na, Q, D, za, D, queue, D, 0.0f, S + 2 * B, R);
    double total = 0.0, lk = log((double)k);
    float scale = 1.0f / (T * (float)B);
    #pragma omp parallel for reduction(+:total) schedule(static)
    for (int i = a0; i < a1; i++) {
        double *c = coef + (size_t)(i - a0) * (k + 1);
        float *si = S + (size_t)(i - a0) * R;
        const int32_t *ni = neg + (size_t)i * k;
        double sp = si[B + i] / T;
        for (int j = 0; j < k; j++) c[j + 1] = si[ni[j]] / T;
        total += anchor_coef(type, sp, c, k, lk);
        if (dz) {  /* this anchor's row of C: its coefficients at their columns, zero elsewhere */
            memset(si, 0, sizeof(float) * R);
            si[B + i] = (float)c[0] * scale;
            for (int j = 0; j < k; j++) si[ni[j]] = (float)c[j + 1] * scale;
        }
    }
    if (dz && na > 0) {
        gemm_rows(CblasTrans, CblasNoTrans, 2 * B, D, na, S, R, za, D, 0.0f, dz, D);
        gemm_rows(CblasNoTrans, CblasNoTrans, na, D, 2 * B, S, R, z, D, 1.0f, dz + (size_t)a0 * D, D);
        if (queue) gemm_rows(CblasNoTrans, CblasNoTrans, na, D, Q, S + 2 * B, R, queue, D, 1.0f, dz + (size_t)a0 * D, D);
    } else if (dz) {
        memset(dz, 0, sizeof(float) * 2 * (size_t)B * D);
    }
    return total;
}

void contrast_work_init(ContrastWork *w, int anchors, int k, int rows) {
    w->n_coef = (size_t)(anchors > 0 ? anchors : 0) * (size_t)(k + 1) + 1;
    w->n_scores = (size_t)(anchors > 0 ? anchors : 0) * (size_t)(rows > 0 ? rows : 0) + 1;
    w->coef = nc_malloc(sizeof(double) * w->n_coef);
    w->scores = nc_malloc(sizeof(float) * w->n_scores);
}

void contrast_work_free(ContrastWork *w) {
    free(w->coef);
    free(w->scores);
    memset(w, 0, sizeof *w);
}

static int loss_part(NcLoss type, const float *z, int B, int D, const int32_t *neg, int k, const float *queue, int Q,
                     float T, int a0, int a1, double *loss, float *dz, int gemm, ContrastWork *w, NcError *err) {
    if (k < 1) return nc_fail(err, NC_EUSAGE, "--k: need at least one negative, got %d", k);
    if (!(T > 0)) return nc_fail(err, NC_EUSAGE, "--temp: the temperature must be positive, got %g", T);
    if (a0 < 0 || a1 > B || a0 > a1)
        return nc_fail(err, NC_EUSAGE, "contrast_loss_part: anchors [%d, %d) outside [0, %d)", a0, a1, B);
    int lim = 2 * B + (queue ? Q : 0);
    for (int i = a0; i < a1; i++)
        for (int j = 0; j < k; j++) {
            int r = neg[(size_t)i * k + j];
            if (r < 0 || r >= lim)
                return nc_fail(err, NC_EUSAGE, "negatives: anchor %d, negative %d: index %d out of range [0, %d)", i, j, r, lim);
            if (r == i || r == B + i)
                return nc_fail(err, NC_EUSAGE, "negatives: anchor %d, negative %d: index %d is the anchor or its positive", i, j, r);
        }
    /* coef (a1 - a0, k+1): d loss_i / d s for the positive (column 0) and each negative */
    ContrastWork own = {0};
    size_t need_coef = (size_t)(a1 - a0) * (k + 1) + 1, need_s = (size_t)(a1 - a0) * (2 * B + (queue ? Q : 0)) + 1;
    if (!w) {
        contrast_work_init(&own, a1 - a0, k, gemm ? 2 * B + (queue ? Q : 0) : 0);
        w = &own;
    } else if (w->n_coef < need_coef || (gemm && w->n_scores < need_s)) {
        return nc_fail(err, NC_EUSAGE, "contrast_loss_part: scratch for %zu coefficients and %zu scores, %zu and %zu needed",
                       w->n_coef, w->n_scores, need_coef, need_s);
    }
    double total = gemm ? part_gemm(type, z, B, D, neg, k, queue, Q, T, a0, a1, w->coef, w->scores, dz)
                        : part_plain(type, z, B, D, neg, k, queue, T, a0, a1, w->coef, dz);
    *loss = total / B;
    if (w == &own) contrast_work_free(&own);
    return NC_OK;
}

int contrast_loss_part(NcLoss type, const float *z, int B, int D, const int32_t *neg, int k, const float *queue,
                       int Q, float T, int a0, int a1, double *loss, float *dz, ContrastWork *w, NcError *err) {
    return loss_part(type, z, B, D, neg, k, queue, Q, T, a0, a1, loss, dz, k >= CONTRAST_GEMM_MIN_K, w, err);
}

int contrast_loss_part_ref(NcLoss type, const float *z, int B, int D, const int32_t *neg, int k, const float *queue,
                           int Q, float T, int a0, int a1, double *loss, float *dz, NcError *err) {
    return loss_part(type, z, B, D, neg, k, queue, Q, T, a0, a1, loss, dz, 0, NULL, err);
}

/* anchor i's k negatives into neg, by a partial Fisher-Yates in scratch (2B ints) */
static void anchor_negatives(int32_t *neg, int B, int k, uint64_t seed, uint32_t step, int i, int32_t *scratch) {
    Rng r;
    rng_init(&r, seed, step, (uint32_t)i, 0x4e4547u);
    int m = 0;
    for (int j = 0; j < 2 * B; j++)
        if (j != i && j != B + i) scratch[m++] = j;
    for (int j = 0; j < k; j++) {  /* partial Fisher-Yates */
        int t = j + (int)rng_below(&r, (uint64_t)(m - j));
        int32_t tmp = scratch[j];
        scratch[j] = scratch[t];
        scratch[t] = tmp;
        neg[(size_t)i * k + j] = scratch[j];
    }
}

/* Each anchor has its own random stream, so the anchors are spread over the threads (each with
   2B ints of stack) when 2B is at most 8192 and the batch is large enough to pay; the same
   negatives either way. */
void contrast_random_negatives(int32_t *neg, int B, int k, uint64_t seed, uint32_t step, int32_t *scratch) {
    if (B > 4096 || (size_t)B * k < 16384) {
        for (int i = 0; i < B; i++) anchor_negatives(neg, B, k, seed, step, i, scratch);
        return;
    }
    #pragma omp parallel
    {
        int32_t local[8192];
        #pragma omp for schedule(static)
        for (int i = 0; i < B; i++) anchor_negatives(neg, B, k, seed, step, i, local);
    }
}
