// explore_report.c -- an exploration summarised: explore.json, explore.csv, the table, explore.html.
//
// The page is self-contained: the summary, the families, each counterexample with its command and
// its curves, and the N = 3 phase maps (the triangle of priors, each point coloured by how the
// metric changed from the first to the last requested k).
#define _POSIX_C_SOURCE 200809L
#include "ncelab/explore.h"
#include "ncelab/jsonio.h"
#include "ncelab/report.h"
#include "ncelab/svg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void explore_summarise(const ExploreRecord *r, long n, ExploreSummary *s) {
    memset(s, 0, sizeof *s);
    for (int m = 0; m < EXPLORE_JUDGED; m++) s->worst[m] = -1;
    s->n = n;
    for (long i = 0; i < n; i++) {
        const ExploreRecord *x = &r[i];
        if (!x->certified) continue;
        s->certified++;
        for (int q = 0; q < EXPLORE_METRICS; q++)
            for (int j = 0; j < x->nk; j++) s->max_spread = fmax(s->max_spread, x->spread[q][j]);
        for (int m = 0; m < EXPLORE_JUDGED; m++) {
            double harm = m == EX_MEAN_ACC ? -x->change[m] : x->change[m];
            if (x->change_significant[m]) { if (harm > 0) s->worse[m]++; else s->better[m]++; }
            if (!(x->rise[m] > 0)) continue;
            s->rises[m]++;
            s->max_rise[m] = fmax(s->max_rise[m], x->rise[m]);
            if (x->rise_rel[m] > s->max_rel[m]) { s->max_rel[m] = x->rise_rel[m]; s->worst[m] = i; }
        }
    }
}

static const char *TOL_RULE =
    "a rise of a metric is its largest worsening from a smaller k to a larger one (a larger loss; for mean_acc a "
    "lower accuracy); it counts only when every optimum of the instance's sweep has certified gap <= 1e-9 and "
    "unique downstream values, and it exceeds 1e-6 * max(1, |v|) plus the spread of the values over the optimal "
    "starts at both k (1e-6: the relative difference at which the solver calls two optimal starts' downstream "
    "values different); kplus1_ce is a different task at each k and is never judged";

static cJSON *summary_json(const ExploreSummary *s, const ExploreRecord *r, const ExploreCounter *cx, int ncx) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "instances", (double)s->n);
    cJSON_AddNumberToObject(o, "certified", (double)s->certified);
    cJSON_AddNumberToObject(o, "uncertified", (double)(s->n - s->certified));
    cJSON_AddNumberToObject(o, "resumed", (double)s->resumed);
    cJSON_AddItemToObject(o, "max_spread", json_number(s->max_spread));
    cJSON *pm = cJSON_AddObjectToObject(o, "metrics");
    for (int m = 0; m < EXPLORE_JUDGED; m++) {
        cJSON *x = cJSON_AddObjectToObject(pm, explore_metric_name[m]);
        cJSON_AddNumberToObject(x, "rises", (double)s->rises[m]);
        cJSON_AddItemToObject(x, "share", json_number(s->certified ? (double)s->rises[m] / s->certified : NAN));
        cJSON_AddNumberToObject(x, "worse_last_vs_first", (double)s->worse[m]);
        cJSON_AddNumberToObject(x, "better_last_vs_first", (double)s->better[m]);
        cJSON_AddItemToObject(x, "max_rise", json_number(s->max_rise[m]));
        cJSON_AddItemToObject(x, "max_relative_rise", json_number(s->max_rel[m]));
    }
    cJSON *ca = cJSON_AddArrayToObject(o, "counterexamples");
    for (int i = 0; i < ncx; i++) {
        const ExploreRecord *w = &r[cx[i].worst], *mn = &cx[i].minimal;
        int m = cx[i].metric;
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "metric", explore_metric_name[m]);
        const ExploreRecord *two[2] = {w, mn};
        const char *names[2] = {"worst", "minimal"};
        for (int j = 0; j < 2; j++) {
            cJSON *y = cJSON_AddObjectToObject(x, names[j]);
            if (j == 0) cJSON_AddNumberToObject(y, "index", (double)two[j]->index);
            cJSON_AddStringToObject(y, "command", two[j]->command);
            cJSON_AddNumberToObject(y, "classes", two[j]->N);
            cJSON_AddStringToObject(y, "rho", two[j]->rho_spec);
            cJSON_AddNumberToObject(y, "R", two[j]->R);
            cJSON_AddStringToObject(y, "loss", nc_loss_name(two[j]->loss));
            cJSON_AddNumberToObject(y, "shared_points", two[j]->shared);
            cJSON_AddItemToObject(y, "rise", json_number(two[j]->rise[m]));
            cJSON_AddItemToObject(y, "rise_relative", json_number(two[j]->rise_rel[m]));
            double ft[2] = {(double)two[j]->rise_from[m], (double)two[j]->rise_to[m]};
            cJSON_AddItemToObject(y, "rise_k", json_number_array(ft, 2));
            cJSON_AddItemToObject(y, "curve", json_number_array(two[j]->curve[m], two[j]->nk));
        }
        cJSON_AddItemToArray(ca, x);
    }
    cJSON_AddNumberToObject(o, "seconds", s->seconds);
    cJSON_AddItemToObject(o, "instances_per_second", json_number(s->rate));
    return o;
}

