// cmd_bench.c -- `ncelab bench --theory`: timings of the theory engine (medians of repeats).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "ncelab/bench.h"
#include "ncelab/jsonio.h"
#include "ncelab/theory.h"
#include "ncelab/rng.h"

#include <omp.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Seconds for a certified sweep of N = 10 classes over k = 1..4096 (13 values). */
static double bench_sweep(const char *spec, int *optimal) {
    NcError err = {0};
    double rho[10];
    TheoryModel m;
    if (theory_rho_parse(spec, 10, rho, &err) || theory_model_init(&m, 10, rho, NULL, 0, 1.0, 0, THEORY_INFONCE, &err))
        cli_die(&err);
    long *ks;
    int nk;
    nc_parse_klist("1..4096", "--k", &ks, &nk, &err);
    TheorySolveOpts so;
    theory_solve_opts_default(&so);
    TheorySolution *s = nc_malloc(sizeof(TheorySolution) * nk);
    double t0 = nc_now();
    if (theory_sweep(&m, ks, nk, &so, s, NULL, NULL, &err)) cli_die(&err);
    double t = nc_now() - t0;
    *optimal = 1;
    for (int i = 0; i < nk; i++) { *optimal &= s[i].cert.optimal; theory_solution_free(&s[i]); }
    free(s); free(ks);
    theory_model_free(&m);
    return t;
}

static long opt_long(const Opt *o, int no, const char *name, long dflt, long lo, long hi) {
    NcError err = {0};
    const char *v = args_get(o, no, name);
    long out = dflt;
    char what[64];
    snprintf(what, sizeof what, "--%s", name);
    if (v && nc_parse_long(v, what, lo, hi, &out, &err)) cli_die(&err);
    return out;
}

/* ncelab bench --model M: the training step, reported as images/s, ms/step and peak RSS. */
static int bench_model(const Opt *o, int no) {
    NcError err = {0};
    BenchConfig c = {0};
    c.model = args_get(o, no, "model");
    c.batch = (int)opt_long(o, no, "batch", 256, 1, 65536);
    c.k = (int)opt_long(o, no, "k", c.batch * 2 - 2 < 255 ? c.batch * 2 - 2 : 255, 1, 1000000000L);
    c.threads = (int)opt_long(o, no, "threads", 0, 1, 1024);
    c.steps = (int)opt_long(o, no, "steps", 10, 1, 100000);
    c.warmup = 3;
    c.c = 3; c.h = 32; c.w = 32;
    const char *be = args_get(o, no, "backend");
    if (!be || strcmp(be, "dnnl") == 0) c.backend = NN_BACKEND_DNNL;
    else if (strcmp(be, "ref") == 0) c.backend = NN_BACKEND_REF;
    else { nc_fail(&err, NC_EUSAGE, "--backend: expected dnnl or ref, got '%s'", be); cli_die(&err); }
    BenchResult r;
    if (bench_train_step(&c, &r, &err)) cli_die(&err);
    int threads = c.threads > 0 ? c.threads : omp_get_max_threads();
    printf("%s, batch %d (%d images a step), k = %d, %d threads, %s backend\n", c.model, c.batch, 2 * c.batch, c.k,
           threads, c.backend == NN_BACKEND_DNNL ? "oneDNN" : "reference");
    printf("  %.1f images/s   %.2f ms/step (median of %d)   peak RSS %.0f MB\n", r.imgs_per_sec, r.ms_per_step,
           c.steps, r.peak_rss_mb);
    if (r.conv_ms > 0)
        printf("  convolutions: %.1f GFLOP/step (counted as direct convolutions) in %.1f ms = %.0f GFLOP/s, %.0f%% of the "
               "measured FMA peak (%.0f GFLOP/s; above 100%%: Winograd multiplies less); the rest of the step %.1f ms\n",
               r.conv_gflop, r.conv_ms, r.conv_gflops,
               r.fma_peak_gflops > 0 ? 100.0 * r.conv_gflops / r.fma_peak_gflops : 0.0, r.fma_peak_gflops, r.other_ms);
    const char *jpath = args_get(o, no, "json");
    if (jpath) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "model", c.model);
        cJSON_AddNumberToObject(doc, "batch", c.batch);
        cJSON_AddNumberToObject(doc, "k", c.k);
        cJSON_AddNumberToObject(doc, "threads", threads);
        cJSON_AddNumberToObject(doc, "imgs_per_sec", r.imgs_per_sec);
        cJSON_AddNumberToObject(doc, "ms_per_step", r.ms_per_step);
        cJSON_AddNumberToObject(doc, "peak_rss_mb", r.peak_rss_mb);
        cJSON_AddNumberToObject(doc, "conv_gflop_per_step", r.conv_gflop);
        cJSON_AddNumberToObject(doc, "conv_ms_per_step", r.conv_ms);
        cJSON_AddNumberToObject(doc, "conv_gflops", r.conv_gflops);
        cJSON_AddNumberToObject(doc, "fma_peak_gflops", r.fma_peak_gflops);
        cJSON_AddStringToObject(doc, "backend", c.backend == NN_BACKEND_DNNL ? "dnnl" : "ref");
        if (json_save(jpath, doc, &err)) cli_die(&err);
        cJSON_Delete(doc);
    }
    return 0;
}

