// explore.c -- one instance of an exploration: drawn from (seed, index), swept over k, judged.
//
// Every instance is what one `ncelab theory` line computes: its prior is a --rho text (random
// priors printed to 12 significant digits and parsed back, so the command and the run use the
// same numbers), its overlapping support a JSON file, and its sweep theory_sweep with the same
// solver options. explore_judge then reads the curves: a rise is a certified worsening with k.
#define _POSIX_C_SOURCE 200809L
#include "ncelab/explore.h"
#include "ncelab/jsonio.h"
#include "ncelab/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const explore_metric_name[EXPLORE_METRICS] = {"mean_ce", "mean_ce_balanced", "mean_acc",
                                                          "avg_binary_ce", "kplus1_ce"};

void explore_config_free(ExploreConfig *c) {
    for (int i = 0; i < c->nfam; i++) free(c->fam[i].spec);
    free(c->fam); free(c->R); free(c->loss); free(c->shared); free(c->ks); free(c->support_P);
    memset(c, 0, sizeof *c);
}

void explore_record_free(ExploreRecord *r) {
    free(r->rho); free(r->rho_spec); free(r->P); free(r->support_file); free(r->command); free(r->k);
    for (int m = 0; m < EXPLORE_METRICS; m++) { free(r->curve[m]); free(r->spread[m]); }
    memset(r, 0, sizeof *r);
}

int explore_family_parse(const char *s, const char *what, ExploreFamily *f, NcError *err) {
    memset(f, 0, sizeof *f);
    f->a = -1;
    const char *colon = strchr(s, ':');
    size_t len = colon ? (size_t)(colon - s) : strlen(s);
    double a = -1;
    if (colon && nc_parse_double(colon + 1, what, &a, err)) return NC_EUSAGE;
    if (len == 7 && strncmp(s, "uniform", 7) == 0 && !colon) {
        f->kind = EXF_UNIFORM;
    } else if (len == 9 && strncmp(s, "dirichlet", 9) == 0) {
        if (!colon || !(a > 0) || a > 1000)
            return nc_fail(err, NC_EUSAGE, "%s: dirichlet:A needs an alpha A in (0, 1000], got '%s'", what, s);
        f->kind = EXF_DIRICHLET;
    } else if (len == 4 && strncmp(s, "zipf", 4) == 0) {
        if (colon && (a < 0 || a > 20)) return nc_fail(err, NC_EUSAGE, "%s: zipf:S needs S in [0, 20], got '%s'", what, s);
        f->kind = EXF_ZIPF;
    } else if (len == 5 && strncmp(s, "heavy", 5) == 0) {
        if (colon && !(a > 0 && a < 1)) return nc_fail(err, NC_EUSAGE, "%s: heavy:W needs 0 < W < 1, got '%s'", what, s);
        f->kind = EXF_HEAVY;
    } else {
        return nc_fail(err, NC_EUSAGE, "%s: unknown family '%s' (uniform, dirichlet:A, zipf[:S], heavy[:W])", what, s);
    }
    f->a = a;
    return NC_OK;
}

/* grid mode: the N each spec takes (explicit lists: their length) */
static int spec_classes(const char *spec) {
    if (strcmp(spec, "uniform") == 0 || strncmp(spec, "zipf:", 5) == 0) return 0;
    int n = 1;
    for (const char *p = spec; *p; p++) n += *p == ',';
    return n;
}

static long grid_count(const ExploreConfig *c) {
    long n = 0;
    for (int s = 0; s < c->nfam; s++) n += spec_classes(c->fam[s].spec) ? 1 : c->nmax - c->nmin + 1;
    return n * c->nR * c->nloss * c->nsup;
}

static long phase_points(const ExploreConfig *c) {
    int n = c->phase_steps;
    return n >= 3 ? (long)(n - 1) * (n - 2) / 2 : 0;
}

