// cli_util.h -- running the ncelab binary from tests: exit status, stdout and stderr.
#ifndef NCELAB_TEST_CLI_UTIL_H
#define NCELAB_TEST_CLI_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "ncelab/core.h"

static char cli_out[1 << 16], cli_err[1 << 14];
static char cli_dir[256];

static void cli_slurp(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f) fclose(f);
}

/* cli_run: runs "$NCELAB_BIN <args>" (args formatted like printf) with stdout and stderr
   captured into cli_out and cli_err; returns the exit status. */
static int cli_run(const char *fmt, ...) {
    const char *bin = getenv("NCELAB_BIN");
    if (!bin) bin = "./ncelab";
    char args[2048], cmd[4096], o[300], e[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(o, sizeof o, "%s/stdout.txt", cli_dir);
    snprintf(e, sizeof e, "%s/stderr.txt", cli_dir);
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s </dev/null", bin, args, o, e);
    int st = system(cmd);
    cli_slurp(o, cli_out, sizeof cli_out);
    cli_slurp(e, cli_err, sizeof cli_err);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* cli_file: writes text to cli_dir/name and returns the path (static buffer rotation). */
__attribute__((unused)) static const char *cli_file(const char *name, const char *text) {
    static char paths[8][300];
    static int slot = 0;
    char *p = paths[slot++ % 8];
    snprintf(p, 300, "%s/%s", cli_dir, name);
    FILE *f = fopen(p, "w");
    if (f) { fputs(text, f); fclose(f); }
    return p;
}

/* cli_mpiexec: the launcher line of MPI tests ($NCELAB_MPIEXEC, e.g. "mpirun --oversubscribe") */
__attribute__((unused)) static const char *cli_mpiexec(void) {
    const char *m = getenv("NCELAB_MPIEXEC");
    return m ? m : "mpirun --oversubscribe";
}

/* cli_mpi_run: runs "MPIEXEC -np P [extra] $NCELAB_BIN <args>" like cli_run */
__attribute__((unused)) static int cli_mpi_run(int P, const char *extra, const char *fmt, ...) {
    char args[2048], line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    const char *bin = getenv("NCELAB_BIN");
    snprintf(line, sizeof line, "%s -np %d %s %s %s", cli_mpiexec(), P, extra, bin ? bin : "./ncelab", args);
    /* cli_run prefixes the binary: run the whole line through a shell instead */
    char o[300], e[300], cmd[5000];
    snprintf(o, sizeof o, "%s/stdout.txt", cli_dir);
    snprintf(e, sizeof e, "%s/stderr.txt", cli_dir);
    snprintf(cmd, sizeof cmd, "%s >%s 2>%s </dev/null", line, o, e);
    int st = system(cmd);
    cli_slurp(o, cli_out, sizeof cli_out);
    cli_slurp(e, cli_err, sizeof cli_err);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void cli_setup(const char *tag) {
    const char *base = getenv("NCELAB_TESTDIR");
    snprintf(cli_dir, sizeof cli_dir, "%s/%s_work", base ? base : "/tmp", tag);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", cli_dir, cli_dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot create %s\n", cli_dir);
}

#endif
