// sweep_runs.c -- the k-sweep's runs: train and evaluate every (k, seed) resumably, and the theory
// engine's prediction for the dataset's class prior.
#define _POSIX_C_SOURCE 200809L
#include "ncelab/sweep.h"
#include "ncelab/jsonio.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

cJSON *sweep_run_json(const SweepRun *r) {
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "k", (double)r->k);
    cJSON_AddNumberToObject(doc, "seed", r->seed);
    cJSON_AddNumberToObject(doc, "epochs", r->epochs);
#define NUM(f) cJSON_AddItemToObject(doc, #f, json_number(r->f));
    NUM(final_loss) NUM(train_seconds) NUM(eval_seconds) NUM(imgs_per_sec) NUM(collision_rate) NUM(any_collision)
#undef NUM
    cJSON_AddItemToObject(doc, "features", eval_metrics_json(&r->features));
    cJSON_AddItemToObject(doc, "head", eval_metrics_json(&r->head));
    return doc;
}

/* result.json of one run: the run's JSON and its training configuration */
static int run_save(const char *path, const TrainConfig *c, const SweepRun *r, NcError *err) {
    cJSON *doc = sweep_run_json(r);
    char *cj = train_config_json(c);
    cJSON_AddItemToObject(doc, "config", cJSON_Parse(cj));
    free(cj);
    int rc = json_save(path, doc, err);
    cJSON_Delete(doc);
    return rc;
}

/* 1 when path holds a complete result of configuration c. */
static int run_load(const char *path, const TrainConfig *c, SweepRun *r) {
    cJSON *doc;
    if (access(path, F_OK) != 0 || json_load(path, &doc, NULL) != NC_OK) return 0;
    TrainConfig saved;
    char *cj = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(doc, "config"));
    int ok = cj && train_config_parse(cj, path, &saved, NULL) == NC_OK && train_config_same(&saved, c) &&
             saved.epochs == c->epochs;
    free(cj);
    double v;
#define NUM(f) ok = ok && json_get_number(cJSON_GetObjectItemCaseSensitive(doc, #f), &r->f);
    NUM(final_loss) NUM(train_seconds) NUM(eval_seconds) NUM(imgs_per_sec) NUM(collision_rate) NUM(any_collision)
#undef NUM
    ok = ok && json_get_number(cJSON_GetObjectItemCaseSensitive(doc, "epochs"), &v);
    r->epochs = ok ? (int)v : 0;
    ok = ok && eval_metrics_from_json(cJSON_GetObjectItemCaseSensitive(doc, "features"), &r->features) &&
         eval_metrics_from_json(cJSON_GetObjectItemCaseSensitive(doc, "head"), &r->head);
    cJSON_Delete(doc);
    return ok;
}

/* The training log's totals: wall time of all epochs, and the last epoch's loss, rate and collisions. */
static void run_log(const char *dir, SweepRun *r) {
    char *p = nc_path_join(dir, "log.json");
    cJSON *log;
    r->train_seconds = 0;
    r->final_loss = r->collision_rate = r->any_collision = r->imgs_per_sec = NAN;
    if (json_load(p, &log, NULL) == NC_OK && cJSON_IsArray(log)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, log) {
            double s;
            if (json_get_number(cJSON_GetObjectItemCaseSensitive(e, "seconds"), &s)) r->train_seconds += s;
            json_get_number(cJSON_GetObjectItemCaseSensitive(e, "loss"), &r->final_loss);
            json_get_number(cJSON_GetObjectItemCaseSensitive(e, "collision_rate"), &r->collision_rate);
            json_get_number(cJSON_GetObjectItemCaseSensitive(e, "any_collision"), &r->any_collision);
            json_get_number(cJSON_GetObjectItemCaseSensitive(e, "imgs_per_sec"), &r->imgs_per_sec);
        }
        cJSON_Delete(log);
    }
    free(p);
}

/* One run: train (or resume, or nothing when its checkpoint is complete), then evaluate. */
static int run_one(const SweepConfig *sc, const TrainConfig *c, SweepRun *r, NcError *err) {
    char *ckpt = nc_path_join(c->out, "ckpt.safetensors");
    int rc = NC_OK, epoch = 0, have = access(ckpt, F_OK) == 0;
    if (have) {
        TrainConfig saved;
        if ((rc = train_checkpoint_config(ckpt, &saved, err)) || (rc = train_checkpoint_epoch(ckpt, &epoch, err))) goto out;
        if (!train_config_same(&saved, c)) {
            rc = nc_fail(err, NC_EUSAGE, "%s: holds a run of another configuration; refusing to overwrite it (choose another --out)",
                         c->out);
            goto out;
        }
    }
    if (!have) printf("training %d epochs on %s\n", c->epochs, c->data);
    else if (epoch < c->epochs) printf("resuming at epoch %d of %d\n", epoch + 1, c->epochs);
    else printf("trained earlier; evaluating\n");
    fflush(stdout);
    if (!have || epoch < c->epochs) {
        TrainResult tr;
        if ((rc = train_run(c, have, &tr, err))) goto out;
    }
    EvalReport er;
    if ((rc = eval_checkpoint(ckpt, NULL, &sc->eval, sc->eval_batch, NULL, &er, err))) goto out;
    run_log(c->out, r);
    r->epochs = c->epochs;
    r->features = er.features;
    r->head = er.head;
    r->eval_seconds = er.embed_seconds + er.metric_seconds;
out:
    free(ckpt);
    return rc;
}

