/* test_svg.c -- standalone checks of the SVG line-plot renderer (run with --example FILE to also write a demo plot). */
#define _POSIX_C_SOURCE 200809L

#include "ncelab/svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures = 0;
static int have_python = -1;

#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (cond) {                                        \
            printf("  ok:   ");                            \
        } else {                                           \
            printf("  FAIL: ");                            \
            failures++;                                    \
        }                                                  \
        printf(__VA_ARGS__);                               \
        printf("\n");                                      \
    } while (0)

static int count_substr(const char *hay, const char *needle)
{
    int c = 0;
    size_t n = strlen(needle);
    for (const char *p = strstr(hay, needle); p; p = strstr(p + n, needle))
        c++;
    return c;
}

/* Counts occurrences of needle in [from, to). */
static int count_between(const char *from, const char *to, const char *needle)
{
    int c = 0;
    size_t n = strlen(needle);
    for (const char *p = strstr(from, needle); p && p < to; p = strstr(p + n, needle))
        c++;
    return c;
}

/* Value of attribute name="..." in the element starting at or after elem (before its '>'). */
static double attr_num(const char *elem, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *end = strchr(elem, '>');
    const char *p = strstr(elem, key);
    if (!p || (end && p > end))
        return NAN;
    return strtod(p + strlen(key), NULL);
}

#define MAX_LABELS 64
typedef struct {
    char text[MAX_LABELS][32];
    double pos[MAX_LABELS]; /* x attribute for xtick, y for ytick */
    int n;
} Labels;

/* Collects <text class="CLS" ...>TEXT</text> contents and their position attribute. */
static void collect_labels(const char *doc, const char *cls, const char *posattr, Labels *out)
{
    char key[64];
    snprintf(key, sizeof key, "<text class=\"%s\"", cls);
    out->n = 0;
    for (const char *p = strstr(doc, key); p && out->n < MAX_LABELS; p = strstr(p + 1, key)) {
        const char *gt = strchr(p, '>');
        const char *lt = gt ? strchr(gt, '<') : NULL;
        if (!lt)
            break;
        size_t len = (size_t)(lt - gt - 1);
        if (len >= sizeof out->text[0])
            len = sizeof out->text[0] - 1;
        memcpy(out->text[out->n], gt + 1, len);
        out->text[out->n][len] = '\0';
        out->pos[out->n] = attr_num(p, posattr);
        out->n++;
    }
}

static int find_label(const Labels *l, const char *t)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->text[i], t) == 0)
            return i;
    return -1;
}

/* Bounds of the series group id="series-K": [*from, *to). */
static int series_group(const char *doc, int k, const char **from, const char **to)
{
    char key[48];
    snprintf(key, sizeof key, "id=\"series-%d\"", k);
    *from = strstr(doc, key);
    if (!*from)
        return 0;
    *to = strstr(*from, "</g>");
    return *to != NULL;
}

#define MAX_PTS 256
typedef struct {
    double x[MAX_PTS], y[MAX_PTS];
    int n;
} Piece;

/* Parses up to maxp <polyline> elements of series k. Returns the number found. */
static int series_pieces(const char *doc, int k, Piece *pieces, int maxp)
{
    const char *from, *to;
    if (!series_group(doc, k, &from, &to))
        return -1;
    int np = 0;
    for (const char *p = strstr(from, "<polyline"); p && p < to; p = strstr(p + 1, "<polyline")) {
        if (np >= maxp)
            return np + 1;
        const char *q = strstr(p, "points=\"");
        if (!q)
            break;
        q += 8;
        Piece *pc = &pieces[np++];
        pc->n = 0;
        double x, y;
        int used;
        while (pc->n < MAX_PTS && sscanf(q, " %lf,%lf%n", &x, &y, &used) == 2) {
            pc->x[pc->n] = x;
            pc->y[pc->n] = y;
            pc->n++;
            q += used;
        }
    }
    return np;
}

/* Frame rectangle of the plot area. */
static void frame_rect(const char *doc, double *x0, double *y0, double *x1, double *y1)
{
    const char *p = strstr(doc, "<rect class=\"frame\"");
    *x0 = *y0 = *x1 = *y1 = NAN;
    if (!p)
        return;
    *x0 = attr_num(p, "x");
    *y0 = attr_num(p, "y");
    *x1 = *x0 + attr_num(p, "width");
    *y1 = *y0 + attr_num(p, "height");
}

