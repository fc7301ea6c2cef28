// cmd_explore.c -- `ncelab theory explore`: many instances, each a certified sweep; where more negatives hurt.
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "ncelab/explore.h"
#include "ncelab/progress.h"

/* explore_run's first report is the instances read back from the journal: shown as done, kept
   out of the rate */
typedef struct {
    Progress bar;
    int started;
} ExploreBar;

static void on_progress(void *ctx, long done, long total) {
    ExploreBar *x = ctx;
    (void)total;
    if (!x->started) progress_resumed(&x->bar, done);
    else progress_update(&x->bar, done);
    x->started = 1;
}

/* splits s at sep into malloc'd items; an empty item is NC_EUSAGE naming what */
static char **split(const char *s, char sep, const char *what, int *n) {
    NcError err = {0};
    if (!*s) { nc_fail(&err, NC_EUSAGE, "%s: empty list", what); cli_die(&err); }
    int cap = 1;
    for (const char *p = s; *p; p++) cap += *p == sep;
    char **v = nc_malloc(sizeof(char *) * cap);
    *n = 0;
    const char *p = s;
    for (;;) {
        const char *e = strchr(p, sep);
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0) { nc_fail(&err, NC_EUSAGE, "%s: item %d of '%s' is empty", what, *n + 1, s); cli_die(&err); }
        v[*n] = nc_malloc(len + 1);
        memcpy(v[*n], p, len);
        v[*n][len] = '\0';
        (*n)++;
        if (!e) break;
        p = e + 1;
    }
    return v;
}

