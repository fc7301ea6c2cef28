// explore_run.c -- an exploration's instances in parallel over threads and ranks, journalled so that a second run resumes.
//
// DIR/explore.jsonl holds the settings on its first line and one record per finished instance
// after it, each line written whole and flushed. On a second call the settings must match; the
// records read back are skipped; a last line cut short by a killed run is dropped.
//
// The first rank owns the directory: it reads and writes the journal and the support files. The
// instances left to do are sorted largest first (the cost grows with the number of points) and
// dealt to the ranks in turn; each rank solves its share over its OpenMP threads. With several
// ranks the work goes in rounds of c->round_seconds (explore.h): a rank starts no instance after
// the round's time, the ranks then exchange which instances finished and send their records (as
// journal lines) to the first rank, and what is left is dealt again. A record read back from its
// JSON line is the record (numbers are printed to round-trip), so the result does not depend on
// the number of ranks.
#define _POSIX_C_SOURCE 200809L
#include "ncelab/comm.h"
#include "ncelab/explore.h"
#include "ncelab/jsonio.h"

#include <errno.h>
#include <math.h>
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

/* What the first rank keeps while instances finish: the journal, the records, the count. */
typedef struct {
    FILE *f;                  /* the journal, appended to (first rank only) */
    const char *path;
    ExploreRecord *recs;      /* (total) by index */
    long done, total;
    ExploreProgress progress;
    void *ctx;
} ExploreSink;

/* explore_record_line: r as one journal line, malloc'd */
static char *explore_record_line(const ExploreRecord *r) {
    cJSON *o = explore_record_json(r);
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return line;
}

/* explore_sink_line: the record of one journal line (from this rank or another): its support
   file written, the line appended to the journal, the record parsed back from it and kept, so that
   a record is what its line says whichever rank solved it (numbers printed by cJSON read back to
   the same text, not always to the same bits). First rank only, under the caller's lock. */
static int explore_sink_line(ExploreSink *k, const char *line, NcError *err) {
    cJSON *o = cJSON_Parse(line);
    ExploreRecord r;
    int rc = !o ? nc_fail(err, NC_ENUM, "explore: a record sent by a rank is not JSON") : explore_record_parse(o, &r, err);
    cJSON_Delete(o);
    if (rc) return rc;
    if (r.index < 0 || r.index >= k->total || k->recs[r.index].command)
        rc = nc_fail(err, NC_ENUM, "explore: instance %ld was sent twice or is out of range", r.index);
    if (!rc) rc = explore_write_support(&r, err);
    if (!rc && (fprintf(k->f, "%s\n", line) < 0 || fflush(k->f) != 0))
        rc = nc_fail(err, NC_EFILE, "%s: cannot append: %s", k->path, strerror(errno));
    if (rc) { explore_record_free(&r); return rc; }
    k->recs[r.index] = r;
    k->done++;
    if (k->progress) k->progress(k->ctx, k->done, k->total);
    return NC_OK;
}

/* explore_sink_lines: explore_sink_line for each newline-ended line of text (len bytes) */
static int explore_sink_lines(ExploreSink *k, char *text, size_t len, NcError *err) {
    char *p = text, *end = text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;
        *nl = '\0';
        int rc = explore_sink_line(k, p, err);
        if (rc) return rc;
        p = nl + 1;
    }
    return NC_OK;
}

/* explore_order: sorts the instance indices todo (n) largest first (points, then classes: the
   cost grows with both), ties by index, so that the last instances to finish are small ones */
typedef struct { long size, index; } ExploreJob;
static int explore_job_cmp(const void *a, const void *b) {
    const ExploreJob *x = a, *y = b;
    if (x->size != y->size) return x->size > y->size ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}
static void explore_order(const ExploreConfig *c, long *todo, long n) {
    ExploreJob *jobs = nc_malloc(sizeof(ExploreJob) * (size_t)(n ? n : 1));
    for (long t = 0; t < n; t++) {
        ExploreRecord r;
        jobs[t].index = todo[t];
        jobs[t].size = explore_make(c, todo[t], &r, NULL) == NC_OK ? (long)r.M * 1000 + r.N : 0;
        explore_record_free(&r);
    }
    qsort(jobs, (size_t)n, sizeof(ExploreJob), explore_job_cmp);
    for (long t = 0; t < n; t++) todo[t] = jobs[t].index;
    free(jobs);
}

/* explore_open: the first rank's part of the start: the directory (made, locked, writable), the
   support folder, the journal read back into recs (or started), opened for appending; the
   indices still to do, largest first. */