static void check_document(const char *doc, const char *what)
{
    CHECK(doc != NULL, "%s: render returned a document", what);
    if (!doc)
        return;
    size_t n = strlen(doc);
    CHECK(strncmp(doc, "<?xml", 5) == 0 || strncmp(doc, "<svg", 4) == 0, "%s: starts with <?xml or <svg", what);
    CHECK(n >= 7 && strcmp(doc + n - 7, "</svg>\n") == 0, "%s: ends with </svg>\\n", what);
    CHECK(count_substr(doc, "nan") == 0 && count_substr(doc, "inf") == 0, "%s: no nan/inf numbers", what);

    if (have_python < 0)
        have_python = access("/usr/bin/python3", X_OK) == 0;
    if (!have_python) {
        printf("  skip: %s: /usr/bin/python3 not found, XML well-formedness not checked\n", what);
        return;
    }
    char path[] = "/tmp/test_svg_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        CHECK(0, "%s: could not create temp file", what);
        return;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(path);
        CHECK(0, "%s: could not open temp file", what);
        return;
    }
    fputs(doc, f);
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' %s", path);
    int rc = system(cmd);
    unlink(path);
    CHECK(rc == 0, "%s: well-formed XML (python3 minidom)", what);
}

static SvgPlot plot_defaults(void)
{
    SvgPlot p;
    memset(&p, 0, sizeof p);
    return p;
}

static void test_logx(void)
{
    printf("log x axis over k = 1..4096\n");
    double x[13], y[13];
    for (int i = 0; i < 13; i++) {
        x[i] = pow(2.0, i);
        y[i] = 3.0 - 0.1 * i;
    }
    SvgSeries s = {"loss", x, y, NULL, 13, 0, 1};
    SvgPlot p = plot_defaults();
    p.logx = 1;
    p.title = "Loss vs k";
    p.xlabel = "k";
    p.ylabel = "loss";
    char *doc = svg_render(&p, &s, 1);
    check_document(doc, "logx");
    if (!doc)
        return;
    Labels xl;
    collect_labels(doc, "xtick", "x", &xl);
    CHECK(xl.n == 4, "4 x tick labels (got %d)", xl.n);
    const char *want[] = {"1", "10", "100", "1e3"};
    for (int i = 0; i < 4; i++)
        CHECK(find_label(&xl, want[i]) >= 0, "x tick label \"%s\" present", want[i]);
    CHECK(find_label(&xl, "0") < 0, "no x tick at 0");
    CHECK(find_label(&xl, "1e4") < 0 && find_label(&xl, "10000") < 0, "no x tick beyond the data (1e4)");

    Piece pc[4];
    int np = series_pieces(doc, 0, pc, 4);
    CHECK(np == 1, "one polyline piece (got %d)", np);
    if (np == 1) {
        CHECK(pc[0].n == 13, "13 points in the polyline (got %d)", pc[0].n);
        int inc = 1;
        for (int i = 1; i < pc[0].n; i++)
            inc &= pc[0].x[i] > pc[0].x[i - 1];
        CHECK(inc, "polyline x pixels strictly increasing");
        double d1 = pc[0].x[1] - pc[0].x[0], d2 = pc[0].x[2] - pc[0].x[1];
        double per_decade = (pc[0].x[12] - pc[0].x[0]) / log10(4096.0);
        CHECK(fabs(d1 - d2) < 0.01, "px(2)-px(1) == px(4)-px(2): %.4f vs %.4f", d1, d2);
        CHECK(fabs(d1 - per_decade * log10(2.0)) < 0.01, "spacing 1->2 is log10(2) of a decade: %.4f vs %.4f",
              d1, per_decade * log10(2.0));
        int lin = 1;
        for (int i = 1; i < pc[0].n; i++)
            lin &= fabs((pc[0].x[i] - pc[0].x[0]) - per_decade * log10(x[i])) < 0.01;
        CHECK(lin, "all x pixels proportional to log10(x)");
        int i1 = find_label(&xl, "1"), i3 = find_label(&xl, "1e3");
        if (i1 >= 0 && i3 >= 0) {
            CHECK(fabs(xl.pos[i1] - pc[0].x[0]) < 0.01, "tick \"1\" at the pixel of x=1");
            CHECK(fabs(xl.pos[i3] - (pc[0].x[0] + 3 * per_decade)) < 0.01, "tick \"1e3\" at the pixel of x=1000");
        }
        double fx0, fy0, fx1, fy1;
        frame_rect(doc, &fx0, &fy0, &fx1, &fy1);
        CHECK(pc[0].x[0] > fx0 && pc[0].x[12] < fx1, "data inside the plot frame horizontally");
        /* y is linear and decreasing in data: pixel y must increase. */
        CHECK(pc[0].y[12] > pc[0].y[0], "larger y drawn higher (smaller pixel y)");
    }
    CHECK(count_substr(doc, "class=\"marker\"") == 13, "13 markers");
    CHECK(count_substr(doc, "font-family=\"sans-serif\"") == 1, "sans-serif font family");
    CHECK(strstr(doc, ">Loss vs k</text>") != NULL, "title rendered");
    free(doc);
}

