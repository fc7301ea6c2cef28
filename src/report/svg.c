/* svg.c -- renders line plots (linear/log axes, grid, legend, error bars) as standalone SVG text. */
#include "ncelab/svg.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SVG_MAX_TICKS 64
#define SVG_LABEL_LEN 32

/* Layout constants (pixels). */
#define SVG_FS_TICK 12.0
#define SVG_FS_LABEL 14.0
#define SVG_FS_TITLE 16.0
#define SVG_FS_LEGEND 13.0
#define SVG_TICK_LEN 5.0

/* Each series by its index: a colour, a dash pattern, a line width and a marker shape, so that
   two series on top of each other both stay visible (the earlier one wider and solid, the later
   one thinner and dashed, each with its own marker). */
static const char *const svg_dashes[] = {"", "9 4", "3 3", "12 3 3 3", "6 2", "2 5"};
#define SVG_NDASH ((int)(sizeof svg_dashes / sizeof svg_dashes[0]))
static const double svg_widths[] = {3.4, 2.4, 2.0, 1.8, 1.6, 1.6};

/* Okabe-Ito colour-blind-safe palette (yellow last: weakest contrast on white). */
static const char *const svg_palette[] = {
    "#0072B2", "#D55E00", "#009E73", "#E69F00",
    "#CC79A7", "#56B4E9", "#000000", "#F0E442",
};
#define SVG_NPALETTE ((int)(sizeof svg_palette / sizeof svg_palette[0]))

/* ------------------------------------------------------------------ */
/* Growing string buffer                                               */
/* ------------------------------------------------------------------ */

typedef struct {
    char *d;
    size_t len, cap;
    int oom;
} SvgBuf;

static int svg_buf_reserve(SvgBuf *b, size_t extra)
{
    if (b->oom)
        return 0;
    if (b->len + extra + 1 <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1) {
        if (cap > ((size_t)-1) / 2) {
            b->oom = 1;
            return 0;
        }
        cap *= 2;
    }
    char *d = realloc(b->d, cap);
    if (!d) {
        b->oom = 1;
        return 0;
    }
    b->d = d;
    b->cap = cap;
    return 1;
}

static void svg_buf_putn(SvgBuf *b, const char *s, size_t n)
{
    if (!svg_buf_reserve(b, n))
        return;
    memcpy(b->d + b->len, s, n);
    b->len += n;
    b->d[b->len] = '\0';
}

static void svg_buf_puts(SvgBuf *b, const char *s)
{
    svg_buf_putn(b, s, strlen(s));
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void svg_buf_printf(SvgBuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)n < sizeof tmp) {
        svg_buf_putn(b, tmp, (size_t)n);
        return;
    }
    if (!svg_buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->d + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of a valid UTF-8 sequence starting at s (1..4), or 0 if invalid. */
static int svg_utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    int n;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (c == 0xE0 && s[1] < 0xA0)
        return 0; /* overlong */
    if (c == 0xED && s[1] > 0x9F)
        return 0; /* surrogate */
    if (c == 0xF0 && s[1] < 0x90)
        return 0; /* overlong */
    if (c == 0xF4 && s[1] > 0x8F)
        return 0; /* beyond U+10FFFF */
    return n;
}

/* Appends s escaped for XML text and attribute values; control characters and
   invalid UTF-8 bytes (both illegal in XML) are replaced by '?'. */
static void svg_buf_escape(SvgBuf *b, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        switch (*u) {
        case '&': svg_buf_puts(b, "&amp;"); u++; continue;
        case '<': svg_buf_puts(b, "&lt;"); u++; continue;
        case '>': svg_buf_puts(b, "&gt;"); u++; continue;
        case '"': svg_buf_puts(b, "&quot;"); u++; continue;
        case '\'': svg_buf_puts(b, "&apos;"); u++; continue;
        default: break;
        }
        if (*u < 0x20) {
            svg_buf_putn(b, *u == '\t' || *u == '\n' || *u == '\r' ? " " : "?", 1);
            u++;
            continue;
        }
        int n = svg_utf8_len(u);
        if (n == 0) {
            svg_buf_putn(b, "?", 1);
            u++;
        } else {
            svg_buf_putn(b, (const char *)u, (size_t)n);
            u += n;
        }
    }
}