static int explore_open(const ExploreConfig *c, ExploreSink *k, int *lock, long *todo, long *ntodo, long *resumed,
                        NcError *err) {
    int rc;
    *lock = -1;
    if ((rc = nc_mkdir_p(c->out, err)) || (rc = nc_dir_lock(c->out, lock, err)) || (rc = nc_dir_writable(c->out, err)))
        return rc;
    int need_supports = 0;
    for (int i = 0; i < c->nsup; i++) need_supports |= c->shared[i] > 0;
    char *sdir = nc_path_join(c->out, "supports");
    rc = need_supports ? nc_mkdir_p(sdir, err) : NC_OK;
    free(sdir);
    if (rc) return rc;
    cJSON *cfg = explore_config_json(c), *head = cJSON_CreateObject();
    cJSON_AddItemToObject(head, "config", cfg);
    char *config_line = cJSON_PrintUnformatted(head);
    cJSON_Delete(head);
    size_t valid = 0;
    if (access(k->path, F_OK) == 0) {
        rc = journal_read(c, k->path, config_line, k->recs, k->total, resumed, &valid, err);
        if (!rc && truncate(k->path, (off_t)valid) != 0)
            rc = nc_fail(err, NC_EFILE, "%s: cannot drop an unfinished line: %s", k->path, strerror(errno));
    } else {
        size_t n = strlen(config_line);
        config_line[n] = '\n';  /* the NUL becomes the newline, written with the line */
        rc = nc_write_atomic(k->path, config_line, n + 1, err);
        config_line[n] = '\0';
    }
    free(config_line);
    if (!rc && !(k->f = fopen(k->path, "a"))) rc = nc_fail(err, NC_EFILE, "%s: cannot append: %s", k->path, strerror(errno));
    if (rc) return rc;
    *ntodo = 0;
    for (long i = 0; i < k->total; i++)
        if (!k->recs[i].command) todo[(*ntodo)++] = i;
    explore_order(c, todo, *ntodo);
    k->done = *resumed;
    return NC_OK;
}

/* explore_round: this rank's share of rem (items rank, rank + size, ...), solved over the OpenMP
   threads until the deadline; finished[j] = 1 for the items of rem done. On the first rank each
   record goes to the sink as it finishes; the others append its journal line to out. */
static int explore_round(const ExploreConfig *c, Comm *comm, const long *rem, long nrem, double deadline,
                         ExploreSink *k, long long *finished, NcBuf *out, NcError *err) {
    int failed = NC_OK, lead = comm->rank == 0;
    long mine = nrem > comm->rank ? (nrem - comm->rank + comm->size - 1) / comm->size : 0;
    #pragma omp parallel for schedule(dynamic, 1)
    for (long t = 0; t < mine; t++) {
        int stop;
        #pragma omp atomic read
        stop = failed;
        if (stop || nc_now() > deadline) continue;
        long j = comm->rank + t * comm->size;
        ExploreRecord r;
        NcError e = {0};
        int rr = explore_make(c, rem[j], &r, &e);
        if (!rr) rr = explore_evaluate(c, &r, &e);
        char *line = rr ? NULL : explore_record_line(&r);
        explore_record_free(&r);
        #pragma omp critical(explore_journal)
        {
            if (!rr && !failed) {
                if (lead) rr = explore_sink_line(k, line, &e);
                else nc_buf_printf(out, "%s\n", line);
                finished[j] = !rr;
            }
            if (rr && !failed) { failed = rr; *err = e; }
        }
        free(line);
    }
    return failed;
}

/* explore_exchange: after a round, every rank learns which items of rem finished anywhere
   (finished, element-wise maximum) and whether a rank failed (*bad); the first rank receives the
   other ranks' journal lines (out) and adds their records; every rank returns its verdict. */
