// train.h -- contrastive training with exactly k negatives per anchor: the configuration (strings
// as the user gives them, checked once into typed settings), the run loop with per-epoch logs and
// resumable safetensors checkpoints, and the evaluation of a checkpoint.
#ifndef NCELAB_TRAIN_H
#define NCELAB_TRAIN_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "ncelab/augment.h"
#include "ncelab/comm.h"
#include "ncelab/core.h"
#include "ncelab/data.h"
#include "ncelab/eval.h"
#include "ncelab/optim.h"

typedef struct {
    char data[512];          /* dataset SPEC (data.h) */
    char imbalance[32];      /* "" or "zipf:S" */
    char model[32];          /* convnet | resnet18 */
    char positives[32];      /* class | augment | class+augment */
    char aug[32];            /* simclr | crop_flip | none (views of augment positives) */
    char optim[32];          /* sgd | sgd-nesterov | adamw | lars */
    char schedule[32];       /* constant | cosine | step */
    char loss[16];           /* infonce | nce */
    int k, batch, epochs, warmup_epochs, queue, exclude_same_class, threads;
    int train_limit;         /* > 0: train on this many training images (a seeded subset; data.h) */
    int knn_monitor;         /* > 0: after every epoch, kNN accuracy on the test split with a bank of
                                this many training images (backbone features); 0: off */
    int log_every;           /* > 0: every log_every optimiser steps a row of DIR/steps.csv (the
                                step's loss, lr and negatives' statistics); 0: off */
    float lr, temp, wd;
    float key_momentum;      /* negatives from the queue: the key encoder's momentum m (MoCo; moco.h) */
    uint64_t seed;
    int ranks;               /* data-parallel processes that trained it (1: one); recorded, but a
                                run resumes on any number (train_config_same ignores it) */
    char out[512];           /* output directory (not part of the configuration's JSON) */
} TrainConfig;

/* train_config_default: convnet, class positives, simclr views, sgd, cosine (no warm-up),
   infonce, k 16, batch 256, 1 epoch, lr 0.06 x batch / 256, T 0.5, wd 5e-4, key momentum 0.99, seed 0. */
void train_config_default(TrainConfig *c);

/* The configuration's strings, checked and turned into typed settings. */
typedef struct {
    OptConfig optim;
    LrKind schedule;
    NcLoss loss;
    int positives;           /* SAMPLER_POS_* */
    AugConfig aug;           /* the views' preset; mean and std are set from the data */
    DataOpts data;           /* imbalance, train limit, seed */
} TrainSettings;

/* train_config_check: every option of c validated at once, before any file is touched or data
   read: optimiser, schedule, loss, positives, views, imbalance, lr and T positive and finite,
   epochs >= 1, batch >= 2, k within the batch's 2B - 2 rows or the queue. NC_EUSAGE with one line
   naming the option. */
int train_config_check(const TrainConfig *c, TrainSettings *s, NcError *err);

/* train_config_json: the configuration as a JSON object text (malloc'd), every field but out;
   train_config_parse reads it back (NC_EFILE naming what for a malformed text; fields absent in
   older checkpoints take their defaults). A string that is not UTF-8 (a folder's name) is
   written with U+FFFD for its invalid bytes, and its exact bytes beside it in hex as
   "NAME_bytes" (e.g. "data_bytes"), which train_config_parse reads back. */
char *train_config_json(const TrainConfig *c);
int train_config_parse(const char *json, const char *what, TrainConfig *c, NcError *err);
/* train_config_same: 1 when a and b describe the same run: every field of the configuration
   JSON but the number of epochs, the kNN monitor, the step log and the number of ranks. */
int train_config_same(const TrainConfig *a, const TrainConfig *b);
/* train_config_diff: the fields where they differ, "k: 6 in the checkpoint, 5 given; ...", into
   buf (n bytes), a the saved configuration and b the given one. */
void train_config_diff(const TrainConfig *saved, const TrainConfig *given, char *buf, size_t n);