int bench_loader(int argc, char **argv);

int cmd_bench(int argc, char **argv) {
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--loader") == 0) return bench_loader(argc, argv);
    Opt o[] = {
        {"theory", 0, "time the theory engine", NULL},
        {"repeats", 1, "R  repeats for each median (default 5)", NULL},
        {"json", 1, "FILE  write the timings as JSON", NULL},
        {"model", 1, "M  time training steps of convnet or resnet18 (3 x 32 x 32 images)", NULL},
        {"batch", 1, "B  anchors per batch (2B images a step; default 256)", NULL},
        {"k", 1, "K  negatives per anchor (default min(2B - 2, 255))", NULL},
        {"threads", 1, "T  OpenMP threads (default: all cores)", NULL},
        {"steps", 1, "S  timed steps (default 10, after 3 warm-up steps)", NULL},
        {"backend", 1, "NAME  dnnl (default) or ref (the plain-loop layers)", NULL},
    };
    int no = sizeof o / sizeof o[0], npos, help;
    const char *pos[1];
    NcError err = {0};
    if (args_parse(argc, argv, 2, o, no, pos, 0, &npos, &help, &err)) cli_die(&err);
    if (help) {
        args_usage(stdout, "bench --theory [--repeats R] [--json FILE]\n"
                           "       ncelab bench --model convnet|resnet18 [--batch B] [--k K] [--threads T] [--steps S] [--json FILE]\n"
                           "       ncelab bench --loader [options]     (ncelab bench --loader --help)",
                   "Times the theory engine: a certified sweep of N = 10 classes over the 13 values\n"
                   "k = 1..4096 (uniform and zipf:1), one exact loss-and-gradient evaluation at N = 100,\n"
                   "k = 1e6, and a certified solve with M = 100 overlapping points. Prints medians.", o, no);
        return 0;
    }
    if (args_get(o, no, "model")) return bench_model(o, no);
    if (!args_get(o, no, "theory")) {
        nc_fail(&err, NC_EUSAGE, "bench: say what to time (--theory, --model M or --loader)");
        cli_die(&err);
    }
    long reps = 5;
    if (args_get(o, no, "repeats") && nc_parse_long(args_get(o, no, "repeats"), "--repeats", 1, 1000, &reps, &err))
        cli_die(&err);
    int R = (int)reps, ok_u = 1, ok_z = 1, ok;
    double *t = nc_malloc(sizeof(double) * (R > 30 ? R : 30));
    printf("theory engine, %d threads, medians of %d repeats\n", omp_get_max_threads(), R);

    for (int r = 0; r < R; r++) { t[r] = bench_sweep("uniform", &ok); ok_u &= ok; }
    double sweep_u = median(t, R);
    for (int r = 0; r < R; r++) { t[r] = bench_sweep("zipf:1", &ok); ok_z &= ok; }
    double sweep_z = median(t, R);
    printf("  sweep N=10, k=1..4096 (13 values), uniform: %8.3f s   all certified: %s\n", sweep_u, ok_u ? "yes" : "NO");
    printf("  sweep N=10, k=1..4096 (13 values), zipf:1:  %8.3f s   all certified: %s\n", sweep_z, ok_z ? "yes" : "NO");

    /* one evaluation at N = 100, k = 1e6, at a random feasible Gram matrix */
    int N = 100;
    double *rho = nc_malloc(sizeof(double) * N);
    TheoryModel m;
    theory_rho_parse("zipf:1", N, rho, &err);
    theory_model_init(&m, N, rho, NULL, 0, 1.0, 0, THEORY_INFONCE, &err);
    double *G = nc_malloc(sizeof(double) * N * N), *C = nc_malloc(sizeof(double) * N * N);
    double *F = nc_malloc(sizeof(double) * N * N);
    Rng rg;
    rng_init(&rg, 3, 0, 0, 0);
    for (int x = 0; x < N; x++) {
        double s = 0;
        for (int j = 0; j < N; j++) {
            F[x * N + j] = rng_normal(&rg);
            s += F[x * N + j] * F[x * N + j];
        }
        for (int j = 0; j < N; j++) F[x * N + j] /= sqrt(s);
    }
    for (int x = 0; x < N; x++)
        for (int y = 0; y < N; y++) {
            double s = 0;
            for (int j = 0; j < N; j++) s += F[x * N + j] * F[y * N + j];
            G[x * N + y] = s;
        }
    int ne = 30;
    for (int r = 0; r < ne; r++) {
        double t0 = nc_now();
        theory_loss(&m, 1000000, G, C);
        t[r] = nc_now() - t0;
    }
    double eval_ms = 1e3 * median(t, ne);
    printf("  loss + gradient, N=100, k=1e6:               %8.3f ms\n", eval_ms);
    theory_model_free(&m);
    free(G); free(C); free(F); free(rho);

    /* M = 100 overlapping points: 10 classes, each with 10 own points, 20% mass spread */
    double *P;
    theory_support_banded(10, 100, 0.2, &P);
    double rho10[10];
    theory_rho_parse("uniform", 10, rho10, &err);
    theory_model_init(&m, 10, rho10, P, 100, 1.0, 0, THEORY_INFONCE, &err);
    TheorySolveOpts so;
    theory_solve_opts_default(&so);
    TheorySolution sol;
    double t0 = nc_now();
    if (theory_solve(&m, 64, NULL, &so, &sol, &err)) cli_die(&err);
    double overlap_s = nc_now() - t0;
    printf("  solve + certify, M=100 overlapping, k=64:    %8.3f s   gap %.1e  optimal: %s\n", overlap_s,
           sol.cert.gap, sol.cert.optimal ? "yes" : "NO");
    const char *jpath = args_get(o, no, "json");
    if (jpath) {
        cJSON *doc = cJSON_CreateObject(), *th = cJSON_AddObjectToObject(doc, "theory");
        cJSON_AddNumberToObject(th, "threads", omp_get_max_threads());
        cJSON_AddNumberToObject(th, "repeats", R);
        cJSON_AddNumberToObject(th, "sweep_uniform_seconds", sweep_u);
        cJSON_AddNumberToObject(th, "sweep_zipf_seconds", sweep_z);
        cJSON_AddBoolToObject(th, "sweeps_certified", ok_u && ok_z);
        cJSON_AddNumberToObject(th, "eval_n100_k1e6_ms", eval_ms);
        cJSON_AddNumberToObject(th, "overlap_m100_seconds", overlap_s);
        cJSON_AddBoolToObject(th, "overlap_certified", sol.cert.optimal);
        if (json_save(jpath, doc, &err)) cli_die(&err);
        cJSON_Delete(doc);
    }
    theory_solution_free(&sol);
    theory_model_free(&m);
    free(P);
    free(t);
    return 0;
}