static int is_grid(const ExploreConfig *c) { return c->nfam > 0 && c->fam[0].kind == EXF_SPEC; }

long explore_count(const ExploreConfig *c) {
    return (is_grid(c) ? grid_count(c) : c->instances) + phase_points(c) * c->nR;
}

/* a gamma(a) variate (Marsaglia and Tsang; a < 1 through U^(1/a)) */
static double gamma_draw(Rng *r, double a) {
    if (a < 1) return gamma_draw(r, a + 1) * pow(rng_uniform(r), 1.0 / a);
    double d = a - 1.0 / 3, cc = 1.0 / sqrt(9 * d);
    for (;;) {
        double x = rng_normal(r), v = 1 + cc * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = rng_uniform(r);
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v)) return d * v;
    }
}

/* rounds v to 12 significant digits (what %.12g prints) */
static double round12(double v) {
    char b[40];
    snprintf(b, sizeof b, "%.12g", v);
    return strtod(b, NULL);
}

/* "p1,p2,..." to 12 significant digits, malloc'd */
static char *rho_text(const double *rho, int N) {
    NcBuf b = {0};
    for (int c = 0; c < N; c++) nc_buf_printf(&b, "%s%.12g", c ? "," : "", rho[c]);
    return b.s;
}

/* a prior of the family (random parts from r); *fam_name gets the family with drawn parameters */
static char *family_prior(const ExploreFamily *f, int N, Rng *r, char *fam_name, size_t cap) {
    double *rho = nc_malloc(sizeof(double) * N);
    char *spec = NULL;
    switch (f->kind) {
    case EXF_UNIFORM:
        snprintf(fam_name, cap, "uniform");
        spec = nc_strdup("uniform");
        break;
    case EXF_ZIPF: {
        double s = f->a >= 0 ? f->a : 3.0 * rng_uniform(r);
        char b[32];
        snprintf(b, sizeof b, "zipf:%.4g", s);
        snprintf(fam_name, cap, "%s", b);
        spec = nc_strdup(b);
        break;
    }
    case EXF_HEAVY: {
        double w = f->a > 0 ? f->a : 0.5 + 0.45 * rng_uniform(r);
        w = round12(w);
        snprintf(fam_name, cap, "heavy:%.4g", w);
        rho[0] = w;
        for (int c = 1; c < N; c++) rho[c] = (1 - w) / (N - 1);
        spec = rho_text(rho, N);
        break;
    }
    default: { /* EXF_DIRICHLET: floored at 1e-6 and renormalised (docs/theory.md) */
        double z = 0;
        for (int c = 0; c < N; c++) z += rho[c] = gamma_draw(r, f->a);
        double z2 = 0;
        for (int c = 0; c < N; c++) z2 += rho[c] = fmax(rho[c] / z, 1e-6);
        for (int c = 0; c < N; c++) rho[c] /= z2;
        snprintf(fam_name, cap, "dirichlet:%g", f->a);
        spec = rho_text(rho, N);
        break;
    }
    }
    free(rho);
    return spec;
}

/* S points shared by all N classes: class c keeps 1 - w_c on its own point c, w_c ~ U(0.05, 0.5),
   and spreads w_c over the shared points N..N+S-1 by a Dirichlet(1) draw. (N, N+S), malloc'd. */
static double *random_support(int N, int S, Rng *r) {
    int M = N + S;
    double *P = nc_calloc((size_t)N * M, sizeof(double)), *e = nc_malloc(sizeof(double) * S);
    for (int c = 0; c < N; c++) {
        double w = 0.05 + 0.45 * rng_uniform(r), z = 0, used = 0;
        for (int j = 0; j < S; j++) z += e[j] = -log(rng_uniform(r));
        for (int j = 0; j < S; j++) used += P[(size_t)c * M + N + j] = round12(w * e[j] / z);
        P[(size_t)c * M + c] = round12(1 - used);
    }
    free(e);
    return P;
}

