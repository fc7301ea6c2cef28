// ckpt.c -- the training checkpoint as one safetensors file: tensors, configuration and progress.
#include "ncelab/ckpt.h"
#include "ncelab/jsonio.h"
#include "ncelab/safetensors.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* add_weights: every parameter under its PyTorch name and each batch norm's running statistics,
   the names prefixed by prefix ("" or "key.") */
static int add_weights(StWriter *w, const Net *net, const char *prefix, NcError *err) {
    int rc = NC_OK;
    char nm[128];
    for (int i = 0; i < net->n_params && !rc; i++) {
        const NnParam *v = &net->views[i];
        int64_t sh[4] = {v->shape[0], v->shape[1], v->shape[2], v->shape[3]};
        snprintf(nm, sizeof nm, "%s%s", prefix, v->name);
        rc = st_writer_add(w, nm, ST_F32, v->ndim, sh, net->params + v->offset, err);
    }
    for (int i = 0; i < net->n_stats && !rc; i++) {
        int64_t sh[1] = {net->stat_c[i]};
        snprintf(nm, sizeof nm, "%s%s.running_mean", prefix, net->stat_names[i]);
        rc = st_writer_add(w, nm, ST_F32, 1, sh, net->stats + net->stat_offset[i], err);
        snprintf(nm, sizeof nm, "%s%s.running_var", prefix, net->stat_names[i]);
        if (!rc) rc = st_writer_add(w, nm, ST_F32, 1, sh, net->stats + net->stat_offset[i] + net->stat_c[i], err);
    }
    return rc;
}

int ckpt_save(const char *path, const TrainConfig *c, const Net *net, const Optim *opt, const EmbQueue *q,
              const Net *key, const CkptProgress *p, const cJSON *history, const CkptEncoder *enc, NcError *err) {
    StWriter *w = st_writer_new();
    int rc = add_weights(w, net, "", err);
    int64_t osh[1] = {(int64_t)(2 * net->n_param_floats)}, one[1] = {1};
    int64_t ostep = opt->step;
    if (!rc) rc = st_writer_add(w, "optim.state", ST_F32, 1, osh, opt->state, err);
    if (!rc) rc = st_writer_add_copy(w, "optim.step", ST_I64, 1, one, &ostep, err);
    if (!rc && q) {
        int64_t qsh[2] = {q->Q, q->D}, lsh[1] = {q->Q}, meta[2] = {q->count, q->head}, msh[1] = {2};
        rc = st_writer_add(w, "queue.emb", ST_F32, 2, qsh, q->emb, err);
        if (!rc) rc = st_writer_add(w, "queue.labels", ST_I32, 1, lsh, q->labels, err);
        if (!rc) rc = st_writer_add(w, "queue.stamp", ST_I64, 1, lsh, q->stamp, err);
        if (!rc) rc = st_writer_add_copy(w, "queue.count_head", ST_I64, 1, msh, meta, err);
    }
    if (!rc && key) rc = add_weights(w, key, "key.", err);
    char *cj = train_config_json(c), num[64];
    cJSON *last = train_epoch_json(&p->last);
    char *lj = cJSON_PrintUnformatted(last);
    cJSON_Delete(last);
    if (!rc) rc = st_writer_meta(w, "config", cj, err);
    snprintf(num, sizeof num, "%d", p->epoch);
    if (!rc) rc = st_writer_meta(w, "epoch", num, err);
    snprintf(num, sizeof num, "%ld", p->step);
    if (!rc) rc = st_writer_meta(w, "step", num, err);
    snprintf(num, sizeof num, "%.17g", p->seconds);
    if (!rc) rc = st_writer_meta(w, "seconds", num, err);
    if (!rc) rc = st_writer_meta(w, "last_epoch", lj, err);
    if (!rc && history) {
        char *hj = cJSON_PrintUnformatted(history);
        rc = st_writer_meta(w, "history", hj ? hj : "[]", err);
        free(hj);
    }
    if (!rc) rc = ckpt_meta_write(w, c, net, enc, err);
    if (!rc) rc = st_writer_meta(w, "version", NCELAB_VERSION, err);
    if (!rc) rc = st_writer_meta(w, "format", "ncelab checkpoint 1", err);
    if (!rc) rc = st_writer_save(w, path, err);
    free(cj);
    free(lj);
    st_writer_free(w);
    return rc;
}

/* shape_text: "[32,3,3,3]" into buf. */
static void shape_text(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t at = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && at < n; i++) at += (size_t)snprintf(buf + at, n - at, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (at < n) snprintf(buf + at, n - at, "]");
}

