// ckpt.h -- the training checkpoint: one safetensors file holding the parameters, the batch-norm
// statistics, the optimiser state, the embedding queue, the configuration and the run's progress.
#ifndef NCELAB_CKPT_H
#define NCELAB_CKPT_H

#include "ncelab/net.h"
#include "ncelab/optim.h"
#include "ncelab/safetensors.h"
#include "ncelab/sampler.h"
#include "ncelab/train.h"

/* Where a run stands when its checkpoint is written. */
typedef struct {
    int epoch;               /* epochs done */
    long step;               /* optimiser steps done */
    double seconds;          /* wall time of the training steps of every epoch so far */
    TrainEpoch last;         /* the last epoch's log line (epoch 0 and NaNs when none) */
} CkptProgress;

/* What a checkpoint says about its encoder beside the network's own shape, so that it can be
   used without ncelab (docs/checkpoint.md). */
typedef struct {
    float mean[3], std[3];        /* the input normalisation of training (data_norm_stats of the
                                     training split, after the imbalance and --train-limit), per channel */
    int num_classes;
    char *const *class_names;     /* (num_classes) borrowed; NULL: none recorded */
} CkptEncoder;

/* ckpt_save: writes path atomically. Tensors: every parameter under its PyTorch name, each batch
   norm's NAME.running_mean / NAME.running_var, "optim.state" (2 x parameters floats),
   "optim.step" (int64), and with a queue "queue.emb" (Q, D), "queue.labels" (Q), "queue.stamp" (Q),
   "queue.count_head" (2, int64) and the key encoder's parameters and statistics under the same
   names prefixed "key." (key.conv1.weight, ...). Metadata: "config" (train_config_json), "epoch", "step",
   "seconds", "last_epoch" (JSON), "history" (JSON: every epoch's log line so far, the source the
   logs are written from), "version", "format" ("ncelab checkpoint 1"), and the encoder's
   description (ckpt_meta_write). q, key, history and enc may be NULL. */
int ckpt_save(const char *path, const TrainConfig *c, const Net *net, const Optim *opt, const EmbQueue *q,
              const Net *key, const CkptProgress *p, const cJSON *history, const CkptEncoder *enc, NcError *err);

/* ckpt_meta_write: the encoder's description into w's metadata: "model", "input_shape" (JSON
   [C, H, W]), "feature_dim", "head_dim", "data" (the SPEC), and with e "normalization" (JSON
   {"mean": [C numbers], "std": [C numbers]}: the network's input is (pixel / 255 - mean) / std)
   and "class_names" (JSON array of strings). (ckpt_meta.c) */
int ckpt_meta_write(StWriter *w, const TrainConfig *c, const Net *net, const CkptEncoder *e, NcError *err);

/* ckpt_read_norm: the stored input normalisation of a checkpoint whose input has `channels`
   channels (1 to 3) into mean and std (channels beyond repeat channel 0, as data_norm_stats).
   *found = 0 and NC_OK when the checkpoint has none (written before ncelab recorded it);
   NC_EFILE naming the file when it is malformed, has another number of channels, or a std <= 0. */
int ckpt_read_norm(const char *path, int channels, float mean[3], float std[3], int *found, NcError *err);

/* ckpt_load: everything ckpt_save wrote back into net, opt, q and key (NULL: none expected), p and
   *history (NULL: not wanted; a new array the caller deletes, empty or holding the last epoch for
   checkpoints written before the history was kept). The stored configuration must describe the
   same run as expect (train_config_same): NC_EUSAGE naming the file and the fields that differ
   otherwise, and nothing is changed. NC_EFILE naming the file and the tensor for a missing or
   misshapen tensor, or for a negative epoch or step. */
int ckpt_load(const char *path, const TrainConfig *expect, Net *net, Optim *opt, EmbQueue *q, Net *key,
              CkptProgress *p, cJSON **history, NcError *err);

/* ckpt_read_config, ckpt_read_progress: the configuration or the progress alone. */
int ckpt_read_config(const char *path, TrainConfig *c, NcError *err);
int ckpt_read_progress(const char *path, CkptProgress *p, NcError *err);
/* ckpt_read_weights: the parameters and batch-norm statistics into net (a net of the checkpoint's
   model and input shape). Every tensor must be F32 of exactly the net's shape, its values finite,
   a running variance's >= 0 (ckpt_load checks the same, and the optimiser state's values): NC_EFILE
   naming the file and the tensor, and what was expected and found, otherwise
   ("ckpt.safetensors: conv1.weight: F32 [32,3,3,3] expected, I32 [32] found"). */
int ckpt_read_weights(const char *path, Net *net, NcError *err);

#endif
