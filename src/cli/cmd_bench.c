// cmd_bench.c -- `ncelab bench`: timings of the theory engine (--theory), the training step (--model)
// and the collectives of data-parallel training (--comm), as medians of repeats.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "ncelab/bench.h"
#include "ncelab/comm.h"
#include "ncelab/jsonio.h"
#include "ncelab/net.h"
#include "ncelab/theory.h"
#include "ncelab/rng.h"

#include <omp.h>
#include <signal.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>


/* Seconds for a certified sweep of N = 10 classes over k = 1..4096 (13 values). */
static double bench_sweep(const char *spec, int *optimal) {
    NcError err = {0};
    double rho[10];
    TheoryModel m;
    if (theory_rho_parse(spec, 10, rho, &err) || theory_model_init(&m, 10, rho, NULL, 0, 1.0, 0, NC_LOSS_INFONCE, &err))
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

/* busy_start: n processes that spin until busy_stop kills them (the other work of a busy machine) */
static void busy_start(pid_t *pids, int n) {
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            volatile unsigned long x = 0;
            for (;;) x++;
        }
    }
}

static void busy_stop(pid_t *pids, int n) {
    for (int i = 0; i < n; i++)
        if (pids[i] > 0) kill(pids[i], SIGKILL);
    for (int i = 0; i < n; i++)
        if (pids[i] > 0) waitpid(pids[i], NULL, 0);
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

/* ---- --profile: the per-layer table, the summary by category, the memory ---- */

/* one category's sums over the profile's rows */
typedef struct { char name[32]; double ms, flops; } ProfCat;

/* prof_categories: the rows' time and FLOPs by category, largest time first; returns how many */
static int prof_categories(const BenchProfile *p, ProfCat *cat, int cap) {
    int n = 0;
    for (int r = 0; r < p->nrows; r++) {
        int j = 0;
        while (j < n && strcmp(cat[j].name, p->rows[r].category) != 0) j++;
        if (j == n) {
            if (n == cap) continue;
            memset(&cat[n], 0, sizeof cat[n]);
            snprintf(cat[n++].name, sizeof cat[0].name, "%s", p->rows[r].category);
        }
        cat[j].ms += p->rows[r].ms;
        cat[j].flops += p->rows[r].flops;
    }
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && cat[j - 1].ms < cat[j].ms; j--) { ProfCat t = cat[j]; cat[j] = cat[j - 1]; cat[j - 1] = t; }
    return n;
}

/* one kind's sum over the memory rows */
typedef struct { char kind[40]; double bytes; int count; } MemKind;

static int mem_kinds(const BenchProfile *p, MemKind *k, int cap) {
    int n = 0;
    for (int r = 0; r < p->nmem; r++) {
        int j = 0;
        while (j < n && strcmp(k[j].kind, p->mem[r].kind) != 0) j++;
        if (j == n) {
            if (n == cap) continue;
            memset(&k[n], 0, sizeof k[n]);
            snprintf(k[n++].kind, sizeof k[0].kind, "%s", p->mem[r].kind);
        }
        k[j].bytes += (double)p->mem[r].bytes;
        k[j].count++;
    }
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && k[j - 1].bytes < k[j].bytes; j--) { MemKind t = k[j]; k[j] = k[j - 1]; k[j - 1] = t; }
    return n;
}

static double gflops_of(double flops, double ms) { return ms > 0 ? flops / (1e6 * ms) : 0.0; }