/* Appends a pixel coordinate: 3 decimals, trailing zeros stripped. */
static void svg_buf_num(SvgBuf *b, double v)
{
    char tmp[48];
    if (!isfinite(v))
        v = 0;
    if (v > 1e5)
        v = 1e5;
    if (v < -1e5)
        v = -1e5;
    snprintf(tmp, sizeof tmp, "%.3f", v);
    size_t n = strlen(tmp);
    while (n > 0 && tmp[n - 1] == '0')
        n--;
    if (n > 0 && tmp[n - 1] == '.')
        n--;
    tmp[n] = '\0';
    if (strcmp(tmp, "-0") == 0)
        strcpy(tmp, "0");
    svg_buf_puts(b, tmp);
}

/* ------------------------------------------------------------------ */
/* Number formatting and text metrics                                  */
/* ------------------------------------------------------------------ */

/* Rewrites "1e+06" as "1e6" and "2.5e-07" as "2.5e-7" in place. */
static void svg_compact_exp(char *s)
{
    char *e = strchr(s, 'e');
    if (!e)
        return;
    char *src = e + 1, *dst = e + 1;
    if (*src == '+')
        src++;
    else if (*src == '-')
        *dst++ = *src++;
    while (*src == '0' && src[1] != '\0')
        src++;
    memmove(dst, src, strlen(src) + 1);
}

/* Tick label: fixed decimals for moderate values, else %g-style with enough
   significant digits to distinguish ticks `step` apart. */
static void svg_fmt_lin(char *out, size_t n, double v, double step, double maxabs)
{
    if (step >= 1e-4 && maxabs < 1e6) { /* fixed decimals, same for all ticks: 0.8, 1.0, 1.2 */
        int dec = (int)ceil(-log10(step) - 1e-9);
        snprintf(out, n, "%.*f", dec > 0 ? dec : 0, v);
        return;
    }
    int prec = 6;
    if (step > 0 && maxabs > 0) {
        int need = 1 + (int)floor(log10(maxabs)) - (int)floor(log10(step));
        if (need > prec)
            prec = need > 15 ? 15 : need;
    }
    snprintf(out, n, "%.*g", prec, v);
    svg_compact_exp(out);
}

/* Label for m * 10^d on a log axis: plain for 0.01..999, else "me d" (e.g. 1e3, 2e-4). */
static void svg_fmt_log(char *out, size_t n, int m, int d)
{
    if (d >= 3 || d <= -3)
        snprintf(out, n, "%de%d", m, d);
    else
        snprintf(out, n, "%g", m * pow(10.0, d));
}

/* Rough rendered width of UTF-8 text in a sans-serif font of size fs. */
static double svg_text_w(const char *s, double fs)
{
    size_t cps = 0;
    for (const unsigned char *u = (const unsigned char *)s; *u; u++)
        if ((*u & 0xC0) != 0x80)
            cps++;
    return (double)cps * 0.6 * fs;
}

/* ------------------------------------------------------------------ */
/* Axes                                                                */
/* ------------------------------------------------------------------ */

typedef struct {
    int log;
    double lo, hi;                 /* range in axis units (log10 of data on a log axis) */
    double p0, p1;                 /* pixel positions of lo and hi */
    double tick[SVG_MAX_TICKS];    /* major ticks, data units */
    char lab[SVG_MAX_TICKS][SVG_LABEL_LEN];
    int nt;
    double minor[SVG_MAX_TICKS];   /* unlabelled minor ticks (log axes), data units */
    int nminor;
} SvgAxis;

/* Data value -> axis units (no validity check). */
static double svg_axis_t(const SvgAxis *a, double v)
{
    return a->log ? log10(v) : v;
}

/* Data value -> pixel. */
static double svg_axis_px(const SvgAxis *a, double v)
{
    return a->p0 + (svg_axis_t(a, v) - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0);
}

