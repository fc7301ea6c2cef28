// cmd_sweep.c -- `ncelab sweep`: train and evaluate every (k, seed), resumably, and report.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ncelab/sweep.h"
#include "train_opts.h"

#include <omp.h>

int cmd_sweep(int argc, char **argv) {
    Opt o[TRAIN_OPTS_N + 7] = {
        {"k", 1, "LIST  values of k: 1,4,16 or a range 1..256 of powers of two (required)", NULL},
        {"seeds", 1, "S  seeds per k: --seed, --seed + 1, ... (default 1)", NULL},
        {"knn-k", 1, "K  neighbours of the kNN classifier (default 200)", NULL},
        {"knn-t", 1, "T  temperature of its weights (default 0.1)", NULL},
        {"eval-batch", 1, "B  images per forward pass in evaluation (default 256)", NULL},
        {"ranks-per-run", 1, "R  under mpirun: ranks that train each run together (default 1); groups of R share out the runs", NULL},
        {"queue-lr", 1, "LR  learning rate of the runs with k > 2B - 2 (negatives from the queue, MoCo's step; default --lr)", NULL},
    };
    int no = 7 + train_opts_add(o + 7, 0), npos, help;
    const char *pos[1];
    NcError err = {0};
    if (args_parse(argc, argv, 2, o, no, pos, 0, &npos, &help, &err)) cli_die(&err);
    if (help) {
        args_usage(stdout, "sweep --data SPEC --k LIST [--seeds S] [train options] --out DIR",
                   "Trains and evaluates one run per (k, seed) under DIR/runs/, skipping runs already finished\n"
                   "and resuming unfinished ones, then writes DIR/results.json, results.csv, summary.csv, SVG\n"
                   "plots and DIR/report.html: the accuracies against k beside the theory engine's prediction\n"
                   "for the dataset's class prior.", o, no);
        return 0;
    }
    args_config(o, no);
    const char *need[3] = {"data", "k", "out"};
    for (int i = 0; i < 3; i++)
        if (!args_get(o, no, need[i])) { nc_fail(&err, NC_EUSAGE, "--%s: required", need[i]); cli_die(&err); }
    SweepConfig c;
    memset(&c, 0, sizeof c);
    train_opts_apply(o, no, &c.base);
    snprintf(c.out, sizeof c.out, "%s", c.base.out);
    long *ks, v;
    if (nc_parse_klist(args_get(o, no, "k"), "--k", &ks, &c.nk, &err)) cli_die(&err);
    for (int i = 0; i < c.nk; i++)
        if (ks[i] > 1000000) { nc_fail(&err, NC_EUSAGE, "--k: %ld is too large for training (at most 1000000)", ks[i]); cli_die(&err); }
    c.ks = ks;
    train_opts_auto_queue(&c.base, ks[c.nk - 1]);
    c.seeds = 1;
    if (args_get(o, no, "seeds")) {
        if (nc_parse_long(args_get(o, no, "seeds"), "--seeds", 1, 1000, &v, &err)) cli_die(&err);
        c.seeds = (int)v;
    }
    eval_config_default(&c.eval);
    if (args_get(o, no, "knn-k")) { if (nc_parse_long(args_get(o, no, "knn-k"), "--knn-k", 1, 1024, &v, &err)) cli_die(&err); c.eval.knn_k = (int)v; }
    if (args_get(o, no, "knn-t")) {
        double dv;
        if (nc_parse_double(args_get(o, no, "knn-t"), "--knn-t", &dv, &err)) cli_die(&err);
        if (!(dv > 0)) { nc_fail(&err, NC_EUSAGE, "--knn-t: must be positive, got %g", dv); cli_die(&err); }
        c.eval.knn_t = dv;
    }
    c.eval_batch = 256;
    if (args_get(o, no, "eval-batch")) {
        if (nc_parse_long(args_get(o, no, "eval-batch"), "--eval-batch", 1, 65536, &v, &err)) cli_die(&err);
        c.eval_batch = (int)v;
    }
    if (args_get(o, no, "queue-lr")) {
        double dv;
        if (nc_parse_double(args_get(o, no, "queue-lr"), "--queue-lr", &dv, &err)) cli_die(&err);
        if (!(dv > 0) || !isfinite(dv)) { nc_fail(&err, NC_EUSAGE, "--queue-lr: must be positive, got %g", dv); cli_die(&err); }
        c.queue_lr = (float)dv;
    }
    c.ranks_per_run = 1;
    if (args_get(o, no, "ranks-per-run")) {
        if (nc_parse_long(args_get(o, no, "ranks-per-run"), "--ranks-per-run", 1, 1 << 20, &v, &err)) cli_die(&err);
        c.ranks_per_run = (int)v;
    }
    if (c.base.threads > 0) omp_set_num_threads(c.base.threads);
    SweepRun *runs;
    SweepTheory th;
    SweepPrinter sp = {.train = {.epochs = c.base.epochs, .knn = c.base.knn_monitor > 0}};
    SweepReport rep = sweep_printer(&sp);
    Comm *comm = cli_comm();
    if (sweep_run(&c, comm, &rep, &runs, &th, &err)) cli_die(&err);
    if (comm->rank == 0) {  /* the results and the report are rank 0's */
        if (sweep_write(&c, runs, &th, &err)) cli_die(&err);
        sweep_unlock(&c);
        printf("\n");
        sweep_summary_table(stdout, &c, runs);
        printf("\nwrote %s/results.json, results.csv, summary.csv, *.svg and report.html\n", c.out);
    }
    free(runs);
    sweep_theory_free(&th, c.nk);
    free(ks);
    return 0;
}
