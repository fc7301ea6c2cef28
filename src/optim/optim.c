// optim.c -- SGD (momentum, Nesterov, decoupled weight decay), AdamW and LARS over one parameter block.
#include "ncelab/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int optim_parse(const char *name, float weight_decay, OptConfig *c, NcError *err) {
    memset(c, 0, sizeof *c);
    c->momentum = 0.9f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->eta = 0.001f;
    c->weight_decay = weight_decay;
    if (!(weight_decay >= 0) || !isfinite(weight_decay))
        return nc_fail(err, NC_EUSAGE, "--wd: weight decay must be >= 0, got %g", weight_decay);
    if (strcmp(name, "sgd") == 0) c->type = OPT_SGD;
    else if (strcmp(name, "sgd-nesterov") == 0) { c->type = OPT_SGD; c->nesterov = 1; }
    else if (strcmp(name, "adamw") == 0) c->type = OPT_ADAMW;
    else if (strcmp(name, "lars") == 0) c->type = OPT_LARS;
    else return nc_fail(err, NC_EUSAGE, "--optim: unknown optimiser '%s' (sgd, sgd-nesterov, adamw, lars)", name);
    return NC_OK;
}

int optim_create(Optim *o, Net *net, const OptConfig *c, NcError *err) {
    (void)err;
    o->cfg = *c;
    o->net = net;
    o->step = 0;
    o->state = nc_calloc_big(2 * net->n_param_floats, sizeof(float));
    return NC_OK;
}

void optim_free(Optim *o) {
    free(o->state);
    o->state = NULL;
}

static void step_sgd(Optim *o, float lr) {
    Net *net = o->net;
    size_t n = net->n_param_floats;
    float mu = o->cfg.momentum, decay = 1.0f - lr * o->cfg.weight_decay;
    float *p = net->params, *g = net->grads, *v = o->state;
    int nest = o->cfg.nesterov;
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        v[i] = mu * v[i] + g[i];
        p[i] = p[i] * decay - lr * (nest ? g[i] + mu * v[i] : v[i]);
    }
}

static void step_adamw(Optim *o, float lr) {
    Net *net = o->net;
    size_t n = net->n_param_floats;
    const OptConfig *c = &o->cfg;
    float *p = net->params, *g = net->grads, *m = o->state, *v = o->state + n;
    double bc1 = 1.0 - pow(c->beta1, (double)o->step), bc2 = 1.0 - pow(c->beta2, (double)o->step);
    float step_size = (float)(lr / bc1), sbc2 = (float)sqrt(bc2), decay = 1.0f - lr * c->weight_decay;
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        p[i] *= decay;
        m[i] = c->beta1 * m[i] + (1.0f - c->beta1) * g[i];
        v[i] = c->beta2 * v[i] + (1.0f - c->beta2) * g[i] * g[i];
        p[i] -= step_size * m[i] / (sqrtf(v[i]) / sbc2 + c->eps);
    }
}

/* LARS (You et al. 2017, as in SimCLR): per tensor, g' = g + wd p and the trust ratio
   eta |p| / |g'| scale the step; one-dimensional tensors use g' = g and trust 1. */
static void step_lars(Optim *o, float lr) {
    Net *net = o->net;
    const OptConfig *c = &o->cfg;
    for (int t = 0; t < net->n_params; t++) {
        const NnParam *pv = &net->views[t];
        float *p = net->params + pv->offset, *g = net->grads + pv->offset, *v = o->state + pv->offset;
        size_t n = pv->size;
        int adapt = pv->ndim > 1;
        float wd = adapt ? c->weight_decay : 0.0f, trust = 1.0f;
        if (adapt) {
            double pn = 0.0, gn = 0.0;
            for (size_t i = 0; i < n; i++) {
                double gi = g[i] + wd * p[i];
                pn += (double)p[i] * p[i];
                gn += gi * gi;
            }
            if (pn > 0 && gn > 0) trust = (float)(c->eta * sqrt(pn) / sqrt(gn));
        }
        float scale = lr * trust;
        for (size_t i = 0; i < n; i++) {
            v[i] = c->momentum * v[i] + scale * (g[i] + wd * p[i]);
            p[i] -= v[i];
        }
    }
}

void optim_step(Optim *o, float lr) {
    o->step++;
    switch (o->cfg.type) {
    case OPT_SGD: step_sgd(o, lr); break;
    case OPT_ADAMW: step_adamw(o, lr); break;
    case OPT_LARS: step_lars(o, lr); break;
    }
}
