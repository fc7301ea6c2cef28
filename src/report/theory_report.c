// theory_report.c -- the theory engine's results as JSON, a terminal table and an SVG plot.
#include "ncelab/report.h"
#include "ncelab/jsonio.h"
#include "ncelab/svg.h"
#include "ncelab/utf8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static cJSON *downstream_json(const TheoryDownstream *d) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "mean_ce", json_number(d->mean_ce));
    cJSON_AddItemToObject(o, "mean_ce_balanced", json_number(d->mean_ce_balanced));
    cJSON_AddItemToObject(o, "mean_acc", json_number(d->mean_acc));
    cJSON_AddItemToObject(o, "avg_binary_ce", json_number(d->avg_binary_ce));
    cJSON_AddItemToObject(o, "kplus1_ce", json_number(d->kplus1_ce));
    return o;
}

cJSON *report_theory_json(const TheoryModel *m, const char *rho_spec, const char *support_path,
                          const TheorySolution *s, int n) {
    cJSON *doc = cJSON_CreateObject(), *model = cJSON_CreateObject();
    cJSON_AddNumberToObject(model, "classes", m->N);
    cJSON_AddNumberToObject(model, "points", m->M);
    cJSON_AddItemToObject(model, "rho_spec", utf8_json_string(rho_spec ? rho_spec : "uniform"));
    cJSON_AddItemToObject(model, "rho", json_number_array(m->rho, m->N));
    cJSON_AddNumberToObject(model, "norm", m->R);
    cJSON_AddNumberToObject(model, "dim", m->d);
    cJSON_AddStringToObject(model, "loss", nc_loss_name(m->loss));
    cJSON_AddBoolToObject(model, "overlapping", m->overlapping);
    if (support_path) cJSON_AddItemToObject(model, "support_file", utf8_json_string(support_path));
    if (m->overlapping) cJSON_AddItemToObject(model, "support", json_matrix(m->P, m->N, m->M));
    cJSON_AddNumberToObject(model, "quadrature_step", m->h);
    cJSON_AddStringToObject(model, "version", NCELAB_VERSION);
    cJSON_AddItemToObject(doc, "model", model);
    cJSON *results = cJSON_AddArrayToObject(doc, "results");
    for (int i = 0; i < n; i++) {
        const TheorySolution *r = &s[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "k", (double)r->k);
        cJSON_AddItemToObject(o, "nce_loss", json_number(r->loss));
        cJSON_AddItemToObject(o, "gram", json_matrix(r->G, m->M, m->M));
        double *norms = nc_malloc(sizeof(double) * m->M);
        for (int x = 0; x < m->M; x++) norms[x] = sqrt(fmax(0.0, r->G[(size_t)x * m->M + x]));
        cJSON_AddItemToObject(o, "norms", json_number_array(norms, m->M));
        free(norms);
        cJSON *cert = cJSON_AddObjectToObject(o, "certificate");
        cJSON_AddItemToObject(cert, "gap", json_number(r->cert.gap));
        cJSON_AddItemToObject(cert, "min_eig", json_number(r->cert.min_eig));
        cJSON_AddItemToObject(cert, "kkt_residual", json_number(r->cert.kkt_residual));
        cJSON_AddBoolToObject(cert, "optimal", r->cert.optimal);
        cJSON_AddItemToObject(o, "simplex_deviation", json_number(r->st.simplex_deviation));
        cJSON_AddItemToObject(o, "class_spread", json_number(r->st.class_spread));
        cJSON_AddNumberToObject(o, "rank", r->st.rank);
        cJSON_AddItemToObject(o, "collision_prob", json_number(r->collision_prob));
        cJSON_AddItemToObject(o, "saunshi_bound", json_number(r->saunshi_bound));
        cJSON_AddItemToObject(o, "downstream", downstream_json(&r->ds));
        cJSON_AddBoolToObject(o, "unique", r->unique);
        cJSON *range = cJSON_AddObjectToObject(o, "downstream_range");
        cJSON_AddItemToObject(range, "min", downstream_json(&r->ds_lo));
        cJSON_AddItemToObject(range, "max", downstream_json(&r->ds_hi));
        cJSON_AddNumberToObject(o, "starts", r->starts);
        cJSON_AddNumberToObject(o, "iterations", r->iters);
        cJSON_AddNumberToObject(o, "seconds", r->seconds);
        cJSON_AddItemToArray(results, o);
    }
    return doc;
}

