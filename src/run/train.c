// train.c -- the training loop: loader -> encoder -> loss with k negatives -> backward -> optimiser,
// logged per epoch, checkpointed to safetensors, resumable.
#define _POSIX_C_SOURCE 200809L
#include "ncelab/train.h"
#include "ncelab/data.h"
#include "ncelab/eval.h"
#include "ncelab/jsonio.h"
#include "ncelab/loader.h"
#include "ncelab/loss.h"
#include "ncelab/net.h"
#include "ncelab/optim.h"
#include "ncelab/progress.h"
#include "ncelab/safetensors.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void train_config_default(TrainConfig *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->model, sizeof c->model, "convnet");
    snprintf(c->positives, sizeof c->positives, "class");
    snprintf(c->aug, sizeof c->aug, "simclr");
    snprintf(c->optim, sizeof c->optim, "sgd");
    snprintf(c->schedule, sizeof c->schedule, "cosine");
    snprintf(c->loss, sizeof c->loss, "infonce");
    c->k = 16;
    c->batch = 256;
    c->epochs = 1;
    c->lr = 0.06f;
    c->temp = 0.5f;
    c->wd = 5e-4f;
}

#define CFG_STR(X) X(data) X(imbalance) X(model) X(positives) X(aug) X(optim) X(schedule) X(loss)
#define CFG_INT(X) X(k) X(batch) X(epochs) X(warmup_epochs) X(queue) X(exclude_same_class) X(threads)
#define CFG_OPT(X) X(train_limit) X(knn_monitor)  /* optional when read: absent in older checkpoints */
#define CFG_FLT(X) X(lr) X(temp) X(wd)

char *train_config_json(const TrainConfig *c) {
    cJSON *o = cJSON_CreateObject();
#define S(f) cJSON_AddStringToObject(o, #f, c->f);
#define I(f) cJSON_AddNumberToObject(o, #f, c->f);
#define F(f) cJSON_AddNumberToObject(o, #f, (double)c->f);
    CFG_STR(S) CFG_INT(I) CFG_FLT(F) CFG_OPT(I)
#undef S
#undef I
#undef F
    cJSON_AddNumberToObject(o, "seed", (double)c->seed);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

int train_config_parse(const char *json, const char *what, TrainConfig *c, NcError *err) {
    cJSON *o = cJSON_Parse(json);
    if (!cJSON_IsObject(o)) { cJSON_Delete(o); return nc_fail(err, NC_EFILE, "%s: the configuration is not a JSON object", what); }
    train_config_default(c);
    const cJSON *v;
#define S(f) if (!cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(o, #f))) goto bad; snprintf(c->f, sizeof c->f, "%s", v->valuestring);
#define I(f) if (!cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(o, #f))) goto bad; c->f = (int)v->valuedouble;
#define F(f) if (!cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(o, #f))) goto bad; c->f = (float)v->valuedouble;
    CFG_STR(S) CFG_INT(I) CFG_FLT(F)
#undef S
#undef I
#undef F
#define O(f) if ((v = cJSON_GetObjectItemCaseSensitive(o, #f))) { if (!cJSON_IsNumber(v)) goto bad; c->f = (int)v->valuedouble; }
    CFG_OPT(O)
#undef O
    if (!cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(o, "seed"))) goto bad;
    c->seed = (uint64_t)v->valuedouble;
    cJSON_Delete(o);
    return NC_OK;
bad:
    cJSON_Delete(o);
    return nc_fail(err, NC_EFILE, "%s: the configuration lacks a field or has one of the wrong type", what);
}

int train_config_same(const TrainConfig *a, const TrainConfig *b) {
    TrainConfig x = *a, y = *b;
    x.epochs = y.epochs = 0;
    x.knn_monitor = y.knn_monitor = 0;
    char *s = train_config_json(&x), *t = train_config_json(&y);
    int same = strcmp(s, t) == 0;
    free(s);
    free(t);
    return same;
}

typedef struct {
    Net net;
    Optim opt;
    EmbQueue queue;
    int has_queue;
    long step;               /* optimiser steps done */
    int epoch;               /* epochs done */
} TrainState;

