// sweep.h -- the k-sweep: train and evaluate every (k, seed), resumably, summarise mean +- std per
// k, and put the theory engine's prediction for the dataset's class prior beside it.
#ifndef NCELAB_SWEEP_H
#define NCELAB_SWEEP_H

#include <cjson/cJSON.h>

#include "ncelab/eval.h"
#include "ncelab/theory.h"
#include "ncelab/train.h"

typedef struct {
    TrainConfig base;        /* every training option; k, seed and out are set per run */
    const long *ks;          /* (nk) values of k, increasing */
    int nk;
    int seeds;               /* seeds base.seed, base.seed + 1, ... */
    float queue_lr;          /* > 0: the learning rate of the runs whose negatives come from the
                                queue (k > 2B - 2, MoCo's step), instead of base.lr */
    EvalConfig eval;
    int eval_batch;
    int ranks_per_run;       /* data-parallel ranks of each run (0 or 1: one); the communicator's
                                ranks form groups of this many, which share out the runs */
    int sweep_ranks;         /* the ranks of the whole sweep (set by sweep_run; results.json) */
    char out[512];           /* DIR: DIR/runs/k<K>_seed<S>/ per run */
    int lock_fd;             /* rank 0's lock on DIR (nc_dir_lock): taken by sweep_run, released by
                                sweep_unlock (-1: none) */
} SweepConfig;

typedef struct {
    long k;
    int seed, epochs;
    double final_loss, train_seconds, eval_seconds, imgs_per_sec;
    double collision_rate;   /* last epoch: fraction of negatives of the anchor's class */
    double any_collision;    /* last epoch: fraction of anchors with a negative of their class */
    EvalMetrics features, head;
    int skipped;             /* 1: read from an earlier run's result.json */
} SweepRun;

/* The theory engine on the dataset's class prior: N classes, rho from the training split's class
   counts, R = 1 / sqrt(T) (unit-norm embeddings at temperature T), the training loss. */
typedef struct {
    int N;
    double R;
    double *rho;             /* (N) */
    TheorySolution *sol;     /* (nk) */
    double seconds;
} SweepTheory;

/* How a sweep reports (the library prints nothing); any member may be NULL. what is one of
   "finished earlier" (read back from its result.json), "training", "resuming", "trained earlier;
   evaluating". */
typedef struct {
    TrainReport train;       /* each run's steps and epochs */
    void (*run_start)(void *ctx, int i, int n, const SweepRun *r, const char *what);
    void (*run_done)(void *ctx, int i, int n, const SweepRun *r);
    void *ctx;
} SweepReport;

/* sweep_run: loads the dataset once, solves the theory for its class prior, then every (k, seed)
   in order: a run whose result.json matches its configuration is read back and skipped, an
   unfinished checkpoint is resumed, a finished one only evaluated; the trained net is evaluated
   in memory on the loaded data, then result.json is written. A run directory that holds another
   configuration is refused (NC_EUSAGE naming it). comm: NULL for one process; with P ranks,
   groups of c->ranks_per_run ranks (which must divide P) train and evaluate runs j, j + G, ...
   (G groups), each run's first rank writing its files, and every rank ends with every run's
   results. runs: (nk * seeds) malloc'd. th gets the theory prediction on rank 0 (empty
   elsewhere). Rank 0 locks DIR for the sweep (NC_EUSAGE naming the holder's pid when another
   process writes there) and keeps the lock for sweep_write until sweep_unlock; each run's first
   rank locks the run's directory while it trains it. */
int sweep_run(SweepConfig *c, Comm *comm, const SweepReport *rep, SweepRun **runs, SweepTheory *th, NcError *err);
/* sweep_unlock: releases the lock sweep_run took (call it after sweep_run, once). */
void sweep_unlock(SweepConfig *c);
void sweep_theory_free(SweepTheory *th, int nk);
/* sweep_run_json: {"k","seed","epochs","final_loss","train_seconds","eval_seconds","imgs_per_sec",
   "collision_rate","any_collision","features":{M},"head":{M}} */
cJSON *sweep_run_json(const SweepRun *r);

/* sweep_write: DIR/results.json ({"config","theory","runs","summary"}, DESIGN.md section 4),
   DIR/results.csv (one line per run), DIR/summary.csv (mean, std per k and layer),
   DIR/accuracy_features.svg, DIR/accuracy_head.svg, DIR/collision.svg, DIR/collision_rate.svg,
   DIR/simplex.svg, DIR/theory.svg and the self-contained DIR/report.html; all atomically. */
int sweep_write(const SweepConfig *c, const SweepRun *runs, const SweepTheory *th, NcError *err);

/* The experiments' answer by a stated rule (sweep_verdict). For each accuracy of the head (mean
   classifier, linear probe, kNN), the k with the best mean over the seeds against the largest k:
   drop = best - last, se = sqrt(s_best^2 / n + s_last^2 / n) over n seeds (sample std). More
   negatives HURT when some drop exceeds both 2 se and half a point (0.005); they DID NOT HURT
   when no drop does; with one seed the spread is not measured and the answer is UNKNOWN. */
typedef enum { SWEEP_NOT_HURT = 0, SWEEP_HURT = 1, SWEEP_UNKNOWN = 2 } SweepOutcome;
typedef struct {
    SweepOutcome outcome;
    long best_k[3];          /* mean classifier, linear probe, kNN */
    double best[3], last[3], drop[3], se[3];
    int hurt[3];
} SweepVerdict;
#define SWEEP_VERDICT_RULE "more negatives hurt when an accuracy of the head at the largest k is below the best k's by more " \
                           "than twice the standard error of the difference (sqrt(s_best^2/n + s_last^2/n), n seeds) and " \
                           "by more than half a point; with one seed the spread is unknown and so is the answer"
void sweep_verdict(const SweepConfig *c, const SweepRun *runs, SweepVerdict *v);
const char *sweep_outcome_name(SweepOutcome o);  /* "not_hurt", "hurt", "unknown" */

/* sweep_summary_table: mean +- std per k of the three accuracies of each layer, on f. */
void sweep_summary_table(FILE *f, const SweepConfig *c, const SweepRun *runs);

#endif
