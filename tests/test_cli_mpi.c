// test_cli_mpi.c -- `mpirun -np P ncelab train | sweep | eval` end to end: the same numbers as one
// process (shared memory and TCP), the number of ranks recorded, refusals, a rank killed with
// SIGKILL and a dataset missing on one rank ending the job at once with the checkpoint intact, and
// a resume on another number of ranks. NCELAB_MPIEXEC is the launcher line (mpirun --oversubscribe).
#define _DEFAULT_SOURCE
#include "check.h"
#include "cli_util.h"
#include "ncelab/jsonio.h"
#include "ncelab/safetensors.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SET "--data synth:4:16:80 --batch 16 --threads 1 --seed 3"  /* 20 steps an epoch */
#define DATA SET " --k 6"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* the largest difference of the float tensors of two checkpoints, relative to a's largest value */
static double ckpt_diff(const char *a, const char *b) {
    StFile fa, fb;
    NcError e;
    if (st_load(a, &fa, &e)) return INFINITY;
    if (st_load(b, &fb, &e)) { st_free(&fa); return INFINITY; }
    double w = 0, scale = 0;
    for (int i = 0; i < fa.ntensors; i++) {
        const StTensor *t = &fa.tensors[i], *u = st_find(&fb, t->name);
        if (t->dtype != ST_F32 || strncmp(t->name, "optim.", 6) == 0) continue;
        if (!u || u->numel != t->numel) { w = INFINITY; break; }
        for (size_t j = 0; j < t->numel; j++) {
            double x = ((const float *)t->data)[j], y = ((const float *)u->data)[j];
            w = fmax(w, fabs(x - y));
            scale = fmax(scale, fabs(x));
        }
    }
    st_free(&fa);
    st_free(&fb);
    return w / (scale > 0 ? scale : 1);
}

/* the worst relative difference of the epochs' losses of two log.json files (INFINITY when their
   lengths differ); *ranks gets b's "ranks" */
static double log_diff(const char *dir_a, const char *dir_b, int *ranks) {
    char pa[1000], pb[1000];
    snprintf(pa, sizeof pa, "%s/log.json", dir_a);
    snprintf(pb, sizeof pb, "%s/log.json", dir_b);
    cJSON *a, *b;
    if (json_load(pa, &a, NULL)) return INFINITY;
    if (json_load(pb, &b, NULL)) { cJSON_Delete(a); return INFINITY; }
    double w = cJSON_GetArraySize(a) == cJSON_GetArraySize(b) && cJSON_GetArraySize(a) > 0 ? 0 : INFINITY;
    for (int i = 0; i < cJSON_GetArraySize(a) && isfinite(w); i++) {
        double x = NAN, y = NAN, r = 0;
        json_get_number(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(a, i), "loss"), &x);
        json_get_number(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(b, i), "loss"), &y);
        json_get_number(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(b, i), "ranks"), &r);
        w = fmax(w, isfinite(x) && isfinite(y) ? fabs(x - y) / fabs(x) : INFINITY);
        *ranks = (int)r;
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    return w;
}

/* the pid of the process whose environment says OMPI_COMM_WORLD_RANK=rank and whose command line
   holds `needle`, or -1 */
static pid_t find_rank(int rank, const char *needle) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    char want[64];
    snprintf(want, sizeof want, "OMPI_COMM_WORLD_RANK=%d", rank);
    pid_t found = -1;
    while (d && (e = readdir(d)) && found < 0) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0) continue;
        char p[64], buf[1 << 15];
        snprintf(p, sizeof p, "/proc/%d/cmdline", pid);
        FILE *f = fopen(p, "rb");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f) fclose(f);
        for (size_t i = 0; i < n; i++) if (!buf[i]) buf[i] = ' ';
        buf[n] = 0;
        if (!strstr(buf, needle) || strstr(buf, "mpirun") || strstr(buf, "orted")) continue;
        snprintf(p, sizeof p, "/proc/%d/environ", pid);
        f = fopen(p, "rb");
        n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f) fclose(f);
        buf[n] = 0;
        for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
            if (strcmp(buf + i, want) == 0) { found = pid; break; }
    }
    if (d) closedir(d);
    return found;
}

