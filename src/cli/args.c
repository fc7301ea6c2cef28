// args.c -- strict parsing of long options for every subcommand.
#define _POSIX_C_SOURCE 200809L
#include "args.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The spellings other tools use for some options: each names the option on its right, where the
   command has it. */
static const char *const ALIASES[][2] = {
    {"temperature", "temp"}, {"batch-size", "batch"}, {"weight-decay", "wd"},
    {"num-epochs", "epochs"}, {"learning-rate", "lr"}, {"epoch", "epochs"},
};
enum { N_ALIASES = sizeof ALIASES / sizeof ALIASES[0] };

static Opt *find(Opt *opts, int nopt, const char *name, size_t len) {
    for (int j = 0; j < nopt; j++)
        if (strlen(opts[j].name) == len && strncmp(opts[j].name, name, len) == 0) return &opts[j];
    return NULL;
}

/* edit distance between a (n bytes) and b, capped at 9 */
static int distance(const char *a, size_t n, const char *b) {
    size_t m = strlen(b);
    if (n > 40 || m > 40) return 9;
    int d[41][41];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]), del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[n][m] < 9 ? d[n][m] : 9;
}

/* unknown: NC_EUSAGE for --name, suggesting the nearest option or alias of this command when it
   is a couple of edits away */
static int unknown(const Opt *opts, int nopt, const char *name, size_t len, NcError *err) {
    const char *best = NULL;
    int bd = len <= 4 ? 1 : len <= 8 ? 2 : 3;
    for (int j = 0; j < nopt; j++) {
        int d = distance(name, len, opts[j].name);
        if (d <= bd) { bd = d; best = opts[j].name; }
    }
    for (int j = 0; j < N_ALIASES; j++) {
        int have = 0;
        for (int i = 0; i < nopt; i++) have |= strcmp(opts[i].name, ALIASES[j][1]) == 0;
        int d = distance(name, len, ALIASES[j][0]);
        if (have && d < bd) { bd = d; best = ALIASES[j][0]; }
    }
    if (best) return nc_fail(err, NC_EUSAGE, "--%.*s: unknown option; did you mean --%s?", (int)len, name, best);
    return nc_fail(err, NC_EUSAGE, "--%.*s: unknown option (see --help)", (int)len, name);
}

int args_parse(int argc, char **argv, int first, Opt *opts, int nopt, const char **pos,
               int maxpos, int *npos, int *help, NcError *err) {
    *npos = 0;
    *help = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { *help = 1; continue; }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (a[0] == '-' && a[1] != '\0')
                return nc_fail(err, NC_EUSAGE, "%s: unknown option (options are --name VALUE)", a);
            if (*npos >= maxpos) return nc_fail(err, NC_EUSAGE, "%s: unexpected argument", a);
            pos[(*npos)++] = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        Opt *o = find(opts, nopt, name, len);
        for (int j = 0; !o && j < N_ALIASES; j++)
            if (strlen(ALIASES[j][0]) == len && strncmp(ALIASES[j][0], name, len) == 0)
                o = find(opts, nopt, ALIASES[j][1], strlen(ALIASES[j][1]));
        if (!o) return unknown(opts, nopt, name, len, err);
        if (o->value) return nc_fail(err, NC_EUSAGE, "--%s: given more than once", o->name);
        if (!o->takes_value) {
            if (eq) return nc_fail(err, NC_EUSAGE, "--%s: takes no value", o->name);
            o->value = "1";
        } else if (eq) {
            o->value = eq + 1;
        } else {
            if (i + 1 >= argc) return nc_fail(err, NC_EUSAGE, "--%s: needs a value", o->name);
            o->value = argv[++i];
        }
    }
    return NC_OK;
}

void args_usage(FILE *f, const char *usage, const char *about, const Opt *opts, int nopt) {
    fprintf(f, "usage: ncelab %s\n\n%s\n", usage, about);
    if (nopt) fprintf(f, "\noptions:\n");
    for (int j = 0; j < nopt; j++) {
        char left[64];
        const char *h = opts[j].help, *sp = opts[j].takes_value ? strstr(h, "  ") : NULL;
        if (sp) {
            snprintf(left, sizeof left, "--%s %.*s", opts[j].name, (int)(sp - h), h);
            h = sp + 2;
        } else {
            snprintf(left, sizeof left, "--%s", opts[j].name);
        }
        fprintf(f, "  %-22s %s\n", left, h);
    }
    fprintf(f, "  %-22s %s\n", "--help", "this message");
    int shown = 0;
    for (int j = 0; j < N_ALIASES; j++)
        if (find((Opt *)opts, nopt, ALIASES[j][1], strlen(ALIASES[j][1])))
            fprintf(f, "%s--%s = --%s", shown++ ? ", " : "\naliases: ", ALIASES[j][0], ALIASES[j][1]);
    if (shown) fprintf(f, "\n");
}

const char *args_get(const Opt *opts, int nopt, const char *name) {
    for (int j = 0; j < nopt; j++)
        if (strcmp(opts[j].name, name) == 0) return opts[j].value;
    return NULL;
}

int args_threads(const Opt *opts, int nopt) {
    const char *v = args_get(opts, nopt, "threads");
    NcError err = {0};
    long t;
    if (!v) return 0;
    if (nc_parse_long(v, "--threads", 1, 1024, &t, &err)) cli_die(&err);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores >= 1 && t > cores && !args_get(opts, nopt, "threads-force")) {
        if (cli_comm()->rank == 0)
            fprintf(stderr, "ncelab: --threads %ld is more than the %ld online cores: using %ld (--threads-force keeps %ld)\n",
                    t, cores, cores, t);
        t = cores;
    }
    return (int)t;
}

static Comm *cli_world;

Comm *cli_comm(void) {
    return cli_world ? cli_world : comm_single();
}

void cli_comm_set(Comm *c) {
    cli_world = c;
}

void cli_die(const NcError *err) {
    int code = err->code ? err->code : 1;
    if (cli_world) {
        /* A bad option or value is found by every rank at once: give rank 0 a moment to print it
           and end the job, so that one line is shown; other failures are a rank's own, shown now. */
        if (code == NC_EUSAGE && cli_world->rank != 0 && cli_world->size > 1) {
            struct timespec pause = {2, 0};
            nanosleep(&pause, NULL);
        }
        fprintf(stderr, "ncelab: rank %d of %d: %s\n", cli_world->rank, cli_world->size, err->msg);
        cli_world->abort(cli_world, code);
    }
    fprintf(stderr, "ncelab: %s\n", err->msg);
    exit(code);
}