/* Sets a->lo/hi from the data extent [lo, hi] (axis units), padding by frac of the span. */
static void svg_axis_range(SvgAxis *a, double lo, double hi, int have, double frac)
{
    if (!have) {
        lo = 0;
        hi = 1; /* 1..10 on a log axis */
    } else if (!(hi > lo)) {
        double d = a->log ? 0.5 : fabs(lo) * 0.1;
        if (!(d > 1e-300))
            d = 1;
        lo -= d;
        hi += d;
    } else {
        double d = (hi - lo) * frac;
        lo -= d;
        hi += d;
    }
    if (!(hi > lo) || !isfinite(hi - lo)) { /* defensive: should not happen */
        lo = 0;
        hi = 1;
    }
    a->lo = lo;
    a->hi = hi;
}

/* Nice 1-2-5 ticks over the data range [lo, hi], aiming for 5..8 ticks. */
static void svg_lin_ticks(SvgAxis *a, double lo, double hi)
{
    static const double mant[] = {1, 2, 5};
    double span = hi - lo;
    double mag = pow(10.0, floor(log10(span / 6.0)));
    double best = 0, best_score = HUGE_VAL;
    for (int e = -1; e <= 1; e++) {
        for (int i = 0; i < 3; i++) {
            double step = mant[i] * mag * pow(10.0, e);
            if (!(step > 0) || !isfinite(step))
                continue;
            double cnt = floor(hi / step + 1e-9) - ceil(lo / step - 1e-9) + 1;
            double score = fabs(cnt - 6.5) + ((cnt >= 5 && cnt <= 8) ? 0 : 100);
            if (score < best_score) {
                best_score = score;
                best = step;
            }
        }
    }
    a->nt = 0;
    if (!(best > 0))
        return;
    double maxabs = fmax(fabs(lo), fabs(hi));
    double k0 = ceil(lo / best - 1e-9);
    for (int i = 0; i < SVG_MAX_TICKS && a->nt < SVG_MAX_TICKS; i++) {
        double v = (k0 + i) * best;
        if (v > hi + best * 1e-9)
            break;
        if (fabs(v) < best * 1e-9)
            v = 0;
        if (a->nt > 0 && !(v > a->tick[a->nt - 1]))
            break; /* precision exhausted */
        a->tick[a->nt] = v;
        svg_fmt_lin(a->lab[a->nt], SVG_LABEL_LEN, v, best, maxabs);
        a->nt++;
    }
}

/* Decade ticks on a log axis (with 2 and 5, or all 1..9, when the range is short). */
static void svg_log_ticks(SvgAxis *a)
{
    static const int sets[3][10] = {
        {1, 0}, {1, 2, 5, 0}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 0},
    };
    double lo = a->lo, hi = a->hi;
    int dlo = (int)floor(lo), dhi = (int)ceil(hi);
    int nd = (int)floor(hi + 1e-9) - (int)ceil(lo - 1e-9) + 1;
    int stride = 1;
    while (nd / stride > 9)
        stride++;
    int used = 0;
    for (int si = 0; si < 3; si++) {
        if (si > 0 && stride > 1)
            break;
        a->nt = 0;
        for (int d = dlo; d <= dhi && a->nt < SVG_MAX_TICKS; d++) {
            for (int k = 0; sets[si][k] && a->nt < SVG_MAX_TICKS; k++) {
                int m = sets[si][k];
                if (m == 1 && ((d % stride) + stride) % stride != 0)
                    continue;
                double t = log10((double)m) + d;
                if (t < lo - 1e-9 || t > hi + 1e-9)
                    continue;
                a->tick[a->nt] = m * pow(10.0, d);
                svg_fmt_log(a->lab[a->nt], SVG_LABEL_LEN, m, d);
                a->nt++;
            }
        }
        used = si;
        if (a->nt >= 3)
            break;
    }
    if (a->nt < 2) { /* less than ~0.3 decade: linear ticks in data units */
        svg_lin_ticks(a, pow(10.0, lo), pow(10.0, hi));
        return;
    }
    a->nminor = 0;
    if (used == 0 && stride == 1 && nd <= 12) {
        for (int d = dlo; d <= dhi; d++)
            for (int m = 2; m <= 9 && a->nminor < SVG_MAX_TICKS; m++) {
                double t = log10((double)m) + d;
                if (t >= lo && t <= hi)
                    a->minor[a->nminor++] = m * pow(10.0, d);
            }
    }
}

