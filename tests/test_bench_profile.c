// test_bench_profile.c -- `ncelab bench --profile` through the binary: the table's structure (every
// layer, rows + rest = total, closed-form FLOPs) and the memory rows against the peak RSS.
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "cli_util.h"
#include "ncelab/jsonio.h"
#include "ncelab/net.h"

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* find_row: the row named name with pass pass, or NULL */
static const cJSON *find_row(const cJSON *rows, const char *name, const char *pass) {
    const cJSON *r;
    cJSON_ArrayForEach(r, rows) if (strcmp(str(r, "name"), name) == 0 && strcmp(str(r, "pass"), pass) == 0) return r;
    return NULL;
}

/* covered: node i of net has a forward row of its own, or is a ReLU / max pool / global average
   pool / residual add whose batch norm runs it (a row "bn+relu", "bn+relu+pool",
   "bn+relu+avgpool" or "bn+add+relu") */
static int covered(const cJSON *rows, const Net *net, int i) {
    if (find_row(rows, net->nodes[i].name, "fwd")) return 1;
    char nm[80];
    const cJSON *r;
    size_t len = strlen(net->nodes[i].name);
    if (net->nodes[i].op == NN_BN)  /* "bn1+relu", "bn1+relu+pool" */
        cJSON_ArrayForEach(r, rows) if (strncmp(str(r, "name"), net->nodes[i].name, len) == 0 && str(r, "name")[len] == '+')
            return 1;
    for (int back = 1; back <= 2 && i - back >= 0; back++) {
        if (net->nodes[i - back].op != NN_BN) continue;
        snprintf(nm, sizeof nm, "%s+add+relu", net->nodes[i - back].name);  /* a residual add and its ReLU */
        if ((net->nodes[i].op == NN_ADD && back == 1) || (net->nodes[i].op == NN_RELU && back == 2 &&
                                                         net->nodes[i - 1].op == NN_ADD))
            if (find_row(rows, nm, "fwd")) return 1;
        snprintf(nm, sizeof nm, "%s+relu%s", net->nodes[i - back].name, back == 2 ? "+pool" : "");
        if (net->nodes[i].op == NN_RELU && back == 1 && (find_row(rows, nm, "fwd") || (strcat(nm, "+pool"), find_row(rows, nm, "fwd"))))
            return 1;
        if (net->nodes[i].op == NN_MAXPOOL && back == 2 && find_row(rows, nm, "fwd")) return 1;
        char ga[80];
        snprintf(ga, sizeof ga, "%s+relu+avgpool", net->nodes[i - back].name);
        if (net->nodes[i].op == NN_RELU && back == 1 && find_row(rows, ga, "fwd")) return 1;
        if (net->nodes[i].op == NN_GAP && back == 2 && find_row(rows, ga, "fwd")) return 1;
    }
    return 0;
}

/* one profile through the binary, checked; returns the number of rows whose path starts with
   `path` (0 when path is NULL) */
