// main.c -- the ncelab command: dispatches to one file per subcommand.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "ncelab/comm.h"
#include "ncelab/core.h"
#include "ncelab/progress.h"

int cmd_theory(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_sweep(int argc, char **argv);

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *about;
} commands[] = {
    {"theory", cmd_theory, "the NCE-optimal representation for k negatives, certified, and its downstream loss;\n"
                           "           theory eval: the exact loss of a Gram matrix; theory explore: where more\n"
                           "           negatives help or hurt, over thousands of priors (explore.json, explore.html)"},
    {"train", cmd_train, "contrastive training with exactly k negatives per anchor (from the batch, or from a\n"
                         "           MoCo queue beyond it), checkpointed and resumable; --config repeats a run"},
    {"eval", cmd_eval, "mean classifier, linear probe and kNN of a checkpoint (features and head), .npy embeddings"},
    {"sweep", cmd_sweep, "train and evaluate every (k, seed), resumably: results.json/csv, plots, report.html"},
    {"demo", cmd_demo, "the theory sweep, then a k-sweep on Fashion-MNIST (k = 1..1024): out/report.html"},
    {"bench", cmd_bench, "timings: theory engine (--theory), training step beside its loss (--model), loader\n"
                         "           (--loader), collectives under mpirun (--comm)"},
    {"data", cmd_data, "dataset info and conversion: ncelab data info SPEC | convert SPEC FILE"},
};

static void usage(FILE *f) {
    fprintf(f,
            "ncelab %s -- what does the number of negatives k in contrastive learning do to what is\n"
            "learned, and to downstream accuracy?\n\n"
            "usage: ncelab COMMAND [options]     (ncelab COMMAND --help for its options)\n\ncommands:\n",
            NCELAB_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].about);
    fprintf(f, "\n  ncelab help COMMAND   the same as ncelab COMMAND --help\n  --help     this message\n  --version  the version\n"
               "\nUnder mpirun, train, eval, sweep and bench --comm run data-parallel. Progress goes to stderr: a bar on\n"
               "a terminal, otherwise a line every 10 s (NCELAB_PROGRESS_EVERY=S sets the interval). Exit status: 0\n"
               "done, 1 a bad file, 2 a bad option or value, 3 a run stopped (a non-finite loss).\n");
}

/* asks_help: a --help anywhere: the command prints its usage, and needs no MPI for that */
static int asks_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    return 0;
}

/* launch_size: the number of processes the launcher says it started (1 when it does not say) */
static long launch_size(void) {
    const char *v = getenv("OMPI_COMM_WORLD_SIZE");
    if (!v || !*v) v = getenv("PMI_SIZE");
    long n = v ? strtol(v, NULL, 10) : 1;
    return n > 1 ? n : 1;
}

/* same_args: rank 0's command line on every rank (malloc'd: one block of strings, then the
   pointers), so that the ranks parse the same options whatever their launcher gave them */
static char **same_args(Comm *world, int *argc, char **argv) {
    long long len = 0, n = *argc;
    if (world->rank == 0)
        for (int i = 0; i < *argc; i++) len += (long long)strlen(argv[i]) + 1;
    NcError err = {0};
    long long hdr[2] = {n, len};
    if (world->bcast(world, hdr, sizeof hdr, 0, &err)) cli_die(&err);
    char *text = nc_malloc((size_t)hdr[1] + 1), **out = nc_malloc(sizeof(char *) * ((size_t)hdr[0] + 1));
    if (world->rank == 0)
        for (int i = 0, off = 0; i < *argc; i++) {
            memcpy(text + off, argv[i], strlen(argv[i]) + 1);
            off += (int)strlen(argv[i]) + 1;
        }
    if (world->bcast(world, text, (size_t)hdr[1], 0, &err)) cli_die(&err);
    for (long long i = 0, off = 0; i < hdr[0]; i++) {
        out[i] = text + off;
        off += (long long)strlen(text + off) + 1;
    }
    out[hdr[0]] = NULL;
    *argc = (int)hdr[0];
    return out;
}

/* run: the command, on MPI's world when an MPI launcher started us (never MPI_Init otherwise). A
   build without MPI runs one launched process as always, and refuses several: each would do the
   whole run alone, into the same files. */
static int run(int (*cmd)(int, char **), int argc, char **argv) {
    Comm *world = NULL;
    if (comm_launched_by_mpi() && !asks_help(argc, argv)) {
        NcError err = {0};
        if (comm_mpi_world(&argc, &argv, &world, &err) && (comm_have_mpi() || launch_size() > 1)) cli_die(&err);
        cli_comm_set(world);
    }
    progress_enable(cli_comm()->rank == 0);  /* the library draws progress only when asked */
    char **args = argv;
    if (world && world->size > 1) args = same_args(world, &argc, argv);
    int rc = cmd(argc, args);
    if (args != argv) {
        free(args[0]);
        free(args);
    }
    if (world) {
        /* a rank that fails without cli_die still ends the job: the others may wait for it */
        if (rc != 0) {
            fflush(stdout);
            world->abort(world, rc);
        }
        cli_comm_set(NULL);
        comm_free(world);
        comm_mpi_finalize();
    }
    return rc;
}

int main(int argc, char **argv) {
    cli_wait_policy(argc, argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "help") == 0 && argc >= 3) {  /* ncelab help CMD [SUB]: ncelab CMD [SUB] --help */
        char *args[5] = {argv[0], argv[2], argc >= 4 ? argv[3] : "--help", argc >= 4 ? "--help" : NULL, NULL};
        argv = args;
        argc = argc >= 4 ? 4 : 3;
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc, argv);
        fprintf(stderr, "ncelab: %s: unknown command (see ncelab --help)\n", argv[1]);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("ncelab %s\n", NCELAB_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return run(commands[i].run, argc, argv);
    fprintf(stderr, "ncelab: %s: unknown command (see ncelab --help)\n", argv[1]);
    return 2;
}