static int ckpt_save(const char *path, const TrainConfig *c, TrainState *s, NcError *err) {
    StWriter *w = st_writer_new();
    Net *net = &s->net;
    int rc = NC_OK;
    for (int p = 0; p < net->n_params && !rc; p++) {
        const NnParam *v = &net->views[p];
        int64_t sh[4] = {v->shape[0], v->shape[1], v->shape[2], v->shape[3]};
        rc = st_writer_add(w, v->name, ST_F32, v->ndim, sh, net->params + v->offset, err);
    }
    char nm[96];
    for (int i = 0; i < net->n_stats && !rc; i++) {
        int64_t sh[1] = {net->stat_c[i]};
        snprintf(nm, sizeof nm, "%s.running_mean", net->stat_names[i]);
        rc = st_writer_add(w, nm, ST_F32, 1, sh, net->stats + net->stat_offset[i], err);
        snprintf(nm, sizeof nm, "%s.running_var", net->stat_names[i]);
        if (!rc) rc = st_writer_add(w, nm, ST_F32, 1, sh, net->stats + net->stat_offset[i] + net->stat_c[i], err);
    }
    int64_t osh[1] = {(int64_t)(2 * net->n_param_floats)}, one[1] = {1};
    int64_t ostep = s->opt.step;
    if (!rc) rc = st_writer_add(w, "optim.state", ST_F32, 1, osh, s->opt.state, err);
    if (!rc) rc = st_writer_add_copy(w, "optim.step", ST_I64, 1, one, &ostep, err);
    if (!rc && s->has_queue) {
        int64_t qsh[2] = {s->queue.Q, s->queue.D}, lsh[1] = {s->queue.Q}, meta[2] = {s->queue.count, s->queue.head};
        int64_t msh[1] = {2};
        rc = st_writer_add(w, "queue.emb", ST_F32, 2, qsh, s->queue.emb, err);
        if (!rc) rc = st_writer_add(w, "queue.labels", ST_I32, 1, lsh, s->queue.labels, err);
        if (!rc) rc = st_writer_add_copy(w, "queue.count_head", ST_I64, 1, msh, meta, err);
    }
    char *cj = train_config_json(c), num[32];
    if (!rc) rc = st_writer_meta(w, "config", cj, err);
    snprintf(num, sizeof num, "%d", s->epoch);
    if (!rc) rc = st_writer_meta(w, "epoch", num, err);
    snprintf(num, sizeof num, "%ld", s->step);
    if (!rc) rc = st_writer_meta(w, "step", num, err);
    if (!rc) rc = st_writer_meta(w, "version", NCELAB_VERSION, err);
    if (!rc) rc = st_writer_meta(w, "format", "ncelab checkpoint 1", err);
    if (!rc) rc = st_writer_save(w, path, err);
    free(cj);
    st_writer_free(w);
    return rc;
}

/* Copies a float tensor of exactly n elements from the checkpoint. */
static int ckpt_take(const StFile *f, const char *name, float *dst, size_t n, NcError *err) {
    const StTensor *t = st_find(f, name);
    if (!t) return nc_fail(err, NC_EFILE, "%s: no tensor %s (not a checkpoint of this model)", f->path, name);
    if (t->dtype != ST_F32 || t->numel != n)
        return nc_fail(err, NC_EFILE, "%s: tensor %s has %zu elements, the model needs %zu", f->path, name, t->numel, n);
    memcpy(dst, t->data, sizeof(float) * n);
    return NC_OK;
}

/* The parameters and batch-norm statistics of net from a loaded checkpoint. */
static int ckpt_weights(const StFile *f, Net *net, NcError *err) {
    int rc = NC_OK;
    for (int p = 0; p < net->n_params && !rc; p++)
        rc = ckpt_take(f, net->views[p].name, net->params + net->views[p].offset, net->views[p].size, err);
    char nm[96];
    for (int i = 0; i < net->n_stats && !rc; i++) {
        snprintf(nm, sizeof nm, "%s.running_mean", net->stat_names[i]);
        rc = ckpt_take(f, nm, net->stats + net->stat_offset[i], (size_t)net->stat_c[i], err);
        snprintf(nm, sizeof nm, "%s.running_var", net->stat_names[i]);
        if (!rc) rc = ckpt_take(f, nm, net->stats + net->stat_offset[i] + net->stat_c[i], (size_t)net->stat_c[i], err);
    }
    return rc;
}