static int explore_exchange(Comm *comm, ExploreSink *k, long long *finished, long nrem, NcBuf *out, int rc,
                            long long *bad, NcError *err) {
    finished[nrem] = rc;  /* the last slot carries the error code */
    int crc = comm->allreduce_max_i64(comm, finished, (size_t)nrem + 1, err);
    if (crc) return crc;
    *bad = finished[nrem];
    long long mylen = (long long)out->len, *lens = nc_malloc(sizeof(long long) * comm->size), maxlen = 0;
    crc = comm->allgather(comm, &mylen, lens, sizeof mylen, err);
    for (int i = 0; !crc && i < comm->size; i++) maxlen = lens[i] > maxlen ? lens[i] : maxlen;
    char *send = NULL, *all = NULL;
    if (!crc && maxlen > 0) {
        send = nc_calloc((size_t)maxlen, 1);
        if (out->len) memcpy(send, out->s, out->len);
        all = nc_malloc((size_t)maxlen * comm->size);  /* an allgather: every rank receives */
        crc = comm->allgather(comm, send, all, (size_t)maxlen, err);
    }
    long long sunk = NC_OK;  /* the first rank's verdict on the records it received, to every rank */
    for (int i = 1; !crc && !*bad && comm->rank == 0 && i < comm->size && !sunk; i++)
        if (lens[i] > 0) sunk = explore_sink_lines(k, all + (size_t)maxlen * i, (size_t)lens[i], err);
    if (!crc) crc = comm->bcast(comm, &sunk, sizeof sunk, 0, err);
    if (!crc && sunk) {
        if (comm->rank == 0) crc = (int)sunk;  /* err holds the message */
        else crc = nc_fail(err, (int)sunk, "explore: the first rank could not keep the records (its message names the problem)");
    }
    free(send);
    free(all);
    free(lens);
    nc_buf_free(out);
    return crc;
}

int explore_run(const ExploreConfig *c, Comm *comm, ExploreRecord **out, long *nout, long *resumed,
                ExploreProgress progress, void *ctx, NcError *err) {
    if (!comm) comm = comm_single();
    long total = explore_count(c);
    int lead = comm->rank == 0, lock = -1;
    *out = NULL;
    *nout = 0;
    *resumed = 0;
    ExploreSink k = {NULL, NULL, NULL, 0, total, progress, ctx};
    char *path = nc_path_join(c->out, "explore.jsonl");
    k.path = path;
    long *todo = nc_malloc(sizeof(long) * (size_t)(total ? total : 1)), ntodo = 0;
    int rc = NC_OK;
    if (lead) {
        k.recs = nc_calloc((size_t)(total ? total : 1), sizeof(ExploreRecord));
        rc = explore_open(c, &k, &lock, todo, &ntodo, resumed, err);
        if (!rc && progress) progress(ctx, k.done, total);
    }
    /* the first rank's verdict on the directory and the work list, to every rank */
    if (comm->size > 1) {
        long long st[3] = {rc, ntodo, *resumed};
        int crc = comm->bcast(comm, st, sizeof st, 0, err);
        if (!crc && st[0] && !lead) crc = nc_fail(err, (int)st[0], "%s: refused by the run's first rank", c->out);
        if (!crc && !st[0]) {
            ntodo = (long)st[1];
            *resumed = (long)st[2];
            crc = comm->bcast(comm, todo, sizeof(long) * (size_t)ntodo, 0, err);
        }
        if (!rc) rc = crc;
    }
    long long *finished = nc_calloc((size_t)ntodo + 1, sizeof(long long));
    NcBuf lines = {0};
    while (!rc && ntodo > 0) {
        double round = c->round_seconds > 0 ? c->round_seconds : EXPLORE_ROUND_SECONDS;
        double deadline = comm->size > 1 ? nc_now() + round : INFINITY;
        memset(finished, 0, sizeof(long long) * ((size_t)ntodo + 1));
        int rr = explore_round(c, comm, todo, ntodo, deadline, &k, finished, &lines, err);
        if (comm->size == 1) { rc = rr; break; }
        long long bad = 0;
        rc = explore_exchange(comm, &k, finished, ntodo, &lines, rr, &bad, err);
        if (!rc && rr) rc = rr;
        if (!rc && bad) rc = nc_fail(err, (int)bad, "explore: another rank failed (its message names the problem)");
        long left = 0;  /* what is left, in order, is dealt again */
        for (long j = 0; j < ntodo; j++)
            if (!finished[j]) todo[left++] = todo[j];
        ntodo = left;
    }
    free(finished);
    nc_buf_free(&lines);
    if (k.f && fclose(k.f) != 0 && !rc) rc = nc_fail(err, NC_EFILE, "%s: cannot close: %s", path, strerror(errno));
    free(todo);
    free(path);
    if (lock >= 0) nc_dir_unlock(lock);
    if (rc || !lead) {
        for (long i = 0; lead && i < total; i++) explore_record_free(&k.recs[i]);
        free(k.recs);
        return rc;
    }
    *out = k.recs;
    *nout = total;
    return NC_OK;
}
