// test_optim.c -- optimisers and learning-rate schedules against their closed forms.
#include "check.h"
#include "ncelab/net.h"
#include "ncelab/optim.h"

#include <stdlib.h>
#include <string.h>

static void test_schedules(void) {
    LrConfig c = {LR_COSINE, 0.4f, 10, 110, 0.0f, 0, 0.0f};
    CHECK(fabsf(lr_at(&c, 0) - 0.04f) < 1e-7f && fabsf(lr_at(&c, 9) - 0.4f) < 1e-7f, "cosine: linear warm-up 0.04 .. 0.4");
    CHECK(fabsf(lr_at(&c, 60) - 0.2f) < 1e-6f && fabsf(lr_at(&c, 110)) < 1e-7f && fabsf(lr_at(&c, 500)) < 1e-7f,
          "cosine: half way 0.2 (got %.6f), 0 at the end and after", lr_at(&c, 60));
    double worst = 0;
    for (long t = 10; t <= 110; t++)
        worst = fmax(worst, fabs(lr_at(&c, t) - 0.2 * (1 + cos(3.14159265358979 * (t - 10) / 100.0))));
    CHECK(worst < 1e-6, "cosine: closed form along the way, worst %.1e", worst);
    LrConfig s = {LR_STEP, 0.1f, 0, 0, 0.0f, 30, 0.1f};
    CHECK(lr_at(&s, 29) == 0.1f && fabsf(lr_at(&s, 30) - 0.01f) < 1e-9f && fabsf(lr_at(&s, 65) - 0.001f) < 1e-9f,
          "step: x0.1 every 30 steps");
    LrConfig k = {LR_CONSTANT, 0.3f, 0, 0, 0, 0, 0};
    CHECK(lr_at(&k, 12345) == 0.3f, "constant");
    LrKind kind;
    NcError err;
    CHECK(lr_parse("linear", &kind, &err) == NC_EUSAGE && strstr(err.msg, "--schedule"), "unknown schedule: %s", err.msg);
    OptConfig oc;
    CHECK(optim_parse("rmsprop", 0, &oc, &err) == NC_EUSAGE && strstr(err.msg, "--optim"), "unknown optimiser: %s", err.msg);
    CHECK(optim_parse("sgd", -1, &oc, &err) == NC_EUSAGE && strstr(err.msg, "--wd"), "negative decay: %s", err.msg);
}

/* One step from known parameters and gradients. */
static void test_steps(void) {
    NcError err;
    Net net;
    net_create(&net, "convnet", 1, 8, 8, &err);
    size_t n = net.n_param_floats;
    float *p0 = malloc(4 * n);
    for (size_t i = 0; i < n; i++) {
        net.params[i] = p0[i] = (float)(fixture_uniform(5, (uint32_t)i) - 0.5);
        net.grads[i] = (float)(fixture_uniform(6, (uint32_t)i) - 0.5);
    }
    const char *names[3] = {"sgd", "adamw", "lars"};
    float lr = 0.1f, wd = 0.01f;
    for (int o = 0; o < 3; o++) {
        memcpy(net.params, p0, 4 * n);
        OptConfig oc;
        Optim opt;
        optim_parse(names[o], wd, &oc, &err);
        optim_create(&opt, &net, &oc, &err);
        optim_step(&opt, lr);
        double worst = 0;
        for (int t = 0; t < net.n_params; t++) {
            const NnParam *v = &net.views[t];
            double pn = 0, gn = 0;
            for (size_t i = v->offset; i < v->offset + v->size; i++) {
                pn += (double)p0[i] * p0[i];
                gn += pow(net.grads[i] + wd * p0[i], 2);
            }
            double trust = 0.001 * sqrt(pn) / sqrt(gn);
            for (size_t i = v->offset; i < v->offset + v->size; i++) {
                double g = net.grads[i], p = p0[i], want;
                if (o == 0) want = p * (1 - lr * wd) - lr * g;                         /* first v = g */
                else if (o == 1) want = p * (1 - lr * wd) - lr * g / (fabs(g) + 1e-8);  /* m^ = g, v^ = g^2 */
                else want = v->ndim > 1 ? p - lr * trust * (g + wd * p) : p - lr * g;   /* BN and biases excluded */
                worst = fmax(worst, fabs(net.params[i] - want));
            }
        }
        CHECK(worst < 2e-6, "%s: first step equals its closed form, worst %.1e", names[o], worst);
        optim_free(&opt);
    }
    /* momentum accumulates: two SGD steps with the same gradient, no decay */
    memcpy(net.params, p0, 4 * n);
    OptConfig oc;
    Optim opt;
    optim_parse("sgd-nesterov", 0, &oc, &err);
    optim_create(&opt, &net, &oc, &err);
    optim_step(&opt, lr);
    optim_step(&opt, lr);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {  /* v1 = g, v2 = 1.9 g; steps g + 0.9 v: 1.9 g then 2.71 g */
        double want = p0[i] - lr * (1.9 + 2.71) * net.grads[i];
        worst = fmax(worst, fabs(net.params[i] - want));
    }
    CHECK(worst < 2e-6, "sgd-nesterov: two steps, worst %.1e", worst);
    optim_free(&opt);
    free(p0);
    net_free(&net);
}

int main(void) {
    test_schedules();
    test_steps();
    return check_done();
}