static void prof_print(const BenchResult *r, int threads) {
    const BenchProfile *p = &r->prof;
    double peak = r->fma_peak_gflops;
    printf("\nprofile: medians of %d steps, every layer waiting for its result; %%peak of the measured FMA peak at %d bits,\n"
           "%.0f GFLOP/s on %d threads (AVX2 %.0f, AVX-512 %.0f); FLOPs counted as direct convolutions (Winograd can\n"
           "pass 100%%); bytes: each tensor the pass reads or writes, once\n",
           p->steps, r->fma_bits, peak, threads, r->fma_peak_avx2_gflops, r->fma_peak_avx512_gflops);
    printf("  %-28s %-8s %-26s %8s %8s %9s %8s %6s %7s\n", "layer", "pass", "path", "GFLOP", "MB", "ms", "GFLOP/s",
           "%peak", "GB/s");
    for (int j = 0; j < p->nrows; j++) {
        const BenchProfRow *w = &p->rows[j];
        double gf = gflops_of(w->flops, w->ms);
        char f[16] = "-", g[16] = "-", pk[16] = "-";
        if (w->flops > 0) {
            snprintf(f, sizeof f, "%.3f", w->flops * 1e-9);
            snprintf(g, sizeof g, "%.1f", gf);
            if (peak > 0) snprintf(pk, sizeof pk, "%.0f", 100.0 * gf / peak);
        }
        printf("  %-28s %-8s %-26.26s %8s %8.1f %9.3f %8s %6s %7.1f\n", w->name, w->pass, w->path, f, w->bytes * 1e-6,
               w->ms, g, pk, w->ms > 0 ? w->bytes / (1e6 * w->ms) : 0.0);
    }
    printf("  step total %.2f ms = rows %.2f ms + rest of the step %.2f ms (per step: the step's time minus its rows,"
           " never negative)\n  median of the profiled steps %.2f ms; of the unprofiled steps %.2f ms\n",
           p->total_ms, p->rows_ms, p->rest_ms, p->step_ms, r->ms_per_step);
    ProfCat cat[48];
    int nc = prof_categories(p, cat, 48);
    printf("\n  by category %21s %7s %8s %6s\n", "ms", "share", "GFLOP/s", "%peak");
    for (int j = 0; j < nc; j++) {
        double gf = gflops_of(cat[j].flops, cat[j].ms);
        printf("  %-32s %9.2f %6.1f%% %8.1f %6.0f\n", cat[j].name, cat[j].ms,
               p->total_ms > 0 ? 100.0 * cat[j].ms / p->total_ms : 0.0, gf, peak > 0 ? 100.0 * gf / peak : 0.0);
    }
    printf("  %-32s %9.2f %6.1f%%\n", "rest of the step", p->rest_ms, p->total_ms > 0 ? 100.0 * p->rest_ms / p->total_ms : 0.0);

    MemKind mk[48];
    int nk = mem_kinds(p, mk, 48);
    printf("\nmemory: peak RSS %.1f MB; every buffer below is allocated before the first step and alive at the peak\n",
           r->peak_rss_mb);
    for (int j = 0; j < nk; j++)
        printf("  %-40s %9.1f MB  (%d buffer%s)\n", mk[j].kind, mk[j].bytes / 1048576.0, mk[j].count, mk[j].count > 1 ? "s" : "");
    printf("  %-40s %9.1f MB\n  %-40s %9.1f MB\n", "sum of the buffers", p->mem_bytes / 1048576.0,
           "rest of the RSS (code, libraries, heap)", r->peak_rss_mb - p->mem_bytes / 1048576.0);
    /* the largest single buffers */
    int top[12], nt = 0;
    for (int t = 0; t < 12; t++) {
        int best = -1;
        for (int j = 0; j < p->nmem; j++) {
            int used = 0;
            for (int u = 0; u < nt; u++) used |= top[u] == j;
            if (!used && (best < 0 || p->mem[j].bytes > p->mem[best].bytes)) best = j;
        }
        if (best >= 0) top[nt++] = best;
    }
    printf("  the largest buffers:\n");
    for (int t = 0; t < nt; t++)
        printf("    %-36s %-40s %8.1f MB\n", p->mem[top[t]].name, p->mem[top[t]].kind, p->mem[top[t]].bytes / 1048576.0);
}