static int ckpt_epoch(const char *dir) {
    char p[400];
    snprintf(p, sizeof p, "%s/ckpt.safetensors", dir);
    StFile f;
    NcError e;
    long ep = -1;
    if (st_load(p, &f, &e)) return -1;
    if (st_meta_long(&f, "epoch", &ep, &e)) ep = -1;
    st_free(&f);
    return (int)ep;
}

int main(void) {
    if (!getenv("NCELAB_MPIEXEC")) {
        printf("note: NCELAB_MPIEXEC is not set (ncelab built without MPI, or no mpirun): the checks run as test_cli_mpi_np2\n");
        return 0;
    }
    cli_setup("cli_mpi");
    char one[400], two[400], tcp[400], p[1000], q[1000];
    snprintf(one, sizeof one, "%s/one", cli_dir);
    snprintf(two, sizeof two, "%s/two", cli_dir);
    snprintf(tcp, sizeof tcp, "%s/tcp", cli_dir);

    /* 1. two ranks (shared memory, then TCP) against one process */
    int rc = cli_run("train " DATA " --epochs 1 --out %s", one);
    CHECK(rc == 0, "one process trains 1 epoch (exit %d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    rc = cli_mpi_run(2, "", "train " DATA " --epochs 1 --out %s", two);
    CHECK(rc == 0 && strstr(cli_out, "epoch   1") && !strstr(strstr(cli_out, "epoch   1") + 1, "epoch   1"),
          "mpirun -np 2 ncelab train (exit %d), one line per epoch (rank 0 prints): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    int ranks = 0;
    double dl = log_diff(one, two, &ranks);
    snprintf(p, sizeof p, "%s/ckpt.safetensors", one);
    snprintf(q, sizeof q, "%s/ckpt.safetensors", two);
    double dw = ckpt_diff(p, q);
    CHECK(dl <= 1e-5 && ranks == 2, "2 ranks: the epochs' losses equal one process's (worst relative %.2g); log.json says ranks %d", dl, ranks);
    CHECK(dw <= 1e-4, "2 ranks: weights and batch-norm statistics equal one process's (worst %.2g of their scale)", dw);
    StFile f;
    NcError err;
    const char *cfg = NULL;
    int st;
    if (st_load(q, &f, &err) == NC_OK) cfg = st_meta(&f, "config");
    CHECK(cfg && strstr(cfg, "\"ranks\":2"), "the checkpoint's configuration records \"ranks\":2");
    if (cfg) st_free(&f);
    rc = cli_mpi_run(2, "--mca pml ob1 --mca btl tcp,self", "train " DATA " --epochs 1 --out %s", tcp);
    snprintf(p, sizeof p, "%s/ckpt.safetensors", tcp);
    dw = ckpt_diff(q, p);
    CHECK(rc == 0 && dw == 0, "over TCP (--mca btl tcp,self) the same bits as over shared memory (exit %d, worst %.2g)", rc, dw);

    /* 2. refusals: every rank would say it, rank 0's line is the one shown */
    rc = cli_mpi_run(3, "", "train " DATA " --epochs 1 --out %s/r3", cli_dir);
    CHECK(rc == 2 && strstr(cli_err, "--batch: 16") && strstr(cli_err, "3 ranks"),
          "--batch 16 on 3 ranks: exit 2 naming both numbers (exit %d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    rc = cli_mpi_run(4, "", "train --data synth:4:16:300 --k 1 --batch 2 --threads 1 --epochs 1 --out %s/r4", cli_dir);
    CHECK(rc == 2 && strstr(cli_err, "--batch"), "more ranks than anchors (--batch 2, 4 ranks): exit 2 (%d): %.*s", rc,
          (int)strcspn(cli_err, "\n"), cli_err);

    /* mismatched options cannot happen: rank 1 is started with --k 7, rank 0's --k 6 holds */
    const char *b0 = getenv("NCELAB_BIN");
    char mm[3000];
    snprintf(mm, sizeof mm, "%s -np 1 %s train " SET " --k 6 --epochs 1 --out %s/mm : -np 1 %s train " SET " --k 7 --epochs 1 "
             "--out %s/mm >%s/stdout.txt 2>%s/stderr.txt </dev/null", cli_mpiexec(), b0 ? b0 : "./ncelab", cli_dir,
             b0 ? b0 : "./ncelab", cli_dir, cli_dir, cli_dir);
    st = system(mm);
    snprintf(p, sizeof p, "%s/mm/ckpt.safetensors", cli_dir);
    snprintf(q, sizeof q, "%s/ckpt.safetensors", two);
    cfg = NULL;
    if (st_load(p, &f, &err) == NC_OK) cfg = st_meta(&f, "config");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0 && cfg && strstr(cfg, "\"k\":6,") && ckpt_diff(q, p) == 0,
          "rank 1 given --k 7, rank 0 --k 6: both train rank 0's run (k 6, the bits of the 2-rank run above)");
    if (cfg) st_free(&f);

    /* 3. a dataset missing on one rank: rank 1 starts in a directory without it */
    char d0[400], d1[400], line[2000];
    snprintf(d0, sizeof d0, "%s/wd0", cli_dir);
    snprintf(d1, sizeof d1, "%s/wd1", cli_dir);
    mkdir(d0, 0755);
    mkdir(d1, 0755);
    rc = cli_run("data convert synth:4:16:300 %s/d.pack", d0);
    (void)rc;
    const char *bin = getenv("NCELAB_BIN");
    snprintf(line, sizeof line,
             "packed:d.pack --k 6 --batch 16 --threads 1 --epochs 1 --out %s/missing", cli_dir);
    char args[6000];
    snprintf(args, sizeof args, "%s -np 1 -wdir %s %s train --data %s : -np 1 -wdir %s %s train --data %s >%s/stdout.txt 2>%s/stderr.txt",
             cli_mpiexec(), d0, bin ? bin : "./ncelab", line, d1, bin ? bin : "./ncelab", line, cli_dir, cli_dir);
    double t0 = now();
    st = system(args);
    double secs = now() - t0;
    rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    snprintf(p, sizeof p, "%s/stderr.txt", cli_dir);
    cli_slurp(p, cli_err, sizeof cli_err);
    CHECK(rc == 1 && strstr(cli_err, "rank 1 of 2") && strstr(cli_err, "d.pack") && secs < 30,
          "a dataset missing on rank 1 ends the job in %.1f s, exit %d, naming the rank and the file: %.*s", secs, rc,
          (int)strcspn(cli_err, "\n"), cli_err);

    /* 4. a rank killed with SIGKILL mid-run: the job ends at once, the last checkpoint is intact,
       and resumed on 2 ranks the run ends with the bits of an uninterrupted 2-rank run */
    char kd[400], ref[400];
    snprintf(kd, sizeof kd, "%s/killed", cli_dir);
    snprintf(ref, sizeof ref, "%s/ref", cli_dir);
    snprintf(args, sizeof args, "%s -np 2 %s train " DATA " --epochs 30 --out %s >%s/kill_out.txt 2>%s/kill_err.txt </dev/null",
             cli_mpiexec(), bin ? bin : "./ncelab", kd, cli_dir, cli_dir);
    pid_t child = fork();
    if (child == 0) {
        execl("/bin/sh", "sh", "-c", args, (char *)NULL);
        _exit(127);
    }
    pid_t victim = -1;
    for (int i = 0; i < 6000 && victim < 0; i++) {  /* up to 10 minutes on a loaded machine */
        if (ckpt_epoch(kd) >= 1) victim = find_rank(1, kd);
        if (victim < 0) usleep(20000);
    }
    if (victim > 0) kill(victim, SIGKILL);
    int killed_mid = victim > 0 && ckpt_epoch(kd) < 30;
    t0 = now();
    int status = 0, ended = 0;
    while (now() - t0 < 60 && !ended) {
        if (waitpid(child, &status, WNOHANG) == child) ended = 1;
        else usleep(50000);
    }
    secs = now() - t0;
    if (!ended) { kill(child, SIGKILL); waitpid(child, &status, 0); }
    snprintf(p, sizeof p, "%s/kill_err.txt", cli_dir);
    cli_slurp(p, cli_err, sizeof cli_err);
    int ep = ckpt_epoch(kd);
    CHECK(killed_mid && ended && secs < 15 && WIFEXITED(status) && WEXITSTATUS(status) != 0 && strstr(cli_err, "rank 1"),
          "rank 1 killed with SIGKILL mid-run (pid %d): mpirun ended %.1f s later with exit %d naming rank 1", (int)victim, secs,
          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    CHECK(ep >= 1 && ep < 30, "the last checkpoint is intact: epoch %d of 30", ep);
    rc = cli_mpi_run(2, "", "train " DATA " --epochs 30 --out %s --resume", kd);
    int rc2 = cli_mpi_run(2, "", "train " DATA " --epochs 30 --out %s", ref);
    snprintf(p, sizeof p, "%s/ckpt.safetensors", kd);
    snprintf(q, sizeof q, "%s/ckpt.safetensors", ref);
    dw = ckpt_diff(q, p);
    CHECK(rc == 0 && rc2 == 0 && dw == 0, "resumed on 2 ranks: bit-identical to an uninterrupted 2-rank run (worst %.2g; exit %d, %d)",
          dw, rc, rc2);

    /* a run resumes on another number of ranks: 2 ranks stopped by a NaN in epoch 2 (the epoch-1
       checkpoint kept), resumed by one process, against one process and two ranks throughout. The
       replicas add their gradients and batch-norm sums in another order than one process does, and
       SGD can grow such rounding: in one such pair of runs a near-tie in a max pool flipped and the
       two references ended 1.6e-3 of the weights' scale apart. A resumed run continues one of
       them to 1e-4 (the one whose arithmetic its first epoch shares); a lost optimiser state, data
       order or random stream would move it away from both. */
    char sw[400], sref[400], sref2[400];
    snprintf(sw, sizeof sw, "%s/switch", cli_dir);
    snprintf(sref, sizeof sref, "%s/switch_ref", cli_dir);
    snprintf(sref2, sizeof sref2, "%s/switch_ref2", cli_dir);
    rc = cli_mpi_run(2, "-x NCELAB_FAULT_NAN_STEP=25", "train " DATA " --epochs 2 --out %s", sw);
    CHECK(rc == 3 && ckpt_epoch(sw) == 1, "2 ranks stopped by a NaN loss in epoch 2 (exit %d), the epoch-1 checkpoint kept", rc);
    rc = cli_run("train " DATA " --epochs 2 --out %s --resume", sw);
    rc2 = cli_run("train " DATA " --epochs 2 --out %s", sref);
    int rc3 = cli_mpi_run(2, "", "train " DATA " --epochs 2 --out %s", sref2);
    char r2[1000];
    snprintf(p, sizeof p, "%s/ckpt.safetensors", sw);
    snprintf(q, sizeof q, "%s/ckpt.safetensors", sref);
    snprintf(r2, sizeof r2, "%s/ckpt.safetensors", sref2);
    double e1 = ckpt_diff(q, p), e2 = ckpt_diff(r2, p);
    CHECK(rc == 0 && rc2 == 0 && rc3 == 0 && fmin(e1, e2) <= 1e-4, "resumed by 1 process after epoch 1 on 2 ranks: the "
          "weights of one process or of two ranks throughout (worst %.2g and %.2g of their scale; the references %.2g "
          "apart; exit %d, %d, %d)", e1, e2, ckpt_diff(q, r2), rc, rc2, rc3);

    /* and the other way: one process stopped in epoch 2, resumed on 2 ranks */
    snprintf(sw, sizeof sw, "%s/switch12", cli_dir);
    setenv("NCELAB_FAULT_NAN_STEP", "25", 1);
    rc = cli_run("train " DATA " --epochs 2 --out %s", sw);
    unsetenv("NCELAB_FAULT_NAN_STEP");
    rc2 = rc == 3 ? cli_mpi_run(2, "", "train " DATA " --epochs 2 --out %s --resume", sw) : -1;
    snprintf(p, sizeof p, "%s/ckpt.safetensors", sw);
    e1 = ckpt_diff(q, p);
    e2 = ckpt_diff(r2, p);
    CHECK(rc == 3 && rc2 == 0 && fmin(e1, e2) <= 1e-4, "one process stopped in epoch 2, resumed on 2 ranks: the weights of "
          "one process or of two ranks throughout (worst %.2g and %.2g of their scale; exit %d, %d)", e1, e2, rc, rc2);

    /* with a queue (k 40 > 2B - 2): 2 ranks stopped in epoch 2 and resumed on 2 ranks (rank 0 reads the
       checkpoint, the queue's slots, labels and stamps broadcast) end with the uninterrupted run's bits */
    char qa[400], qb[400];
    snprintf(qa, sizeof qa, "%s/queue_ref", cli_dir);
    snprintf(qb, sizeof qb, "%s/queue_resumed", cli_dir);
    rc = cli_mpi_run(2, "", "train " SET " --k 40 --epochs 2 --out %s", qa);
    rc2 = cli_mpi_run(2, "-x NCELAB_FAULT_NAN_STEP=25", "train " SET " --k 40 --epochs 2 --out %s", qb);
    rc3 = rc2 == 3 ? cli_mpi_run(2, "", "train " SET " --k 40 --epochs 2 --out %s --resume", qb) : -1;
    snprintf(p, sizeof p, "%s/ckpt.safetensors", qa);
    snprintf(q, sizeof q, "%s/ckpt.safetensors", qb);
    int qsame = 0;
    StFile fa, fb;
    if (rc == 0 && rc3 == 0 && st_load(p, &fa, &err) == NC_OK) {
        if (st_load(q, &fb, &err) == NC_OK) {
            qsame = fa.ntensors == fb.ntensors && st_find(&fa, "queue.stamp") != NULL;
            for (int i = 0; qsame && i < fa.ntensors; i++) {
                const StTensor *t = &fa.tensors[i], *u = st_find(&fb, t->name);
                qsame = u && u->nbytes == t->nbytes && memcmp(t->data, u->data, t->nbytes) == 0;
            }
            st_free(&fb);
        }
        st_free(&fa);
    }
    CHECK(qsame, "with a queue on 2 ranks: stopped in epoch 2 (exit %d) and resumed (exit %d), every tensor (the queue's too) "
          "equals the uninterrupted 2-rank run's (exit %d)", rc2, rc3, rc);

    /* 5. a sweep on 2 ranks, one run each, equals the serial sweep */
    char sa[400], sb[400];
    snprintf(sa, sizeof sa, "%s/sweep1", cli_dir);
    snprintf(sb, sizeof sb, "%s/sweep2", cli_dir);
    rc = cli_run("sweep " SET " --k 1,4 --seeds 2 --epochs 1 --out %s", sa);
    rc2 = cli_mpi_run(2, "", "sweep " SET " --k 1,4 --seeds 2 --epochs 1 --out %s", sb);
    cJSON *ja = NULL, *jb = NULL;
    snprintf(p, sizeof p, "%s/results.json", sa);
    snprintf(q, sizeof q, "%s/results.json", sb);
    int same = rc == 0 && rc2 == 0 && json_load(p, &ja, NULL) == NC_OK && json_load(q, &jb, NULL) == NC_OK, nruns = 0;
    const char *fields[] = {"final_loss", "collision_rate", "features", "head"};
    for (int i = 0; same && i < cJSON_GetArraySize(cJSON_GetObjectItem(ja, "runs")); i++, nruns++) {
        cJSON *x = cJSON_GetArrayItem(cJSON_GetObjectItem(ja, "runs"), i), *y = cJSON_GetArrayItem(cJSON_GetObjectItem(jb, "runs"), i);
        for (int k = 0; k < 4 && same; k++)
            same = y && cJSON_Compare(cJSON_GetObjectItem(x, fields[k]), cJSON_GetObjectItem(y, fields[k]), 1);
    }
    cJSON *sr = jb ? cJSON_GetObjectItem(cJSON_GetObjectItem(jb, "config"), "sweep_ranks") : NULL;
    CHECK(same && nruns == 4 && cJSON_IsNumber(sr) && sr->valueint == 2,
          "mpirun -np 2 ncelab sweep --k 1,4 --seeds 2 --threads 1: the %d runs equal the serial sweep's exactly (exit %d, %d)", nruns,
          rc, rc2);
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    rc = cli_mpi_run(2, "", "sweep " SET " --k 1,4 --ranks-per-run 2 --epochs 1 --out %s/sweep3", cli_dir);
    CHECK(rc == 0, "--ranks-per-run 2: both ranks train each run (exit %d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    rc = cli_mpi_run(2, "", "sweep " SET " --k 1,4 --ranks-per-run 3 --epochs 1 --out %s/sweep4", cli_dir);
    CHECK(rc == 2 && strstr(cli_err, "--ranks-per-run"), "--ranks-per-run 3 on 2 ranks: exit 2 (%d)", rc);

    /* 6. evaluation on 2 and 3 ranks: the same embeddings (bit for bit) and metrics as one process */
    char ev[400];
    snprintf(ev, sizeof ev, "%s/eval", cli_dir);
    mkdir(ev, 0755);
    rc = cli_run("train --data synth:10:16:60 --k 6 --batch 16 --threads 1 --epochs 1 --out %s", ev);
    rc = rc ? rc : cli_run("eval --checkpoint %s/ckpt.safetensors --threads 1 --json %s/e1.json --embeddings %s/e1", ev, ev, ev);
    for (int P = 2; P <= 3; P++) {
        rc2 = cli_mpi_run(P, "", "eval --checkpoint %s/ckpt.safetensors --threads 1 --json %s/e%d.json --embeddings %s/e%d", ev, ev, P, ev, P);
        cJSON *x = NULL, *y = NULL;
        snprintf(p, sizeof p, "%s/e1.json", ev);
        snprintf(q, sizeof q, "%s/e%d.json", ev, P);
        int ok = rc == 0 && rc2 == 0 && json_load(p, &x, NULL) == NC_OK && json_load(q, &y, NULL) == NC_OK;
        double worst = ok ? 0 : INFINITY;
        const char *m[] = {"mean_acc", "knn_acc", "linear_acc", "simplex_deviation", "within_class_ratio"};
        for (int l = 0; l < 2 && ok; l++)
            for (int k = 0; k < 5; k++) {
                double a = NAN, b = NAN;
                json_get_number(cJSON_GetObjectItem(cJSON_GetObjectItem(x, l ? "head" : "features"), m[k]), &a);
                json_get_number(cJSON_GetObjectItem(cJSON_GetObjectItem(y, l ? "head" : "features"), m[k]), &b);
                double e = fabs(a - b) / fmax(fabs(a), 1e-12);
                if (k < 2 && a != b) ok = 0;  /* kNN and the mean classifier: exactly */
                worst = fmax(worst, isfinite(e) ? e : INFINITY);
            }
        int same_npy = 1;
        const char *arr[] = {"train_features", "train_head", "test_features", "test_head"};
        for (int k = 0; k < 4; k++) {
            char *ba = NULL, *bb = NULL;
            size_t na = 0, nb = 0;
            snprintf(p, sizeof p, "%s/e1_%s.npy", ev, arr[k]);
            snprintf(q, sizeof q, "%s/e%d_%s.npy", ev, P, arr[k]);
            same_npy = same_npy && nc_read_file(p, &ba, &na, NULL) == NC_OK && nc_read_file(q, &bb, &nb, NULL) == NC_OK && na == nb &&
                       memcmp(ba, bb, na) == 0;
            free(ba);
            free(bb);
        }
        CHECK(ok && worst <= 1e-5 && same_npy,
              "eval on %d ranks: embeddings bit-identical, mean classifier and kNN equal, probe and geometry within %.2g (exit %d)", P,
              worst, rc2);
        cJSON_Delete(x);
        cJSON_Delete(y);
    }
    return check_done();
}
