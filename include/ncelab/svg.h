/* svg.h -- line plots (linear or log axes, legend, error bars) rendered as standalone SVG text. */
#ifndef NCELAB_SVG_H
#define NCELAB_SVG_H

#ifdef __cplusplus
extern "C" {
#endif

/* One plotted series. Points with a non-finite x or y (or x <= 0 on a log x
   axis, y <= 0 on a log y axis) are skipped and break the line into pieces. */
typedef struct {
    const char *label;     /* legend text (XML-escaped by the renderer); NULL or "" = no legend entry */
    const double *x, *y;   /* n points each; may be NULL when n == 0 */
    const double *yerr;    /* optional symmetric error bars (NULL for none); |yerr| is used, non-finite or 0 skipped */
    int n;
    int dashed;            /* draw dashed (e.g. for a bound) */
    int markers;           /* draw a small circle at each point */
} SvgSeries;

/* Plot-wide settings. */
typedef struct {
    const char *title, *xlabel, *ylabel;  /* may be NULL */
    int logx, logy;        /* logarithmic axes with base-10 decade ticks (1, 10, 100, 1e3, ...) */
    int width, height;     /* pixels; <= 0 means the defaults 720 x 440 */
    double ymin, ymax;     /* if ymin < ymax (both finite, and ymin > 0 on a log y axis) fixes the y
                              range; otherwise auto from data (incl. error bars) with 5% padding */
} SvgPlot;

/* svg_render: renders ns series (s may be NULL when ns == 0) as a whole SVG document.
   Returns a NUL-terminated malloc'd string (caller frees), or NULL if out of memory
   or p is NULL. Handles empty series, n == 0, all-NaN data and single points. */
char *svg_render(const SvgPlot *p, const SvgSeries *s, int ns);

#ifdef __cplusplus
}
#endif

#endif /* NCELAB_SVG_H */
