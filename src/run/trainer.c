// trainer.c -- one training step and one epoch: this rank's rows forward, the embeddings gathered,
// the loss of its anchors against the global batch, remote gradients sent back, backward, the
// parameter gradients summed over the ranks, the optimiser and the queue.
#include "ncelab/trainer.h"
#include "ncelab/eval.h"
#include "ncelab/loss.h"
#include "ncelab/moco.h"
#include "ncelab/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* the batch norms' sums over the ranks (synchronised batch norm) */
static int bn_sync(void *ctx, double *buf, int n, NcError *err) {
    Comm *c = ctx;
    return c->allreduce_f64(c, buf, (size_t)n, err);
}

/* backward has finished the gradients from offset on: start every bucket that lies there, and let
   the ones in flight progress */
static void grads_ready(void *ctx, size_t offset) {
    Trainer *t = ctx;
    Comm *c = t->comm;
    while (!t->bucket_rc && t->next_bucket < t->nbuckets && t->bucket_lo[t->next_bucket + 1] >= offset) {
        int j = t->next_bucket++;
        size_t lo = t->bucket_lo[j + 1];
        t->bucket_rc = c->iallreduce_f32(c, t->net.grads + lo, t->bucket_lo[j] - lo, &t->reqs[j], &t->bucket_err);
    }
    for (int j = 0; j < t->next_bucket && !t->bucket_rc; j++) {
        int done;
        if (t->reqs[j].active) t->bucket_rc = c->test(c, &t->reqs[j], &done, &t->bucket_err);
    }
}

static int make_loader(Trainer *t, int start_epoch, NcError *err) {
    const TrainConfig *c = &t->cfg;
    LoaderConfig lc;
    loader_config_default(&lc);
    lc.sampler.batch = c->batch;
    lc.sampler.k = c->k;
    lc.sampler.exclude_same_class = c->exclude_same_class;
    lc.sampler.queue = c->queue;
    lc.sampler.seed = c->seed;
    lc.sampler.positives = t->set.positives;
    lc.aug = t->set.aug;
    memcpy(lc.aug.mean, t->mean, sizeof t->mean);
    memcpy(lc.aug.std, t->std, sizeof t->std);
    lc.threads = 1;  /* the producer runs beside the training threads: a second OpenMP team would fight them for the cores */
    lc.start_epoch = start_epoch;
    lc.part = t->comm->rank;
    lc.parts = t->comm->size;
    loader_free(t->loader);
    t->loader = NULL;
    return loader_create(&t->ds->train, &lc, &t->loader, err);
}

/* The queue before the first step: the embeddings of Q training images drawn at random (seeded,
   without replacement while Q <= n) under the initial network, in evaluation mode and without
   gradient, so that k > 2B - 2 negatives are available from step 0. Every rank computes the
   same queue. */
static int queue_fill(Trainer *t, NcError *err) {
    const DataSplit *tr = &t->ds->train;
    EmbQueue *q = &t->queue;
    DataSplit pick = *tr;
    pick.n = q->Q;
    size_t isz = (size_t)tr->h * tr->w * tr->c;
    pick.pixels = nc_malloc(isz * (size_t)q->Q);
    pick.labels = nc_malloc(sizeof(int32_t) * (size_t)q->Q);
    int32_t *perm = nc_malloc(sizeof(int32_t) * (size_t)tr->n);
    for (int i = 0; i < tr->n; i++) perm[i] = i;
    Rng r;
    rng_init(&r, t->cfg.seed, 0x51554555u, 0, 0);
    for (int j = 0; j < q->Q; j++) {
        int m = j % tr->n;  /* a partial Fisher-Yates, restarted when Q exceeds the split */
        int x = m + (int)rng_below(&r, (uint64_t)(tr->n - m));
        int32_t tmp = perm[m];
        perm[m] = perm[x];
        perm[x] = tmp;
        memcpy(pick.pixels + isz * j, tr->pixels + isz * perm[m], isz);
        pick.labels[j] = tr->labels[perm[m]];
    }
    int F = t->net.vals[t->net.features].c;
    float *feat = nc_malloc(sizeof(float) * (size_t)q->Q * F), *emb = nc_malloc(sizeof(float) * (size_t)q->Q * t->D);
    int rc = eval_embed(&t->net, &pick, t->mean, t->std, 256, feat, emb, err);
    if (!rc) queue_push(q, emb, pick.labels, q->Q);
    free(feat);
    free(emb);
    free(perm);
    free(pick.pixels);
    free(pick.labels);
    return rc;
}

