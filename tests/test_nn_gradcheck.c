// test_nn_gradcheck.c -- every reference layer and the contrastive losses against central finite
// differences on small shapes, and whole models (reference and oneDNN) on sampled parameters.
#include "check.h"
#include "ncelab/layers.h"
#include "ncelab/loss.h"
#include "ncelab/net.h"
#include "ncelab/rng.h"

#include <stdlib.h>
#include <string.h>

static Rng rng;

static void fill(float *v, size_t n, double scale) {
    for (size_t i = 0; i < n; i++) v[i] = (float)(scale * rng_normal(&rng));
}

/* A layer under test: forward(out, in) with everything else bound; the objective is
   sum_i w_i out_i, evaluated in double. */
typedef void (*FwdFn)(float *out, const float *in, void *ctx);

static double objective(FwdFn f, void *ctx, float *out, const float *in, const float *w, size_t nout) {
    f(out, in, ctx);
    double s = 0.0;
    for (size_t i = 0; i < nout; i++) s += (double)w[i] * out[i];
    return s;
}

/* Worst |analytic - numeric| / max|numeric| over all inputs (float central differences). */
static double fd_check(FwdFn f, void *ctx, float *in, size_t nin, const float *w, size_t nout,
                       const float *grad, float eps) {
    float *out = malloc(sizeof(float) * nout);
    double worst = 0.0, scale = 0.0;
    double *num = malloc(sizeof(double) * nin);
    for (size_t i = 0; i < nin; i++) {
        float keep = in[i];
        in[i] = keep + eps;
        double a = objective(f, ctx, out, in, w, nout);
        in[i] = keep - eps;
        double b = objective(f, ctx, out, in, w, nout);
        in[i] = keep;
        num[i] = (a - b) / (2.0 * eps);
        scale = fmax(scale, fabs(num[i]));
    }
    for (size_t i = 0; i < nin; i++) worst = fmax(worst, fabs(grad[i] - num[i]) / fmax(scale, 1e-6));
    free(out);
    free(num);
    return worst;
}

/* ---- each layer bound to a context ---- */
typedef struct { ConvShape s; float *w, *b; int wrt; float *x; } ConvCtx;  /* wrt: 0 input, 1 weight, 2 bias */
static void conv_fwd(float *out, const float *in, void *c) {
    ConvCtx *k = c;
    if (k->wrt == 0) conv2d_forward(out, in, k->w, k->b, &k->s);
    else if (k->wrt == 1) conv2d_forward(out, k->x, in, k->b, &k->s);
    else conv2d_forward(out, k->x, k->w, in, &k->s);
}

static void test_conv(int k, int stride, int pad) {
    ConvShape s = {2, 3, 7, 6, 4, k, stride, pad, 0, 0};
    s.oh = (s.h + 2 * pad - k) / stride + 1;
    s.ow = (s.w + 2 * pad - k) / stride + 1;
    size_t nx = (size_t)s.n * s.cin * s.h * s.w, nw = (size_t)s.cout * s.cin * k * k, no = (size_t)s.n * s.cout * s.oh * s.ow;
    float *x = malloc(4 * nx), *w = malloc(4 * nw), *b = malloc(4 * s.cout), *g = malloc(4 * no);
    float *dx = calloc(nx, 4), *dw = calloc(nw, 4), *db = calloc(s.cout, 4);
    fill(x, nx, 1); fill(w, nw, 0.5); fill(b, s.cout, 0.5); fill(g, no, 1);
    conv2d_backward(dx, dw, db, g, x, w, &s);
    ConvCtx c = {s, w, b, 0, x};
    double e0 = fd_check(conv_fwd, &c, x, nx, g, no, dx, 1e-2f);
    c.wrt = 1;
    double e1 = fd_check(conv_fwd, &c, w, nw, g, no, dw, 1e-2f);
    c.wrt = 2;
    double e2 = fd_check(conv_fwd, &c, b, s.cout, g, no, db, 1e-2f);
    CHECK(fmax(e0, fmax(e1, e2)) < 1e-3, "conv2d k=%d stride=%d pad=%d: input %.1e, weight %.1e, bias %.1e", k, stride,
          pad, e0, e1, e2);
    free(x); free(w); free(b); free(g); free(dx); free(dw); free(db);
}

typedef struct { int n, c, hw, wrt; float *x, *gamma, *beta, *mean, *invstd; } BnCtx;
static void bn_fwd(float *out, const float *in, void *v) {
    BnCtx *k = v;
    const float *x = k->wrt == 0 ? in : k->x, *g = k->wrt == 1 ? in : k->gamma, *b = k->wrt == 2 ? in : k->beta;
    batchnorm_forward_train(out, k->mean, k->invstd, NULL, NULL, x, g, b, k->n, k->c, k->hw, 1e-5f, 0.1f);
}