static void svg_axis_ticks(SvgAxis *a)
{
    a->nt = 0;
    a->nminor = 0;
    if (a->log)
        svg_log_ticks(a);
    else
        svg_lin_ticks(a, a->lo, a->hi);
}

/* ------------------------------------------------------------------ */
/* Rendering                                                           */
/* ------------------------------------------------------------------ */

static int svg_point_ok(double x, double y, int logx, int logy)
{
    return isfinite(x) && isfinite(y) && (!logx || x > 0) && (!logy || y > 0);
}

/* Clamps a linear-axis value so that spans and padding stay finite. */
static double svg_clamp_t(double t)
{
    return t > 1e300 ? 1e300 : (t < -1e300 ? -1e300 : t);
}

static int svg_has_label(const SvgSeries *s)
{
    return s->label && s->label[0];
}

/* the dash pattern of series idx: its own pattern; a series marked dashed is never solid */
static const char *svg_dash(const SvgSeries *s, int idx)
{
    const char *d = svg_dashes[idx % SVG_NDASH];
    return !d[0] && s->dashed ? svg_dashes[1] : d;
}

static void svg_dash_attr(SvgBuf *b, const SvgSeries *s, int idx)
{
    const char *d = svg_dash(s, idx);
    if (d[0])
        svg_buf_printf(b, " stroke-dasharray=\"%s\"", d);
}

/* Marker idx % 5 at (x, y): circle, square, triangle up, diamond, triangle down; white fill
   and a coloured outline, so that a line or marker beneath shows through the middle. */
static void svg_marker(SvgBuf *b, const char *cls, int idx, double x, double y, const char *col)
{
    x = fmax(-1e5, fmin(1e5, x));
    y = fmax(-1e5, fmin(1e5, y));
    const char *tail = "fill=\"white\" stroke-width=\"1.8\"";
    switch (idx % 5) {
    case 0:
        svg_buf_printf(b, "<circle class=\"%s\" cx=\"%.2f\" cy=\"%.2f\" r=\"4\" stroke=\"%s\" %s/>\n", cls, x, y, col, tail);
        break;
    case 1:
        svg_buf_printf(b, "<rect class=\"%s\" x=\"%.2f\" y=\"%.2f\" width=\"7\" height=\"7\" stroke=\"%s\" %s/>\n",
                       cls, x - 3.5, y - 3.5, col, tail);
        break;
    case 2:
        svg_buf_printf(b, "<path class=\"%s\" d=\"M%.2f %.2fl4.5 7.5h-9z\" stroke=\"%s\" %s/>\n", cls, x, y - 4.5, col, tail);
        break;
    case 3:
        svg_buf_printf(b, "<path class=\"%s\" d=\"M%.2f %.2fl4.5 4.5l-4.5 4.5l-4.5 -4.5z\" stroke=\"%s\" %s/>\n", cls,
                       x, y - 4.5, col, tail);
        break;
    default:
        svg_buf_printf(b, "<path class=\"%s\" d=\"M%.2f %.2fl4.5 -7.5h-9z\" stroke=\"%s\" %s/>\n", cls, x, y + 4.5, col, tail);
        break;
    }
}

/* Y of the error-bar end y +/- e in pixels, clipped to the plot on invalid log values. */
static double svg_err_px(const SvgAxis *ya, double v)
{
    if (!isfinite(v))
        return v > 0 ? ya->p1 - 10 : ya->p0 + 10;
    if (ya->log && !(v > 0))
        return ya->p0 + 10; /* below the axis; clipped */
    return svg_axis_px(ya, v);
}

/* Emits one series (error bars, line pieces, markers) into b. Points above the top of the y range
   (a fixed ymax, or +inf) are drawn as an arrow at the top edge; the first one of the series is
   labelled with its value. */
