// explore.h -- many latent-class instances, each a certified sweep over k: where more negatives hurt.
#ifndef NCELAB_EXPLORE_H
#define NCELAB_EXPLORE_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "ncelab/comm.h"
#include "ncelab/core.h"
#include "ncelab/theory.h"

/* The downstream metrics an exploration follows. The first EXPLORE_JUDGED are judged (a certified
   worsening with k is a "rise": a larger loss, or for mean_acc a lower accuracy); kplus1_ce is a
   different task for every k and is reported, never judged. */
enum { EX_MEAN_CE, EX_MEAN_CE_BALANCED, EX_MEAN_ACC, EX_AVG_BINARY_CE, EX_KPLUS1_CE, EXPLORE_METRICS };
#define EXPLORE_JUDGED 4
extern const char *const explore_metric_name[EXPLORE_METRICS];

/* k -> infinity is taken at the largest k the integral evaluates, 1e9 (docs/theory.md). */
#define EXPLORE_K_LIMIT 1000000000L
/* A sweep counts only if every optimum's certified gap is at most this (absolute, nats). */
#define EXPLORE_MAX_GAP 1e-9
/* A change counts only if it exceeds EXPLORE_TOL_REL * max(1, |v|) plus the spread of the values
   over the optimal starts at both ends: EXPLORE_TOL_REL is the threshold at which the solver
   calls two optimal starts' downstream values different (TheorySolution.unique). */
#define EXPLORE_TOL_REL 1e-6

/* Families of class priors. */
typedef enum { EXF_UNIFORM, EXF_DIRICHLET, EXF_ZIPF, EXF_HEAVY, EXF_SPEC, EXF_TRIANGLE } ExploreFamilyKind;
typedef struct {
    ExploreFamilyKind kind;
    double a;               /* dirichlet: alpha > 0; zipf: exponent S, heavy: heavy mass W (< 0: drawn) */
    char *spec;             /* EXF_SPEC: a --rho text of `ncelab theory` (uniform, zipf:S or p1,p2,...) */
} ExploreFamily;

/* What to explore. Random mode: instance i (0 <= i < instances) draws N from [nmin, nmax], a
   family, R, a loss and a support from (seed, i) alone, so instance i is the same in every run
   and on any number of threads. Grid mode (nspec > 0): every --rho spec (explicit lists fix N;
   uniform and zipf:S take every N in the range) times every R, loss and support, in that order.
   A phase map (phase_steps > 0) adds the N = 3 priors (i, j, l)/phase_steps with i, j, l >= 1,
   for every R and the first loss, on disjoint supports. */
typedef struct {
    int nmin, nmax;
    ExploreFamily *fam;
    int nfam;
    double *R;
    int nR;
    NcLoss *loss;
    int nloss;
    int *shared;            /* per support choice: 0 disjoint, S > 0: S points shared by all classes */
    int nsup;
    const char *support_path;  /* a user's support file for every instance (N = its rows), or NULL */
    double *support_P;      /* (support_N, support_M) read from it */
    int support_N, support_M;
    long instances;         /* random mode */
    uint64_t seed;
    long *ks;               /* the k of every sweep, increasing, ending with EXPLORE_K_LIMIT */
    int nk, nk_req;         /* nk_req: how many were requested (the change is ks[nk_req-1] vs ks[0]) */
    int restarts;           /* random starts besides the warm start, as `ncelab theory --restarts` */
    int phase_steps;
    const char *out;        /* directory; support files go to out/supports/ */
    double round_seconds;   /* with several ranks, how long the ranks work between exchanges of
                               records (<= 0: EXPLORE_ROUND_SECONDS); not part of the settings */
} ExploreConfig;

/* With several ranks the work goes in rounds this long (seconds) by default: long enough that the
   instances in flight at a round's end (at most a few seconds) cost little, short enough that a
   killed run loses little. */
#define EXPLORE_ROUND_SECONDS 15.0

void explore_config_free(ExploreConfig *c);

/* One instance, its sweep and what the sweep says. */
typedef struct {
    long index;
    char family[48];        /* "dirichlet:0.3", "zipf:1.2", "heavy:0.8", "uniform", "spec", "triangle" */
    int N, M;
    double *rho;            /* (N) exactly what --rho spec parses to */
    char *rho_spec;         /* the --rho text of the command */
    double R;
    NcLoss loss;
    int shared;             /* 0: disjoint; S > 0: S shared points (a drawn support); -1: the user's file */
    double *P;              /* (N, M) when shared > 0, else NULL */
    char *support_file;     /* where P is written for the command (NULL when disjoint) */
    char *command;          /* the `ncelab theory` line that recomputes the sweep */
    /* results */
    int nk;
    long *k;
    double *curve[EXPLORE_METRICS];   /* (nk) each */
    double *spread[EXPLORE_METRICS];  /* (nk) range of the value over the optimal starts */
    double max_gap;
    int unique;             /* every k unique */
    int certified;          /* every gap <= EXPLORE_MAX_GAP and every k unique */
    long failed_k;          /* the first k that failed (gap or uniqueness): the sweep stopped there and
                               the curves after it are NaN; 0 when none failed */
    double rise[EXPLORE_JUDGED], rise_rel[EXPLORE_JUDGED];  /* 0 when no certified rise */
    long rise_from[EXPLORE_JUDGED], rise_to[EXPLORE_JUDGED];
    double change[EXPLORE_JUDGED];    /* v(ks[nk_req-1]) - v(ks[0]), as measured (not signed as harm) */
    int change_significant[EXPLORE_JUDGED];  /* certified and |change| above the tolerance */
    double seconds;
} ExploreRecord;