static void test_bn(void) {
    int n = 3, c = 2, hw = 5;
    size_t nx = (size_t)n * c * hw;
    float *x = malloc(4 * nx), *g = malloc(4 * nx), *gamma = malloc(4 * c), *beta = malloc(4 * c);
    float *mean = malloc(4 * c), *invstd = malloc(4 * c), *out = malloc(4 * nx);
    float *dx = calloc(nx, 4), *dg = calloc(c, 4), *db = calloc(c, 4);
    fill(x, nx, 1); fill(g, nx, 1); fill(gamma, c, 1); fill(beta, c, 1);
    batchnorm_forward_train(out, mean, invstd, NULL, NULL, x, gamma, beta, n, c, hw, 1e-5f, 0.1f);
    batchnorm_backward(dx, dg, db, g, x, mean, invstd, gamma, n, c, hw);
    BnCtx k = {n, c, hw, 0, x, gamma, beta, mean, invstd};
    double e0 = fd_check(bn_fwd, &k, x, nx, g, nx, dx, 1e-2f);
    k.wrt = 1;
    double e1 = fd_check(bn_fwd, &k, gamma, c, g, nx, dg, 1e-2f);
    k.wrt = 2;
    double e2 = fd_check(bn_fwd, &k, beta, c, g, nx, db, 1e-2f);
    CHECK(fmax(e0, fmax(e1, e2)) < 2e-3, "batchnorm (training): input %.1e, gamma %.1e, beta %.1e", e0, e1, e2);
    /* running statistics: momentum and the unbiased variance */
    float rm[2] = {0.5f, -1.0f}, rv[2] = {2.0f, 3.0f};
    batchnorm_forward_train(out, mean, invstd, rm, rv, x, gamma, beta, n, c, hw, 1e-5f, 0.1f);
    double mu = 0, var = 0;
    for (int i = 0; i < n; i++) for (int j = 0; j < hw; j++) mu += x[(i * c) * hw + j];
    mu /= n * hw;
    for (int i = 0; i < n; i++) for (int j = 0; j < hw; j++) var += pow(x[(i * c) * hw + j] - mu, 2);
    double ub = var / (n * hw - 1);
    CHECK(fabs(rm[0] - (0.9 * 0.5 + 0.1 * mu)) < 1e-6 && fabs(rv[0] - (0.9 * 2.0 + 0.1 * ub)) < 1e-5,
          "batchnorm running statistics: mean %.6f var %.6f (unbiased)", rm[0], rv[0]);
    free(x); free(g); free(gamma); free(beta); free(mean); free(invstd); free(out); free(dx); free(dg); free(db);
}

typedef struct { int n, c, h, w, k, s, op; } PoolCtx;  /* op: 0 max, 1 avg, 2 gap, 3 relu, 4 l2norm */
static void pool_fwd(float *out, const float *in, void *v) {
    PoolCtx *p = v;
    switch (p->op) {
    case 0: maxpool2d_forward(out, in, p->n, p->c, p->h, p->w, p->k, p->s); break;
    case 1: avgpool2d_forward(out, in, p->n, p->c, p->h, p->w, p->k, p->s); break;
    case 2: gap_forward(out, in, p->n, p->c, p->h * p->w); break;
    case 3: relu_forward(out, in, (long)p->n * p->c * p->h * p->w); break;
    case 4: l2norm_forward(out, in, p->n, p->c); break;
    }
}

