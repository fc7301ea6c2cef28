// models.c -- the model graphs (convnet, resnet18) and their parameter blocks and initialisation.
#include "ncelab/net.h"
#include "ncelab/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int add_val(Net *n, int c, int h, int w) {
    n->vals[n->n_vals] = (NnVal){c, h, w};
    return n->n_vals++;
}

static int add_param(Net *n, const char *name, NnParamKind kind, int ndim, int s0, int s1, int s2, int s3, int fan_in) {
    NnParam *p = &n->views[n->n_params];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->kind = kind;
    p->ndim = ndim;
    int sh[4] = {s0, s1, s2, s3};
    p->size = 1;
    for (int i = 0; i < 4; i++) {
        p->shape[i] = i < ndim ? sh[i] : 1;
        if (i < ndim) p->size *= (size_t)sh[i];
    }
    p->offset = n->n_param_floats;
    p->fan_in = fan_in;
    n->n_param_floats += p->size;
    return n->n_params++;
}

static NnNode *add_node(Net *n, NnOp op, const char *name, int in) {
    NnNode *d = &n->nodes[n->n_nodes++];
    memset(d, 0, sizeof *d);
    d->op = op;
    d->in = in;
    d->in2 = d->w = d->b = d->stat = -1;
    snprintf(d->name, sizeof d->name, "%s", name);
    return d;
}

static int conv(Net *n, const char *name, int in, int cout, int k, int stride, int pad) {
    NnVal v = n->vals[in];
    char pn[64];
    snprintf(pn, sizeof pn, "%s.weight", name);
    NnNode *d = add_node(n, NN_CONV, name, in);
    d->k = k; d->stride = stride; d->pad = pad;
    d->w = add_param(n, pn, NN_P_WEIGHT, 4, cout, v.c, k, k, v.c * k * k);
    d->out = add_val(n, cout, (v.h + 2 * pad - k) / stride + 1, (v.w + 2 * pad - k) / stride + 1);
    return d->out;
}

static int bn(Net *n, const char *name, int in) {
    NnVal v = n->vals[in];
    char pn[64];
    NnNode *d = add_node(n, NN_BN, name, in);
    snprintf(pn, sizeof pn, "%s.weight", name);
    d->w = add_param(n, pn, NN_P_BN_GAMMA, 1, v.c, 0, 0, 0, 0);
    snprintf(pn, sizeof pn, "%s.bias", name);
    d->b = add_param(n, pn, NN_P_BN_BETA, 1, v.c, 0, 0, 0, 0);
    d->stat = n->n_stats;
    snprintf(n->stat_names[n->n_stats], sizeof n->stat_names[0], "%s", name);
    n->stat_c[n->n_stats] = v.c;
    n->stat_offset[n->n_stats] = n->n_stat_floats;
    n->n_stat_floats += 2 * (size_t)v.c;
    n->n_stats++;
    d->out = add_val(n, v.c, v.h, v.w);
    return d->out;
}

static int simple(Net *n, NnOp op, const char *name, int in, int k, int s) {
    NnVal v = n->vals[in];
    NnNode *d = add_node(n, op, name, in);
    d->k = k; d->stride = s;
    if (op == NN_MAXPOOL || op == NN_AVGPOOL) d->out = add_val(n, v.c, (v.h - k) / s + 1, (v.w - k) / s + 1);
    else if (op == NN_GAP) d->out = add_val(n, v.c, 1, 1);
    else d->out = add_val(n, v.c, v.h, v.w);
    return d->out;
}

static int linear(Net *n, const char *name, int in, int fout) {
    NnVal v = n->vals[in];
    int fin = v.c * v.h * v.w;
    char pn[64];
    NnNode *d = add_node(n, NN_LINEAR, name, in);
    snprintf(pn, sizeof pn, "%s.weight", name);
    d->w = add_param(n, pn, NN_P_WEIGHT, 2, fout, fin, 0, 0, fin);
    snprintf(pn, sizeof pn, "%s.bias", name);
    d->b = add_param(n, pn, NN_P_BIAS, 1, fout, 0, 0, 0, fin);
    d->out = add_val(n, fout, 1, 1);
    return d->out;
}