static void test_nan_breaks(void)
{
    printf("non-finite and non-positive points break the line\n");
    double x[5] = {1, 2, 3, 4, 5};
    double y[5] = {1, 2, NAN, 4, 5};
    SvgSeries s = {"a", x, y, NULL, 5, 0, 0};
    SvgPlot p = plot_defaults();
    char *doc = svg_render(&p, &s, 1);
    check_document(doc, "nan-linear");
    if (doc) {
        Piece pc[4];
        int np = series_pieces(doc, 0, pc, 4);
        CHECK(np == 2, "NaN in the middle gives 2 pieces (got %d)", np);
        if (np == 2)
            CHECK(pc[0].n == 2 && pc[1].n == 2, "2 + 2 points (got %d + %d)", pc[0].n, pc[1].n);
        free(doc);
    }

    double x2[6] = {1, 10, 0, 100, -5, 1000};
    double y2[6] = {1, 2, 3, 4, 5, INFINITY};
    SvgSeries s2 = {"b", x2, y2, NULL, 6, 1, 0};
    p.logx = 1;
    doc = svg_render(&p, &s2, 1);
    check_document(doc, "nan-logx");
    if (doc) {
        Piece pc[4];
        int np = series_pieces(doc, 0, pc, 4);
        CHECK(np == 1, "log x: x<=0 and inf y skipped, 1 polyline (got %d)", np);
        if (np == 1)
            CHECK(pc[0].n == 2, "polyline has the 2 points before x=0 (got %d)", pc[0].n);
        CHECK(count_substr(doc, "class=\"dot\"") == 1, "isolated point x=100 drawn as a dot");
        CHECK(count_substr(doc, "stroke-dasharray") >= 2, "dashed series and its legend sample are dashed");
        free(doc);
    }
}

static void test_escape(void)
{
    printf("XML escaping\n");
    double x[2] = {0, 1}, y[2] = {0, 1};
    SvgSeries s = {"<b>&", x, y, NULL, 2, 0, 0};
    SvgPlot p = plot_defaults();
    p.title = "a \"quoted\" 'title' <x>";
    p.xlabel = "k & n";
    p.ylabel = "caf\xc3\xa9 \x01 bad\xff";
    char *doc = svg_render(&p, &s, 1);
    check_document(doc, "escape");
    if (!doc)
        return;
    CHECK(strstr(doc, ">&lt;b&gt;&amp;</text>") != NULL, "legend label \"<b>&\" escaped");
    CHECK(strstr(doc, "<b>") == NULL, "no raw <b> in the document");
    CHECK(strstr(doc, "a &quot;quoted&quot; &apos;title&apos; &lt;x&gt;") != NULL, "title quotes escaped");
    CHECK(strstr(doc, ">k &amp; n</text>") != NULL, "x label escaped");
    CHECK(strstr(doc, "caf\xc3\xa9 ? bad?") != NULL, "UTF-8 kept, control char and invalid byte replaced");
    free(doc);
}

