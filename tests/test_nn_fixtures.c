// test_nn_fixtures.c -- the engine against PyTorch: fixtures written by tests/ref/make_fixtures.py
// (features, embeddings, losses, every gradient, running statistics, 5-step optimiser runs, a
// queued run beyond the batch),
// compared tensor by tensor on both backends, printing the worst element of each.
#define _POSIX_C_SOURCE 200809L  /* setenv */
#include "check.h"
#include "ncelab/loss.h"
#include "ncelab/moco.h"
#include "ncelab/net.h"
#include "ncelab/optim.h"
#include "ncelab/safetensors.h"
#include "ncelab/sampler.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

static StFile fx;
static char fx_path[512];

static const float *T(const char *name, size_t *n) {
    const StTensor *t = st_find(&fx, name);
    if (!t) { printf("missing tensor %s in %s\n", name, fx_path); *n = 0; return NULL; }
    *n = t->numel;
    return t->data;
}

/* worst |a - b| / max |b| over the tensor, and where */
static double cmp(const char *what, const float *a, const char *ref, double tol) {
    size_t n;
    const float *b = T(ref, &n);
    if (!b) { CHECK(0, "%s: reference %s missing", what, ref); return 1; }
    double scale = 0, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (scale > 0 ? scale : 1);
        if (e > worst) { worst = e; at = i; }
    }
    CHECK(worst <= tol, "%-34s worst rel %.2e at [%zu] (%.7g vs %.7g), tol %.0e", what, worst, at, a[at], b[at], tol);
    return worst;
}

static int load(const char *name) {
    const char *src = getenv("NCELAB_SRCDIR");
    snprintf(fx_path, sizeof fx_path, "%s/tests/fixtures/%s", src ? src : ".", name);
    NcError err;
    int rc = st_load(fx_path, &fx, &err);
    CHECK(rc == NC_OK, "load %s%s%s", fx_path, rc ? ": " : "", rc ? err.msg : "");
    return rc;
}

