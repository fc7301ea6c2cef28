// sampler.c -- per-epoch anchor permutations, positives by class or view, k negatives without replacement.
#include "ncelab/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ncelab/rng.h"

/* The sampler's streams are keyed by a salted seed, so that they never coincide with the
   augmentation streams keyed by (seed, epoch, index, view). */
#define SAMPLER_SALT 0x53414d504c455221ull   /* "SAMPLER!" */
enum { STREAM_PERM = 1, STREAM_POS = 2, STREAM_NEG = 3, STREAM_QUEUE = 4 };

/* An integer uniform on [0, n), 0 < n < 2^32, by Lemire's multiply-and-reject (one 32-bit draw
   almost always, no division): about 3x faster than rng_below, which the k draws per anchor
   make worth it (B 256, k 255: 1.0 instead of 3.0 ms a batch). */
static inline uint32_t draw_below(Rng *r, uint32_t n) {
    uint64_t m = (uint64_t)rng_u32(r) * n;
    uint32_t lo = (uint32_t)m;
    if (lo < n) {
        uint32_t t = (0u - n) % n;   /* 2^32 mod n: the rejection threshold */
        while (lo < t) {
            m = (uint64_t)rng_u32(r) * n;
            lo = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

struct Sampler {
    SamplerConfig cfg;
    const DataSplit *split;
    int n, num_classes, steps;
    int32_t *perm;          /* (n) the anchors' order in perm_epoch */
    int perm_epoch;         /* -1: none yet */
    int32_t *class_start;   /* (num_classes + 1) CSR offsets into members */
    int32_t *members;       /* (n) dataset indices grouped by class, increasing within a class */
    int32_t *pos_in_class;  /* (n) position of image i within its class's members */
    int32_t *cand;          /* (2B) candidate rows of one anchor (producer) */
    uint32_t *stamp;        /* (num_classes) marks for counting distinct labels (producer) */
    uint32_t gen;
    int32_t *qcand;         /* (Q) queue candidates, identity between draws (consumer) */
    int32_t *qswap;         /* (k) the swaps of one partial Fisher-Yates, to undo them */
    uint32_t *qstamp;       /* (num_classes) (consumer) */
    uint32_t qgen;
};

int sampler_positives_parse(const char *s, const char *what, int *mode, NcError *err) {
    if (strcmp(s, "class") == 0) *mode = SAMPLER_POS_CLASS;
    else if (strcmp(s, "augment") == 0) *mode = SAMPLER_POS_AUGMENT;
    else if (strcmp(s, "class+augment") == 0) *mode = SAMPLER_POS_CLASS_AUGMENT;
    else return nc_fail(err, NC_EUSAGE, "%s: expected class, augment or class+augment, got '%s'", what, s);
    return NC_OK;
}

const char *sampler_positives_name(int mode) {
    return mode == SAMPLER_POS_CLASS ? "class" : mode == SAMPLER_POS_AUGMENT ? "augment" : "class+augment";
}

int sampler_check_pool(int B, int k, int queue, NcError *err) {
    if (queue < 0) return nc_fail(err, NC_EUSAGE, "--queue: %d must be >= 0", queue);
    int pool = 2 * B - 2;
    if (k > pool) {
        if (queue == 0)
            return nc_fail(err, NC_EUSAGE,
                           "--k: %d is larger than the pool 2B-2 = %d of a batch of %d and no queue was given "
                           "(--queue Q with Q >= k)", k, pool, B);
        if (queue < k)
            return nc_fail(err, NC_EUSAGE, "--queue: %d slots cannot hold k = %d distinct negatives (need Q >= k)",
                           queue, k);
    }
    return NC_OK;
}

int sampler_create(const DataSplit *s, const SamplerConfig *cfg, Sampler **out, NcError *err) {
    *out = NULL;
    int B = cfg->batch, k = cfg->k, n = s->n;
    if (n < 2) return nc_fail(err, NC_EUSAGE, "sampler: the split has %d images; at least 2 are needed", n);
    if (B < 2 || B > n) return nc_fail(err, NC_EUSAGE, "--batch: %d must be in [2, %d] (the split's size)", B, n);
    if (k < 1) return nc_fail(err, NC_EUSAGE, "--k: %d must be >= 1", k);
    if (cfg->positives < SAMPLER_POS_CLASS || cfg->positives > SAMPLER_POS_CLASS_AUGMENT)
        return nc_fail(err, NC_EUSAGE, "--positives: unknown mode %d", cfg->positives);
    int rc = sampler_check_pool(B, k, cfg->queue, err);
    if (rc) return rc;
    int nc = 0;
    for (int i = 0; i < n; i++) {
        if (s->labels[i] < 0) return nc_fail(err, NC_EUSAGE, "sampler: image %d has a negative label %d", i, s->labels[i]);
        if (s->labels[i] >= nc) nc = s->labels[i] + 1;
    }
    int32_t *start = nc_calloc((size_t)nc + 1, sizeof(int32_t));
    for (int i = 0; i < n; i++) start[s->labels[i] + 1]++;
    if (cfg->positives != SAMPLER_POS_AUGMENT)
        for (int c = 0; c < nc; c++)
            if (start[c + 1] == 1) {
                free(start);
                return nc_fail(err, NC_EUSAGE,
                               "--positives %s: class %d has a single image, so it has no positive of its class",
                               sampler_positives_name(cfg->positives), c);
            }
    Sampler *sp = nc_calloc(1, sizeof *sp);
    sp->cfg = *cfg;
    sp->split = s;
    sp->n = n;
    sp->num_classes = nc;
    sp->steps = n / B;
    sp->perm = nc_malloc(sizeof(int32_t) * n);
    sp->perm_epoch = -1;
    for (int c = 0; c < nc; c++) start[c + 1] += start[c];
    sp->class_start = start;
    sp->members = nc_malloc(sizeof(int32_t) * n);
    sp->pos_in_class = nc_malloc(sizeof(int32_t) * n);
    int32_t *fill = nc_malloc(sizeof(int32_t) * (nc + 1));
    memcpy(fill, start, sizeof(int32_t) * (nc + 1));
    for (int i = 0; i < n; i++) {
        int c = s->labels[i];
        sp->pos_in_class[i] = fill[c] - start[c];
        sp->members[fill[c]++] = i;
    }
    free(fill);
    sp->cand = nc_malloc(sizeof(int32_t) * 2 * B);
    sp->stamp = nc_calloc((size_t)nc, sizeof(uint32_t));
    sp->qstamp = nc_calloc((size_t)nc, sizeof(uint32_t));
    if (k > 2 * B - 2) {
        sp->qcand = nc_malloc(sizeof(int32_t) * cfg->queue);
        for (int j = 0; j < cfg->queue; j++) sp->qcand[j] = j;
        sp->qswap = nc_malloc(sizeof(int32_t) * k);
    }
    *out = sp;
    return NC_OK;
}

void sampler_free(Sampler *s) {
    if (!s) return;
    free(s->perm);
    free(s->class_start);
    free(s->members);
    free(s->pos_in_class);
    free(s->cand);
    free(s->stamp);
    free(s->qstamp);
    free(s->qcand);
    free(s->qswap);
    free(s);
}

int sampler_steps_per_epoch(const Sampler *s) { return s->steps; }
int sampler_num_classes(const Sampler *s) { return s->num_classes; }
const SamplerConfig *sampler_config(const Sampler *s) { return &s->cfg; }

void sampler_batch_init(SamplerBatch *b, const Sampler *s) {
    memset(b, 0, sizeof *b);
    b->B = s->cfg.batch;
    b->k = s->cfg.k;
    b->from_queue = s->cfg.k > 2 * s->cfg.batch - 2;
    b->index = nc_malloc(sizeof(int32_t) * 2 * b->B);
    b->labels = nc_malloc(sizeof(int32_t) * 2 * b->B);
    b->neg = nc_malloc(sizeof(int32_t) * (size_t)b->B * b->k);
    b->collision_rate = b->any_collision = b->coverage = NAN;
}

void sampler_batch_free(SamplerBatch *b) {
    free(b->index);
    free(b->labels);
    free(b->neg);
    memset(b, 0, sizeof *b);
}

/* The permutation of the split for an epoch (Fisher-Yates keyed by (seed, epoch)). */
static void make_perm(Sampler *s, int epoch) {
    if (s->perm_epoch == epoch) return;
    Rng r;
    rng_init(&r, s->cfg.seed ^ SAMPLER_SALT, (uint32_t)epoch, 0xffffffffu, STREAM_PERM);
    for (int i = 0; i < s->n; i++) s->perm[i] = i;
    for (int i = s->n - 1; i > 0; i--) {
        int j = (int)draw_below(&r, (uint32_t)i + 1);
        int32_t t = s->perm[i];
        s->perm[i] = s->perm[j];
        s->perm[j] = t;
    }
    s->perm_epoch = epoch;
}

/* Counts, for the k negatives negl (k labels) of an anchor with label la, the collisions and
   the distinct labels (marks in stamp with generation *gen). */
static void neg_stats(const int32_t *negl, int k, int la, uint32_t *stamp, uint32_t *gen, int nc, long *coll,
                      long *any, long *distinct) {
    long before = *coll;
    if (++*gen == 0) {   /* wrapped: clear the marks */
        memset(stamp, 0, sizeof(uint32_t) * nc);
        *gen = 1;
    }
    for (int j = 0; j < k; j++) {
        int l = negl[j];
        *coll += l == la;
        if (stamp[l] != *gen) {
            stamp[l] = *gen;
            ++*distinct;
        }
    }
    *any += *coll > before;
}

int sampler_batch(Sampler *s, int epoch, int step, SamplerBatch *b, NcError *err) {
    int B = s->cfg.batch, k = s->cfg.k;
    if (epoch < 0 || step < 0 || step >= s->steps)
        return nc_fail(err, NC_EUSAGE, "sampler: batch %d of epoch %d does not exist (%d batches per epoch)", step,
                       epoch, s->steps);
    make_perm(s, epoch);
    b->epoch = epoch;
    b->step = step;
    b->B = B;
    b->k = k;
    b->from_queue = k > 2 * B - 2;
    const int32_t *lab = s->split->labels;
    Rng r;
    rng_init(&r, s->cfg.seed ^ SAMPLER_SALT, (uint32_t)epoch, (uint32_t)step, STREAM_POS);
    for (int i = 0; i < B; i++) {
        int a = s->perm[(long)step * B + i], c = lab[a], p = a;
        if (s->cfg.positives != SAMPLER_POS_AUGMENT) {
            int nc = s->class_start[c + 1] - s->class_start[c];
            int j = (int)draw_below(&r, (uint32_t)(nc - 1));   /* another member: skip a's position */
            if (j >= s->pos_in_class[a]) j++;
            p = s->members[s->class_start[c] + j];
        }
        b->index[i] = a;
        b->index[B + i] = p;
        b->labels[i] = c;
        b->labels[B + i] = lab[p];
    }
    b->collision_rate = b->any_collision = b->coverage = NAN;
    if (b->from_queue) {
        for (long j = 0; j < (long)B * k; j++) b->neg[j] = -1;
        return NC_OK;
    }
    rng_init(&r, s->cfg.seed ^ SAMPLER_SALT, (uint32_t)epoch, (uint32_t)step, STREAM_NEG);
    long coll = 0, any = 0, distinct = 0;
    for (int i = 0; i < B; i++) {
        int la = b->labels[i], m = 0;
        for (int row = 0; row < 2 * B; row++) {
            if (row == i || row == B + i) continue;
            if (s->cfg.exclude_same_class && b->labels[row] == la) continue;
            s->cand[m++] = row;
        }
        if (m < k)
            return nc_fail(err, NC_EUSAGE,
                           "--exclude-same-class: anchor %d (class %d) of batch %d, epoch %d has %d negatives of "
                           "other classes, fewer than k = %d", i, la, step, epoch, m, k);
        int32_t *ni = b->neg + (long)i * k;
        for (int j = 0; j < k; j++) {   /* partial Fisher-Yates: cand[0..j] is a uniform j+1-subset */
            int t = j + (int)draw_below(&r, (uint32_t)(m - j));
            int32_t v = s->cand[t];
            s->cand[t] = s->cand[j];
            s->cand[j] = v;
            ni[j] = v;
        }
        /* statistics: labels of the negatives, reusing cand as scratch */
        for (int j = 0; j < k; j++) s->cand[j] = b->labels[ni[j]];
        neg_stats(s->cand, k, la, s->stamp, &s->gen, s->num_classes, &coll, &any, &distinct);
    }
    b->collision_rate = (double)coll / ((double)B * k);
    b->any_collision = (double)any / B;
    b->coverage = (double)distinct / B;
    return NC_OK;
}

int sampler_queue_negatives(Sampler *s, SamplerBatch *b, const EmbQueue *q, NcError *err) {
    int B = b->B, k = b->k, cnt = q->count;
    if (!b->from_queue) return NC_OK;
    if (q->Q != s->cfg.queue)
        return nc_fail(err, NC_EUSAGE, "--queue: the queue has %d slots but the sampler was made for %d", q->Q,
                       s->cfg.queue);
    if (cnt < k)
        return nc_fail(err, NC_EUSAGE, "--queue: the queue holds %d embeddings, fewer than k = %d; push more first",
                       cnt, k);
    Rng r;
    rng_init(&r, s->cfg.seed ^ SAMPLER_SALT, (uint32_t)b->epoch, (uint32_t)b->step, STREAM_QUEUE);
    long coll = 0, any = 0, distinct = 0;
    for (int i = 0; i < B; i++) {
        int la = b->labels[i], m = cnt;
        int32_t *ni = b->neg + (long)i * k;
        if (s->cfg.exclude_same_class) {
            m = 0;
            for (int j = 0; j < cnt; j++)
                if (q->labels[j] != la) s->qcand[m++] = j;
            if (m < k) {
                for (int j = 0; j < cnt; j++) s->qcand[j] = j;
                return nc_fail(err, NC_EUSAGE,
                               "--exclude-same-class: anchor %d (class %d) has %d queue embeddings of other classes, "
                               "fewer than k = %d", i, la, m, k);
            }
        }
        for (int j = 0; j < k; j++) {
            int t = j + (int)draw_below(&r, (uint32_t)(m - j));
            int32_t v = s->qcand[t];
            s->qcand[t] = s->qcand[j];
            s->qcand[j] = v;
            s->qswap[j] = t;
            ni[j] = 2 * B + v;
        }
        if (s->cfg.exclude_same_class) {
            for (int j = 0; j < cnt; j++) s->qcand[j] = j;
        } else {
            for (int j = k - 1; j >= 0; j--) {   /* undo the swaps: qcand is the identity again */
                int t = s->qswap[j];
                int32_t v = s->qcand[t];
                s->qcand[t] = s->qcand[j];
                s->qcand[j] = v;
            }
        }
        for (int j = 0; j < k; j++) {
            int l = q->labels[ni[j] - 2 * B];
            if (l < 0 || l >= s->num_classes)
                return nc_fail(err, NC_EUSAGE, "--queue: slot %d holds label %d, outside the split's 0..%d",
                               ni[j] - 2 * B, l, s->num_classes - 1);
            s->qswap[j] = l;
        }
        neg_stats(s->qswap, k, la, s->qstamp, &s->qgen, s->num_classes, &coll, &any, &distinct);
    }
    b->collision_rate = (double)coll / ((double)B * k);
    b->any_collision = (double)any / B;
    b->coverage = (double)distinct / B;
    return NC_OK;
}