static void test_errbars(void)
{
    printf("error bars\n");
    double x[6] = {1, 2, 3, 4, 5, 6};
    double y[6] = {1, 2, 3, 4, 5, 6};
    double e[6] = {0.5, NAN, 0, -0.5, 3, 0.2};
    SvgSeries s[2] = {
        {"with bars", x, y, e, 6, 0, 1},
        {"no bars", x, y, NULL, 6, 1, 0},
    };
    SvgPlot p = plot_defaults();
    char *doc = svg_render(&p, s, 2);
    check_document(doc, "errbars");
    if (!doc)
        return;
    CHECK(count_substr(doc, "class=\"errbar\"") == 4, "4 error bars for 6 points with one NaN and one 0 error (got %d)",
          count_substr(doc, "class=\"errbar\""));
    const char *from, *to;
    if (series_group(doc, 1, &from, &to))
        CHECK(count_between(from, to, "errbar") == 0, "series without yerr has no bars");
    /* Auto range includes the bars: every bar end lies inside the frame. */
    double fx0, fy0, fx1, fy1;
    frame_rect(doc, &fx0, &fy0, &fx1, &fy1);
    int inside = 1, nb = 0;
    for (const char *q = strstr(doc, "class=\"errbar\" d=\"M"); q; q = strstr(q + 1, "class=\"errbar\" d=\"M")) {
        double bx, ylo, yhi;
        if (sscanf(q + strlen("class=\"errbar\" d=\"M"), "%lf %lfV%lf", &bx, &ylo, &yhi) != 3) {
            inside = 0;
            break;
        }
        inside &= ylo <= fy1 && ylo >= fy0 && yhi <= fy1 && yhi >= fy0 && ylo > yhi;
        nb++;
    }
    CHECK(nb == 4 && inside, "error bar ends lie inside the plot frame (y range includes bars)");
    /* Top y tick must exceed 6 + 3 = 9 region or at least the range covers it: the top bar end at y=8. */
    Labels yl;
    collect_labels(doc, "ytick", "y", &yl);
    CHECK(yl.n >= 2 && strtod(yl.text[yl.n - 1], NULL) >= 8, "y ticks reach the top bar end (top tick %s)",
          yl.n ? yl.text[yl.n - 1] : "-");
    /* Distinct colours. */
    const char *c0 = strstr(doc, "id=\"series-0\""), *c1 = strstr(doc, "id=\"series-1\"");
    if (c0 && c1) {
        const char *s0 = strstr(strstr(c0, "<polyline"), "stroke=\""), *s1 = strstr(strstr(c1, "<polyline"), "stroke=\"");
        CHECK(s0 && s1 && strncmp(s0, s1, 16) != 0, "series have distinct colours");
    }
    CHECK(count_substr(doc, "class=\"legend-label\"") == 2, "two legend entries");
    free(doc);
}

/* Step between consecutive labels, checking it is 1, 2 or 5 times a power of ten and uniform. */
static int nice_uniform(const Labels *l, double *step_out)
{
    if (l->n < 2)
        return 0;
    double step = strtod(l->text[1], NULL) - strtod(l->text[0], NULL);
    *step_out = step;
    if (!(step > 0))
        return 0;
    for (int i = 2; i < l->n; i++) {
        double d = strtod(l->text[i], NULL) - strtod(l->text[i - 1], NULL);
        if (fabs(d - step) > 1e-9 * fmax(1.0, fabs(step)) && fabs(d - step) > 1e-6 * step)
            return 0;
        double dp = l->pos[i] - l->pos[i - 1], dp0 = l->pos[1] - l->pos[0];
        if (fabs(dp - dp0) > 0.02)
            return 0;
    }
    double m = step / pow(10.0, floor(log10(step) + 1e-9));
    return fabs(m - 1) < 1e-6 || fabs(m - 2) < 1e-6 || fabs(m - 5) < 1e-6;
}