static int ckpt_load(const char *path, const TrainConfig *c, TrainState *s, NcError *err) {
    StFile f;
    int rc = st_load(path, &f, err);
    if (rc) return rc;
    TrainConfig saved;
    const char *cj = st_meta(&f, "config");
    long epoch = 0, step = 0;
    if (!cj) rc = nc_fail(err, NC_EFILE, "%s: not an ncelab checkpoint (no config in the metadata)", path);
    if (!rc) rc = train_config_parse(cj, path, &saved, err);
    if (!rc && !train_config_same(&saved, c))
        rc = nc_fail(err, NC_EUSAGE, "--resume: %s was written by another configuration (%s); refusing to overwrite it", path, cj);
    if (!rc) rc = st_meta_long(&f, "epoch", &epoch, err);
    if (!rc) rc = st_meta_long(&f, "step", &step, err);
    Net *net = &s->net;
    if (!rc) rc = ckpt_weights(&f, net, err);
    if (!rc) rc = ckpt_take(&f, "optim.state", s->opt.state, 2 * net->n_param_floats, err);
    const StTensor *t = st_find(&f, "optim.step");
    if (!rc && (!t || t->dtype != ST_I64 || t->numel != 1)) rc = nc_fail(err, NC_EFILE, "%s: no optim.step", path);
    if (!rc) s->opt.step = (long)*(const int64_t *)t->data;
    if (!rc && s->has_queue) {
        const StTensor *qe = st_find(&f, "queue.emb"), *ql = st_find(&f, "queue.labels"), *qm = st_find(&f, "queue.count_head");
        if (!qe || !ql || !qm || qe->numel != (size_t)s->queue.Q * s->queue.D || ql->numel != (size_t)s->queue.Q || qm->numel != 2)
            rc = nc_fail(err, NC_EFILE, "%s: the embedding queue is missing or of another size", path);
        else {
            memcpy(s->queue.emb, qe->data, qe->nbytes);
            memcpy(s->queue.labels, ql->data, ql->nbytes);
            s->queue.count = (int)((const int64_t *)qm->data)[0];
            s->queue.head = (int)((const int64_t *)qm->data)[1];
        }
    }
    if (!rc) { s->epoch = (int)epoch; s->step = step; }
    st_free(&f);
    return rc;
}

int train_checkpoint_config(const char *path, TrainConfig *c, NcError *err) {
    StFile f;
    int rc = st_load(path, &f, err);
    if (rc) return rc;
    const char *cj = st_meta(&f, "config");
    if (!cj) rc = nc_fail(err, NC_EFILE, "%s: not an ncelab checkpoint (no config in the metadata)", path);
    else rc = train_config_parse(cj, path, c, err);
    st_free(&f);
    return rc;
}

int train_checkpoint_epoch(const char *path, int *epoch, NcError *err) {
    StFile f;
    long e = 0;
    int rc = st_load(path, &f, err);
    if (rc) return rc;
    rc = st_meta_long(&f, "epoch", &e, err);
    st_free(&f);
    *epoch = (int)e;
    return rc;
}

int train_checkpoint_weights(const char *path, void *net, NcError *err) {
    StFile f;
    int rc = st_load(path, &f, err);
    if (rc) return rc;
    rc = ckpt_weights(&f, net, err);
    st_free(&f);
    return rc;
}

int train_data_opts(const TrainConfig *c, DataOpts *o, NcError *err) {
    memset(o, 0, sizeof *o);
    o->seed = c->seed;
    o->train_limit = c->train_limit;
    if (c->train_limit < 0) return nc_fail(err, NC_EUSAGE, "--train-limit: must be positive, got %d", c->train_limit);
    if (c->imbalance[0] && (strncmp(c->imbalance, "zipf:", 5) ||
                            nc_parse_double(c->imbalance + 5, "--imbalance", &o->imbalance_zipf, NULL) ||
                            !(o->imbalance_zipf > 0) || o->imbalance_zipf > 20))
        return nc_fail(err, NC_EUSAGE, "--imbalance: expected zipf:S with 0 < S <= 20, got '%s'", c->imbalance);
    return NC_OK;
}

