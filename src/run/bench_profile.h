// bench_profile.h -- the rows of `ncelab bench --profile` and their samples (bench_step.c runs the steps).
#ifndef NCELAB_RUN_BENCH_PROFILE_H
#define NCELAB_RUN_BENCH_PROFILE_H

#include "ncelab/bench.h"

/* The step's own work outside the network's executor, timed by bench_step.c. */
enum { OWN_SAMPLE, OWN_ZERO, OWN_KEY, OWN_LOSS, OWN_OPT, OWN_MOMENTUM, OWN_N };

/* What the rows' FLOPs and bytes depend on besides the network. */
typedef struct {
    int images;              /* 2B images a step */
    int anchors, k, dim;     /* B, negatives per anchor, embedding width */
    int queue;               /* Q (MoCo) or 0 */
} ProfShape;

/* A profile being measured: rows, then per step a sample of every row's seconds. */
typedef struct {
    BenchProfile *p;
    int nx;                  /* rows 0..nx-1 come from the executor: (xnode[r], xpart[r]); then OWN_* rows */
    int *xnode, *xpart, own_row[OWN_N];
    double *prev;            /* (nx) the executor's cumulative seconds at the last sample */
    double *samples;         /* (steps, nrows) seconds */
    double *step_s;          /* (steps) */
    int steps, done;
} ProfRun;

/* prof_begin: the rows of net run by x (every node's passes, the executor's own work, the
   step's parts; MoCo's when sh->queue) with their FLOPs and bytes; room for `steps` samples.
   Turns x's profiling on. */
void prof_begin(ProfRun *pr, BenchProfile *p, const Net *net, NetExec *x, const ProfShape *sh, int steps);

/* prof_sample: one step's sample: the executor's seconds since the last sample, own[OWN_N]
   (seconds of the step's own parts) and the step's time. */
void prof_sample(ProfRun *pr, const NetExec *x, const double own[OWN_N], double step_s);

/* prof_end: medians, the rest of the step, totals; turns x's profiling off and frees the samples. */
void prof_end(ProfRun *pr, NetExec *x);

/* prof_memory: p->mem = the rows (prefixed with the caller's own: rows, n) followed by the
   executor's buffers, each of x's rows with prefix before its name; p->mem_bytes their sum. */
void prof_memory(BenchProfile *p, const NnMemRow *own, int n, NetExec *const *xs, const char *const *prefix, int nxs);

#endif
