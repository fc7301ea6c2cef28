// infonce.c -- InfoNCE and binary NCE with exactly k negatives per anchor, and their gradients.
#include "ncelab/loss.h"
#include "ncelab/rng.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static double sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

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
    int rc = contrast_loss_part(type, z, B, D, neg, k, queue, Q, T, 0, B, &part, dz, err);
    if (!rc) *loss = (float)part;
    return rc;
}

int contrast_loss_part(NcLoss type, const float *z, int B, int D, const int32_t *neg, int k, const float *queue,
                       int Q, float T, int a0, int a1, double *loss, float *dz, NcError *err) {
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
    double *coef = nc_malloc(sizeof(double) * ((size_t)(a1 - a0) * (k + 1) + 1));
    double total = 0.0, lk = log((double)k);
    #pragma omp parallel for reduction(+:total) schedule(static)
    for (int i = a0; i < a1; i++) {
        const float *zi = z + (size_t)i * D;
        double *c = coef + (size_t)(i - a0) * (k + 1);
        double sp = dotf(zi, z + (size_t)(B + i) * D, D) / T;
        if (type == NC_LOSS_INFONCE) {
            double mx = sp;
            for (int j = 0; j < k; j++) {
                c[j + 1] = dotf(zi, row_of(z, queue, B, D, neg[(size_t)i * k + j]), D) / T;
                if (c[j + 1] > mx) mx = c[j + 1];
            }
            double sum = exp(sp - mx);
            for (int j = 0; j < k; j++) sum += exp(c[j + 1] - mx);
            total += mx + log(sum) - sp;
            c[0] = exp(sp - mx) / sum - 1.0;
            for (int j = 0; j < k; j++) c[j + 1] = exp(c[j + 1] - mx) / sum;
        } else {
            total += softplus(lk - sp);
            c[0] = -sigmoid(lk - sp);
            for (int j = 0; j < k; j++) {
                double s = dotf(zi, row_of(z, queue, B, D, neg[(size_t)i * k + j]), D) / T;
                total += softplus(s - lk);
                c[j + 1] = sigmoid(s - lk);
            }
        }
    }
    *loss = total / B;
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
    free(coef);
    return NC_OK;
}

void contrast_random_negatives(int32_t *neg, int B, int k, uint64_t seed, uint32_t step, int32_t *scratch) {
    for (int i = 0; i < B; i++) {
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
}
