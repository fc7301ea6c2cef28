// train.c -- the training run: configuration checked, output directory and data ready, then
// epoch after epoch of the trainer, each logged, monitored and checkpointed; resumable.
#define _POSIX_C_SOURCE 200809L
#include "ncelab/train.h"
#include "ncelab/jsonio.h"
#include "ncelab/trainer.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The kNN monitor: features of `bank` training images (evenly spaced) and of the test split, in
   evaluation mode; the weighted kNN accuracy (k = 200, T = 0.1). */
static int knn_monitor(Trainer *t, int bank, double *acc, NcError *err) {
    const Dataset *ds = t->ds;
    const DataSplit *tr = &ds->train, *te = &ds->test;
    DataSplit bk = *tr;
    bk.n = bank < tr->n ? bank : tr->n;
    size_t isz = (size_t)tr->h * tr->w * tr->c;
    bk.pixels = nc_malloc(isz * bk.n);
    bk.labels = nc_malloc(sizeof(int32_t) * bk.n);
    for (int i = 0; i < bk.n; i++) {
        long j = (long)i * tr->n / bk.n;
        memcpy(bk.pixels + isz * i, tr->pixels + isz * j, isz);
        bk.labels[i] = tr->labels[j];
    }
    Net *net = &t->net;
    int F = net->vals[net->features].c, D = net->vals[net->embeddings].c;
    float *fb = nc_malloc(sizeof(float) * (size_t)bk.n * F), *hb = nc_malloc(sizeof(float) * (size_t)bk.n * D);
    float *ft = nc_malloc(sizeof(float) * (size_t)te->n * F), *ht = nc_malloc(sizeof(float) * (size_t)te->n * D);
    int rc = eval_embed(net, &bk, t->mean, t->std, 256, fb, hb, err);
    if (!rc) rc = eval_embed(net, te, t->mean, t->std, 256, ft, ht, err);
    if (!rc) *acc = eval_knn(fb, bk.labels, bk.n, ft, te->labels, te->n, F, ds->num_classes, 200, 0.1);
    free(bk.pixels); free(bk.labels); free(fb); free(hb); free(ft); free(ht);
    return rc;
}

/* log.csv and log.json of DIR, each rewritten whole (atomically) from the run's history, so that
   after any crash they hold exactly the epochs of the checkpoint written before them. */
static int logs_write(const char *dir, const cJSON *history, NcError *err) {
    size_t cap = 256 + 160 * (size_t)cJSON_GetArraySize(history), n = 0;
    char *csv = nc_malloc(cap);
    n += (size_t)snprintf(csv, cap, "epoch,loss,lr,imgs_per_sec,collision_rate,any_collision,coverage,seconds,knn_acc,queue_age\n");
    const cJSON *je;
    cJSON_ArrayForEach(je, history) {
        TrainEpoch e;
        train_epoch_from_json(je, &e);
        n += (size_t)snprintf(csv + n, cap - n, "%d,%.6f,%.6g,%.1f,%.5f,%.5f,%.3f,%.2f,", e.epoch, e.loss, e.lr,
                              e.imgs_per_sec, e.collision_rate, e.any_collision, e.coverage, e.seconds);
        if (isfinite(e.knn_acc)) n += (size_t)snprintf(csv + n, cap - n, "%.4f", e.knn_acc);
        n += (size_t)snprintf(csv + n, cap - n, ",");
        if (isfinite(e.queue_age)) n += (size_t)snprintf(csv + n, cap - n, "%.2f", e.queue_age);
        n += (size_t)snprintf(csv + n, cap - n, "\n");
    }
    char *cp = nc_path_join(dir, "log.csv"), *jp = nc_path_join(dir, "log.json");
    int rc = nc_write_atomic(cp, csv, n, err);
    if (!rc) rc = json_save(jp, history, err);
    free(csv);
    free(cp);
    free(jp);
    return rc;
}