static void svg_emit_series(SvgBuf *b, const SvgSeries *s, int idx, const SvgAxis *xa,
                            const SvgAxis *ya)
{
    const char *col = svg_palette[idx % SVG_NPALETTE];
    int n = s->n;
    svg_buf_printf(b, "<g class=\"series\" id=\"series-%d\" clip-path=\"url(#ncelab-plot-clip)\">\n", idx);
    if (n <= 0 || !s->x || !s->y) {
        svg_buf_puts(b, "</g>\n");
        return;
    }
    double *px = malloc(sizeof *px * (size_t)n * 2);
    if (!px) {
        b->oom = 1;
        return;
    }
    double *py = px + n;
    int logx = xa->log, logy = ya->log;
    for (int i = 0; i < n; i++) {
        if (svg_point_ok(s->x[i], s->y[i], logx, logy)) {
            px[i] = svg_axis_px(xa, s->x[i]);
            py[i] = svg_axis_px(ya, s->y[i]);
        } else {
            px[i] = NAN;
            py[i] = NAN;
        }
    }

    /* Error bars: one <path> per bar (stem plus two caps). */
    if (s->yerr) {
        for (int i = 0; i < n; i++) {
            double e = fabs(s->yerr[i]);
            if (isnan(px[i]) || !isfinite(e) || !(e > 0))
                continue;
            double yl = svg_err_px(ya, s->y[i] - e), yh = svg_err_px(ya, s->y[i] + e);
            svg_buf_puts(b, "<path class=\"errbar\" d=\"M");
            svg_buf_num(b, px[i]);
            svg_buf_putn(b, " ", 1);
            svg_buf_num(b, yl);
            svg_buf_puts(b, "V");
            svg_buf_num(b, yh);
            svg_buf_puts(b, "M");
            svg_buf_num(b, px[i] - 4);
            svg_buf_putn(b, " ", 1);
            svg_buf_num(b, yl);
            svg_buf_puts(b, "h8M");
            svg_buf_num(b, px[i] - 4);
            svg_buf_putn(b, " ", 1);
            svg_buf_num(b, yh);
            svg_buf_printf(b, "h8\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.3\"/>\n", col);
        }
    }

    /* Line pieces: a new <polyline> after every skipped point. */
    int i = 0;
    while (i < n) {
        if (isnan(px[i])) {
            i++;
            continue;
        }
        int j = i;
        while (j < n && !isnan(px[j]))
            j++;
        if (j - i == 1) {
            if (!s->markers)
                svg_buf_printf(b, "<circle class=\"dot\" cx=\"%.3f\" cy=\"%.3f\" r=\"2.5\" fill=\"%s\"/>\n",
                               fmax(-1e5, fmin(1e5, px[i])), fmax(-1e5, fmin(1e5, py[i])), col);
        } else {
            svg_buf_puts(b, "<polyline class=\"line\" points=\"");
            for (int k = i; k < j; k++) {
                if (k > i)
                    svg_buf_putn(b, " ", 1);
                svg_buf_num(b, px[k]);
                svg_buf_putn(b, ",", 1);
                svg_buf_num(b, py[k]);
            }
            svg_buf_printf(b, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" "
                              "stroke-linejoin=\"round\" stroke-linecap=\"butt\"",
                           col, svg_widths[idx % SVG_NDASH]);
            svg_dash_attr(b, s, idx);
            svg_buf_puts(b, "/>\n");
        }
        i = j;
    }

    if (s->markers) {
        for (int k = 0; k < n; k++) {
            if (isnan(px[k]))
                continue;
            svg_marker(b, "marker", idx, px[k], py[k], col);
        }
    }
    free(px);
    svg_buf_puts(b, "</g>\n");

    /* Points off the top: an arrow at the top edge (outside the clip), the first one labelled. */
    int labelled = 0;
    for (int k = 0; k < n; k++) {
        double y = s->y[k], x = s->x[k];
        if (!(isfinite(x) && (!logx || x > 0)) || !(y > 0 || !logy) || isnan(y))
            continue;
        double ty = isinf(y) ? HUGE_VAL : (logy ? log10(y) : y);
        if (!(ty > ya->hi) || (ya->hi - ya->lo) <= 0)
            continue;
        double ax = svg_axis_px(xa, x), ay = ya->p1;
        svg_buf_printf(b, "<path class=\"offscale\" d=\"M%.2f %.2fl-5 9h10z\" fill=\"%s\"/>\n", ax, ay - 2, col);
        if (!labelled) {
            char v[48];
            if (isinf(y))
                snprintf(v, sizeof v, "\xe2\x86\x91 \xe2\x88\x9e at %g", x);
            else
                snprintf(v, sizeof v, "\xe2\x86\x91 %.3g at %g", y, x);
            int left = ax < (xa->p0 + xa->p1) / 2;
            svg_buf_printf(b, "<text class=\"offscale-label\" x=\"%.2f\" y=\"%.2f\" font-size=\"%g\" fill=\"%s\" "
                              "text-anchor=\"%s\">", left ? ax + 8 : ax - 8, ay + 16, SVG_FS_TICK, col,
                           left ? "start" : "end");
            svg_buf_escape(b, v);
            svg_buf_puts(b, "</text>\n");
            labelled = 1;
        }
    }
}

