// progress.c -- progress on stderr: a bar on a terminal, a line every 10 s otherwise.
#define _POSIX_C_SOURCE 200809L
#include "ncelab/progress.h"
#include "ncelab/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int progress_on;
static double line_every = 10.0;

void progress_enable(int on) {
    progress_on = on;
    const char *v = getenv("NCELAB_PROGRESS_EVERY");
    char *end;
    double x = v && *v ? strtod(v, &end) : -1;
    if (v && *v && *end == '\0' && x >= 0 && x < 1e6) line_every = x;
}

/* "12.3s", "4m05s", "1h02m": a duration a reader takes in at a glance */
static void fmt_time(char *b, size_t n, double s) {
    if (!(s >= 0) || s > 1e7) snprintf(b, n, "?");
    else if (s < 60) snprintf(b, n, "%.1fs", s);
    else if (s < 3600) snprintf(b, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(b, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

static void progress_draw(Progress *p) {
    double el = nc_now() - p->t0;
    double frac = p->total > 0 ? (double)p->done / (double)p->total : 1.0;
    if (frac > 1.0) frac = 1.0;
    char els[16], etas[16];
    fmt_time(els, sizeof els, el);
    long fresh = p->done - p->base;  /* the units of this start: the rate */
    fmt_time(etas, sizeof etas, fresh > 0 && frac < 1.0 ? el * (double)(p->total - p->done) / (double)fresh : frac < 1.0 ? -1 : 0);
    const char *label = p->label ? p->label : "";
    if (p->mode == 1) {
        int width = 30, fill = (int)(frac * width + 0.5);
        char bar[64];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\r%s [%s] %ld/%ld  %s elapsed  ETA %s ", label, bar, p->done, p->total, els, etas);
    } else {
        fprintf(stderr, "%s: %ld/%ld (%.0f%%)  %s elapsed  ETA %s\n", label, p->done, p->total, 100 * frac, els, etas);
        p->drawn++;
    }
    fflush(stderr);
    p->last_draw = nc_now();
}

void progress_start(Progress *p, const char *label, long total) {
    p->label = label;
    p->total = total;
    p->done = p->base = 0;
    p->t0 = p->last_draw = nc_now();
    p->drawn = 0;
    p->mode = !progress_on ? 0 : isatty(fileno(stderr)) ? 1 : 2;
    if (p->mode == 1) progress_draw(p);
}

void progress_update(Progress *p, long done) {
    p->done = done;
    double since = nc_now() - p->last_draw;
    if ((p->mode == 1 && since > 0.1) || (p->mode == 2 && since >= line_every)) progress_draw(p);
}

void progress_resumed(Progress *p, long done) {
    p->done = p->base = done;
    if (p->mode == 1) progress_draw(p);
}

void progress_end(Progress *p) {
    if (p->mode == 0 || (p->mode == 2 && p->drawn == 0)) return;
    progress_draw(p);
    if (p->mode == 1) fputc('\n', stderr);
}
