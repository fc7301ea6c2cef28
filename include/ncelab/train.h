// train.h -- contrastive training with exactly k negatives per anchor, logged per epoch, with
// safetensors checkpoints that a run resumes from.
#ifndef NCELAB_TRAIN_H
#define NCELAB_TRAIN_H

#include <stdint.h>

#include "ncelab/core.h"
#include "ncelab/data.h"

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
    float lr, temp, wd;
    uint64_t seed;
    char out[512];           /* output directory */
} TrainConfig;

/* train_config_default: convnet, class positives, simclr views, sgd, cosine (no warm-up),
   infonce, k 16, batch 256, 1 epoch, lr 0.06 x batch / 256, T 0.5, wd 5e-4, seed 0. */
void train_config_default(TrainConfig *c);

typedef struct {
    int epochs_done;         /* epochs completed in this call */
    double final_loss;       /* mean loss of the last epoch */
    double collision_rate;   /* mean over the last epoch */
    double train_seconds;    /* wall time of the training steps in this call */
    double imgs_per_sec;
    double knn_acc;          /* the kNN monitor after the last epoch (NaN when off) */
} TrainResult;

/* train_run: trains and writes DIR/ckpt.safetensors after every epoch (atomically; tensors:
   the parameters under their PyTorch names, each batch norm's running_mean/running_var,
   "optim.state" and "optim.step"; metadata: "config" (JSON), "epoch", "step", "version"),
   DIR/log.csv and DIR/log.json (per epoch: loss, lr, images/s, collision rate, coverage).
   resume: continue from DIR/ckpt.safetensors; its configuration must equal c except for the
   number of epochs and the kNN monitor (refused otherwise, nothing overwritten), and with the same thread count
   the weights end as those of an uninterrupted run. The output directory is checked for
   writing before training starts. A non-finite loss stops the run (NC_ENUM naming the epoch
   and step) and leaves the last checkpoint as it was. progress prints a bar on a terminal. */
int train_run(const TrainConfig *c, int resume, TrainResult *r, NcError *err);

/* train_data_opts: the data options of a configuration (imbalance, train limit, seed). */
int train_data_opts(const TrainConfig *c, DataOpts *o, NcError *err);

/* train_checkpoint_config: the configuration a checkpoint was trained with. */
int train_checkpoint_config(const char *path, TrainConfig *c, NcError *err);
/* train_checkpoint_epoch: the number of epochs a checkpoint has completed. */
int train_checkpoint_epoch(const char *path, int *epoch, NcError *err);
/* train_config_same: 1 when a and b describe the same run: every field of the configuration
   JSON but the number of epochs and the kNN monitor (the output directory is not in it). */
int train_config_same(const TrainConfig *a, const TrainConfig *b);
/* train_checkpoint_weights: parameters and batch-norm statistics from a checkpoint into net (a
   net of the checkpoint's model and input shape). NC_EFILE naming the file and the tensor. */
int train_checkpoint_weights(const char *path, void *net, NcError *err);
/* train_config_json: the configuration as a JSON object text (malloc'd); train_config_parse
   reads it back (NC_EFILE naming what for a malformed text). */
char *train_config_json(const TrainConfig *c);
int train_config_parse(const char *json, const char *what, TrainConfig *c, NcError *err);

#endif