static void test_linear_ticks(void)
{
    printf("linear ticks\n");
    static const double ranges[][2] = {
        {0, 1}, {-3.7, 12.2}, {1000, 1003}, {0.00012, 0.00047}, {-1e6, 5e6}, {0.5, 0.52}, {-2, -1},
    };
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
        double x[2] = {ranges[r][0], ranges[r][1]}, y[2] = {ranges[r][0], ranges[r][1]};
        SvgSeries s = {NULL, x, y, NULL, 2, 0, 0};
        SvgPlot p = plot_defaults();
        char *doc = svg_render(&p, &s, 1);
        char what[64];
        snprintf(what, sizeof what, "range [%g, %g]", ranges[r][0], ranges[r][1]);
        check_document(doc, what);
        if (!doc)
            continue;
        Labels yl, xl;
        collect_labels(doc, "ytick", "y", &yl);
        collect_labels(doc, "xtick", "x", &xl);
        double ystep = 0, xstep = 0;
        /* 5..8 ticks when a 1-2-5 step allows it; e.g. a span of 17.5 only offers 9 (step 2) or 3 (step 5). */
        CHECK(yl.n >= 5 && yl.n <= 9, "%s: %d y ticks (5..9)", what, yl.n);
        CHECK(xl.n >= 4 && xl.n <= 9, "%s: %d x ticks (4..9)", what, xl.n);
        CHECK(nice_uniform(&yl, &ystep), "%s: y ticks uniform 1-2-5 step (%g)", what, ystep);
        CHECK(nice_uniform(&xl, &xstep), "%s: x ticks uniform 1-2-5 step (%g)", what, xstep);
        CHECK(yl.n >= 2 && yl.pos[1] < yl.pos[0], "%s: y ticks go up the page", what);
        CHECK(count_substr(doc, "class=\"legend\"") == 0, "%s: no legend without labels", what);
        free(doc);
    }
    /* 0..1 exactly gives 0, 0.2, ..., 1 (range padded by 5%). */
    double x[2] = {0, 1}, y[2] = {0, 1};
    SvgSeries s = {"s", x, y, NULL, 2, 0, 0};
    SvgPlot p = plot_defaults();
    char *doc = svg_render(&p, &s, 1);
    if (doc) {
        Labels yl;
        collect_labels(doc, "ytick", "y", &yl);
        int ok = yl.n == 6;
        const char *want[] = {"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"};
        for (int i = 0; ok && i < 6; i++)
            ok = strcmp(yl.text[i], want[i]) == 0;
        CHECK(ok, "y in [0,1] gives ticks 0.0 0.2 0.4 0.6 0.8 1.0 (same decimals)");
        free(doc);
    }
    /* Fixed range. */
    p.ymin = 0;
    p.ymax = 10;
    doc = svg_render(&p, &s, 1);
    if (doc) {
        Labels yl;
        collect_labels(doc, "ytick", "y", &yl);
        double fx0, fy0, fx1, fy1;
        frame_rect(doc, &fx0, &fy0, &fx1, &fy1);
        CHECK(yl.n == 6 && strcmp(yl.text[0], "0") == 0 && strcmp(yl.text[yl.n - 1], "10") == 0,
              "fixed y range [0,10]: ticks 0, 2, ..., 10");
        CHECK(yl.n >= 2 && fabs(yl.pos[0] - fy1) < 0.01 && fabs(yl.pos[yl.n - 1] - fy0) < 0.01,
              "fixed range ends on the frame edges");
        free(doc);
    }
}

static void test_log_y(void)
{
    printf("log y axis\n");
    double x[3] = {1, 2, 3}, y[3] = {2, 4, 8};
    SvgSeries s = {"s", x, y, NULL, 3, 0, 0};
    SvgPlot p = plot_defaults();
    p.logy = 1;
    char *doc = svg_render(&p, &s, 1);
    check_document(doc, "logy short");
    if (doc) {
        Labels yl;
        collect_labels(doc, "ytick", "y", &yl);
        CHECK(find_label(&yl, "2") >= 0 && find_label(&yl, "5") >= 0, "y in [2,8] (< 1 decade): ticks 2 and 5");
        int i2 = find_label(&yl, "2"), i5 = find_label(&yl, "5");
        Piece pc[2];
        if (i2 >= 0 && series_pieces(doc, 0, pc, 2) == 1 && pc[0].n == 3)
            CHECK(fabs(pc[0].y[0] - yl.pos[i2]) < 0.01, "tick 2 at the pixel of y=2");
        if (i2 >= 0 && i5 >= 0 && series_pieces(doc, 0, pc, 2) == 1 && pc[0].n == 3) {
            double per = (pc[0].y[2] - pc[0].y[0]) / log10(4.0);
            CHECK(fabs((yl.pos[i5] - yl.pos[i2]) - per * log10(2.5)) < 0.02, "tick 5 at log position");
        }
        free(doc);
    }
    double x2[3] = {1, 2, 3}, y2[3] = {1e-5, 1e-1, 1e3};
    SvgSeries s2 = {"s", x2, y2, NULL, 3, 0, 0};
    doc = svg_render(&p, &s2, 1);
    check_document(doc, "logy wide");
    if (doc) {
        Labels yl;
        collect_labels(doc, "ytick", "y", &yl);
        CHECK(find_label(&yl, "1e-5") >= 0 && find_label(&yl, "0.1") >= 0 && find_label(&yl, "1e3") >= 0,
              "decade labels 1e-5, 0.1, 1e3 present");
        CHECK(yl.n >= 5 && yl.n <= 9, "%d decade ticks", yl.n);
        free(doc);
    }
    double x3[2] = {1, 2}, y3[2] = {1e-30, 1e30};
    SvgSeries s3 = {"s", x3, y3, NULL, 2, 0, 0};
    doc = svg_render(&p, &s3, 1);
    check_document(doc, "logy 60 decades");
    if (doc) {
        Labels yl;
        collect_labels(doc, "ytick", "y", &yl);
        CHECK(yl.n >= 3 && yl.n <= 10, "60 decades thinned to %d ticks", yl.n);
        free(doc);
    }
}