int trainer_fit(Trainer *t, const TrainReport *rep, TrainResult *r, NcError *err) {
    const TrainConfig *c = &t->cfg;
    int root = t->comm->rank == 0, rc = NC_OK;
    memset(r, 0, sizeof *r);
    r->last = t->prog.last;
    r->total_seconds = t->prog.seconds;
    char *ckpt = nc_path_join(c->out, "ckpt.safetensors");
    double t0 = nc_now();
    if (root && (rc = logs_write(c->out, t->history, err))) goto out;  /* the checkpoint's epochs, no more */
    if (root && c->log_every > 0 && !t->steps_log) {  /* and its steps */
        t->steps_path = nc_path_join(c->out, "steps.csv");
        if ((rc = steps_log_open(t->steps_path, t->prog.step, &t->steps_log, err))) goto out;
    }
    while (t->prog.epoch < c->epochs) {
        TrainEpoch e;
        if ((rc = trainer_epoch(t, root ? rep : NULL, &e, err))) break;
        if (root && c->knn_monitor > 0 && (rc = knn_monitor(t, c->knn_monitor, &e.knn_acc, err))) break;
        t->prog.last = e;
        r->epochs_done++;
        r->last = e;
        if (root) {
            cJSON *je = train_epoch_json(&e);
            cJSON_AddNumberToObject(je, "ranks", t->comm->size);
            cJSON_AddItemToArray(t->history, je);
            if ((rc = trainer_save(t, ckpt, err))) {
                cJSON_DeleteItemFromArray(t->history, cJSON_GetArraySize(t->history) - 1);
                break;
            }
            if ((rc = logs_write(c->out, t->history, err))) break;
            if (rep && rep->epoch) rep->epoch(rep->ctx, &e);
        }
    }
out:
    r->train_seconds = nc_now() - t0;
    r->total_seconds = t->prog.seconds;
    free(ckpt);
    return rc;
}

/* rank 0's configuration on every rank: one parse, so the ranks cannot disagree */
static int config_bcast(Comm *comm, TrainConfig *c, NcError *err) {
    if (comm->size == 1) return NC_OK;
    char *js = comm->rank == 0 ? train_config_json(c) : NULL;
    long long n = js ? (long long)strlen(js) + 1 : 0;
    int rc = comm->bcast(comm, &n, sizeof n, 0, err);
    if (!rc && comm->rank) js = nc_calloc((size_t)n, 1);
    if (!rc) rc = comm->bcast(comm, js, (size_t)n, 0, err);
    if (!rc) rc = comm->bcast(comm, c->out, sizeof c->out, 0, err);
    if (!rc && comm->rank) {
        char out[sizeof c->out];
        memcpy(out, c->out, sizeof out);
        rc = train_config_parse(js, "rank 0's configuration", c, err);
        memcpy(c->out, out, sizeof out);
    }
    free(js);
    return rc;
}

int train_run(const TrainConfig *c0, int mode, Comm *comm, const TrainReport *rep, TrainResult *r, NcError *err) {
    memset(r, 0, sizeof *r);
    comm = comm ? comm : comm_single();
    TrainConfig c = *c0;
    TrainSettings s;
    int rc;
    /* options first, then the output directory, then the data: fail before any work */
    if ((rc = config_bcast(comm, &c, err)) || (rc = train_config_check(&c, &s, err))) return rc;
    c.ranks = comm->size;
    char *ckpt = nc_path_join(c.out, "ckpt.safetensors");
    int resume = mode == TRAIN_RESUME, lock = -1;
    struct stat st;
    if (comm->rank == 0) {
        if ((rc = nc_mkdir_p(c.out, err)) || (rc = nc_dir_lock(c.out, &lock, err)) || (rc = nc_dir_writable(c.out, err)))
            goto out_path;
        int have = lstat(ckpt, &st) == 0;
        if (resume && !have) { rc = nc_fail(err, NC_EFILE, "%s: no checkpoint to resume from", ckpt); goto out_path; }
        if (mode == TRAIN_NEW && have) {
            rc = nc_fail(err, NC_EUSAGE, "%s: a checkpoint is already there; --resume continues its run, --force starts "
                         "a new one over it", ckpt);
            goto out_path;
        }
    }
    if (c.threads > 0) omp_set_num_threads(c.threads);
    Dataset ds;
    if ((rc = data_load(c.data, &s.data, &ds, err))) goto out_path;
    Trainer t;
    if ((rc = trainer_create(&t, &c, &s, &ds, comm, err))) goto out_data;
    if (resume) {
        if ((rc = trainer_resume(&t, ckpt, err))) goto out_trainer;
        if (t.prog.epoch >= c.epochs) {
            rc = nc_fail(err, NC_EUSAGE, "--resume: %s is already at epoch %d of %d", ckpt, t.prog.epoch, c.epochs);
            goto out_trainer;
        }
    }
    rc = trainer_fit(&t, rep, r, err);
out_trainer:
    trainer_free(&t);
out_data:
    data_free(&ds);
out_path:
    nc_dir_unlock(lock);
    free(ckpt);
    return rc;
}