int trainer_create(Trainer *t, const TrainConfig *c, const TrainSettings *s, const Dataset *ds, Comm *comm,
                   NcError *err) {
    memset(t, 0, sizeof *t);
    t->cfg = *c;
    t->set = *s;
    t->ds = ds;
    t->comm = comm ? comm : comm_single();
    t->fault_nan_step = -1;
    int P = t->comm->size, rc;
    if (c->batch % P)
        return nc_fail(err, NC_EUSAGE, "--batch: %d anchors cannot be shared by %d ranks: it must be a multiple of the number of ranks",
                       c->batch, P);
    t->B = c->batch;
    t->b = c->batch / P;
    const DataSplit *tr = &ds->train;
    data_norm_stats(ds, tr, t->mean, t->std);
    if ((rc = make_loader(t, 0, err))) goto fail;
    t->steps_per_epoch = loader_steps_per_epoch(t->loader);
    if ((rc = net_create(&t->net, c->model, tr->c, tr->h, tr->w, err))) goto fail;
    net_init_random(&t->net, c->seed);
    if ((rc = optim_create(&t->opt, &t->net, &s->optim, err))) goto fail;
    if ((rc = nnx_create(&t->x, &t->net, 2 * t->b, NN_BACKEND_DNNL, err))) goto fail;
    if (P > 1) {
        nnx_set_sync(t->x, bn_sync, t->comm);
        size_t n = t->net.n_param_floats;
        t->nbuckets = (int)((n + TRAINER_BUCKET_FLOATS - 1) / TRAINER_BUCKET_FLOATS);
        t->bucket_lo = nc_malloc(sizeof(size_t) * (t->nbuckets + 1));
        for (int j = 0; j <= t->nbuckets; j++)
            t->bucket_lo[j] = n > (size_t)j * TRAINER_BUCKET_FLOATS ? n - (size_t)j * TRAINER_BUCKET_FLOATS : 0;
        t->reqs = nc_calloc((size_t)t->nbuckets, sizeof(CommReq));
        nnx_set_grad_ready(t->x, grads_ready, t);
    }
    t->D = nnx_embed_dim(t->x);
    if (c->queue > 0 && c->k > 2 * c->batch - 2) {  /* the sampler uses a queue only beyond the batch */
        if ((rc = queue_init(&t->queue, c->queue, t->D, err))) goto fail;
        t->has_queue = 1;
        if ((rc = queue_fill(t, err))) goto fail;
        if ((rc = net_create(&t->key, c->model, tr->c, tr->h, tr->w, err))) goto fail;
        moco_copy(&t->key, &t->net);
        if ((rc = nnx_create(&t->xk, &t->key, 2 * t->b, NN_BACKEND_DNNL, err))) goto fail;
        if (P > 1) nnx_set_sync(t->xk, bn_sync, t->comm);
        t->zl = nc_calloc((size_t)2 * t->B * t->D, sizeof(float));
        t->dzl2 = nc_malloc(sizeof(float) * (size_t)2 * t->B * t->D);
        t->dq = nc_malloc(sizeof(float) * (size_t)2 * t->b * t->D);
    }
    int spe = t->steps_per_epoch;
    t->lr.kind = s->schedule;
    t->lr.base = c->lr;
    t->lr.total = (long)spe * c->epochs;
    t->lr.warmup = (long)spe * c->warmup_epochs;
    t->lr.step_size = (long)spe * (c->epochs >= 3 ? c->epochs / 3 : 1);
    t->lr.gamma = 0.1f;
    size_t zn = (size_t)2 * t->B * t->D;
    t->dz = nc_malloc(sizeof(float) * zn);
    contrast_work_init(&t->work, t->b, c->k, 2 * t->B + (t->has_queue ? t->queue.Q : 0));
    if (P > 1) {
        t->z = nc_malloc(sizeof(float) * zn);
        t->zsend = nc_malloc(sizeof(float) * zn);
        t->zrecv = nc_malloc(sizeof(float) * zn);
        t->dzl = nc_malloc(sizeof(float) * (size_t)2 * t->b * t->D);
    }
    train_epoch_from_json(NULL, &t->prog.last);
    t->history = cJSON_CreateArray();
    const char *fault = getenv("NCELAB_FAULT_NAN_STEP");  /* tests: make the loss of this step NaN */
    if (fault) t->fault_nan_step = atol(fault);
    return NC_OK;
fail:
    trainer_free(t);
    return rc;
}

