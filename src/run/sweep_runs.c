// sweep_runs.c -- the k-sweep's runs: train and evaluate every (k, seed) resumably, and the theory
// engine's prediction for the dataset's class prior.
#define _POSIX_C_SOURCE 200809L
#include "ncelab/sweep.h"
#include "ncelab/ckpt.h"
#include "ncelab/jsonio.h"
#include "ncelab/trainer.h"

#include <limits.h>
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
    ok = ok && json_get_int(cJSON_GetObjectItemCaseSensitive(doc, "epochs"), 0, INT_MAX, &v);
    r->epochs = ok ? (int)v : 0;
    ok = ok && eval_metrics_from_json(cJSON_GetObjectItemCaseSensitive(doc, "features"), &r->features) &&
         eval_metrics_from_json(cJSON_GetObjectItemCaseSensitive(doc, "head"), &r->head);
    cJSON_Delete(doc);
    return ok;
}

/* The training data of a run with this seed: the loaded data itself when the seed selects nothing,
   else its seeded selection (imbalance, train limit), or for synth the seed's own images. */
static int run_data(const char *spec, const DataOpts *opts, const Dataset *full, int synth, uint64_t full_seed,
                    uint64_t seed, Dataset *own, const Dataset **ds, NcError *err) {
    DataOpts o = *opts;
    o.seed = seed;
    *ds = full;
    if (synth && seed != full_seed) {
        int rc = data_load(spec, &o, own, err);
        if (rc) return rc;
        *ds = own;
    } else if (!synth && (o.imbalance_zipf > 0 || o.train_limit > 0)) {
        data_select(full, &o, own);
        *ds = own;
    }
    return NC_OK;
}

/* One run on the loaded data: train (or resume, or nothing when its checkpoint is complete), then
   evaluate the trained net in memory. */
static int run_one(const SweepConfig *sc, const TrainConfig *c, const TrainSettings *ts, const Dataset *ds, Comm *comm,
                   const SweepReport *rep, int i, int n, SweepRun *r, NcError *err) {
    char *ckpt = nc_path_join(c->out, "ckpt.safetensors");
    int rc = NC_OK, lead = comm->rank == 0, lock = -1;
    /* the run's leader locks its directory, reads it and tells the others: {error, have a
       checkpoint, its epoch} */
    long long st[3] = {0, 0, 0};
    if (lead) rc = nc_mkdir_p(c->out, err);
    if (lead && !rc) rc = nc_dir_lock(c->out, &lock, err);
    st[0] = rc;
    if (lead && !rc && (st[1] = access(ckpt, F_OK) == 0)) {
        TrainConfig saved;
        CkptProgress pr;
        if (!(rc = ckpt_read_config(ckpt, &saved, err)) && !(rc = ckpt_read_progress(ckpt, &pr, err)) &&
            !train_config_same(&saved, c))
            rc = nc_fail(err, NC_EUSAGE, "%s: holds a run of another configuration; refusing to overwrite it (choose another --out)",
                         c->out);
        st[0] = rc;
        st[2] = rc ? 0 : pr.epoch;
    }
    if (comm->size > 1 && (rc = comm->bcast(comm, st, sizeof st, 0, err))) goto out;
    if (st[0]) { rc = lead ? (int)st[0] : nc_fail(err, (int)st[0], "%s: refused by the run's first rank", c->out); goto out; }
    int have = (int)st[1];
    CkptProgress pr = {.epoch = (int)st[2]};
    char what[600];
    if (!have) snprintf(what, sizeof what, "training %d epochs on %s", c->epochs, c->data);
    else if (pr.epoch < c->epochs) snprintf(what, sizeof what, "resuming at epoch %d of %d", pr.epoch + 1, c->epochs);
    else snprintf(what, sizeof what, "trained earlier; evaluating");
    if (lead && rep && rep->run_start) rep->run_start(rep->ctx, i, n, r, what);
    Trainer t;
    if ((rc = trainer_create(&t, c, ts, ds, comm, err))) goto out;
    if (have) rc = trainer_resume(&t, ckpt, err);
    TrainResult tr;
    if (!rc && t.prog.epoch < c->epochs) rc = trainer_fit(&t, rep && lead ? &rep->train : NULL, &tr, err);
    EvalReport er;
    EvalConfig ec = sc->eval;
    train_eval_on(&ec, comm);
    if (!rc) rc = eval_net(&t.net, ds, t.mean, t.std, &ec, sc->eval_batch, NULL, &er, err);
    if (!rc) {
        const TrainEpoch *e = &t.prog.last;
        r->epochs = c->epochs;
        r->train_seconds = t.prog.seconds;
        r->final_loss = e->loss;
        r->collision_rate = e->collision_rate;
        r->any_collision = e->any_collision;
        r->imgs_per_sec = e->imgs_per_sec;
        r->features = er.features;
        r->head = er.head;
        r->eval_seconds = er.embed_seconds + er.metric_seconds;
    }
    trainer_free(&t);
out:
    nc_dir_unlock(lock);
    free(ckpt);
    return rc;
}

