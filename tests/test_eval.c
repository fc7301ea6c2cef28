// test_eval.c -- the downstream evaluation against independent references: the metrics of a
// Gaussian-mixture embedding against PyTorch (tests/ref/make_eval_fixture.py, the functions of
// bench/torch_protocol.py), a regular simplex with known geometry in closed form, and the kNN
// classifier against a full sort.
#include "check.h"
#include "ncelab/eval.h"
#include "ncelab/rng.h"
#include "ncelab/safetensors.h"

#include <stdlib.h>
#include <string.h>

static double meta_num(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void test_fixture(void) {
    const char *src = getenv("NCELAB_SRCDIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/eval_small.safetensors", src ? src : "..");
    StFile f;
    NcError err;
    if (st_load(path, &f, &err) != NC_OK) { CHECK(0, "load %s: %s", path, err.msg); return; }
    const StTensor *xtr = st_find(&f, "xtr"), *ytr = st_find(&f, "ytr"), *xte = st_find(&f, "xte"), *yte = st_find(&f, "yte");
    cJSON *want = cJSON_Parse(st_meta(&f, "expected") ? st_meta(&f, "expected") : "");
    CHECK(xtr && ytr && xte && yte && want, "fixture: xtr, ytr, xte, yte and the expected metrics");
    if (!(xtr && ytr && xte && yte && want)) { st_free(&f); cJSON_Delete(want); return; }
    int ntr = (int)xtr->shape[0], d = (int)xtr->shape[1], nte = (int)xte->shape[0];
    EvalConfig c;
    eval_config_default(&c);
    EvalMetrics m;
    int rc = eval_metrics((const float *)xtr->data, (const int32_t *)ytr->data, ntr, (const float *)xte->data,
                          (const int32_t *)yte->data, nte, d, 5, &c, &m, &err);
    CHECK(rc == NC_OK, "eval_metrics on %d x %d train, %d test rows", ntr, d, nte);
    double e;
    e = fabs(m.mean_acc - meta_num(want, "mean_acc"));
    CHECK(e <= 1.0 / nte + 1e-12, "mean classifier %.4f, PyTorch %.4f (|diff| %.4f, at most one test row)", m.mean_acc, meta_num(want, "mean_acc"), e);
    e = fabs(m.knn_acc - meta_num(want, "knn_acc"));
    CHECK(e <= 1.0 / nte + 1e-12, "weighted kNN %.4f, PyTorch %.4f (|diff| %.4f, at most one test row)", m.knn_acc, meta_num(want, "knn_acc"), e);
    e = rel_err(m.simplex_deviation, meta_num(want, "simplex_deviation"), 1e-12);
    CHECK(e < 1e-5, "simplex deviation %.8f, PyTorch %.8f (rel %.1e)", m.simplex_deviation, meta_num(want, "simplex_deviation"), e);
    e = rel_err(m.within_class_ratio, meta_num(want, "within_class_ratio"), 1e-12);
    CHECK(e < 1e-5, "within / between ratio %.8f, PyTorch %.8f (rel %.1e)", m.within_class_ratio, meta_num(want, "within_class_ratio"), e);
    e = fabs(m.linear_acc - meta_num(want, "linear_acc"));
    CHECK(e <= 0.01, "linear probe %.4f (L2 %g), PyTorch L-BFGS %.4f (L2 %g) (|diff| %.4f; the held-out splits differ)",
          m.linear_acc, m.probe_l2, meta_num(want, "linear_acc"), meta_num(want, "probe_l2"), e);
    cJSON_Delete(want);
    st_free(&f);
}

/* N = 5 classes at the vertices v_c = e_c - 1/N of a regular simplex (in the first N of d = 8
   coordinates), 40 train and 10 test rows each, offset by +-delta along coordinate 7 (orthogonal
   to the simplex): deviation 0, perfect classifiers, within / between = delta^2 / ((N-1)/N). */
static void test_simplex(void) {
    enum { N = 5, D = 8, NTR = 200, NTE = 50 };
    static float xtr[NTR * D], xte[NTE * D];
    static int32_t ytr[NTR], yte[NTE];
    double delta = 0.1;
    for (int i = 0; i < NTR + NTE; i++) {
        float *x = i < NTR ? xtr + i * D : xte + (i - NTR) * D;
        int c = i % N;
        for (int j = 0; j < D; j++) x[j] = j < N ? (float)((j == c) - 1.0 / N) : 0.0f;
        x[7] = (float)((i / N) % 2 ? delta : -delta);
        if (i < NTR) ytr[i] = c; else yte[i - NTR] = c;
    }
    EvalConfig c;
    eval_config_default(&c);
    c.knn_k = 20;
    EvalMetrics m;
    NcError err;
    int rc = eval_metrics(xtr, ytr, NTR, xte, yte, NTE, D, N, &c, &m, &err);
    double ratio = delta * delta / ((N - 1.0) / N);
    CHECK(rc == NC_OK && m.simplex_deviation < 1e-6, "regular simplex: deviation %.1e", m.simplex_deviation);
    CHECK(rel_err(m.within_class_ratio, ratio, 1e-12) < 1e-5, "within / between %.8f, closed form %.8f", m.within_class_ratio, ratio);
    CHECK(m.mean_acc == 1.0 && m.knn_acc == 1.0 && m.linear_acc == 1.0, "separable classes: accuracies %.3f %.3f %.3f",
          m.mean_acc, m.linear_acc, m.knn_acc);
}

/* kNN against a full sort of every test row's similarities. */
typedef struct { float v; int i; } Sim;
static int sim_desc(const void *a, const void *b) {
    float x = ((const Sim *)a)->v, y = ((const Sim *)b)->v;
    return (x < y) - (x > y);
}

static void test_knn(void) {
    enum { NTR = 700, NTE = 150, D = 6, NC = 4, K = 25 };
    static float xtr[NTR * D], xte[NTE * D];
    static int32_t ytr[NTR], yte[NTE];
    Rng r;
    rng_init(&r, 7, 1, 2, 3);
    for (int i = 0; i < NTR + NTE; i++) {
        float *x = i < NTR ? xtr + i * D : xte + (i - NTR) * D;
        int c = (int)rng_below(&r, NC);
        for (int j = 0; j < D; j++) x[j] = (float)(rng_uniform(&r) - 0.5 + (j == c) * 0.4);
        if (i < NTR) ytr[i] = c; else yte[i - NTR] = c;
    }
    long right = 0;
    static Sim s[NTR];
    for (int t = 0; t < NTE; t++) {
        double nt = 0;
        for (int j = 0; j < D; j++) nt += (double)xte[t * D + j] * xte[t * D + j];
        for (int i = 0; i < NTR; i++) {
            double dot = 0, ni = 0;
            for (int j = 0; j < D; j++) { dot += (double)xte[t * D + j] * xtr[i * D + j]; ni += (double)xtr[i * D + j] * xtr[i * D + j]; }
            s[i].v = (float)(dot / sqrt(nt * ni));
            s[i].i = i;
        }
        qsort(s, NTR, sizeof(Sim), sim_desc);
        double votes[NC] = {0};
        for (int q = 0; q < K; q++) votes[ytr[s[q].i]] += exp(s[q].v / 0.1);
        int best = 0;
        for (int c = 1; c < NC; c++) if (votes[c] > votes[best]) best = c;
        right += best == yte[t];
    }
    double want = (double)right / NTE, got = eval_knn(xtr, ytr, NTR, xte, yte, NTE, D, NC, K, 0.1);
    CHECK(fabs(got - want) < 1e-12, "kNN (k = %d) %.4f, full sort %.4f", K, got, want);
}

int main(void) {
    test_fixture();
    test_simplex();
    test_knn();
    return check_done();
}
