// net.h -- models as a small static graph of layers, with parameters, gradients and batch-norm
// statistics each in one contiguous block of named views; executed by a backend (reference
// loops or oneDNN) for a fixed batch size.
#ifndef NCELAB_NET_H
#define NCELAB_NET_H

#include <stddef.h>
#include <stdint.h>

#include "ncelab/core.h"

enum { NN_MAX_NODES = 160, NN_MAX_VALS = 160, NN_MAX_PARAMS = 96, NN_MAX_STATS = 32 };

typedef enum { NN_CONV, NN_BN, NN_RELU, NN_MAXPOOL, NN_AVGPOOL, NN_GAP, NN_LINEAR, NN_L2NORM, NN_ADD } NnOp;

typedef struct {
    NnOp op;
    int in, in2, out;        /* value ids (in2: the second operand of NN_ADD) */
    int k, stride, pad;      /* conv and pools */
    int w, b;                /* parameter ids (-1: none); NN_BN: gamma, beta */
    int stat;                /* NN_BN: index of its running statistics */
    char name[48];           /* e.g. "layer2.0.conv1", for messages */
} NnNode;

typedef struct { int c, h, w; } NnVal;  /* one image's shape; vectors have h = w = 1 */

typedef enum { NN_P_WEIGHT, NN_P_BIAS, NN_P_BN_GAMMA, NN_P_BN_BETA } NnParamKind;

typedef struct {
    char name[64];           /* PyTorch name, e.g. "layer1.0.bn1.weight" */
    int ndim, shape[4];
    size_t offset, size;     /* floats, into the parameter block */
    NnParamKind kind;
    int fan_in;
} NnParam;

typedef struct {
    char model[32];
    int in_c, in_h, in_w;
    int n_nodes, n_vals, n_params, n_stats;
    NnNode nodes[NN_MAX_NODES];
    NnVal vals[NN_MAX_VALS];
    NnParam views[NN_MAX_PARAMS];   /* named views into params and grads, in PyTorch order */
    char stat_names[NN_MAX_STATS][48];  /* batch-norm name, e.g. "bn1" */
    int stat_c[NN_MAX_STATS];
    size_t stat_offset[NN_MAX_STATS];   /* running_mean at offset, running_var at offset + c */
    int input, features, embeddings;    /* value ids */
    size_t n_param_floats, n_stat_floats;
    float *params;           /* (n_param_floats) one block */
    float *grads;            /* (n_param_floats) one block, same views */
    float *stats;            /* (n_stat_floats) running statistics */
    float bn_eps, bn_momentum;
} Net;

/* net_create: builds "convnet" (c in {1, 3}, h, w >= 8) or "resnet18" (c = 3, h, w >= 8) for
   c x h x w inputs and allocates the blocks (parameters zero, running var 1). NC_EUSAGE for an
   unknown model or an input it cannot take. */
int net_create(Net *net, const char *model, int c, int h, int w, NcError *err);
void net_free(Net *net);
/* net_init_fixture: the deterministic initialisation of docs/nn_spec.md (matches the PyTorch fixtures). */
void net_init_fixture(Net *net);
/* net_init_random: PyTorch's default initialisation (kaiming-uniform a = sqrt 5 for weights,
   uniform +-1/sqrt(fan_in) for biases, batch norm gamma 1, beta 0), from seed. */
void net_init_random(Net *net, uint64_t seed);
/* net_param: the parameter named name, or NULL. */
const NnParam *net_param(const Net *net, const char *name);
/* fixture_uniform: u(t, i) of docs/nn_spec.md, a double in [0, 1). */
double fixture_uniform(uint32_t t, uint32_t i);

typedef enum { NN_BACKEND_REF = 0, NN_BACKEND_DNNL = 1 } NnBackend;
typedef struct NetExec NetExec;

/* nnx_create: prepares the network for batches of `batch` images on a backend: activations,
   workspaces and (oneDNN) primitives are allocated here once; forward/backward allocate nothing. */
int nnx_create(NetExec **x, Net *net, int batch, NnBackend backend, NcError *err);
/* nnx_forward: input (batch, c, h, w) NCHW. training: batch statistics, running statistics
   updated; otherwise running statistics. NC_ENUM naming the first layer whose output is not
   finite. */
