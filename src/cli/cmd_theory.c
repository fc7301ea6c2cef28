// cmd_theory.c -- `ncelab theory` (sweep over k) and `ncelab theory eval` (loss at a given G).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "ncelab/jsonio.h"
#include "ncelab/progress.h"
#include "ncelab/report.h"
#include "ncelab/theory.h"

static void on_progress(void *ctx, int done, int total) {
    (void)total;
    progress_update(ctx, done);
}

/* Builds the model from --classes/--rho/--support/--norm/--dim/--loss; N may come from the
   support file, or from n_hint (> 0) when neither gives it. */
static void model_from_options(TheoryModel *m, const Opt *o, int no, int n_hint) {
    NcError err = {0};
    const char *support = args_get(o, no, "support"), *classes = args_get(o, no, "classes");
    double *P = NULL, R = 1.0;
    int N = n_hint, M = 0;
    NcLoss loss = NC_LOSS_INFONCE;
    long v;
    if (support) {
        int Ns;
        if (theory_support_load(support, &Ns, &M, &P, &err)) cli_die(&err);
        if (classes && (nc_parse_long(classes, "--classes", 2, THEORY_MAX_POINTS, &v, &err) || v != Ns)) {
            if (!err.code) nc_fail(&err, NC_EUSAGE, "--classes: %ld but %s has %d rows", v, support, Ns);
            cli_die(&err);
        }
        N = Ns;
    } else if (classes) {
        if (nc_parse_long(classes, "--classes", 2, THEORY_MAX_POINTS, &v, &err)) cli_die(&err);
        N = (int)v;
    }
    if (N <= 0) { nc_fail(&err, NC_EUSAGE, "--classes: required (or give --support FILE)"); cli_die(&err); }
    if (args_get(o, no, "norm") && nc_parse_double(args_get(o, no, "norm"), "--norm", &R, &err)) cli_die(&err);
    if (!(R > 0) || R > 20) { nc_fail(&err, NC_EUSAGE, "--norm: R must be in (0, 20], got %g", R); cli_die(&err); }
    long d = 0;
    if (args_get(o, no, "dim") && nc_parse_long(args_get(o, no, "dim"), "--dim", 1, THEORY_MAX_POINTS, &d, &err)) cli_die(&err);
    const char *ls = args_get(o, no, "loss");
    if (nc_loss_parse(ls ? ls : "infonce", "--loss", &loss, &err)) cli_die(&err);
    double *rho = nc_malloc(sizeof(double) * N);
    if (theory_rho_parse(args_get(o, no, "rho"), N, rho, &err)) cli_die(&err);
    if (theory_model_init(m, N, rho, P, M, R, (int)d, loss, &err)) cli_die(&err);
    free(rho);
    free(P);
}

static int theory_eval(int argc, char **argv) {
    Opt o[] = {
        {"gram", 1, "FILE  JSON M x M Gram matrix (array of rows)", NULL},
        {"rho", 1, "SPEC  class prior: uniform | zipf:S | p1,p2,... (default uniform)", NULL},
        {"k", 1, "K  number of negatives, 1..1e9", NULL},
        {"norm", 1, "R  norm bound (default 1)", NULL},
        {"support", 1, "FILE  JSON N x M class-conditional supports (overlapping classes)", NULL},
        {"loss", 1, "NAME  infonce (default) or nce", NULL},
        {"json", 1, "FILE  write {\"k\",\"nce_loss\",\"grad\",\"certificate\"}", NULL},
    };
    int no = sizeof o / sizeof o[0], npos, help;
    const char *pos[1];
    NcError err = {0};
    if (args_parse(argc, argv, 3, o, no, pos, 0, &npos, &help, &err)) cli_die(&err);
    if (help) {
        args_usage(stdout, "theory eval --gram FILE --k K [--rho SPEC] [--norm R] [--json FILE]",
                   "The exact population loss and its gradient dL/dG at a given Gram matrix, with the\n"
                   "optimality certificate of G.", o, no);
        return 0;
    }
    const char *gpath = args_get(o, no, "gram");
    if (!gpath) { nc_fail(&err, NC_EUSAGE, "--gram: required"); cli_die(&err); }
    if (!args_get(o, no, "k")) { nc_fail(&err, NC_EUSAGE, "--k: required"); cli_die(&err); }
    long k;
    if (nc_parse_long(args_get(o, no, "k"), "--k", 1, 1000000000L, &k, &err)) cli_die(&err);
    int M;
    double *G;
    if (theory_gram_load(gpath, &M, &G, &err)) cli_die(&err);
    TheoryModel m;
    model_from_options(&m, o, no, M);
    if (m.M != M) {
        nc_fail(&err, NC_EFILE, "%s: a %d x %d matrix, but the model has %d points", gpath, M, M, m.M);
        cli_die(&err);
    }
    if (theory_check_gram(&m, G, gpath, &err)) cli_die(&err);
    double *C = nc_malloc(sizeof(double) * M * M);
    double L = theory_loss(&m, k, G, C);
    TheoryCert cert;
    if (theory_certify(&m, k, G, &cert, &err)) cli_die(&err);
    printf("k = %ld  %s loss = %.15g\ncertificate: gap %.3e  min_eig %.3e  kkt %.3e  optimal %s\ngradient dL/dG:\n",
           k, nc_loss_name(m.loss), L, cert.gap, cert.min_eig, cert.kkt_residual,
           cert.optimal ? "yes" : "no");
    for (int i = 0; i < M && i < 12; i++) {
        for (int j = 0; j < M && j < 8; j++) printf(" %12.5e", C[(size_t)i * M + j]);
        printf("%s\n", M > 8 ? " ..." : "");
    }
    const char *jpath = args_get(o, no, "json");
    if (jpath) {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddNumberToObject(out, "k", (double)k);
        cJSON_AddItemToObject(out, "nce_loss", json_number(L));
        cJSON_AddItemToObject(out, "grad", json_matrix(C, M, M));
        cJSON *c = cJSON_AddObjectToObject(out, "certificate");
        cJSON_AddItemToObject(c, "gap", json_number(cert.gap));
        cJSON_AddItemToObject(c, "min_eig", json_number(cert.min_eig));
        cJSON_AddItemToObject(c, "kkt_residual", json_number(cert.kkt_residual));
        cJSON_AddBoolToObject(c, "optimal", cert.optimal);
        if (json_save(jpath, out, &err)) cli_die(&err);
        cJSON_Delete(out);
    }
    free(G);
    free(C);
    theory_model_free(&m);
    return 0;
}

