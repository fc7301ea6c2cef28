// test_cli_train.c -- ncelab train and eval end to end on synthetic data: logs, checkpoints that
// numpy reads, a run killed mid-epoch and resumed ending with the same weights as an
// uninterrupted one, refusals that overwrite nothing, and the eval JSON contract.
#define _DEFAULT_SOURCE
#include "check.h"
#include "cli_util.h"
#include "ncelab/ckpt.h"
#include "ncelab/data.h"
#include "ncelab/jsonio.h"
#include "ncelab/safetensors.h"

#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TRAIN "train --data synth:4:16:300 --k 6 --batch 16 --threads 2 --seed 3"

static int file_bytes(const char *path, char **buf, size_t *n) {
    NcError e;
    return nc_read_file(path, buf, n, &e);
}

static int same_params(const char *a, const char *b, double *worst) {
    StFile fa, fb;
    NcError e;
    *worst = INFINITY;
    if (st_load(a, &fa, &e) || st_load(b, &fb, &e)) return 0;
    *worst = 0;
    int ok = fa.ntensors == fb.ntensors;
    for (int i = 0; ok && i < fa.ntensors; i++) {
        const StTensor *t = &fa.tensors[i], *u = st_find(&fb, t->name);
        if (!u || u->nbytes != t->nbytes) { ok = 0; break; }
        if (t->dtype == ST_F32)
            for (size_t j = 0; j < t->numel; j++)
                *worst = fmax(*worst, fabs(((const float *)t->data)[j] - ((const float *)u->data)[j]));
    }
    st_free(&fa);
    st_free(&fb);
    return ok;
}

/* rewrite_meta: a copy of checkpoint src at dst with metadata key set to value (NULL: removed) */
static int rewrite_meta(const char *src, const char *dst, const char *key, const char *value) {
    StFile f;
    NcError e;
    if (st_load(src, &f, &e)) return 0;
    StWriter *w = st_writer_new();
    int rc = 0;
    for (int i = 0; i < f.ntensors && !rc; i++) {
        const StTensor *t = &f.tensors[i];
        rc = st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data, &e);
    }
    for (int i = 0; i < f.nmeta && !rc; i++)
        if (strcmp(f.meta_keys[i], key) != 0) rc = st_writer_meta(w, f.meta_keys[i], f.meta_vals[i], &e);
    if (!rc && value) rc = st_writer_meta(w, key, value, &e);
    if (!rc) rc = st_writer_save(w, dst, &e);
    st_writer_free(w);
    st_free(&f);
    return rc == 0;
}

/* same_file: 1 when both files exist and hold the same bytes */
static int same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    int same = file_bytes(a, &x, &nx) == 0 && file_bytes(b, &y, &ny) == 0 && nx == ny && memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return same;
}

/* The checkpoint's description of its encoder: the normalisation is the training subset's (not
   the full split's), and eval uses the stored one (checkpoints without one: recomputed). */
