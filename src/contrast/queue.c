// queue.c -- the embedding queue: a FIFO ring of Q recent embeddings (Q x D floats) and their labels.
#include <stdlib.h>
#include <string.h>

#include "ncelab/sampler.h"

int queue_init(EmbQueue *q, int Q, int D, NcError *err) {
    memset(q, 0, sizeof *q);
    if (Q < 1 || Q > 100000000) return nc_fail(err, NC_EUSAGE, "--queue: %d slots must be in [1, 1e8]", Q);
    if (D < 1 || (double)Q * D > 4e9) return nc_fail(err, NC_EUSAGE, "--queue: %d slots of dimension %d is too large", Q, D);
    q->Q = Q;
    q->D = D;
    q->emb = nc_calloc((size_t)Q * D, sizeof(float));
    q->labels = nc_malloc(sizeof(int32_t) * Q);
    q->stamp = nc_calloc((size_t)Q, sizeof(int64_t));
    for (int j = 0; j < Q; j++) q->labels[j] = -1;
    return NC_OK;
}

void queue_push(EmbQueue *q, const float *emb, const int32_t *labels, int n) {
    if (n > q->Q) {   /* only the last Q rows survive */
        emb += (size_t)(n - q->Q) * q->D;
        labels += n - q->Q;
        n = q->Q;
    }
    while (n > 0) {   /* at most two contiguous runs: up to the end of the ring, then from 0 */
        int run = q->Q - q->head < n ? q->Q - q->head : n;
        memcpy(q->emb + (size_t)q->head * q->D, emb, sizeof(float) * (size_t)run * q->D);
        memcpy(q->labels + q->head, labels, sizeof(int32_t) * run);
        for (int j = 0; j < run; j++) q->stamp[q->head + j] = q->now;
        q->head = (q->head + run) % q->Q;
        q->count = q->count + run < q->Q ? q->count + run : q->Q;
        emb += (size_t)run * q->D;
        labels += run;
        n -= run;
    }
}

const float *queue_row(const EmbQueue *q, int slot) { return q->emb + (size_t)slot * q->D; }

void queue_free(EmbQueue *q) {
    free(q->emb);
    free(q->labels);
    free(q->stamp);
    memset(q, 0, sizeof *q);
}
