// evaluate.c -- a network evaluated end to end on a dataset: embeddings of both splits, the metrics
// of the backbone features and of the head, and optionally the embeddings as .npy files.
#include "ncelab/eval.h"
#include "ncelab/jsonio.h"

#include <stdlib.h>
#include <string.h>

#define EVAL_FIELDS(X) X(mean_acc) X(linear_acc) X(knn_acc) X(simplex_deviation) X(within_class_ratio) X(probe_l2)

cJSON *eval_metrics_json(const EvalMetrics *m) {
    cJSON *o = cJSON_CreateObject();
#define ADD(f) cJSON_AddItemToObject(o, #f, json_number(m->f));
    EVAL_FIELDS(ADD)
#undef ADD
    return o;
}

int eval_metrics_from_json(const cJSON *o, EvalMetrics *m) {
    memset(m, 0, sizeof *m);
    if (!cJSON_IsObject(o)) return 0;
    const cJSON *v;
#define GET(f) v = cJSON_GetObjectItemCaseSensitive(o, #f); if (!json_get_number(v, &m->f)) return 0;
    EVAL_FIELDS(GET)
#undef GET
    return 1;
}

static int write_npys(const char *stem, const float *ftr, const float *htr, const float *fte, const float *hte,
                      const Dataset *ds, int F, int D, NcError *err) {
    char p[1100], base[1024];
    size_t L = strlen(stem);
    snprintf(base, sizeof base, "%.*s", (int)(L > 4 && strcmp(stem + L - 4, ".npy") == 0 ? L - 4 : L), stem);
    int ntr = ds->train.n, nte = ds->test.n, rc = NC_OK;
    struct { const char *suf; const float *a; int n, d; } arr[4] = {
        {"train_features", ftr, ntr, F}, {"train_head", htr, ntr, D}, {"test_features", fte, nte, F}, {"test_head", hte, nte, D}};
    for (int i = 0; i < 4 && !rc; i++) {
        snprintf(p, sizeof p, "%s_%s.npy", base, arr[i].suf);
        rc = npy_write_f32(p, arr[i].a, arr[i].n, arr[i].d, err);
    }
    snprintf(p, sizeof p, "%s_train_labels.npy", base);
    if (!rc) rc = npy_write_i32(p, ds->train.labels, ntr, err);
    snprintf(p, sizeof p, "%s_test_labels.npy", base);
    if (!rc) rc = npy_write_i32(p, ds->test.labels, nte, err);
    return rc;
}

/* The embeddings of split s: this part's block of rows embedded here, the blocks gathered (each
   padded to the largest) into every part's features (n, F) and head (n, D). Blocks are whole
   batches, so every image is embedded in the batch and at the row one process would use: a
   GEMM's rounding may depend on the row's place in its blocking (one value of the head differed
   by an ulp on an AMD EPYC when the blocks started mid-batch). */
static int embed_split(Net *net, const DataSplit *s, const float *mean, const float *sd, const EvalConfig *ec, int batch,
                       float *feat, float *head, NcError *err) {
    int P = ec->parts > 1 && ec->gather ? ec->parts : 1;
    if (P == 1) return eval_embed(net, s, mean, sd, batch, feat, head, err);
    int F = net->vals[net->features].c, D = net->vals[net->embeddings].c;
    int blk = ((s->n + P - 1) / P + batch - 1) / batch * batch, a = (int)((long)blk * ec->part), b = a + blk < s->n ? a + blk : s->n;
    if (a > b) a = b;
    DataSplit part = *s;
    part.n = b - a;
    part.pixels = s->pixels + (size_t)a * s->h * s->w * s->c;
    part.labels = s->labels + a;
    float *mine = nc_calloc((size_t)blk * (F + D) + 1, sizeof(float)), *all = nc_malloc(sizeof(float) * (size_t)blk * P * (F + D));
    int rc = part.n > 0 ? eval_embed(net, &part, mean, sd, batch, mine, mine + (size_t)blk * F, err) : NC_OK;
    if (!rc) rc = ec->gather(ec->ctx, mine, all, sizeof(float) * (size_t)blk * (F + D), err);
    for (int r = 0; r < P && !rc; r++) {
        int ra = blk * r, rb = ra + blk < s->n ? ra + blk : s->n;
        if (rb <= ra) continue;
        const float *blockr = all + (size_t)r * blk * (F + D);
        memcpy(feat + (size_t)ra * F, blockr, sizeof(float) * (size_t)(rb - ra) * F);
        memcpy(head + (size_t)ra * D, blockr + (size_t)blk * F, sizeof(float) * (size_t)(rb - ra) * D);
    }
    free(mine);
    free(all);
    return rc;
}

int eval_net(Net *net, const Dataset *ds, const float *mean, const float *sd, const EvalConfig *ec, int batch,
             const char *emb_stem, EvalReport *r, NcError *err) {
    memset(r, 0, sizeof *r);
    int F = net->vals[net->features].c, D = net->vals[net->embeddings].c;
    int ntr = ds->train.n, nte = ds->test.n, rc;
    float *ftr = nc_malloc(sizeof(float) * (size_t)ntr * F), *htr = nc_malloc(sizeof(float) * (size_t)ntr * D);
    float *fte = nc_malloc(sizeof(float) * (size_t)nte * F), *hte = nc_malloc(sizeof(float) * (size_t)nte * D);
    double t0 = nc_now();
    if ((rc = embed_split(net, &ds->train, mean, sd, ec, batch, ftr, htr, err)) ||
        (rc = embed_split(net, &ds->test, mean, sd, ec, batch, fte, hte, err))) goto out;
    r->embed_seconds = nc_now() - t0;
    if ((rc = eval_metrics(ftr, ds->train.labels, ntr, fte, ds->test.labels, nte, F, ds->num_classes, ec, &r->features, err)) ||
        (rc = eval_metrics(htr, ds->train.labels, ntr, hte, ds->test.labels, nte, D, ds->num_classes, ec, &r->head, err)))
        goto out;
    r->metric_seconds = nc_now() - t0 - r->embed_seconds;
    r->ntrain = ntr;
    r->ntest = nte;
    r->nclass = ds->num_classes;
    if (emb_stem && ec->part == 0) rc = write_npys(emb_stem, ftr, htr, fte, hte, ds, F, D, err);
out:
    free(ftr); free(htr); free(fte); free(hte);
    return rc;
}
