// sampler.h -- contrastive batches: anchors, their positives and exactly k negatives each; the embedding queue.
#ifndef NCELAB_SAMPLER_H
#define NCELAB_SAMPLER_H

#include <stdint.h>

#include "ncelab/core.h"
#include "ncelab/data.h"

/* How the positive of an anchor is chosen (--positives):
     class          another image of the anchor's class, uniformly, never the anchor itself
                    (the paper's setting; the loader does not augment: normalisation only)
     augment        the anchor's own image; the loader renders two different augmented views
     class+augment  another image of the same class, both augmented */
enum { SAMPLER_POS_CLASS = 0, SAMPLER_POS_AUGMENT = 1, SAMPLER_POS_CLASS_AUGMENT = 2 };

/* sampler_positives_parse: "class", "augment" or "class+augment"; NC_EUSAGE naming what. */
int sampler_positives_parse(const char *s, const char *what, int *mode, NcError *err);
const char *sampler_positives_name(int mode);

typedef struct {
    int batch;               /* B >= 2 anchors per batch (and B positives) */
    int k;                   /* negatives per anchor, >= 1 */
    int positives;           /* SAMPLER_POS_* */
    int exclude_same_class;  /* 1: no negative shares its anchor's label */
    int queue;               /* Q: size of the embedding queue used when k > 2B - 2 (needs Q >= k);
                                0: no queue. Ignored when k <= 2B - 2. */
    uint64_t seed;
} SamplerConfig;

/* One batch of 2B rows. Rows 0..B-1 are the anchors, row B + i is the positive of anchor i.
   neg (B, k) holds, for anchor i, the rows of its k negatives, all distinct:
     - from the batch (k <= 2B - 2): rows r in [0, 2B) other than i and B + i, drawn uniformly
       without replacement (same-class rows allowed unless exclude_same_class);
     - from the queue (k > 2B - 2, from_queue = 1): 2B + j means slot j of the EmbQueue, as the
       queue stands when the loss is computed; these are filled by sampler_queue_negatives, and
       are -1 until then. */
typedef struct {
    int B, k;
    int epoch, step;         /* which batch: step in [0, sampler_steps_per_epoch) */
    int from_queue;
    int32_t *index;          /* (2B) dataset indices of the rows */
    int32_t *labels;         /* (2B) labels of the rows */
    int32_t *neg;            /* (B, k) negative rows, see above */
    /* statistics of the negatives, NAN until they are drawn; with class prior rho, compare
       collision_rate with tau_1 = sum_c rho_c^2 and any_collision with the theory's
       tau_k = 1 - sum_c rho_c (1 - rho_c)^k (theory_collision_prob); in a finite batch they
       differ slightly (draws without replacement, the positive's row left out) */
    double collision_rate;   /* fraction of the B k negatives whose label equals the anchor's */
    double any_collision;    /* fraction of anchors with at least one such negative */
    double coverage;         /* mean over anchors of the number of distinct labels among its k negatives */
} SamplerBatch;

/* The embedding queue: a FIFO ring of Q embeddings of dimension D and their labels. Slot j is
   a fixed place in memory; pushing overwrites the oldest slots. Slots 0..count-1 are filled. */
typedef struct {
    int Q, D;
    int count;               /* filled slots, <= Q */
    int head;                /* the next slot to overwrite */
    float *emb;              /* (Q, D) */
    int32_t *labels;         /* (Q) */
    int64_t *stamp;          /* (Q) the stamp each slot was pushed with (its age is now - stamp) */
    int64_t now;             /* the stamp of the rows pushed next (the trainer: the optimiser step
                                whose network embedded them) */
} EmbQueue;

/* queue_init: an empty queue of Q >= 1 slots of dimension D >= 1; NC_EUSAGE naming --queue. */
int queue_init(EmbQueue *q, int Q, int D, NcError *err);
/* queue_push: appends n rows emb (n, D) with labels (n), stamped q->now; when n > Q only the
   last Q are kept. */
void queue_push(EmbQueue *q, const float *emb, const int32_t *labels, int n);
/* queue_row: the embedding (D) in slot j. */
const float *queue_row(const EmbQueue *q, int slot);
void queue_free(EmbQueue *q);

typedef struct Sampler Sampler;

/* sampler_check_pool: k distinct negatives need k <= 2B - 2 rows of the batch, or else a queue of
   Q >= k slots; NC_EUSAGE naming --k or --queue otherwise. */
int sampler_check_pool(int B, int k, int queue, NcError *err);

/* sampler_create: a sampler over split s (kept by pointer, must outlive the sampler). Checks
   the configuration: B in [2, n], k >= 1, k <= 2B - 2 unless a queue Q >= k is given, labels
   >= 0, and for class positives that no class has a single image (the error names the class).
   NC_EUSAGE with a one-line message naming the option and value. */
int sampler_create(const DataSplit *s, const SamplerConfig *cfg, Sampler **out, NcError *err);
void sampler_free(Sampler *s);
/* floor(n / B): the last incomplete batch of an epoch is dropped. */
int sampler_steps_per_epoch(const Sampler *s);
/* 1 + the largest label of the split. */
int sampler_num_classes(const Sampler *s);
const SamplerConfig *sampler_config(const Sampler *s);

/* sampler_batch_init: allocates b's arrays for s's B and k. */
void sampler_batch_init(SamplerBatch *b, const Sampler *s);
void sampler_batch_free(SamplerBatch *b);

/* sampler_batch: fills b with batch `step` of `epoch`, a pure function of (seed, epoch, step):
   the anchors are perm[step B .. step B + B - 1] for a permutation of the split keyed by
   (seed, epoch); then their positives and, from the batch, their negatives. Allocates nothing.
   Fails (NC_EUSAGE) when exclude_same_class leaves an anchor fewer than k candidates, naming k
   and the count. Not thread-safe for one sampler (one producer thread calls it). */
int sampler_batch(Sampler *s, int epoch, int step, SamplerBatch *b, NcError *err);

/* sampler_queue_negatives: for a batch with from_queue = 1, draws for each anchor k distinct
   slots among the queue's filled ones (without same-class slots under exclude_same_class),
   uniformly without replacement, keyed by (seed, epoch, step); stores 2B + slot in b->neg and
   sets the statistics from the queue's labels. Call it after the last queue_push that precedes
   this batch's loss. NC_EUSAGE when fewer than k slots qualify (naming k and the count). Uses
   scratch separate from sampler_batch, so it may run while a producer calls sampler_batch. */
int sampler_queue_negatives(Sampler *s, SamplerBatch *b, const EmbQueue *q, NcError *err);

#endif
