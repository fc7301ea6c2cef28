// progress.h -- progress with rate and ETA on stderr: a bar redrawn in place on a terminal, a
// line every 10 s otherwise (a log file, a pipe). Silent until the program calls progress_enable
// (the ncelab command does, on rank 0), so the library draws nothing for other callers.
#ifndef NCELAB_PROGRESS_H
#define NCELAB_PROGRESS_H

typedef struct {
    const char *label;
    long total, done;
    long base;               /* units done before this start (a resumed task): not in the rate */
    double t0, last_draw;
    int mode;                /* 0 silent, 1 a bar on a terminal, 2 lines */
    int drawn;               /* lines written (mode 2) */
} Progress;

/* progress_enable: turns progress on (1) or off (0) for the whole process (off by default). The
   interval between lines when stderr is not a terminal is 10 s, or NCELAB_PROGRESS_EVERY seconds
   when that is set (0: a line at every update). */
void progress_enable(int on);
/* progress_start: begins a task of total units. */
void progress_start(Progress *p, const char *label, long total);
/* progress_update: sets the units done (a bar is redrawn at most 10 times a second). */
void progress_update(Progress *p, long done);
/* progress_resumed: done units were finished before this start (read back by a resumed task):
   shown as done, left out of the rate and the ETA. */
void progress_resumed(Progress *p, long done);
/* progress_end: the final state: the bar completed and its line ended; in line mode a last line
   only when the task wrote one before (a task under the interval stays silent). */
void progress_end(Progress *p);

#endif