int cmd_theory_explore(int argc, char **argv);  /* cmd_explore.c */

int cmd_theory(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[2], "eval") == 0) return theory_eval(argc, argv);
    if (argc > 2 && strcmp(argv[2], "explore") == 0) return cmd_theory_explore(argc, argv);
    Opt o[] = {
        {"classes", 1, "N  number of latent classes (>= 2)", NULL},
        {"rho", 1, "SPEC  class prior: uniform | zipf:S | p1,p2,... (default uniform)", NULL},
        {"support", 1, "FILE  JSON N x M class-conditional supports (overlapping classes)", NULL},
        {"k", 1, "LIST  negatives: 1,2,4 or 1..4096 (powers of two); default 1..4096", NULL},
        {"norm", 1, "R  norm bound |f(x)| <= R (default 1; R^2 = 1/temperature)", NULL},
        {"dim", 1, "D  dimension of the representation (default: number of points)", NULL},
        {"loss", 1, "NAME  infonce (default) or nce (binary NCE, noise ratio k)", NULL},
        {"restarts", 1, "S  random starts per k besides the warm start (default 2)", NULL},
        {"seed", 1, "S  seed of the random starts (default 1)", NULL},
        {"json", 1, "FILE  write the results as JSON", NULL},
        {"svg", 1, "FILE  plot downstream losses and the bound against k", NULL},
    };
    int no = sizeof o / sizeof o[0], npos, help;
    const char *pos[1];
    NcError err = {0};
    if (args_parse(argc, argv, 2, o, no, pos, 0, &npos, &help, &err)) cli_die(&err);
    if (help) {
        args_usage(stdout, "theory --classes N [--rho SPEC] [--support FILE] [--k LIST] [--norm R] [--dim D]\n"
                           "              [--loss infonce|nce] [--json FILE] [--svg FILE]\n"
                           "       ncelab theory eval --gram FILE --k K [--rho SPEC] [--norm R] [--json FILE]\n"
                           "       ncelab theory explore --out DIR [--instances N] ...   (many instances: theory explore --help)",
                   "For each k: the representation minimising the exact population contrastive loss in the\n"
                   "latent-class model, a certificate of global optimality, its structure and the downstream\n"
                   "losses of the mean classifier, next to the collision probability and Saunshi et al.'s bound.",
                   o, no);
        return 0;
    }
    long *ks;
    int nk;
    if (nc_parse_klist(args_get(o, no, "k") ? args_get(o, no, "k") : "1..4096", "--k", &ks, &nk, &err)) cli_die(&err);
    TheorySolveOpts so;
    theory_solve_opts_default(&so);
    long v;
    if (args_get(o, no, "restarts")) {
        if (nc_parse_long(args_get(o, no, "restarts"), "--restarts", 0, 100, &v, &err)) cli_die(&err);
        so.restarts = (int)v;
    }
    if (args_get(o, no, "seed")) {
        if (nc_parse_long(args_get(o, no, "seed"), "--seed", 0, 2147483647L, &v, &err)) cli_die(&err);
        so.seed = (uint64_t)v;
    }
    TheoryModel m;
    model_from_options(&m, o, no, 0);
    const char *jpath = args_get(o, no, "json"), *spath = args_get(o, no, "svg");
    TheorySolution *sol = nc_malloc(sizeof(TheorySolution) * nk);
    Progress pb;
    progress_start(&pb, "theory", nk);
    double t0 = nc_now();
    if (theory_sweep(&m, ks, nk, &so, sol, on_progress, &pb, &err)) cli_die(&err);
    progress_end(&pb);
    const char *rho = args_get(o, no, "rho") ? args_get(o, no, "rho") : "uniform";
    printf("latent classes N = %d, points M = %d, rho = %s, R = %g, d = %d, loss = %s  (%.2f s)\n", m.N, m.M,
           rho, m.R, m.d, nc_loss_name(m.loss), nc_now() - t0);
    report_theory_table(stdout, &m, sol, nk);
    if (jpath) {
        cJSON *doc = report_theory_json(&m, rho, args_get(o, no, "support"), sol, nk);
        if (json_save(jpath, doc, &err)) cli_die(&err);
        cJSON_Delete(doc);
    }
    if (spath) {
        char title[256];
        snprintf(title, sizeof title, "NCE-optimal representation: N = %d, rho = %s, R = %g", m.N, rho, m.R);
        char *svg = report_theory_svg(&m, title, sol, nk);
        if (!svg || report_write_text(spath, svg, &err)) { if (!svg) nc_fail(&err, NC_EFILE, "%s: cannot render", spath); cli_die(&err); }
        free(svg);
    }
    for (int i = 0; i < nk; i++) theory_solution_free(&sol[i]);
    free(sol);
    free(ks);
    theory_model_free(&m);
    return 0;
}
