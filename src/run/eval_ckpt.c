// eval_ckpt.c -- a checkpoint evaluated: its configuration, its dataset, its weights, eval_net.
#include "ncelab/ckpt.h"
#include "ncelab/train.h"

#include <string.h>

static int comm_sum(void *ctx, double *buf, int n, NcError *err) {
    Comm *c = ctx;
    return c->allreduce_f64(c, buf, (size_t)n, err);
}

static int comm_gather(void *ctx, const void *send, void *recv, size_t bytes, NcError *err) {
    Comm *c = ctx;
    return c->allgather(c, send, recv, bytes, err);
}

void train_eval_on(EvalConfig *ec, Comm *comm) {
    ec->part = comm ? comm->rank : 0;
    ec->parts = comm ? comm->size : 1;
    ec->sum = ec->parts > 1 ? comm_sum : NULL;
    ec->gather = ec->parts > 1 ? comm_gather : NULL;
    ec->ctx = comm;
}

int train_eval_checkpoint(const char *ckpt, const char *spec, const EvalConfig *ec0, int batch, const char *emb_stem,
                          Comm *comm, EvalReport *r, NcError *err) {
    memset(r, 0, sizeof *r);
    EvalConfig ec = *ec0;
    train_eval_on(&ec, comm);
    TrainConfig tc;
    TrainSettings ts;
    int rc;
    if ((rc = ckpt_read_config(ckpt, &tc, err))) return rc;
    if ((rc = train_config_check(&tc, &ts, err))) {
        char m[sizeof err->msg];
        snprintf(m, sizeof m, "%s", err ? err->msg : "");
        return nc_fail(err, NC_EFILE, "%s: its configuration is not valid: %s", ckpt, m);
    }
    Dataset ds;
    if ((rc = data_load(spec ? spec : tc.data, &ts.data, &ds, err))) return rc;
    Net net;
    if ((rc = net_create(&net, tc.model, ds.train.c, ds.train.h, ds.train.w, err))) { data_free(&ds); return rc; }
    float mean[3], sd[3];
    int stored = 0;
    if (!(rc = ckpt_read_weights(ckpt, &net, err)) && !(rc = ckpt_read_norm(ckpt, net.in_c, mean, sd, &stored, err))) {
        /* the normalisation of training, as stored; checkpoints written before it was stored: the
           statistics of the training split, recomputed (the same numbers on the same data) */
        if (!stored) data_norm_stats(&ds, &ds.train, mean, sd);
        rc = eval_net(&net, &ds, mean, sd, &ec, batch, emb_stem, r, err);
    }
    net_free(&net);
    data_free(&ds);
    return rc;
}