/* prof_json: the profile as doc.profile and doc.memory */
static void prof_json(cJSON *doc, const BenchResult *r) {
    const BenchProfile *p = &r->prof;
    double peak = r->fma_peak_gflops;
    cJSON *pj = cJSON_AddObjectToObject(doc, "profile");
    cJSON_AddNumberToObject(pj, "steps", p->steps);
    cJSON_AddNumberToObject(pj, "step_ms", p->total_ms);
    cJSON_AddNumberToObject(pj, "rows_ms", p->rows_ms);
    cJSON_AddNumberToObject(pj, "rest_ms", p->rest_ms);
    cJSON_AddNumberToObject(pj, "profiled_step_median_ms", p->step_ms);
    cJSON_AddNumberToObject(pj, "fma_peak_gflops", peak);
    cJSON *rows = cJSON_AddArrayToObject(pj, "rows");
    for (int j = 0; j < p->nrows; j++) {
        const BenchProfRow *w = &p->rows[j];
        double gf = gflops_of(w->flops, w->ms);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", w->name);
        cJSON_AddStringToObject(o, "pass", w->pass);
        cJSON_AddStringToObject(o, "path", w->path);
        cJSON_AddStringToObject(o, "category", w->category);
        cJSON_AddNumberToObject(o, "node", w->node);
        cJSON_AddNumberToObject(o, "flops", w->flops);
        cJSON_AddNumberToObject(o, "bytes", w->bytes);
        cJSON_AddNumberToObject(o, "ms", w->ms);
        cJSON_AddNumberToObject(o, "gflops", gf);
        cJSON_AddNumberToObject(o, "peak_frac", peak > 0 ? gf / peak : 0.0);
        cJSON_AddItemToArray(rows, o);
    }
    ProfCat cat[48];
    int nc = prof_categories(p, cat, 48);
    cJSON *cj = cJSON_AddArrayToObject(pj, "categories");
    for (int j = 0; j < nc; j++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "category", cat[j].name);
        cJSON_AddNumberToObject(o, "ms", cat[j].ms);
        cJSON_AddNumberToObject(o, "flops", cat[j].flops);
        cJSON_AddItemToArray(cj, o);
    }
    cJSON *mj = cJSON_AddObjectToObject(doc, "memory");
    cJSON_AddNumberToObject(mj, "peak_rss_mb", r->peak_rss_mb);
    cJSON_AddNumberToObject(mj, "buffers_mb", p->mem_bytes / 1048576.0);
    cJSON *bufs = cJSON_AddArrayToObject(mj, "buffers");
    for (int j = 0; j < p->nmem; j++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", p->mem[j].name);
        cJSON_AddStringToObject(o, "kind", p->mem[j].kind);
        cJSON_AddNumberToObject(o, "bytes", (double)p->mem[j].bytes);
        cJSON_AddItemToArray(bufs, o);
    }
}