void explore_record_free(ExploreRecord *r);

/* explore_family_parse: "uniform", "dirichlet:A" (A > 0), "zipf" (S drawn from [0, 3]),
   "zipf:S", "heavy" (W drawn from [0.5, 0.95]), "heavy:W" (0 < W < 1). NC_EUSAGE naming what. */
int explore_family_parse(const char *s, const char *what, ExploreFamily *f, NcError *err);

/* explore_count: the number of instances of the configuration (random or grid, plus the map). */
long explore_count(const ExploreConfig *c);

/* explore_make: the parameters of instance i (0 <= i < explore_count), results empty; the support
   file's path and the command are set (the file is not written: explore_write_support). */
int explore_make(const ExploreConfig *c, long i, ExploreRecord *r, NcError *err);

/* explore_set_instance: fills r's parameters (copies rho_spec, P), support file path and command;
   used by explore_make and by shrinking. */
void explore_set_instance(const ExploreConfig *c, ExploreRecord *r, const char *family, int N,
                          const char *rho_spec, double R, NcLoss loss, int shared, const double *P,
                          int M, const char *support_name);

/* explore_write_support: writes r->P to r->support_file (JSON rows, atomically). */
int explore_write_support(const ExploreRecord *r, NcError *err);

/* explore_evaluate: the certified sweep of r over c->ks, warm-started as `ncelab theory` does,
   and its curves, certificate, rises and changes. The sweep stops at the first k that fails the
   certificate (r->failed_k); the curves and spreads after it are NaN. */
int explore_evaluate(const ExploreConfig *c, ExploreRecord *r, NcError *err);

/* explore_judge: the rises and changes of r from its curves (called by explore_evaluate). A rise
   of metric m is the largest worsening v_j - v_i over i < j (mean_acc: v_i - v_j), counted when
   the instance is certified and it exceeds the tolerance (EXPLORE_TOL_REL). */
void explore_judge(const ExploreConfig *c, ExploreRecord *r);

/* explore_shrink: from an instance with a certified rise of metric m, a smaller one that still has
   one: drop classes, make the support disjoint, round the prior to fewer decimals, R = 1; greedy,
   at most max_evals sweeps. *out is the smallest found (a copy of from when nothing shrinks);
   its support file, if any, is named shrunk-<metric> and written. */
int explore_shrink(const ExploreConfig *c, const ExploreRecord *from, int m, int max_evals,
                   ExploreRecord *out, NcError *err);

/* Records to and from JSON (the objects of explore.json's "instances" and of the journal). */
cJSON *explore_record_json(const ExploreRecord *r);
int explore_record_parse(const cJSON *o, ExploreRecord *r, NcError *err);

/* explore_config_json: the settings that define the instances (not their number): a resumed run
   must match them. */
cJSON *explore_config_json(const ExploreConfig *c);

/* explore_run: evaluates every instance of c not already in c->out/explore.jsonl (a journal, one
   JSON record per line, appended as instances finish; a killed run loses at most the instances
   in flight, or with several ranks the current round's), in parallel over OpenMP threads and the
   ranks of comm (NULL: one process). Every rank calls it; the first rank reads and writes the
   directory and gets all explore_count(c) records in *recs, in index order, each as read back
   from its journal line (the same on any number of ranks and threads); the others get NULL and
   *n = 0. progress (may be NULL; first rank) is called with the number done. NC_EUSAGE when the
   journal was written with other settings; NC_EFILE when the directory cannot be written. */
typedef void (*ExploreProgress)(void *ctx, long done, long total);
int explore_run(const ExploreConfig *c, Comm *comm, ExploreRecord **recs, long *n, long *resumed,
                ExploreProgress progress, void *ctx, NcError *err);

/* ---- the summary and the report (src/report/explore_report.c) ---- */

/* What the records say, metric by metric (judged metrics only). */
typedef struct {
    long n, certified;
    long rises[EXPLORE_JUDGED];       /* certified instances with a rise somewhere in k */
    long worse[EXPLORE_JUDGED];       /* certified, significant change from first to last k, worse */
    long better[EXPLORE_JUDGED];      /* the same, better */
    double max_rise[EXPLORE_JUDGED], max_rel[EXPLORE_JUDGED];
    long worst[EXPLORE_JUDGED];       /* record with the largest relative rise, -1 if none */
    double max_spread;                /* largest spread of a value over the optimal starts */
    double seconds, rate;             /* wall time of this run's instances, instances/s (set by the caller) */
    long resumed;
} ExploreSummary;

/* A counterexample: the worst instance of a metric and the shrunk one. */
typedef struct {
    int metric;
    long worst;                       /* record index */
    ExploreRecord minimal;
} ExploreCounter;

void explore_summarise(const ExploreRecord *r, long n, ExploreSummary *s);
/* explore.json: {"config","instances","summary"} (config includes the tolerance rule) */
cJSON *explore_report_json(const ExploreConfig *c, const ExploreRecord *r, long n, const ExploreSummary *s,
                           const ExploreCounter *cx, int ncx);
/* the terminal table: per metric, per family, and the counterexamples with their commands */
void explore_report_table(FILE *f, const ExploreConfig *c, const ExploreRecord *r, long n, const ExploreSummary *s,
                          const ExploreCounter *cx, int ncx);
/* explore_write: explore.json, explore.csv and explore.html into c->out, each atomically */
int explore_write(const ExploreConfig *c, const ExploreRecord *r, long n, const ExploreSummary *s,
                  const ExploreCounter *cx, int ncx, NcError *err);

#endif