cJSON *explore_report_json(const ExploreConfig *c, const ExploreRecord *r, long n, const ExploreSummary *s,
                           const ExploreCounter *cx, int ncx) {
    cJSON *doc = cJSON_CreateObject(), *cfg = explore_config_json(c);
    cJSON_AddNumberToObject(cfg, "instances", (double)n);
    cJSON_AddNumberToObject(cfg, "k_limit", (double)EXPLORE_K_LIMIT);
    cJSON *tol = cJSON_AddObjectToObject(cfg, "tolerance");
    cJSON_AddNumberToObject(tol, "max_gap", EXPLORE_MAX_GAP);
    cJSON_AddNumberToObject(tol, "relative", EXPLORE_TOL_REL);
    cJSON_AddStringToObject(tol, "rule", TOL_RULE);
    cJSON_AddStringToObject(cfg, "version", NCELAB_VERSION);
    cJSON_AddItemToObject(doc, "config", cfg);
    cJSON *a = cJSON_AddArrayToObject(doc, "instances");
    for (long i = 0; i < n; i++) cJSON_AddItemToArray(a, explore_record_json(&r[i]));
    cJSON_AddItemToObject(doc, "summary", summary_json(s, r, cx, ncx));
    return doc;
}

static void csv_text(NcBuf *b, const char *s) {
    nc_buf_printf(b, "\"");
    for (; *s; s++) nc_buf_printf(b, *s == '"' ? "\"\"" : "%c", *s);
    nc_buf_printf(b, "\"");
}

static void explore_csv(NcBuf *b, const ExploreRecord *r, long n) {
    nc_buf_printf(b, "index,family,classes,points,R,loss,support,certified,max_gap");
    for (int m = 0; m < EXPLORE_JUDGED; m++) {
        const char *x = explore_metric_name[m];
        nc_buf_printf(b, ",%s_monotone,%s_rise,%s_rise_relative,%s_rise_from_k,%s_rise_to_k,%s_change", x, x, x, x, x, x);
    }
    nc_buf_printf(b, ",rho,command\n");
    for (long i = 0; i < n; i++) {
        const ExploreRecord *x = &r[i];
        nc_buf_printf(b, "%ld,%s,%d,%d,%.12g,%s,", x->index, x->family, x->N, x->M, x->R, nc_loss_name(x->loss));
        if (x->shared > 0) nc_buf_printf(b, "overlap:%d", x->shared);
        else nc_buf_printf(b, x->shared < 0 ? "file" : "disjoint");
        nc_buf_printf(b, ",%d,%.3e", x->certified, x->max_gap);
        for (int m = 0; m < EXPLORE_JUDGED; m++) {
            if (!x->certified) {  /* the change is NaN when the sweep stopped before the last k */
                nc_buf_printf(b, ",,,,,,");
                if (isfinite(x->change[m])) nc_buf_printf(b, "%.10g", x->change[m]);
                continue;
            }
            nc_buf_printf(b, ",%d,%.10g,%.10g,", x->rise[m] == 0, x->rise[m], x->rise_rel[m]);
            if (x->rise[m] > 0) nc_buf_printf(b, "%ld,%ld", x->rise_from[m], x->rise_to[m]);
            else nc_buf_printf(b, ",");
            nc_buf_printf(b, ",%.10g", x->change[m]);
        }
        nc_buf_printf(b, ",");
        csv_text(b, x->rho_spec);
        nc_buf_printf(b, ",");
        csv_text(b, x->command);
        nc_buf_printf(b, "\n");
    }
}