/* Runs one model through a backend and compares everything the fixture holds. */
static void check_model(const char *file, const char *model, int c, int h, int w, int B, int k, NnBackend be,
                        int has_params, int has_stats, int opt_steps, double gtol) {
    if (load(file)) return;
    const char *bn = be == NN_BACKEND_DNNL ? "oneDNN" : "reference";
    printf("-- %s, %s backend\n", file, bn);
    NcError err;
    Net net;
    net_create(&net, model, c, h, w, &err);
    net_init_fixture(&net);
    if (has_params) {
        double worst = 0;
        for (int p = 0; p < net.n_params; p++) {
            size_t n;
            const float *v = T(net.views[p].name, &n);
            for (size_t i = 0; v && i < n; i++) worst = fmax(worst, fabs(v[i] - net.params[net.views[p].offset + i]));
        }
        CHECK(worst == 0.0, "fixture initialisation equals PyTorch's parameters bit for bit (max diff %.1e)", worst);
    }
    int N = 2 * B;
    NetExec *x;
    if (nnx_create(&x, &net, N, be, &err)) { CHECK(0, "%s", err.msg); st_free(&fx); return; }
    size_t n;
    const float *input = T("input", &n);
    const int32_t *neg = (const int32_t *)T("negatives", &n);
    int D = nnx_embed_dim(x);
    float *dz = malloc(sizeof(float) * N * D);
    memset(net.grads, 0, sizeof(float) * net.n_param_floats);
    nnx_forward(x, input, 1, &err);
    cmp("features", nnx_features(x), "features", 1e-4);
    cmp("embeddings", nnx_embeddings(x), "embeddings", 1e-4);
    float loss, nce;
    contrast_loss(NC_LOSS_INFONCE, nnx_embeddings(x), B, D, neg, k, NULL, 0, 0.5f, &loss, dz, &err);
    contrast_loss(NC_LOSS_NCE, nnx_embeddings(x), B, D, neg, k, NULL, 0, 0.5f, &nce, NULL, &err);
    cmp("InfoNCE loss", &loss, "loss", 1e-5);
    cmp("binary NCE loss", &nce, "nce_loss", 1e-5);
    cmp("d loss / d embeddings", dz, "d_embeddings", 1e-4);
    nnx_backward(x, dz, &err);
    double gworst = 0;
    const char *gname = "";
    for (int p = 0; p < net.n_params; p++) {
        char nm[96];
        const NnParam *pv = &net.views[p];
        const float *g = net.grads + pv->offset;
        snprintf(nm, sizeof nm, "grad.%s", pv->name);
        double e;
        if (st_find(&fx, nm)) {
            e = cmp(nm, g, nm, gtol);
        } else {  /* large tensors: 1024 sampled elements and the norm */
            float smp[1024];
            for (int j = 0; j < 1024; j++) smp[j] = g[(size_t)((double)j * pv->size / 1024)];
            snprintf(nm, sizeof nm, "gradsample.%s", pv->name);
            e = cmp(nm, smp, nm, gtol);
            double s = 0;
            for (size_t i = 0; i < pv->size; i++) s += (double)g[i] * g[i];
            float norm = (float)sqrt(s);
            snprintf(nm, sizeof nm, "gradnorm.%s", pv->name);
            e = fmax(e, cmp(nm, &norm, nm, 1e-3));
        }
        if (e > gworst) { gworst = e; gname = pv->name; }
    }
    printf("      every parameter gradient: worst %.2e (%s)\n", gworst, gname);
    if (has_stats) {
        for (int s = 0; s < net.n_stats; s++) {
            char nm[96];
            snprintf(nm, sizeof nm, "%s.running_mean", net.stat_names[s]);
            cmp(nm, net.stats + net.stat_offset[s], nm, 1e-4);
            snprintf(nm, sizeof nm, "%s.running_var", net.stat_names[s]);
            cmp(nm, net.stats + net.stat_offset[s] + net.stat_c[s], nm, 1e-4);
        }
        nnx_forward(x, input, 0, &err);
        cmp("eval_embeddings (running statistics)", nnx_embeddings(x), "eval_embeddings", 1e-4);
    }
    /* optimisers: losses before each of opt_steps steps, from the initial weights. The convnet's
       five SGD steps pass within rounding of a ReLU decision (bn3, third step): any change in the
       order of a sum upstream can flip it, and conv1's weights then end 1.2e-3 off (the Winograd
       weight gradient summed per thread passed on 1 and 2 threads and flipped on 3; summed per
       fixed part of the tiles it flipped on every count). So on oneDNN these runs compute as
       PyTorch does: the convolutions by oneDNN (NCELAB_WINOGRAD=0: conv1's weights then end within
       4e-7 on 1 to 4 threads), the batch norms from the first convolution's output
       (NCELAB_FIRST_GRAD=0, not from the moments of its input) and from passes over each
       convolution's output (NCELAB_CONV_STATS=0), and pin the optimisers and the chain at 1e-4;
       the fast paths' gradients are checked above at every fixture's step (and in
       test_nn_first_grad.c and test_nn_wino.c against their references), and their five SGD
       steps' losses (which the flip leaves within 3e-6) against PyTorch's at the end. */
    NetExec *xo = x;
    if (be == NN_BACKEND_DNNL && opt_steps) {
        setenv("NCELAB_FIRST_GRAD", "0", 1);
        setenv("NCELAB_CONV_STATS", "0", 1);
        setenv("NCELAB_WINOGRAD", "0", 1);
        if (nnx_create(&xo, &net, N, be, &err)) { CHECK(0, "%s", err.msg); xo = x; }
        unsetenv("NCELAB_WINOGRAD");
        unsetenv("NCELAB_FIRST_GRAD");
        unsetenv("NCELAB_CONV_STATS");
    }
    const char *opts[4] = {"sgd", "sgd_nesterov", "adamw", "lars"};
    const char *optn[4] = {"sgd", "sgd-nesterov", "adamw", "lars"};
    float lrs[4] = {0.1f, 0.1f, 1e-3f, 0.5f}, wds[4] = {5e-4f, 5e-4f, 0.01f, 1e-4f};
    for (int run = 0; run < 5 && opt_steps; run++) {
        int o = run < 4 ? run : 0;  /* run 4: SGD again, with every fast kernel */
        NetExec *xr = run < 4 ? xo : x;
        if (run == 4 && xo == x) break;
        char nm[64];
        snprintf(nm, sizeof nm, "losses.%s", opts[o]);
        if (!st_find(&fx, nm)) continue;
        net_init_fixture(&net);
        for (int s = 0; s < net.n_stats; s++)
            for (int i = 0; i < net.stat_c[s]; i++) {
                net.stats[net.stat_offset[s] + i] = 0.0f;
                net.stats[net.stat_offset[s] + net.stat_c[s] + i] = 1.0f;
            }
        OptConfig oc;
        Optim opt;
        optim_parse(optn[o], wds[o], &oc, &err);
        optim_create(&opt, &net, &oc, &err);
        float traj[8];
        for (int s = 0; s < opt_steps; s++) {
            memset(net.grads, 0, sizeof(float) * net.n_param_floats);
            nnx_forward(xr, input, 1, &err);
            contrast_loss(NC_LOSS_INFONCE, nnx_embeddings(xr), B, D, neg, k, NULL, 0, 0.5f, &traj[s], dz, &err);
            nnx_backward(xr, dz, &err);
            optim_step(&opt, lrs[o]);
        }
        char what[64];
        snprintf(what, sizeof what, "%d-step losses, %s%s", opt_steps, opts[o], run == 4 ? ", every fast kernel" : "");
        cmp(what, traj, nm, gtol > 1e-3 ? 1e-3 : 1e-4);
        if (run == 0 && st_find(&fx, "weights_after.sgd.conv1.weight"))
            cmp("conv1.weight after 5 SGD steps", net.params + net_param(&net, "conv1.weight")->offset,
                "weights_after.sgd.conv1.weight", 1e-4);
        if (run == 3 && st_find(&fx, "weights_after.lars.head.2.weight"))
            cmp("head.2.weight after 5 LARS steps", net.params + net_param(&net, "head.2.weight")->offset,
                "weights_after.lars.head.2.weight", 1e-4);
        optim_free(&opt);
    }
    if (xo != x) nnx_free(xo);
    free(dz);
    nnx_free(x);
    net_free(&net);
    st_free(&fx);
}