/* The legend, below the plot and its x label, so that it never covers data: entries flow left
   to right in rows of at most `width` pixels starting at (x, y). */
typedef struct {
    int rows;
    double h;
} SvgLegendLayout;

static double svg_legend_entry_w(const SvgSeries *s)
{
    return 50 + svg_text_w(s->label, SVG_FS_LEGEND) + 18;
}

static SvgLegendLayout svg_legend_layout(const SvgSeries *s, int ns, double width)
{
    SvgLegendLayout L = {0, 0};
    double used = width + 1;
    for (int i = 0; i < ns; i++) {
        if (!svg_has_label(&s[i]))
            continue;
        double w = svg_legend_entry_w(&s[i]);
        if (used + w > width) {
            L.rows++;
            used = 0;
        }
        used += w;
    }
    L.h = L.rows ? 8 + 20.0 * L.rows : 0;
    return L;
}

static void svg_emit_legend(SvgBuf *b, const SvgSeries *s, int ns, double x, double y, double width,
                            const SvgLegendLayout *L)
{
    svg_buf_printf(b, "<g class=\"legend\" font-size=\"%g\" fill=\"#222222\">\n", SVG_FS_LEGEND);
    svg_buf_printf(b, "<rect class=\"legend-box\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" rx=\"3\" "
                      "fill=\"white\" stroke=\"#bbbbbb\" stroke-width=\"1\"/>\n",
                   x, y, width, L->h);
    double used = width + 1, cy = y + 4 - 10;
    for (int i = 0; i < ns; i++) {
        if (!svg_has_label(&s[i]))
            continue;
        double w = svg_legend_entry_w(&s[i]);
        if (used + w > width) {
            cy += 20;
            used = 0;
        }
        double ex = x + used;
        used += w;
        const char *col = svg_palette[i % SVG_NPALETTE];
        svg_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%.1f\"",
                       ex + 8, cy, ex + 42, cy, col, svg_widths[i % SVG_NDASH]);
        svg_dash_attr(b, &s[i], i);
        svg_buf_puts(b, "/>\n");
        if (s[i].markers)
            svg_marker(b, "legend-marker", i, ex + 25, cy, col);
        svg_buf_printf(b, "<text class=\"legend-label\" x=\"%.1f\" y=\"%.1f\" dy=\"0.35em\">", ex + 50, cy);
        svg_buf_escape(b, s[i].label);
        svg_buf_puts(b, "</text>\n");
    }
    svg_buf_puts(b, "</g>\n");
}

