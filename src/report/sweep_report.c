// sweep_report.c -- a k-sweep's results: JSON, CSV, a terminal table, SVG plots and one
// self-contained HTML page with the experiments and the theory's prediction side by side.
#define _POSIX_C_SOURCE 200809L
#include "ncelab/sweep.h"
#include "ncelab/jsonio.h"
#include "ncelab/report.h"
#include "ncelab/svg.h"

#include <cblas.h>
#include <dnnl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- mean and std over the seeds of one k ---- */

enum { SM_MEAN, SM_LINEAR, SM_KNN, SM_SIMPLEX, SM_WITHIN, SM_N };
static const char *SM_NAME[SM_N] = {"mean_acc", "linear_acc", "knn_acc", "simplex_deviation", "within_class_ratio"};

static double metric(const EvalMetrics *m, int i) {
    switch (i) {
    case SM_MEAN: return m->mean_acc;
    case SM_LINEAR: return m->linear_acc;
    case SM_KNN: return m->knn_acc;
    case SM_SIMPLEX: return m->simplex_deviation;
    default: return m->within_class_ratio;
    }
}

/* mean and sample std (0 for one value) of v[0..n) */
static void mean_std(const double *v, int n, double *mean, double *sd) {
    double s = 0, q = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = n ? s / n : NAN;
    for (int i = 0; i < n; i++) q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0.0;
}

/* stat[(i * 2 + layer) * SM_N + m] over the seeds of k index i; layer 0 features, 1 head */
static void summarise(const SweepConfig *c, const SweepRun *runs, double *mean, double *sd) {
    double *v = nc_malloc(sizeof(double) * c->seeds);
    for (int i = 0; i < c->nk; i++)
        for (int l = 0; l < 2; l++)
            for (int m = 0; m < SM_N; m++) {
                for (int s = 0; s < c->seeds; s++) {
                    const SweepRun *r = &runs[i * c->seeds + s];
                    v[s] = metric(l ? &r->head : &r->features, m);
                }
                size_t t = (size_t)(i * 2 + l) * SM_N + m;
                mean_std(v, c->seeds, &mean[t], &sd[t]);
            }
    free(v);
}

/* collision rates over the seeds: what[0] per negative, what[1] any per anchor */
static void collisions(const SweepConfig *c, const SweepRun *runs, int i, double mean[2], double sd[2]) {
    double *v = nc_malloc(sizeof(double) * c->seeds), *w = nc_malloc(sizeof(double) * c->seeds);
    for (int s = 0; s < c->seeds; s++) {
        v[s] = runs[i * c->seeds + s].collision_rate;
        w[s] = runs[i * c->seeds + s].any_collision;
    }
    mean_std(v, c->seeds, &mean[0], &sd[0]);
    mean_std(w, c->seeds, &mean[1], &sd[1]);
    free(v);
    free(w);
}

const char *sweep_outcome_name(SweepOutcome o) {
    return o == SWEEP_HURT ? "hurt" : o == SWEEP_NOT_HURT ? "not_hurt" : "unknown";
}

void sweep_verdict(const SweepConfig *c, const SweepRun *runs, SweepVerdict *v) {
    memset(v, 0, sizeof *v);
    double *mu = nc_malloc(sizeof(double) * c->nk * 2 * SM_N), *sd = nc_malloc(sizeof(double) * c->nk * 2 * SM_N);
    summarise(c, runs, mu, sd);
    int last = c->nk - 1, any = 0, n = c->seeds;
    for (int m = SM_MEAN; m <= SM_KNN; m++) {
        int b = 0;
        for (int i = 1; i < c->nk; i++)
            if (mu[(size_t)(i * 2 + 1) * SM_N + m] > mu[(size_t)(b * 2 + 1) * SM_N + m]) b = i;
        size_t xb = (size_t)(b * 2 + 1) * SM_N + m, xl = (size_t)(last * 2 + 1) * SM_N + m;
        v->best_k[m] = c->ks[b];
        v->best[m] = mu[xb];
        v->last[m] = mu[xl];
        v->drop[m] = mu[xb] - mu[xl];
        v->se[m] = n > 1 ? sqrt((sd[xb] * sd[xb] + sd[xl] * sd[xl]) / n) : NAN;
        v->hurt[m] = n > 1 && v->drop[m] > 2 * v->se[m] && v->drop[m] > 0.005;
        any |= v->hurt[m];
    }
    v->outcome = n < 2 ? SWEEP_UNKNOWN : any ? SWEEP_HURT : SWEEP_NOT_HURT;
    free(mu);
    free(sd);
}

