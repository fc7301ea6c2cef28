// progress.c -- terminal progress bar (rate, ETA), a no-op when stderr is not a terminal.
#define _POSIX_C_SOURCE 200809L
#include "ncelab/progress.h"
#include "ncelab/core.h"

#include <stdio.h>
#include <unistd.h>

static void progress_draw(Progress *p) {
    double el = nc_now() - p->t0;
    double frac = p->total > 0 ? (double)p->done / (double)p->total : 1.0;
    if (frac > 1.0) frac = 1.0;
    int width = 30, fill = (int)(frac * width + 0.5);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    double eta = (p->done > 0 && frac < 1.0) ? el * (1.0 - frac) / frac : 0.0;
    fprintf(stderr, "\r%s [%s] %ld/%ld  %.1fs elapsed  ETA %.1fs ", p->label ? p->label : "",
            bar, p->done, p->total, el, eta);
    fflush(stderr);
    p->last_draw = nc_now();
}

void progress_start(Progress *p, const char *label, long total) {
    p->label = label;
    p->total = total;
    p->done = 0;
    p->t0 = nc_now();
    p->last_draw = 0.0;
    p->tty = isatty(fileno(stderr));
    if (p->tty) progress_draw(p);
}

void progress_update(Progress *p, long done) {
    p->done = done;
    if (p->tty && nc_now() - p->last_draw > 0.1) progress_draw(p);
}

void progress_end(Progress *p) {
    if (!p->tty) return;
    progress_draw(p);
    fputc('\n', stderr);
}
