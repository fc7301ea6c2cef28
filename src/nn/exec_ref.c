// exec_ref.c -- the reference backend: every layer through the plain loops of layers.h, NCHW.
#include "exec_internal.h"
#include "ncelab/layers.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    float *data[NN_MAX_VALS];   /* (batch, c, h, w) per value; data[input] points at the caller's input */
    float *grad[NN_MAX_VALS];
    float *mean[NN_MAX_NODES], *invstd[NN_MAX_NODES];  /* batch-norm caches */
    double count[NN_MAX_NODES];  /* batch norm: the values its statistics came from (all replicas') */
    float *block, *gblock;
} RefState;

static size_t val_len(const NetExec *x, int v) {
    const NnVal *s = &x->net->vals[v];
    return (size_t)x->batch * s->c * s->h * s->w;
}

static ConvShape conv_shape(const NetExec *x, const NnNode *d) {
    const NnVal *i = &x->net->vals[d->in], *o = &x->net->vals[d->out];
    return (ConvShape){x->batch, i->c, i->h, i->w, o->c, d->k, d->stride, d->pad, o->h, o->w};
}

/* A batch norm's training forward with the statistics of every replica's batch: buf = [sum x (c),
   sum x^2 (c), m] all-reduced. */
static int ref_bn_forward_sync(NetExec *x, int i, float *out, const float *in, NcError *err) {
    RefState *st = x->impl;
    Net *net = x->net;
    const NnNode *d = &net->nodes[i];
    const NnVal *vi = &net->vals[d->in];
    int c = vi->c, hw = vi->h * vi->w;
    float *rm = net->stats + net->stat_offset[d->stat], *rv = rm + c;
    double *buf = x->sync_buf;
    batchnorm_sums(buf, buf + c, in, x->batch, c, hw);
    buf[2 * c] = (double)x->batch * hw;
    int rc = nnx_sync_sum(x, 2 * c + 1, err);
    if (rc) return rc;
    st->count[i] = buf[2 * c];
    batchnorm_forward_sums(out, st->mean[i], st->invstd[i], rm, rv, in, net->params + net->views[d->w].offset,
                           net->params + net->views[d->b].offset, buf, buf + c, st->count[i], x->batch, c, hw,
                           net->bn_eps, net->bn_momentum);
    return NC_OK;
}

static int ref_forward(NetExec *x, const float *input, int training, NcError *err) {
    RefState *st = x->impl;
    Net *net = x->net;
    float *P = net->params;
    int B = x->batch, bad = -1;  /* the first layer whose output is not finite */
    st->data[net->input] = (float *)input;
    for (int i = 0; i < net->n_nodes; i++) {
        const NnNode *d = &net->nodes[i];
        const NnVal *vi = &net->vals[d->in];
        float *in = st->data[d->in], *out = st->data[d->out];
        int hw = vi->h * vi->w;
        switch (d->op) {
        case NN_CONV: {
            ConvShape s = conv_shape(x, d);
            conv2d_forward(out, in, P + net->views[d->w].offset, NULL, &s);
            break;
        }
        case NN_BN: {
            float *g = P + net->views[d->w].offset, *b = P + net->views[d->b].offset;
            float *rm = net->stats + net->stat_offset[d->stat], *rv = rm + vi->c;
            if (!training) {
                batchnorm_forward_eval(out, in, g, b, rm, rv, B, vi->c, hw, net->bn_eps);
            } else if (x->sync) {
                int rc = ref_bn_forward_sync(x, i, out, in, err);
                if (rc) return rc;
            } else {
                st->count[i] = (double)B * hw;
                batchnorm_forward_train(out, st->mean[i], st->invstd[i], rm, rv, in, g, b, B, vi->c, hw,
                                        net->bn_eps, net->bn_momentum);
            }
            break;
        }
        case NN_RELU: relu_forward(out, in, (long)val_len(x, d->in)); break;
        case NN_MAXPOOL: maxpool2d_forward(out, in, B, vi->c, vi->h, vi->w, d->k, d->stride); break;
        case NN_AVGPOOL: avgpool2d_forward(out, in, B, vi->c, vi->h, vi->w, d->k, d->stride); break;
        case NN_GAP: gap_forward(out, in, B, vi->c, hw); break;
        case NN_LINEAR:
            linear_forward(out, in, P + net->views[d->w].offset, d->b >= 0 ? P + net->views[d->b].offset : NULL, B,
                           vi->c * hw, net->vals[d->out].c);
            break;
        case NN_L2NORM: l2norm_forward(out, in, B, vi->c * hw); break;
        case NN_ADD: add_forward(out, in, st->data[d->in2], (long)val_len(x, d->in)); break;
        }
        if (bad < 0 && nn_first_nonfinite(out, (long)val_len(x, d->out)) >= 0) {
            bad = i;
            if (!(training && x->sync)) break;  /* a synchronised pass goes on: the other replicas wait on its
                                                   all-reduces (and its NaN reaches theirs through them) */
        }
    }
    if (bad >= 0)
        return nc_fail(err, NC_ENUM, "layer %s (%s): the output is not finite (NaN or Inf)", net->nodes[bad].name,
                       training ? "training" : "evaluation");
    memcpy(x->features, st->data[net->features], sizeof(float) * val_len(x, net->features));
    memcpy(x->embeddings, st->data[net->embeddings], sizeof(float) * val_len(x, net->embeddings));
    return NC_OK;
}

/* A batch norm's backward with its sums over every replica: buf = [sum dy (c), sum dy xhat (c)]
   all-reduced; gamma and beta get this replica's own sums (the caller all-reduces the gradients). */