/* The blocks every rank must hold alike, broadcast from rank 0 after it read a checkpoint. */
static int bcast_state(Trainer *t, NcError *err) {
    Comm *c = t->comm;
    Net *n = &t->net;
    long long st[3] = {t->opt.step, t->queue.count, t->queue.head};
    int rc = c->bcast(c, n->params, sizeof(float) * n->n_param_floats, 0, err);
    if (!rc) rc = c->bcast(c, n->stats, sizeof(float) * n->n_stat_floats, 0, err);
    if (!rc) rc = c->bcast(c, t->opt.state, sizeof(float) * 2 * n->n_param_floats, 0, err);
    if (!rc) rc = c->bcast(c, st, sizeof st, 0, err);
    if (!rc) rc = c->bcast(c, &t->prog, sizeof t->prog, 0, err);
    if (!rc && t->has_queue) {
        rc = c->bcast(c, t->key.params, sizeof(float) * t->key.n_param_floats, 0, err);
        if (!rc) rc = c->bcast(c, t->key.stats, sizeof(float) * t->key.n_stat_floats, 0, err);
        if (!rc) rc = c->bcast(c, t->queue.emb, sizeof(float) * (size_t)t->queue.Q * t->queue.D, 0, err);
        if (!rc) rc = c->bcast(c, t->queue.labels, sizeof(int32_t) * (size_t)t->queue.Q, 0, err);
        if (!rc) rc = c->bcast(c, t->queue.stamp, sizeof(int64_t) * (size_t)t->queue.Q, 0, err);
        t->queue.count = (int)st[1];
        t->queue.head = (int)st[2];
    }
    t->opt.step = (long)st[0];
    return rc;
}

int trainer_resume(Trainer *t, const char *path, NcError *err) {
    Comm *c = t->comm;
    int rc = NC_OK;
    if (c->rank == 0) {
        cJSON *h = NULL;
        rc = ckpt_load(path, &t->cfg, &t->net, &t->opt, t->has_queue ? &t->queue : NULL, t->has_queue ? &t->key : NULL,
                       &t->prog, &h, err);
        if (!rc) {
            cJSON_Delete(t->history);
            t->history = h;
        }
    }
    if (c->size > 1) {
        /* rank 0's verdict, then its state, to every rank */
        long long v = rc;
        int crc = c->bcast(c, &v, sizeof v, 0, err);
        if (crc) return crc;
        if (v) return c->rank == 0 ? rc : nc_fail(err, (int)v, "rank 0 could not resume from %s", path);
        if ((rc = bcast_state(t, err))) return rc;
    }
    if (rc) return rc;
    return make_loader(t, t->prog.epoch, err);
}

/* the mean age, in optimiser steps, of the queue's rows a batch uses as negatives */
static double queue_age(const EmbQueue *q, const SamplerBatch *b, long step) {
    double sum = 0;
    long n = (long)b->B * b->k;
    for (long j = 0; j < n; j++) sum += (double)(step - q->stamp[b->neg[j] - 2 * b->B]);
    return n ? sum / n : NAN;
}

/* rows of the global batch <-> rank order: rank r owns anchors r b .. r b + b - 1 (batch rows)
   and their positives B + r b ..; in rank order they are rows 2 r b .. 2 r b + 2 b - 1 */
static void to_batch_order(float *dst, const float *src, int B, int b, int D, int P) {
    size_t rb = sizeof(float) * (size_t)b * D;
    for (int r = 0; r < P; r++) {
        memcpy(dst + (size_t)r * b * D, src + (size_t)2 * r * b * D, rb);
        memcpy(dst + ((size_t)B + (size_t)r * b) * D, src + ((size_t)2 * r * b + b) * D, rb);
    }
}