/* ---- families: the family's name up to ':' and the kind of support ---- */

typedef struct {
    char name[48];
    long n, certified, rises[EXPLORE_JUDGED];
} FamilyRow;

static int family_rows(const ExploreRecord *r, long n, FamilyRow **out) {
    FamilyRow *f = NULL;
    int nf = 0;
    for (long i = 0; i < n; i++) {
        char name[48];
        size_t len = strcspn(r[i].family, ":");
        snprintf(name, sizeof name, "%.*s/%s", (int)len, r[i].family,
                 r[i].shared > 0 ? "overlap" : r[i].shared < 0 ? "file" : "disjoint");
        int j = 0;
        while (j < nf && strcmp(f[j].name, name) != 0) j++;
        if (j == nf) {
            f = nc_realloc(f, sizeof(FamilyRow) * (nf + 1));
            memset(&f[nf], 0, sizeof f[nf]);
            snprintf(f[nf].name, sizeof f[nf].name, "%s", name);
            nf++;
        }
        f[j].n++;
        if (!r[i].certified) continue;
        f[j].certified++;
        for (int m = 0; m < EXPLORE_JUDGED; m++) f[j].rises[m] += r[i].rise[m] > 0;
    }
    *out = f;
    return nf;
}

static double value_at(const ExploreRecord *r, int m, long k) {
    for (int i = 0; i < r->nk; i++)
        if (r->k[i] == k) return r->curve[m][i];
    return NAN;
}

void explore_report_table(FILE *f, const ExploreConfig *c, const ExploreRecord *r, long n, const ExploreSummary *s,
                          const ExploreCounter *cx, int ncx) {
    (void)c;
    fprintf(f, "%ld instances, %ld certified (gap <= 1e-9, unique), %ld not; largest spread over optimal starts %.1e\n",
            s->n, s->certified, s->n - s->certified, s->max_spread);
    fprintf(f, "%-18s %9s %8s %10s %12s %13s %13s\n", "metric", "rises", "share", "max rise", "max relative",
            "worse 1st->last", "better");
    for (int m = 0; m < EXPLORE_JUDGED; m++)
        fprintf(f, "%-18s %9ld %7.2f%% %10.3e %12.3e %13ld %13ld\n", explore_metric_name[m], s->rises[m],
                s->certified ? 100.0 * s->rises[m] / s->certified : 0.0, s->max_rise[m], s->max_rel[m], s->worse[m],
                s->better[m]);
    FamilyRow *fr;
    int nf = family_rows(r, n, &fr);
    fprintf(f, "\ninstances with a certified rise, by family:\n%-22s %9s %9s", "family/support", "instances", "certified");
    for (int m = 0; m < EXPLORE_JUDGED; m++) fprintf(f, " %16s", explore_metric_name[m]);
    fprintf(f, "\n");
    for (int j = 0; j < nf; j++) {
        fprintf(f, "%-22s %9ld %9ld", fr[j].name, fr[j].n, fr[j].certified);
        for (int m = 0; m < EXPLORE_JUDGED; m++) fprintf(f, " %16ld", fr[j].rises[m]);
        fprintf(f, "\n");
    }
    free(fr);
    for (int i = 0; i < ncx; i++) {
        int m = cx[i].metric;
        const ExploreRecord *w = &r[cx[i].worst], *mn = &cx[i].minimal;
        fprintf(f, "\ncounterexample, %s: largest relative rise %.4g (%.6f at k = %ld to %.6f at k = %ld), instance %ld:\n  %s\n",
                explore_metric_name[m], w->rise_rel[m], value_at(w, m, w->rise_from[m]), w->rise_from[m],
                value_at(w, m, w->rise_to[m]), w->rise_to[m], w->index, w->command);
        fprintf(f, "  shrunk (N = %d, rise %.4g from k = %ld to k = %ld):\n  %s\n", mn->N, mn->rise[m], mn->rise_from[m],
                mn->rise_to[m], mn->command);
    }
}

/* ---- HTML ---- */

static void html_escape(NcBuf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': nc_buf_printf(b, "&amp;"); break;
        case '<': nc_buf_printf(b, "&lt;"); break;
        case '>': nc_buf_printf(b, "&gt;"); break;
        case '"': nc_buf_printf(b, "&quot;"); break;
        default: nc_buf_printf(b, "%c", *s);
        }
    }
}