/* take_shaped: copies the tensor called name into dst once it is checked: F32 of exactly the shape
   (ndim, shape), every value finite, and >= 0 for a variance. NC_EFILE naming the file and the
   tensor, with what was expected and what was found ("ckpt.safetensors: conv1.weight: F32
   [32,3,3,3] expected, I32 [32] found"). */
static int take_shaped(const StFile *f, const char *name, int ndim, const int64_t *shape, int variance, float *dst,
                       NcError *err) {
    const StTensor *t = st_find(f, name);
    if (!t) return nc_fail(err, NC_EFILE, "%s: no tensor %s (not a checkpoint of this model)", f->path, name);
    int same = t->dtype == ST_F32 && t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char want[96], got[96];
        shape_text(want, sizeof want, ndim, shape);
        shape_text(got, sizeof got, t->ndim, t->shape);
        return nc_fail(err, NC_EFILE, "%s: %s: F32 %s expected, %s %s found", f->path, name, want,
                       st_dtype_name(t->dtype), got);
    }
    const float *v = t->data;
    for (size_t i = 0; i < t->numel; i++)
        if (!isfinite(v[i]) || (variance && v[i] < 0))
            return nc_fail(err, NC_EFILE, "%s: %s: element %zu of %zu is %g (%s)", f->path, name, i, t->numel,
                           (double)v[i], variance ? "a variance is finite and >= 0" : "the values must be finite");
    memcpy(dst, v, t->nbytes);
    return NC_OK;
}

/* take: a one-dimensional tensor of n floats, as take_shaped. */
static int take(const StFile *f, const char *name, float *dst, size_t n, NcError *err) {
    int64_t shape[1] = {(int64_t)n};
    return take_shaped(f, name, 1, shape, 0, dst, err);
}

/* weights: every parameter in the net's shapes, and the batch-norm statistics, checked as they are
   copied (a failure leaves a partly loaded net, which the caller discards). */
static int weights(const StFile *f, Net *net, const char *prefix, NcError *err) {
    int rc = NC_OK;
    char nm[128];
    for (int p = 0; p < net->n_params && !rc; p++) {
        const NnParam *v = &net->views[p];
        int64_t shape[4] = {v->shape[0], v->shape[1], v->shape[2], v->shape[3]};
        snprintf(nm, sizeof nm, "%s%s", prefix, v->name);
        rc = take_shaped(f, nm, v->ndim, shape, 0, net->params + v->offset, err);
    }
    for (int i = 0; i < net->n_stats && !rc; i++) {
        int64_t c[1] = {net->stat_c[i]};
        snprintf(nm, sizeof nm, "%s%s.running_mean", prefix, net->stat_names[i]);
        rc = take_shaped(f, nm, 1, c, 0, net->stats + net->stat_offset[i], err);
        snprintf(nm, sizeof nm, "%s%s.running_var", prefix, net->stat_names[i]);
        if (!rc) rc = take_shaped(f, nm, 1, c, 1, net->stats + net->stat_offset[i] + net->stat_c[i], err);
    }
    return rc;
}

static int config(const StFile *f, TrainConfig *c, NcError *err) {
    const char *cj = st_meta(f, "config");
    if (!cj) return nc_fail(err, NC_EFILE, "%s: not an ncelab checkpoint (no config in the metadata)", f->path);
    return train_config_parse(cj, f->path, c, err);
}

/* epoch and step are required; seconds and last_epoch are absent in checkpoints of older versions */
static int progress(const StFile *f, CkptProgress *p, NcError *err) {
    long epoch = 0, step = 0;
    int rc = st_meta_long(f, "epoch", &epoch, err);
    if (!rc) rc = st_meta_long(f, "step", &step, err);
    if (rc) return rc;
    if (epoch < 0 || epoch > 1000000 || step < 0)
        return nc_fail(err, NC_EFILE, "%s: metadata epoch %ld, step %ld: not a training position", f->path, epoch, step);
    memset(p, 0, sizeof *p);
    p->epoch = (int)epoch;
    p->step = step;
    if (!st_meta(f, "seconds") || st_meta_double(f, "seconds", &p->seconds, NULL)) p->seconds = NAN;
    const char *lj = st_meta(f, "last_epoch");
    cJSON *o = NULL;
    if (lj) json_parse(lj, strlen(lj), f->path, &o, NULL);
    train_epoch_from_json(o, &p->last);
    cJSON_Delete(o);
    return NC_OK;
}

/* The epochs' log lines: the "history" array when it holds one object per epoch done, else (older
   checkpoints) the last epoch alone. */