void sweep_summary_table(FILE *f, const SweepConfig *c, const SweepRun *runs) {
    double *mu = nc_malloc(sizeof(double) * c->nk * 2 * SM_N), *sd = nc_malloc(sizeof(double) * c->nk * 2 * SM_N);
    summarise(c, runs, mu, sd);
    fprintf(f, "test accuracy, mean +- std over %d seed%s\n", c->seeds, c->seeds > 1 ? "s" : "");
    fprintf(f, "%6s | %-44s | %-44s\n", "", "head (the f of the theory)", "backbone features");
    fprintf(f, "%6s | %14s %14s %14s | %14s %14s %14s\n", "k", "mean clf", "linear", "kNN", "mean clf", "linear", "kNN");
    for (int i = 0; i < c->nk; i++) {
        fprintf(f, "%6ld |", c->ks[i]);
        for (int l = 1; l >= 0; l--) {
            for (int m = SM_MEAN; m <= SM_KNN; m++) {
                size_t t = (size_t)(i * 2 + l) * SM_N + m;
                if (c->seeds > 1) fprintf(f, " %6.4f+-%6.4f", mu[t], sd[t]);
                else fprintf(f, " %6.4f  %6s", mu[t], "-");  /* one seed: no spread measured */
            }
            fprintf(f, "%s", l ? " |" : "\n");
        }
    }
    free(mu);
    free(sd);
}

/* ---- JSON and CSV ---- */

static cJSON *theory_json(const SweepTheory *th, int nk) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "classes", th->N);
    cJSON_AddItemToObject(o, "rho", json_number_array(th->rho, th->N));
    cJSON_AddNumberToObject(o, "norm", th->R);
    cJSON_AddNumberToObject(o, "seconds", th->seconds);
    cJSON *a = cJSON_AddArrayToObject(o, "results");
    for (int i = 0; i < nk; i++) {
        const TheorySolution *s = &th->sol[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "k", (double)s->k);
        cJSON_AddItemToObject(e, "nce_loss", json_number(s->loss));
        cJSON_AddItemToObject(e, "collision_prob", json_number(s->collision_prob));
        cJSON_AddItemToObject(e, "simplex_deviation", json_number(s->st.simplex_deviation));
        cJSON_AddItemToObject(e, "mean_ce", json_number(s->ds.mean_ce));
        cJSON_AddItemToObject(e, "mean_ce_balanced", json_number(s->ds.mean_ce_balanced));
        cJSON_AddItemToObject(e, "mean_acc", json_number(s->ds.mean_acc));
        cJSON_AddItemToObject(e, "gap", json_number(s->cert.gap));
        cJSON_AddBoolToObject(e, "optimal", s->cert.optimal);
        cJSON_AddItemToArray(a, e);
    }
    return o;
}