static void test_degenerate(void)
{
    printf("degenerate inputs\n");
    SvgPlot p = plot_defaults();
    char *doc = svg_render(&p, NULL, 0);
    check_document(doc, "no series");
    free(doc);

    SvgSeries empty = {"empty", NULL, NULL, NULL, 0, 0, 0};
    p.logx = 1;
    p.logy = 1;
    doc = svg_render(&p, &empty, 1);
    check_document(doc, "n == 0 (log/log)");
    free(doc);

    double nx[3] = {NAN, NAN, NAN}, ny[3] = {1, NAN, INFINITY};
    SvgSeries alln = {"missing", nx, ny, nx, 3, 1, 1};
    p.logx = p.logy = 0;
    doc = svg_render(&p, &alln, 1);
    check_document(doc, "all NaN");
    if (doc) {
        Labels yl;
        collect_labels(doc, "ytick", "y", &yl);
        CHECK(yl.n >= 2, "all NaN: still has y ticks (%d)", yl.n);
        CHECK(count_substr(doc, "<polyline") == 0, "all NaN: no polyline");
        free(doc);
    }

    double x1[1] = {5}, y1[1] = {0};
    SvgSeries one = {"one", x1, y1, NULL, 1, 0, 1};
    doc = svg_render(&p, &one, 1);
    check_document(doc, "single point");
    if (doc) {
        Labels yl, xl;
        collect_labels(doc, "ytick", "y", &yl);
        collect_labels(doc, "xtick", "x", &xl);
        CHECK(yl.n >= 2 && xl.n >= 2, "single point: %d x and %d y ticks", xl.n, yl.n);
        CHECK(count_substr(doc, "class=\"marker\"") == 1, "single point: one marker");
        double fx0, fy0, fx1, fy1, cx = NAN, cy = NAN;
        frame_rect(doc, &fx0, &fy0, &fx1, &fy1);
        const char *m = strstr(doc, "class=\"marker\"");
        if (m) {
            cx = attr_num(m, "cx");
            cy = attr_num(m, "cy");
        }
        CHECK(fabs(cx - (fx0 + fx1) / 2) < 0.01 && fabs(cy - (fy0 + fy1) / 2) < 0.01, "single point centred");
        free(doc);
    }
    p.logx = p.logy = 1;
    doc = svg_render(&p, &one, 1); /* y = 0 invalid on log y */
    check_document(doc, "single point, log, invalid y");
    free(doc);
    double y5[1] = {5};
    SvgSeries one5 = {"one", x1, y5, NULL, 1, 0, 0};
    doc = svg_render(&p, &one5, 1);
    check_document(doc, "single point log/log");
    if (doc) {
        CHECK(count_substr(doc, "class=\"dot\"") == 1, "single point without markers drawn as a dot");
        free(doc);
    }

    double hx[3] = {-1e308, 0, 1e308}, hy[3] = {1e308, -1e308, 1e-320};
    SvgSeries huge = {"huge", hx, hy, NULL, 3, 0, 0};
    p.logx = p.logy = 0;
    p.width = 300;
    p.height = 200;
    doc = svg_render(&p, &huge, 1);
    check_document(doc, "extreme values, small canvas");
    if (doc) {
        double fx0, fy0, fx1, fy1;
        frame_rect(doc, &fx0, &fy0, &fx1, &fy1);
        const char *lb = strstr(doc, "class=\"legend-box\"");
        double want = 200 + (lb ? ceil(attr_num(lb, "height") + 10) : 0);
        CHECK(attr_num(strstr(doc, "<svg"), "width") == 300 && attr_num(strstr(doc, "<svg"), "height") == want &&
                  fy1 <= 200 && fx1 <= 300,
              "custom size honoured: 300 wide, the plot within 200, the legend below (height %g, want %g)",
              attr_num(strstr(doc, "<svg"), "height"), want);
        free(doc);
    }
    p.width = 20;
    p.height = 10;
    doc = svg_render(&p, &one, 1);
    check_document(doc, "tiny canvas");
    free(doc);
    CHECK(svg_render(NULL, &one, 1) == NULL, "NULL plot returns NULL");
}