static void html_svg(NcBuf *b, const char *svg, const char *caption) {
    const char *p = svg ? strstr(svg, "<svg") : NULL;
    nc_buf_printf(b, "<figure>%s<figcaption>", p ? p : "<p>(plot unavailable)</p>");
    html_escape(b, caption);
    nc_buf_printf(b, "</figcaption></figure>\n");
}

/* the worst and the shrunk instance's curves of metric m against k */
static char *counter_svg(const ExploreRecord *w, const ExploreRecord *mn, int m) {
    double *x = nc_malloc(sizeof(double) * (w->nk + mn->nk));
    for (int i = 0; i < w->nk; i++) x[i] = (double)w->k[i];
    for (int i = 0; i < mn->nk; i++) x[w->nk + i] = (double)mn->k[i];
    char l1[96], l2[96], title[128], yl[96];
    snprintf(l1, sizeof l1, "largest relative rise (instance %ld, N = %d)", w->index, w->N);
    snprintf(l2, sizeof l2, "shrunk (N = %d)", mn->N);
    snprintf(title, sizeof title, "Counterexample: %s", explore_metric_name[m]);
    snprintf(yl, sizeof yl, "%s of the optimum", explore_metric_name[m]);
    SvgSeries s[2] = {{l1, x, w->curve[m], NULL, w->nk, 0, 1}, {l2, x + w->nk, mn->curve[m], NULL, mn->nk, 1, 1}};
    SvgPlot p = {title, "number of negatives k (the last point: k = 1e9, the limit)", yl, 1, 0, 0, 0, 0, 0};
    char *svg = svg_render(&p, s, 2);
    free(x);
    return svg;
}

/* a colour for a harm h (positive: worse) against the scale hmax: red worse, blue better */
static void harm_colour(double h, double hmax, int significant, char *out, size_t cap) {
    if (!significant) { snprintf(out, cap, "#e6e6e6"); return; }
    double t = hmax > 0 ? sqrt(fmin(1.0, fabs(h) / hmax)) : 1.0;
    t = 0.25 + 0.75 * t;
    int r, g, b;
    if (h > 0) { r = (int)(255 + t * (198 - 255)); g = (int)(255 + t * (40 - 255)); b = (int)(255 + t * (40 - 255)); }
    else { r = (int)(255 + t * (21 - 255)); g = (int)(255 + t * (101 - 255)); b = (int)(255 + t * (192 - 255)); }
    snprintf(out, cap, "#%02x%02x%02x", r, g, b);
}

