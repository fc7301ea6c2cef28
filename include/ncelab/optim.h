// optim.h -- optimisers over a Net's parameter block (SGD, AdamW, LARS) and learning-rate schedules.
#ifndef NCELAB_OPTIM_H
#define NCELAB_OPTIM_H

#include "ncelab/core.h"
#include "ncelab/net.h"

typedef enum { OPT_SGD = 0, OPT_ADAMW = 1, OPT_LARS = 2 } OptType;

typedef struct {
    OptType type;
    float momentum;      /* SGD, LARS (default 0.9) */
    int nesterov;        /* SGD */
    float weight_decay;  /* decoupled for SGD and AdamW; added to the gradient for LARS */
    float beta1, beta2, eps;  /* AdamW (0.9, 0.999, 1e-8) */
    float eta;           /* LARS trust coefficient (0.001) */
} OptConfig;

/* Optimiser state: one block of 2 x n_param_floats floats (momentum / first and second moments). */
typedef struct {
    OptConfig cfg;
    Net *net;
    float *state;
    long step;
} Optim;

/* optim_parse: "sgd", "sgd-nesterov", "adamw" or "lars" with the defaults above and the given
   weight decay. NC_EUSAGE naming --optim. */
int optim_parse(const char *name, float weight_decay, OptConfig *c, NcError *err);
int optim_create(Optim *o, Net *net, const OptConfig *c, NcError *err);
/* optim_step: one update of net->params from net->grads with learning rate lr (exact rules in
   docs/nn_spec.md: SGD p <- p (1 - lr wd) - lr v; AdamW as torch.optim.AdamW; LARS as SimCLR,
   one-dimensional parameters (batch norm, biases) excluded from adaptation and decay). */
void optim_step(Optim *o, float lr);
void optim_free(Optim *o);

typedef enum { LR_CONSTANT = 0, LR_COSINE = 1, LR_STEP = 2 } LrKind;

typedef struct {
    LrKind kind;
    float base;          /* peak learning rate */
    long warmup;         /* cosine: linear warm-up steps from base / warmup to base */
    long total;          /* cosine: total steps (the rate reaches min_lr at total) */
    float min_lr;
    long step_size;      /* step: multiply by gamma every step_size steps */
    float gamma;
} LrConfig;

/* lr_at: the learning rate at step t = 0, 1, ... */
float lr_at(const LrConfig *c, long t);
/* lr_parse: "constant", "cosine" or "step"; NC_EUSAGE naming --schedule. */
int lr_parse(const char *name, LrKind *kind, NcError *err);

#endif
