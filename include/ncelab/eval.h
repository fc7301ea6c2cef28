// eval.h -- downstream evaluation of a representation: mean classifier, linear probe, weighted
// kNN, and the geometry of the class means.
#ifndef NCELAB_EVAL_H
#define NCELAB_EVAL_H

#include <stdint.h>

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

/* npy_write: a float32 (rows, cols) or int32 (rows) array as a .npy file (version 1.0), atomically. */
int npy_write_f32(const char *path, const float *a, int rows, int cols, NcError *err);
int npy_write_i32(const char *path, const int32_t *a, int n, NcError *err);

#endif