/* the N = 3 triangle: corner j is rho = e_j; each triangle instance of radius R a disc */
static char *phase_svg(const ExploreRecord *r, long n, double R, int m, long first_k, long last_k) {
    NcBuf b = {0};
    const double W = 420, H = 400, ax = 30, ay = 370, bx = 390, by = 370, cx = 210, cy = 370 - 360 * 0.8660254;
    double hmax = 0, worst = 0, best = 0;  /* the colour scale; the largest worsening and improvement */
    int steps = 0;
    for (long i = 0; i < n; i++) {
        if (strncmp(r[i].family, "triangle:", 9) != 0 || r[i].R != R || !r[i].certified) continue;
        double harm = m == EX_MEAN_ACC ? -r[i].change[m] : r[i].change[m];
        hmax = fmax(hmax, fabs(harm));
        if (r[i].change_significant[m]) {
            worst = fmax(worst, harm);
            best = fmax(best, -harm);
        }
        steps = atoi(r[i].family + 9);
    }
    nc_buf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" "
                      "font-family=\"sans-serif\" font-size=\"12\">\n", W, H + 50, W, H + 50);
    nc_buf_printf(&b, "<text x=\"%g\" y=\"16\" text-anchor=\"middle\" font-size=\"14\">%s, R = %g: change k = %ld &#8594; %ld</text>\n",
                  W / 2, explore_metric_name[m], R, first_k, last_k);
    nc_buf_printf(&b, "<polygon points=\"%g,%g %g,%g %g,%g\" fill=\"none\" stroke=\"#444\"/>\n", ax, ay, bx, by, cx, cy);
    double rad = steps > 0 ? 0.5 * 360.0 / steps * 0.95 : 4;
    for (long i = 0; i < n; i++) {
        const ExploreRecord *x = &r[i];
        if (strncmp(x->family, "triangle:", 9) != 0 || x->R != R) continue;
        double px = x->rho[0] * ax + x->rho[1] * bx + x->rho[2] * cx, py = x->rho[0] * ay + x->rho[1] * by + x->rho[2] * cy;
        double harm = m == EX_MEAN_ACC ? -x->change[m] : x->change[m];
        char col[16];
        if (!x->certified) {
            nc_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" dy=\"4\">&#215;</text>\n", px, py);
            continue;
        }
        harm_colour(harm, hmax, x->change_significant[m], col, sizeof col);
        nc_buf_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"><title>rho = %s: change %+.3e</title></circle>\n",
                      px, py, rad, col, x->rho_spec, x->change[m]);
    }
    nc_buf_printf(&b, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">class 1</text>\n", ax, ay + 18);
    nc_buf_printf(&b, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">class 2</text>\n", bx, by + 18);
    nc_buf_printf(&b, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">class 3</text>\n", cx, cy - 6);
    char c1[16], c2[16];
    harm_colour(1, 1, 1, c1, sizeof c1);
    harm_colour(-1, 1, 1, c2, sizeof c2);
    char ws[32], bs[32];
    if (worst > 0) snprintf(ws, sizeof ws, "worse (at most %.2e)", worst);
    else snprintf(ws, sizeof ws, "worse (none)");
    if (best > 0) snprintf(bs, sizeof bs, "better (at most %.2e)", best);
    else snprintf(bs, sizeof bs, "better (none)");
    nc_buf_printf(&b, "<rect x=\"10\" y=\"%g\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"26\" y=\"%g\">%s</text>\n",
                  H + 10, c1, H + 20, ws);
    nc_buf_printf(&b, "<rect x=\"210\" y=\"%g\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"226\" y=\"%g\">%s</text>\n",
                  H + 10, c2, H + 20, bs);
    nc_buf_printf(&b, "<rect x=\"10\" y=\"%g\" width=\"12\" height=\"12\" fill=\"#e6e6e6\"/><text x=\"26\" y=\"%g\">no change beyond "
                      "the tolerance</text><text x=\"250\" y=\"%g\">&#215;</text><text x=\"266\" y=\"%g\">not certified</text>\n",
                  H + 30, H + 40, H + 40, H + 40);
    nc_buf_printf(&b, "</svg>\n");
    return b.s;
}