static int add(Net *n, const char *name, int a, int b) {
    NnVal v = n->vals[a];
    NnNode *d = add_node(n, NN_ADD, name, a);
    d->in2 = b;
    d->out = add_val(n, v.c, v.h, v.w);
    return d->out;
}

/* The projection head and normalisation shared by both models. */
static void head(Net *n, int feat, int hidden, int dim) {
    n->features = feat;
    int h = linear(n, "head.0", feat, hidden);
    h = simple(n, NN_RELU, "head.1", h, 0, 0);
    h = linear(n, "head.2", h, dim);
    n->embeddings = simple(n, NN_L2NORM, "normalize", h, 0, 0);
}

static void build_convnet(Net *n) {
    int x = n->input;
    const char *cn[3] = {"conv1", "conv2", "conv3"}, *bnn[3] = {"bn1", "bn2", "bn3"};
    int width[3] = {32, 64, 128};
    for (int i = 0; i < 3; i++) {
        char r[16];
        snprintf(r, sizeof r, "relu%d", i + 1);
        x = conv(n, cn[i], x, width[i], 3, 1, 1);
        x = bn(n, bnn[i], x);
        x = simple(n, NN_RELU, r, x, 0, 0);
        if (i < 2) {
            snprintf(r, sizeof r, "pool%d", i + 1);
            x = simple(n, NN_MAXPOOL, r, x, 2, 2);
        }
    }
    x = simple(n, NN_GAP, "avgpool", x, 0, 0);
    head(n, x, 128, 128);
}

static int basic_block(Net *n, const char *pre, int x, int cout, int stride) {
    char nm[48], nm2[48];
    int cin = n->vals[x].c;
    snprintf(nm, sizeof nm, "%s.conv1", pre);
    int y = conv(n, nm, x, cout, 3, stride, 1);
    snprintf(nm, sizeof nm, "%s.bn1", pre);
    y = bn(n, nm, y);
    snprintf(nm, sizeof nm, "%s.relu1", pre);
    y = simple(n, NN_RELU, nm, y, 0, 0);
    snprintf(nm, sizeof nm, "%s.conv2", pre);
    y = conv(n, nm, y, cout, 3, 1, 1);
    snprintf(nm, sizeof nm, "%s.bn2", pre);
    y = bn(n, nm, y);
    int sc = x;
    if (stride != 1 || cin != cout) {
        snprintf(nm, sizeof nm, "%s.shortcut.0", pre);
        sc = conv(n, nm, x, cout, 1, stride, 0);
        snprintf(nm2, sizeof nm2, "%s.shortcut.1", pre);
        sc = bn(n, nm2, sc);
    }
    snprintf(nm, sizeof nm, "%s.add", pre);
    y = add(n, nm, y, sc);
    snprintf(nm, sizeof nm, "%s.relu2", pre);
    return simple(n, NN_RELU, nm, y, 0, 0);
}

static void build_resnet18(Net *n) {
    int x = conv(n, "conv1", n->input, 64, 3, 1, 1);
    x = bn(n, "bn1", x);
    x = simple(n, NN_RELU, "relu", x, 0, 0);
    int width[4] = {64, 128, 256, 512};
    for (int l = 0; l < 4; l++)
        for (int b = 0; b < 2; b++) {
            char pre[32];
            snprintf(pre, sizeof pre, "layer%d.%d", l + 1, b);
            x = basic_block(n, pre, x, width[l], (l > 0 && b == 0) ? 2 : 1);
        }
    x = simple(n, NN_GAP, "avgpool", x, 0, 0);
    head(n, x, 512, 128);
}