static void free_items(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

static void parse_classes(const char *s, int *lo, int *hi) {
    NcError err = {0};
    const char *dots = strstr(s, "..");
    long a, b;
    if (dots) {
        char *x = nc_strdup(s);
        x[dots - s] = '\0';
        int bad = nc_parse_long(x, "--classes", -1000000, 1000000, &a, NULL) ||
                  nc_parse_long(x + (dots - s) + 2, "--classes", -1000000, 1000000, &b, NULL);
        free(x);
        if (bad) { nc_fail(&err, NC_EUSAGE, "--classes: '%s' is not N or a range A..B of integers", s); cli_die(&err); }
    } else {
        if (nc_parse_long(s, "--classes", -1000000, 1000000, &a, &err)) cli_die(&err);
        b = a;
    }
    if (a < 2) { nc_fail(&err, NC_EUSAGE, "--classes: need at least 2 classes, got %ld", a); cli_die(&err); }
    if (b < a) { nc_fail(&err, NC_EUSAGE, "--classes: empty range %ld..%ld", a, b); cli_die(&err); }
    if (b > 200) { nc_fail(&err, NC_EUSAGE, "--classes: at most 200 classes, got %ld", b); cli_die(&err); }
    *lo = (int)a;
    *hi = (int)b;
}

int cmd_theory_explore(int argc, char **argv) {
    Opt o[] = {
        {"out", 1, "DIR  where explore.json, explore.csv, explore.html and the journal go (required)", NULL},
        {"instances", 1, "N  random instances (default 100)", NULL},
        {"seed", 1, "S  seed of the random instances (default 1)", NULL},
        {"classes", 1, "A..B  number of classes, every integer in the range, or N (default 3..8)", NULL},
        {"families", 1, "LIST  priors: uniform, dirichlet:A, zipf[:S], heavy[:W] "
                        "(default dirichlet:0.3,dirichlet:1,dirichlet:3,zipf,heavy)", NULL},
        {"rho", 1, "SPECS  instead of random instances, a grid: --rho texts of `ncelab theory` separated by ';'", NULL},
        {"norm", 1, "LIST  norm bounds R, comma-separated (default 1)", NULL},
        {"loss", 1, "LIST  infonce, nce or infonce,nce (default infonce)", NULL},
        {"supports", 1, "LIST  disjoint, overlap:S (S points shared by all classes) (default disjoint)", NULL},
        {"support", 1, "FILE  one JSON N x M support for every instance, as `ncelab theory --support` (fixes N)", NULL},
        {"k", 1, "LIST  negatives, as `ncelab theory --k` (default 1..4096); k = 1e9 (the limit) is added", NULL},
        {"restarts", 1, "S  random starts per k besides the warm start (default 2)", NULL},
        {"phase-map", 1, "STEPS  N = 3 priors on a grid of step 1/STEPS for the phase map; 0: none (default 16)", NULL},
        {"shrink-evals", 1, "E  sweeps spent shrinking each counterexample (default 60)", NULL},
        {"round-seconds", 1, "S  under mpirun, seconds the ranks work between exchanges of records (default 15)", NULL},
        ARGS_THREADS,
        ARGS_THREADS_FORCE,
    };
    int no = sizeof o / sizeof o[0], npos, help;
    const char *pos[1];
    NcError err = {0};
    if (args_parse(argc, argv, 3, o, no, pos, 0, &npos, &help, &err)) cli_die(&err);
    if (help) {
        args_usage(stdout, "theory explore --out DIR [--instances N] [--seed S] [--classes A..B] [--families LIST]\n"
                           "              [--norm LIST] [--loss LIST] [--supports LIST] [--k LIST] [--phase-map STEPS]\n"
                           "       ncelab theory explore --out DIR --rho 'SPEC;SPEC;...' [--classes A..B] [--norm LIST] ...",
                   "Many latent-class instances (random priors from the families, or a grid of priors), each the\n"
                   "certified sweep of `ncelab theory` over k and k -> infinity: for each downstream metric, where\n"
                   "the optimum gets worse as k grows (certified, beyond a stated tolerance), the worst and a shrunk\n"
                   "counterexample with their `ncelab theory` commands, and the N = 3 phase map. A second call with\n"
                   "the same options skips the instances done. Under mpirun the ranks share the instances\n"
                   "(the first rank writes the outputs; the result is the same as one process's).",
                   o, no);
        return 0;
    }
    ExploreConfig c;
    memset(&c, 0, sizeof c);
    c.out = args_get(o, no, "out");
    if (!c.out || !*c.out) { nc_fail(&err, NC_EUSAGE, "--out: required"); cli_die(&err); }
    long v;
    c.instances = 100;
    if (args_get(o, no, "instances")) {
        if (nc_parse_long(args_get(o, no, "instances"), "--instances", 1, 100000000L, &v, &err)) cli_die(&err);
        c.instances = v;
    }
    c.seed = 1;
    if (args_get(o, no, "seed")) {
        if (nc_parse_long(args_get(o, no, "seed"), "--seed", 0, 2147483647L, &v, &err)) cli_die(&err);
        c.seed = (uint64_t)v;
    }
    parse_classes(args_get(o, no, "classes") ? args_get(o, no, "classes") : "3..8", &c.nmin, &c.nmax);
    if ((c.support_path = args_get(o, no, "support"))) {
        if (args_get(o, no, "supports")) { nc_fail(&err, NC_EUSAGE, "--support: not with --supports"); cli_die(&err); }
        if (theory_support_load(c.support_path, &c.support_N, &c.support_M, &c.support_P, &err)) cli_die(&err);
        if (args_get(o, no, "classes") && (c.nmin != c.support_N || c.nmax != c.support_N)) {
            nc_fail(&err, NC_EUSAGE, "--classes: %s but %s has %d rows", args_get(o, no, "classes"), c.support_path, c.support_N);
            cli_die(&err);
        }
        c.nmin = c.nmax = c.support_N;
    }
    const char *rho = args_get(o, no, "rho");
    int n;
    char **items;
    if (rho) {
        if (args_get(o, no, "families") || args_get(o, no, "instances")) {
            nc_fail(&err, NC_EUSAGE, "--rho: a grid of priors; not with --%s", args_get(o, no, "families") ? "families" : "instances");
            cli_die(&err);
        }
        items = split(rho, ';', "--rho", &n);
        c.fam = nc_calloc(n, sizeof(ExploreFamily));
        c.nfam = n;
        for (int i = 0; i < n; i++) {
            c.fam[i].kind = EXF_SPEC;
            c.fam[i].spec = nc_strdup(items[i]);
            int fixed = 1;
            if (strcmp(items[i], "uniform") == 0 || strncmp(items[i], "zipf:", 5) == 0) fixed = 0;
            else for (const char *p = items[i]; *p; p++) fixed += *p == ',';
            if (fixed && c.support_P && fixed != c.support_N) {
                nc_fail(&err, NC_EUSAGE, "--rho: '%s' has %d classes but %s has %d rows", items[i], fixed, c.support_path, c.support_N);
                cli_die(&err);
            }
            double *tmp = nc_malloc(sizeof(double) * (fixed ? fixed : c.nmin));
            if (theory_rho_parse(items[i], fixed ? fixed : c.nmin, tmp, &err)) cli_die(&err);
            free(tmp);
        }
        free_items(items, n);
    } else {
        items = split(args_get(o, no, "families") ? args_get(o, no, "families")
                                                   : "dirichlet:0.3,dirichlet:1,dirichlet:3,zipf,heavy",
                      ',', "--families", &n);
        c.fam = nc_calloc(n, sizeof(ExploreFamily));
        c.nfam = n;
        for (int i = 0; i < n; i++)
            if (explore_family_parse(items[i], "--families", &c.fam[i], &err)) cli_die(&err);
        free_items(items, n);
    }
    items = split(args_get(o, no, "norm") ? args_get(o, no, "norm") : "1", ',', "--norm", &n);
    c.R = nc_malloc(sizeof(double) * n);
    c.nR = n;
    for (int i = 0; i < n; i++) {
        if (nc_parse_double(items[i], "--norm", &c.R[i], &err)) cli_die(&err);
        if (!(c.R[i] > 0) || c.R[i] > 20) { nc_fail(&err, NC_EUSAGE, "--norm: R must be in (0, 20], got %g", c.R[i]); cli_die(&err); }
    }
    free_items(items, n);
    items = split(args_get(o, no, "loss") ? args_get(o, no, "loss") : "infonce", ',', "--loss", &n);
    c.loss = nc_malloc(sizeof(NcLoss) * n);
    c.nloss = n;
    for (int i = 0; i < n; i++)
        if (nc_loss_parse(items[i], "--loss", &c.loss[i], &err)) cli_die(&err);
    free_items(items, n);
    items = split(args_get(o, no, "supports") ? args_get(o, no, "supports") : "disjoint", ',', "--supports", &n);
    c.shared = nc_malloc(sizeof(int) * n);
    c.nsup = n;
    for (int i = 0; i < n; i++) {
        if (strcmp(items[i], "disjoint") == 0) { c.shared[i] = 0; continue; }
        if (strncmp(items[i], "overlap:", 8) != 0 || nc_parse_long(items[i] + 8, "--supports overlap:S", 1, 100, &v, NULL)) {
            nc_fail(&err, NC_EUSAGE, "--supports: '%s' is not disjoint or overlap:S with 1 <= S <= 100", items[i]);
            cli_die(&err);
        }
        c.shared[i] = (int)v;
    }
    free_items(items, n);
    if (c.support_P) { c.nsup = 1; c.shared[0] = -1; }
    long *ks;
    int nk;
    if (nc_parse_klist(args_get(o, no, "k") ? args_get(o, no, "k") : "1..4096", "--k", &ks, &nk, &err)) cli_die(&err);
    c.nk_req = nk;
    if (ks[nk - 1] < EXPLORE_K_LIMIT) {
        ks = nc_realloc(ks, sizeof(long) * (nk + 1));
        ks[nk++] = EXPLORE_K_LIMIT;
    }
    c.ks = ks;
    c.nk = nk;
    if (c.nk < 2) { nc_fail(&err, NC_EUSAGE, "--k: need at least two values of k to compare"); cli_die(&err); }
    c.restarts = 2;
    if (args_get(o, no, "restarts")) {
        if (nc_parse_long(args_get(o, no, "restarts"), "--restarts", 0, 100, &v, &err)) cli_die(&err);
        c.restarts = (int)v;
    }
    c.phase_steps = 16;
    if (args_get(o, no, "phase-map")) {
        if (nc_parse_long(args_get(o, no, "phase-map"), "--phase-map", 0, 200, &v, &err)) cli_die(&err);
        if (v > 0 && v < 3) { nc_fail(&err, NC_EUSAGE, "--phase-map: STEPS is 0 (none) or at least 3, got %ld", v); cli_die(&err); }
        c.phase_steps = (int)v;
    }
    int shrink_evals = 60;
    if (args_get(o, no, "shrink-evals")) {
        if (nc_parse_long(args_get(o, no, "shrink-evals"), "--shrink-evals", 0, 100000, &v, &err)) cli_die(&err);
        shrink_evals = (int)v;
    }
    if (args_get(o, no, "round-seconds")) {
        if (nc_parse_double(args_get(o, no, "round-seconds"), "--round-seconds", &c.round_seconds, &err)) cli_die(&err);
        if (!(c.round_seconds > 0) || c.round_seconds > 86400) {
            nc_fail(&err, NC_EUSAGE, "--round-seconds: S must be in (0, 86400], got %g", c.round_seconds);
            cli_die(&err);
        }
    }
    int threads = args_threads(o, no);
    if (threads > 0) omp_set_num_threads(threads);
    /* the instances are the parallel work; BLAS calls inside them are on matrices of a few rows,
       and OpenBLAS's own threads would only spin (measured: a third of the time in the kernel) */
    openblas_set_num_threads(1);

    /* under mpirun the ranks share the instances; the first one writes and prints everything */
    Comm *comm = cli_comm();
    long total = explore_count(&c), nrec, resumed;
    ExploreRecord *recs;
    ExploreBar pb = {.started = 0};
    if (comm->rank == 0) progress_start(&pb.bar, "explore", total);
    double t0 = nc_now();
    if (explore_run(&c, comm, &recs, &nrec, &resumed, comm->rank == 0 ? on_progress : NULL, &pb, &err)) cli_die(&err);
    if (comm->rank != 0) {
        explore_config_free(&c);
        return 0;
    }
    progress_end(&pb.bar);
    ExploreSummary s;
    explore_summarise(recs, nrec, &s);
    s.resumed = resumed;
    s.seconds = nc_now() - t0;
    s.rate = s.seconds > 0 ? (double)(nrec - resumed) / s.seconds : 0;
    printf("%ld instances (%ld read back from %s/explore.jsonl), %ld solved in %.1f s: %.2f instances/s on %d rank%s x %d thread%s\n",
           nrec, resumed, c.out, nrec - resumed, s.seconds, s.rate, comm->size, comm->size > 1 ? "s" : "", omp_get_max_threads(),
           omp_get_max_threads() > 1 ? "s" : "");
    ExploreCounter cx[EXPLORE_JUDGED];
    int ncx = 0, failed = 0;
    for (int m = 0; m < EXPLORE_JUDGED; m++) {
        if (s.worst[m] < 0) continue;
        cx[ncx].metric = m;
        cx[ncx].worst = s.worst[m];
        ncx++;
    }
    /* the counterexamples shrink side by side, one thread each */
    #pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < ncx; i++) {
        NcError e = {0};
        if (explore_shrink(&c, &recs[cx[i].worst], cx[i].metric, shrink_evals, &cx[i].minimal, &e)) {
            #pragma omp critical(explore_shrink_error)
            if (!failed) { failed = 1; err = e; }
        }
    }
    if (failed) cli_die(&err);
    explore_report_table(stdout, &c, recs, nrec, &s, cx, ncx);
    if (explore_write(&c, recs, nrec, &s, cx, ncx, &err)) cli_die(&err);
    printf("\nwrote %s/explore.json, explore.csv, explore.html\n", c.out);
    for (int i = 0; i < ncx; i++) explore_record_free(&cx[i].minimal);
    for (long i = 0; i < nrec; i++) explore_record_free(&recs[i]);
    free(recs);
    explore_config_free(&c);
    return 0;
}
