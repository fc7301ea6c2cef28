// test_nn_backends.c -- the oneDNN backend against the reference loops: outputs, gradients and
// running statistics of both models, in training and evaluation mode.
#include "check.h"
#include "ncelab/net.h"

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

int main(void) {
    compare("convnet", 3, 32, 32, 8);
    compare("convnet", 1, 28, 28, 6);
    compare("convnet", 3, 12, 9, 4);
    compare("resnet18", 3, 16, 16, 4);
    return check_done();
}
