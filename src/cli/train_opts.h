// train_opts.h -- the training options shared by `ncelab train` and `ncelab sweep`.
#ifndef NCELAB_CLI_TRAIN_OPTS_H
#define NCELAB_CLI_TRAIN_OPTS_H

#include "args.h"
#include "ncelab/progress.h"
#include "ncelab/sweep.h"
#include "ncelab/train.h"

/* The number of training options, and train_opts_add: copies them to o (room for TRAIN_OPTS_N),
   with or without --resume and --force (the last two); returns how many. */
enum { TRAIN_OPTS_N = 27 };
int train_opts_add(Opt *o, int with_resume);
/* train_opts_apply: fills c (from its defaults) with the values given (all but k, which the
   command reads); exits 2 on a bad value. */
void train_opts_apply(const Opt *o, int no, TrainConfig *c);

/* train_opts_auto_queue: for k beyond the batch's 2B - 2 rows and no --queue, the smallest
   queue that serves (Q = k), said in one line on stdout (only by rank 0). */
void train_opts_auto_queue(TrainConfig *c, long k);

/* The terminal's side of a run: a progress bar per epoch and one line after it. */
typedef struct {
    int epochs;
    int knn;                 /* print the kNN monitor's accuracy */
    Progress bar;
    char label[32];
} TrainPrinter;
/* train_printer: a TrainReport that draws on p (p->epochs and p->knn set by the caller). */
TrainReport train_printer(TrainPrinter *p);

/* The terminal's side of a sweep: a line per run, and its training's bars and lines. */
typedef struct {
    TrainPrinter train;
} SweepPrinter;
SweepReport sweep_printer(SweepPrinter *p);

#endif