/* The kNN monitor: features of `bank` training images (evenly spaced) and of the test split, in
   evaluation mode; the weighted kNN accuracy (k = 200, T = 0.1). */
static int knn_monitor(Net *net, const Dataset *ds, const float *mean, const float *sd, int bank, double *acc,
                       NcError *err) {
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
    int F = net->vals[net->features].c, D = net->vals[net->embeddings].c;
    float *fb = nc_malloc(sizeof(float) * (size_t)bk.n * F), *hb = nc_malloc(sizeof(float) * (size_t)bk.n * D);
    float *ft = nc_malloc(sizeof(float) * (size_t)te->n * F), *ht = nc_malloc(sizeof(float) * (size_t)te->n * D);
    int rc = eval_embed(net, &bk, mean, sd, 256, fb, hb, err);
    if (!rc) rc = eval_embed(net, te, mean, sd, 256, ft, ht, err);
    if (!rc) *acc = eval_knn(fb, bk.labels, bk.n, ft, te->labels, te->n, F, ds->num_classes, 200, 0.1);
    free(bk.pixels); free(bk.labels); free(fb); free(hb); free(ft); free(ht);
    return rc;
}

static void log_epoch(FILE *csv, cJSON *log, int epoch, double loss, float lr, double ips, double coll,
                      double any, double cov, double secs, double knn) {
    fprintf(csv, "%d,%.6f,%.6g,%.1f,%.5f,%.5f,%.3f,%.2f,", epoch, loss, lr, ips, coll, any, cov, secs);
    if (isfinite(knn)) fprintf(csv, "%.4f", knn);
    fputc('\n', csv);
    fflush(csv);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "epoch", epoch);
    cJSON_AddItemToObject(e, "loss", json_number(loss));
    cJSON_AddNumberToObject(e, "lr", lr);
    cJSON_AddNumberToObject(e, "imgs_per_sec", ips);
    cJSON_AddItemToObject(e, "collision_rate", json_number(coll));
    cJSON_AddItemToObject(e, "any_collision", json_number(any));
    cJSON_AddItemToObject(e, "coverage", json_number(cov));
    cJSON_AddNumberToObject(e, "seconds", secs);
    if (isfinite(knn)) cJSON_AddNumberToObject(e, "knn_acc", knn);
    cJSON_AddItemToArray(log, e);
}