/* The attribute's text (up to 31 characters) of the first element `tag` in [from, to); "" when absent. */
static void attr_text(const char *from, const char *to, const char *tag, const char *name, char out[32])
{
    out[0] = '\0';
    const char *e = strstr(from, tag);
    if (!e || e >= to)
        return;
    char key[64];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *end = strchr(e, '>'), *p = strstr(e, key);
    if (!p || (end && p > end))
        return;
    p += strlen(key);
    size_t n = strcspn(p, "\"");
    if (n > 31)
        n = 31;
    memcpy(out, p, n);
    out[n] = '\0';
}

/* The shape of the first marker in [from, to): its tag, and for a path what follows the start point. */
static void marker_shape(const char *from, const char *to, char out[32])
{
    out[0] = '\0';
    const char *m = strstr(from, "class=\"marker\"");
    if (!m || m >= to)
        return;
    const char *lt = m;
    while (lt > from && *lt != '<')
        lt--;
    size_t n = strcspn(lt + 1, " ");
    snprintf(out, 32, "%.*s", (int)(n < 8 ? n : 8), lt + 1);
    const char *d = strstr(m, " d=\"M"), *end = strchr(m, '>');
    if (d && d < end && strchr(d, 'l') && strchr(d, 'l') < end)
        snprintf(out + strlen(out), 32 - strlen(out), " %.12s", strchr(d, 'l'));
}

/* The legend never covers data: it lies below the plot, and no point, marker or error bar of any
   series falls inside its box. Each series has its own dash pattern and marker shape. */
static void test_legend_and_styles(void)
{
    printf("legend outside the data, distinct line styles\n");
    enum { N = 9, S = 4 };
    double x[N], y[S][N], e[N];
    for (int i = 0; i < N; i++) {
        x[i] = pow(4.0, i);
        e[i] = 0.02;
        y[0][i] = 0.80 + 0.01 * i;      /* upper right and upper left */
        y[1][i] = 0.80 + 0.01 * i;      /* on top of series 0 */
        y[2][i] = 0.10 + 0.005 * i;     /* lower left and lower right */
        y[3][i] = 0.10 + 0.09 * i;      /* the diagonal */
    }
    SvgSeries s[S] = {
        {"first, with a long label", x, y[0], e, N, 0, 1},
        {"second, the same values", x, y[1], NULL, N, 0, 1},
        {"third", x, y[2], e, N, 0, 1},
        {"a bound", x, y[3], NULL, N, 1, 0},
    };
    SvgPlot p = plot_defaults();
    p.title = "crowded";
    p.xlabel = "k";
    p.logx = 1;
    char *doc = svg_render(&p, s, S);
    check_document(doc, "crowded");
    if (!doc)
        return;
    const char *lb = strstr(doc, "class=\"legend-box\"");
    CHECK(lb != NULL, "a legend box");
    double lx = attr_num(lb, "x"), ly = attr_num(lb, "y"), lw = attr_num(lb, "width"), lh = attr_num(lb, "height");
    double fx0, fy0, fx1, fy1;
    frame_rect(doc, &fx0, &fy0, &fx1, &fy1);
    CHECK(ly > fy1 + 20, "the legend (y %.1f) lies below the plot frame (bottom %.1f) and its x label", ly, fy1);
    int inside = 0, points = 0;
    for (int k = 0; k < S; k++) {
        Piece pc[4];
        int np = series_pieces(doc, k, pc, 4);
        for (int q = 0; q < np && q < 4; q++)
            for (int i = 0; i < pc[q].n; i++, points++)  /* each point with a marker's 5 px around it */
                inside += pc[q].x[i] + 5 > lx && pc[q].x[i] - 5 < lx + lw && pc[q].y[i] + 5 > ly && pc[q].y[i] - 5 < ly + lh;
        const char *from = doc, *to = doc;
        series_group(doc, k, &from, &to);
        for (const char *b = strstr(from, "class=\"errbar\""); b && b < to; b = strstr(b + 1, "class=\"errbar\"")) {
            double bx, b0, b1;
            const char *d = strstr(b, "d=\"M");
            if (d && sscanf(d + 4, "%lf %lfV%lf", &bx, &b0, &b1) == 3) {
                points++;
                inside += bx > lx && bx < lx + lw && fmax(b0, b1) > ly && fmin(b0, b1) < ly + lh;
            }
        }
    }
    CHECK(points > 40 && inside == 0, "no data point's box intersects the legend's (%d of %d inside)", inside, points);
    char dash[S][32], shape[S][32];
    for (int k = 0; k < S; k++) {
        const char *from = doc, *to = doc;
        series_group(doc, k, &from, &to);
        attr_text(from, to, "<polyline", "stroke-dasharray", dash[k]);
        marker_shape(from, to, shape[k]);
    }
    int distinct = 1;
    for (int a = 0; a < S; a++)
        for (int b = a + 1; b < S; b++)
            distinct &= strcmp(dash[a], dash[b]) != 0;
    CHECK(distinct && dash[0][0] == 0 && dash[3][0] != 0, "four distinct dash patterns: '%s' '%s' '%s' '%s'", dash[0], dash[1],
          dash[2], dash[3]);
    CHECK(strcmp(shape[0], shape[1]) && strcmp(shape[1], shape[2]) && strcmp(shape[0], shape[2]),
          "three distinct marker shapes: %s, %s, %s", shape[0], shape[1], shape[2]);
    double w0 = attr_num(strstr(strstr(doc, "id=\"series-0\""), "<polyline"), "stroke-width");
    double w1 = attr_num(strstr(strstr(doc, "id=\"series-1\""), "<polyline"), "stroke-width");
    CHECK(w0 > w1 + 0.5, "the earlier of two coinciding lines is wider (%.1f against %.1f), so both show", w0, w1);
    free(doc);

    /* values off the top of a fixed range: an arrow at the edge and the first value written */
    double oy[4] = {1, 2, 1e6, INFINITY}, ox[4] = {1, 2, 4, 8};
    SvgSeries off = {"bound", ox, oy, NULL, 4, 1, 0};
    p = plot_defaults();
    p.logx = p.logy = 1;
    p.ymin = 0.5;
    p.ymax = 10;
    doc = svg_render(&p, &off, 1);
    check_document(doc, "off the scale");
    if (doc) {
        CHECK(count_substr(doc, "class=\"offscale\"") == 2 && count_substr(doc, "class=\"offscale-label\"") == 1 &&
                  strstr(doc, "1e+06 at 4") != NULL,
              "two points off the top: two arrows, the first labelled with its value");
        free(doc);
    }
}

