// test_cli_comm.c -- `ncelab bench --comm` end to end: its JSON (sizes checked against the models,
// a positive alpha-beta fit) on one process, and under mpirun when NCELAB_MPIEXEC names it; there
// also a failing rank ending the whole job with its exit code, and --help needing no MPI.
#define _DEFAULT_SOURCE
#include "check.h"
#include "cli_util.h"
#include "ncelab/jsonio.h"
#include "ncelab/net.h"

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* the op whose "what" starts with prefix */
static const cJSON *find_op(const cJSON *ops, const char *op, const char *prefix) {
    const cJSON *x;
    cJSON_ArrayForEach(x, ops) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(x, "op"), *w = cJSON_GetObjectItemCaseSensitive(x, "what");
        if (cJSON_IsString(o) && cJSON_IsString(w) && strcmp(o->valuestring, op) == 0 &&
            strncmp(w->valuestring, prefix, strlen(prefix)) == 0)
            return x;
    }
    return NULL;
}

/* checks the JSON of bench --comm on P ranks */
static void check_json(const char *path, int P) {
    cJSON *doc = NULL;
    NcError err = {0};
    CHECK(json_load(path, &doc, &err) == NC_OK, "P = %d: the JSON reads back (%s)", P, err.msg);
    if (!doc) return;
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(doc, "transport");
    CHECK(num(doc, "ranks") == P && cJSON_IsString(tr) && strncmp(tr->valuestring, P > 1 ? "mpi" : "none", 3) == 0,
          "P = %d: ranks %g, transport '%s'", P, num(doc, "ranks"), cJSON_IsString(tr) ? tr->valuestring : "?");
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(doc, "ops");
    CHECK(cJSON_GetArraySize(ops) == 6 + 2 * 24, "P = %d: 6 training ops and 24 sizes of 2 ops (%d)", P,
          cJSON_GetArraySize(ops));
    int fields = 1;
    const cJSON *x;
    cJSON_ArrayForEach(x, ops) fields &= num(x, "bytes") > 0 && num(x, "median_ms") >= 0 && isfinite(num(x, "gbytes_per_s"));
    CHECK(fields, "P = %d: every op has bytes, median_ms, gbytes_per_s", P);

    /* sizes from the models themselves */
    const char *models[2] = {"convnet", "resnet18"};
    const int batch[2] = {256, 64};
    const cJSON *sb = cJSON_GetObjectItemCaseSensitive(doc, "bytes_per_step");
    for (int m = 0; m < 2; m++) {
        Net net;
        if (net_create(&net, models[m], 3, 32, 32, &err)) { CHECK(0, "net_create %s: %s", models[m], err.msg); continue; }
        double pb = 4.0 * (double)net.n_param_floats, eb = 4.0 * (2 * batch[m] / P) * net.vals[net.embeddings].c;
        net_free(&net);
        const cJSON *ar = find_op(ops, "allreduce_f32", models[m]), *ag = find_op(ops, "allgather", models[m]);
        const cJSON *rs = find_op(ops, "reduce_scatter_f32", models[m]);
        CHECK(ar && num(ar, "bytes") == pb && ag && num(ag, "bytes") == eb * P && rs && num(rs, "bytes") == eb * P,
              "P = %d, %s: all-reduce of %.0f parameter bytes, all-gather and reduce-scatter of %.0f embedding bytes",
              P, models[m], pb, eb * P);
        double want = 2.0 * (P - 1) / P * pb + 2.0 * (P - 1) * eb;
        CHECK(fabs(num(sb, models[m]) - want) <= 1e-9 * want, "P = %d, %s: %.0f bytes sent a step (want %.0f)", P,
              models[m], num(sb, models[m]), want);
    }
    const cJSON *sweep8 = find_op(ops, "allreduce_f32", "sweep");
    CHECK(sweep8 && num(sweep8, "bytes") == 8, "P = %d: the sweep starts at 8 bytes (%g)", P, sweep8 ? num(sweep8, "bytes") : -1);

    if (P > 1) {
        const cJSON *fit = cJSON_GetObjectItemCaseSensitive(doc, "fit");
        for (int k = 0; k < 2; k++) {
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(fit, k ? "allgather" : "allreduce");
            double a = num(f, "alpha_us"), b = num(f, "beta_s_per_byte");
            /* a latency between 10 ns and 10 ms, a bandwidth between 10 MB/s and 10 TB/s */
            CHECK(isfinite(a) && a > 0.01 && a < 1e4 && isfinite(b) && b > 1e-13 && b < 1e-7,
                  "P = %d, %s fit: alpha %.3g us, beta %.3g s/byte", P, k ? "allgather" : "allreduce", a, b);
        }
    }
    cJSON_Delete(doc);
}

int main(void) {
    cli_setup("cli_comm");
    char json[400];
    snprintf(json, sizeof json, "%s/comm.json", cli_dir);

    /* one process, no mpirun: P = 1, said so */
    int rc = cli_run("bench --comm --steps 2 --json %s", json);
    CHECK(rc == 0 && strstr(cli_out, "one process (no mpirun"), "bench --comm without mpirun: one rank (exit %d) %.*s", rc,
          (int)strcspn(cli_err, "\n"), cli_err);
    check_json(json, 1);
    rc = cli_run("bench --comm --model convnet");
    int refused = rc == 2 && strstr(cli_err, "--comm");
    CHECK(refused, "--comm with --model is refused: %.*s", (int)strcspn(cli_err, "\n"), cli_err);
    if (!refused) printf("      exit %d, stderr:\n%.2000s\n", rc, cli_err);  /* all of it: a sanitizer's report follows */

    const char *mpiexec = getenv("NCELAB_MPIEXEC");
    if (!mpiexec) {
        printf("(NCELAB_MPIEXEC not set: the runs under mpirun are skipped)\n");
        return check_done();
    }
    /* under mpirun: cli_run runs "$NCELAB_BIN args", so the launcher goes in front of the binary */
    const char *bin = getenv("NCELAB_BIN");
    char launched[1024];
    snprintf(launched, sizeof launched, "%s -n 2 %s", mpiexec, bin ? bin : "./ncelab");
    setenv("NCELAB_BIN", launched, 1);
    remove(json);
    rc = cli_run("bench --comm --steps 3 --json %s", json);
    int tables = 0;
    for (const char *p = cli_out; (p = strstr(p, "collectives, ")); p++) tables++;
    CHECK(rc == 0 && tables == 1 && strstr(cli_out, "2 ranks"), "mpirun -n 2 bench --comm: exit %d, %d table(s) (rank 0 "
          "prints) %.*s", rc, tables, (int)strcspn(cli_err, "\n"), cli_err);
    check_json(json, 2);

    /* rank 0 cannot write the JSON: the whole job ends with its code (NC_EFILE) */
    rc = cli_run("bench --comm --steps 1 --json /proc/ncelab-no/such/dir/x.json");
    CHECK(rc == NC_EFILE && strstr(cli_err, "ncelab: rank 0 of 2: ") && strstr(cli_err, "no/such/dir"),
          "a rank that fails ends the job with its exit code (%d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    rc = cli_run("bench --comm --help");
    CHECK(rc == 0 && strstr(cli_out, "--comm"), "bench --comm --help under mpirun (exit %d)", rc);
    rc = cli_run("--version");
    CHECK(rc == 0 && strstr(cli_out, "ncelab "), "--version under mpirun (exit %d)", rc);
    return check_done();
}
