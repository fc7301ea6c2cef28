// moco.c -- the symmetric loss against a queue, and the key encoder's momentum update.
#include "ncelab/moco.h"

#include <string.h>

/* one half: the anchors' rows a (n, D) against the positives' keys p (n, D), placed in the global
   batch's rows a0.. and B + a0.. of zl; the anchors' gradient, halved, into da (n, D) */
static int half(NcLoss type, const float *a, const float *p, int B, int D, const int32_t *neg, int k,
                const float *queue, int Q, float T, int a0, int a1, double *loss, float *da, float *zl, float *dzl,
                ContrastWork *w, NcError *err) {
    size_t nb = sizeof(float) * (size_t)(a1 - a0) * D;
    memcpy(zl + (size_t)a0 * D, a, nb);
    memcpy(zl + ((size_t)B + a0) * D, p, nb);
    int rc = contrast_loss_part(type, zl, B, D, neg, k, queue, Q, T, a0, a1, loss, dzl, w, err);
    if (rc) return rc;
    const float *g = dzl + (size_t)a0 * D;
    for (size_t j = 0; j < (size_t)(a1 - a0) * D; j++) da[j] = 0.5f * g[j];
    return NC_OK;
}

int moco_loss_part(NcLoss type, const float *q, const float *kz, int B, int D, const int32_t *neg, int k,
                   const float *queue, int Q, float T, int a0, int a1, double *loss, float *dq, float *zl, float *dzl,
                   ContrastWork *w, NcError *err) {
    int n = a1 - a0;
    if (a0 < 0 || a1 > B || n < 1)
        return nc_fail(err, NC_EUSAGE, "moco: anchors %d..%d do not lie in a batch of %d", a0, a1 - 1, B);
    for (long j = (long)a0 * k; j < (long)a1 * k; j++)
        if (neg[j] < 2 * B)
            return nc_fail(err, NC_EUSAGE, "moco: negative %ld of anchor %ld is batch row %d, not a queue row",
                           j % k, j / k, neg[j]);
    double l1, l2;
    size_t half_rows = (size_t)n * D;
    int rc = half(type, q, kz + half_rows, B, D, neg, k, queue, Q, T, a0, a1, &l1, dq, zl, dzl, w, err);
    if (!rc) rc = half(type, q + half_rows, kz, B, D, neg, k, queue, Q, T, a0, a1, &l2, dq + half_rows, zl, dzl, w, err);
    if (!rc) *loss = 0.5 * (l1 + l2);
    return rc;
}

void moco_momentum_update(Net *key, const Net *query, float m) {
    float *kp = key->params;
    const float *qp = query->params;
    size_t n = query->n_param_floats;
#pragma omp parallel for simd schedule(static) if (n > (1u << 16))
    for (size_t i = 0; i < n; i++) kp[i] = m * kp[i] + (1.0f - m) * qp[i];
}

void moco_copy(Net *key, const Net *query) {
    memcpy(key->params, query->params, sizeof(float) * query->n_param_floats);
    memcpy(key->stats, query->stats, sizeof(float) * query->n_stat_floats);
}