static int write_example(const char *path)
{
    enum { N = 13 };
    double k[N], a[N], ae[N], b[N], bound[N];
    for (int i = 0; i < N; i++) {
        k[i] = pow(2.0, i);
        a[i] = 0.62 + 1.6 / sqrt(k[i] + 1.0) + 0.012 * sin(3.0 * i);
        ae[i] = 0.03 + 0.05 / sqrt(k[i]);
        b[i] = 0.55 + 1.9 / (1.0 + 0.6 * log(k[i] + 1.0)) - 0.25 * (1 - exp(-k[i] / 800.0));
        bound[i] = 0.45 + 1.5 / sqrt(k[i] + 1.0);
    }
    SvgSeries s[3] = {
        {"InfoNCE (measured, mean \xc2\xb1 sd)", k, a, ae, N, 0, 1},
        {"Debiased NCE", k, b, NULL, N, 0, 1},
        {"Theoretical bound", k, bound, NULL, N, 1, 0},
    };
    SvgPlot p = {0};
    p.title = "Downstream loss vs number of negatives";
    p.xlabel = "number of negatives k";
    p.ylabel = "downstream loss";
    p.logx = 1;
    char *doc = svg_render(&p, s, 3);
    if (!doc)
        return 1;
    FILE *f = fopen(path, "w");
    if (!f) {
        free(doc);
        return 1;
    }
    fputs(doc, f);
    fclose(f);
    free(doc);
    printf("wrote %s\n", path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--example") == 0)
        return write_example(argv[2]);
    test_logx();
    test_nan_breaks();
    test_escape();
    test_errbars();
    test_linear_ticks();
    test_log_y();
    test_degenerate();
    test_legend_and_styles();
    if (failures) {
        printf("test_svg: %d check(s) FAILED\n", failures);
        return 1;
    }
    printf("test_svg: all checks passed\n");
    return 0;
}
