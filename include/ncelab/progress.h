// progress.h -- a progress bar with rate and ETA on stderr, drawn only when stderr is a terminal.
#ifndef NCELAB_PROGRESS_H
#define NCELAB_PROGRESS_H

typedef struct {
    const char *label;
    long total, done;
    double t0, last_draw;
    int tty;
} Progress;

/* progress_start: begins a bar of total units; silent unless stderr is a terminal. */
void progress_start(Progress *p, const char *label, long total);
/* progress_update: sets the units done (redraws at most 10 times a second). */
void progress_update(Progress *p, long done);
/* progress_end: draws the final state and ends the line. */
void progress_end(Progress *p);

#endif