static cJSON *results_json(const SweepConfig *c, const SweepRun *runs, const SweepTheory *th) {
    cJSON *doc = cJSON_CreateObject();
    char *cj = train_config_json(&c->base);
    cJSON *cfg = cJSON_Parse(cj);
    free(cj);
    cJSON_DeleteItemFromObject(cfg, "k");
    cJSON_DeleteItemFromObject(cfg, "seed");
    cJSON *ka = cJSON_AddArrayToObject(cfg, "ks");
    for (int i = 0; i < c->nk; i++) cJSON_AddItemToArray(ka, cJSON_CreateNumber((double)c->ks[i]));
    cJSON_AddNumberToObject(cfg, "seeds", c->seeds);
    cJSON_AddNumberToObject(cfg, "first_seed", (double)c->base.seed);
    if (c->queue_lr > 0) {  /* as given: 0.03, not 0.0299999993 */
        char b[32];
        snprintf(b, sizeof b, "%.7g", (double)c->queue_lr);
        cJSON_AddNumberToObject(cfg, "queue_lr", strtod(b, NULL));
    }
    cJSON_AddNumberToObject(cfg, "knn_k", c->eval.knn_k);
    cJSON_AddNumberToObject(cfg, "knn_t", c->eval.knn_t);
    cJSON_DeleteItemFromObject(cfg, "ranks");
    cJSON_AddNumberToObject(cfg, "ranks", c->ranks_per_run > 0 ? c->ranks_per_run : 1);  /* per run */
    cJSON_AddNumberToObject(cfg, "sweep_ranks", c->sweep_ranks > 0 ? c->sweep_ranks : 1);
    cJSON_AddItemToObject(doc, "config", cfg);
    cJSON_AddItemToObject(doc, "theory", theory_json(th, c->nk));
    if (c->nk >= 2) {  /* the experiments' answer, by the stated rule */
        SweepVerdict v;
        sweep_verdict(c, runs, &v);
        cJSON *vj = cJSON_AddObjectToObject(doc, "verdict");
        cJSON_AddStringToObject(vj, "outcome", sweep_outcome_name(v.outcome));
        cJSON_AddStringToObject(vj, "rule", SWEEP_VERDICT_RULE);
        static const char *mn[3] = {"mean_acc", "linear_acc", "knn_acc"};
        for (int m = 0; m < 3; m++) {
            cJSON *e = cJSON_AddObjectToObject(vj, mn[m]);
            cJSON_AddNumberToObject(e, "best_k", (double)v.best_k[m]);
            cJSON_AddItemToObject(e, "best", json_number(v.best[m]));
            cJSON_AddItemToObject(e, "last", json_number(v.last[m]));
            cJSON_AddItemToObject(e, "drop", json_number(v.drop[m]));
            cJSON_AddItemToObject(e, "se", json_number(v.se[m]));
            cJSON_AddBoolToObject(e, "hurt", v.hurt[m]);
        }
    }
    cJSON *ra = cJSON_AddArrayToObject(doc, "runs");
    for (int i = 0; i < c->nk * c->seeds; i++) {
        cJSON *e = sweep_run_json(&runs[i]);
        cJSON_AddItemToArray(ra, e);
    }
    double *mu = nc_malloc(sizeof(double) * c->nk * 2 * SM_N), *sd = nc_malloc(sizeof(double) * c->nk * 2 * SM_N);
    summarise(c, runs, mu, sd);
    cJSON *sa = cJSON_AddArrayToObject(doc, "summary");
    for (int i = 0; i < c->nk; i++)
        for (int l = 0; l < 2; l++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "k", (double)c->ks[i]);
            cJSON_AddStringToObject(e, "layer", l ? "head" : "features");
            cJSON_AddNumberToObject(e, "seeds", c->seeds);
            for (int m = 0; m < SM_N; m++) {
                char name[64];
                size_t t = (size_t)(i * 2 + l) * SM_N + m;
                snprintf(name, sizeof name, "%s_mean", SM_NAME[m]);
                cJSON_AddItemToObject(e, name, json_number(mu[t]));
                snprintf(name, sizeof name, "%s_std", SM_NAME[m]);
                cJSON_AddItemToObject(e, name, json_number(sd[t]));
            }
            double cm[2], cs[2];
            collisions(c, runs, i, cm, cs);
            cJSON_AddItemToObject(e, "collision_rate_mean", json_number(cm[0]));
            cJSON_AddItemToObject(e, "any_collision_mean", json_number(cm[1]));
            cJSON_AddItemToObject(e, "tau_k", json_number(th->sol[i].collision_prob));
            cJSON_AddItemToArray(sa, e);
        }
    free(mu);
    free(sd);
    return doc;
}

/* A growable text buffer for the CSV files and the page. */
typedef struct {
    char *s;
    size_t n, cap;
} Text;

static void tx_printf(Text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tx_printf(Text *t, const char *fmt, ...) {
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0) { va_end(aq); return; }
    if (t->n + (size_t)need + 1 > t->cap) {
        t->cap = (t->n + (size_t)need + 1) * 2;
        t->s = nc_realloc(t->s, t->cap);
    }
    vsnprintf(t->s + t->n, (size_t)need + 1, fmt, aq);
    va_end(aq);
    t->n += (size_t)need;
}