static void test_elementwise(void) {
    const char *names[] = {"maxpool 2x2/2", "avgpool 3x3/2", "global avgpool", "relu", "l2norm"};
    for (int op = 0; op < 5; op++) {
        PoolCtx p = {2, 3, 6, 7, op == 0 ? 2 : 3, 2, op};
        if (op == 4) { p.c = 9; p.h = p.w = 1; }
        int oh = op <= 1 ? (p.h - p.k) / p.s + 1 : op == 2 ? 1 : p.h, ow = op <= 1 ? (p.w - p.k) / p.s + 1 : op == 2 ? 1 : p.w;
        size_t nx = (size_t)p.n * p.c * p.h * p.w, no = (size_t)p.n * p.c * oh * ow;
        float *x = malloc(4 * nx), *g = malloc(4 * no), *out = malloc(4 * no), *dx = calloc(nx, 4);
        fill(x, nx, 1); fill(g, no, 1);
        pool_fwd(out, x, &p);
        switch (op) {
        case 0: maxpool2d_backward(dx, g, x, out, p.n, p.c, p.h, p.w, p.k, p.s); break;
        case 1: avgpool2d_backward(dx, g, p.n, p.c, p.h, p.w, p.k, p.s); break;
        case 2: gap_backward(dx, g, p.n, p.c, p.h * p.w); break;
        case 3: relu_backward(dx, g, out, (long)nx); break;
        case 4: l2norm_backward(dx, g, out, x, p.n, p.c); break;
        }
        double e = fd_check(pool_fwd, &p, x, nx, g, no, dx, 1e-3f);
        CHECK(e < 1e-3, "%s: input gradient %.1e", names[op], e);
        free(x); free(g); free(out); free(dx);
    }
    /* linear and add */
    int n = 3, fin = 5, fout = 4;
    float *x = malloc(4 * n * fin), *w = malloc(4 * fout * fin), *b = malloc(4 * fout), *g = malloc(4 * n * fout);
    float *dx = calloc(n * fin, 4), *dw = calloc(fout * fin, 4), *db = calloc(fout, 4), *out = malloc(4 * n * fout);
    fill(x, n * fin, 1); fill(w, fout * fin, 1); fill(b, fout, 1); fill(g, n * fout, 1);
    linear_backward(dx, dw, db, g, x, w, n, fin, fout);
    double e = 0;
    for (int i = 0; i < fout * fin; i++) {  /* dL/dw[o][j] = sum_i g[i][o] x[i][j], exactly linear */
        float keep = w[i];
        double v[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            w[i] = keep + (sgn ? -1e-2f : 1e-2f);
            linear_forward(out, x, w, b, n, fin, fout);
            v[sgn] = 0;
            for (int t = 0; t < n * fout; t++) v[sgn] += (double)g[t] * out[t];
        }
        w[i] = keep;
        e = fmax(e, fabs((v[0] - v[1]) / 2e-2 - dw[i]));
    }
    CHECK(e < 1e-3, "linear: weight gradient %.1e", e);
    float a[4] = {1, 2, 3, 4}, c2[4] = {5, 6, 7, 8}, s[4], da[4] = {0}, dc[4] = {0}, gg[4] = {1, -1, 2, 0.5f};
    add_forward(s, a, c2, 4);
    add_backward(da, dc, gg, 4);
    CHECK(s[3] == 12 && da[2] == 2 && dc[1] == -1, "residual add and its gradient");
    free(x); free(w); free(b); free(g); free(dx); free(dw); free(db); free(out);
}

/* The contrastive losses: gradient against central differences in double. */
static void test_losses(void) {
    int B = 4, D = 6, k = 3, Q = 5;
    float z[48], dz[48], queue[30];
    fill(z, 48, 1);
    fill(queue, 30, 1);
    for (int i = 0; i < 8; i++) {  /* normalise rows, as the model does */
        double s = 0;
        for (int j = 0; j < D; j++) s += z[i * D + j] * z[i * D + j];
        for (int j = 0; j < D; j++) z[i * D + j] /= (float)sqrt(s);
    }
    int32_t neg[12] = {1, 2, 3, 0, 2, 6, 9, 0, 1, 10, 12, 1};  /* 9, 10, 12: queue rows 1, 2, 4 */
    NcError err;
    for (int type = 0; type < 2; type++) {
        float loss;
        CHECK(contrast_loss(type, z, B, D, neg, k, queue, Q, 0.5f, &loss, dz, &err) == NC_OK, "%s loss runs",
              type ? "nce" : "infonce");
        double worst = 0, scale = 0;
        for (int i = 0; i < 2 * B * D; i++) scale = fmax(scale, fabs(dz[i]));
        for (int i = 0; i < 2 * B * D; i++) {
            float keep = z[i], a, b;
            z[i] = keep + 1e-3f;
            contrast_loss(type, z, B, D, neg, k, queue, Q, 0.5f, &a, NULL, &err);
            z[i] = keep - 1e-3f;
            contrast_loss(type, z, B, D, neg, k, queue, Q, 0.5f, &b, NULL, &err);
            z[i] = keep;
            worst = fmax(worst, fabs((a - b) / 2e-3 - dz[i]) / scale);
        }
        CHECK(worst < 5e-3, "%s: gradient vs central differences (with queue negatives) %.1e", type ? "nce" : "infonce", worst);
    }
    /* a closed form: all embeddings equal gives log(1 + k) for InfoNCE */
    float same[48];
    for (int i = 0; i < 48; i++) same[i] = (i % D == 0) ? 1.0f : 0.0f;
    float loss;
    int32_t nb[12] = {1, 2, 3, 0, 2, 3, 0, 1, 3, 0, 1, 2};
    contrast_loss(NC_LOSS_INFONCE, same, B, D, nb, k, NULL, 0, 0.5f, &loss, NULL, &err);
    CHECK(fabs(loss - log(4.0)) < 1e-6, "identical embeddings: InfoNCE = log(1+k) = %.6f (got %.6f)", log(4.0), loss);
    int32_t bad[12] = {1, 2, 3, 0, 2, 5, 0, 1, 3, 0, 1, 2};
    CHECK(contrast_loss(NC_LOSS_INFONCE, z, B, D, bad, k, NULL, 0, 0.5f, &loss, NULL, &err) == NC_EUSAGE && strstr(err.msg, "anchor 1"),
          "an anchor's own positive as a negative is refused: %s", err.msg);
    bad[5] = 99;
    CHECK(contrast_loss(NC_LOSS_INFONCE, z, B, D, bad, k, NULL, 0, 0.5f, &loss, NULL, &err) == NC_EUSAGE && strstr(err.msg, "out of range"),
          "an index out of range is refused: %s", err.msg);
    CHECK(contrast_loss(NC_LOSS_INFONCE, z, B, D, nb, 0, NULL, 0, 0.5f, &loss, NULL, &err) == NC_EUSAGE, "k = 0 is refused: %s", err.msg);
}