int net_create(Net *net, const char *model, int c, int h, int w, NcError *err) {
    memset(net, 0, sizeof *net);
    int is_conv = strcmp(model, "convnet") == 0, is_res = strcmp(model, "resnet18") == 0;
    if (!is_conv && !is_res) return nc_fail(err, NC_EUSAGE, "--model: unknown model '%s' (convnet or resnet18)", model);
    if (c != 1 && c != 3) return nc_fail(err, NC_EUSAGE, "%s: images must have 1 or 3 channels, not %d", model, c);
    if (is_res && c != 3) return nc_fail(err, NC_EUSAGE, "resnet18: takes 3-channel images, not %d", c);
    if (h < 8 || w < 8) return nc_fail(err, NC_EUSAGE, "%s: input %dx%d is too small (at least 8x8)", model, h, w);
    if (h > 1024 || w > 1024) return nc_fail(err, NC_EUSAGE, "%s: input %dx%d is too large", model, h, w);
    snprintf(net->model, sizeof net->model, "%s", model);
    net->in_c = c; net->in_h = h; net->in_w = w;
    net->bn_eps = 1e-5f;
    net->bn_momentum = 0.1f;
    net->input = add_val(net, c, h, w);
    if (is_conv) build_convnet(net); else build_resnet18(net);
    net->params = nc_calloc_big(net->n_param_floats, sizeof(float));
    net->grads = nc_calloc_big(net->n_param_floats, sizeof(float));
    net->stats = nc_calloc(net->n_stat_floats, sizeof(float));
    for (int s = 0; s < net->n_stats; s++)
        for (int i = 0; i < net->stat_c[s]; i++) net->stats[net->stat_offset[s] + net->stat_c[s] + i] = 1.0f;
    return NC_OK;
}

void net_free(Net *net) {
    free(net->params); free(net->grads); free(net->stats);
    net->params = net->grads = net->stats = NULL;
}

const NnParam *net_param(const Net *net, const char *name) {
    for (int i = 0; i < net->n_params; i++)
        if (strcmp(net->views[i].name, name) == 0) return &net->views[i];
    return NULL;
}

double fixture_uniform(uint32_t t, uint32_t i) {
    uint32_t x = i * 2654435761u + t * 40503u + 12345u;
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
    return (double)x / 4294967296.0;
}

void net_init_fixture(Net *net) {
    for (int t = 0; t < net->n_params; t++) {
        const NnParam *p = &net->views[t];
        float *v = net->params + p->offset;
        double b = p->fan_in > 0 ? 1.0 / sqrt((double)p->fan_in) : 0.0;
        for (size_t i = 0; i < p->size; i++) {
            double u = 2.0 * fixture_uniform((uint32_t)t, (uint32_t)i) - 1.0;
            v[i] = p->kind == NN_P_BN_GAMMA ? (float)(1.0 + 0.1 * u)
                 : p->kind == NN_P_BN_BETA ? (float)(0.1 * u) : (float)(b * u);
        }
    }
}

void net_init_random(Net *net, uint64_t seed) {
    for (int t = 0; t < net->n_params; t++) {
        const NnParam *p = &net->views[t];
        float *v = net->params + p->offset;
        Rng r;
        rng_init(&r, seed, 0x494e4954u, (uint32_t)t, 0);
        /* kaiming_uniform(a = sqrt 5) gives bound sqrt(6 / ((1 + 5) fan_in)) = 1 / sqrt(fan_in) */
        double b = p->fan_in > 0 ? 1.0 / sqrt((double)p->fan_in) : 0.0;
        for (size_t i = 0; i < p->size; i++)
            v[i] = p->kind == NN_P_BN_GAMMA ? 1.0f : p->kind == NN_P_BN_BETA ? 0.0f
                 : (float)(b * (2.0 * rng_uniform(&r) - 1.0));
    }
    for (int s = 0; s < net->n_stats; s++)
        for (int i = 0; i < net->stat_c[s]; i++) {
            net->stats[net->stat_offset[s] + i] = 0.0f;
            net->stats[net->stat_offset[s] + net->stat_c[s] + i] = 1.0f;
        }
}