/* ncelab bench --model M: the training step, reported as images/s, ms/step and peak RSS. */
static int bench_model(const Opt *o, int no) {
    NcError err = {0};
    BenchConfig c = {0};
    c.model = args_get(o, no, "model");
    c.batch = (int)opt_long(o, no, "batch", 256, 2, 65536);
    c.k = (int)opt_long(o, no, "k", c.batch * 2 - 2 < 255 ? c.batch * 2 - 2 : 255, 1, 1000000);
    c.threads = args_threads(o, no);
    c.steps = (int)opt_long(o, no, "steps", 10, 1, 100000);
    c.warmup = 3;
    const char *sec = args_get(o, no, "seconds");
    if (sec && (nc_parse_double(sec, "--seconds", &c.seconds, &err) || !(c.seconds > 0 && c.seconds <= 3600))) {
        if (!err.code) nc_fail(&err, NC_EUSAGE, "--seconds: expected a time in seconds in (0, 3600], got '%s'", sec);
        cli_die(&err);
    }
    c.c = 3; c.h = 32; c.w = 32;
    c.profile = args_get(o, no, "profile") != NULL;
    const char *be = args_get(o, no, "backend");
    if (!be || strcmp(be, "dnnl") == 0) c.backend = NN_BACKEND_DNNL;
    else if (strcmp(be, "ref") == 0) c.backend = NN_BACKEND_REF;
    else { nc_fail(&err, NC_EUSAGE, "--backend: expected dnnl or ref, got '%s'", be); cli_die(&err); }
    BenchResult r;
    if (bench_train_step(&c, &r, &err)) cli_die(&err);
    int threads = c.threads > 0 ? c.threads : omp_get_max_threads();
    char qs[64] = "";
    if (r.queue) snprintf(qs, sizeof qs, " (from a queue of %d)", r.queue);
    printf("%s, batch %d (%d images a step), k = %d%s, %d threads, %s backend\n", c.model, c.batch, 2 * c.batch, c.k,
           qs, threads, c.backend == NN_BACKEND_DNNL ? "oneDNN" : "reference");
    printf("  %.1f images/s   %.2f ms/step (median of %d)   peak RSS %.0f MB\n", r.imgs_per_sec, r.ms_per_step,
           r.steps, r.peak_rss_mb);
    printf("  contrastive loss and its gradient: %.2f ms (%.1f%% of the step)\n", r.loss_ms,
           r.ms_per_step > 0 ? 100.0 * r.loss_ms / r.ms_per_step : 0.0);
    if (c.profile && r.conv_ms > 0)
        printf("  convolutions: %.1f GFLOP/step (counted as direct convolutions) in %.1f ms = %.0f GFLOP/s, %.0f%% of the "
               "measured FMA peak (%.0f GFLOP/s; above 100%%: Winograd multiplies less); everything else %.1f ms\n",
               r.conv_gflop, r.conv_ms, r.conv_gflops,
               r.fma_peak_gflops > 0 ? 100.0 * r.conv_gflops / r.fma_peak_gflops : 0.0, r.fma_peak_gflops, r.other_ms);
    if (c.profile) prof_print(&r, threads);
    const char *jpath = args_get(o, no, "json");
    if (jpath) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "model", c.model);
        cJSON_AddNumberToObject(doc, "batch", c.batch);
        cJSON_AddNumberToObject(doc, "k", c.k);
        cJSON_AddNumberToObject(doc, "queue", r.queue);
        cJSON_AddNumberToObject(doc, "threads", threads);
        cJSON_AddNumberToObject(doc, "loss_ms", r.loss_ms);
        cJSON_AddNumberToObject(doc, "loss_share", r.ms_per_step > 0 ? r.loss_ms / r.ms_per_step : 0.0);
        cJSON_AddNumberToObject(doc, "imgs_per_sec", r.imgs_per_sec);
        cJSON_AddNumberToObject(doc, "ms_per_step", r.ms_per_step);
        cJSON_AddNumberToObject(doc, "steps", r.steps);
        cJSON_AddNumberToObject(doc, "seconds", c.seconds);
        cJSON_AddNumberToObject(doc, "ms_min", r.ms_min);
        cJSON_AddNumberToObject(doc, "ms_max", r.ms_max);
        cJSON *sm = cJSON_AddArrayToObject(doc, "steps_ms");
        for (int j = 0; r.steps_ms && j < r.steps; j++) cJSON_AddItemToArray(sm, cJSON_CreateNumber(r.steps_ms[j]));
        cJSON_AddNumberToObject(doc, "peak_rss_mb", r.peak_rss_mb);
        if (c.profile) {
            cJSON_AddNumberToObject(doc, "conv_gflop_per_step", r.conv_gflop);
            cJSON_AddNumberToObject(doc, "conv_ms_per_step", r.conv_ms);
            cJSON_AddNumberToObject(doc, "conv_gflops", r.conv_gflops);
            prof_json(doc, &r);
        }
        cJSON_AddNumberToObject(doc, "fma_peak_gflops", r.fma_peak_gflops);
        cJSON_AddNumberToObject(doc, "fma_peak_avx2_gflops", r.fma_peak_avx2_gflops);
        cJSON_AddNumberToObject(doc, "fma_peak_avx512_gflops", r.fma_peak_avx512_gflops);
        cJSON_AddNumberToObject(doc, "fma_bits", r.fma_bits);
        cJSON_AddStringToObject(doc, "backend", c.backend == NN_BACKEND_DNNL ? "dnnl" : "ref");
        cJSON_AddNumberToObject(doc, "backward_ms", r.backward_ms);
        cJSON_AddNumberToObject(doc, "bucket_floats", (double)r.bucket_floats);
        cJSON *rd = cJSON_AddArrayToObject(doc, "bucket_ready_ms");
        for (int j = 0; j < r.nbuckets; j++) cJSON_AddItemToArray(rd, cJSON_CreateNumber(r.ready_ms[j]));
        if (json_save(jpath, doc, &err)) cli_die(&err);
        cJSON_Delete(doc);
    }
    bench_result_free(&r);
    return 0;
}

/* ncelab bench --comm: the collectives of data-parallel training, timed at its sizes, and a sweep
   of message sizes fitted by time = alpha + beta * bytes. */

enum { COMM_ALLREDUCE, COMM_ALLGATHER, COMM_REDUCE_SCATTER };
static const char *const comm_op_name[] = {"allreduce_f32", "allgather", "reduce_scatter_f32"};

typedef struct {
    int op;
    char what[64];
    double bytes;     /* the op's size: the all-reduced buffer, the gathered result, the scattered input */
    double median_s;
} CommTiming;

/* comm_time: the median over reps repetitions (after 2 warm-ups) of one collective on n elements
   (allreduce: floats; allgather: bytes from each rank; reduce_scatter: floats to each rank) in the
   buffers a and b. A repetition starts at a barrier and lasts until the slowest rank is done: its
   time is the largest of the ranks' times. */
