// args.h -- command-line options: "--name value", "--name=value" and flags, strictly checked.
#ifndef NCELAB_CLI_ARGS_H
#define NCELAB_CLI_ARGS_H

#include "ncelab/comm.h"
#include "ncelab/core.h"

typedef struct {
    const char *name;   /* without the dashes */
    int takes_value;    /* 0: a flag */
    const char *help;   /* one line for --help; the value's name comes first, e.g. "N  number of classes" */
    const char *value;  /* filled by args_parse (flags: "1") */
} Opt;

/* args_parse: fills opts[].value from argv[first..argc); positional words go to pos (at most
   maxpos). Unknown options, missing values, repeated options and extra words are NC_EUSAGE
   naming the option; an unknown option a couple of edits from one of the command's suggests it
   ("--temprature: unknown option; did you mean --temperature?"). The spellings of other tools
   are aliases where the command has the option: --temperature (--temp), --batch-size (--batch),
   --weight-decay (--wd), --learning-rate (--lr), --num-epochs and --epoch (--epochs). "--help"
   sets *help. */
int args_parse(int argc, char **argv, int first, Opt *opts, int nopt, const char **pos,
               int maxpos, int *npos, int *help, NcError *err);
/* args_config: with --config FILE among opts, every option not given on the command line takes
   the value FILE's configuration records for it: FILE is a checkpoint (its "config" metadata), a
   JSON document with a "config" object (results.json, a sweep run's run.json), or such an object
   itself. A field matches the option of its name with '-' for '_' (warmup_epochs is --warmup, ks
   --k, first_seed --seed); arrays become comma lists; 0 or "" where that means "not given"
   (queue, threads, train_limit, ...) leaves the default; --out, --resume and --force are never
   taken. Exits 1 naming FILE when it holds no configuration. (args_config.c) */
void args_config(Opt *opts, int nopt);
/* args_usage: prints "usage: ncelab USAGE" and one line per option to f. */
void args_usage(FILE *f, const char *usage, const char *about, const Opt *opts, int nopt);
/* args_get: the value of an option by name (NULL if absent). */
const char *args_get(const Opt *opts, int nopt, const char *name);
/* The --threads option and the flag that lets it exceed the cores, for a command's table. */
#define ARGS_THREADS {"threads", 1, "T  threads (default: all cores; at most the online cores unless --threads-force)", NULL}
#define ARGS_THREADS_FORCE {"threads-force", 0, "let --threads exceed the number of online cores", NULL}
/* args_threads: the value of --threads, an integer in [1, 1024] (0 when absent: OpenMP's default,
   all cores). Above the number of online cores (sysconf) it is capped to it, said in one line on
   stderr by rank 0, unless --threads-force is given (an oversubscribed run is many times slower,
   not faster). Exits 2 on a bad value. */
int args_threads(const Opt *opts, int nopt);

/* cli_die: prints "ncelab: message" to stderr and exits with the error's code. Under MPI it
   prints "ncelab: rank R of P: message" and aborts the whole job with that code (mpirun returns
   it), so that no rank waits forever in a collective for one that died. */
_Noreturn void cli_die(const NcError *err);
/* cli_wait_policy: for the theory engine's commands (theory, bench --theory), unless
   OMP_WAIT_POLICY or GOMP_SPINCOUNT is set, sets OMP_WAIT_POLICY=passive and executes the program
   again with argv (once: the variable is then set); returns when nothing was done or the exec
   failed. Call first in main, before any OpenMP. (wait_policy.c) */
void cli_wait_policy(int argc, char **argv);

/* cli_comm: the communicator of this run: MPI's world when launched by mpirun (main sets it with
   cli_comm_set before running a command), otherwise comm_single(). Never NULL. */
Comm *cli_comm(void);
void cli_comm_set(Comm *c);

#endif
