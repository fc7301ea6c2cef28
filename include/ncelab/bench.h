// bench.h -- timing of the contrastive training step (forward, loss with k negatives, backward, SGD).
#ifndef NCELAB_BENCH_H
#define NCELAB_BENCH_H

#include "ncelab/core.h"
#include "ncelab/net.h"

#define BENCH_MAX_STEPS 100000  /* the most timed steps, --seconds or not */

typedef struct {
    const char *model;
    int batch, k, threads, steps, warmup;
    int c, h, w;             /* image shape (default 3 x 32 x 32) */
    NnBackend backend;
    int profile;             /* also run `steps` profiled steps (BenchResult.prof) */
    double seconds;          /* > 0: go on timing steps past `steps` until this much wall time has passed */
} BenchConfig;

/* One row of the step's profile: a layer's pass, or a part of the step outside the network. */
typedef struct {
    char name[64];           /* "layer1.0.conv1", "layer1.0.bn1+relu", or "loss", "optimizer", ... */
    char pass[12];           /* "fwd", "bwd_data", "bwd_w", "reorder" (weights, input), or "step" */
    char path[40];           /* what ran it: "oneDNN jit:avx2", "Winograd F(4,3) global", ... */
    char category[32];       /* for the summary: "conv 3x3 s1", "conv 1x1 shortcut", "bn+relu", ... */
    int node;                /* the network node, or -1 */
    double flops;            /* per step: 2 multiply-adds counted as direct convolutions / GEMMs; 0 elsewhere */
    double bytes;            /* per step, estimated: each tensor the pass reads or writes counted once */
    double ms;               /* median over the profiled steps */
} BenchProfRow;

/* The profile of `steps` steps: every row's median, and the rest of the step (the time between
   the rows: loop and call overhead), per step the step's time minus the sum of its rows, which
   cannot be negative because the rows are disjoint laps of one clock inside the step. total_ms
   = rows_ms + rest_ms (sums of medians); step_ms is the median of the profiled steps' times. */
typedef struct {
    BenchProfRow *rows;
    int nrows, steps;
    double rows_ms, rest_ms, total_ms, step_ms;
    NnMemRow *mem;           /* every buffer the step holds (parameters, optimiser, executor ...) */
    int nmem;
    double mem_bytes;        /* their sum */
} BenchProfile;

typedef struct {
    double imgs_per_sec, ms_per_step, peak_rss_mb;
    double ms_min, ms_max;    /* the fastest and the slowest timed step */
    int steps;                /* timed steps run: cfg->steps, or more to fill cfg->seconds */
    double *steps_ms;         /* every timed step's ms, in order (steps of them; bench_result_free) */
    double conv_gflop;        /* convolution work per step (forward and backward) */
    double conv_ms;           /* cfg->profile: the convolution rows of the profile (all passes and reorders) */
    double conv_gflops;       /* conv_gflop / conv time */
    double fma_peak_gflops;   /* measured FMA peak of the threads used, at the vector width oneDNN uses (fma_bits) */
    double fma_peak_avx2_gflops, fma_peak_avx512_gflops;  /* both widths (0: not on this CPU) */
    int fma_bits;             /* 512 on AVX-512 CPUs unless ONEDNN_MAX_CPU_ISA caps oneDNN at AVX2, else 256 */
    double other_ms;          /* cfg->profile: the profile's total minus conv_ms */
    int queue;                /* Q = k when k > 2B - 2 (the negatives are queue rows, as in training), else 0 */
    double loss_ms;           /* the contrastive loss and its gradient (median over the timed steps) */
    /* when backward finishes the gradients, for the data-parallel model (docs/scaling.md): the
       gradient block cut into buckets of bucket_floats from its end (as the trainer cuts it),
       bucket j is final ready_ms[j] after backward starts, which takes backward_ms */
    double backward_ms;
    size_t bucket_floats;
    int nbuckets;             /* <= 64 */
    double ready_ms[64];
    BenchProfile prof;        /* cfg->profile: the per-layer profile (bench_result_free) */
} BenchResult;

/* bench_result_free: the profile's rows. */
void bench_result_free(BenchResult *r);

/* bench_median: the median of v (n values, sorted in place); 0 for n = 0. */
double bench_median(double *v, int n);

/* bench_fma_peak: GFLOP/s of a loop of independent fused multiply-adds on `threads` threads with
   vectors of `bits` (256: AVX2 + FMA, 512: AVX-512F); 0 when the CPU lacks them. */
double bench_fma_peak(int threads, int bits);

/* bench_train_step: median over cfg->steps timed steps after cfg->warmup untimed ones; with
   cfg->profile, cfg->steps more steps with every layer timed fill r->prof. With
   k > 2B - 2 the step is train's MoCo step (moco.h): negatives from a queue of Q = k unit vectors,
   a key encoder's forward, the symmetric loss (loss_ms: both halves) and the momentum update. */
int bench_train_step(const BenchConfig *cfg, BenchResult *r, NcError *err);

#endif
