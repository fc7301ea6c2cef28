// explore_run.c -- an exploration's instances in parallel, journalled so that a second run resumes.
//
// DIR/explore.jsonl holds the settings on its first line and one record per finished instance
// after it, each line written whole and flushed. On a second call the settings must match; the
// records read back are skipped; a last line cut short by a killed run is dropped.
#define _POSIX_C_SOURCE 200809L
#include "ncelab/explore.h"
#include "ncelab/jsonio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the record is instance r->index of c: the same command (a run with another --instances has
   another instance, e.g. of the phase map, at the same index) */
static int record_matches(const ExploreConfig *c, const ExploreRecord *r) {
    ExploreRecord want;
    if (explore_make(c, r->index, &want, NULL)) return 0;
    int same = strcmp(want.command, r->command) == 0;
    explore_record_free(&want);
    return same;
}

/* reads the journal's records into recs (by index); *valid_len: the bytes of whole lines */
static int journal_read(const ExploreConfig *c, const char *path, const char *config_line, ExploreRecord *recs, long total, long *found,
                        size_t *valid_len, NcError *err) {
    char *text;
    size_t len;
    *found = 0;
    *valid_len = 0;
    int rc = nc_read_file(path, &text, &len, err);
    if (rc) return rc;
    char *p = text, *end = text + len;
    int line = 0;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;  /* cut short by a killed run: dropped */
        *nl = '\0';
        line++;
        if (line == 1) {
            if (strcmp(p, config_line) != 0) {
                free(text);
                return nc_fail(err, NC_EUSAGE, "%s: written with other settings; give the same options or another --out", path);
            }
        } else {
            cJSON *o = cJSON_Parse(p);
            ExploreRecord r;
            NcError e2 = {0};
            if (!o || explore_record_parse(o, &r, &e2)) {
                cJSON_Delete(o);
                if (nl + 1 >= end) break;  /* the last line: a write cut short, dropped */
                free(text);
                return nc_fail(err, NC_EFILE, "%s: line %d: %s", path, line, o ? e2.msg : "not JSON");
            }
            cJSON_Delete(o);
            if (r.index < total && recs[r.index].command == NULL && record_matches(c, &r)) {
                recs[r.index] = r;
                (*found)++;
            } else {
                explore_record_free(&r);
            }
        }
        *valid_len = (size_t)(nl + 1 - text);
        p = nl + 1;
    }
    free(text);
    if (line == 0) return nc_fail(err, NC_EFILE, "%s: empty (no settings line)", path);
    return NC_OK;
}

int explore_run(const ExploreConfig *c, ExploreRecord **out, long *nout, long *resumed,
                ExploreProgress progress, void *ctx, NcError *err) {
    long total = explore_count(c);
    *out = NULL;
    *nout = 0;
    *resumed = 0;
    int rc, lock = -1;
    if ((rc = nc_mkdir_p(c->out, err)) || (rc = nc_dir_lock(c->out, &lock, err)) || (rc = nc_dir_writable(c->out, err))) {
        if (lock >= 0) nc_dir_unlock(lock);
        return rc;
    }
    int need_supports = 0;
    for (int i = 0; i < c->nsup; i++) need_supports |= c->shared[i] > 0;
    char *sdir = nc_path_join(c->out, "supports");
    if (need_supports && (rc = nc_mkdir_p(sdir, err))) { free(sdir); nc_dir_unlock(lock); return rc; }
    free(sdir);
    cJSON *cfg = explore_config_json(c), *head = cJSON_CreateObject();
    cJSON_AddItemToObject(head, "config", cfg);
    char *config_line = cJSON_PrintUnformatted(head);
    cJSON_Delete(head);
    char *path = nc_path_join(c->out, "explore.jsonl");
    ExploreRecord *recs = nc_calloc((size_t)(total ? total : 1), sizeof(ExploreRecord));
    size_t valid = 0;
    if (access(path, F_OK) == 0) {
        rc = journal_read(c, path, config_line, recs, total, resumed, &valid, err);
        if (!rc && truncate(path, (off_t)valid) != 0)
            rc = nc_fail(err, NC_EFILE, "%s: cannot drop an unfinished line: %s", path, strerror(errno));
    } else {
        size_t n = strlen(config_line);
        config_line[n] = '\n';  /* the NUL becomes the newline, written with the line */
        rc = nc_write_atomic(path, config_line, n + 1, err);
        config_line[n] = '\0';
    }
    FILE *f = rc ? NULL : fopen(path, "a");
    if (!rc && !f) rc = nc_fail(err, NC_EFILE, "%s: cannot append: %s", path, strerror(errno));
    long *todo = nc_malloc(sizeof(long) * (size_t)(total ? total : 1)), ntodo = 0, done = *resumed;
    for (long i = 0; !rc && i < total; i++)
        if (!recs[i].command) todo[ntodo++] = i;
    if (progress && !rc) progress(ctx, done, total);
    int failed = rc;
    NcError first = {0};
    #pragma omp parallel for schedule(dynamic, 1)
    for (long t = 0; t < ntodo; t++) {
        int stop;
        #pragma omp atomic read
        stop = failed;
        if (stop) continue;
        ExploreRecord r;
        NcError e = {0};
        int rr = explore_make(c, todo[t], &r, &e);
        if (!rr) rr = explore_write_support(&r, &e);
        if (!rr) rr = explore_evaluate(c, &r, &e);
        #pragma omp critical(explore_journal)
        {
            if (rr) {
                if (!failed) { failed = rr; first = e; }
                explore_record_free(&r);
            } else if (!failed) {
                cJSON *o = explore_record_json(&r);
                char *line = cJSON_PrintUnformatted(o);
                cJSON_Delete(o);
                if (fprintf(f, "%s\n", line) < 0 || fflush(f) != 0) {
                    failed = nc_fail(&first, NC_EFILE, "%s: cannot append: %s", path, strerror(errno));
                }
                free(line);
                recs[r.index] = r;
                done++;
                if (progress) progress(ctx, done, total);
            } else {
                explore_record_free(&r);
            }
        }
    }
    if (f && fclose(f) != 0 && !failed) failed = nc_fail(&first, NC_EFILE, "%s: cannot close: %s", path, strerror(errno));
    if (!rc && failed) { rc = failed; if (err) *err = first; }
    free(todo);
    free(path);
    free(config_line);
    nc_dir_unlock(lock);
    if (rc) {
        for (long i = 0; i < total; i++) explore_record_free(&recs[i]);
        free(recs);
        return rc;
    }
    *out = recs;
    *nout = total;
    return NC_OK;
}