static void to_rank_order(float *dst, const float *src, int B, int b, int D, int P) {
    size_t rb = sizeof(float) * (size_t)b * D;
    for (int r = 0; r < P; r++) {
        memcpy(dst + (size_t)2 * r * b * D, src + (size_t)r * b * D, rb);
        memcpy(dst + ((size_t)2 * r * b + b) * D, src + ((size_t)B + (size_t)r * b) * D, rb);
    }
}

/* a forward's failure, as the step's: the epoch, the step, and that the checkpoint is kept */
static int step_failed(NcError *err, int epoch, int step) {
    char m[sizeof err->msg];
    snprintf(m, sizeof m, "%s", err->msg);
    return nc_fail(err, NC_ENUM, "epoch %d, step %d: %s; the last checkpoint is kept", epoch, step, m);
}

int trainer_step(Trainer *t, TrainStep *st, NcError *err) {
    Comm *c = t->comm;
    const TrainConfig *cfg = &t->cfg;
    int P = c->size, B = t->B, b = t->b, D = t->D, rc;
    int epoch = (int)(t->prog.step / t->steps_per_epoch) + 1, step = (int)(t->prog.step % t->steps_per_epoch);
    Batch *bt;
    if ((rc = loader_next(t->loader, &bt, err))) return rc;
    double age = NAN;
    if (t->has_queue) {
        if ((rc = loader_queue_negatives(t->loader, bt, &t->queue, err))) return rc;
        age = queue_age(&t->queue, &bt->s, t->prog.step);
    }
    memset(t->net.grads, 0, sizeof(float) * t->net.n_param_floats);
    if ((rc = nnx_forward(t->x, bt->x, 1, err)) || (t->has_queue && (rc = nnx_forward(t->xk, bt->x, 1, err))))
        return step_failed(err, epoch, step);
    const float *z = nnx_embeddings(t->x);  /* (2b, D) this rank's anchors, then their positives */
    const float *dz;
    double loss;
    if (t->has_queue) {  /* each view against the other view's key and the queue (moco.h): no exchange */
        if ((rc = moco_loss_part(t->set.loss, z, nnx_embeddings(t->xk), B, D, bt->s.neg, cfg->k, t->queue.emb,
                                 t->queue.Q, cfg->temp, c->rank * b, (c->rank + 1) * b, &loss, t->dq, t->zl, t->dzl2,
                                 &t->work, err)))
            return rc;
        dz = t->dq;
    } else {
        if (P > 1) {
            if ((rc = c->allgather(c, z, t->zrecv, sizeof(float) * 2 * (size_t)b * D, err))) return rc;
            to_batch_order(t->z, t->zrecv, B, b, D, P);
            z = t->z;
        }
        if ((rc = contrast_loss_part(t->set.loss, z, B, D, bt->s.neg, cfg->k, NULL, 0, cfg->temp, c->rank * b,
                                     (c->rank + 1) * b, &loss, t->dz, &t->work, err)))
            return rc;
        dz = t->dz;
        if (P > 1) {  /* each row's gradient, summed over the ranks whose anchors used it, to its owner */
            to_rank_order(t->zsend, t->dz, B, b, D, P);
            if ((rc = c->reduce_scatter_f32(c, t->zsend, t->dzl, 2 * (size_t)b * D, err))) return rc;
            dz = t->dzl;
        }
    }
    if (P > 1 && (rc = c->allreduce_f64(c, &loss, 1, err))) return rc;
    if (t->prog.step == t->fault_nan_step) loss = NAN;
    if (!isfinite(loss))
        return nc_fail(err, NC_ENUM, "epoch %d, step %d: the loss is not finite; the last checkpoint is kept", epoch, step);
    t->next_bucket = 0;
    t->bucket_rc = NC_OK;
    rc = nnx_backward(t->x, dz, err);  /* with ranks > 1 it starts the buckets' all-reduces */
    for (int j = 0; j < t->next_bucket; j++) {  /* every bucket's sum, before the optimiser reads it */
        int wrc = c->wait(c, &t->reqs[j], rc || t->bucket_rc ? NULL : err);
        if (!rc && !t->bucket_rc && wrc) rc = wrc;
    }
    if (!rc && t->bucket_rc) {
        *err = t->bucket_err;
        rc = t->bucket_rc;
    }
    if (rc) return rc;
    if (P > 1 && t->next_bucket != t->nbuckets)
        return nc_fail(err, NC_ENUM, "trainer: backward finished %d of %d gradient buckets", t->next_bucket, t->nbuckets);
    float lr = lr_at(&t->lr, t->prog.step);
    optim_step(&t->opt, lr);
    if (t->has_queue) {  /* the key encoder follows; this step's positives' keys (all ranks') join the queue */
        moco_momentum_update(&t->key, &t->net, cfg->key_momentum);
        const float *keys = nnx_embeddings(t->xk) + (size_t)b * D;
        if (P > 1) {
            if ((rc = c->allgather(c, keys, t->zrecv, sizeof(float) * (size_t)b * D, err))) return rc;
            keys = t->zrecv;  /* rank order of the positives' rows is their batch order */
        }
        t->queue.now = t->prog.step;
        queue_push(&t->queue, keys, bt->s.labels + B, B);
    }
    t->prog.step++;
    st->loss = (float)loss;  /* the value a single process logs */
    st->lr = lr;
    st->collision_rate = bt->s.collision_rate;
    st->any_collision = bt->s.any_collision;
    st->coverage = bt->s.coverage;
    st->queue_age = age;
    return NC_OK;
}