int train_run(const TrainConfig *c, int resume, TrainResult *r, NcError *err) {
    memset(r, 0, sizeof *r);
    r->knn_acc = NAN;
    int rc;
    /* options first, then the output directory, then the data: fail before any work */
    OptConfig oc;
    LrConfig lc = {0};
    LossType lt;
    if ((rc = optim_parse(c->optim, c->wd, &oc, err))) return rc;
    if ((rc = lr_parse(c->schedule, &lc.kind, err))) return rc;
    if (strcmp(c->loss, "infonce") == 0) lt = LOSS_INFONCE;
    else if (strcmp(c->loss, "nce") == 0) lt = LOSS_NCE;
    else return nc_fail(err, NC_EUSAGE, "--loss: expected infonce or nce, got '%s'", c->loss);
    if (!(c->lr > 0) || !isfinite(c->lr)) return nc_fail(err, NC_EUSAGE, "--lr: must be positive, got %g", c->lr);
    if (!(c->temp > 0) || !isfinite(c->temp)) return nc_fail(err, NC_EUSAGE, "--temp: must be positive, got %g", c->temp);
    if (c->epochs < 1) return nc_fail(err, NC_EUSAGE, "--epochs: must be at least 1, got %d", c->epochs);
    if ((rc = nc_mkdir_p(c->out, err))) return rc;
    char *probe = nc_path_join(c->out, ".write-test");
    rc = nc_write_atomic(probe, "ok\n", 3, err);
    unlink(probe);
    free(probe);
    if (rc) return nc_fail(err, NC_EFILE, "%s: the output directory is not writable", c->out);
    if (c->threads > 0) omp_set_num_threads(c->threads);

    DataOpts dopt;
    if ((rc = train_data_opts(c, &dopt, err))) return rc;
    Dataset ds;
    if ((rc = data_load(c->data, &dopt, &ds, err))) return rc;
    DataSplit *tr = &ds.train;
    LoaderConfig lcfg;
    loader_config_default(&lcfg);
    lcfg.sampler.batch = c->batch;
    lcfg.sampler.k = c->k;
    lcfg.sampler.exclude_same_class = c->exclude_same_class;
    lcfg.sampler.queue = c->queue;
    lcfg.sampler.seed = c->seed;
    lcfg.threads = 1;  /* the producer runs beside the training threads: a second OpenMP team would fight them for the cores */
    if ((rc = sampler_positives_parse(c->positives, "--positives", &lcfg.sampler.positives, err)) ||
        (rc = aug_preset(c->aug, "--aug", &lcfg.aug, err))) { data_free(&ds); return rc; }
    DataStats dst;
    data_stats(&ds, tr, &dst);
    for (int ch = 0; ch < 3; ch++) {
        lcfg.aug.mean[ch] = (float)dst.mean[ch < tr->c ? ch : 0];
        lcfg.aug.std[ch] = (float)(dst.std[ch < tr->c ? ch : 0] > 1e-6 ? dst.std[ch < tr->c ? ch : 0] : 1.0);
    }
    free(dst.per_class);

    TrainState s;
    memset(&s, 0, sizeof s);
    if ((rc = net_create(&s.net, c->model, tr->c, tr->h, tr->w, err))) { data_free(&ds); return rc; }
    net_init_random(&s.net, c->seed);
    optim_create(&s.opt, &s.net, &oc, err);
    if (c->queue > 0) {
        if ((rc = queue_init(&s.queue, c->queue, 128, err))) goto out_net;
        s.has_queue = 1;
    }
    char *ckpt = nc_path_join(c->out, "ckpt.safetensors");
    if (resume) {
        if (access(ckpt, F_OK) != 0) { rc = nc_fail(err, NC_EFILE, "%s: no checkpoint to resume from", ckpt); goto out_ckpt; }
        if ((rc = ckpt_load(ckpt, c, &s, err))) goto out_ckpt;
        if (s.epoch >= c->epochs) { rc = nc_fail(err, NC_EUSAGE, "--resume: %s is already at epoch %d of %d", ckpt, s.epoch, c->epochs); goto out_ckpt; }
    }
    lcfg.start_epoch = s.epoch;
    lcfg.start_step = 0;
    Loader *ld;
    if ((rc = loader_create(tr, &lcfg, &ld, err))) goto out_ckpt;
    int spe = loader_steps_per_epoch(ld);
    lc.base = c->lr;
    lc.total = (long)spe * c->epochs;
    lc.warmup = (long)spe * c->warmup_epochs;
    lc.step_size = (long)spe * (c->epochs >= 3 ? c->epochs / 3 : 1);
    lc.gamma = 0.1f;
    NetExec *x;
    int B = c->batch, N = 2 * B, D;
    if ((rc = nnx_create(&x, &s.net, N, NN_BACKEND_DNNL, err))) goto out_loader;
    D = nnx_embed_dim(x);
    float *dz = nc_malloc(sizeof(float) * N * D);

    char *csvp = nc_path_join(c->out, "log.csv"), *jsonp = nc_path_join(c->out, "log.json");
    FILE *csv = fopen(csvp, resume ? "a" : "w");
    if (!csv) { rc = nc_fail(err, NC_EFILE, "%s: cannot write", csvp); goto out_exec; }
    if (!resume) fprintf(csv, "epoch,loss,lr,imgs_per_sec,collision_rate,any_collision,coverage,seconds,knn_acc\n");
    cJSON *log = NULL;
    if (resume) json_load(jsonp, &log, NULL);
    if (!cJSON_IsArray(log)) { cJSON_Delete(log); log = cJSON_CreateArray(); }

    /* fault injection for the tests: NCELAB_FAULT_NAN_STEP=S makes the loss of step S NaN */
    const char *fault = getenv("NCELAB_FAULT_NAN_STEP");
    long fault_step = fault ? atol(fault) : -1;
    double t_all = nc_now();
    for (int ep = s.epoch; ep < c->epochs && rc == NC_OK; ep++) {
        Progress pb;
        char label[32];
        snprintf(label, sizeof label, "epoch %d/%d", ep + 1, c->epochs);
        progress_start(&pb, label, spe);
        double t0 = nc_now(), lsum = 0, csum = 0, asum = 0, vsum = 0;
        float lr = 0;
        for (int st = 0; st < spe; st++) {
            Batch *b;
            if ((rc = loader_next(ld, &b, err))) break;
            if (s.has_queue && (rc = loader_queue_negatives(ld, b, &s.queue, err))) break;
            memset(s.net.grads, 0, sizeof(float) * s.net.n_param_floats);
            if ((rc = nnx_forward(x, b->x, 1, err))) {
                char m[sizeof err->msg];
                snprintf(m, sizeof m, "%s", err->msg);
                rc = nc_fail(err, NC_ENUM, "epoch %d, step %d: %s; the last checkpoint is kept", ep + 1, st, m);
                break;
            }
            float loss;
            if ((rc = contrast_loss(lt, nnx_embeddings(x), B, D, b->s.neg, c->k, s.has_queue ? s.queue.emb : NULL,
                                    s.has_queue ? s.queue.Q : 0, c->temp, &loss, dz, err))) break;
            if (s.step == fault_step) loss = NAN;
            if (!isfinite(loss)) {
                rc = nc_fail(err, NC_ENUM, "epoch %d, step %d: the loss is not finite; the last checkpoint is kept", ep + 1, st);
                break;
            }
            if ((rc = nnx_backward(x, dz, err))) break;
            lr = lr_at(&lc, s.step);
            optim_step(&s.opt, lr);
            if (s.has_queue) queue_push(&s.queue, nnx_embeddings(x) + (size_t)B * D, b->s.labels + B, B);
            s.step++;
            lsum += loss;
            csum += b->s.collision_rate;
            asum += b->s.any_collision;
            vsum += b->s.coverage;
            progress_update(&pb, st + 1);
        }
        progress_end(&pb);
        if (rc) break;
        double secs = nc_now() - t0;
        s.epoch = ep + 1;
        r->final_loss = lsum / spe;
        r->collision_rate = csum / spe;
        r->imgs_per_sec = (double)spe * N / secs;
        r->epochs_done++;
        r->knn_acc = NAN;
        if (c->knn_monitor > 0 && (rc = knn_monitor(&s.net, &ds, lcfg.aug.mean, lcfg.aug.std, c->knn_monitor, &r->knn_acc, err)))
            break;
        log_epoch(csv, log, ep + 1, lsum / spe, lr, r->imgs_per_sec, csum / spe, asum / spe, vsum / spe, secs, r->knn_acc);
        printf("epoch %3d  loss %.4f  lr %.4g  %.0f images/s  collision %.4f  coverage %.2f  (%.1f s)", ep + 1,
               lsum / spe, lr, r->imgs_per_sec, csum / spe, vsum / spe, secs);
        if (c->knn_monitor > 0) printf("  kNN %.4f", r->knn_acc);
        printf("\n");
        fflush(stdout);
        if ((rc = ckpt_save(ckpt, c, &s, err))) break;
        if ((rc = json_save(jsonp, log, err))) break;
    }
    r->train_seconds = nc_now() - t_all;
    cJSON_Delete(log);
    fclose(csv);
    free(csvp);
    free(jsonp);
out_exec:
    free(dz);
    nnx_free(x);
out_loader:
    loader_free(ld);
out_ckpt:
    free(ckpt);
    if (s.has_queue) queue_free(&s.queue);
    optim_free(&s.opt);
out_net:
    net_free(&s.net);
    data_free(&ds);
    return rc;
}
