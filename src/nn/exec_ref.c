// exec_ref.c -- the reference backend: every layer through the plain loops of layers.h, NCHW.
#include "exec_internal.h"
#include "ncelab/layers.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    float *data[NN_MAX_VALS];   /* (batch, c, h, w) per value; data[input] points at the caller's input */
    float *grad[NN_MAX_VALS];
    float *mean[NN_MAX_NODES], *invstd[NN_MAX_NODES];  /* batch-norm caches */
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

static int ref_forward(NetExec *x, const float *input, int training, NcError *err) {
    RefState *st = x->impl;
    Net *net = x->net;
    float *P = net->params;
    int B = x->batch;
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
            if (training)
                batchnorm_forward_train(out, st->mean[i], st->invstd[i], rm, rv, in, g, b, B, vi->c, hw,
                                        net->bn_eps, net->bn_momentum);
            else
                batchnorm_forward_eval(out, in, g, b, rm, rv, B, vi->c, hw, net->bn_eps);
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
        if (nn_first_nonfinite(out, (long)val_len(x, d->out)) >= 0)
            return nc_fail(err, NC_ENUM, "layer %s (%s): the output is not finite (NaN or Inf)", d->name,
                           training ? "training" : "evaluation");
    }
    memcpy(x->features, st->data[net->features], sizeof(float) * val_len(x, net->features));
    memcpy(x->embeddings, st->data[net->embeddings], sizeof(float) * val_len(x, net->embeddings));
    return NC_OK;
}

static int ref_backward(NetExec *x, const float *d_emb, NcError *err) {
    (void)err;
    RefState *st = x->impl;
    Net *net = x->net;
    float *P = net->params, *G = net->grads;
    int B = x->batch;
    for (int v = 0; v < net->n_vals; v++)
        if (st->grad[v]) memset(st->grad[v], 0, sizeof(float) * val_len(x, v));
    memcpy(st->grad[net->embeddings], d_emb, sizeof(float) * val_len(x, net->embeddings));
    for (int i = net->n_nodes - 1; i >= 0; i--) {
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