static double comm_time(Comm *c, int op, size_t n, float *a, float *b, int reps) {
    NcError err = {0};
    long long *ns = nc_malloc(sizeof(long long) * reps);
    double *s = nc_malloc(sizeof(double) * reps);
    for (int r = -2; r < reps; r++) {
        if (c->barrier(c, &err)) cli_die(&err);
        double t0 = nc_now();
        int rc = op == COMM_ALLREDUCE   ? c->allreduce_f32(c, a, n, &err)
                 : op == COMM_ALLGATHER ? c->allgather(c, a, b, n, &err)
                                        : c->reduce_scatter_f32(c, a, b, n, &err);
        double t = nc_now() - t0;
        if (rc) cli_die(&err);
        if (r >= 0) ns[r] = llround(t * 1e9);
    }
    if (c->allreduce_max_i64(c, ns, (size_t)reps, &err)) cli_die(&err);
    for (int r = 0; r < reps; r++) s[r] = 1e-9 * (double)ns[r];
    double m = bench_median(s, reps);
    free(ns);
    free(s);
    return m;
}

/* comm_fit: alpha (s) and beta (s/byte) of time = alpha + beta * bytes by least squares of the
   relative error (weights 1 / time^2): the small messages fix the latency, the large ones the
   bandwidth (plain least squares would fit the large ones only, and alpha to their noise). */
static void comm_fit(const double *bytes, const double *t, int n, double *alpha, double *beta) {
    double s0 = 0, s1 = 0, s2 = 0, t0 = 0, t1 = 0;
    for (int i = 0; i < n; i++) {
        double ti = t[i] > 1e-9 ? t[i] : 1e-9, w = 1 / (ti * ti), mb = bytes[i] * 1e-6;
        s0 += w; s1 += w * mb; s2 += w * mb * mb; t0 += w * ti; t1 += w * mb * ti;
    }
    double det = s0 * s2 - s1 * s1, b = det > 0 ? (s0 * t1 - s1 * t0) / det : 0;  /* s per MB */
    *alpha = (t0 - b * s1) / s0;
    *beta = b * 1e-6;
}

/* comm_transport: "mpi, 1 node, btl tcp,self" -- what the launcher asked of Open MPI */
static void comm_transport(Comm *c, char *out, size_t cap) {
    NcError err = {0};
    if (strcmp(c->kind, "mpi") != 0) {
        snprintf(out, cap, "none (one process)");
        return;
    }
    enum { HOST = 72 };
    char host[HOST] = {0}, *all = nc_malloc((size_t)HOST * c->size);
    struct utsname u;
    if (uname(&u) == 0) snprintf(host, HOST, "%s", u.nodename);
    if (c->allgather(c, host, all, HOST, &err)) cli_die(&err);
    int nodes = 0;
    for (int i = 0; i < c->size; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++) seen |= strcmp(all + (size_t)i * HOST, all + (size_t)j * HOST) == 0;
        nodes += !seen;
    }
    free(all);
    const char *btl = getenv("OMPI_MCA_btl"), *pml = getenv("OMPI_MCA_pml");
    int k = snprintf(out, cap, "mpi, %d node%s, ", nodes, nodes > 1 ? "s" : "");
    if (!btl && !pml)
        snprintf(out + k, cap - k, "default transports%s", nodes == 1 ? " (shared memory)" : "");
    else
        snprintf(out + k, cap - k, "%s%s%s%s", btl ? "btl " : "", btl ? btl : "", pml ? (btl ? ", pml " : "pml ") : "",
                 pml ? pml : "");
}

