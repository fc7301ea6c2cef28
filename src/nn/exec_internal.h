// exec_internal.h -- what the two backends of NetExec share: the dispatch table and common state.
#ifndef NCELAB_NN_EXEC_INTERNAL_H
#define NCELAB_NN_EXEC_INTERNAL_H

#include "ncelab/net.h"

struct NetExec {
    Net *net;
    int batch;
    NnBackend backend;
    int trained_forward;     /* the last forward was in training mode */
    NnAllreduce sync;        /* synchronised batch norm (nnx_set_sync), or NULL */
    void *sync_ctx;
    double *sync_buf;        /* (2 c + 1) for the widest batch norm: the buffer handed to sync */
    NnGradReady grad_ready;  /* nnx_set_grad_ready, or NULL */
    void *grad_ctx;
    size_t *ready_after;     /* (n_nodes) once node i's backward is done, the gradients from this
                                offset to the end of the block are final (all their nodes done) */
    size_t ready;            /* the smallest such offset announced in this backward */
    float *features;         /* (batch, F) plain copy of the features */
    float *embeddings;       /* (batch, D) plain copy of the embeddings */
    int (*forward)(NetExec *x, const float *input, int training, NcError *err);
    int (*backward)(NetExec *x, const float *d_embeddings, NcError *err);
    void (*destroy)(NetExec *x);
    /* value v's data (grad = 0) or gradient (grad = 1) as plain NCHW; the oneDNN backend reuses
       buffers once a value is dead, so this shows what the buffer holds now (debugging only) */
    void (*peek)(NetExec *x, int v, int grad, float *out);
    void (*profile)(NetExec *x, int on);
    void (*profile_node)(const NetExec *x, int node, NnNodeProfile *p);  /* fills what nnx_profile_node set up */
    int (*memory)(const NetExec *x, NnMemRow *rows, int cap, int n);      /* appends rows after n, returns the count */
    void *impl;              /* the backend's own state */
};

int nnx_create_ref(NetExec *x, NcError *err);
int nnx_create_dnnl(NetExec *x, NcError *err);

/* nn_first_nonfinite: index of the first non-finite value in v (len), or -1. */
long nn_first_nonfinite(const float *v, long len);

/* nnx_node_done: the backends call it after each node's backward: announces the gradients that
   have become final to grad_ready. */
void nnx_node_done(NetExec *x, int node);

/* nnx_sync_sum: replaces the first n doubles of x->sync_buf by their sum over the replicas
   (x->sync must be set); 0 or the sync function's error code (err filled by it). */
int nnx_sync_sum(NetExec *x, int n, NcError *err);

/* nnx_mem_row: appends (name, kind, bytes) as row n when bytes > 0 and n < cap; returns the new
   count (counting rows that did not fit, so that callers learn how many there are). */
int nnx_mem_row(NnMemRow *rows, int cap, int n, const char *name, const char *kind, size_t bytes);

/* nnx_peek: see NetExec.peek (tests and debugging). */
void nnx_peek(NetExec *x, int v, int grad, float *out);

#endif
