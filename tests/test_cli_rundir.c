// test_cli_rundir.c -- one run directory, one writer, and logs that agree with the checkpoint:
// a second writer is refused naming the holder's pid (train, sweep, a sweep's run); a directory
// that holds a checkpoint is refused without --resume or --force; a refused resume names the
// fields that differ; a longer --epochs on resume recomputes the schedule over the new total; and
// a run killed at many random moments and resumed each time ends with the uninterrupted run's
// log.csv and log.json, timings aside.
#define _DEFAULT_SOURCE
#include "check.h"
#include "cli_util.h"
#include "ncelab/jsonio.h"
#include "ncelab/safetensors.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TRAIN "train --data synth:4:16:300 --k 6 --batch 16 --threads 1 --seed 3"

static const char *bin(void) {
    const char *b = getenv("NCELAB_BIN");
    return b ? b : "./ncelab";
}

static long ckpt_epoch(const char *dir) {
    char p[600];
    snprintf(p, sizeof p, "%s/ckpt.safetensors", dir);
    StFile f;
    NcError e;
    long ep = -1;
    if (st_load(p, &f, &e) == NC_OK) {
        st_meta_long(&f, "epoch", &ep, &e);
        st_free(&f);
    }
    return ep;
}

/* log.csv without its timing columns (imgs_per_sec, seconds): what two runs must agree on */
static void csv_untimed(const char *dir, char *out, size_t cap) {
    char p[600], raw[16384];
    snprintf(p, sizeof p, "%s/log.csv", dir);
    cli_slurp(p, raw, sizeof raw);
    size_t n = 0;
    for (char *line = strtok(raw, "\n"); line && n < cap; line = strtok(NULL, "\n")) {
        int col = 0;
        for (char *c = line; *c; c++) {
            if (*c == ',') col++;
            if (col != 3 && col != 7 && n + 1 < cap) out[n++] = *c;
        }
        if (n + 1 < cap) out[n++] = '\n';
    }
    out[n] = '\0';
}

/* log.json's epochs with their timings (imgs_per_sec, seconds) removed, printed compactly */
static char *json_untimed(const char *dir) {
    char p[600];
    snprintf(p, sizeof p, "%s/log.json", dir);
    cJSON *a;
    NcError e;
    if (json_load(p, &a, &e)) return NULL;
    cJSON *x;
    cJSON_ArrayForEach(x, a) {
        cJSON_DeleteItemFromObjectCaseSensitive(x, "imgs_per_sec");
        cJSON_DeleteItemFromObjectCaseSensitive(x, "seconds");
    }
    char *s = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return s;
}

/* takes dir's lock as ncelab does (flock on dir/.ncelab.lock holding the pid) */
static int hold_lock(const char *dir) {
    char p[600], cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd) != 0) return -1;
    snprintf(p, sizeof p, "%s/.ncelab.lock", dir);
    int fd = open(p, O_RDWR | O_CREAT, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) return -1;
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || write(fd, pid, (size_t)n) != n) return -1;
    return fd;
}

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