/* text with &, <, > and " escaped */
static void tx_escape(Text *t, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': tx_printf(t, "&amp;"); break;
        case '<': tx_printf(t, "&lt;"); break;
        case '>': tx_printf(t, "&gt;"); break;
        case '"': tx_printf(t, "&quot;"); break;
        default: tx_printf(t, "%c", *s);
        }
    }
}

static int tx_save(const char *dir, const char *name, Text *t, NcError *err) {
    char *p = nc_path_join(dir, name);
    int rc = nc_write_atomic(p, t->s ? t->s : "", t->n, err);
    free(p);
    free(t->s);
    memset(t, 0, sizeof *t);
    return rc;
}

static void results_csv(const SweepConfig *c, const SweepRun *runs, Text *t) {
    tx_printf(t, "k,seed,epochs,final_loss,train_seconds,eval_seconds,imgs_per_sec,collision_rate,any_collision");
    for (int l = 0; l < 2; l++)
        for (int m = 0; m < SM_N; m++) tx_printf(t, ",%s_%s", l ? "head" : "features", SM_NAME[m]);
    tx_printf(t, "\n");
    for (int i = 0; i < c->nk * c->seeds; i++) {
        const SweepRun *r = &runs[i];
        tx_printf(t, "%ld,%d,%d,%.6f,%.2f,%.2f,%.1f,%.5f,%.5f", r->k, r->seed, r->epochs, r->final_loss, r->train_seconds,
                  r->eval_seconds, r->imgs_per_sec, r->collision_rate, r->any_collision);
        for (int l = 0; l < 2; l++)
            for (int m = 0; m < SM_N; m++) tx_printf(t, ",%.6g", metric(l ? &r->head : &r->features, m));
        tx_printf(t, "\n");
    }
}

static void summary_csv(const SweepConfig *c, const double *mu, const double *sd, const SweepTheory *th, Text *t) {
    tx_printf(t, "k,layer,seeds");
    for (int m = 0; m < SM_N; m++) tx_printf(t, ",%s_mean,%s_std", SM_NAME[m], SM_NAME[m]);
    tx_printf(t, ",tau_k,theory_mean_ce,theory_simplex_deviation\n");
    for (int i = 0; i < c->nk; i++)
        for (int l = 0; l < 2; l++) {
            tx_printf(t, "%ld,%s,%d", c->ks[i], l ? "head" : "features", c->seeds);
            for (int m = 0; m < SM_N; m++) {
                size_t x = (size_t)(i * 2 + l) * SM_N + m;
                tx_printf(t, ",%.6g,%.6g", mu[x], sd[x]);
            }
            tx_printf(t, ",%.6g,%.6g,%.6g\n", th->sol[i].collision_prob, th->sol[i].ds.mean_ce,
                      th->sol[i].st.simplex_deviation);
        }
}

/* ---- plots ---- */

static char *plot_accuracy(const SweepConfig *c, const double *mu, const double *sd, int layer) {
    int n = c->nk;
    double *x = nc_malloc(sizeof(double) * n), *y = nc_malloc(sizeof(double) * n * 6);
    for (int i = 0; i < n; i++) {
        x[i] = (double)c->ks[i];
        for (int m = 0; m < 3; m++) {
            size_t t = (size_t)(i * 2 + layer) * SM_N + m;
            y[m * n + i] = mu[t];
            y[(3 + m) * n + i] = sd[t];
        }
    }
    SvgSeries s[3] = {
        {"mean classifier", x, y, y + 3 * n, n, 0, 1},
        {"linear probe", x, y + n, y + 4 * n, n, 0, 1},
        {"weighted kNN", x, y + 2 * n, y + 5 * n, n, 0, 1},
    };
    char title[160];
    snprintf(title, sizeof title, "Test accuracy of the %s against k (mean +- std, %d seed%s)",
             layer ? "head output" : "backbone features", c->seeds, c->seeds > 1 ? "s" : "");
    SvgPlot p = {title, "number of negatives k", "test accuracy", 1, 0, 0, 0, 0, 0};
    char *svg = svg_render(&p, s, 3);
    free(x);
    free(y);
    return svg;
}