static int bench_comm(const Opt *o, int no) {
    NcError err = {0};
    Comm *c = cli_comm();
    int P = c->size, R = (int)opt_long(o, no, "steps", 20, 1, 100000);
    const char *models[2] = {"convnet", "resnet18"};
    const int batch[2] = {256, 64};
    enum { E_MIN = 3, E_MAX = 26, NSWEEP = E_MAX - E_MIN + 1 };  /* 8 bytes .. 64 MiB */
    CommTiming t[6 + 2 * NSWEEP];
    int nt = 0;
    char transport[160];
    comm_transport(c, transport, sizeof transport);

    /* the models' sizes: the parameter block, the embedding width */
    size_t np[2], part[2], cap = ((size_t)1 << E_MAX) / sizeof(float);
    int rows[2], dim[2];
    for (int m = 0; m < 2; m++) {
        Net net;
        if (net_create(&net, models[m], 3, 32, 32, &err)) cli_die(&err);
        np[m] = net.n_param_floats;
        dim[m] = net.vals[net.embeddings].c;
        net_free(&net);
        rows[m] = 2 * batch[m] / P > 0 ? 2 * batch[m] / P : 1;  /* each rank's share of the 2B images */
        part[m] = (size_t)rows[m] * (size_t)dim[m];
        if (np[m] > cap) cap = np[m];
        if (part[m] * P > cap) cap = part[m] * P;
    }
    float *a = nc_malloc(cap * sizeof(float)), *b = nc_malloc(cap * sizeof(float));
    for (size_t i = 0; i < cap; i++) a[i] = b[i] = 1.0f;

    /* a training step: the parameter all-reduce, the embedding all-gather and its gradients'
       reduce-scatter. Bytes each rank sends with ring algorithms: an all-reduce of N bytes
       2 (P-1)/P N, an all-gather or reduce-scatter of P parts of E bytes (P-1) E each. */
    double step_bytes[2];
    for (int m = 0; m < 2; m++) {
        double pb = 4.0 * (double)np[m], eb = 4.0 * (double)part[m];
        t[nt] = (CommTiming){COMM_ALLREDUCE, "", pb, comm_time(c, COMM_ALLREDUCE, np[m], a, b, R)};
        snprintf(t[nt++].what, 64, "%s parameters", models[m]);
        t[nt] = (CommTiming){COMM_ALLGATHER, "", eb * P, comm_time(c, COMM_ALLGATHER, part[m] * 4, a, b, R)};
        snprintf(t[nt++].what, 64, "%s embeddings %dx%d a rank", models[m], rows[m], dim[m]);
        t[nt] = (CommTiming){COMM_REDUCE_SCATTER, "", eb * P, comm_time(c, COMM_REDUCE_SCATTER, part[m], a, b, R)};
        snprintf(t[nt++].what, 64, "%s embedding gradients", models[m]);
        step_bytes[m] = 2.0 * (P - 1) / P * pb + 2.0 * (P - 1) * eb;
    }
    /* the sweep: all-reduce of 8 B .. 64 MiB; all-gather of the same totals, P parts */
    double xb[2][NSWEEP], ts[2][NSWEEP], alpha[2], beta[2];
    for (int e = E_MIN; e <= E_MAX; e++) {
        size_t bytes = (size_t)1 << e, share = bytes / P > 0 ? bytes / P : 1;
        int i = e - E_MIN;
        xb[0][i] = (double)bytes;
        ts[0][i] = comm_time(c, COMM_ALLREDUCE, bytes / sizeof(float), a, b, R);
        t[nt++] = (CommTiming){COMM_ALLREDUCE, "sweep", xb[0][i], ts[0][i]};
        xb[1][i] = (double)(share * P);
        ts[1][i] = comm_time(c, COMM_ALLGATHER, share, a, b, R);
        t[nt++] = (CommTiming){COMM_ALLGATHER, "sweep", xb[1][i], ts[1][i]};
    }
    for (int k = 0; k < 2; k++) comm_fit(xb[k], ts[k], NSWEEP, &alpha[k], &beta[k]);
    free(a);
    free(b);
    if (c->rank != 0) return 0;

    printf("collectives, %d rank%s (%s), medians of %d repetitions (the slowest rank's time)\n", P, P > 1 ? "s" : "",
           transport, R);
    if (strcmp(c->kind, "single") == 0)
        printf("  one process (no mpirun, or ncelab built without MPI): the collectives are copies or nothing;\n"
               "  run `mpirun -np P ncelab bench --comm` to time a transport\n");
    /* "fit ms": what the line fitted below predicts, to show where one alpha and beta fall short */
    printf("  %-19s %-36s %12s %11s %9s %9s\n", "op", "what", "bytes", "median ms", "GB/s", "fit ms");
    for (int i = 0; i < nt; i++) {
        if (strcmp(t[i].what, "sweep") == 0) continue;
        int k = t[i].op == COMM_ALLREDUCE ? 0 : t[i].op == COMM_ALLGATHER ? 1 : -1;
        char fit[16] = "-";
        if (k >= 0) snprintf(fit, sizeof fit, "%.4f", 1e3 * (alpha[k] + beta[k] * t[i].bytes));
        printf("  %-19s %-36s %12.0f %11.4f %9.2f %9s\n", comm_op_name[t[i].op], t[i].what, t[i].bytes,
               1e3 * t[i].median_s, t[i].median_s > 0 ? t[i].bytes / t[i].median_s * 1e-9 : 0.0, fit);
    }
    printf("  sweep %12s %14s %9s %14s %9s\n", "bytes", "allreduce ms", "GB/s", "allgather ms", "GB/s");
    for (int i = 0; i < NSWEEP; i++)
        printf("        %12.0f %14.4f %9.2f %14.4f %9.2f\n", xb[0][i], 1e3 * ts[0][i],
               ts[0][i] > 0 ? xb[0][i] / ts[0][i] * 1e-9 : 0.0, 1e3 * ts[1][i],
               ts[1][i] > 0 ? xb[1][i] / ts[1][i] * 1e-9 : 0.0);
    printf("  fit time = alpha + beta bytes (least squares of the relative error, 8 B .. 64 MiB):\n");
    for (int k = 0; k < 2; k++)
        printf("    %-9s alpha = %8.2f us   beta = %.3e s/byte (%.2f GB/s)\n", k ? "allgather" : "allreduce",
               1e6 * alpha[k], beta[k], beta[k] > 0 ? 1e-9 / beta[k] : 0.0);
    printf("  bytes each rank sends a training step (ring algorithms: all-reduce of N bytes 2(P-1)/P N,\n"
           "  all-gather and reduce-scatter of P parts of E bytes (P-1) E each):\n");
    for (int m = 0; m < 2; m++)
        printf("    %-8s (B = %3d): %8.3f MB, measured %.3f ms\n", models[m], batch[m], step_bytes[m] * 1e-6,
               1e3 * (t[3 * m].median_s + t[3 * m + 1].median_s + t[3 * m + 2].median_s));

    const char *jpath = args_get(o, no, "json");
    if (jpath) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddNumberToObject(doc, "ranks", P);
        cJSON_AddStringToObject(doc, "transport", transport);
        cJSON_AddNumberToObject(doc, "repetitions", R);
        cJSON *ops = cJSON_AddArrayToObject(doc, "ops");
        for (int i = 0; i < nt; i++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "op", comm_op_name[t[i].op]);
            cJSON_AddStringToObject(x, "what", t[i].what);
            cJSON_AddNumberToObject(x, "bytes", t[i].bytes);
            cJSON_AddNumberToObject(x, "median_ms", 1e3 * t[i].median_s);
            cJSON_AddNumberToObject(x, "gbytes_per_s", t[i].median_s > 0 ? t[i].bytes / t[i].median_s * 1e-9 : 0.0);
            cJSON_AddItemToArray(ops, x);
        }
        cJSON *fit = cJSON_AddObjectToObject(doc, "fit");
        for (int k = 0; k < 2; k++) {
            cJSON *f = cJSON_AddObjectToObject(fit, k ? "allgather" : "allreduce");
            cJSON_AddNumberToObject(f, "alpha_us", 1e6 * alpha[k]);
            cJSON_AddNumberToObject(f, "beta_s_per_byte", beta[k]);
        }
        cJSON *sb = cJSON_AddObjectToObject(doc, "bytes_per_step");
        for (int m = 0; m < 2; m++) cJSON_AddNumberToObject(sb, models[m], step_bytes[m]);
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
        {"busy", 1, "N  --theory: also time the uniform sweep beside N busy loops (default 0)", NULL},
        {"json", 1, "FILE  write the timings as JSON", NULL},
        {"model", 1, "M  time training steps of convnet or resnet18 (3 x 32 x 32 images)", NULL},
        {"batch", 1, "B  anchors per batch (2B images a step; default 256)", NULL},
        {"k", 1, "K  negatives per anchor (default min(2B - 2, 255)); above 2B - 2 from a queue of K, as in train", NULL},
        ARGS_THREADS,
        ARGS_THREADS_FORCE,
        {"steps", 1, "S  timed steps (default 10, after 3 warm-up steps); --comm: repetitions (default 20)", NULL},
        {"seconds", 1, "T  --model: time steps past S until T seconds have passed (rounds of equal wall time)", NULL},
        {"backend", 1, "NAME  dnnl (default) or ref (the plain-loop layers)", NULL},
        {"profile", 0, "--model: S more steps with every layer timed: a table per layer and pass, and the memory", NULL},
        {"comm", 0, "time the collectives of data-parallel training (under mpirun -np P)", NULL},
    };
    int no = sizeof o / sizeof o[0], npos, help;
    const char *pos[1];
    NcError err = {0};
    if (args_parse(argc, argv, 2, o, no, pos, 0, &npos, &help, &err)) cli_die(&err);
    if (help) {
        args_usage(stdout, "bench --theory [--repeats R] [--busy N] [--json FILE]\n"
                           "       ncelab bench --model convnet|resnet18 [--batch B] [--k K] [--threads T] [--steps S] [--seconds T]\n"
                           "                    [--profile] [--json FILE]\n"
                           "       ncelab bench --loader [options]     (ncelab bench --loader --help)\n"
                           "       mpirun -np P ncelab bench --comm [--steps R] [--json FILE]",
                   "Times the theory engine: a certified sweep of N = 10 classes over the 13 values\n"
                   "k = 1..4096 (uniform and zipf:1), one exact loss-and-gradient evaluation at N = 100,\n"
                   "k = 1e6, and a certified solve with M = 100 overlapping points. Prints medians.\n"
                   "--busy N times the uniform sweep again beside N processes that spin (a busy machine).\n\n"
                   "--comm times the collectives of a data-parallel step on P ranks: the all-reduce of the\n"
                   "parameter block of convnet and resnet18, the all-gather of the embeddings (2B/P rows of\n"
                   "each rank; B = 256 convnet, 64 resnet18) and the reduce-scatter of their gradients; and\n"
                   "all-reduce and all-gather from 8 B to 64 MiB, fitted by time = alpha + beta bytes. Each\n"
                   "time is the slowest rank's, the median of R repetitions after 2 warm-ups. bytes is the\n"
                   "all-reduced buffer, the gathered result, the scattered input; GB/s = bytes / time. The\n"
                   "bytes a rank sends a step count ring algorithms: 2(P-1)/P of the parameter bytes, and\n"
                   "(P-1)/P of the gathered embedding bytes twice. Without mpirun: one rank, copies.", o, no);
        return 0;
    }
    if (args_get(o, no, "comm")) {
        if (args_get(o, no, "model") || args_get(o, no, "theory")) {
            nc_fail(&err, NC_EUSAGE, "bench: --comm times the collectives alone (not with --model or --theory)");
            cli_die(&err);
        }
        return bench_comm(o, no);
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
    double sweep_u = bench_median(t, R);
    for (int r = 0; r < R; r++) { t[r] = bench_sweep("zipf:1", &ok); ok_z &= ok; }
    double sweep_z = bench_median(t, R);
    printf("  sweep N=10, k=1..4096 (13 values), uniform: %8.3f s   all certified: %s\n", sweep_u, ok_u ? "yes" : "NO");
    printf("  sweep N=10, k=1..4096 (13 values), zipf:1:  %8.3f s   all certified: %s\n", sweep_z, ok_z ? "yes" : "NO");
    int busy = (int)opt_long(o, no, "busy", 0, 0, 64);
    double sweep_busy = NAN;
    if (busy > 0) {
        pid_t pids[64];
        busy_start(pids, busy);
        int ok_b = 1;
        for (int r = 0; r < R; r++) { t[r] = bench_sweep("uniform", &ok); ok_b &= ok; }
        busy_stop(pids, busy);
        sweep_busy = bench_median(t, R);
        printf("  the uniform sweep beside %d busy loops:     %8.3f s   all certified: %s   (OMP_WAIT_POLICY %s)\n",
               busy, sweep_busy, ok_b ? "yes" : "NO", getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "unset");
    }

    /* one evaluation at N = 100, k = 1e6, at a random feasible Gram matrix */
    int N = 100;
    double *rho = nc_malloc(sizeof(double) * N);
    TheoryModel m;
    theory_rho_parse("zipf:1", N, rho, &err);
    theory_model_init(&m, N, rho, NULL, 0, 1.0, 0, NC_LOSS_INFONCE, &err);
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
    double eval_ms = 1e3 * bench_median(t, ne);
    printf("  loss + gradient, N=100, k=1e6:               %8.3f ms\n", eval_ms);
    theory_model_free(&m);
    free(G); free(C); free(F); free(rho);

    /* M = 100 overlapping points: 10 classes, each with 10 own points, 20% mass spread */
    double *P;
    theory_support_banded(10, 100, 0.2, &P);
    double rho10[10];
    theory_rho_parse("uniform", 10, rho10, &err);
    theory_model_init(&m, 10, rho10, P, 100, 1.0, 0, NC_LOSS_INFONCE, &err);
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
        if (busy > 0) {
            cJSON_AddNumberToObject(th, "busy_loops", busy);
            cJSON_AddNumberToObject(th, "sweep_uniform_busy_seconds", sweep_busy);
        }
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