int nnx_forward(NetExec *x, const float *input, int training, NcError *err);
/* The outputs of the last forward, plain row-major: features (batch, F), embeddings (batch, D). */
const float *nnx_features(NetExec *x);
const float *nnx_embeddings(NetExec *x);
int nnx_feature_dim(const NetExec *x);
int nnx_embed_dim(const NetExec *x);
/* nnx_backward: from d_embeddings (batch, D), adds the parameter gradients into net->grads
   (callers zero them once per step). Needs a training forward just before. */
int nnx_backward(NetExec *x, const float *d_embeddings, NcError *err);
void nnx_free(NetExec *x);
/* Synchronised batch norm for data-parallel steps. fn replaces buf (n doubles) by the sum of
   every replica's buf (an all-reduce; ctx is passed through; 0 or an NcError code). With a sync
   set, a training forward computes each batch norm's batch statistics over the union of the
   replicas' batches (one call per batch norm: the per-channel sums of x and x^2 and the count),
   and backward the two per-channel sums of its input gradient likewise (one call), so P replicas
   on slices of one batch compute what a single executor computes on the whole batch: the same
   outputs, running statistics, and parameter gradients whose sum over the replicas is the single
   executor's. Evaluation forwards do not call fn; a non-zero return of fn ends the pass with that
   code. Each call waits for the other replicas, so all must run the same passes. The oneDNN
   backend takes a synchronised batch norm's input in nchw, nChw8c or nChw16c: a training forward
   fails with NC_EUSAGE before the first call otherwise. NULL (the default): local statistics,
   unchanged behaviour. */
typedef int (*NnAllreduce)(void *ctx, double *buf, int n, NcError *err);
void nnx_set_sync(NetExec *x, NnAllreduce fn, void *ctx);

/* Gradients as they become final, for overlapping their all-reduce with the rest of backward.
   During nnx_backward, fn(ctx, offset) is called whenever more of the gradient block is final:
   from offset to the end of the block (parameters are in forward order, so backward finishes
   them from the end), with offsets decreasing; the last call of a pass has offset 0. NULL: off. */
typedef void (*NnGradReady)(void *ctx, size_t offset);
void nnx_set_grad_ready(NetExec *x, NnGradReady fn, void *ctx);
/* Per-layer profile. nnx_profile: on = 1 zeroes the counters and starts timing every layer
   (each part then waits for its result; on the CPU the oneDNN stream runs synchronously, so
   this costs little); on = 0 stops and keeps the counts. The timed intervals are consecutive
   laps of one clock on the calling thread, so within a pass they never overlap. */
void nnx_profile(NetExec *x, int on);

/* The parts of a node's work: forward; backward to its input (data); backward to its parameters
   (weights, including adding them into net->grads); reorders and transforms of its weights or
   input between layouts. A batch norm's backward computes both gradients at once: all of it is
   counted as data. */
typedef enum { NN_PART_FWD, NN_PART_BWD_DATA, NN_PART_BWD_W, NN_PART_REORDER, NN_PART_N } NnPart;

typedef struct {
    double sec[NN_PART_N];   /* seconds in each part since nnx_profile(x, 1), over all passes */
    int runs_as;             /* the node whose kernel runs this one: itself, or the batch norm a
                                ReLU (and max pool) is fused into (its seconds are counted there) */
    int last;                /* the last node this node's kernel covers (itself, or the fused ones) */
    char path[NN_PART_N][40];  /* what ran each part: "oneDNN jit:avx2", "Winograd F(4,3) tiles", ... */
} NnNodeProfile;

/* nnx_profile_node: node's counters and path (node in 0..n_nodes-1), or, for node = -1, the
   executor's own work outside the nodes (forward: the copies of features and embeddings out;
   backward data: seeding the gradient; reorder: the input images to the first layer's layout).
   The reference backend reports zeros and path "reference loops". */
void nnx_profile_node(const NetExec *x, int node, NnNodeProfile *p);

/* One buffer the executor holds, for memory accounting; every buffer is allocated by
   nnx_create and lives until nnx_free. */
typedef struct {
    char name[64];           /* the layer or what it is, e.g. "layer3.0.conv2" */
    char kind[40];           /* e.g. "Winograd scratch", "activations kept for backward" */
    size_t bytes;
} NnMemRow;

/* nnx_memory: the executor's buffers (at most cap rows written to rows, which may be NULL with
   cap = 0); returns how many there are. The activation arena is split into the activations
   alive at its busiest moment (kept for backward), the gradients alive then, and the remainder
   (slots of the liveness plan unused at that moment), which add up to the arena. Buffers that
   the step never touches (evaluation-only workspaces) are left out. */
int nnx_memory(const NetExec *x, NnMemRow *rows, int cap);

#endif
