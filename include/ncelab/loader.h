// loader.h -- contrastive batches of augmented float images, prepared by a background thread (double buffering).
#ifndef NCELAB_LOADER_H
#define NCELAB_LOADER_H

#include "ncelab/augment.h"
#include "ncelab/core.h"
#include "ncelab/data.h"
#include "ncelab/sampler.h"

typedef struct {
    SamplerConfig sampler;   /* batch B, k, positives, exclude_same_class, queue, seed */
    AugConfig aug;           /* the views of augment and class+augment positives; with class
                                positives only out_h, out_w, mean and std are used (no augmentation) */
    int threads;             /* OpenMP threads rendering a batch; 0: omp_get_max_threads() */
    int prefetch;            /* 1: a background thread prepares the next batch while the current
                                one is used; 0: loader_next renders the batch itself */
    int start_epoch, start_step;   /* the first batch to produce (to resume a run) */
    int part, parts;         /* data-parallel ranks: parts > 1 renders only the rows of rank
                                `part`: anchors part B/parts .. (part+1) B/parts - 1 and their
                                positives (B a multiple of parts); 0: every row */
} LoaderConfig;

/* loader_config_default: B 256, k 16, augment positives, simclr_cifar views, seed 0,
   omp default threads, prefetch on, from epoch 0 step 0. */
void loader_config_default(LoaderConfig *cfg);

/* One batch: rows 0..B-1 the anchors, rows B..2B-1 their positives (row B + i pairs with i).
   s.index, s.labels (2B) and s.neg (B, k) are the sampler's (see sampler.h for the row numbering
   of negatives: r < 2B a batch row, 2B + j queue slot j). Each row's view is rendered by
   aug_apply keyed by (seed, s.epoch, dataset index, view) with view 0 for anchors and
   1 + the anchor's dataset index for positives, so the two views of an image differ and the
   output is the same whatever the number of threads. */
typedef struct {
    SamplerBatch s;
    int C, H, W;             /* channels and output size of every image */
    float *x;                /* (2B, C, H, W); with parts > 1 (2B/parts, C, H, W): the part's
                                anchors, then their positives */
} Batch;

typedef struct Loader Loader;

/* loader_create: a loader over split s (kept by pointer; must outlive the loader). Allocates
   both buffers and, with prefetch, starts the producer on the first batch. NC_EUSAGE naming the
   option for a bad configuration (sampler_create, aug_check, threads). */
int loader_create(const DataSplit *s, const LoaderConfig *cfg, Loader **out, NcError *err);

/* loader_next: waits for the prepared batch, hands it out in *b and starts preparing the one
   after it. *b stays valid until the next loader_next or loader_free. Batches run through the
   epochs without end: step 0..loader_steps_per_epoch-1 of epoch e, then epoch e + 1. A sampler
   error (exclude_same_class leaving fewer than k candidates) is returned here, and again by
   every later call. Allocates nothing. */
int loader_next(Loader *l, Batch **b, NcError *err);

/* loader_queue_negatives: for batches with b->s.from_queue, draws the negatives from the queue
   as it stands now (sampler_queue_negatives); a no-op otherwise. */
int loader_queue_negatives(Loader *l, Batch *b, const EmbQueue *q, NcError *err);

int loader_steps_per_epoch(const Loader *l);
int loader_num_classes(const Loader *l);
/* loader_free: stops the producer (after the batch it is making) and frees everything. */
void loader_free(Loader *l);

/* loader_eval_images: out (count, c, OH, OW) = images start..start+count-1 of s, not augmented:
   resampled to norm_only's out_h x out_w (0: as stored) and normalised with its mean and std
   (its random operations are ignored). OpenMP over images. NC_EUSAGE for a range outside the
   split or a bad configuration. */
int loader_eval_images(const DataSplit *s, int start, int count, const AugConfig *norm_only, float *out,
                       NcError *err);

#endif
