// wait_policy.c -- how OpenMP's idle threads wait, chosen before the runtime starts.
//
// GNU OpenMP's threads spin (up to 300,000 polls) at the end of every parallel region before they
// sleep. On an idle machine that saves a wake-up; on a busy one a spinning thread takes the core
// from the thread that still has work, and the theory engine's many small regions ran 20-100x
// slower beside other processes (a 0.44 s sweep took 5-52 s). libgomp reads its environment once,
// when it is loaded, so the policy cannot be set from main: when the user has not chosen
// (OMP_WAIT_POLICY, GOMP_SPINCOUNT), ncelab sets it and executes itself again, once.
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"

void cli_wait_policy(int argc, char **argv) {
    (void)argc;
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;  /* the user's choice, or the exec done */
    /* passive: an idle thread sleeps at once (a futex wake costs microseconds, far less than a time
       slice lost to a spinning thread) */
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv);
    /* no /proc (or exec refused): carry on with the runtime's default */
}
