// wait_policy.c -- how OpenMP's idle threads wait, chosen before the runtime starts.
//
// GNU OpenMP's threads spin (up to 300,000 polls) at the end of every parallel region before they
// sleep. On a busy machine a spinning thread takes the core from the thread that still has work:
// the theory engine's many small regions (a loss evaluation is tens of microseconds to a few
// milliseconds) ran 10-100x slower beside other processes. Training and evaluation, whose regions
// are large, lose on an idle machine without the spin (measured: the convnet step 7% slower,
// `eval` of Fashion-MNIST 28% slower with OMP_WAIT_POLICY=passive), so they keep the default.
// libgomp reads its environment once, when it is loaded, so the policy cannot be set from main:
// for the theory commands, when the user has not chosen (OMP_WAIT_POLICY, GOMP_SPINCOUNT),
// ncelab sets OMP_WAIT_POLICY=passive and executes itself again, once.
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"

/* the theory engine's commands: ncelab theory ..., ncelab bench --theory */
static int theory_command(int argc, char **argv) {
    if (argc < 2) return 0;
    if (strcmp(argv[1], "theory") == 0) return 1;
    if (strcmp(argv[1], "bench") != 0) return 0;
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--theory") == 0) return 1;
    return 0;
}

void cli_wait_policy(int argc, char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;  /* the user's choice, or the exec done */
    if (!theory_command(argc, argv)) return;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv);
    /* no /proc (or exec refused): carry on with the runtime's default */
}