static void check_encoder_meta(const char *ckpt) {
    NcError err;
    StFile f;
    if (st_load(ckpt, &f, &err)) { CHECK(0, "%s: %s", ckpt, err.msg); return; }
    const char *m = st_meta(&f, "model"), *is = st_meta(&f, "input_shape"), *fd = st_meta(&f, "feature_dim"),
               *hd = st_meta(&f, "head_dim"), *ds = st_meta(&f, "data"), *cn = st_meta(&f, "class_names");
    CHECK(m && strcmp(m, "convnet") == 0 && is && strcmp(is, "[3,16,16]") == 0 && fd && strcmp(fd, "128") == 0 &&
          hd && strcmp(hd, "128") == 0 && ds && strcmp(ds, "synth:4:16:300") == 0,
          "metadata: model %s, input_shape %s, feature_dim %s, head_dim %s, data %s", m, is, fd, hd, ds);
    CHECK(cn && strcmp(cn, "[\"0\",\"1\",\"2\",\"3\"]") == 0, "metadata: class_names %s", cn);
    st_free(&f);
    Dataset sub, full;
    DataOpts o = {.train_limit = 400, .seed = 0};
    float ms[3], ss[3], mf[3], sf[3], mc[3], sc[3];
    int found = 0;
    if (data_load("synth:4:16:300", &o, &sub, &err) || data_load("synth:4:16:300", NULL, &full, &err)) {
        CHECK(0, "synth data: %s", err.msg);
        return;
    }
    data_norm_stats(&sub, &sub.train, ms, ss);
    data_norm_stats(&full, &full.train, mf, sf);
    int rc = ckpt_read_norm(ckpt, 3, mc, sc, &found, &err);
    int same = 1, other = 0;
    for (int ch = 0; ch < 3; ch++) {
        same &= mc[ch] == ms[ch] && sc[ch] == ss[ch];
        other |= mf[ch] != ms[ch];
    }
    CHECK(rc == 0 && found && same && other,
          "metadata normalization = the statistics of the 400 training images (mean %.7f, subset %.7f, full split %.7f)",
          (double)mc[0], (double)ms[0], (double)mf[0]);
    data_free(&sub);
    data_free(&full);

    char old[600], bad[600], odd[600], a[700], b[700];
    snprintf(old, sizeof old, "%s/old.safetensors", cli_dir);
    snprintf(odd, sizeof odd, "%s/odd.safetensors", cli_dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", cli_dir);
    CHECK(rewrite_meta(ckpt, old, "normalization", NULL) &&
          rewrite_meta(ckpt, odd, "normalization", "{\"mean\":[0.5,0.5,0.5],\"std\":[0.25,0.25,0.25]}") &&
          rewrite_meta(ckpt, bad, "normalization", "{\"mean\":[0.5],\"std\":[0.25]}"),
          "checkpoint copies with other metadata");
    rc = cli_run("eval --checkpoint %s --embeddings %s/new", ckpt, cli_dir);
    int rc2 = cli_run("eval --checkpoint %s --embeddings %s/old", old, cli_dir);
    int rc3 = cli_run("eval --checkpoint %s --embeddings %s/odd", odd, cli_dir);
    snprintf(a, sizeof a, "%s/new_test_head.npy", cli_dir);
    snprintf(b, sizeof b, "%s/old_test_head.npy", cli_dir);
    CHECK(rc == 0 && rc2 == 0 && same_file(a, b),
          "eval of a checkpoint without stored normalisation recomputes it: the same embeddings (exit %d, %d)", rc, rc2);
    snprintf(b, sizeof b, "%s/odd_test_head.npy", cli_dir);
    CHECK(rc3 == 0 && !same_file(a, b), "eval uses the stored normalisation: another one gives other embeddings");
    rc = cli_run("eval --checkpoint %s", bad);
    CHECK(rc == 1 && strstr(cli_err, "bad.safetensors") && strstr(cli_err, "normalization"),
          "a normalisation of the wrong length: exit %d naming the file and the key: %.*s", rc,
          (int)strcspn(cli_err, "\n"), cli_err);
}

/* the spellings of other tools, the nearest option suggested, ncelab help CMD */
static void check_habits(void) {
    char d[400], *first;
    snprintf(d, sizeof d, "%s/alias", cli_dir);
    int rc = cli_run("train --data synth:4:16:60 --k 3 --batch-size 8 --temperature 0.2 --weight-decay 0 "
                     "--learning-rate 0.05 --num-epochs 1 --out %s", d);
    char ck[500];
    snprintf(ck, sizeof ck, "%s/ckpt.safetensors", d);
    TrainConfig c;
    NcError err;
    int ok = rc == 0 && ckpt_read_config(ck, &c, &err) == NC_OK;
    CHECK(ok && c.batch == 8 && c.temp == 0.2f && c.wd == 0 && c.lr == 0.05f && c.epochs == 1,
          "--batch-size, --temperature, --weight-decay, --learning-rate, --num-epochs are --batch, --temp, --wd, --lr, "
          "--epochs (exit %d)", rc);
    rc = cli_run("train --data synth:4:16:60 --k 3 --temprature 0.2 --out %s", d);
    CHECK(rc == 2 && strstr(cli_err, "--temprature: unknown option; did you mean --temperature?"),
          "a misspelt option: exit 2, the nearest suggested (%d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    rc = cli_run("train --data synth:4:16:60 --k 3 --btach 8 --out %s", d);
    CHECK(rc == 2 && strstr(cli_err, "did you mean --batch?"), "--btach: did you mean --batch? (%d)", rc);
    rc = cli_run("train --data synth:4:16:60 --k 3 --zzzzzzzz 8 --out %s", d);
    CHECK(rc == 2 && strstr(cli_err, "unknown option (see --help)"), "nothing near: no suggestion (%d)", rc);
    cli_run("train --help");
    first = strdup(cli_out);
    rc = cli_run("help train");
    CHECK(rc == 0 && strcmp(first, cli_out) == 0 && strstr(cli_out, "aliases: --temperature = --temp"),
          "ncelab help train prints what train --help prints, aliases included (exit %d)", rc);
    free(first);
}

/* steps.csv's rows of one epoch: their count, mean loss and collision rate, the last lr; the
   steps 1.. in order (*in_order) */
static int steps_of_epoch(const char *csv, int epoch, double *loss, double *coll, double *lr, int *in_order) {
    int n = 0;
    long want = 1, step;
    *loss = *coll = *lr = 0;
    *in_order = 1;
    const char *p = strchr(csv, '\n');
    while (p && p[1]) {
        int ep;
        double l, r, c;
        if (sscanf(p + 1, "%ld,%d,%lf,%lf,%lf", &step, &ep, &l, &r, &c) != 5) { *in_order = 0; break; }
        *in_order &= step == want++;
        if (ep == epoch) { n++; *loss += l; *coll += c; *lr = r; }
        p = strchr(p + 1, '\n');
    }
    if (n) { *loss /= n; *coll /= n; }
    return n;
}

/* --log-every: steps.csv agrees with log.csv and keeps to the checkpoint on resume; progress
   lines when stderr is a file; --config repeats a run from its checkpoint or a JSON object */
static void check_steps_config(void) {
    char d[400], p[500], *csv = NULL, *log = NULL;
    size_t n;
    snprintf(d, sizeof d, "%s/steps", cli_dir);
    setenv("NCELAB_PROGRESS_EVERY", "0", 1);
    int rc = cli_run(TRAIN " --epochs 2 --lr 0.01 --temperature 0.3 --log-every 1 --out %s", d);
    unsetenv("NCELAB_PROGRESS_EVERY");
    CHECK(rc == 0 && strstr(cli_err, "epoch 1/2: ") && strstr(cli_err, "ETA") && strstr(cli_err, "(100%)"),
          "stderr not a terminal: progress as lines ('epoch 1/2: N/75 (P%%) ... ETA'), the last at 100%% (exit %d): %.80s",
          rc, cli_err);
    snprintf(p, sizeof p, "%s/steps.csv", d);
    int have = file_bytes(p, &csv, &n) == 0;
    snprintf(p, sizeof p, "%s/log.csv", d);
    have = have && file_bytes(p, &log, &n) == 0;
    double loss, coll, lr, eloss = 0, elr = 0, ecoll = 0;
    int in_order = 0, rows = have ? steps_of_epoch(csv, 1, &loss, &coll, &lr, &in_order) : 0;
    const char *l1 = log ? strchr(log, '\n') : NULL;
    if (l1) sscanf(l1 + 1, "1,%lf,%lf,%*f,%lf", &eloss, &elr, &ecoll);
    CHECK(have && strncmp(csv, "step,epoch,loss,lr,collision_rate,any_collision,coverage,queue_age,seconds\n", 75) == 0 &&
              rows == 75 && in_order && fabs(loss - eloss) < 2e-6 && fabs(lr - elr) < 1e-6 * elr && fabs(coll - ecoll) < 1e-5,
          "--log-every 1: steps.csv has epoch 1's 75 steps in order; their mean loss %.6f and collision rate %.5f are "
          "log.csv's %.6f and %.5f, the last lr %.6g is its %.6g", loss, coll, eloss, ecoll, lr, elr);
    free(csv);
    free(log);
    /* a run killed after its checkpoint left rows beyond it, and half a line: resume drops them */
    snprintf(p, sizeof p, "%s/steps.csv", d);
    FILE *f = fopen(p, "a");
    if (f) { fputs("151,3,9.9,0.1,0,0,0,,1\n152,3,9.", f); fclose(f); }
    rc = cli_run(TRAIN " --epochs 3 --lr 0.01 --temperature 0.3 --log-every 1 --resume --out %s", d);
    csv = NULL;
    have = file_bytes(p, &csv, &n) == 0;
    rows = have ? steps_of_epoch(csv, 3, &loss, &coll, &lr, &in_order) : 0;
    CHECK(rc == 0 && rows == 75 && in_order && loss < 9 && !strstr(csv, "9.9,"),
          "--resume: steps.csv keeps the checkpoint's 150 steps, drops a killed run's later rows, and goes on with "
          "epoch 3's 75 (exit %d, %d rows)", rc, rows);
    free(csv);
    setenv("NCELAB_PROGRESS_EVERY", "0", 1);
    rc = cli_run("eval --checkpoint %s/ckpt.safetensors", d);
    unsetenv("NCELAB_PROGRESS_EVERY");
    CHECK(rc == 0 && strstr(cli_err, "eval: embedding: 1200/1200 (100%)") && strstr(cli_err, "eval: kNN: ") &&
              strstr(cli_err, "eval: linear probe: 550/550 (100%)"),
          "eval's progress: the embeddings, kNN and the linear probe (exit %d): %.100s", rc, cli_err);
    rc = cli_run("eval --checkpoint %s/ckpt.safetensors", d);
    CHECK(rc == 0 && cli_err[0] == '\0', "... and a step under 10 s writes no line (stderr: %.80s)", cli_err);
    rc = cli_run(TRAIN " --epochs 4 --log-every 0 --resume --out %s", d);
    CHECK(rc == 2 && strstr(cli_err, "--log-every"), "--log-every 0: exit 2 (%d)", rc);

    /* --config: the checkpoint's configuration, the options given overriding it */
    char c2[400], ck[500];
    TrainConfig a, b;
    NcError err;
    snprintf(ck, sizeof ck, "%s/ckpt.safetensors", d);
    snprintf(c2, sizeof c2, "%s/again", cli_dir);
    rc = cli_run("train --config %s --epochs 1 --k 5 --out %s", ck, c2);
    snprintf(p, sizeof p, "%s/ckpt.safetensors", c2);
    int ok = rc == 0 && ckpt_read_config(ck, &a, &err) == NC_OK && ckpt_read_config(p, &b, &err) == NC_OK;
    CHECK(ok && b.k == 5 && b.epochs == 1 && b.lr == 0.01f && b.temp == 0.3f && b.seed == 3 && b.batch == 16 &&
              strcmp(b.data, a.data) == 0 && b.log_every == 1,
          "train --config CKPT --epochs 1 --k 5: the checkpoint's data, batch, lr, T, seed and log, with k and epochs "
          "as given (exit %d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    b.k = a.k;
    CHECK(ok && train_config_same(&a, &b), "... and every other field of the configuration is the checkpoint's");
    const char *js = cli_file("cfg.json", "{\"config\": {\"data\": \"synth:4:16:60\", \"k\": 3, \"batch\": 8, "
                                          "\"lr\": 0.05, \"queue\": 0, \"exclude_same_class\": 1}}");
    snprintf(c2, sizeof c2, "%s/fromjson", cli_dir);
    rc = cli_run("train --config %s --out %s", js, c2);
    snprintf(p, sizeof p, "%s/ckpt.safetensors", c2);
    CHECK(rc == 0 && ckpt_read_config(p, &b, &err) == NC_OK && b.batch == 8 && b.k == 3 && b.lr == 0.05f &&
              b.queue == 0 && b.exclude_same_class == 1 && b.temp == 0.5f,
          "train --config FILE.json: a JSON object's fields, the defaults for the rest (exit %d): %.*s", rc,
          (int)strcspn(cli_err, "\n"), cli_err);
    snprintf(p, sizeof p, "%s/log.csv", d);
    rc = cli_run("train --config %s --out %s/x", p, cli_dir);
    CHECK(rc == 1 && strstr(cli_err, "log.csv") && strstr(cli_err, "neither a JSON object nor a checkpoint"),
          "--config of a file without a configuration: exit 1 naming it (%d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    rc = cli_run("train --config %s/none.json --out %s/x", cli_dir, cli_dir);
    CHECK(rc == 1 && strstr(cli_err, "none.json"), "--config of a missing file: exit 1 naming it (%d)", rc);
}

int main(void) {
    cli_setup("cli_train");
    check_habits();
    check_steps_config();
    char a[400], b[400], p[500];
    snprintf(a, sizeof a, "%s/a", cli_dir);
    snprintf(b, sizeof b, "%s/b", cli_dir);
    /* an uninterrupted run of 3 epochs */
    int rc = cli_run(TRAIN " --epochs 3 --out %s", a);
    CHECK(rc == 0 && strstr(cli_out, "epoch   3"), "train 3 epochs (exit %d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    snprintf(p, sizeof p, "%s/log.csv", a);
    char *csv;
    size_t n;
    int lines = 0;
    if (file_bytes(p, &csv, &n) == 0) { for (size_t i = 0; i < n; i++) lines += csv[i] == '\n'; free(csv); }
    CHECK(lines == 4, "log.csv: a header and 3 epochs (%d lines)", lines);
    cJSON *log;
    NcError err;
    snprintf(p, sizeof p, "%s/log.json", a);
    CHECK(json_load(p, &log, &err) == NC_OK && cJSON_GetArraySize(log) == 3 &&
              cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(log, 2), "collision_rate"),
          "log.json: 3 epochs with loss, lr, images/s, collision rate");
    double l1 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(log, 0), "loss")->valuedouble;
    double l3 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(log, 2), "loss")->valuedouble;
    CHECK(l3 < l1, "the loss falls: %.4f -> %.4f", l1, l3);
    cJSON_Delete(log);
    /* the configuration as the user would write it: lr 0.06 x 16 / 256 = 0.00375, not its float's 0.0037499999 */
    StFile cf;
    snprintf(p, sizeof p, "%s/ckpt.safetensors", a);
    const char *cj = st_load(p, &cf, &err) == NC_OK ? st_meta(&cf, "config") : NULL;
    CHECK(cj && strstr(cj, "\"lr\":0.00375,") && strstr(cj, "\"wd\":0.0005,") && strstr(cj, "\"temp\":0.5,"),
          "the checkpoint's configuration keeps the values as given (lr 0.00375, wd 0.0005): %.120s", cj ? strstr(cj, "\"lr\"") : "");
    if (cj) st_free(&cf);

    /* killed mid-run after its first checkpoint, then resumed */
    snprintf(p, sizeof p, "%s/ckpt.safetensors", b);
    char cmd[4096];
    const char *bin = getenv("NCELAB_BIN");
    snprintf(cmd, sizeof cmd, "%s " TRAIN " --epochs 3 --out %s >/dev/null 2>&1 & echo $! > %s/pid", bin ? bin : "./ncelab", b, cli_dir);
    CHECK(system(cmd) == 0, "started a run in the background");
    struct stat stt;
    int waited = 0;
    while (stat(p, &stt) != 0 && waited < 6000) { struct timespec ts = {0, 100000000}; nanosleep(&ts, NULL); waited++; }
    snprintf(cmd, sizeof cmd, "kill -9 $(cat %s/pid) 2>/dev/null; sleep 0.2", cli_dir);
    if (system(cmd) != 0) printf("(the run had already finished)\n");
    StFile mid;
    long ep = -1;
    if (st_load(p, &mid, &err) == NC_OK) { st_meta_long(&mid, "epoch", &ep, &err); st_free(&mid); }
    CHECK(ep >= 1 && ep < 3, "the run was killed after %ld of 3 epochs, mid-run", ep);
    rc = cli_run(TRAIN " --epochs 3 --out %s --resume", b);
    CHECK(rc == 0, "--resume continues from the last checkpoint (exit %d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    char pa[500], pb[500];
    snprintf(pa, sizeof pa, "%s/ckpt.safetensors", a);
    snprintf(pb, sizeof pb, "%s/ckpt.safetensors", b);
    double worst;
    CHECK(same_params(pa, pb, &worst) && worst == 0.0,
          "killed and resumed: the same weights, statistics and optimiser state as the uninterrupted run (max diff %.1e)", worst);

    /* numpy reads the checkpoint following the safetensors layout */
    if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0) {
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c \"import json,struct,numpy as np,sys; f=open('%s','rb').read(); n=struct.unpack('<Q',f[:8])[0]; "
                 "h=json.loads(f[8:8+n]); t=h['conv1.weight']; b,e=t['data_offsets']; "
                 "w=np.frombuffer(f[8+n+b:8+n+e],dtype='<f4').reshape(t['shape']); "
                 "assert w.shape==(32,3,3,3) and np.isfinite(w).all() and json.loads(h['__metadata__']['config'])['k']==6; print('ok')\" "
                 ">%s/np.txt 2>&1", pa, cli_dir);
        CHECK(system(cmd) == 0, "numpy reads conv1.weight (32, 3, 3, 3) and the config from the checkpoint");
    } else {
        printf("note: /usr/bin/python3 with numpy not found: the numpy check is skipped\n");
    }

    /* refusals: another configuration, a corrupt checkpoint, an unwritable directory */
    char *before, *after;
    size_t nb, na;
    file_bytes(pa, &before, &nb);
    rc = cli_run("train --data synth:4:16:60 --k 5 --batch 16 --threads 2 --seed 3 --epochs 4 --out %s --resume", a);
    file_bytes(pa, &after, &na);
    CHECK(rc == 2 && strstr(cli_err, "another configuration") && nb == na && memcmp(before, after, nb) == 0,
          "resume with another k is refused and the checkpoint is unchanged: %.*s", (int)strcspn(cli_err, "\n"), cli_err);
    free(after);
    snprintf(p, sizeof p, "%s/c", cli_dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && head -c %zu %s > %s/ckpt.safetensors", p, nb / 2, pa, p);
    CHECK(system(cmd) == 0, "made a truncated checkpoint");
    rc = cli_run(TRAIN " --epochs 3 --out %s --resume", p);
    CHECK(rc == 1 && strstr(cli_err, "ckpt.safetensors"), "a truncated checkpoint: exit %d: %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    rc = cli_run("eval --checkpoint %s/ckpt.safetensors", p);
    CHECK(rc == 1 && strstr(cli_err, "ckpt.safetensors"), "eval of a truncated checkpoint: exit %d", rc);
    free(before);
    rc = cli_run(TRAIN " --epochs 1 --out /proc/ncelab-no/x");
    CHECK(rc == 1 && strstr(cli_err, "/proc/ncelab-no"), "an unwritable output directory fails first: %.*s", (int)strcspn(cli_err, "\n"), cli_err);
    rc = cli_run("train --data synth:4:16:60 --k 40 --batch 16 --queue 30 --out %s/d", cli_dir);
    CHECK(rc == 2 && strstr(cli_err, "--queue: 30"), "a queue smaller than k: exit 2 naming --queue (%d): %.*s", rc,
          (int)strcspn(cli_err, "\n"), cli_err);
    /* k beyond the batch: a queue of k embeddings, said in one line; it trains from the first step, and a
       run stopped in epoch 2 and resumed ends with the bits of an uninterrupted one (the queue is in the
       checkpoint) */
    char q1[400], q2[400], pq1[500], pq2[500];
    snprintf(q1, sizeof q1, "%s/q1", cli_dir);
    snprintf(q2, sizeof q2, "%s/q2", cli_dir);
    rc = cli_run("train --data synth:4:16:60 --k 40 --batch 16 --threads 2 --epochs 2 --out %s", q1);
    CHECK(rc == 0 && strstr(cli_out, "queue of 40 embeddings") && strstr(cli_out, "epoch   2"),
          "--k 40 with batch 16: a queue of 40, trained 2 epochs (exit %d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    /* staleness: Q = 40 slots and 16 pushes a step hold the positives of the last 2.5 steps; all 40
       slots are drawn (k = Q), so from step 3 on the mean age is (16 x 1 + 16 x 2 + 8 x 3) / 40 = 1.8 */
    cJSON *ql = NULL;
    double age = NAN;
    snprintf(p, sizeof p, "%s/log.json", q1);
    if (json_load(p, &ql, &err) == NC_OK)
        json_get_number(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ql, 1), "queue_age"), &age);
    cJSON_Delete(ql);
    CHECK(fabs(age - 1.8) < 1e-9, "log.json: the queue's negatives are 1.8 steps old in epoch 2 (%.6f)", age);
    setenv("NCELAB_FAULT_NAN_STEP", "20", 1);
    rc = cli_run("train --data synth:4:16:60 --k 40 --batch 16 --threads 2 --epochs 2 --out %s", q2);
    unsetenv("NCELAB_FAULT_NAN_STEP");
    int rc2 = rc == 3 ? cli_run("train --data synth:4:16:60 --k 40 --batch 16 --threads 2 --epochs 2 --out %s --resume", q2) : -1;
    snprintf(pq1, sizeof pq1, "%s/ckpt.safetensors", q1);
    snprintf(pq2, sizeof pq2, "%s/ckpt.safetensors", q2);
    char *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    int same = rc2 == 0 && file_bytes(pq1, &b1, &n1) == 0 && file_bytes(pq2, &b2, &n2) == 0;  /* sizes: the history holds timings */
    StFile f1, f2;
    int tensors_same = same && st_load(pq1, &f1, &err) == NC_OK;
    if (tensors_same && st_load(pq2, &f2, &err) == NC_OK) {
        const StTensor *e1 = st_find(&f1, "queue.emb"), *e2 = st_find(&f2, "queue.emb");
        tensors_same = e1 && e2 && e1->nbytes == e2->nbytes && memcmp(e1->data, e2->data, e1->nbytes) == 0;
        for (int i = 0; tensors_same && i < f1.ntensors; i++) {
            const StTensor *t = &f1.tensors[i], *u = st_find(&f2, t->name);
            tensors_same = u && u->nbytes == t->nbytes && memcmp(t->data, u->data, t->nbytes) == 0;
        }
        st_free(&f2);
    } else tensors_same = 0;
    if (same) st_free(&f1);
    CHECK(rc == 3 && tensors_same, "with a queue: stopped by a NaN in epoch 2 (exit %d), resumed (exit %d): every tensor, the queue's "
          "included, equals the uninterrupted run's", rc, rc2);
    free(b1);
    free(b2);
    rc = cli_run("train --data synth:4 --k 4 --model vgg --out %s/d", cli_dir);
    CHECK(rc == 2 && strstr(cli_err, "vgg"), "unknown model: %.*s", (int)strcspn(cli_err, "\n"), cli_err);

    /* a NaN loss in epoch 2 (injected at step 100 of 75 a epoch) stops the run naming the step and
       keeps the checkpoint of epoch 1 */
    snprintf(p, sizeof p, "%s/nan", cli_dir);
    setenv("NCELAB_FAULT_NAN_STEP", "100", 1);
    rc = cli_run(TRAIN " --epochs 3 --out %s", p);
    unsetenv("NCELAB_FAULT_NAN_STEP");
    CHECK(rc == 3 && strstr(cli_err, "epoch 2, step 25") && strstr(cli_err, "not finite"),
          "a NaN loss stops the run naming the epoch and step (exit %d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    char np_[600];
    snprintf(np_, sizeof np_, "%s/ckpt.safetensors", p);
    StFile nf;
    long nep = -1;
    if (st_load(np_, &nf, &err) == NC_OK) { st_meta_long(&nf, "epoch", &nep, &err); st_free(&nf); }
    CHECK(nep == 1, "... and keeps the last good checkpoint, of epoch %ld", nep);

    /* the kNN monitor logs the test accuracy per epoch; --train-limit trains (and evaluates) on a subset */
    snprintf(p, sizeof p, "%s/m", cli_dir);
    rc = cli_run("train --data synth:4:16:300 --k 6 --batch 16 --threads 2 --epochs 2 --knn-monitor 200 --train-limit 400 --out %s", p);
    CHECK(rc == 0 && strstr(cli_out, "kNN "), "--knn-monitor 200 --train-limit 400 (exit %d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    cJSON *mlog;
    char mp[600];
    snprintf(mp, sizeof mp, "%s/log.json", p);
    double k1 = NAN, k2 = NAN;
    if (json_load(mp, &mlog, &err) == NC_OK) {
        const cJSON *v1 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(mlog, 0), "knn_acc");
        const cJSON *v2 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(mlog, 1), "knn_acc");
        if (cJSON_IsNumber(v1) && cJSON_IsNumber(v2)) { k1 = v1->valuedouble; k2 = v2->valuedouble; }
        cJSON_Delete(mlog);
    }
    CHECK(k1 > 0.5 && k2 > 0.5 && k2 <= 1, "log.json: kNN test accuracy after each epoch (%.3f, %.3f; 4 separable classes)", k1, k2);
    /* 400 images at batch 16: 25 steps an epoch */
    snprintf(mp, sizeof mp, "%s/ckpt.safetensors", p);
    rc = cli_run("eval --checkpoint %s --json %s/m.json", mp, cli_dir);
    snprintf(mp, sizeof mp, "%s/m.json", cli_dir);
    cJSON *mj = NULL;
    json_load(mp, &mj, &err);
    const cJSON *nt = cJSON_GetObjectItemCaseSensitive(mj, "train_images");
    CHECK(rc == 0 && cJSON_IsNumber(nt) && nt->valuedouble == 400, "eval uses the checkpoint's training subset (%g images)",
          cJSON_IsNumber(nt) ? nt->valuedouble : -1.0);
    cJSON_Delete(mj);
    snprintf(mp, sizeof mp, "%s/m/ckpt.safetensors", cli_dir);
    check_encoder_meta(mp);

    /* eval: the JSON contract and the embeddings for numpy */
    rc = cli_run("eval --checkpoint %s --json %s/eval.json --embeddings %s/emb", pa, cli_dir, cli_dir);
    cJSON *ev;
    snprintf(p, sizeof p, "%s/eval.json", cli_dir);
    CHECK(rc == 0 && json_load(p, &ev, &err) == NC_OK, "eval runs (exit %d)", rc);
    const char *layers[2] = {"features", "head"}, *keys[5] = {"mean_acc", "linear_acc", "knn_acc", "simplex_deviation", "within_class_ratio"};
    int have = 1;
    double acc = 0;
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < 5; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ev, layers[l]), keys[k]);
            have &= cJSON_IsNumber(v);
            if (l == 1 && k == 0 && v) acc = v->valuedouble;
        }
    CHECK(have, "eval JSON: features and head, each with the five metrics");
    CHECK(acc > 0.6, "the head's mean classifier beats chance (0.25) on 4 synthetic classes: %.3f", acc);
    cJSON_Delete(ev);
    if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0) {
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c \"import numpy as np; h=np.load('%s/emb_test_head.npy'); y=np.load('%s/emb_test_labels.npy'); "
                 "assert h.shape==(len(y),128) and abs(np.linalg.norm(h,axis=1)-1).max()<1e-4 and y.dtype==np.int32\"", cli_dir, cli_dir);
        CHECK(system(cmd) == 0, "numpy loads the .npy embeddings: unit rows, int32 labels");
    }
    return check_done();
}
