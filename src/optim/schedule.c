// schedule.c -- learning-rate schedules: constant, cosine with linear warm-up, step decay.
#include "ncelab/optim.h"

#include <math.h>
#include <string.h>

float lr_at(const LrConfig *c, long t) {
    switch (c->kind) {
    case LR_CONSTANT: return c->base;
    case LR_STEP: {
        long k = c->step_size > 0 ? t / c->step_size : 0;
        return c->base * powf(c->gamma, (float)k);
    }
    case LR_COSINE: {
        if (t < c->warmup) return c->base * (float)(t + 1) / (float)c->warmup;
        long span = c->total - c->warmup;
        if (span <= 0) return c->base;
        double f = (double)(t - c->warmup) / (double)span;
        if (f > 1.0) f = 1.0;
        return c->min_lr + (c->base - c->min_lr) * (float)(0.5 * (1.0 + cos(3.14159265358979323846 * f)));
    }
    }
    return c->base;
}

int lr_parse(const char *name, LrKind *kind, NcError *err) {
    if (strcmp(name, "constant") == 0) *kind = LR_CONSTANT;
    else if (strcmp(name, "cosine") == 0) *kind = LR_COSINE;
    else if (strcmp(name, "step") == 0) *kind = LR_STEP;
    else return nc_fail(err, NC_EUSAGE, "--schedule: unknown schedule '%s' (constant, cosine, step)", name);
    return NC_OK;
}