/* The theory prediction: the class prior of the training split (after imbalance and limit). */
static int sweep_theory(const SweepConfig *c, const Dataset *ds, NcLoss loss, SweepTheory *th, NcError *err) {
    memset(th, 0, sizeof *th);
    int rc;
    DataStats st;
    data_stats(ds, &ds->train, &st);
    th->N = ds->num_classes;
    th->rho = nc_malloc(sizeof(double) * th->N);
    for (int i = 0; i < th->N; i++) th->rho[i] = (double)st.per_class[i] / st.n;
    free(st.per_class);
    double t0 = nc_now();
    for (int i = 0; i < th->N; i++)
        if (!(th->rho[i] > 0))
            return nc_fail(err, NC_EUSAGE, "%s: class %d has no training images; the theory needs every class", c->base.data, i);
    th->R = 1.0 / sqrt(c->base.temp);
    TheoryModel m;
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

void sweep_unlock(SweepConfig *c) {
    nc_dir_unlock(c->lock_fd);
    c->lock_fd = -1;
}

int sweep_run(SweepConfig *c, Comm *comm, const SweepReport *rep, SweepRun **runs, SweepTheory *th, NcError *err) {
    *runs = NULL;
    c->lock_fd = -1;
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
    TrainConfig base = c->base;
    TrainSettings ts;
    base.k = (int)kmax;
    int rc = train_config_check(&base, &ts, err);
    if (rc) return rc;
    /* groups of R ranks, each training its share of the runs: run j goes to group j mod G */
    Comm *world = comm ? comm : comm_single(), *grp = world;
    int R = c->ranks_per_run > 0 ? c->ranks_per_run : 1;
    if (R > world->size || world->size % R)
        return nc_fail(err, NC_EUSAGE, "--ranks-per-run: %d does not divide the %d ranks", R, world->size);
    if (c->base.batch % R)
        return nc_fail(err, NC_EUSAGE, "--batch: %d anchors cannot be shared by %d ranks per run: it must be a multiple of --ranks-per-run",
                       c->base.batch, R);
    int groups = world->size / R, group = world->rank / R;
    c->sweep_ranks = world->size;
    if (world->rank == 0 && ((rc = nc_mkdir_p(c->out, err)) || (rc = nc_dir_lock(c->out, &c->lock_fd, err)) ||
                             (rc = nc_dir_writable(c->out, err)))) {
        sweep_unlock(c);
        return rc;
    }
    if ((world->size > 1 && (rc = world->barrier(world, err))) ||
        (groups > 1 && R < world->size && (rc = world->split(world, group, world->rank, &grp, err)))) {
        sweep_unlock(c);
        return rc;
    }
    /* the data, once; a run's own selection (imbalance, train limit, synth's images) by its seed */
    int synth = strncmp(c->base.data, "synth:", 6) == 0;
    DataOpts fo = ts.data;
    if (!synth) fo.imbalance_zipf = fo.train_limit = 0;
    Dataset full, own;
    const Dataset *ds;
    if ((rc = data_load(c->base.data, &fo, &full, err))) { sweep_unlock(c); return rc; }
    if ((rc = run_data(c->base.data, &ts.data, &full, synth, c->base.seed, c->base.seed, &own, &ds, err))) {
        data_free(&full);
        sweep_unlock(c);
        return rc;
    }
    if (world->rank == 0) rc = sweep_theory(c, ds, ts.loss, th, err);  /* the report is rank 0's */
    if (ds == &own) data_free(&own);
    if (rc) { sweep_theory_free(th, c->nk); data_free(&full); sweep_unlock(c); return rc; }
    int n = c->nk * c->seeds;
    SweepRun *r = nc_calloc((size_t)n, sizeof(SweepRun));
    for (int j = 0; j < n && !rc; j++) {
        if (j % groups != group) continue;  /* another group's run */
        int i = j / c->seeds, s = j % c->seeds, lead = grp->rank == 0;
        SweepRun *x = &r[j];
        TrainConfig tc = c->base;
        tc.k = (int)c->ks[i];
        tc.seed = c->base.seed + (uint64_t)s;
        tc.ranks = grp->size;
        if (c->queue_lr > 0 && tc.k > 2 * tc.batch - 2) tc.lr = c->queue_lr;
        char name[64];
        snprintf(name, sizeof name, "runs/k%ld_seed%d", c->ks[i], (int)tc.seed);
        char *dir = nc_path_join(c->out, name), *res = nc_path_join(dir, "result.json");
        snprintf(tc.out, sizeof tc.out, "%s", dir);
        x->k = c->ks[i];
        x->seed = (int)tc.seed;
        long long skip = lead && run_load(res, &tc, x);  /* the leader's verdict holds for the group */
        if (grp->size > 1 && (rc = grp->bcast(grp, &skip, sizeof skip, 0, err))) {
            free(dir);
            free(res);
            break;
        }
        if (skip) {
            x->skipped = 1;
            if (lead && rep && rep->run_start) rep->run_start(rep->ctx, j, n, x, "finished earlier");
        } else if (!(rc = run_data(c->base.data, &ts.data, &full, synth, c->base.seed, tc.seed, &own, &ds, err))) {
            if (!(rc = run_one(c, &tc, &ts, ds, grp, rep, j, n, x, err)) && lead) rc = run_save(res, &tc, x, err);
            if (ds == &own) data_free(&own);
            if (!rc && lead && rep && rep->run_done) rep->run_done(rep->ctx, j, n, x);
        }
        free(dir);
        free(res);
    }
    data_free(&full);
    if (grp != world) comm_free(grp);
    /* every run's result to every rank, from the first rank of the group that made it */
    if (world->size > 1) {
        long long bad = rc;
        int crc = world->allreduce_max_i64(world, &bad, 1, err);
        if (!rc && (crc || bad)) rc = crc ? crc : nc_fail(err, (int)bad, "sweep: another rank failed (its message names the problem)");
        for (int j = 0; j < n && !rc; j++) rc = world->bcast(world, &r[j], sizeof r[j], (j % groups) * R, err);
    }
    if (rc) { free(r); sweep_theory_free(th, c->nk); sweep_unlock(c); return rc; }
    *runs = r;
    return NC_OK;
}
