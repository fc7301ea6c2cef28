// cmd_demo.c -- `ncelab demo`: the theory sweep for uniform and Zipf priors, N = 10, k = 1..4096.
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "ncelab/jsonio.h"
#include "ncelab/report.h"
#include "ncelab/theory.h"

static void demo_write(const char *dir, const char *stem, const TheoryModel *m, const char *rho,
                       const char *title, const TheorySolution *s, int n) {
    NcError err = {0};
    char name[128];
    snprintf(name, sizeof name, "%s.json", stem);
    char *jpath = nc_path_join(dir, name);
    cJSON *doc = report_theory_json(m, rho, NULL, s, n);
    if (json_save(jpath, doc, &err)) cli_die(&err);
    cJSON_Delete(doc);
    snprintf(name, sizeof name, "%s.svg", stem);
    char *spath = nc_path_join(dir, name);
    char *svg = report_theory_svg(m, title, s, n);
    if (!svg || report_write_text(spath, svg, &err)) { if (!svg) nc_fail(&err, NC_EFILE, "%s: cannot render", spath); cli_die(&err); }
    printf("wrote %s and %s\n", jpath, spath);
    free(svg); free(jpath); free(spath);
}

int cmd_demo(int argc, char **argv) {
    Opt o[] = {{"out", 1, "DIR  output directory (default out)", NULL}};
    int no = 1, npos, help;
    const char *pos[1];
    NcError err = {0};
    if (args_parse(argc, argv, 2, o, no, pos, 0, &npos, &help, &err)) cli_die(&err);
    if (help) {
        args_usage(stdout, "demo [--out DIR]",
                   "The theory sweep for N = 10 latent classes, k = 1..4096, under a uniform prior and\n"
                   "under rho = zipf:1: JSON and SVG under DIR, a short table on the terminal.", o, no);
        return 0;
    }
    const char *dir = args_get(o, no, "out") ? args_get(o, no, "out") : "out";
    if (nc_mkdir_p(dir, &err)) cli_die(&err);
    long *ks;
    int nk;
    nc_parse_klist("1..4096", "--k", &ks, &nk, &err);
    const char *specs[2] = {"uniform", "zipf:1"}, *stems[2] = {"theory_uniform", "theory_zipf1"};
    TheorySolution *sol[2];
    TheoryModel m[2];
    TheorySolveOpts so;
    theory_solve_opts_default(&so);
    double t0 = nc_now();
    for (int i = 0; i < 2; i++) {
        double rho[10];
        if (theory_rho_parse(specs[i], 10, rho, &err) || theory_model_init(&m[i], 10, rho, NULL, 0, 1.0, 0, THEORY_INFONCE, &err))
            cli_die(&err);
        sol[i] = nc_malloc(sizeof(TheorySolution) * nk);
        if (theory_sweep(&m[i], ks, nk, &so, sol[i], NULL, NULL, &err)) cli_die(&err);
        char title[128];
        snprintf(title, sizeof title, "NCE-optimal representation: N = 10, rho = %s, R = 1", specs[i]);
        demo_write(dir, stems[i], &m[i], specs[i], title, sol[i], nk);
    }
    printf("\nTheory, N = 10 latent classes, R = 1 (%.2f s): downstream loss of the optimum as k grows\n", nc_now() - t0);
    printf("%6s | %-27s | %-38s\n", "", "uniform rho", "zipf:1 rho");
    printf("%6s | %9s %8s %8s | %9s %9s %8s %8s\n", "k", "mean_ce", "simplex", "certif.", "mean_ce", "bal_ce",
           "acc", "certif.");
    int all = 1;
    for (int j = 0; j < nk; j++) {
        const TheorySolution *u = &sol[0][j], *z = &sol[1][j];
        all &= u->cert.optimal && z->cert.optimal;
        printf("%6ld | %9.5f %8.1e %8s | %9.5f %9.5f %8.4f %8s\n", u->k, u->ds.mean_ce, u->st.simplex_deviation,
               u->cert.optimal ? "optimal" : "NOT", z->ds.mean_ce, z->ds.mean_ce_balanced, z->ds.mean_acc,
               z->cert.optimal ? "optimal" : "NOT");
    }
    printf("\nUniform prior: the optimum is the regular simplex for every k, so the downstream loss does not\n"
           "change with k. Zipf prior: the optimum moves with k; every optimum is certified (gap <= 1e-9).\n");
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < nk; j++) theory_solution_free(&sol[i][j]);
        free(sol[i]);
        theory_model_free(&m[i]);
    }
    free(ks);
    return all ? 0 : 3;
}