/* Whole models, both backends: for every parameter tensor, the derivative of sum w . embeddings
   along two random directions u against central differences (in double), relative to |g| |u|. */
static void test_model(const char *model, int c, int h, int w, int batch, NnBackend be) {
    NcError err;
    Net net;
    net_create(&net, model, c, h, w, &err);
    net_init_fixture(&net);
    NetExec *x;
    if (nnx_create(&x, &net, batch, be, &err)) { CHECK(0, "%s", err.msg); return; }
    size_t nin = (size_t)batch * c * h * w;
    float *in = malloc(4 * nin);
    fill(in, nin, 1);
    int D = nnx_embed_dim(x);
    float *wz = malloc(4 * batch * D);
    fill(wz, batch * D, 1);
    memset(net.grads, 0, 4 * net.n_param_floats);
    nnx_forward(x, in, 1, &err);
    nnx_backward(x, wz, &err);
    float *keep = malloc(4 * net.n_param_floats), *u = malloc(4 * net.n_param_floats);
    memcpy(keep, net.params, 4 * net.n_param_floats);
    double worst = 0;
    const char *wn = "";
    for (int p = 0; p < net.n_params; p++) {
        const NnParam *pv = &net.views[p];
        for (int r = 0; r < 2; r++) {
            double pn = 0, un = 0, gu = 0, gn = 0;
            for (size_t i = 0; i < pv->size; i++) pn += (double)keep[pv->offset + i] * keep[pv->offset + i];
            fill(u, pv->size, 1);
            for (size_t i = 0; i < pv->size; i++) un += (double)u[i] * u[i];
            double eps = 3e-3 * fmax(sqrt(pn), 1.0) / sqrt(un);  /* a step of 0.3% of the tensor's norm */
            double v[2];
            for (int sg = 0; sg < 2; sg++) {
                for (size_t i = 0; i < pv->size; i++)
                    net.params[pv->offset + i] = (float)(keep[pv->offset + i] + (sg ? -eps : eps) * u[i]);
                nnx_forward(x, in, 1, &err);
                v[sg] = 0;
                const float *z = nnx_embeddings(x);
                for (int t = 0; t < batch * D; t++) v[sg] += (double)wz[t] * z[t];
            }
            memcpy(net.params + pv->offset, keep + pv->offset, 4 * pv->size);
            for (size_t i = 0; i < pv->size; i++) {
                double g = net.grads[pv->offset + i];
                gu += g * u[i];
                gn += g * g;
            }
            double num = (v[0] - v[1]) / (2.0 * eps);
            double e = fabs(num - gu) / fmax(sqrt(gn * un), 1e-8);
            if (e > worst) { worst = e; wn = pv->name; }
        }
    }
    /* float32 forward noise limits central differences through a deep network to about 1e-2
       here; a wrong gradient (a sign, a missing term) gives errors of order 1. The tight check
       of the oneDNN path is test_nn_backends (against the reference, 1e-5). */
    CHECK(worst < 5e-2, "%s (%s backend): parameter gradients along random directions vs central differences, "
          "worst %.1e relative to |g||u| (%s)", model, be == NN_BACKEND_DNNL ? "oneDNN" : "reference", worst, wn);
    nnx_free(x);
    net_free(&net);
    free(in); free(wz); free(keep); free(u);
}

int main(void) {
    rng_init(&rng, 2024, 0, 0, 0);
    test_conv(3, 1, 1);
    test_conv(3, 2, 1);
    test_conv(1, 2, 0);
    test_conv(5, 1, 2);
    test_bn();
    test_elementwise();
    test_losses();
    test_model("convnet", 3, 10, 10, 4, NN_BACKEND_REF);
    test_model("convnet", 3, 10, 10, 4, NN_BACKEND_DNNL);
    test_model("convnet", 1, 8, 8, 4, NN_BACKEND_DNNL);
    test_model("resnet18", 3, 16, 16, 8, NN_BACKEND_DNNL);
    return check_done();
}