/* which = 1: the share of anchors with a same-class negative against tau_k; which = 0: the share
   of negatives of the anchor's class against sum rho_c^2 (the same for every k) */
static char *plot_collision(const SweepConfig *c, const SweepRun *runs, const SweepTheory *th, int which) {
    int n = c->nk;
    double *x = nc_malloc(sizeof(double) * n), *y = nc_malloc(sizeof(double) * n * 3);
    double q = 0;
    for (int j = 0; j < th->N; j++) q += th->rho[j] * th->rho[j];
    for (int i = 0; i < n; i++) {
        double m[2], s[2];
        collisions(c, runs, i, m, s);
        x[i] = (double)c->ks[i];
        y[i] = m[which];
        y[n + i] = s[which];
        y[2 * n + i] = which ? th->sol[i].collision_prob : q;
    }
    SvgSeries s[2] = {
        {which ? "any_collision (measured)" : "collision_rate (measured)", x, y, y + n, n, 0, 1},
        {which ? "\xcf\x84_k = 1 \xe2\x88\x92 \xce\xa3 \xcf\x81_c (1 \xe2\x88\x92 \xcf\x81_c)^k" : "\xce\xa3 \xcf\x81_c\xc2\xb2", x, y + 2 * n, NULL, n, 1, 1},
    };
    SvgPlot p = {which ? "Anchors with a negative of their own class" : "Negatives of the anchor's class",
                 "number of negatives k", which ? "share of anchors" : "share of negatives", 1, 0, 0, 0, 0,
                 which ? 1.05 : 0};
    char *svg = svg_render(&p, s, 2);
    free(x);
    free(y);
    return svg;
}

static char *plot_simplex(const SweepConfig *c, const double *mu, const double *sd, const SweepTheory *th) {
    int n = c->nk;
    double *x = nc_malloc(sizeof(double) * n), *y = nc_malloc(sizeof(double) * n * 5);
    for (int i = 0; i < n; i++) {
        x[i] = (double)c->ks[i];
        for (int l = 0; l < 2; l++) {
            size_t t = (size_t)(i * 2 + l) * SM_N + SM_SIMPLEX;
            y[(2 * l) * n + i] = mu[t];
            y[(2 * l + 1) * n + i] = sd[t];
        }
        y[4 * n + i] = th->sol[i].st.simplex_deviation;
    }
    SvgSeries s[3] = {
        {"head class means (measured)", x, y + 2 * n, y + 3 * n, n, 0, 1},
        {"backbone class means (measured)", x, y, y + n, n, 0, 1},
        {"NCE optimum of the theory", x, y + 4 * n, NULL, n, 1, 1},
    };
    SvgPlot p = {"Distance of the class means from the regular simplex", "number of negatives k",
                 "max |cos(mu_i, mu_j) + 1/(N-1)|", 1, 0, 0, 0, 0, 0};
    char *svg = svg_render(&p, s, 3);
    free(x);
    free(y);
    return svg;
}

/* ---- the page ---- */

/* an SVG document inlined (everything from "<svg" on) with its one-line caption */
static void tx_svg(Text *t, const char *svg, const char *caption) {
    const char *p = svg ? strstr(svg, "<svg") : NULL;
    tx_printf(t, "<figure>%s<figcaption>%s</figcaption></figure>\n", p ? p : "<p>(plot unavailable)</p>", caption);
}

enum { PLOTS = 6 };
static const char *const PLOT_FILE[PLOTS] = {"accuracy_head.svg", "accuracy_features.svg", "collision.svg",
                                             "collision_rate.svg", "simplex.svg", "theory.svg"};