static char *explore_html(const ExploreConfig *c, const ExploreRecord *r, long n, const ExploreSummary *s,
                          const ExploreCounter *cx, int ncx) {
    NcBuf b = {0};
    nc_buf_printf(&b, "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>ncelab theory explore</title>\n"
                      "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
                      "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:3px 8px;"
                      "text-align:right}th{background:#eef}code{background:#f6f6f6;padding:2px 4px;word-break:break-all}"
                      "figure{margin:1em 0}figure svg{max-width:100%%;height:auto}figcaption{font-size:.9em;color:#444}"
                      ".two{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:1em}"
                      "</style></head><body>\n<h1>Where do more negatives hurt? %ld latent-class instances</h1>\n", s->n);
    nc_buf_printf(&b, "<p>Each instance is the NCE-optimal representation for every k of {");
    for (int i = 0; i < c->nk; i++) nc_buf_printf(&b, "%s%ld", i ? ", " : "", c->ks[i]);
    nc_buf_printf(&b, "} (the last is the limit k &#8594; &#8734;), solved and certified. %ld of %ld instances are "
                      "certified; %ld were read back from an earlier run. %.1f s, %.2f instances/s.</p>\n<p>Rule: ",
                  s->certified, s->n, s->resumed, s->seconds, s->rate);
    html_escape(&b, TOL_RULE);
    nc_buf_printf(&b, ".</p>\n<table><tr><th>metric</th><th>certified instances with a rise</th><th>share</th><th>largest rise</th>"
                      "<th>largest relative rise</th><th>worse at the last k than at the first</th><th>better</th></tr>\n");
    for (int m = 0; m < EXPLORE_JUDGED; m++)
        nc_buf_printf(&b, "<tr><td>%s</td><td>%ld</td><td>%.2f%%</td><td>%.3e</td><td>%.3e</td><td>%ld</td><td>%ld</td></tr>\n",
                      explore_metric_name[m], s->rises[m], s->certified ? 100.0 * s->rises[m] / s->certified : 0.0,
                      s->max_rise[m], s->max_rel[m], s->worse[m], s->better[m]);
    nc_buf_printf(&b, "</table>\n<h2>By family</h2>\n<table><tr><th>family/support</th><th>instances</th><th>certified</th>");
    for (int m = 0; m < EXPLORE_JUDGED; m++) nc_buf_printf(&b, "<th>rises: %s</th>", explore_metric_name[m]);
    nc_buf_printf(&b, "</tr>\n");
    FamilyRow *fr;
    int nf = family_rows(r, n, &fr);
    for (int j = 0; j < nf; j++) {
        nc_buf_printf(&b, "<tr><td>%s</td><td>%ld</td><td>%ld</td>", fr[j].name, fr[j].n, fr[j].certified);
        for (int m = 0; m < EXPLORE_JUDGED; m++) nc_buf_printf(&b, "<td>%ld</td>", fr[j].rises[m]);
        nc_buf_printf(&b, "</tr>\n");
    }
    free(fr);
    nc_buf_printf(&b, "</table>\n<h2>Counterexamples</h2>\n");
    if (ncx == 0) nc_buf_printf(&b, "<p>No judged metric rises in any certified instance.</p>\n");
    for (int i = 0; i < ncx; i++) {
        int m = cx[i].metric;
        const ExploreRecord *w = &r[cx[i].worst], *mn = &cx[i].minimal;
        nc_buf_printf(&b, "<h3>%s</h3>\n<p>Largest relative rise %.4g (from k = %ld to k = %ld): <code>", explore_metric_name[m],
                      w->rise_rel[m], w->rise_from[m], w->rise_to[m]);
        html_escape(&b, w->command);
        nc_buf_printf(&b, "</code></p>\n<p>Shrunk to N = %d (rise %.4g, relative %.4g, from k = %ld to k = %ld): <code>", mn->N,
                      mn->rise[m], mn->rise_rel[m], mn->rise_from[m], mn->rise_to[m]);
        html_escape(&b, mn->command);
        nc_buf_printf(&b, "</code></p>\n");
        char *svg = counter_svg(w, mn, m);
        html_svg(&b, svg, "The metric of the optimum against k for both instances (log k axis).");
        free(svg);
    }
    int have_map = 0;
    for (long i = 0; i < n && !have_map; i++) have_map = strncmp(r[i].family, "triangle:", 9) == 0;
    if (have_map) {
        nc_buf_printf(&b, "<h2>Phase maps, N = 3 (loss %s)</h2>\n<p>Each disc is a prior &rho; = (&rho;<sub>1</sub>, "
                          "&rho;<sub>2</sub>, &rho;<sub>3</sub>), placed at its barycentric point; its colour is the change of "
                          "the metric from k = %ld to k = %ld: red worse, blue better (deeper: larger, on a square-root "
                          "scale to the largest), grey no change beyond the tolerance, &#215; not certified.</p>\n",
                      nc_loss_name(c->loss[0]), c->ks[0], c->ks[c->nk_req - 1]);
        for (int ri = 0; ri < c->nR; ri++) {
            nc_buf_printf(&b, "<div class=two>");
            for (int m = 0; m < EXPLORE_JUDGED; m++) {
                char *svg = phase_svg(r, n, c->R[ri], m, c->ks[0], c->ks[c->nk_req - 1]);
                char cap[128];
                snprintf(cap, sizeof cap, "%s, R = %g", explore_metric_name[m], c->R[ri]);
                html_svg(&b, svg, cap);
                free(svg);
            }
            nc_buf_printf(&b, "</div>\n");
        }
    }
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    nc_buf_printf(&b, "<p>Every instance and its curves: explore.json; one row per instance: explore.csv. ncelab %s; "
                      "written %s.</p>\n</body></html>\n", NCELAB_VERSION, when);
    return b.s;
}

int explore_write(const ExploreConfig *c, const ExploreRecord *r, long n, const ExploreSummary *s,
                  const ExploreCounter *cx, int ncx, NcError *err) {
    cJSON *doc = explore_report_json(c, r, n, s, cx, ncx);
    char *p = nc_path_join(c->out, "explore.json");
    int rc = json_save(p, doc, err);
    free(p);
    cJSON_Delete(doc);
    if (!rc) {
        NcBuf b = {0};
        explore_csv(&b, r, n);
        p = nc_path_join(c->out, "explore.csv");
        rc = nc_write_atomic(p, b.s, b.len, err);
        free(p);
        nc_buf_free(&b);
    }
    if (!rc) {
        char *html = explore_html(c, r, n, s, cx, ncx);
        p = nc_path_join(c->out, "explore.html");
        rc = report_write_text(p, html, err);
        free(p);
        free(html);
    }
    return rc;
}
