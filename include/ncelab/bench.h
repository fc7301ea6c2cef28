// bench.h -- timing of the contrastive training step (forward, loss with k negatives, backward, SGD).
#ifndef NCELAB_BENCH_H
#define NCELAB_BENCH_H

#include "ncelab/core.h"
#include "ncelab/net.h"

typedef struct {
    const char *model;
    int batch, k, threads, steps, warmup;
    int c, h, w;             /* image shape (default 3 x 32 x 32) */
    NnBackend backend;
} BenchConfig;

typedef struct {
    double imgs_per_sec, ms_per_step, peak_rss_mb;
    double conv_gflop;        /* convolution work per step (forward and backward) */
    double conv_ms;           /* time inside convolution primitives per step (median step) */
    double conv_gflops;       /* conv_gflop / conv time */
    double fma_peak_gflops;   /* measured FMA peak of the threads used */
    double other_ms;          /* batch norm, pooling, ReLU, linear, loss, optimiser: the rest */
    int queue;                /* Q = k when k > 2B - 2 (the negatives are queue rows, as in training), else 0 */
    double loss_ms;           /* the contrastive loss and its gradient (median over the timed steps) */
    /* when backward finishes the gradients, for the data-parallel model (docs/scaling.md): the
       gradient block cut into buckets of bucket_floats from its end (as the trainer cuts it),
       bucket j is final ready_ms[j] after backward starts, which takes backward_ms */
    double backward_ms;
    size_t bucket_floats;
    int nbuckets;             /* <= 64 */
    double ready_ms[64];
} BenchResult;

/* bench_fma_peak: GFLOP/s of a loop of independent fused multiply-adds on `threads` threads
   (AVX2 + FMA when the CPU has them, else the compiler's scalar code): the machine's peak. */
double bench_fma_peak(int threads);

/* bench_train_step: median over cfg->steps timed steps after cfg->warmup untimed ones. With
   k > 2B - 2 the step is train's MoCo step (moco.h): negatives from a queue of Q = k unit vectors,
   a key encoder's forward, the symmetric loss (loss_ms: both halves) and the momentum update. */
int bench_train_step(const BenchConfig *cfg, BenchResult *r, NcError *err);

#endif
