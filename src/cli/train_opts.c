// train_opts.c -- the training options shared by `ncelab train` and `ncelab sweep`.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "train_opts.h"

static const Opt TRAIN_OPTS[TRAIN_OPTS_N] = {
    {"data", 1, "SPEC  fmnist[:DIR] | mnist:DIR | cifar10:DIR | cifar100:DIR[:coarse] | folder:DIR | synth:N", NULL},
    {"out", 1, "DIR  output directory (required)", NULL},
    {"model", 1, "NAME  convnet (default) or resnet18", NULL},
    {"positives", 1, "MODE  class (default) | augment | class+augment", NULL},
    {"aug", 1, "NAME  views for augment positives: simclr (default) | crop_flip | none", NULL},
    {"batch", 1, "B  anchors per batch (default 256; 2B images a step)", NULL},
    {"epochs", 1, "E  epochs (default 1)", NULL},
    {"lr", 1, "LR  peak learning rate (default 0.06 x B / 256)", NULL},
    {"temp", 1, "T  temperature (default 0.5)", NULL},
    {"optim", 1, "NAME  sgd (default) | sgd-nesterov | adamw | lars", NULL},
    {"wd", 1, "WD  weight decay (default 5e-4)", NULL},
    {"schedule", 1, "NAME  cosine (default) | constant | step", NULL},
    {"warmup", 1, "E  warm-up epochs of the cosine schedule (default 0)", NULL},
    {"loss", 1, "NAME  infonce (default) or nce", NULL},
    {"queue", 1, "Q  embedding queue for k > 2B - 2 (MoCo): the k negatives of every anchor are keys of earlier batches' images, embedded by a key encoder (a momentum average of the trained network, no gradient); each view is an anchor with the other view's key as its positive; the queue is filled before the first step with the initial network's embeddings of Q seeded training images, then FIFO of every batch's positive keys", NULL},
    {"key-momentum", 1, "M  with a queue: the key encoder's momentum, key <- M key + (1 - M) network after every step (default 0.99; 0: the network itself)", NULL},
    {"exclude-same-class", 0, "negatives never share the anchor's class", NULL},
    {"imbalance", 1, "zipf:S  keep n_c proportional to c^-S training images of class c", NULL},
    {"train-limit", 1, "N  train (and evaluate) on N training images, a seeded subset (default all)", NULL},
    {"knn-monitor", 1, "N  after every epoch, kNN test accuracy with N training images as the bank", NULL},
    {"log-every", 1, "N  every N optimiser steps a row of DIR/steps.csv: the step's loss, learning rate, collision rate, any_collision, coverage, queue age and training seconds", NULL},
    {"seed", 1, "S  seed (default 0)", NULL},
    {"config", 1, "FILE  start from the configuration a run wrote (its ckpt.safetensors, results.json, run.json, or a JSON object of its fields); options given on the line override it", NULL},
    ARGS_THREADS,
    ARGS_THREADS_FORCE,
    {"resume", 0, "continue from DIR/ckpt.safetensors (its log is rewritten from the checkpoint first)", NULL},
    {"force", 0, "start a new run over a checkpoint in DIR (refused without it)", NULL},
};

int train_opts_add(Opt *o, int with_resume) {
    memcpy(o, TRAIN_OPTS, sizeof TRAIN_OPTS);
    return with_resume ? TRAIN_OPTS_N : TRAIN_OPTS_N - 2;
}

static void copy_opt(char *dst, size_t n, const char *v) {
    if (v) snprintf(dst, n, "%s", v);
}