/* what each plot shows and which way is better, one line each (HTML) */
static const char *const PLOT_CAPTION[PLOTS] = {
    "Test accuracy of the head's output (the f that the loss trains) against k, mean &plusmn; std over the seeds: "
    "higher is better; a curve falling to the right would mean more negatives hurt.",
    "The same for the backbone's features, the layer usually kept for downstream tasks: higher is better.",
    "Share of anchors with at least one negative of their own class (any_collision) against the theory's "
    "&tau;<sub>k</sub>: how often collisions happen, the premise of the collision&ndash;coverage argument; "
    "neither direction is better.",
    "Share of all negatives that are of the anchor's class (collision_rate) against &Sigma;&rho;<sub>c</sub><sup>2</sup>, "
    "which it equals for every k: more negatives do not make each one likelier to collide.",
    "Distance of the class means from the regular simplex (0: the simplex, the theory's optimum for a uniform "
    "prior): lower is closer to the theory.",
    "The theory's NCE optimum: mean-classifier CE (&rho;-weighted and class-balanced) and average binary CE, lower is "
    "better; the (k+1)-way CE rises with k by construction (a task with more classes), not as harm; the Saunshi et "
    "al. bound (log axis) is marked at the top where it leaves the scale.",
};

static void html_summary(Text *t, const SweepConfig *c, const double *mu, const double *sd) {
    tx_printf(t, "<table><tr><th rowspan=2>k</th><th colspan=3>head (the f of the theory)</th>"
                 "<th colspan=3>backbone features</th></tr>\n<tr>");
    for (int l = 0; l < 2; l++) tx_printf(t, "<th>mean classifier</th><th>linear probe</th><th>kNN</th>");
    tx_printf(t, "</tr>\n");
    for (int i = 0; i < c->nk; i++) {
        tx_printf(t, "<tr><td>%ld</td>", c->ks[i]);
        for (int l = 1; l >= 0; l--)
            for (int m = SM_MEAN; m <= SM_KNN; m++) {
                size_t x = (size_t)(i * 2 + l) * SM_N + m;
                if (c->seeds > 1) tx_printf(t, "<td>%.4f &plusmn; %.4f</td>", mu[x], sd[x]);
                else tx_printf(t, "<td>%.4f &plusmn; &ndash;</td>", mu[x]);  /* one seed: no spread */
            }
        tx_printf(t, "</tr>\n");
    }
    tx_printf(t, "</table>\n");
}

/* The experiments' answer in one sentence, by the rule of sweep_verdict, printed under it and
   coloured by the outcome. */
static void html_verdict(Text *t, const SweepConfig *c, const SweepRun *runs) {
    if (c->nk < 2) return;
    SweepVerdict v;
    sweep_verdict(c, runs, &v);
    static const char *mn[3] = {"mean classifier", "linear probe", "kNN"};
    tx_printf(t, "<div class=\"verdict %s\"><p>", sweep_outcome_name(v.outcome));
    tx_printf(t, "%s", v.outcome == SWEEP_HURT ? "<b>More negatives hurt here.</b> "
                       : v.outcome == SWEEP_NOT_HURT ? "<b>More negatives did not hurt here.</b> "
                       : "<b>One seed: the noise is not measured, so this sweep cannot tell.</b> ");
    tx_printf(t, "The head's accuracy at the largest k = %ld against the best k:", c->ks[c->nk - 1]);
    for (int m = 0; m < 3; m++) {
        tx_printf(t, " %s %.4f (best %.4f at k = %ld; drop %+.4f", mn[m], v.last[m], v.best[m], v.best_k[m], v.drop[m]);
        if (isfinite(v.se[m])) tx_printf(t, ", standard error %.4f%s", v.se[m], v.hurt[m] ? ", significant" : "");
        tx_printf(t, ")%s", m < 2 ? ";" : ".");
    }
    tx_printf(t, "</p><p class=rule>Rule: %s.</p></div>\n", SWEEP_VERDICT_RULE);
}