static void shell_word(NcBuf *b, const char *s) {
    int plain = *s != 0;
    for (const char *p = s; *p; p++)
        if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') || strchr("_./:,=+-", *p)))
            plain = 0;
    if (plain) { nc_buf_printf(b, "%s", s); return; }
    nc_buf_printf(b, "'");
    for (const char *p = s; *p; p++)
        if (*p == '\'') nc_buf_printf(b, "'\\''");
        else nc_buf_printf(b, "%c", *p);
    nc_buf_printf(b, "'");
}

/* the --k text: "a..b" for consecutive powers of two, then the rest, each as an integer */
static void klist_text(NcBuf *b, const long *ks, int nk) {
    int i = 0;
    while (i < nk) {
        int j = i;
        while (j + 1 < nk && ks[j + 1] == 2 * ks[j]) j++;
        if (i) nc_buf_printf(b, ",");
        if (j >= i + 2) { nc_buf_printf(b, "%ld..%ld", ks[i], ks[j]); i = j + 1; }
        else { nc_buf_printf(b, "%ld", ks[i]); i++; }
    }
}

void explore_set_instance(const ExploreConfig *c, ExploreRecord *r, const char *family, int N,
                          const char *rho_spec, double R, NcLoss loss, int shared, const double *P,
                          int M, const char *support_name) {
    snprintf(r->family, sizeof r->family, "%s", family);
    r->N = N;
    r->M = shared != 0 ? M : N;
    r->rho_spec = nc_strdup(rho_spec);
    r->rho = nc_malloc(sizeof(double) * N);
    if (theory_rho_parse(rho_spec, N, r->rho, NULL))   /* cannot happen for specs made here */
        for (int i = 0; i < N; i++) r->rho[i] = 1.0 / N;
    r->R = R;
    r->loss = loss;
    r->shared = shared;
    if (shared < 0) {  /* the user's support file, named as given */
        r->P = nc_malloc(sizeof(double) * N * r->M);
        memcpy(r->P, P, sizeof(double) * N * r->M);
        r->support_file = nc_strdup(c->support_path);
    } else if (shared > 0) {
        r->P = nc_malloc(sizeof(double) * N * r->M);
        memcpy(r->P, P, sizeof(double) * N * r->M);
        char name[96];
        snprintf(name, sizeof name, "supports/%s.json", support_name);
        r->support_file = nc_path_join(c->out, name);
    }
    NcBuf b = {0};
    nc_buf_printf(&b, "ncelab theory --classes %d --rho %s", N, rho_spec);
    if (r->support_file) { nc_buf_printf(&b, " --support "); shell_word(&b, r->support_file); }
    nc_buf_printf(&b, " --norm %.12g --loss %s --k ", R, nc_loss_name(loss));
    klist_text(&b, c->ks, c->nk);
    if (c->restarts != 2) nc_buf_printf(&b, " --restarts %d", c->restarts);
    r->command = b.s;
}