/* One epoch's log line. */
typedef struct {
    int epoch;               /* 1-based */
    double loss;             /* mean over the epoch's steps */
    float lr;                /* the last step's learning rate */
    double imgs_per_sec;
    double collision_rate;   /* fraction of negatives of the anchor's class */
    double any_collision;    /* fraction of anchors with at least one such negative */
    double coverage;         /* mean number of distinct classes among an anchor's negatives */
    double seconds;          /* wall time of the epoch's steps */
    double queue_age;        /* mean age in optimiser steps of the queue's negatives (staleness;
                                NaN without a queue) */
    double knn_acc;          /* the kNN monitor after the epoch (NaN when off) */
} TrainEpoch;

/* train_epoch_json: {"epoch","loss","lr","imgs_per_sec","collision_rate","any_collision",
   "coverage","seconds","queue_age"[,"knn_acc"]} (a log.json entry); train_epoch_from_json reads it back
   (absent numbers are NaN; 0 and epoch 0 when o is not such an object, NULL included). */
cJSON *train_epoch_json(const TrainEpoch *e);
int train_epoch_from_json(const cJSON *o, TrainEpoch *e);

/* How a run reports: the library prints nothing; the CLI draws the progress bar and the lines.
   Any member may be NULL. */
typedef struct {
    void (*step)(void *ctx, int epoch, int step, int steps);   /* after each step (epoch 1-based) */
    void (*epoch)(void *ctx, const TrainEpoch *e);             /* after each epoch's checkpoint */
    void *ctx;
} TrainReport;

typedef struct {
    int epochs_done;         /* epochs completed in this call */
    TrainEpoch last;         /* the last epoch (of this call or, when none ran, of the checkpoint) */
    double train_seconds;    /* wall time of the training steps in this call */
    double total_seconds;    /* of every epoch of the run, earlier calls included */
} TrainResult;

/* train_run: checks c, loads its dataset and trains, writing DIR/ckpt.safetensors after every
   epoch (atomically; docs/checkpoint.md: the parameters under their PyTorch names, each batch
   norm's running_mean/running_var, "optim.state", "optim.step", the queue; metadata "config",
   "epoch", "step", "seconds", "last_epoch", "history", "version", and the encoder's description:
   model, input shape, normalisation, class names, dimensions), then DIR/log.csv and
   DIR/log.json rewritten whole from the checkpoint's history (so the logs never hold an epoch the
   checkpoint does not). Rank 0 holds DIR's lock (nc_dir_lock) for the whole run: a second writer
   is refused (NC_EUSAGE naming the holder's pid).
   mode TRAIN_NEW: DIR must not hold a checkpoint (NC_EUSAGE); TRAIN_OVERWRITE: one there is
   replaced by a new run; TRAIN_RESUME: continue from DIR/ckpt.safetensors, whose configuration
   must equal c except for the number of epochs (the learning-rate schedule then runs over the
   new total), the kNN monitor and the number of ranks (refused otherwise, naming the fields that
   differ, nothing overwritten); the logs are rewritten from its history first, and with the same
   epochs the weights end as those of an uninterrupted run. A non-finite loss stops the run
   (NC_ENUM naming the epoch and step) and leaves the last checkpoint as it was. comm: the
   data-parallel communicator (NULL: one process); rank 0 writes every file. */
enum { TRAIN_NEW = 0, TRAIN_RESUME = 1, TRAIN_OVERWRITE = 2 };
int train_run(const TrainConfig *c, int mode, Comm *comm, const TrainReport *rep, TrainResult *r, NcError *err);

/* train_eval_checkpoint: loads a checkpoint written by train_run and the dataset (spec, or the
   one it was trained on when NULL, with its imbalance and train limit), embeds both splits in
   chunks of `batch`, normalised as in training (the checkpoint's stored normalisation; for a
   checkpoint without one, data_norm_stats of the training split), and evaluates both layers
   (eval_net). emb_stem (or NULL) writes
   STEM_{train,test}_{features,head,labels}.npy. comm (NULL: one process): its ranks share the
   embeddings and the classifiers' work, rank 0 writes; every rank gets the report. */
int train_eval_checkpoint(const char *ckpt, const char *spec, const EvalConfig *ec, int batch, const char *emb_stem,
                          Comm *comm, EvalReport *r, NcError *err);

/* train_eval_on: sets ec's data-parallel fields (part, parts, sum, gather) for comm's ranks. */
void train_eval_on(EvalConfig *ec, Comm *comm);

#endif
