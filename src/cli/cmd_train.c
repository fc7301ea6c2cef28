// cmd_train.c -- `ncelab train`: contrastive training with exactly k negatives per anchor.
#include "train_opts.h"

int cmd_train(int argc, char **argv) {
    Opt o[TRAIN_OPTS_N + 1] = {{"k", 1, "K  negatives per anchor (required)", NULL}};
    int no = 1 + train_opts_add(o + 1, 1), npos, help;
    const char *pos[1];
    NcError err = {0};
    if (args_parse(argc, argv, 2, o, no, pos, 0, &npos, &help, &err)) cli_die(&err);
    if (help) {
        args_usage(stdout, "train --data SPEC --k K --out DIR [options]",
                   "Trains an encoder with InfoNCE (or binary NCE) and exactly k negatives per anchor, drawn\n"
                   "from the batch (same-class negatives allowed, as in the theory) or, beyond the batch, from a\n"
                   "queue of keys as MoCo trains (a momentum key encoder, see --queue). Logs loss,\n"
                   "learning rate, images/s and the negatives' statistics per epoch (DIR/log.csv, DIR/log.json)\n"
                   "and writes DIR/ckpt.safetensors after every epoch. collision_rate: the share of negatives\n"
                   "of the anchor's class (theory: sum of rho_c^2); any_collision: the share of anchors with at\n"
                   "least one (theory: tau_k = 1 - sum rho_c (1 - rho_c)^k); coverage: the mean number of distinct\n"
                   "classes among an anchor's k negatives. A directory that holds a checkpoint is refused unless\n"
                   "--resume (continue it; a larger --epochs recomputes the schedule over the new total) or\n"
                   "--force (start over); one process writes a directory at a time (DIR/.ncelab.lock).", o, no);
        return 0;
    }
    args_config(o, no);
    const char *need[3] = {"data", "k", "out"};
    for (int i = 0; i < 3; i++)
        if (!args_get(o, no, need[i])) { nc_fail(&err, NC_EUSAGE, "--%s: required", need[i]); cli_die(&err); }
    TrainConfig c;
    train_opts_apply(o, no, &c);
    long k;
    if (nc_parse_long(args_get(o, no, "k"), "--k", 1, 1000000, &k, &err)) cli_die(&err);
    c.k = (int)k;
    train_opts_auto_queue(&c, k);
    TrainPrinter pr = {.epochs = c.epochs, .knn = c.knn_monitor > 0};
    TrainReport rep = train_printer(&pr);
    TrainResult r;
    Comm *comm = cli_comm();
    int resume = args_get(o, no, "resume") != NULL, force = args_get(o, no, "force") != NULL;
    if (resume && force) {
        nc_fail(&err, NC_EUSAGE, "--force: starts a new run over the checkpoint; --resume continues it: give one");
        cli_die(&err);
    }
    if (train_run(&c, resume ? TRAIN_RESUME : force ? TRAIN_OVERWRITE : TRAIN_NEW, comm, &rep, &r, &err)) cli_die(&err);
    if (comm->rank == 0)
        printf("trained %d epochs in %.1f s (%.0f images/s%s); final loss %.4f; checkpoint %s/ckpt.safetensors\n",
               r.epochs_done, r.train_seconds, r.last.imgs_per_sec, comm->size > 1 ? ", all ranks" : "", r.last.loss, c.out);
    return 0;
}
