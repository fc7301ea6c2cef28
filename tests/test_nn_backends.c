// test_nn_backends.c -- the oneDNN backend against the reference loops: outputs, gradients and
// running statistics of both models, in training and evaluation mode; and two oneDNN executors
// alive at once against one alone, bit for bit.
#include "check.h"
#include "ncelab/net.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static double max_rel(const float *a, const float *b, size_t n, int *at) {
    double scale = 0, worst = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    *at = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]) / (scale > 0 ? scale : 1);
        if (e > worst) { worst = e; *at = (int)i; }
    }
    return worst;
}

static void compare(const char *model, int c, int h, int w, int batch) {
    NcError err = {0};
    Net a, b;
    net_create(&a, model, c, h, w, &err);
    net_create(&b, model, c, h, w, &err);
    net_init_fixture(&a);
    net_init_fixture(&b);
    size_t in_len = (size_t)batch * c * h * w;
    float *x = malloc(sizeof(float) * in_len);
    for (size_t i = 0; i < in_len; i++) x[i] = (float)(2 * fixture_uniform(1000, (uint32_t)i) - 1);
    NetExec *ra, *rb;
    int rc1 = nnx_create(&ra, &a, batch, NN_BACKEND_REF, &err);
    int rc2 = nnx_create(&rb, &b, batch, NN_BACKEND_DNNL, &err);
    CHECK(rc1 == 0 && rc2 == 0, "%s %dx%dx%d batch %d: both backends built (%s)", model, c, h, w, batch, rc2 ? err.msg : "ok");
    if (rc1 || rc2) return;
    int D = nnx_embed_dim(ra), F = nnx_feature_dim(ra), at;
    nnx_forward(ra, x, 1, &err);
    nnx_forward(rb, x, 1, &err);
    double ef = max_rel(nnx_features(rb), nnx_features(ra), (size_t)batch * F, &at);
    double ee = max_rel(nnx_embeddings(rb), nnx_embeddings(ra), (size_t)batch * D, &at);
    CHECK(ef < 1e-4 && ee < 1e-4, "  training forward: features worst rel %.2e, embeddings %.2e", ef, ee);
    double es = max_rel(b.stats, a.stats, a.n_stat_floats, &at);
    CHECK(es < 1e-4, "  running statistics worst rel %.2e", es);
    /* d loss / d z = a fixed pattern */
    float *dz = malloc(sizeof(float) * batch * D);
    for (int i = 0; i < batch * D; i++) dz[i] = (float)(fixture_uniform(77, (uint32_t)i) - 0.5);
    memset(a.grads, 0, sizeof(float) * a.n_param_floats);
    memset(b.grads, 0, sizeof(float) * b.n_param_floats);
    nnx_backward(ra, dz, &err);
    nnx_backward(rb, dz, &err);
    double worst = 0;
    const char *wname = "";
    for (int p = 0; p < a.n_params; p++) {
        double e = max_rel(b.grads + b.views[p].offset, a.grads + a.views[p].offset, a.views[p].size, &at);
        if (e > worst) { worst = e; wname = a.views[p].name; }
    }
    CHECK(worst < 1e-3, "  parameter gradients: worst rel %.2e (%s)", worst, wname);
    nnx_forward(ra, x, 0, &err);
    nnx_forward(rb, x, 0, &err);
    ee = max_rel(nnx_embeddings(rb), nnx_embeddings(ra), (size_t)batch * D, &at);
    CHECK(ee < 1e-4, "  evaluation forward: embeddings worst rel %.2e", ee);
    nnx_free(ra);
    nnx_free(rb);
    net_free(&a);
    net_free(&b);
    free(x);
    free(dz);
}

/* One training step of in on net's executor e: embeddings (ne floats) and gradients out, then
   p -= 0.05 g. */