char *svg_render(const SvgPlot *p, const SvgSeries *s, int ns)
{
    if (!p)
        return NULL;
    if (ns < 0 || !s)
        ns = 0;
    int W = p->width > 0 ? p->width : 720;
    int H = p->height > 0 ? p->height : 440;
    int logx = p->logx != 0, logy = p->logy != 0;

    /* Data extent in axis units. */
    double xlo = HUGE_VAL, xhi = -HUGE_VAL, ylo = HUGE_VAL, yhi = -HUGE_VAL;
    int have = 0;
    for (int k = 0; k < ns; k++) {
        const SvgSeries *sk = &s[k];
        if (sk->n <= 0 || !sk->x || !sk->y)
            continue;
        for (int i = 0; i < sk->n; i++) {
            double x = sk->x[i], y = sk->y[i];
            if (!svg_point_ok(x, y, logx, logy))
                continue;
            double tx = logx ? log10(x) : svg_clamp_t(x);
            double ty = logy ? log10(y) : svg_clamp_t(y);
            have = 1;
            xlo = fmin(xlo, tx);
            xhi = fmax(xhi, tx);
            ylo = fmin(ylo, ty);
            yhi = fmax(yhi, ty);
            double e = sk->yerr ? fabs(sk->yerr[i]) : 0;
            if (isfinite(e) && e > 0) {
                double up = y + e, dn = y - e;
                if (isfinite(up))
                    yhi = fmax(yhi, logy ? log10(up) : svg_clamp_t(up));
                if (isfinite(dn) && (!logy || dn > 0))
                    ylo = fmin(ylo, logy ? log10(dn) : svg_clamp_t(dn));
            }
        }
    }

    SvgAxis *ax = calloc(2, sizeof *ax);
    if (!ax)
        return NULL;
    SvgAxis *xa = &ax[0], *ya = &ax[1];
    xa->log = logx;
    ya->log = logy;
    svg_axis_range(xa, xlo, xhi, have, 0.04);
    if (isfinite(p->ymin) && isfinite(p->ymax) && p->ymin < p->ymax && (!logy || p->ymin > 0)) {
        ya->lo = logy ? log10(p->ymin) : svg_clamp_t(p->ymin);
        ya->hi = logy ? log10(p->ymax) : svg_clamp_t(p->ymax);
        if (!(ya->hi > ya->lo))
            svg_axis_range(ya, ya->lo, ya->hi, 1, 0);
    } else {
        svg_axis_range(ya, ylo, yhi, have, 0.05);
    }
    svg_axis_ticks(xa);
    svg_axis_ticks(ya);

    /* Layout: margins sized to the tick labels and the presence of titles. */
    int has_title = p->title && p->title[0];
    int has_xlabel = p->xlabel && p->xlabel[0];
    int has_ylabel = p->ylabel && p->ylabel[0];
    double ytw = 0;
    for (int i = 0; i < ya->nt; i++)
        ytw = fmax(ytw, svg_text_w(ya->lab[i], SVG_FS_TICK));
    double left = 10 + (has_ylabel ? 24 : 0) + ytw + 10;
    double right = 22;
    if (xa->nt > 0)
        right = fmax(right, svg_text_w(xa->lab[xa->nt - 1], SVG_FS_TICK) / 2 + 8);
    double top = has_title ? 42 : 16;
    double bottom = has_xlabel ? 56 : 32;
    SvgLegendLayout leg = svg_legend_layout(s, ns, W - 20);
    /* the legend sits below the x label: the figure grows by its height, the plot keeps its size */
    int Htot = H + (leg.rows ? (int)ceil(leg.h + 10) : 0);
    double x0 = left, x1 = W - right, y0 = top, y1 = H - bottom;
    if (x1 < x0 + 10)
        x1 = x0 + 10;
    if (y1 < y0 + 10)
        y1 = y0 + 10;
    xa->p0 = x0;
    xa->p1 = x1;
    ya->p0 = y1;
    ya->p1 = y0;

    SvgBuf b = {0};
    svg_buf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    svg_buf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
                       "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n", W, Htot, W, Htot);
    if (has_title) {
        svg_buf_puts(&b, "<title>");
        svg_buf_escape(&b, p->title);
        svg_buf_puts(&b, "</title>\n");
    }
    svg_buf_printf(&b, "<rect class=\"background\" x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, Htot);
    svg_buf_printf(&b, "<defs><clipPath id=\"ncelab-plot-clip\"><rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
                       "height=\"%.2f\"/></clipPath></defs>\n", x0, y0, x1 - x0, y1 - y0);

    /* Grid. */
    svg_buf_puts(&b, "<g class=\"grid\" stroke=\"#e0e0e0\" stroke-width=\"1\" shape-rendering=\"crispEdges\">\n");
    for (int i = 0; i < xa->nt; i++) {
        double x = svg_axis_px(xa, xa->tick[i]);
        svg_buf_printf(&b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", x, y0, x, y1);
    }
    for (int i = 0; i < ya->nt; i++) {
        double y = svg_axis_px(ya, ya->tick[i]);
        svg_buf_printf(&b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", x0, y, x1, y);
    }
    svg_buf_puts(&b, "</g>\n");

    /* Series. */
    for (int k = 0; k < ns; k++)
        svg_emit_series(&b, &s[k], k, xa, ya);

    /* Frame and tick marks. */
    svg_buf_printf(&b, "<rect class=\"frame\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" "
                       "stroke=\"#333333\" stroke-width=\"1\" shape-rendering=\"crispEdges\"/>\n",
                   x0, y0, x1 - x0, y1 - y0);
    svg_buf_puts(&b, "<g class=\"ticks\" stroke=\"#333333\" stroke-width=\"1\" shape-rendering=\"crispEdges\">\n");
    for (int i = 0; i < xa->nt + xa->nminor; i++) {
        int major = i < xa->nt;
        double x = svg_axis_px(xa, major ? xa->tick[i] : xa->minor[i - xa->nt]);
        svg_buf_printf(&b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", x, y1, x,
                       y1 + (major ? SVG_TICK_LEN : SVG_TICK_LEN * 0.6));
    }
    for (int i = 0; i < ya->nt + ya->nminor; i++) {
        int major = i < ya->nt;
        double y = svg_axis_px(ya, major ? ya->tick[i] : ya->minor[i - ya->nt]);
        svg_buf_printf(&b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", x0, y,
                       x0 - (major ? SVG_TICK_LEN : SVG_TICK_LEN * 0.6), y);
    }
    svg_buf_puts(&b, "</g>\n");

    /* Tick labels. */
    svg_buf_printf(&b, "<g class=\"xtick-labels\" font-size=\"%g\" fill=\"#222222\" text-anchor=\"middle\">\n",
                   SVG_FS_TICK);
    for (int i = 0; i < xa->nt; i++) {
        svg_buf_printf(&b, "<text class=\"xtick\" x=\"%.2f\" y=\"%.2f\">", svg_axis_px(xa, xa->tick[i]), y1 + 20);
        svg_buf_escape(&b, xa->lab[i]);
        svg_buf_puts(&b, "</text>\n");
    }
    svg_buf_puts(&b, "</g>\n");
    svg_buf_printf(&b, "<g class=\"ytick-labels\" font-size=\"%g\" fill=\"#222222\" text-anchor=\"end\">\n",
                   SVG_FS_TICK);
    for (int i = 0; i < ya->nt; i++) {
        svg_buf_printf(&b, "<text class=\"ytick\" x=\"%.2f\" y=\"%.2f\" dy=\"0.35em\">", x0 - 8,
                       svg_axis_px(ya, ya->tick[i]));
        svg_buf_escape(&b, ya->lab[i]);
        svg_buf_puts(&b, "</text>\n");
    }
    svg_buf_puts(&b, "</g>\n");

    /* Title and axis labels. */
    double xmid = (x0 + x1) / 2, ymid = (y0 + y1) / 2;
    if (has_title) {
        svg_buf_printf(&b, "<text class=\"title\" x=\"%.2f\" y=\"26\" font-size=\"%g\" font-weight=\"bold\" "
                           "fill=\"#111111\" text-anchor=\"middle\">", xmid, SVG_FS_TITLE);
        svg_buf_escape(&b, p->title);
        svg_buf_puts(&b, "</text>\n");
    }
    if (has_xlabel) {
        svg_buf_printf(&b, "<text class=\"xlabel\" x=\"%.2f\" y=\"%d\" font-size=\"%g\" fill=\"#222222\" "
                           "text-anchor=\"middle\">", xmid, H - 14, SVG_FS_LABEL);
        svg_buf_escape(&b, p->xlabel);
        svg_buf_puts(&b, "</text>\n");
    }
    if (has_ylabel) {
        svg_buf_printf(&b, "<text class=\"ylabel\" x=\"24\" y=\"%.2f\" font-size=\"%g\" fill=\"#222222\" "
                           "text-anchor=\"middle\" transform=\"rotate(-90 24 %.2f)\">", ymid, SVG_FS_LABEL, ymid);
        svg_buf_escape(&b, p->ylabel);
        svg_buf_puts(&b, "</text>\n");
    }

    if (leg.rows)
        svg_emit_legend(&b, s, ns, 10, H + 2, W - 20, &leg);

    svg_buf_puts(&b, "</svg>\n");
    free(ax);
    if (b.oom) {
        free(b.d);
        return NULL;
    }
    return b.d;
}