int main(void) {
    cli_setup("cli_rundir");
    char a[400], b[400], d[400], cmd[2000], want[64];
    snprintf(a, sizeof a, "%s/a", cli_dir);
    snprintf(b, sizeof b, "%s/b", cli_dir);
    snprintf(want, sizeof want, "pid %ld", (long)getpid());

    /* another process holds the directory: train, sweep and a sweep's run are refused at once */
    snprintf(d, sizeof d, "%s/held", cli_dir);
    int fd = hold_lock(d);
    CHECK(fd >= 0, "took the lock of %s", d);
    int rc = cli_run(TRAIN " --epochs 1 --out %s", d);
    CHECK(rc == 2 && strstr(cli_err, want) && strstr(cli_err, d), "train into a held directory: exit %d naming the holder: %.*s",
          rc, (int)strcspn(cli_err, "\n"), cli_err);
    rc = cli_run("sweep --data synth:4:16:300 --k 1 --batch 16 --out %s", d);
    CHECK(rc == 2 && strstr(cli_err, want), "sweep into a held directory: exit %d: %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    close(fd);
    snprintf(d, sizeof d, "%s/sw/runs/k1_seed0", cli_dir);
    fd = hold_lock(d);
    rc = cli_run("sweep --data synth:4:16:300 --k 1 --batch 16 --out %s/sw", cli_dir);
    CHECK(fd >= 0 && rc == 2 && strstr(cli_err, want) && strstr(cli_err, "k1_seed0"),
          "a sweep whose run directory is held: exit %d naming the run and the holder: %.*s", rc, (int)strcspn(cli_err, "\n"),
          cli_err);
    close(fd);

    /* two trains into one directory: the second is refused while the first runs, which finishes */
    snprintf(cmd, sizeof cmd, "%s " TRAIN " --epochs 12 --out %s >%s/first.log 2>&1 & echo $! > %s/first.pid", bin(), a,
             cli_dir, cli_dir);
    CHECK(system(cmd) == 0, "started a run in the background");
    char lockp[600], pidtxt[64] = "", first[64] = "";
    snprintf(lockp, sizeof lockp, "%s/.ncelab.lock", a);
    for (int i = 0; i < 200 && !pidtxt[0]; i++) {
        sleep_s(0.05);
        cli_slurp(lockp, pidtxt, sizeof pidtxt);
    }
    snprintf(cmd, sizeof cmd, "%s/first.pid", cli_dir);
    cli_slurp(cmd, first, sizeof first);
    first[strcspn(first, "\n")] = pidtxt[strcspn(pidtxt, "\n")] = '\0';
    rc = cli_run(TRAIN " --epochs 12 --out %s", a);
    char holder[80];
    snprintf(holder, sizeof holder, "pid %s", first);
    CHECK(rc == 2 && strstr(cli_err, holder) && strcmp(pidtxt, first) == 0,
          "a second train into a running one's directory: exit %d naming pid %s: %.*s", rc, first, (int)strcspn(cli_err, "\n"),
          cli_err);
    snprintf(cmd, sizeof cmd, "while kill -0 %s 2>/dev/null; do sleep 0.1; done", first);
    CHECK(system(cmd) == 0 && ckpt_epoch(a) == 12, "the first run finished its 12 epochs (%ld)", ckpt_epoch(a));

    /* a directory with a checkpoint: refused without --resume or --force, nothing changed */
    char ck[600], *before = NULL, *after = NULL;
    size_t nb = 0, na = 0;
    NcError err;
    snprintf(ck, sizeof ck, "%s/ckpt.safetensors", a);
    nc_read_file(ck, &before, &nb, &err);
    rc = cli_run(TRAIN " --epochs 12 --out %s", a);
    nc_read_file(ck, &after, &na, &err);
    CHECK(rc == 2 && strstr(cli_err, "already there") && strstr(cli_err, "--force") && nb == na && before && after &&
              memcmp(before, after, nb) == 0,
          "train into a directory with a checkpoint: exit %d, checkpoint unchanged: %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    free(after);
    rc = cli_run(TRAIN " --epochs 12 --out %s --resume --force", a);
    CHECK(rc == 2 && strstr(cli_err, "--force"), "--resume with --force: exit %d", rc);
    rc = cli_run("train --data synth:4:16:300 --k 5 --batch 16 --threads 1 --seed 3 --epochs 12 --lr 0.01 --out %s --resume", a);
    nc_read_file(ck, &after, &na, &err);
    CHECK(rc == 2 && strstr(cli_err, "k: 6 in the checkpoint, 5 given") && strstr(cli_err, "lr: ") && !strstr(cli_err, "epochs") &&
              nb == na && memcmp(before, after, nb) == 0,
          "a refused resume names the fields that differ: %.*s", (int)strcspn(cli_err, "\n"), cli_err);
    free(after);
    free(before);

    /* a longer --epochs on resume: the schedule over the new total, as a run of that length */
    char c[400];
    snprintf(c, sizeof c, "%s/c", cli_dir);
    rc = cli_run(TRAIN " --epochs 4 --out %s", b);
    rc |= cli_run(TRAIN " --epochs 2 --out %s", c);
    rc |= cli_run(TRAIN " --epochs 4 --out %s --resume", c);
    cJSON *lb = NULL, *lc = NULL;
    char p[600];
    snprintf(p, sizeof p, "%s/log.json", b);
    json_load(p, &lb, &err);
    snprintf(p, sizeof p, "%s/log.json", c);
    json_load(p, &lc, &err);
    double lr_b[4] = {0}, lr_c[4] = {-1};
    for (int i = 0; i < 4; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(lb, i), "lr");
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(lc, i), "lr");
        lr_b[i] = x ? x->valuedouble : NAN;
        lr_c[i] = y ? y->valuedouble : NAN;
    }
    CHECK(rc == 0 && cJSON_GetArraySize(lc) == 4 && lr_c[2] == lr_b[2] && lr_c[3] == lr_b[3] && lr_c[1] != lr_b[1],
          "2 epochs, then --resume --epochs 4: epochs 3-4 follow the 4-epoch schedule (lr %.4g %.4g as %.4g %.4g), epoch 2 "
          "the 2-epoch one (%.4g, not %.4g)", lr_c[2], lr_c[3], lr_b[2], lr_b[3], lr_c[1], lr_b[1]);
    cJSON_Delete(lb);
    cJSON_Delete(lc);

    /* killed at many random moments, resumed after each: the logs end as the uninterrupted run's */
    char k[400];
    snprintf(k, sizeof k, "%s/killed", cli_dir);
    unsigned seed = 12345;
    int kills = 0, tries = 0, torn = 0;
    while (ckpt_epoch(k) < 12 && tries++ < 60) {
        int resume = ckpt_epoch(k) >= 0;
        snprintf(cmd, sizeof cmd, "%s " TRAIN " --epochs 12 --out %s %s >/dev/null 2>&1 & echo $! > %s/k.pid", bin(), k,
                 resume ? "--resume" : "", cli_dir);
        if (system(cmd) != 0) break;
        /* once the run has written a checkpoint beyond the last one (the first start: at once),
           a random moment within about an epoch: mid-epoch, or between checkpoint and logs */
        long prev = ckpt_epoch(k);
        for (int w = 0; tries > 1 && w < 6000 && ckpt_epoch(k) <= prev; w++) sleep_s(0.01);
        seed = seed * 1103515245u + 12345u;
        sleep_s(0.15 * ((seed >> 8) % 1000) / 1000.0);
        snprintf(cmd, sizeof cmd, "kill -9 $(cat %s/k.pid) 2>/dev/null", cli_dir);
        kills += system(cmd) == 0;
        snprintf(cmd, sizeof cmd, "while kill -0 $(cat %s/k.pid) 2>/dev/null; do sleep 0.02; done", cli_dir);
        if (system(cmd) != 0) break;
        /* right after a kill the logs hold no epoch the checkpoint does not */
        char *j = json_untimed(k);
        cJSON *arr = j ? cJSON_Parse(j) : NULL;
        long ep = ckpt_epoch(k);
        torn += arr && cJSON_GetArraySize(arr) > (ep > 0 ? ep : 0);
        cJSON_Delete(arr);
        free(j);
    }
    if (ckpt_epoch(k) < 12) cli_run(TRAIN " --epochs 12 --out %s --resume", k);
    printf("killed %d times in %d starts\n", kills, tries);
    char ca[8192], cb[8192];
    csv_untimed(a, ca, sizeof ca);
    csv_untimed(k, cb, sizeof cb);
    char *ja = json_untimed(a), *jb = json_untimed(k);
    CHECK(kills >= 5 && ckpt_epoch(k) == 12 && torn == 0,
          "%d kills at random moments; the logs never held an epoch ahead of the checkpoint", kills);
    CHECK(strcmp(ca, cb) == 0 && strlen(ca) > 100, "log.csv equals the uninterrupted run's but for the timings:\n%s---\n%s", ca, cb);
    CHECK(ja && jb && strcmp(ja, jb) == 0, "log.json equals the uninterrupted run's but for the timings");
    free(ja);
    free(jb);
    return check_done();
}