/* The theory prediction: the class prior of the training split (after imbalance and limit). */
static int sweep_theory(const SweepConfig *c, SweepTheory *th, NcError *err) {
    memset(th, 0, sizeof *th);
    DataOpts dopt;
    Dataset ds;
    int rc;
    if ((rc = train_data_opts(&c->base, &dopt, err)) || (rc = data_load(c->base.data, &dopt, &ds, err))) return rc;
    DataStats st;
    data_stats(&ds, &ds.train, &st);
    th->N = ds.num_classes;
    th->rho = nc_malloc(sizeof(double) * th->N);
    for (int i = 0; i < th->N; i++) th->rho[i] = (double)st.per_class[i] / st.n;
    free(st.per_class);
    data_free(&ds);
    double t0 = nc_now();
    for (int i = 0; i < th->N; i++)
        if (!(th->rho[i] > 0))
            return nc_fail(err, NC_EUSAGE, "%s: class %d has no training images; the theory needs every class", c->base.data, i);
    th->R = 1.0 / sqrt(c->base.temp);
    TheoryModel m;
    int loss = strcmp(c->base.loss, "nce") == 0 ? THEORY_NCE : THEORY_INFONCE;
    if ((rc = theory_model_init(&m, th->N, th->rho, NULL, 0, th->R, 0, loss, err))) return rc;
    TheorySolveOpts so;
    theory_solve_opts_default(&so);
    th->sol = nc_calloc((size_t)c->nk, sizeof(TheorySolution));
    rc = theory_sweep(&m, c->ks, c->nk, &so, th->sol, NULL, NULL, err);
    theory_model_free(&m);
    th->seconds = nc_now() - t0;
    return rc;
}

void sweep_theory_free(SweepTheory *th, int nk) {
    if (th->sol)
        for (int j = 0; j < nk; j++) theory_solution_free(&th->sol[j]);
    free(th->sol);
    free(th->rho);
    memset(th, 0, sizeof *th);
}

int sweep_run(const SweepConfig *c, SweepRun **runs, SweepTheory *th, NcError *err) {
    *runs = NULL;
    memset(th, 0, sizeof *th);
    if (c->nk < 1 || c->seeds < 1) return nc_fail(err, NC_EUSAGE, "sweep: need at least one k and one seed");
    for (int i = 0; i < c->nk; i++)
        if (c->ks[i] < 1 || (i && c->ks[i] <= c->ks[i - 1]))
            return nc_fail(err, NC_EUSAGE, "--k: values must be positive and increasing");
    long kmax = c->ks[c->nk - 1], pool = 2L * c->base.batch - 2;
    if (c->base.queue > 0) pool = c->base.queue;
    if (kmax > pool)
        return nc_fail(err, NC_EUSAGE, "--k: k = %ld is more than the %ld candidates (%s); lower k or raise %s", kmax, pool,
                       c->base.queue > 0 ? "the queue" : "2B - 2 other rows of the batch", c->base.queue > 0 ? "--queue" : "--batch or use --queue");
    int rc = nc_mkdir_p(c->out, err);
    if (rc) return rc;
    char *probe = nc_path_join(c->out, ".write-test");
    rc = nc_write_atomic(probe, "ok\n", 3, err);
    unlink(probe);
    free(probe);
    if (rc) return nc_fail(err, NC_EFILE, "%s: the output directory is not writable", c->out);
    if ((rc = sweep_theory(c, th, err))) { sweep_theory_free(th, c->nk); return rc; }
    int n = c->nk * c->seeds;
    SweepRun *r = nc_calloc((size_t)n, sizeof(SweepRun));
    for (int i = 0; i < c->nk && !rc; i++)
        for (int s = 0; s < c->seeds && !rc; s++) {
            SweepRun *x = &r[i * c->seeds + s];
            TrainConfig tc = c->base;
            tc.k = (int)c->ks[i];
            tc.seed = c->base.seed + (uint64_t)s;
            char name[64];
            snprintf(name, sizeof name, "runs/k%ld_seed%d", c->ks[i], (int)tc.seed);
            char *dir = nc_path_join(c->out, name), *res = nc_path_join(dir, "result.json");
            snprintf(tc.out, sizeof tc.out, "%s", dir);
            x->k = c->ks[i];
            x->seed = (int)tc.seed;
            if (run_load(res, &tc, x)) {
                x->skipped = 1;
                printf("[%d/%d] k = %ld, seed %d: finished earlier (%s)\n", i * c->seeds + s + 1, n, x->k, x->seed, res);
            } else {
                printf("[%d/%d] k = %ld, seed %d: ", i * c->seeds + s + 1, n, x->k, x->seed);
                if (!(rc = run_one(c, &tc, x, err))) rc = run_save(res, &tc, x, err);
                if (!rc)
                    printf("        head: mean %.4f linear %.4f kNN %.4f | features: mean %.4f linear %.4f kNN %.4f "
                           "(train %.0f s, eval %.0f s)\n", x->head.mean_acc, x->head.linear_acc, x->head.knn_acc,
                           x->features.mean_acc, x->features.linear_acc, x->features.knn_acc, x->train_seconds,
                           x->eval_seconds);
            }
            fflush(stdout);
            free(dir);
            free(res);
        }
    if (rc) { free(r); sweep_theory_free(th, c->nk); return rc; }
    *runs = r;
    return NC_OK;
}