static cJSON *read_history(const StFile *f, const CkptProgress *p) {
    const char *hj = st_meta(f, "history");
    cJSON *h = hj ? cJSON_Parse(hj) : NULL;
    int ok = cJSON_IsArray(h) && cJSON_GetArraySize(h) == p->epoch;
    for (int i = 0; ok && i < p->epoch; i++) {
        const cJSON *e = cJSON_GetArrayItem(h, i), *n = cJSON_GetObjectItemCaseSensitive(e, "epoch");
        ok = cJSON_IsObject(e) && cJSON_IsNumber(n) && n->valuedouble == i + 1;
    }
    if (ok) return h;
    cJSON_Delete(h);
    h = cJSON_CreateArray();
    if (p->epoch > 0) cJSON_AddItemToArray(h, train_epoch_json(&p->last));
    return h;
}

int ckpt_load(const char *path, const TrainConfig *expect, Net *net, Optim *opt, EmbQueue *q, Net *key,
              CkptProgress *p, cJSON **history, NcError *err) {
    StFile f;
    int rc = st_load(path, &f, err);
    if (rc) return rc;
    TrainConfig saved;
    CkptProgress pr;
    if (!(rc = config(&f, &saved, err)) && !train_config_same(&saved, expect)) {
        char diff[600];
        train_config_diff(&saved, expect, diff, sizeof diff);
        rc = nc_fail(err, NC_EUSAGE, "--resume: %s was written by another configuration (%s); refusing to overwrite it",
                     path, diff);
    }
    if (!rc) rc = progress(&f, &pr, err);
    const StTensor *t = st_find(&f, "optim.step");
    if (!rc && (!t || t->dtype != ST_I64 || t->numel != 1)) rc = nc_fail(err, NC_EFILE, "%s: no optim.step", path);
    const StTensor *qe = st_find(&f, "queue.emb"), *ql = st_find(&f, "queue.labels"), *qm = st_find(&f, "queue.count_head");
    if (!rc && q && (!qe || !ql || !qm || qe->numel != (size_t)q->Q * q->D || ql->numel != (size_t)q->Q || qm->numel != 2))
        rc = nc_fail(err, NC_EFILE, "%s: the embedding queue is missing or of another size", path);
    if (!rc && q) {
        const int64_t *ch = (const int64_t *)qm->data;
        if (qm->dtype != ST_I64 || ch[0] < 0 || ch[0] > q->Q || ch[1] < 0 || ch[1] >= q->Q)
            rc = nc_fail(err, NC_EFILE, "%s: queue.count_head: count %lld and head %lld do not fit a queue of %d", path,
                         (long long)ch[0], (long long)ch[1], q->Q);
    }
    if (!rc && *(const int64_t *)t->data < 0)
        rc = nc_fail(err, NC_EFILE, "%s: optim.step is negative (%lld)", path, (long long)*(const int64_t *)t->data);
    /* every check is done: now copy (a failed take leaves a partly loaded net, which the caller discards) */
    if (!rc) rc = weights(&f, net, "", err);
    if (!rc && key) rc = weights(&f, key, "key.", err);
    if (!rc) rc = take(&f, "optim.state", opt->state, 2 * net->n_param_floats, err);
    if (!rc) {
        opt->step = (long)*(const int64_t *)t->data;
        if (q) {
            memcpy(q->emb, qe->data, qe->nbytes);
            memcpy(q->labels, ql->data, ql->nbytes);
            const StTensor *qs = st_find(&f, "queue.stamp");  /* absent in older checkpoints: ages from 0 */
            if (qs && qs->dtype == ST_I64 && qs->numel == (size_t)q->Q) memcpy(q->stamp, qs->data, qs->nbytes);
            else memset(q->stamp, 0, sizeof(int64_t) * (size_t)q->Q);
            q->count = (int)((const int64_t *)qm->data)[0];
            q->head = (int)((const int64_t *)qm->data)[1];
        }
        *p = pr;
        if (history) *history = read_history(&f, &pr);
    }
    st_free(&f);
    return rc;
}

int ckpt_read_config(const char *path, TrainConfig *c, NcError *err) {
    StFile f;
    int rc = st_load(path, &f, err);
    if (rc) return rc;
    rc = config(&f, c, err);
    st_free(&f);
    return rc;
}

int ckpt_read_progress(const char *path, CkptProgress *p, NcError *err) {
    StFile f;
    int rc = st_load(path, &f, err);
    if (rc) return rc;
    rc = progress(&f, p, err);
    st_free(&f);
    return rc;
}

int ckpt_read_weights(const char *path, Net *net, NcError *err) {
    StFile f;
    int rc = st_load(path, &f, err);
    if (rc) return rc;
    rc = weights(&f, net, "", err);
    st_free(&f);
    return rc;
}