void report_theory_table(FILE *f, const TheoryModel *m, const TheorySolution *s, int n) {
    fprintf(f, "%10s %11s %9s %4s %9s %9s %9s %7s %9s %8s %10s\n", "k", "loss", "gap", "opt",
            "simplex", "mean_ce", "bal_ce", "acc", "k+1_ce", "tau_k", "bound");
    for (int i = 0; i < n; i++) {
        const TheorySolution *r = &s[i];
        char bound[32];
        if (isfinite(r->saunshi_bound) && fabs(r->saunshi_bound) < 1e6)
            snprintf(bound, sizeof bound, "%10.4f", r->saunshi_bound);
        else if (isfinite(r->saunshi_bound))
            snprintf(bound, sizeof bound, "%10.2e", r->saunshi_bound);
        else
            snprintf(bound, sizeof bound, "%10s", m->loss == NC_LOSS_NCE ? "-" : "inf");
        fprintf(f, "%10ld %11.6f %9.1e %4s %9.1e %9.5f %9.5f %7.4f %9.5f %8.5f %s%s\n", r->k, r->loss,
                r->cert.gap, r->cert.optimal ? "yes" : "NO", r->st.simplex_deviation, r->ds.mean_ce,
                r->ds.mean_ce_balanced, r->ds.mean_acc, r->ds.kplus1_ce, r->collision_prob, bound,
                r->unique ? "" : "  (optimum not unique: see downstream_range)");
    }
}

char *report_theory_svg(const TheoryModel *m, const char *title, const TheorySolution *s, int n) {
    (void)m;
    double *x = nc_malloc(sizeof(double) * n), *y = nc_malloc(sizeof(double) * n * 5);
    double ymin = HUGE_VAL, ymax = 0.0;
    for (int i = 0; i < n; i++) {
        x[i] = (double)s[i].k;
        double v[5] = {s[i].ds.mean_ce, s[i].ds.mean_ce_balanced, s[i].ds.avg_binary_ce,
                       s[i].ds.kplus1_ce, s[i].saunshi_bound};
        for (int j = 0; j < 5; j++) {
            y[j * n + i] = v[j];
            if (j < 4 && isfinite(v[j]) && v[j] > 0) {
                ymax = fmax(ymax, v[j]);
                ymin = fmin(ymin, v[j]);
            }
        }
    }
    SvgSeries ser[5] = {
        {"mean classifier CE (\xcf\x81-weighted)", x, y, NULL, n, 0, 1},
        {"mean classifier CE (class-balanced)", x, y + n, NULL, n, 0, 1},
        {"average binary task CE", x, y + 2 * n, NULL, n, 0, 1},
        {"(k+1)-way task CE", x, y + 3 * n, NULL, n, 0, 1},
        {"Saunshi et al. bound on (k+1)-way CE", x, y + 4 * n, NULL, n, 1, 0},
    };
    /* a log y axis from the smallest loss to 10x the largest: the bound, which grows like
       1 / (1 - tau_k), is drawn up to there and marked by an arrow and its value beyond */
    SvgPlot p = {title, "number of negatives k", "downstream loss (nats, log scale)", 1, 1, 0, 0,
                 ymax > 0 ? 0.8 * ymin : 0.0, ymax > 0 ? 10 * ymax : 0.0};
    char *svg = svg_render(&p, ser, 5);
    free(x);
    free(y);
    return svg;
}

int report_write_text(const char *path, const char *text, NcError *err) {
    return nc_write_atomic(path, text, strlen(text), err);
}
