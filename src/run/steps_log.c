// steps_log.c -- DIR/steps.csv: one row every --log-every optimiser steps, appended as the run
// goes, kept to the checkpoint's steps when a run starts or resumes.
#define _POSIX_C_SOURCE 200809L
#include "ncelab/trainer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char STEPS_HEADER[] = "step,epoch,loss,lr,collision_rate,any_collision,coverage,queue_age,seconds\n";

int steps_log_open(const char *path, long done_steps, FILE **out, NcError *err) {
    *out = NULL;
    /* the rows of steps 1..done_steps a previous run wrote (a killed run's later rows, or a
       last line cut short, are dropped) */
    char *text = NULL;
    size_t len = 0, keep = 0;
    if (access(path, F_OK) == 0) {
        int rc = nc_read_file(path, &text, &len, err);
        if (rc) return rc;
        size_t hl = strlen(STEPS_HEADER);
        if (len >= hl && memcmp(text, STEPS_HEADER, hl) == 0) {
            keep = hl;
            while (keep < len) {
                char *nl = memchr(text + keep, '\n', len - keep), *end;
                if (!nl) break;
                long step = strtol(text + keep, &end, 10);
                if (end == text + keep || *end != ',' || step < 1 || step > done_steps) break;
                keep = (size_t)(nl - text) + 1;
            }
        }
    }
    int rc = keep ? nc_write_atomic(path, text, keep, err) : nc_write_atomic(path, STEPS_HEADER, strlen(STEPS_HEADER), err);
    free(text);
    if (rc) return rc;
    *out = fopen(path, "a");
    if (!*out) return nc_fail(err, NC_EFILE, "%s: cannot open for appending: %s", path, strerror(errno));
    return NC_OK;
}

int steps_log_row(FILE *f, const char *path, long step, int epoch, const TrainStep *st, double seconds, NcError *err) {
    fprintf(f, "%ld,%d,%.6f,%.6g,%.5f,%.5f,%.3f,", step, epoch, st->loss, st->lr, st->collision_rate, st->any_collision,
            st->coverage);
    if (isfinite(st->queue_age)) fprintf(f, "%.2f", st->queue_age);
    fprintf(f, ",%.3f\n", seconds);
    if (fflush(f) != 0 || ferror(f)) return nc_fail(err, NC_EFILE, "%s: cannot write: %s", path, strerror(errno));
    return NC_OK;
}