static int ref_bn_backward_sync(NetExec *x, int i, float *gin, const float *gout, const float *in, NcError *err) {
    RefState *st = x->impl;
    Net *net = x->net;
    const NnNode *d = &net->nodes[i];
    const NnVal *vi = &net->vals[d->in];
    int c = vi->c, hw = vi->h * vi->w;
    float *dgamma = net->grads + net->views[d->w].offset, *dbeta = net->grads + net->views[d->b].offset;
    double *buf = x->sync_buf;
    batchnorm_backward_sums(buf, buf + c, gout, in, st->mean[i], st->invstd[i], x->batch, c, hw);
    for (int ch = 0; ch < c; ch++) {
        dgamma[ch] += (float)buf[c + ch];
        dbeta[ch] += (float)buf[ch];
    }
    int rc = nnx_sync_sum(x, 2 * c, err);
    if (rc) return rc;
    if (gin)
        batchnorm_backward_from_sums(gin, gout, in, st->mean[i], st->invstd[i], net->params + net->views[d->w].offset,
                                     buf, buf + c, st->count[i], x->batch, c, hw);
    return NC_OK;
}

static int ref_backward(NetExec *x, const float *d_emb, NcError *err) {
    RefState *st = x->impl;
    Net *net = x->net;
    float *P = net->params, *G = net->grads;
    int B = x->batch;
    for (int v = 0; v < net->n_vals; v++)
        if (st->grad[v]) memset(st->grad[v], 0, sizeof(float) * val_len(x, v));
    memcpy(st->grad[net->embeddings], d_emb, sizeof(float) * val_len(x, net->embeddings));
    for (int i = net->n_nodes - 1; i >= 0; nnx_node_done(x, i), i--) {  /* then its gradients are final */
        const NnNode *d = &net->nodes[i];
        const NnVal *vi = &net->vals[d->in];
        float *in = st->data[d->in], *out = st->data[d->out];
        float *gin = st->grad[d->in], *gout = st->grad[d->out];  /* gin is NULL for the input */
        int hw = vi->h * vi->w;
        switch (d->op) {
        case NN_CONV: {
            ConvShape s = conv_shape(x, d);
            conv2d_backward(gin, G + net->views[d->w].offset, NULL, gout, in, P + net->views[d->w].offset, &s);
            break;
        }
        case NN_BN:
            if (x->sync) {
                int rc = ref_bn_backward_sync(x, i, gin, gout, in, err);
                if (rc) return rc;
                break;
            }
            batchnorm_backward(gin, G + net->views[d->w].offset, G + net->views[d->b].offset, gout, in, st->mean[i],
                               st->invstd[i], P + net->views[d->w].offset, B, vi->c, hw);
            break;
        case NN_RELU: relu_backward(gin, gout, out, (long)val_len(x, d->in)); break;
        case NN_MAXPOOL: maxpool2d_backward(gin, gout, in, out, B, vi->c, vi->h, vi->w, d->k, d->stride); break;
        case NN_AVGPOOL: avgpool2d_backward(gin, gout, B, vi->c, vi->h, vi->w, d->k, d->stride); break;
        case NN_GAP: gap_backward(gin, gout, B, vi->c, hw); break;
        case NN_LINEAR:
            linear_backward(gin, G + net->views[d->w].offset, d->b >= 0 ? G + net->views[d->b].offset : NULL, gout, in,
                            P + net->views[d->w].offset, B, vi->c * hw, net->vals[d->out].c);
            break;
        case NN_L2NORM: l2norm_backward(gin, gout, out, in, B, vi->c * hw); break;
        case NN_ADD: add_backward(gin, st->grad[d->in2], gout, (long)val_len(x, d->in)); break;
        }
    }
    return NC_OK;
}

static void ref_peek(NetExec *x, int v, int grad, float *out) {
    RefState *st = x->impl;
    const float *src = grad ? st->grad[v] : st->data[v];
    if (src) memcpy(out, src, sizeof(float) * val_len(x, v));
}

static void ref_destroy(NetExec *x) {
    RefState *st = x->impl;
    free(st->block);
    free(st->gblock);
    free(st);
}

int nnx_create_ref(NetExec *x, NcError *err) {
    (void)err;
    Net *net = x->net;
    RefState *st = nc_calloc(1, sizeof *st);
    size_t total = 0, cache = 0;
    for (int v = 0; v < net->n_vals; v++)
        if (v != net->input) total += val_len(x, v);
    for (int i = 0; i < net->n_nodes; i++)
        if (net->nodes[i].op == NN_BN) cache += 2 * (size_t)net->vals[net->nodes[i].in].c;
    st->block = nc_malloc(sizeof(float) * (total + cache));
    st->gblock = nc_malloc(sizeof(float) * total);
    size_t off = 0;
    for (int v = 0; v < net->n_vals; v++) {
        if (v == net->input) continue;
        st->data[v] = st->block + off;
        st->grad[v] = st->gblock + off;
        off += val_len(x, v);
    }
    for (int i = 0; i < net->n_nodes; i++)
        if (net->nodes[i].op == NN_BN) {
            int c = net->vals[net->nodes[i].in].c;
            st->mean[i] = st->block + off;
            st->invstd[i] = st->block + off + c;
            off += 2 * (size_t)c;
        }
    x->impl = st;
    x->forward = ref_forward;
    x->backward = ref_backward;
    x->destroy = ref_destroy;
    x->peek = ref_peek;
    return NC_OK;
}