/* make_fixtures.py's queue_negatives: anchor i's negatives are queue slots (3i + step + j) mod Q,
   j = 0 .. k - 1, as 2B + slot */
static void queue_negatives(int32_t *neg, int B, int k, int Q, int step) {
    for (int i = 0; i < B; i++)
        for (int j = 0; j < k; j++) neg[i * k + j] = 2 * B + (3 * i + step + j) % Q;
}

/* A queued run (k > 2B - 2) as the trainer does it (moco.h): the queue filled with the initial
   network's eval-mode embeddings, a key encoder copied from the initial network, the symmetric
   loss of each view against the other view's key and the queue (no gradient into keys or queue),
   SGD, the key encoder's momentum update, the positives' keys pushed into the ring (queue_push);
   against convnet_queue.safetensors. */
static void check_queue(NnBackend be) {
    if (load("convnet_queue.safetensors")) return;
    printf("-- convnet_queue.safetensors, %s backend\n", be == NN_BACKEND_DNNL ? "oneDNN" : "reference");
    enum { B = 4, K = 10, Q = 12, STEPS = 4 };
    const float M = 0.9f;
    NcError err;
    Net net, key;
    NetExec *x, *xq, *xk;
    net_create(&net, "convnet", 1, 28, 28, &err);
    net_init_fixture(&net);
    net_create(&key, "convnet", 1, 28, 28, &err);
    moco_copy(&key, &net);
    if (nnx_create(&x, &net, 2 * B, be, &err) || nnx_create(&xq, &net, Q, be, &err) ||
        nnx_create(&xk, &key, 2 * B, be, &err)) {
        CHECK(0, "%s", err.msg);
        st_free(&fx);
        return;
    }
    int D = nnx_embed_dim(x);
    size_t n;
    const float *input = T("input", &n), *qin = T("queue_input", &n);
    EmbQueue q;
    int32_t labels[Q] = {0}, neg[B * K];
    queue_init(&q, Q, D, &err);
    nnx_forward(xq, qin, 0, &err);
    cmp("queue_init (eval-mode embeddings)", nnx_embeddings(xq), "queue_init", 1e-4);
    queue_push(&q, nnx_embeddings(xq), labels, Q);
    CHECK(q.head == 0 && q.count == Q, "the filled ring is full with its head at slot 0 (head %d, count %d)", q.head, q.count);
    queue_negatives(neg, B, K, Q, 0);
    CHECK(memcmp(neg, T("negatives", &n), sizeof neg) == 0, "step 0's negatives equal the fixture's");
    OptConfig oc;
    Optim opt;
    optim_parse("sgd", 5e-4f, &oc, &err);
    optim_create(&opt, &net, &oc, &err);
    size_t zn = (size_t)2 * B * D;
    float *dq = malloc(sizeof(float) * zn), *zl = calloc(zn, sizeof(float)), *dzl = malloc(sizeof(float) * zn);
    float traj[STEPS];
    ContrastWork w;
    contrast_work_init(&w, B, K, 2 * B + Q);
    for (int s = 0; s < STEPS; s++) {
        queue_negatives(neg, B, K, Q, s);
        memset(net.grads, 0, sizeof(float) * net.n_param_floats);
        nnx_forward(x, input, 1, &err);
        nnx_forward(xk, input, 1, &err);
        const float *z = nnx_embeddings(x), *kz = nnx_embeddings(xk);
        double l;
        if (moco_loss_part(NC_LOSS_INFONCE, z, kz, B, D, neg, K, q.emb, Q, 0.5f, 0, B, &l, dq, zl, dzl, &w, &err))
            CHECK(0, "%s", err.msg);
        traj[s] = (float)l;
        if (s == 0) {
            double nce;
            float nce_f;
            float *dn = malloc(sizeof(float) * zn);
            moco_loss_part(NC_LOSS_NCE, z, kz, B, D, neg, K, q.emb, Q, 0.5f, 0, B, &nce, dn, zl, dzl, &w, &err);
            nce_f = (float)nce;
            free(dn);
            cmp("embeddings", z, "embeddings", 1e-4);
            cmp("key embeddings (training mode, no gradient)", kz, "key_embeddings", 1e-4);
            cmp("symmetric InfoNCE loss against keys and queue", &traj[0], "loss", 1e-5);
            cmp("symmetric binary NCE loss", &nce_f, "nce_loss", 1e-5);
            cmp("d loss / d query embeddings", dq, "d_embeddings", 1e-4);
        }
        nnx_backward(x, dq, &err);
        if (s == 0) {
            double gw = 0;
            for (int p = 0; p < net.n_params; p++) {
                char nm[96];
                snprintf(nm, sizeof nm, "grad.%s", net.views[p].name);
                gw = fmax(gw, cmp(nm, net.grads + net.views[p].offset, nm, 1e-3));
            }
            printf("      every parameter gradient: worst %.2e\n", gw);
        }
        optim_step(&opt, 0.1f);
        moco_momentum_update(&key, &net, M);
        q.now = s;
        queue_push(&q, kz + (size_t)B * D, labels, B);
    }
    cmp("4-step losses, sgd, queued", traj, "losses.sgd", 1e-4);
    cmp("the queue after 4 pushes of keys", q.emb, "queue_after", 1e-4);
    cmp("conv1.weight after 4 SGD steps", net.params + net_param(&net, "conv1.weight")->offset,
        "weights_after.sgd.conv1.weight", 1e-4);
    cmp("the key encoder's conv1.weight after 4 momentum updates", key.params + net_param(&key, "conv1.weight")->offset,
        "key_after.conv1.weight", 1e-4);
    cmp("the key encoder's bn1.running_mean (its own training forwards)", key.stats + key.stat_offset[0],
        "key_after.bn1.running_mean", 1e-4);
    contrast_work_free(&w);
    free(dq);
    free(zl);
    free(dzl);
    optim_free(&opt);
    queue_free(&q);
    nnx_free(xk);
    nnx_free(xq);
    nnx_free(x);
    net_free(&key);
    net_free(&net);
    st_free(&fx);
}