static void sgd_step(NetExec *e, Net *net, const float *in, const float *dz, size_t ne, float *emb, float *grads) {
    NcError err = {0};
    memset(net->grads, 0, sizeof(float) * net->n_param_floats);
    nnx_forward(e, in, 1, &err);
    memcpy(emb, nnx_embeddings(e), sizeof(float) * ne);
    nnx_backward(e, dz, &err);
    memcpy(grads, net->grads, sizeof(float) * net->n_param_floats);
    for (size_t i = 0; i < net->n_param_floats; i++) net->params[i] -= 0.05f * net->grads[i];
}

typedef struct { NetExec *e; Net *net; const float *in, *dz; size_t ne; float *emb, *grads; } Step;

static void *step_thread(void *arg) {
    Step *t = arg;
    sgd_step(t->e, t->net, t->in, t->dz, t->ne, t->emb, t->grads);
    return NULL;
}

/* Two oneDNN executors of one model stepping at the same time on two threads, against one run
   alone: the same bits. An executor's Winograd layers (under ONEDNN_MAX_CPU_ISA=AVX2) share one
   set of work buffers, which another executor must not touch. */
static void twins(const char *model, int c, int h, int w, int batch) {
    NcError err = {0};
    Net net[3];
    NetExec *e[3];
    int rc = 0;
    for (int j = 0; j < 3; j++) {
        net_create(&net[j], model, c, h, w, &err);
        net_init_fixture(&net[j]);
        rc |= nnx_create(&e[j], &net[j], batch, NN_BACKEND_DNNL, &err);
    }
    CHECK(rc == 0, "%s %dx%dx%d batch %d: three oneDNN executors built (%s)", model, c, h, w, batch, rc ? err.msg : "ok");
    if (rc) return;
    size_t in_len = (size_t)batch * c * h * w, ne = (size_t)batch * nnx_embed_dim(e[0]), np = net[0].n_param_floats;
    float *x = malloc(sizeof(float) * in_len), *dz = malloc(sizeof(float) * ne);
    float *emb = malloc(sizeof(float) * 3 * ne), *grads = malloc(sizeof(float) * 3 * np);
    for (size_t i = 0; i < in_len; i++) x[i] = (float)(2 * fixture_uniform(1000, (uint32_t)i) - 1);
    for (size_t i = 0; i < ne; i++) dz[i] = (float)(fixture_uniform(77, (uint32_t)i) - 0.5);
    for (int step = 0; step < 2; step++) {
        Step st[3];
        for (int j = 0; j < 3; j++) st[j] = (Step){e[j], &net[j], x, dz, ne, emb + j * ne, grads + j * np};
        step_thread(&st[0]);   /* alone, then the twins together */
        pthread_t th[2];
        for (int j = 0; j < 2; j++) pthread_create(&th[j], NULL, step_thread, &st[j + 1]);
        for (int j = 0; j < 2; j++) pthread_join(th[j], NULL);
        int same_e = !memcmp(emb, emb + ne, sizeof(float) * ne) && !memcmp(emb, emb + 2 * ne, sizeof(float) * ne);
        int same_g = !memcmp(grads, grads + np, sizeof(float) * np) && !memcmp(grads, grads + 2 * np, sizeof(float) * np);
        CHECK(same_e && same_g, "  step %d, two executors at once: embeddings %s, gradients %s as one alone", step,
              same_e ? "the same bits" : "DIFFER", same_g ? "the same bits" : "DIFFER");
    }
    for (int j = 0; j < 3; j++) { nnx_free(e[j]); net_free(&net[j]); }
    free(x); free(dz); free(emb); free(grads);
}

int main(void) {
    if (avx2_twin_skip()) return 77;
    compare("convnet", 3, 32, 32, 8);
    compare("convnet", 1, 28, 28, 6);
    compare("convnet", 3, 12, 9, 4);
    compare("resnet18", 3, 16, 16, 4);
    twins("resnet18", 3, 32, 32, 4);
    return check_done();
}
