// trainer.h -- one model being trained: loader, net, executor, optimiser, queue and communicator,
// advanced a step or an epoch at a time. train_run (train.h) is the loop around it.
#ifndef NCELAB_TRAINER_H
#define NCELAB_TRAINER_H

#include <stdio.h>

#include "ncelab/ckpt.h"
#include "ncelab/comm.h"
#include "ncelab/loader.h"
#include "ncelab/loss.h"
#include "ncelab/net.h"
#include "ncelab/optim.h"
#include "ncelab/sampler.h"
#include "ncelab/train.h"

/* The size of a gradient bucket (floats): 8 MB. */
enum { TRAINER_BUCKET_FLOATS = 2 << 20 };

/* One optimiser step's numbers (the whole global batch's, identical on every rank). */
typedef struct {
    double loss;
    float lr;
    double collision_rate, any_collision, coverage;
    double queue_age;        /* mean age in optimiser steps of the queue's negatives (NaN: no queue) */
} TrainStep;

typedef struct Trainer Trainer;
struct Trainer {
    TrainConfig cfg;
    TrainSettings set;
    const Dataset *ds;       /* borrowed: must outlive the trainer */
    float mean[3], std[3];   /* the input normalisation (data_norm_stats of the training split) */
    Comm *comm;              /* borrowed; comm_single() for one process */
    Loader *loader;
    Net net;
    NetExec *x;
    Optim opt;
    EmbQueue queue;
    int has_queue;           /* k > 2B - 2: negatives from the queue, keys from the key encoder (moco.h) */
    Net key;                 /* the key encoder: a momentum average of net (with a queue) */
    NetExec *xk;             /* its executor, training-mode forwards of this rank's 2b rows, no backward */
    float *zl, *dzl2;        /* (2B, D) moco_loss_part's scratch (zl zeroed once) */
    float *dq;               /* (2b, D) d loss / d this rank's query rows (with a queue) */
    LrConfig lr;
    int B, b, D;             /* global anchors per batch, this rank's (B / ranks), embedding dim */
    int steps_per_epoch;
    CkptProgress prog;       /* epochs and steps done, training seconds, the last epoch */
    cJSON *history;          /* rank 0: every epoch's log line (train_epoch_json), saved in the checkpoint */
    float *z;                /* (2B, D) the global batch's embeddings (gathered), batch row order */
    float *dz;               /* (2B, D) d loss / d z of this rank's anchors */
    float *zsend, *zrecv;    /* (2B, D) scratch of the gather and reduce-scatter, rank order (ranks > 1) */
    float *dzl;              /* (2b, D) the gradient of this rank's own rows */
    ContrastWork work;       /* the loss's scratch for this rank's b anchors */
    /* ranks > 1: the parameter gradients all-reduced in buckets of the gradient block, from its
       end, each started as soon as backward has finished it (nnx_set_grad_ready), so that the
       all-reduce runs beside the rest of backward */
    int nbuckets, next_bucket;
    size_t *bucket_lo;       /* (nbuckets + 1) bucket j is [bucket_lo[j + 1], bucket_lo[j]) */
    CommReq *reqs;           /* (nbuckets) */
    int bucket_rc;           /* the first error of a bucket's start or progress */
    NcError bucket_err;
    long fault_nan_step;     /* tests: the step whose loss is made NaN (-1: none) */
    FILE *steps_log;         /* rank 0 with cfg.log_every: DIR/steps.csv, appended (trainer_fit) */
    char *steps_path;
};

/* trainer_create: a fresh model for configuration c (checked by train_config_check into s) on the
   training split of ds, initialised from the seed, on comm's ranks (NULL: one process). The
   batch is shared out: this rank embeds B / ranks anchors and their positives (NC_EUSAGE naming
   --batch and the number of ranks when B is not a multiple). Allocates everything the steps use. */
int trainer_create(Trainer *t, const TrainConfig *c, const TrainSettings *s, const Dataset *ds, Comm *comm,
                   NcError *err);

/* trainer_resume: the state of checkpoint path (ckpt_load: same configuration required); the
   loader continues at the checkpoint's epoch. */
int trainer_resume(Trainer *t, const char *path, NcError *err);

/* trainer_step: one optimiser step on the next batch: forward on this rank's rows, the embeddings
   gathered, the loss of this rank's anchors against the global batch (and the queue), the
   gradients of remote rows sent back to their owners, backward, parameter gradients summed over
   the ranks, the optimiser, the queue. NC_ENUM naming the epoch and step for a non-finite loss
   or activation (nothing updated). */
int trainer_step(Trainer *t, TrainStep *st, NcError *err);

/* trainer_epoch: the steps of one epoch; e gets its log line (no kNN monitor: knn_acc NaN).
   rep->step is called after each step. */
int trainer_epoch(Trainer *t, const TrainReport *rep, TrainEpoch *e, NcError *err);

/* trainer_save: the checkpoint of the trainer's state (every rank holds the same; call it on one). */
int trainer_save(const Trainer *t, const char *path, NcError *err);

void trainer_free(Trainer *t);

/* steps_log_open: the step log at path ("step,epoch,loss,lr,collision_rate,any_collision,
   coverage,queue_age,seconds"): its rows of steps 1..done_steps kept (the rest, written by a run
   killed after its last checkpoint, dropped; the file rewritten atomically), then opened for
   appending into *out. steps_log_row: one row (seconds: training seconds of the run so far),
   flushed. NC_EFILE naming path. (steps_log.c) */
int steps_log_open(const char *path, long done_steps, FILE **out, NcError *err);
int steps_log_row(FILE *f, const char *path, long step, int epoch, const TrainStep *st, double seconds, NcError *err);

/* trainer_fit: the loop of train_run around a trainer made by trainer_create (and resumed by
   trainer_resume): the epochs from t's to the configuration's, each followed by the kNN monitor,
   the log lines and the checkpoint in the configuration's out directory (rank 0 writes; the logs
   are appended when t starts past epoch 0). The trainer stays alive for the caller. (train.c) */
int trainer_fit(Trainer *t, const TrainReport *rep, TrainResult *r, NcError *err);

#endif