int main(void) {
    if (avx2_twin_skip()) return 77;
    check_queue(NN_BACKEND_REF);
    check_queue(NN_BACKEND_DNNL);
    for (int be = 0; be < 2; be++) {
        check_model("convnet_c3.safetensors", "convnet", 3, 32, 32, 4, 3, be, 1, 1, 5, 1e-3);
        check_model("convnet_c1.safetensors", "convnet", 1, 28, 28, 4, 3, be, 0, 0, 0, 1e-3);
    }
    /* the plain loops are slow for ResNet-18 (and slower under the sanitizers): one forward and
       backward there; the 3-step optimiser run goes through oneDNN below */
    check_model("resnet18.safetensors", "resnet18", 3, 32, 32, 2, 2, NN_BACKEND_REF, 0, 0, 0, 1e-3);
    /* oneDNN sums in another order: in this 4-image batch two pre-activations of layer2.1.add lie
       within 2e-5 of zero and change sign, so those two ReLUs pass a different gradient back and
       the gradients of layers 1-2 differ by up to a few percent of their largest element (their
       norms agree to 3e-5). Layers 3-4, the head and all forward values agree to 1e-5. The
       Winograd convolutions (conv_wino.c, tested on their own to 2e-5) round
       differently again and flip other near-zero pre-activations: layer 3's gradients then differ
       by up to 6% of their largest element. So the
       direct oneDNN convolutions are checked at 5e-2 and the Winograd ones at 1e-1; the forward
       values and the gradient norms keep their tight tolerances in both. */
    setenv("NCELAB_WINOGRAD", "0", 1);
    check_model("resnet18.safetensors", "resnet18", 3, 32, 32, 2, 2, NN_BACKEND_DNNL, 0, 0, 3, 5e-2);
    unsetenv("NCELAB_WINOGRAD");
    /* One head unit (image 2, head.0 output 399) lies 4.5e-6 from zero in PyTorch's forward (the
       next nearest 1.0e-3), closer than our features agree with PyTorch's (1e-5): its ReLU
       decision follows the order of the sums upstream, and where it flips, head.0's gradient row
       and bias element are up to 22% off (on 3 threads; 1, 2, 4, 5, 6 and 8 passed). This run
       takes 2 threads on any machine, so that `make test` gives CI's answer; the kernels' thread
       counts are checked against their references in test_nn_wino.c, test_nn_wino_s2.c and
       test_nn_fused.c. */
    int was = omp_get_max_threads();
    omp_set_num_threads(2);
    check_model("resnet18.safetensors", "resnet18", 3, 32, 32, 2, 2, NN_BACKEND_DNNL, 0, 0, 0, 1e-1);
    omp_set_num_threads(was);
    return check_done();
}