int explore_make(const ExploreConfig *c, long i, ExploreRecord *r, NcError *err) {
    memset(r, 0, sizeof *r);
    r->index = i;
    long base = is_grid(c) ? grid_count(c) : c->instances;
    Rng rng;
    rng_init(&rng, c->seed, (uint32_t)i, (uint32_t)((uint64_t)i >> 32), 0x65787031u);
    char fam[48], name[64];
    snprintf(name, sizeof name, "i%ld", i);
    if (i >= base) {  /* the N = 3 phase map: (a, b, l) / n for every R, the first loss */
        long p = (i - base) % phase_points(c), ri = (i - base) / phase_points(c);
        int n = c->phase_steps, a = 1;
        while (p >= n - 1 - a) { p -= n - 1 - a; a++; }
        int bb = 1 + (int)p, l = n - a - bb;
        double rho[3] = {(double)a / n, (double)bb / n, (double)l / n};
        char *spec = rho_text(rho, 3);
        snprintf(fam, sizeof fam, "triangle:%d", n);
        explore_set_instance(c, r, fam, 3, spec, c->R[ri], c->loss[0], 0, NULL, 3, name);
        free(spec);
        return NC_OK;
    }
    int N, shared;
    double R;
    NcLoss loss;
    char *spec;
    if (is_grid(c)) {
        long q = i;
        int si = (int)(q % c->nsup); q /= c->nsup;
        int li = (int)(q % c->nloss); q /= c->nloss;
        int ri = (int)(q % c->nR); q /= c->nR;
        int s = 0;
        for (;; s++) {
            long take = spec_classes(c->fam[s].spec) ? 1 : c->nmax - c->nmin + 1;
            if (q < take) break;
            q -= take;
        }
        N = spec_classes(c->fam[s].spec) ? spec_classes(c->fam[s].spec) : c->nmin + (int)q;
        R = c->R[ri];
        loss = c->loss[li];
        shared = c->shared[si];
        spec = nc_strdup(c->fam[s].spec);
        double *rho = nc_malloc(sizeof(double) * N);
        int rc = theory_rho_parse(spec, N, rho, err);
        free(rho);
        if (rc) { free(spec); return rc; }
        snprintf(fam, sizeof fam, "%s", strcmp(spec, "uniform") == 0 || strncmp(spec, "zipf:", 5) == 0 ? spec : "list");
    } else {
        N = c->nmin + (int)rng_below(&rng, (uint64_t)(c->nmax - c->nmin + 1));
        const ExploreFamily *f = &c->fam[rng_below(&rng, (uint64_t)c->nfam)];
        R = c->R[rng_below(&rng, (uint64_t)c->nR)];
        loss = c->loss[rng_below(&rng, (uint64_t)c->nloss)];
        shared = c->shared[rng_below(&rng, (uint64_t)c->nsup)];
        spec = family_prior(f, N, &rng, fam, sizeof fam);
    }
    if (c->support_P) {
        explore_set_instance(c, r, fam, N, spec, R, loss, -1, c->support_P, c->support_M, name);
    } else {
        double *P = shared > 0 ? random_support(N, shared, &rng) : NULL;
        explore_set_instance(c, r, fam, N, spec, R, loss, shared, P, N + shared, name);
        free(P);
    }
    free(spec);
    return NC_OK;
}

int explore_write_support(const ExploreRecord *r, NcError *err) {
    if (!r->support_file || r->shared < 0) return NC_OK;  /* the user's own file is only read */
    cJSON *doc = json_matrix(r->P, r->N, r->M);
    int rc = json_save(r->support_file, doc, err);
    cJSON_Delete(doc);
    return rc;
}

void explore_judge(const ExploreConfig *c, ExploreRecord *r) {
    int nk = r->nk, last = c->nk_req - 1 < nk ? c->nk_req - 1 : nk - 1;
    for (int m = 0; m < EXPLORE_JUDGED; m++) {
        const double *v = r->curve[m], *sp = r->spread[m];
        double sign = m == EX_MEAN_ACC ? -1.0 : 1.0, best = 0;
        r->rise[m] = r->rise_rel[m] = 0;
        r->rise_from[m] = r->rise_to[m] = 0;
        for (int i = 0; i < nk && r->certified; i++)
            for (int j = i + 1; j < nk; j++) {
                double d = sign * (v[j] - v[i]);
                double tol = EXPLORE_TOL_REL * fmax(1.0, fmax(fabs(v[i]), fabs(v[j]))) + sp[i] + sp[j];
                if (d > tol && d > best * (1 + 1e-9)) {  /* ties (to rounding) keep the smallest k */
                    best = d;
                    r->rise[m] = d;
                    r->rise_rel[m] = fabs(v[i]) > 0 ? d / fabs(v[i]) : INFINITY;
                    r->rise_from[m] = r->k[i];
                    r->rise_to[m] = r->k[j];
                }
            }
        r->change[m] = v[last] - v[0];
        double tol = EXPLORE_TOL_REL * fmax(1.0, fmax(fabs(v[0]), fabs(v[last]))) + sp[0] + sp[last];
        r->change_significant[m] = r->certified && fabs(r->change[m]) > tol;
    }
}

