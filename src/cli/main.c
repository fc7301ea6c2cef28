// main.c -- the ncelab command: dispatches to one file per subcommand.
#include <stdio.h>
#include <string.h>

#include "ncelab/core.h"

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
    {"theory", cmd_theory, "the NCE-optimal representation for k negatives, certified, and its downstream loss"},
    {"train", cmd_train, "contrastive training with exactly k negatives per anchor, checkpointed"},
    {"eval", cmd_eval, "mean classifier, linear probe and kNN of a trained encoder (features and head)"},
    {"sweep", cmd_sweep, "train and evaluate every (k, seed), resumably: results.json/csv, plots, report.html"},
    {"demo", cmd_demo, "the theory sweep, then a k-sweep on Fashion-MNIST: out/report.html"},
    {"bench", cmd_bench, "timings of the theory engine (--theory)"},
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
    fprintf(f, "\n  --help     this message\n  --version  the version\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
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
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc, argv);
    fprintf(stderr, "ncelab: %s: unknown command (see ncelab --help)\n", argv[1]);
    return 2;
}
