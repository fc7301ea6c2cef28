// exec.c -- NetExec: one front for the reference and the oneDNN backends.
#include "exec_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long nn_first_nonfinite(const float *v, long len) {
    for (long i = 0; i < len; i++)
        if (!isfinite(v[i])) return i;
    return -1;
}

int nnx_create(NetExec **out, Net *net, int batch, NnBackend backend, NcError *err) {
    *out = NULL;
    if (batch < 1) return nc_fail(err, NC_EUSAGE, "--batch: the batch must hold at least 1 image, got %d", batch);
    if (batch > 65536) return nc_fail(err, NC_EUSAGE, "--batch: %d images is too many", batch);
    NetExec *x = nc_calloc(1, sizeof *x);
    x->net = net;
    x->batch = batch;
    x->backend = backend;
    x->features = nc_malloc(sizeof(float) * batch * nnx_feature_dim(x));
    x->embeddings = nc_malloc(sizeof(float) * batch * nnx_embed_dim(x));
    int cmax = 0;
    for (int i = 0; i < net->n_nodes; i++)
        if (net->nodes[i].op == NN_BN && net->vals[net->nodes[i].in].c > cmax) cmax = net->vals[net->nodes[i].in].c;
    x->sync_buf = nc_malloc(sizeof(double) * (2 * (size_t)cmax + 1));
    /* ready_after[i]: everything past the parameters of the nodes before i */
    x->ready_after = nc_malloc(sizeof(size_t) * (net->n_nodes > 0 ? net->n_nodes : 1));
    size_t end = 0;
    for (int i = 0; i < net->n_nodes; i++) {
        x->ready_after[i] = end;
        const NnNode *d = &net->nodes[i];
        int ps[2] = {d->w, d->b};
        for (int k = 0; k < 2; k++)
            if (ps[k] >= 0 && net->views[ps[k]].offset + net->views[ps[k]].size > end)
                end = net->views[ps[k]].offset + net->views[ps[k]].size;
    }
    int rc = backend == NN_BACKEND_DNNL ? nnx_create_dnnl(x, err) : nnx_create_ref(x, err);
    if (rc) {
        free(x->ready_after);
        free(x->sync_buf);
        free(x->features);
        free(x->embeddings);
        free(x);
        return rc;
    }
    *out = x;
    return NC_OK;
}

int nnx_forward(NetExec *x, const float *input, int training, NcError *err) {
    int rc = x->forward(x, input, training, err);
    x->trained_forward = rc == NC_OK && training;
    return rc;
}

int nnx_backward(NetExec *x, const float *d_embeddings, NcError *err) {
    if (!x->trained_forward) return nc_fail(err, NC_EUSAGE, "backward needs a training forward first");
    x->ready = x->net->n_param_floats;
    int rc = x->backward(x, d_embeddings, err);
    if (rc == NC_OK && x->grad_ready && x->ready > 0) {  /* nodes without gradients (the first layer's data) */
        x->ready = 0;
        x->grad_ready(x->grad_ctx, 0);
    }
    return rc;
}

void nnx_set_grad_ready(NetExec *x, NnGradReady fn, void *ctx) {
    x->grad_ready = fn;
    x->grad_ctx = ctx;
}

void nnx_node_done(NetExec *x, int node) {
    if (x->grad_ready && x->ready_after[node] < x->ready) {
        x->ready = x->ready_after[node];
        x->grad_ready(x->grad_ctx, x->ready);
    }
}

void nnx_set_sync(NetExec *x, NnAllreduce fn, void *ctx) {
    x->sync = fn;
    x->sync_ctx = ctx;
}

int nnx_sync_sum(NetExec *x, int n, NcError *err) { return x->sync(x->sync_ctx, x->sync_buf, n, err); }

const float *nnx_features(NetExec *x) { return x->features; }
const float *nnx_embeddings(NetExec *x) { return x->embeddings; }

int nnx_feature_dim(const NetExec *x) {
    const NnVal *v = &x->net->vals[x->net->features];
    return v->c * v->h * v->w;
}

int nnx_embed_dim(const NetExec *x) {
    const NnVal *v = &x->net->vals[x->net->embeddings];
    return v->c * v->h * v->w;
}

void nnx_free(NetExec *x) {
    if (!x) return;
    x->destroy(x);
    free(x->ready_after);
    free(x->sync_buf);
    free(x->features);
    free(x->embeddings);
    free(x);
}

void nnx_peek(NetExec *x, int v, int grad, float *out) { x->peek(x, v, grad, out); }

void nnx_profile(NetExec *x, int on) { if (x->profile) x->profile(x, on); }

void nnx_profile_node(const NetExec *x, int node, NnNodeProfile *p) {
    memset(p, 0, sizeof *p);
    p->runs_as = p->last = node;
    if (x->profile_node) x->profile_node(x, node, p);
    else snprintf(p->path[NN_PART_FWD], sizeof p->path[0], "reference loops");
}

/* nnx_mem_row: appends one row when it has bytes and there is room; the running count either way */
int nnx_mem_row(NnMemRow *rows, int cap, int n, const char *name, const char *kind, size_t bytes) {
    if (bytes == 0) return n;
    if (n < cap && rows) {
        snprintf(rows[n].name, sizeof rows[n].name, "%s", name);
        snprintf(rows[n].kind, sizeof rows[n].kind, "%s", kind);
        rows[n].bytes = bytes;
    }
    return n + 1;
}

int nnx_memory(const NetExec *x, NnMemRow *rows, int cap) {
    size_t fb = sizeof(float) * x->batch;
    int n = 0;
    n = nnx_mem_row(rows, cap, n, "features, embeddings", "executor outputs (plain copies)",
                    fb * (nnx_feature_dim(x) + nnx_embed_dim(x)));
    if (x->memory) n = x->memory(x, rows, cap, n);
    return n;
}