static void html_theory(Text *t, const SweepConfig *c, const SweepTheory *th) {
    tx_printf(t, "<p>The latent-class model with the training split's class prior (N = %d, rho = ", th->N);
    for (int i = 0; i < th->N && i < 12; i++) tx_printf(t, "%s%.4f", i ? ", " : "", th->rho[i]);
    tx_printf(t, "%s), embeddings in the ball of radius R = 1/sqrt(T) = %.4f (unit vectors at temperature T = %g), "
                 "solved and certified for every k in %.2f s.</p>\n",
              th->N > 12 ? ", ..." : "", th->R, c->base.temp, th->seconds);
    tx_printf(t, "<table><tr><th>k</th><th>&tau;<sub>k</sub></th><th>NCE loss</th><th>mean CE</th>"
                 "<th>balanced CE</th><th>mean acc</th><th>simplex deviation</th><th>certificate gap</th></tr>\n");
    for (int i = 0; i < c->nk; i++) {
        const TheorySolution *s = &th->sol[i];
        tx_printf(t, "<tr><td>%ld</td><td>%.4f</td><td>%.5f</td><td>%.5f</td><td>%.5f</td><td>%.4f</td><td>%.2e</td>"
                     "<td>%.1e%s</td></tr>\n", s->k, s->collision_prob, s->loss, s->ds.mean_ce, s->ds.mean_ce_balanced,
                  s->ds.mean_acc, s->st.simplex_deviation, s->cert.gap, s->cert.optimal ? "" : " (not certified)");
    }
    tx_printf(t, "</table>\n");
}

static void html_runs(Text *t, const SweepConfig *c, const SweepRun *runs) {
    tx_printf(t, "<table><tr><th>k</th><th>seed</th><th>epochs</th><th>final loss</th><th>train s</th><th>images/s</th>"
                 "<th>eval s</th><th title=\"share of anchors with at least one negative of their own class (theory: tau_k)\">any_collision</th><th>head mean</th><th>head linear</th><th>head kNN</th>"
                 "<th>features mean</th><th>features linear</th><th>features kNN</th></tr>\n");
    for (int i = 0; i < c->nk * c->seeds; i++) {
        const SweepRun *r = &runs[i];
        tx_printf(t, "<tr><td>%ld</td><td>%d</td><td>%d</td><td>%.4f</td><td>%.0f</td><td>%.0f</td><td>%.0f</td>"
                     "<td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.4f</td></tr>\n",
                  r->k, r->seed, r->epochs, r->final_loss, r->train_seconds, r->imgs_per_sec, r->eval_seconds,
                  r->any_collision, r->head.mean_acc, r->head.linear_acc, r->head.knn_acc, r->features.mean_acc,
                  r->features.linear_acc, r->features.knn_acc);
    }
    tx_printf(t, "</table>\n");
}