void train_opts_apply(const Opt *o, int no, TrainConfig *c) {
    NcError err = {0};
    train_config_default(c);
    copy_opt(c->data, sizeof c->data, args_get(o, no, "data"));
    copy_opt(c->out, sizeof c->out, args_get(o, no, "out"));
    copy_opt(c->model, sizeof c->model, args_get(o, no, "model"));
    copy_opt(c->positives, sizeof c->positives, args_get(o, no, "positives"));
    copy_opt(c->aug, sizeof c->aug, args_get(o, no, "aug"));
    copy_opt(c->optim, sizeof c->optim, args_get(o, no, "optim"));
    copy_opt(c->schedule, sizeof c->schedule, args_get(o, no, "schedule"));
    copy_opt(c->loss, sizeof c->loss, args_get(o, no, "loss"));
    copy_opt(c->imbalance, sizeof c->imbalance, args_get(o, no, "imbalance"));
    struct { const char *name; int *dst; long lo, hi; } ints[] = {
        {"batch", &c->batch, 2, 65536}, {"epochs", &c->epochs, 1, 100000},
        {"warmup", &c->warmup_epochs, 0, 100000}, {"queue", &c->queue, 1, 10000000},
        {"train-limit", &c->train_limit, 2, 100000000}, {"knn-monitor", &c->knn_monitor, 1, 100000000},
        {"log-every", &c->log_every, 1, 100000000},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        const char *v = args_get(o, no, ints[i].name);
        char what[48];
        snprintf(what, sizeof what, "--%s", ints[i].name);
        long x;
        if (v) {
            if (nc_parse_long(v, what, ints[i].lo, ints[i].hi, &x, &err)) cli_die(&err);
            *ints[i].dst = (int)x;
        }
    }
    c->threads = args_threads(o, no);
    c->lr = 0.06f * c->batch / 256.0f;
    struct { const char *name; float *dst; } flts[] = {
        {"lr", &c->lr}, {"temp", &c->temp}, {"wd", &c->wd}, {"key-momentum", &c->key_momentum}};
    for (size_t i = 0; i < sizeof flts / sizeof flts[0]; i++) {
        const char *v = args_get(o, no, flts[i].name);
        char what[48];
        snprintf(what, sizeof what, "--%s", flts[i].name);
        double x;
        if (v) {
            if (nc_parse_double(v, what, &x, &err)) cli_die(&err);
            *flts[i].dst = (float)x;
        }
    }
    long seed = 0;
    if (args_get(o, no, "seed") && nc_parse_long(args_get(o, no, "seed"), "--seed", 0, 2147483647L, &seed, &err)) cli_die(&err);
    c->seed = (uint64_t)seed;
    c->exclude_same_class = args_get(o, no, "exclude-same-class") != NULL;
}

static void print_step(void *ctx, int epoch, int step, int steps) {
    TrainPrinter *p = ctx;
    if (step == 1) {
        snprintf(p->label, sizeof p->label, "epoch %d/%d", epoch, p->epochs);
        progress_start(&p->bar, p->label, steps);
    }
    progress_update(&p->bar, step);
    if (step == steps) progress_end(&p->bar);
}

static void print_epoch(void *ctx, const TrainEpoch *e) {
    TrainPrinter *p = ctx;
    printf("epoch %3d  loss %.4f  lr at its end %.4g  %.0f images/s  collision_rate %.4f  any_collision %.4f  coverage %.2f  (%.1f s)",
           e->epoch, e->loss, e->lr, e->imgs_per_sec, e->collision_rate, e->any_collision, e->coverage, e->seconds);
    if (isfinite(e->queue_age)) printf("  queue age %.1f", e->queue_age);
    if (p->knn) printf("  kNN %.4f", e->knn_acc);
    printf("\n");
    fflush(stdout);
}

TrainReport train_printer(TrainPrinter *p) {
    TrainReport r = {print_step, print_epoch, p};
    return r;
}

static void print_run_start(void *ctx, int i, int n, const SweepRun *r, const char *what) {
    (void)ctx;
    printf("[%d/%d] k = %ld, seed %d: %s\n", i + 1, n, r->k, r->seed, what);
    fflush(stdout);
}

static void print_run_done(void *ctx, int i, int n, const SweepRun *x) {
    (void)ctx;
    (void)i;
    (void)n;
    printf("        head: mean %.4f linear %.4f kNN %.4f | features: mean %.4f linear %.4f kNN %.4f "
           "(train %.0f s, eval %.0f s)\n", x->head.mean_acc, x->head.linear_acc, x->head.knn_acc,
           x->features.mean_acc, x->features.linear_acc, x->features.knn_acc, x->train_seconds, x->eval_seconds);
    fflush(stdout);
}

SweepReport sweep_printer(SweepPrinter *p) {
    SweepReport r = {train_printer(&p->train), print_run_start, print_run_done, p};
    return r;
}

void train_opts_auto_queue(TrainConfig *c, long k) {
    long pool = 2L * c->batch - 2;
    if (k <= pool || c->queue > 0) return;
    c->queue = (int)k;
    if (cli_comm()->rank == 0)
        printf("k = %ld is more than the %ld other rows of a batch of %d: negatives come from a queue of %ld embeddings "
               "(--queue %ld)\n", k, pool, c->batch, k, k);
}