static int check_profile(const char *model, int batch, int k, int steps, const char *path) {
    char p[400], what[96];
    snprintf(p, sizeof p, "%s/prof_%s_%d.json", cli_dir, model, k);
    snprintf(what, sizeof what, "%s B %d k %d%s", model, batch, k, getenv("ONEDNN_MAX_CPU_ISA") ? " (AVX2)" : "");
    int rc = cli_run("bench --model %s --batch %d --k %d --steps %d --threads 2 --profile --json %s", model, batch, k,
                     steps, p);
    cJSON *doc = NULL;
    NcError err;
    CHECK(rc == 0 && json_load(p, &doc, &err) == NC_OK, "%s: bench --profile runs (exit %d) and writes JSON", what, rc);
    if (!doc) return 0;
    CHECK(strstr(cli_out, "rest of the step") && strstr(cli_out, "peak RSS") && strstr(cli_out, "largest buffers"),
          "%s: the table, the rest of the step and the memory are printed", what);
    const cJSON *prof = cJSON_GetObjectItemCaseSensitive(doc, "profile"), *rows = cJSON_GetObjectItemCaseSensitive(prof, "rows");
    Net net;
    net_create(&net, model, 3, 32, 32, &err);

    /* every layer of the model is there */
    int missing = -1;
    for (int i = 0; i < net.n_nodes && missing < 0; i++) if (!covered(rows, &net, i)) missing = i;
    CHECK(missing < 0, "%s: every one of the %d layers has a forward row (first missing: %s)", what, net.n_nodes,
          missing >= 0 ? net.nodes[missing].name : "none");

    /* times are not negative and add up: rows + rest = total */
    double sum = 0, worst = 0;
    int n = 0, paths = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, rows) {
        double ms = num(r, "ms");
        if (!(ms >= 0)) worst = ms;
        sum += ms;
        n++;
        if (path && strncmp(str(r, "path"), path, strlen(path)) == 0) paths++;
    }
    double rows_ms = num(prof, "rows_ms"), rest = num(prof, "rest_ms"), total = num(prof, "step_ms");
    CHECK(worst == 0 && rest >= 0, "%s: %d rows, none negative (worst %g), rest of the step %.4f ms >= 0", what, n, worst, rest);
    CHECK(rel_err(sum, rows_ms, 1e-9) < 1e-9 && rel_err(rows_ms + rest, total, 1e-9) < 1e-9 && total > 0,
          "%s: rows %.4f ms (summed here %.4f) + rest %.4f = total %.4f ms", what, rows_ms, sum, rest, total);

    /* a convolution's FLOPs: 2 N Cout Hout Wout Cin Kh Kw for N = 2B images, in every pass */
    double worst_f = 0;
    int convs = 0;
    for (int i = 0; i < net.n_nodes; i++) {
        const NnNode *d = &net.nodes[i];
        if (d->op != NN_CONV) continue;
        const NnVal *o = &net.vals[d->out], *in = &net.vals[d->in];
        double f = 2.0 * (2 * batch) * o->c * o->h * o->w * in->c * d->k * d->k;
        const char *passes[3] = {"fwd", "bwd_w", "bwd_data"};
        for (int j = 0; j < (d->in == net.input ? 2 : 3); j++) {
            const cJSON *row = find_row(rows, d->name, passes[j]);
            double e = row ? rel_err(num(row, "flops"), f, 1) : 1.0;
            if (e > worst_f) worst_f = e;
        }
        convs++;
    }
    CHECK(convs > 0 && worst_f < 1e-12, "%s: the FLOPs of %d convolutions' passes match the closed form (worst %.1e)",
          what, convs, worst_f);
    CHECK(find_row(rows, net.nodes[0].name, "bwd_data") == NULL, "%s: the first convolution has no data gradient", what);

    /* memory: the buffers' sum is at most the peak RSS, and the parameter block is its size */
    const cJSON *mem = cJSON_GetObjectItemCaseSensitive(doc, "memory"), *bufs = cJSON_GetObjectItemCaseSensitive(mem, "buffers");
    double mb = 0, params = -1;
    cJSON_ArrayForEach(r, bufs) {
        mb += num(r, "bytes");
        if (strcmp(str(r, "name"), "parameters") == 0) params = num(r, "bytes");
    }
    double rss = num(mem, "peak_rss_mb") * 1048576.0;
    CHECK(mb > 0 && mb <= rss && rel_err(mb, num(mem, "buffers_mb") * 1048576.0, 1) < 1e-9,
          "%s: %d buffers, %.1f MB <= peak RSS %.1f MB", what, cJSON_GetArraySize(bufs), mb / 1048576.0, rss / 1048576.0);
    CHECK(params == 4.0 * net.n_param_floats, "%s: the parameter block %.0f bytes = 4 x %zu floats", what, params,
          net.n_param_floats);
    net_free(&net);
    cJSON_Delete(doc);
    return paths;
}

int main(void) {
    cli_setup("bench_profile");
    check_profile("convnet", 4, 6, 2, NULL);
    check_profile("resnet18", 2, 2, 1, NULL);
    /* MoCo's step (k > 2B - 2) has the key encoder's rows */
    char p[400];
    snprintf(p, sizeof p, "%s/moco.json", cli_dir);
    int rc = cli_run("bench --model convnet --batch 4 --k 10 --steps 1 --threads 1 --profile --json %s", p);
    cJSON *doc = NULL;
    NcError err;
    CHECK(rc == 0 && json_load(p, &doc, &err) == NC_OK && strstr(cli_out, "key encoder forward"),
          "MoCo step: runs (exit %d), the key encoder's forward is a row", rc);
    int queue = 0, key = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "memory"), "buffers")) {
        queue += strcmp(str(r, "name"), "MoCo: queue") == 0 && num(r, "bytes") == 10.0 * 128 * 4;
        key += strncmp(str(r, "name"), "key ", 4) == 0;
    }
    CHECK(queue == 1 && key > 0, "MoCo step: the queue (10 x 128 floats) and %d buffers of the key executor are listed", key);
    cJSON_Delete(doc);
    /* with oneDNN held to AVX2, the own kernels run (nChw8c): Winograd and the fused bn+relu+pool */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        setenv("ONEDNN_MAX_CPU_ISA", "AVX2", 1);
        int w = check_profile("convnet", 4, 6, 2, "Winograd");
        CHECK(w >= 2 * 4, "convnet (AVX2): %d rows ran Winograd (2 layers x 4 parts)", w);
        CHECK(strstr(cli_out, "bn1+relu+pool") && strstr(cli_out, "Winograd scratch"),
              "convnet (AVX2): the fused bn+relu+pool row and the Winograd buffers are listed");
        unsetenv("ONEDNN_MAX_CPU_ISA");
    }
    return check_done();
}