static void html_page(Text *t, const SweepConfig *c, const SweepRun *runs, const SweepTheory *th, const double *mu,
                      const double *sd, char *const svg[PLOTS], const char *config_json) {
    double train_s = 0;
    for (int i = 0; i < c->nk * c->seeds; i++) train_s += runs[i].train_seconds;
    tx_printf(t, "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>ncelab: ");
    tx_escape(t, c->base.data);
    tx_printf(t, "</title>\n<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
                 "table{border-collapse:collapse;margin:1em 0;display:block;overflow-x:auto;max-width:100%%}"
                 "td,th{border:1px solid #bbb;padding:3px 8px;white-space:nowrap;"
                 "text-align:right}th{background:#eef}figure{margin:1em 0}pre{background:#f6f6f6;padding:1em;"
                 "overflow:auto}figure svg{max-width:100%%;height:auto}figcaption{font-size:.9em;color:#444;margin-top:.2em}.two{display:grid;"
                 "grid-template-columns:repeat(auto-fit,minmax(380px,1fr));"
                 "gap:1em}.verdict{font-size:1.1em;padding:.1em .8em;border-left:5px solid}.verdict .rule{font-size:.8em;color:#444}"
                 ".not_hurt{background:#e8f5e9;border-color:#2e7d32}.hurt{background:#fdecea;border-color:#c62828}"
                 ".unknown{background:#f0f0f0;border-color:#777}"
                 "</style></head><body>\n");
    tx_printf(t, "<h1>Do more negatives hurt? A k-sweep on ");
    tx_escape(t, c->base.data);
    tx_printf(t, "</h1>\n<p>%s encoder, %s positives, %d epoch%s per run, batch %d, temperature %g, %s; "
                 "k &isin; {", c->base.model, c->base.positives, c->base.epochs, c->base.epochs > 1 ? "s" : "",
              c->base.batch, c->base.temp, c->base.optim);
    for (int i = 0; i < c->nk; i++) tx_printf(t, "%s%ld", i ? ", " : "", c->ks[i]);
    tx_printf(t, "}, %d seed%s; %.1f minutes of training in all.", c->seeds, c->seeds > 1 ? "s" : "", train_s / 60);
    if (c->base.imbalance[0]) tx_printf(t, " Training classes imbalanced as %s.", c->base.imbalance);
    tx_printf(t, "</p>\n<h2>The experiments' answer</h2>\n");
    html_verdict(t, c, runs);
    html_summary(t, c, mu, sd);
    tx_printf(t, "<div class=two>");
    tx_svg(t, svg[0], PLOT_CAPTION[0]);
    tx_svg(t, svg[1], PLOT_CAPTION[1]);
    tx_printf(t, "</div>\n<h2>The theory's answer</h2>\n");
    html_theory(t, c, th);
    tx_printf(t, "<div class=two>");
    tx_svg(t, svg[5], PLOT_CAPTION[5]);
    tx_svg(t, svg[4], PLOT_CAPTION[4]);
    tx_printf(t, "</div>\n<h2>Collisions, next to the theory</h2>\n<div class=two>");
    tx_svg(t, svg[2], PLOT_CAPTION[2]);
    tx_svg(t, svg[3], PLOT_CAPTION[3]);
    tx_printf(t, "</div>\n");
    tx_printf(t, "<h2>Runs</h2>\n");
    html_runs(t, c, runs);
    tx_printf(t, "<h2>Configuration</h2>\n<pre>");
    tx_escape(t, config_json);
    dnnl_version_t const *dv = dnnl_version();
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    tx_printf(t, "</pre>\n<p>ncelab %s, oneDNN %d.%d.%d, OpenBLAS (", NCELAB_VERSION, dv->major, dv->minor, dv->patch);
    tx_escape(t, openblas_get_config());
    tx_printf(t, "), compiler ");
    tx_escape(t, __VERSION__);
    tx_printf(t, "; written %s.</p>\n</body></html>\n", when);
}

int sweep_write(const SweepConfig *c, const SweepRun *runs, const SweepTheory *th, NcError *err) {
    int rc;
    cJSON *doc = results_json(c, runs, th);
    char *p = nc_path_join(c->out, "results.json");
    rc = json_save(p, doc, err);
    free(p);
    char *config_json = cJSON_Print(cJSON_GetObjectItemCaseSensitive(doc, "config"));
    cJSON_Delete(doc);
    double *mu = nc_malloc(sizeof(double) * c->nk * 2 * SM_N), *sd = nc_malloc(sizeof(double) * c->nk * 2 * SM_N);
    summarise(c, runs, mu, sd);
    Text t = {0};
    if (!rc) { results_csv(c, runs, &t); rc = tx_save(c->out, "results.csv", &t, err); }
    if (!rc) { summary_csv(c, mu, sd, th, &t); rc = tx_save(c->out, "summary.csv", &t, err); }
    char title[160];
    snprintf(title, sizeof title, "Theory: downstream losses of the NCE optimum, N = %d, R = %.3g", th->N, th->R);
    char *svg[PLOTS] = {plot_accuracy(c, mu, sd, 1), plot_accuracy(c, mu, sd, 0), plot_collision(c, runs, th, 1),
                        plot_collision(c, runs, th, 0), plot_simplex(c, mu, sd, th),
                        report_theory_svg(NULL, title, th->sol, c->nk)};
    for (int i = 0; i < PLOTS && !rc; i++) {
        if (!svg[i]) { rc = nc_fail(err, NC_EFILE, "%s: cannot render", PLOT_FILE[i]); break; }
        p = nc_path_join(c->out, PLOT_FILE[i]);
        rc = report_write_text(p, svg[i], err);
        free(p);
    }
    if (!rc) {
        html_page(&t, c, runs, th, mu, sd, svg, config_json ? config_json : "{}");
        rc = tx_save(c->out, "report.html", &t, err);
    }
    for (int i = 0; i < PLOTS; i++) free(svg[i]);
    free(config_json);
    free(mu);
    free(sd);
    return rc;
}
