// eval.h -- downstream evaluation of a representation: mean classifier, linear probe, weighted
// kNN, and the geometry of the class means.
#ifndef NCELAB_EVAL_H
#define NCELAB_EVAL_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "ncelab/core.h"
#include "ncelab/data.h"
#include "ncelab/net.h"

typedef struct {
    double mean_acc;           /* mean classifier (Saunshi et al.) on unit-normalised embeddings:
                                  class means of train, argmax f . mu_c on test */
    double linear_acc;         /* multinomial logistic regression on standardised frozen embeddings */
    double knn_acc;            /* weighted cosine kNN (k neighbours, weights exp(cos / T)) */
    double simplex_deviation;  /* max_{i<j} |cos(mu_i, mu_j) + 1/(N-1)| of the class means */
    double within_class_ratio; /* trace of the within-class covariance / trace of the between-class */
    double probe_l2;           /* the L2 strength chosen on a held-out 10% of train */
} EvalMetrics;

typedef struct {
    int knn_k;                 /* default 200 */
    double knn_t;              /* default 0.1 */
    uint64_t seed;             /* the held-out split of the probe */
    /* Data-parallel evaluation: this process is part `part` of `parts` (default 0 of 1). Each part
       embeds its block of rows (eval_net) and takes its block of the kNN's test rows and of the
       probe's training rows; sum replaces buf (n doubles) by its sum over the parts, gather puts
       the parts' send blocks (bytes each) in order into recv. Every part ends with the same
       metrics. */
    int part, parts;
    NnAllreduce sum;
    int (*gather)(void *ctx, const void *send, void *recv, size_t bytes, NcError *err);
    void *ctx;
} EvalConfig;

void eval_config_default(EvalConfig *c);

/* eval_embed: features (n, F) and head embeddings (n, D) of every image of split s, in
   evaluation mode (running statistics), normalised with mean/std (per channel), in chunks of
   `batch` images through the oneDNN backend. NC_ENUM naming a layer on a NaN. */
int eval_embed(Net *net, const DataSplit *s, const float *mean, const float *std, int batch,
               float *features, float *head, NcError *err);

/* eval_metrics: the metrics of embeddings xtr (ntr, d) with labels ytr and xte (nte, d), yte, for
   nclass classes. */
int eval_metrics(const float *xtr, const int32_t *ytr, int ntr, const float *xte, const int32_t *yte,
                 int nte, int d, int nclass, const EvalConfig *c, EvalMetrics *m, NcError *err);

/* eval_knn: accuracy of the weighted cosine kNN classifier (k neighbours, weights exp(cos / T))
   of the test rows against the train rows; nc <= 1024 classes. */
double eval_knn(const float *xtr, const int32_t *ytr, int ntr, const float *xte, const int32_t *yte, int nte, int d,
                int nc, int k, double T);
/* eval_knn_right: how many of the test rows t0..t1-1 the kNN classifier gets right. */
long eval_knn_right(const float *xtr, const int32_t *ytr, int ntr, const float *xte, const int32_t *yte, int t0, int t1,
                    int d, int nc, int k, double T);

typedef struct {
    EvalMetrics features, head;  /* the backbone features and the normalised head output */
    int ntrain, ntest, nclass;
    double embed_seconds, metric_seconds;
} EvalReport;

/* eval_net: embeds both splits of ds with net (inputs normalised with mean and std per channel,
   data_norm_stats), in chunks of `batch`, and evaluates both layers. emb_stem (or NULL) writes
   STEM_{train,test}_{features,head,labels}.npy (part 0 writes). With ec->parts > 1 every part
   calls it together (see EvalConfig). */
int eval_net(Net *net, const Dataset *ds, const float *mean, const float *std, const EvalConfig *ec, int batch,
             const char *emb_stem, EvalReport *r, NcError *err);

/* eval_metrics_json: {"mean_acc","linear_acc","knn_acc","simplex_deviation","within_class_ratio",
   "probe_l2"} (DESIGN.md section 4); eval_metrics_from_json reads it back (0 when malformed). */
cJSON *eval_metrics_json(const EvalMetrics *m);
int eval_metrics_from_json(const cJSON *o, EvalMetrics *m);

/* npy_write: a float32 (rows, cols) or int32 (rows) array as a .npy file (version 1.0), atomically. */
int npy_write_f32(const char *path, const float *a, int rows, int cols, NcError *err);
int npy_write_i32(const char *path, const int32_t *a, int n, NcError *err);

#endif