int trainer_epoch(Trainer *t, const TrainReport *rep, TrainEpoch *e, NcError *err) {
    int spe = t->steps_per_epoch, rc = NC_OK;
    double t0 = nc_now(), lsum = 0, csum = 0, asum = 0, vsum = 0, qsum = 0;
    float lr = 0;
    for (int s = 0; s < spe; s++) {
        TrainStep st;
        if ((rc = trainer_step(t, &st, err))) return rc;
        if (t->steps_log && t->prog.step % t->cfg.log_every == 0) {
            double before = t->prog.epoch > 0 && isfinite(t->prog.seconds) ? t->prog.seconds : 0;
            if ((rc = steps_log_row(t->steps_log, t->steps_path, t->prog.step, t->prog.epoch + 1, &st,
                                    before + nc_now() - t0, err)))
                return rc;
        }
        lsum += st.loss;
        csum += st.collision_rate;
        asum += st.any_collision;
        vsum += st.coverage;
        qsum += st.queue_age;
        lr = st.lr;
        if (rep && rep->step) rep->step(rep->ctx, t->prog.epoch + 1, s + 1, spe);
    }
    memset(e, 0, sizeof *e);
    e->seconds = nc_now() - t0;
    e->epoch = ++t->prog.epoch;
    e->loss = lsum / spe;
    e->lr = lr;
    e->imgs_per_sec = (double)spe * 2 * t->B / e->seconds;
    e->collision_rate = csum / spe;
    e->any_collision = asum / spe;
    e->coverage = vsum / spe;
    e->queue_age = t->has_queue ? qsum / spe : NAN;
    e->knn_acc = NAN;
    t->prog.seconds = (t->prog.epoch > 1 && isfinite(t->prog.seconds) ? t->prog.seconds : 0) + e->seconds;
    t->prog.last = *e;
    return NC_OK;
}

int trainer_save(const Trainer *t, const char *path, NcError *err) {
    CkptEncoder enc = {.num_classes = t->ds->num_classes, .class_names = t->ds->class_names};
    memcpy(enc.mean, t->mean, sizeof enc.mean);
    memcpy(enc.std, t->std, sizeof enc.std);
    return ckpt_save(path, &t->cfg, &t->net, &t->opt, t->has_queue ? &t->queue : NULL, t->has_queue ? &t->key : NULL,
                     &t->prog, t->history, &enc, err);
}

void trainer_free(Trainer *t) {
    if (t->steps_log) fclose(t->steps_log);
    free(t->steps_path);
    free(t->bucket_lo);
    free(t->reqs);
    free(t->dz);
    free(t->z);
    free(t->zsend);
    free(t->zrecv);
    free(t->dzl);
    contrast_work_free(&t->work);
    cJSON_Delete(t->history);
    nnx_free(t->x);
    loader_free(t->loader);
    if (t->has_queue) {
        queue_free(&t->queue);
        nnx_free(t->xk);
        net_free(&t->key);
        free(t->zl);
        free(t->dzl2);
        free(t->dq);
    }
    optim_free(&t->opt);
    net_free(&t->net);
    memset(t, 0, sizeof *t);
}