/* explore_take: the values of solution s into column i of r's curves and spreads */
static void explore_take(ExploreRecord *r, int i, const TheorySolution *s) {
    double v[EXPLORE_METRICS] = {s->ds.mean_ce, s->ds.mean_ce_balanced, s->ds.mean_acc, s->ds.avg_binary_ce, s->ds.kplus1_ce};
    double lo[EXPLORE_METRICS] = {s->ds_lo.mean_ce, s->ds_lo.mean_ce_balanced, s->ds_lo.mean_acc, s->ds_lo.avg_binary_ce,
                                  s->ds_lo.kplus1_ce};
    double hi[EXPLORE_METRICS] = {s->ds_hi.mean_ce, s->ds_hi.mean_ce_balanced, s->ds_hi.mean_acc, s->ds_hi.avg_binary_ce,
                                  s->ds_hi.kplus1_ce};
    for (int q = 0; q < EXPLORE_METRICS; q++) {
        r->curve[q][i] = v[q];
        r->spread[q][i] = hi[q] - lo[q];
    }
}

/* The sweep of theory_sweep (each k warm-started from the previous optimum, so the values are
   those of the printed command), stopped at the first k whose optimum fails the certificate (gap
   above EXPLORE_MAX_GAP, or optimal starts that disagree downstream): the instance can no longer
   be certified, and the k after it are left NaN. Such instances are a few percent of the default
   families but took 45% of the time when solved to the end (docs/theory.md). */
int explore_evaluate(const ExploreConfig *c, ExploreRecord *r, NcError *err) {
    double t0 = nc_now();
    TheoryModel m;
    int rc = theory_model_init(&m, r->N, r->rho, r->P, r->M, r->R, 0, r->loss, err);
    if (rc) return rc;
    TheorySolveOpts so;
    theory_solve_opts_default(&so);
    so.restarts = c->restarts;
    r->nk = c->nk;
    r->k = nc_malloc(sizeof(long) * c->nk);
    memcpy(r->k, c->ks, sizeof(long) * c->nk);
    for (int q = 0; q < EXPLORE_METRICS; q++) {
        r->curve[q] = nc_malloc(sizeof(double) * c->nk);
        r->spread[q] = nc_malloc(sizeof(double) * c->nk);
        for (int i = 0; i < c->nk; i++) r->curve[q][i] = r->spread[q][i] = NAN;
    }
    r->max_gap = 0;
    r->unique = 1;
    r->failed_k = 0;
    int gap_ok = 1;
    TheorySolution prev = {0};
    for (int i = 0; i < c->nk && !rc && !r->failed_k; i++) {
        TheorySolution cur = {0};
        rc = theory_solve(&m, c->ks[i], i > 0 ? prev.V : NULL, &so, &cur, err);
        theory_solution_free(&prev);
        if (rc) { theory_solution_free(&cur); break; }
        explore_take(r, i, &cur);
        r->max_gap = fmax(r->max_gap, cur.cert.gap);
        int ok = cur.cert.gap <= EXPLORE_MAX_GAP;  /* false for a NaN gap */
        gap_ok &= ok;
        r->unique &= cur.unique;
        if (!ok || !cur.unique) r->failed_k = c->ks[i];
        prev = cur;
    }
    theory_solution_free(&prev);
    theory_model_free(&m);
    if (rc) return rc;
    r->certified = gap_ok && r->unique;
    explore_judge(c, r);
    r->seconds = nc_now() - t0;
    return NC_OK;
}
