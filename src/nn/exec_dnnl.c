// exec_dnnl.c -- the oneDNN backend: convolution, batch norm (fused with ReLU), pooling and inner
// product through oneDNN primitives created once per batch size, activations kept in the
// blocked layouts the convolutions choose from layer to layer (reordered only at the input,
// and for weights), gradients accumulated through a scratch buffer where a value has several
// consumers. The row-wise L2 normalisation and the residual gradients run as plain loops.
#include "bn_add_relu.h"
#include "bn_relu_pool.h"
#include "conv_gemm.h"
#include "conv_wino.h"
#include "conv_wino_s2.h"
#include "first_grad.h"
#include "exec_internal.h"
#include "ncelab/layers.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <omp.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    dnnl_primitive_t fwd, fwd_eval, bwd_data, bwd_w;
    dnnl_memory_t ws;                       /* max pool or fused BN-ReLU workspace */
    /* convolution and linear weights */
    dnnl_memory_t w_plain, w_fwd, w_bwd;    /* plain view of the parameter; primitive formats */
    dnnl_primitive_t re_fwd, re_bwd;        /* plain -> w_fwd, plain -> w_bwd (NULL when equal) */
    dnnl_memory_t dw, dw_plain;             /* diff weights: primitive format, plain scratch */
    dnnl_primitive_t re_dw;
    dnnl_memory_t bias, dbias;
    dnnl_memory_t src_bwd;                  /* first layer: its input in the weight gradient's layout */
    dnnl_primitive_t re_src;
    /* batch norm */
    dnnl_memory_t mean, var, scale, shift, dscale, dshift, rmean, rvar;
    int fused_relu;                         /* this BN also applies the next node's ReLU */
    int skip;                               /* this ReLU is done by the BN before it */
    int out;                                /* the value this node really writes */
    WinoConv *wino;                         /* a 3x3 convolution run by conv_wino.c, or NULL */
    GemmConv *cg;                           /* a strided convolution run by conv_gemm.c, or NULL */
    Ws2Conv *ws2;                           /* with cg: run by conv_wino_s2.c instead, or NULL */
    int pool;                               /* BN: the max pool it runs with its ReLU (bn_relu_pool.c), or 0 */
    int add;                                /* BN: the residual add it runs, then the ReLU after (bn_add_relu.c), or 0 */
    int res;                                /* ... the add's other operand, r in max(0, bn(x) + r) */
    char path[NN_PART_N][40];               /* what runs each part (nnx_profile_node) */
    FirstGrad *fg;                          /* ... and the weight gradient of the first convolution before it
                                               (first_grad.c), whose output gradient is then never formed */
    int fg_fwd;                             /* ... and its forward too: the convolution's output is never formed */
    int in_bn;                              /* convolution: its forward runs in the batch norm after it (fg_fwd) */
    uint8_t *pidx;                          /* ... the pool's window positions (a max pool) */
    uint8_t *rmask;                         /* BN + add + ReLU: the ReLU's mask, a bit an element */
    float *xk;                              /* ... and its input at each window's maximum, all that the
                                               backward's sums read of it (not with fg: fg->xk) */
    int gap;                                /* BN with pool: the pool is a global average pool */
    double *gkept;                          /* ... its ReLU's counts and sums of x - mean (bnp_gap_forward) */
    double *pscr;                           /* ... the sums of its parts (bnp_scratch_doubles) */
    double *csum;                           /* ... its batch sums [y - shift (c), (y - shift)^2 (c)] from the
                                               Winograd forward before it (wino_forward_sums), or NULL */
    double *cpart;                          /* ... and the parts of those sums (wino_sums_doubles) */
    int sums_bn;                            /* Winograd convolution: the BN whose csum its training forward
                                               writes, or 0 */
    /* synchronised batch norm (nnx_set_sync): the BN with given statistics (the all-reduced ones) */
    dnnl_primitive_t fwd_sync, bwd_sync;
    dnnl_memory_t ws_sync;                  /* its ReLU workspace (n->ws when the layouts agree) */
    dnnl_memory_t ws_re;                    /* the workspace of recomputing its output (recompute_output) */
    int blk;                                /* the channel block of its input's layout (1: nchw), 0: another */
    double count;                           /* the values its last training statistics came from */
} DNode;

typedef struct {
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    dnnl_memory_desc_t md[NN_MAX_VALS];
    dnnl_memory_t mem[NN_MAX_VALS], gmem[NN_MAX_VALS], gscr[NN_MAX_VALS];
    int consumers[NN_MAX_VALS], ginit[NN_MAX_VALS];
    DNode dn[NN_MAX_NODES];
    dnnl_memory_t in_user;                  /* the caller's NCHW input */
    dnnl_primitive_t re_in;                 /* NCHW -> the first convolution's layout, or NULL */
    float *scratch;                         /* gradient accumulation scratch (scratch_floats) */
    size_t scratch_used;                    /* ... the most floats of it a backward pass has written */
    float *wscratch;                        /* plain weight-gradient scratch of the oneDNN layers */
    size_t wscratch_n;                      /* its floats: their largest weight */
    float *wino_scratch, *wino_wbuf;        /* the Winograd and GEMM layers' work, shared (share_wino_work) */
    size_t wino_scratch_n, wino_wbuf_n;     /* ... its floats: the largest layer's */
    char *arena;                            /* every value's data and gradient, by liveness */
    size_t data_off[NN_MAX_VALS], grad_off[NN_MAX_VALS], arena_bytes;
    int rec_bn[NN_MAX_VALS];                /* 1 + the BN+ReLU node whose output v is recomputed in backward, or 0 */
    size_t re_off[NN_MAX_VALS];             /* ... where the recomputed copy lives in the arena */
    dnnl_memory_t mem_re[NN_MAX_VALS];      /* ... and its memory */
    size_t live_data, live_grad;            /* the arena's busiest moment: bytes of values, gradients */
    long live_t;                            /* ... its time in the plan (see plan_arena) */
    int profile;                            /* nnx_profile: time every node */
    double lap;                             /* the clock at the end of the last lap */
    double t[NN_MAX_NODES + 1][NN_PART_N];  /* seconds by node and part; [NN_MAX_NODES]: the executor's own */
} DState;

#define DN_CHECK(call, what)                                                             \
    do {                                                                                 \
        dnnl_status_t st_ = (call);                                                      \
        if (st_ != dnnl_success)                                                         \
            return nc_fail(err, NC_ENUM, "oneDNN: %s failed for %s (status %d)", what,   \
                           d->name, (int)st_);                                           \
    } while (0)

static void md_plain(dnnl_memory_desc_t *md, int ndims, const int64_t *dims, dnnl_format_tag_t tag) {
    dnnl_dims_t dd;
    for (int i = 0; i < ndims; i++) dd[i] = dims[i];
    dnnl_memory_desc_init_by_tag(md, ndims, dd, dnnl_f32, tag);
}

static void md_any(dnnl_memory_desc_t *md, int ndims, const int64_t *dims) {
    md_plain(md, ndims, dims, dnnl_format_tag_any);
}

static dnnl_memory_t mem_new(DState *s, const dnnl_memory_desc_t *md, void *handle) {
    dnnl_memory_t m = NULL;
    dnnl_memory_create(&m, md, s->eng, handle ? handle : DNNL_MEMORY_ALLOCATE);
    return m;
}

/* A memory on the weight-gradient scratch, which exists once every layer is built: the
   largest of its users' weights, not of all weights (the Winograd and GEMM layers, the
   largest in ResNet-18, write their gradients in place). */
static dnnl_memory_t wscratch_mem(DState *s, const dnnl_memory_desc_t *md) {
    dnnl_memory_t m = NULL;
    dnnl_memory_create(&m, md, s->eng, DNNL_MEMORY_NONE);
    size_t n = dnnl_memory_desc_get_size(md) / sizeof(float);
    if (n > s->wscratch_n) s->wscratch_n = n;
    return m;
}

static float *mem_ptr(dnnl_memory_t m) {
    void *p = NULL;
    dnnl_memory_get_data_handle(m, &p);
    return p;
}

static size_t md_floats(const dnnl_memory_desc_t *md) { return dnnl_memory_desc_get_size(md) / sizeof(float); }

static void exec(DState *s, dnnl_primitive_t p, int n, const dnnl_exec_arg_t *args) {
    dnnl_primitive_execute(p, s->strm, n, args);
}

static void reorder(DState *s, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    exec(s, r, 2, a);
}

/* ---- profile: consecutive laps of one clock, so that no interval is counted twice ---- */
enum { EXEC_ROW = NN_MAX_NODES };           /* s->t row of the executor's own work */

static void prof_start(DState *s) {
    if (s->profile) s->lap = nc_now();
}

/* prof_lap: with profiling on, waits for the stream and adds the time since the last lap to
   part of node i (EXEC_ROW: the executor's own work) */
static void prof_lap(DState *s, int i, NnPart part) {
    if (!s->profile) return;
    dnnl_stream_wait(s->strm);
    double now = nc_now();
    s->t[i][part] += now - s->lap;
    s->lap = now;
}

/* path_set: n->path[part] = what, followed by the oneDNN implementation of p ("jit:avx2") */
static void path_set(DNode *n, NnPart part, const char *what, dnnl_primitive_t p) {
    const_dnnl_primitive_desc_t pd = NULL;
    const char *impl = NULL;
    if (p && dnnl_primitive_get_primitive_desc(p, &pd) == dnnl_success)
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    snprintf(n->path[part], sizeof n->path[part], "%s%s%s", what, impl ? " " : "", impl ? impl : "");
}

/* A reorder from md a to md b, or NULL when they are equal. */
static dnnl_primitive_t reorder_new(DState *s, const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b) {
    if (dnnl_memory_desc_equal(a, b)) return NULL;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p = NULL;
    if (dnnl_reorder_primitive_desc_create(&pd, a, s->eng, b, s->eng, NULL) != dnnl_success) return NULL;
    dnnl_primitive_create(&p, pd);
    dnnl_primitive_desc_destroy(pd);
    return p;
}

static int value_dims(const NetExec *x, int v, int64_t *dims) {
    const NnVal *nv = &x->net->vals[v];
    dims[0] = x->batch; dims[1] = nv->c; dims[2] = nv->h; dims[3] = nv->w;
    return nv->h == 1 && nv->w == 1 ? 2 : 4;
}

/* Creates the primitive of pd (destroying pd unless keep is non-NULL). */
static dnnl_primitive_t prim_of(dnnl_primitive_desc_t pd, dnnl_primitive_desc_t *keep) {
    dnnl_primitive_t p = NULL;
    dnnl_primitive_create(&p, pd);
    if (keep) *keep = pd; else dnnl_primitive_desc_destroy(pd);
    return p;
}

/* A 3x3, stride-1, padding-1 convolution without bias whose input is nChw8c and whose channel
   counts suit conv_wino.c runs there (its output nChw8c too); NC_EUSAGE when it does not apply. */
static int build_wino(NetExec *x, DState *s, int i, const int64_t *di, const int64_t *dout) {
    NnNode *d = &x->net->nodes[i];
    if (d->k != 3 || d->stride != 1 || d->pad != 1 || d->b >= 0 || !wino_supported((int)di[1], (int)dout[1]))
        return NC_EUSAGE;
    dnnl_memory_desc_t blocked;
    md_plain(&blocked, 4, di, dnnl_aBcd8b);
    if (!dnnl_memory_desc_equal(&blocked, &s->md[d->in])) return NC_EUSAGE;
    WinoConv *wc = nc_calloc(1, sizeof *wc);
    if (wino_init(wc, x->batch, (int)di[1], (int)dout[1], (int)di[2], (int)di[3]) != 0) {
        free(wc);
        return NC_EUSAGE;
    }
    DNode *n = &s->dn[i];
    n->wino = wc;
    const char *mode = wc->global ? "Winograd F(4,3) global" : "Winograd F(4,3) tiles";
    snprintf(n->path[NN_PART_FWD], sizeof n->path[0], "%s", mode);
    snprintf(n->path[NN_PART_BWD_DATA], sizeof n->path[0], "%s", mode);
    snprintf(n->path[NN_PART_BWD_W], sizeof n->path[0], "%s", mode);
    snprintf(n->path[NN_PART_REORDER], sizeof n->path[0], "Winograd weight transform");
    md_plain(&s->md[d->out], 4, dout, dnnl_aBcd8b);
    return NC_OK;
}

/* A stride-2 convolution without bias whose input is nChw8c or nChw16c (channel counts multiples
   of the block) runs as GEMMs in conv_gemm.c (its output in the same layout); NC_EUSAGE when it
   does not apply. */
static int build_cgemm(NetExec *x, DState *s, int i, const int64_t *di, const int64_t *dout) {
    NnNode *d = &x->net->nodes[i];
    if (d->stride != 2 || d->k != 3 || d->b >= 0) return NC_EUSAGE;  /* 1x1 stride 2: oneDNN was faster (50 against 65 ms) */
    int blk = 0;
    dnnl_memory_desc_t blocked;
    md_plain(&blocked, 4, di, dnnl_aBcd8b);
    if (dnnl_memory_desc_equal(&blocked, &s->md[d->in])) blk = 8;
    md_plain(&blocked, 4, di, dnnl_aBcd16b);
    if (dnnl_memory_desc_equal(&blocked, &s->md[d->in])) blk = 16;
    if (!blk || !cgemm_supported((int)di[1], (int)dout[1], blk)) return NC_EUSAGE;
    GemmConv *g = nc_calloc(1, sizeof *g);
    if (cgemm_init(g, x->batch, (int)di[1], (int)dout[1], (int)di[2], (int)di[3], d->k, d->stride, d->pad, blk) != 0 ||
        g->oh != dout[2] || g->ow != dout[3]) {
        free(g);
        return NC_EUSAGE;
    }
    DNode *n = &s->dn[i];
    n->cg = g;
    for (int part = NN_PART_FWD; part <= NN_PART_BWD_W; part++)
        snprintf(n->path[part], sizeof n->path[0], part == NN_PART_BWD_W ? "im2col + OpenBLAS sgemm" : "im2col + GEMM kernel");
    snprintf(n->path[NN_PART_REORDER], sizeof n->path[0], "filters packed");
    /* 3x3, padding 1, nChw8c: polyphase Winograd (conv_wino_s2.c) instead, 1.3-1.6x faster at
       ResNet-18's shapes */
    Ws2Conv *wc = nc_calloc(1, sizeof *wc);
    if (blk == 8 && d->pad == 1 && ws2_init(wc, x->batch, (int)di[1], (int)dout[1], (int)di[2], (int)di[3]) == 0 &&
        wc->oh == dout[2] && wc->ow == dout[3]) {
        n->ws2 = wc;
        for (int part = NN_PART_FWD; part <= NN_PART_BWD_W; part++)
            snprintf(n->path[part], sizeof n->path[0], "Winograd F(4,2) polyphase");
        snprintf(n->path[NN_PART_REORDER], sizeof n->path[0], "Winograd weight transform");
    } else {
        free(wc);
    }
    md_plain(&s->md[d->out], 4, dout, blk == 8 ? dnnl_aBcd8b : dnnl_aBcd16b);
    return NC_OK;
}

static int build_conv(NetExec *x, DState *s, int i, NcError *err) {
    Net *net = x->net;
    NnNode *d = &net->nodes[i];
    DNode *n = &s->dn[i];
    int64_t di[4], dout[4];
    value_dims(x, d->in, di);
    value_dims(x, d->out, dout);
    const NnParam *wp = &net->views[d->w];
    int64_t wd[4] = {wp->shape[0], wp->shape[1], wp->shape[2], wp->shape[3]};
    dnnl_memory_desc_t src_any, wei_any, dst_any, wei_plain;
    dnnl_dims_t strides = {d->stride, d->stride}, pad = {d->pad, d->pad};
    md_any(&wei_any, 4, wd);
    md_any(&dst_any, 4, dout);
    md_plain(&wei_plain, 4, wd, dnnl_oihw);
    int first = d->in == net->input;
    if (!first && build_wino(x, s, i, di, dout) == NC_OK) return NC_OK;
    if (!first && build_cgemm(x, s, i, di, dout) == NC_OK) return NC_OK;
    if (first) md_any(&src_any, 4, di); else src_any = s->md[d->in];
    dnnl_convolution_desc_t cd;
    DN_CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &src_any,
                                                &wei_any, NULL, &dst_any, strides, pad, pad), "convolution forward");
    dnnl_primitive_desc_t fpd, pd;
    DN_CHECK(dnnl_primitive_desc_create(&fpd, &cd, NULL, s->eng, NULL), "convolution forward");
    if (first) s->md[d->in] = *dnnl_primitive_desc_query_md(fpd, dnnl_query_src_md, 0);
    s->md[d->out] = *dnnl_primitive_desc_query_md(fpd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *wf = dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 0);
    n->w_plain = mem_new(s, &wei_plain, net->params + wp->offset);
    n->w_fwd = mem_new(s, wf, NULL);
    n->re_fwd = reorder_new(s, &wei_plain, wf);
    if (!n->re_fwd) { dnnl_memory_destroy(n->w_fwd); n->w_fwd = n->w_plain; }
    /* backward data (not needed for the first layer) */
    if (!first) {
        dnnl_convolution_desc_t bd;
        DN_CHECK(dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &s->md[d->in], &wei_any,
                                                          &s->md[d->out], strides, pad, pad), "convolution backward data");
        DN_CHECK(dnnl_primitive_desc_create(&pd, &bd, NULL, s->eng, fpd), "convolution backward data");
        const dnnl_memory_desc_t *wb = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        if (dnnl_memory_desc_equal(wb, wf)) {
            n->w_bwd = n->w_fwd;
        } else {
            n->w_bwd = mem_new(s, wb, NULL);
            n->re_bwd = reorder_new(s, &wei_plain, wb);
        }
        n->bwd_data = prim_of(pd, NULL);
    }
    /* The first layer reads the caller's plain images; for one channel oneDNN 2.6 has only a
       reference kernel for the weight gradient on that layout (1000x slower), so there the
       source layout is left to it and the input reordered for the backward pass. */
    dnnl_memory_desc_t wsrc = s->md[d->in];
    if (first) md_any(&wsrc, 4, di);
    dnnl_convolution_desc_t wdsc;
    DN_CHECK(dnnl_convolution_backward_weights_desc_init(&wdsc, dnnl_convolution_direct, &wsrc, &wei_any, NULL,
                                                         &s->md[d->out], strides, pad, pad), "convolution backward weights");
    DN_CHECK(dnnl_primitive_desc_create(&pd, &wdsc, NULL, s->eng, fpd), "convolution backward weights");
    if (first) {
        const dnnl_memory_desc_t *ws = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
        n->re_src = reorder_new(s, &s->md[d->in], ws);
        if (n->re_src) n->src_bwd = mem_new(s, ws, NULL);
    }
    const dnnl_memory_desc_t *dwm = dnnl_primitive_desc_query_md(pd, dnnl_query_diff_weights_md, 0);
    n->dw = mem_new(s, dwm, NULL);
    n->dw_plain = wscratch_mem(s, &wei_plain);
    n->re_dw = reorder_new(s, dwm, &wei_plain);
    if (!n->re_dw) { dnnl_memory_destroy(n->dw); n->dw = n->dw_plain; }
    n->bwd_w = prim_of(pd, NULL);
    n->fwd = prim_of(fpd, NULL);
    n->fwd_eval = n->fwd;
    path_set(n, NN_PART_FWD, "oneDNN", n->fwd);
    path_set(n, NN_PART_BWD_DATA, "oneDNN", n->bwd_data);
    path_set(n, NN_PART_BWD_W, "oneDNN", n->bwd_w);
    path_set(n, NN_PART_REORDER, "oneDNN reorder", NULL);
    return NC_OK;
}

/* The channel block B of md when its layout is [n][c / B][h][w][B] (B = 1: plain nchw), else 0. */
static int channel_block(const dnnl_memory_desc_t *md) {
    static const struct { dnnl_format_tag_t tag; int blk; } known[] = {
        {dnnl_nchw, 1}, {dnnl_aBcd8b, 8}, {dnnl_aBcd16b, 16}};
    if (md->ndims != 4) return 0;
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
        dnnl_memory_desc_t m;
        md_plain(&m, 4, md->dims, known[k].tag);
        if (dnnl_memory_desc_equal(&m, md)) return known[k].blk;
    }
    return 0;
}

/* A batch norm's primitives for synchronised training: forward and backward with the statistics
   given (dnnl_use_global_stats), built with the others so that nnx_set_sync allocates nothing. */
static int build_bn_sync(NetExec *x, DState *s, int i, unsigned flags, NcError *err) {
    Net *net = x->net;
    NnNode *d = &net->nodes[i];
    DNode *n = &s->dn[i];
    const dnnl_memory_desc_t *md = &s->md[d->in];
    n->blk = channel_block(md);
    unsigned gflags = flags | dnnl_use_global_stats;
    dnnl_batch_normalization_desc_t bd;
    dnnl_primitive_desc_t fpd, pd;
    DN_CHECK(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_training, md, net->bn_eps, gflags),
             "batch norm (given statistics)");
    DN_CHECK(dnnl_primitive_desc_create(&fpd, &bd, NULL, s->eng, NULL), "batch norm (given statistics)");
    if (n->fused_relu) {
        const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(fpd, dnnl_query_workspace_md, 0), *have = NULL;
        dnnl_memory_get_memory_desc(n->ws, &have);
        n->ws_sync = dnnl_memory_desc_equal(wmd, have) ? n->ws : mem_new(s, wmd, NULL);
        if (s->rec_bn[n->out] == i + 1) n->ws_re = mem_new(s, wmd, NULL);
    }
    dnnl_batch_normalization_desc_t bb;
    DN_CHECK(dnnl_batch_normalization_backward_desc_init(&bb, dnnl_backward, md, md, net->bn_eps, gflags),
             "batch norm backward (given statistics)");
    DN_CHECK(dnnl_primitive_desc_create(&pd, &bb, NULL, s->eng, fpd), "batch norm backward (given statistics)");
    n->bwd_sync = prim_of(pd, NULL);
    n->fwd_sync = prim_of(fpd, NULL);
    return NC_OK;
}

/* BN + ReLU + pool node i right after the network's first convolution (3x3, stride 1, padding 1,
   no bias, at most 3 input channels on plain NCHW), which feeds it alone: the convolution's weight
   gradient comes from first_grad.c in the batch norm's backward, and nothing flows back into the
   convolution's output. */
static void build_first_grad(NetExec *x, DState *s, int i) {
    Net *net = x->net;
    NnNode *d = &net->nodes[i], *cv = i > 0 ? &net->nodes[i - 1] : NULL;
    const NnVal *vi = &net->vals[cv ? cv->in : 0];
    if (!cv || cv->op != NN_CONV || cv->out != d->in || cv->in != net->input || cv->k != 3 || cv->stride != 1 ||
        cv->pad != 1 || cv->b >= 0 || s->consumers[d->in] != 1 || channel_block(&s->md[cv->in]) != 1 ||
        !fg_supported(vi->c, net->vals[d->in].c, vi->h, vi->w) || net->vals[d->in].h != vi->h)
        return;
    FirstGrad *fg = nc_calloc(1, sizeof *fg);
    if (fg_init(fg, x->batch, vi->c, net->vals[d->in].c, vi->h, vi->w) != 0) {
        free(fg);
        return;
    }
    s->dn[i].fg = fg;
    snprintf(s->dn[i - 1].path[NN_PART_BWD_W], sizeof s->dn[0].path[0], "in %s's backward", d->name);
    const char *off = getenv("NCELAB_FIRST_FWD");
    if (fg_forward_supported(fg) && !(off && *off == '0')) {
        s->dn[i].fg_fwd = 1;
        s->dn[i - 1].in_bn = 1;
        snprintf(s->dn[i - 1].path[NN_PART_FWD], sizeof s->dn[0].path[0], "in %s's forward", d->name);
    }
}

/* The batch statistics of BN node i from the sums the Winograd forward before it takes of its
   output tiles as it writes them (wino_forward_sums), not from a pass over the output; shifted by
   the running mean against cancellation. NCELAB_CONV_STATS=0 reads the output (bnp_stats,
   blocked_sums, oneDNN's batch norm). */
static void conv_sums(NetExec *x, DState *s, int i) {
    Net *net = x->net;
    NnNode *d = &net->nodes[i];
    DNode *n = &s->dn[i];
    const char *cst = getenv("NCELAB_CONV_STATS");
    if (!n->fg && i > 0 && net->nodes[i - 1].op == NN_CONV && net->nodes[i - 1].out == d->in && s->dn[i - 1].wino &&
        !(cst && *cst == '0')) {
        n->csum = nc_malloc(sizeof(double) * 2 * net->vals[d->in].c);
        n->cpart = nc_malloc(sizeof(double) * wino_sums_doubles(s->dn[i - 1].wino));
        s->dn[i - 1].sums_bn = i;
    }
}

static int build_bn(NetExec *x, DState *s, int i, NcError *err) {
    Net *net = x->net;
    NnNode *d = &net->nodes[i];
    DNode *n = &s->dn[i];
    int c = net->vals[d->in].c;
    /* fuse the ReLU that follows when this BN's output feeds it alone */
    NnNode *nx = i + 1 < net->n_nodes ? &net->nodes[i + 1] : NULL;
    n->fused_relu = nx && nx->op == NN_RELU && nx->in == d->out && s->consumers[d->out] == 1;
    n->out = n->fused_relu ? nx->out : d->out;
    if (n->fused_relu) s->dn[i + 1].skip = 1;
    const dnnl_memory_desc_t *md = &s->md[d->in];
    s->md[n->out] = *md;  /* a fused BN's own output value gets no memory */
    /* BN + ReLU + a 2x2 max pool of stride 2 that reads the ReLU alone: one kernel on nChw8c */
    NnNode *np = n->fused_relu && i + 2 < net->n_nodes ? &net->nodes[i + 2] : NULL;
    const NnVal *vin = &net->vals[d->in];
    int64_t di[4];
    value_dims(x, d->in, di);
    dnnl_memory_desc_t blocked;
    md_plain(&blocked, 4, di, dnnl_aBcd8b);
    if (np && np->op == NN_MAXPOOL && np->k == 2 && np->stride == 2 && np->in == nx->out &&
        s->consumers[nx->out] == 1 && bnp_supported(c, vin->h, vin->w) && dnnl_memory_desc_equal(&blocked, md)) {
        int64_t dp[4];
        value_dims(x, np->out, dp);
        memset(&s->md[n->out], 0, sizeof s->md[n->out]);
        n->pool = i + 2;
        s->dn[i + 2].skip = 1;
        n->out = np->out;
        md_plain(&s->md[n->out], 4, dp, dnnl_aBcd8b);
        n->pidx = nc_malloc((size_t)x->batch * c * dp[2] * dp[3]);
        n->pscr = nc_malloc(sizeof(double) * bnp_scratch_doubles(c));
        build_first_grad(x, s, i);
        if (!n->fg) n->xk = nc_malloc(sizeof(float) * (size_t)x->batch * c * dp[2] * dp[3]);
    }
    /* ... or a global average pool (the convnet's last block): the pooled (n, c) output only, the
       ReLU's mask recomputed in backward; (n, c, 1, 1) as nChw8c has the bytes of plain (n, c) */
    if (np && np->op == NN_GAP && np->in == nx->out && s->consumers[nx->out] == 1 && bnp_gap_supported(c) &&
        dnnl_memory_desc_equal(&blocked, md)) {
        int64_t dp[4];
        value_dims(x, np->out, dp);
        memset(&s->md[n->out], 0, sizeof s->md[n->out]);
        n->pool = i + 2;
        n->gap = 1;
        n->gkept = nc_malloc(sizeof(double) * 2 * (size_t)x->batch * c);
        s->dn[i + 2].skip = 1;
        n->out = np->out;
        md_plain(&s->md[n->out], 4, dp, c % 16 ? dnnl_nchw : dnnl_aBcd8b);
        n->pscr = nc_malloc(sizeof(double) * bnp_scratch_doubles(c));
    }
    /* BN + a residual add that reads this BN's output alone + the ReLU that reads the sum alone:
       one kernel on nChw8c or nChw16c, when the add's other operand has the same layout */
    NnNode *na = !n->fused_relu && !n->pool && nx && nx->op == NN_ADD ? nx : NULL;
    NnNode *nr = na && i + 2 < net->n_nodes ? &net->nodes[i + 2] : NULL;
    int res = na ? (na->in == d->out ? na->in2 : na->in) : -1;
    if (nr && nr->op == NN_RELU && nr->in == na->out && (na->in == d->out || na->in2 == d->out) && res != d->out &&
        s->consumers[d->out] == 1 && s->consumers[na->out] == 1 && dnnl_memory_desc_equal(&s->md[res], md) &&
        bar_supported(c, channel_block(md))) {
        memset(&s->md[d->out], 0, sizeof s->md[d->out]);  /* neither the BN's output nor the sum is stored */
        n->add = i + 1;
        n->res = res;
        n->blk = channel_block(md);
        s->dn[i + 1].skip = s->dn[i + 2].skip = 1;
        n->out = nr->out;
        s->md[n->out] = *md;
        n->pscr = nc_malloc(sizeof(double) * (2 * c + 1));
        n->rmask = nc_malloc((size_t)x->batch * c * vin->h * vin->w / 8);
    }
    if (n->pool || n->add) conv_sums(x, s, i);
    /* A BN + ReLU output that only a convolution reads is not kept for backward: the convolution's
       weight gradient recomputes it from the BN's input and statistics (one BN pass), which
       frees a tensor per ResNet block. NCELAB_RECOMPUTE=0 keeps it. */
    const char *keep = getenv("NCELAB_RECOMPUTE");
    if (n->fused_relu && !n->pool && s->consumers[n->out] == 1 && !(keep && *keep == '0'))
        for (int j = i + 2; j < net->n_nodes; j++)
            if (net->nodes[j].in == n->out || net->nodes[j].in2 == n->out) {
                if (net->nodes[j].op == NN_CONV && net->nodes[j].in == n->out) s->rec_bn[n->out] = i + 1;
                break;
            }
    unsigned flags = dnnl_use_scale | dnnl_use_shift | (n->fused_relu ? dnnl_fuse_norm_relu : 0);
    dnnl_batch_normalization_desc_t bd;
    dnnl_primitive_desc_t fpd, pd;
    DN_CHECK(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_training, md, net->bn_eps, flags), "batch norm");
    DN_CHECK(dnnl_primitive_desc_create(&fpd, &bd, NULL, s->eng, NULL), "batch norm");
    if (n->fused_relu && !n->pool) n->ws = mem_new(s, dnnl_primitive_desc_query_md(fpd, dnnl_query_workspace_md, 0), NULL);
    int64_t cd[1] = {c};
    dnnl_memory_desc_t vmd;
    md_plain(&vmd, 1, cd, dnnl_x);
    n->mean = mem_new(s, &vmd, NULL);
    n->var = mem_new(s, &vmd, NULL);
    n->scale = mem_new(s, &vmd, net->params + net->views[d->w].offset);
    n->shift = mem_new(s, &vmd, net->params + net->views[d->b].offset);
    n->dscale = mem_new(s, &vmd, NULL);
    n->dshift = mem_new(s, &vmd, NULL);
    n->rmean = mem_new(s, &vmd, net->stats + net->stat_offset[d->stat]);
    n->rvar = mem_new(s, &vmd, net->stats + net->stat_offset[d->stat] + c);
    if (n->pool) {  /* bn_relu_pool.c does the rest: no oneDNN primitives */
        const char *what = n->gap ? "fused bn+relu+gap nChw8c" : "fused bn+relu+pool nChw8c";
        snprintf(n->path[NN_PART_FWD], sizeof n->path[0], "%s", what);
        snprintf(n->path[NN_PART_BWD_DATA], sizeof n->path[0], "%s", n->fg ? "bn+relu+pool, conv moments" : what);
        dnnl_primitive_desc_destroy(fpd);
        return NC_OK;
    }
    if (n->add) {  /* bn_add_relu.c, with the statistics of bn_batch_stats */
        snprintf(n->path[NN_PART_FWD], sizeof n->path[0], "fused bn+add+relu nChw%dc", n->blk);
        snprintf(n->path[NN_PART_BWD_DATA], sizeof n->path[0], "fused bn+add+relu nChw%dc", n->blk);
        dnnl_primitive_desc_destroy(fpd);
        return NC_OK;
    }
    dnnl_batch_normalization_desc_t bb;
    DN_CHECK(dnnl_batch_normalization_backward_desc_init(&bb, dnnl_backward, md, md, net->bn_eps, flags), "batch norm backward");
    DN_CHECK(dnnl_primitive_desc_create(&pd, &bb, NULL, s->eng, fpd), "batch norm backward");
    n->bwd_data = prim_of(pd, NULL);
    n->fwd = prim_of(fpd, NULL);
    dnnl_batch_normalization_desc_t be;
    unsigned eflags = dnnl_use_scale | dnnl_use_shift | dnnl_use_global_stats | (n->fused_relu ? dnnl_fuse_norm_relu : 0);
    DN_CHECK(dnnl_batch_normalization_forward_desc_init(&be, dnnl_forward_inference, md, net->bn_eps, eflags), "batch norm (eval)");
    DN_CHECK(dnnl_primitive_desc_create(&pd, &be, NULL, s->eng, NULL), "batch norm (eval)");
    n->fwd_eval = prim_of(pd, NULL);
    const char *what = n->fused_relu ? "oneDNN bn+relu" : "oneDNN bn";
    path_set(n, NN_PART_FWD, what, n->fwd);
    path_set(n, NN_PART_BWD_DATA, what, n->bwd_data);
    int rc = build_bn_sync(x, s, i, flags, err);
    /* A plain BN (+ ReLU) takes the statistics from the convolution's sums when there are any, and
       then normalises in one pass, by the given-statistics forward, whose ReLU workspace must then
       be the one the backward reads */
    if (!rc && (!n->fused_relu || n->ws_sync == n->ws)) conv_sums(x, s, i);
    return rc;
}

static int build_pool(NetExec *x, DState *s, int i, NcError *err) {
    Net *net = x->net;
    NnNode *d = &net->nodes[i];
    DNode *n = &s->dn[i];
    if (n->skip) return NC_OK;  /* run by the batch norm before it */
    const NnVal *vi = &net->vals[d->in];
    int64_t dout[4];
    int nd = value_dims(x, d->out, dout);
    dnnl_memory_desc_t dst;
    int gap = d->op == NN_GAP;
    /* The global average pool's (N, C, 1, 1) output feeds the head as the plain (N, C) matrix:
       with C a multiple of 16 the blocked layouts oneDNN picks (nChw8c, nChw16c) have exactly
       those bytes, so the fast kernel can write it; otherwise ask for plain nchw. */
    if (gap && vi->c % 16 != 0) md_plain(&dst, 4, dout, dnnl_nchw); else md_any(&dst, gap ? 4 : nd, dout);
    int k = gap ? vi->h : d->k, kw = gap ? vi->w : d->k, st = gap ? 1 : d->stride;
    dnnl_dims_t strides = {st, st}, kernel = {k, kw}, dil = {0, 0}, pad = {0, 0};
    dnnl_alg_kind_t alg = d->op == NN_MAXPOOL ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;
    dnnl_pooling_v2_desc_t pdsc;
    dnnl_primitive_desc_t fpd, pd;
    DN_CHECK(dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_training, alg, &s->md[d->in], &dst, strides, kernel,
                                               dil, pad, pad), "pooling");
    DN_CHECK(dnnl_primitive_desc_create(&fpd, &pdsc, NULL, s->eng, NULL), "pooling");
    s->md[d->out] = *dnnl_primitive_desc_query_md(fpd, dnnl_query_dst_md, 0);
    if (d->op == NN_MAXPOOL) n->ws = mem_new(s, dnnl_primitive_desc_query_md(fpd, dnnl_query_workspace_md, 0), NULL);
    dnnl_pooling_v2_desc_t bdsc;
    DN_CHECK(dnnl_pooling_v2_backward_desc_init(&bdsc, alg, &s->md[d->in], &s->md[d->out], strides, kernel, dil, pad, pad),
             "pooling backward");
    DN_CHECK(dnnl_primitive_desc_create(&pd, &bdsc, NULL, s->eng, fpd), "pooling backward");
    n->bwd_data = prim_of(pd, NULL);
    n->fwd = prim_of(fpd, NULL);
    n->fwd_eval = n->fwd;
    path_set(n, NN_PART_FWD, "oneDNN pool", n->fwd);
    path_set(n, NN_PART_BWD_DATA, "oneDNN pool", n->bwd_data);
    return NC_OK;
}

static int build_relu(NetExec *x, DState *s, int i, NcError *err) {
    Net *net = x->net;
    NnNode *d = &net->nodes[i];
    DNode *n = &s->dn[i];
    if (n->skip) return NC_OK;
    s->md[d->out] = s->md[d->in];
    dnnl_eltwise_desc_t ed;
    dnnl_primitive_desc_t fpd, pd;
    DN_CHECK(dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_training, dnnl_eltwise_relu, &s->md[d->in], 0.f, 0.f), "relu");
    DN_CHECK(dnnl_primitive_desc_create(&fpd, &ed, NULL, s->eng, NULL), "relu");
    dnnl_eltwise_desc_t eb;
    DN_CHECK(dnnl_eltwise_backward_desc_init(&eb, dnnl_eltwise_relu, &s->md[d->out], &s->md[d->in], 0.f, 0.f), "relu backward");
    DN_CHECK(dnnl_primitive_desc_create(&pd, &eb, NULL, s->eng, fpd), "relu backward");
    n->bwd_data = prim_of(pd, NULL);
    n->fwd = prim_of(fpd, NULL);
    n->fwd_eval = n->fwd;
    path_set(n, NN_PART_FWD, "oneDNN eltwise", n->fwd);
    path_set(n, NN_PART_BWD_DATA, "oneDNN eltwise", n->bwd_data);
    return NC_OK;
}

static int build_linear(NetExec *x, DState *s, int i, NcError *err) {
    Net *net = x->net;
    NnNode *d = &net->nodes[i];
    DNode *n = &s->dn[i];
    int fin = net->vals[d->in].c, fout = net->vals[d->out].c;
    int64_t sd[2] = {x->batch, fin}, dd[2] = {x->batch, fout}, wd[2] = {fout, fin}, bd[1] = {fout};
    dnnl_memory_desc_t src, dst, wei, bias;
    md_plain(&src, 2, sd, dnnl_nc);
    md_plain(&dst, 2, dd, dnnl_nc);
    md_plain(&wei, 2, wd, dnnl_oi);
    md_plain(&bias, 1, bd, dnnl_x);
    s->md[d->in] = src;
    s->md[d->out] = dst;
    dnnl_inner_product_desc_t id;
    dnnl_primitive_desc_t fpd, pd;
    DN_CHECK(dnnl_inner_product_forward_desc_init(&id, dnnl_forward_training, &src, &wei, &bias, &dst), "inner product");
    DN_CHECK(dnnl_primitive_desc_create(&fpd, &id, NULL, s->eng, NULL), "inner product");
    dnnl_inner_product_desc_t ib;
    DN_CHECK(dnnl_inner_product_backward_data_desc_init(&ib, &src, &wei, &dst), "inner product backward data");
    DN_CHECK(dnnl_primitive_desc_create(&pd, &ib, NULL, s->eng, fpd), "inner product backward data");
    n->bwd_data = prim_of(pd, NULL);
    DN_CHECK(dnnl_inner_product_backward_weights_desc_init(&ib, &src, &wei, &bias, &dst), "inner product backward weights");
    DN_CHECK(dnnl_primitive_desc_create(&pd, &ib, NULL, s->eng, fpd), "inner product backward weights");
    n->bwd_w = prim_of(pd, NULL);
    n->fwd = prim_of(fpd, NULL);
    n->fwd_eval = n->fwd;
    path_set(n, NN_PART_FWD, "oneDNN ip", n->fwd);
    path_set(n, NN_PART_BWD_DATA, "oneDNN ip", n->bwd_data);
    path_set(n, NN_PART_BWD_W, "oneDNN ip", n->bwd_w);
    n->w_plain = n->w_fwd = n->w_bwd = mem_new(s, &wei, net->params + net->views[d->w].offset);
    n->bias = mem_new(s, &bias, net->params + net->views[d->b].offset);
    n->dw = n->dw_plain = wscratch_mem(s, &wei);
    n->dbias = mem_new(s, &bias, NULL);
    return NC_OK;
}

/* ---- memory plan ----
   A training step is a forward pass (node i at time 2i) and a backward pass (node i at time
   2(2n - 1 - i)); the loss runs between them. A value's data lives from its producer's forward
   to the last pass that reads it (consumers' forward, and the backward of nodes that read their
   input: convolution and linear (weights gradient), batch norm, unfused ReLU; L2 normalisation
   reads its output too); its gradient lives from the backward of its last consumer to that of
   its producer. Buffers whose lifetimes do not overlap share memory: the ReLU outputs that only
   a max pool reads (its backward uses the workspace) become gradient buffers, and the backward
   pass needs two stages' gradients at a time rather than all of them. */
typedef struct { long start, end; size_t bytes; size_t *off; int grad; } PlanItem;

static int plan_cmp(const void *a, const void *b) {
    const PlanItem *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

static int reads_input_in_backward(const NnNode *d, const DNode *n) {
    if (n->fg) return 0;  /* first_grad.c: the moments and the maxima it kept instead */
    return d->op == NN_CONV || d->op == NN_BN || d->op == NN_RELU || d->op == NN_LINEAR || d->op == NN_L2NORM;
}

static void plan_arena(NetExec *x, DState *s) {
    Net *net = x->net;
    long n = net->n_nodes, tend = 4 * n;  /* times: forward 2i, loss 2n - 1, backward 2(2n - 1 - i) */
    long fwd_t[NN_MAX_NODES], bwd_t[NN_MAX_NODES];
    for (long i = 0; i < n; i++) { fwd_t[i] = 2 * i; bwd_t[i] = 2 * (2 * n - 1 - i); }
    PlanItem items[3 * NN_MAX_VALS];
    int ni = 0;
    for (int v = 0; v < net->n_vals; v++) {
        if (s->md[v].ndims == 0) continue;
        if (v == net->input && !s->re_in) continue;
        size_t bytes = (dnnl_memory_desc_get_size(&s->md[v]) + 63) / 64 * 64;
        long ds = -1, de = -1, gs = tend, ge = -1;
        for (int i = 0; i < n; i++) {
            const NnNode *d = &net->nodes[i];
            const DNode *dn = &s->dn[i];
            int out = dn->out ? dn->out : d->out;
            if (dn->skip) continue;
            if (out == v) { ds = fwd_t[i]; ge = bwd_t[i]; }
            if (d->in == v || d->in2 == v || (dn->add && dn->res == v)) {
                de = de > fwd_t[i] ? de : fwd_t[i];
                if (d->in == v && reads_input_in_backward(d, dn) && bwd_t[i] > de && !s->rec_bn[v]) de = bwd_t[i];
                if (bwd_t[i] < gs) gs = bwd_t[i];
            }
            /* L2 normalisation reads its output in backward (bn+add+relu: its mask, n->rmask) */
            if (d->op == NN_L2NORM && out == v && bwd_t[i] > de) de = bwd_t[i];
        }
        if (v == net->features && de < 2 * n) de = 2 * n;     /* copied out after the forward */
        if (v == net->embeddings) { de = de > 2 * n ? de : 2 * n; gs = 2 * n - 1; }
        if (v == net->input) ds = -1;
        int unformed = 0;  /* the output of a convolution that first_grad.c runs inside its batch norm */
        for (int i = 0; i < n; i++) unformed |= s->dn[i].in_bn && net->nodes[i].out == v;
        if (!unformed) items[ni++] = (PlanItem){ds, de, bytes, &s->data_off[v], 0};
        for (int i = 0; i < n && s->rec_bn[v]; i++)  /* the recomputed copy, right before its reader's backward */
            if (net->nodes[i].in == v) { items[ni++] = (PlanItem){bwd_t[i] - 1, bwd_t[i], bytes, &s->re_off[v], 0}; break; }
        int no_grad = 0;  /* the input of a batch norm that does its convolution's weight gradient */
        for (int i = 0; i < n; i++) no_grad |= s->dn[i].fg && net->nodes[i].in == v;
        if (v != net->input && ge >= 0 && !no_grad) items[ni++] = (PlanItem){gs, ge, bytes, &s->grad_off[v], 1};
    }
    qsort(items, (size_t)ni, sizeof items[0], plan_cmp);
    size_t slot_bytes[3 * NN_MAX_VALS];
    long slot_free[3 * NN_MAX_VALS];
    int slot_of[3 * NN_MAX_VALS], ns = 0;
    for (int k = 0; k < ni; k++) {
        int best = -1;
        for (int j = 0; j < ns; j++) {
            if (slot_free[j] >= items[k].start) continue;
            if (best < 0) { best = j; continue; }
            int fits = slot_bytes[j] >= items[k].bytes, bfits = slot_bytes[best] >= items[k].bytes;
            if (fits && (!bfits || slot_bytes[j] < slot_bytes[best])) best = j;  /* smallest that fits */
            else if (!fits && !bfits && slot_bytes[j] > slot_bytes[best]) best = j;  /* else the largest */
        }
        if (best < 0) { best = ns++; slot_bytes[best] = 0; }
        if (slot_bytes[best] < items[k].bytes) slot_bytes[best] = items[k].bytes;
        slot_free[best] = items[k].end;
        slot_of[k] = best;
    }
    size_t slot_off[3 * NN_MAX_VALS], total = 0;
    for (int j = 0; j < ns; j++) { slot_off[j] = total; total += slot_bytes[j]; }
    for (int k = 0; k < ni; k++) *items[k].off = slot_off[slot_of[k]];
    s->arena_bytes = total;
    /* the busiest moment of the plan, for nnx_memory: values and gradients alive then */
    for (long t = 0; t <= tend; t++) {
        size_t live[2] = {0, 0};
        for (int k = 0; k < ni; k++)
            if (items[k].start <= t && t <= items[k].end) live[items[k].grad] += items[k].bytes;
        if (live[0] + live[1] > s->live_data + s->live_grad) { s->live_data = live[0]; s->live_grad = live[1]; s->live_t = t; }
    }
    s->arena = nc_malloc_big(total);
}

/* One scratch and one weight buffer for all Winograd and GEMM layers, each the size of its
   largest user: the layers run one at a time, and each transforms its weights into the weight
   buffer right before the pass that reads them. */
static void share_wino_work(NetExec *x, DState *s) {
    for (int i = 0; i < x->net->n_nodes; i++) {
        const WinoConv *wc = s->dn[i].wino;
        const GemmConv *g = s->dn[i].cg;
        const Ws2Conv *w2 = s->dn[i].ws2;
        size_t sc = wc ? wino_scratch_floats(wc) : g ? cgemm_scratch_floats(g) : 0;
        size_t wb = wc ? wino_wbuf_floats(wc) : g ? cgemm_wbuf_floats(g) : 0;
        if (w2 && ws2_scratch_floats(w2) > sc) sc = ws2_scratch_floats(w2);
        if (w2 && ws2_wbuf_floats(w2) > wb) wb = ws2_wbuf_floats(w2);
        if (sc > s->wino_scratch_n) s->wino_scratch_n = sc;
        if (wb > s->wino_wbuf_n) s->wino_wbuf_n = wb;
    }
    if (!s->wino_wbuf_n) return;
    s->wino_scratch = nc_malloc_big(sizeof(float) * s->wino_scratch_n);
    s->wino_wbuf = nc_malloc_big(sizeof(float) * s->wino_wbuf_n);
    for (int i = 0; i < x->net->n_nodes; i++) {
        if (s->dn[i].wino) wino_set_work(s->dn[i].wino, s->wino_scratch, s->wino_wbuf);
        if (s->dn[i].cg) cgemm_set_work(s->dn[i].cg, s->wino_scratch, s->wino_wbuf);
        if (s->dn[i].ws2) ws2_set_work(s->dn[i].ws2, s->wino_scratch, s->wino_wbuf);
    }
}

static void add_into(float *dst, const float *src, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

/* the floats of the gradient accumulation scratch: the largest value with several consumers
   (only their gradients are written twice in a backward pass) */
static size_t scratch_floats(const NetExec *x, const DState *s) {
    size_t n = 0;
    for (int v = 0; v < x->net->n_vals; v++)
        if (s->consumers[v] > 1 && md_floats(&s->md[v]) > n) n = md_floats(&s->md[v]);
    return n;
}

/* The memory a backward step should write value v's gradient into: the value's own gradient
   on the first write of this pass, else the scratch (added in by grad_commit). */
static dnnl_memory_t grad_target(DState *s, int v) {
    if (!s->ginit[v]) return s->gmem[v];
    if (md_floats(&s->md[v]) > s->scratch_used) s->scratch_used = md_floats(&s->md[v]);
    return s->gscr[v];
}

static void grad_commit(DState *s, int v) {
    if (s->ginit[v]) add_into(mem_ptr(s->gmem[v]), s->scratch, md_floats(&s->md[v]));
    s->ginit[v] = 1;
}

/* ---- synchronised batch norm ----
   Each replica sums over its own batch, the sums are all-reduced (x->sync), and the layer runs
   with the totals: the statistics in the forward, the two sums of the input gradient in the
   backward. The statistics' sums are these loops' (every value added in double, so the totals
   do not depend on how the batch is split); then bn_relu_pool.c or oneDNN's batch norm runs with
   the statistics given. In backward, bn_relu_pool.c computes its two sums itself, oneDNN's
   batch norm gives them as its scale and shift gradients. */

/* One block p (hw, B): a1 += p, a2 += p^2 per lane; called with B a constant (8, 16) so that
   the compiler vectorises it. */
static inline void block_sums(double *a1, double *a2, const float *p, int hw, int B) {
    for (int j = 0; j < hw; j++)
        for (int l = 0; l < B; l++) {
            double v = p[(size_t)j * B + l];
            a1[l] += v;
            a2[l] += v * v;
        }
}

/* s1 = sum x, s2 = sum x^2 (c doubles each) per channel over (n, hw) of x, stored as
   [n][ceil(c / B)][hw][B] (B = 1: nchw; 8, 16: nChw8c, nChw16c); threads take whole channel
   blocks, so the sums do not depend on their number. */
static void blocked_sums(double *s1, double *s2, const float *x, int B, int n, int c, int hw) {
    int CB = (c + B - 1) / B;
    #pragma omp parallel for schedule(static)
    for (int cb = 0; cb < CB; cb++) {
        double a1[16] = {0}, a2[16] = {0};
        for (int i = 0; i < n; i++) {
            const float *p = x + ((size_t)i * CB + cb) * hw * B;
            if (B == 16) block_sums(a1, a2, p, hw, 16);
            else if (B == 8) block_sums(a1, a2, p, hw, 8);
            else block_sums(a1, a2, p, hw, B);
        }
        for (int l = 0; l < B && cb * B + l < c; l++) { s1[cb * B + l] = a1[l]; s2[cb * B + l] = a2[l]; }
    }
}

/* One block (hw, B): d -= ka + (p - mu) kb per lane; inlined as block_sums. */
static inline void block_correct(float *d, const float *p, const float *ka, const float *kb, const float *mu, int hw,
                                 int B) {
    for (int j = 0; j < hw; j++)
        for (int l = 0; l < B; l++) {
            size_t o = (size_t)j * B + l;
            d[o] -= ka[l] + (p[o] - mu[l]) * kb[l];
        }
}

/* dx (same layout as blocked_sums) -= gamma invstd / m (sdy + xhat sdyxhat), xhat = (x - mean) invstd.
   Forward was y = gamma xhat + beta with mean and var over all m values, so dx = gamma invstd / m
   (m dy' - sum dy' - xhat sum dy' xhat); oneDNN with given statistics (constants to it) returns
   the first term, gamma invstd dy', and this subtracts the other two, with the all-reduced sums. */
static void blocked_dx_correct(float *dx, const float *x, const float *mean, const float *var, const float *gamma,
                               float eps, const double *sdy, const double *sdyxhat, double m, int B, int n, int c,
                               int hw) {
    int CB = (c + B - 1) / B;
    #pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int cb = 0; cb < CB; cb++) {
            float ka[16] = {0}, kb[16] = {0}, mu[16] = {0};  /* dx -= ka + (x - mu) kb, per lane */
            for (int l = 0; l < B && cb * B + l < c; l++) {
                int ch = cb * B + l;
                double invstd = 1.0 / sqrt((double)var[ch] + eps), k = gamma[ch] * invstd / m;
                ka[l] = (float)(k * sdy[ch]);
                kb[l] = (float)(k * invstd * sdyxhat[ch]);
                mu[l] = mean[ch];
            }
            size_t base = ((size_t)i * CB + cb) * hw * B;
            if (B == 16) block_correct(dx + base, x + base, ka, kb, mu, hw, 16);
            else if (B == 8) block_correct(dx + base, x + base, ka, kb, mu, hw, 8);
            else block_correct(dx + base, x + base, ka, kb, mu, hw, B);
        }
}

/* A batch's mean and variance (c channels, m values each) from its sums [y - shift (c),
   (y - shift)^2 (c)] (wino_forward_sums; shift NULL: 0, plain sums). */
static void stats_from_sums(float *mean, float *var, const double *sums, const float *shift, double m, int c) {
    for (int ch = 0; ch < c; ch++) {
        double mu = sums[ch] / m, v = sums[c + ch] / m - mu * mu;
        mean[ch] = (float)(shift ? shift[ch] + mu : mu);
        var[ch] = (float)(v > 0 ? v : 0);
    }
}

/* Training statistics from [sum x (c), sum x^2 (c), m], all-reduced over every replica's batch
   when training is synchronised: n->mean, n->var (biased) and n->count from the totals. */
static int bn_batch_stats(NetExec *x, DState *s, int i, NcError *err) {
    NnNode *d = &x->net->nodes[i];
    DNode *n = &s->dn[i];
    const NnVal *vi = &x->net->vals[d->in];
    int c = vi->c, hw = vi->h * vi->w;
    double local[2 * 1024 + 1];
    double *buf = x->sync ? x->sync_buf : n->fg ? local : n->pscr;
    const float *in = mem_ptr(s->mem[d->in]);
    dnnl_stream_wait(s->strm);
    if (n->fg) {  /* from the input's moments, without reading in */
        const NnNode *cv = &x->net->nodes[i - 1];
        fg_gram(n->fg, mem_ptr(s->mem[cv->in]));
        fg_stats(n->fg, x->net->params + x->net->views[cv->w].offset, buf, buf + c);
    } else {
        blocked_sums(buf, buf + c, in, n->pool ? 8 : n->blk, x->batch, c, hw);
    }
    buf[2 * c] = (double)x->batch * hw;
    int rc = x->sync ? nnx_sync_sum(x, 2 * c + 1, err) : NC_OK;
    if (rc) return rc;
    double m = buf[2 * c];
    stats_from_sums(mem_ptr(n->mean), mem_ptr(n->var), buf, NULL, m, c);
    n->count = m;
    return NC_OK;
}

/* The first convolution's weight gradient, added to its parameter's, from BN node i's two sums
   over every replica's batch (sdy, sdyxhat) and this replica's moments (fg_gram's in the
   forward, fg_moments's). */
static void first_grad_backward(NetExec *x, DState *s, int i, const double *sdy, const double *sdyxhat) {
    Net *net = x->net;
    DNode *n = &s->dn[i];
    size_t off = net->views[net->nodes[i - 1].w].offset;
    fg_weight_grad(n->fg, net->grads + off, net->params + off, mem_ptr(n->mean), mem_ptr(n->var), mem_ptr(n->scale),
                   net->bn_eps, sdy, sdyxhat, n->count);
}

/* fg_forward for BN node i: the first convolution, the batch norm with statistics mean and var,
   the ReLU and the pool into out (keep: training, the maxima kept for backward) */
static void first_grad_forward(NetExec *x, DState *s, int i, float *out, int keep, const float *mean, const float *var) {
    Net *net = x->net;
    DNode *n = &s->dn[i];
    const NnNode *cv = &net->nodes[i - 1];
    fg_forward(n->fg, out, n->pidx, keep, mem_ptr(s->mem[cv->in]), net->params + net->views[cv->w].offset, mean, var,
               mem_ptr(n->scale), mem_ptr(n->shift), net->bn_eps);
}

/* fg_moments for BN node i: the routed gradient's patch sums and the two sums of this batch */
static void first_grad_moments(NetExec *x, DState *s, int i) {
    DNode *n = &s->dn[i];
    fg_moments(n->fg, mem_ptr(s->mem[x->net->nodes[i - 1].in]), mem_ptr(s->gmem[n->out]), n->pidx, mem_ptr(n->mean),
               mem_ptr(n->var), x->net->bn_eps);
}

/* A batch norm's backward with the sums over every replica's batch: [sum dy' (c), sum dy' xhat (c)]
   all-reduced, dy' the gradient of its output behind the fused ReLU (and pool); n->dscale and
   n->dshift keep this replica's own sums (the caller all-reduces the parameter gradients).
   a: the arguments of the unsynchronised backward primitive. */
static int bn_backward_sync(NetExec *x, DState *s, int i, dnnl_exec_arg_t *a, NcError *err) {
    Net *net = x->net;
    NnNode *d = &net->nodes[i];
    DNode *n = &s->dn[i];
    const NnVal *vi = &net->vals[d->in];
    int c = vi->c;
    double *buf = x->sync_buf;
    float *dscale = mem_ptr(n->dscale), *dshift = mem_ptr(n->dshift), *dx = mem_ptr(grad_target(s, d->in));
    const float *in = mem_ptr(s->mem[d->in]), *mean = mem_ptr(n->mean), *var = mem_ptr(n->var);
    const float *gamma = mem_ptr(n->scale), *dy = mem_ptr(s->gmem[n->out ? n->out : d->out]);
    if (n->fg) {
        dnnl_stream_wait(s->strm);
        first_grad_moments(x, s, i);
        memcpy(buf, n->fg->sdy, sizeof(double) * c);
        memcpy(buf + c, n->fg->sdyx, sizeof(double) * c);
        for (int ch = 0; ch < c; ch++) { dshift[ch] = (float)buf[ch]; dscale[ch] = (float)buf[c + ch]; }
    } else if (n->pool) {
        dnnl_stream_wait(s->strm);
        if (n->gap)
            bnp_gap_backward_sums(buf, buf + c, dy, n->gkept, var, net->bn_eps, x->batch, c, vi->h, vi->w, n->pscr);
        else
            bnp_backward_sums(buf, buf + c, dy, n->pidx, in, n->xk, mean, var, net->bn_eps, x->batch, c, vi->h, vi->w,
                              n->pscr);
        for (int ch = 0; ch < c; ch++) { dshift[ch] = (float)buf[ch]; dscale[ch] = (float)buf[c + ch]; }
    } else {
        a[9].memory = n->ws_sync;
        exec(s, n->bwd_sync, n->fused_relu ? 10 : 9, a);
        dnnl_stream_wait(s->strm);
        for (int ch = 0; ch < c; ch++) { buf[ch] = dshift[ch]; buf[c + ch] = dscale[ch]; }
    }
    int rc = nnx_sync_sum(x, 2 * c, err);
    if (rc) return rc;
    if (n->fg)
        first_grad_backward(x, s, i, buf, buf + c);
    else if (n->gap)
        bnp_gap_backward_dx(dx, dy, in, mean, var, gamma, mem_ptr(n->shift), net->bn_eps, buf, buf + c, n->count,
                            x->batch, c, vi->h, vi->w);
    else if (n->pool)
        bnp_backward_dx(dx, dy, n->pidx, in, mean, var, gamma, net->bn_eps, buf, buf + c, n->count, x->batch, c, vi->h,
                        vi->w);
    else
        blocked_dx_correct(dx, in, mean, var, gamma, net->bn_eps, buf, buf + c, n->count, n->blk, x->batch, c,
                           vi->h * vi->w);
    return NC_OK;
}

/* The backward of a batch norm fused with the add and ReLU after it (bn_add_relu.c): the two sums,
   all-reduced when training is synchronised (n->dscale and n->dshift keep this replica's own),
   then the gradients of x and of the add's other operand r (committed here). */
static int bn_add_backward(NetExec *x, DState *s, int i, NcError *err) {
    Net *net = x->net;
    NnNode *d = &net->nodes[i];
    DNode *n = &s->dn[i];
    const NnVal *vi = &net->vals[d->in];
    int c = vi->c, hw = vi->h * vi->w;
    double *buf = x->sync ? x->sync_buf : n->pscr;
    float *dscale = mem_ptr(n->dscale), *dshift = mem_ptr(n->dshift);
    const float *in = mem_ptr(s->mem[d->in]), *mean = mem_ptr(n->mean), *var = mem_ptr(n->var);
    const float *dy = mem_ptr(s->gmem[n->out]);
    dnnl_stream_wait(s->strm);
    bar_backward_sums(buf, buf + c, dy, n->rmask, in, mean, var, net->bn_eps, n->blk, x->batch, c, hw);
    for (int ch = 0; ch < c; ch++) { dshift[ch] = (float)buf[ch]; dscale[ch] = (float)buf[c + ch]; }
    int rc = x->sync ? nnx_sync_sum(x, 2 * c, err) : NC_OK;
    if (rc) return rc;
    bar_backward_dx(mem_ptr(grad_target(s, d->in)), mem_ptr(grad_target(s, n->res)), dy, n->rmask, in, mean, var,
                    mem_ptr(n->scale), net->bn_eps, buf, buf + c, n->count, n->blk, x->batch, c, hw);
    grad_commit(s, n->res);
    return NC_OK;
}


/* A convolution on our own kernels (Winograd, conv_wino.c; stride 2 by polyphase Winograd,
   conv_wino_s2.c, or as GEMMs, conv_gemm.c),
   w and dw its plain (k, c, 3, 3) weights and their gradient: the filters transformed or packed
   for the pass, then the pass. */
static void own_conv_fwd(DState *s, int i, const float *w, const float *x, float *y, int sums) {
    DNode *n = &s->dn[i];
    dnnl_stream_wait(s->strm);
    if (n->wino) wino_weights(n->wino, w, WINO_FWD);
    else if (n->ws2) ws2_weights(n->ws2, w, WS2_FWD);
    else cgemm_weights(n->cg, w, CGEMM_FWD);
    prof_lap(s, i, NN_PART_REORDER);
    if (sums) {  /* and the batch norm's sums, shifted by its running mean */
        DNode *b = &s->dn[n->sums_bn];
        int k = n->wino->k;
        wino_forward_sums(n->wino, x, y, mem_ptr(b->rmean), b->csum, b->csum + k, b->cpart);
    } else if (n->wino) wino_forward(n->wino, x, y);
    else if (n->ws2) ws2_forward(n->ws2, x, y);
    else cgemm_forward(n->cg, x, y);
}

/* The backward: the weight gradient added to dw, then (vin >= 0) the gradient of input value
   vin; the weight gradient first, as both share the layers' weight buffer. */
static void own_conv_bwd(DState *s, int i, const float *w, float *dw, const float *x, const float *dy, int vin) {
    DNode *n = &s->dn[i];
    dnnl_stream_wait(s->strm);
    if (n->wino) wino_backward_weights(n->wino, x, dy, dw, 1);
    else if (n->ws2) ws2_backward_weights(n->ws2, x, dy, dw);
    else cgemm_backward_weights(n->cg, x, dy, dw);
    prof_lap(s, i, NN_PART_BWD_W);
    if (vin < 0) return;
    if (n->wino) wino_weights(n->wino, w, WINO_BWD_DATA);
    else if (n->ws2) ws2_weights(n->ws2, w, WS2_BWD_DATA);
    else cgemm_weights(n->cg, w, CGEMM_BWD_DATA);
    prof_lap(s, i, NN_PART_REORDER);
    /* a second writer adds onto the gradient in place (no pass through the scratch) */
    float *dx = mem_ptr(s->gmem[vin]);
    if (n->wino) wino_backward_data(n->wino, dy, dx, s->ginit[vin]);
    else if (n->ws2) ws2_backward_data(n->ws2, dy, dx, s->ginit[vin]);
    else cgemm_backward_data(n->cg, dy, dx, s->ginit[vin]);
    s->ginit[vin] = 1;
}

static int dnnl_fwd(NetExec *x, const float *input, int training, NcError *err) {
    DState *s = x->impl;
    Net *net = x->net;
    if (training && x->sync) {  /* refused before the first all-reduce, so that no replica waits on this one */
        for (int i = 0; i < net->n_nodes; i++) {
            NnNode *d = &net->nodes[i];
            if (d->op != NN_BN || s->dn[i].pool || s->dn[i].blk) continue;
            const dnnl_memory_desc_t *md = &s->md[d->in];
            const dnnl_dims_t *st = &md->format_desc.blocking.strides;
            return nc_fail(err, NC_EUSAGE, "layer %s: synchronised batch norm reads an nchw, nChw8c or nChw16c input; "
                           "oneDNN chose a %s layout with strides %ld,%ld,%ld,%ld and %d inner blocks", d->name,
                           dnnl_fmt_kind2str(md->format_kind), (long)(*st)[0], (long)(*st)[1], (long)(*st)[2],
                           (long)(*st)[3], md->format_desc.blocking.inner_nblks);
        }
    }
    prof_start(s);
    dnnl_memory_set_data_handle(s->in_user, (void *)input);
    if (s->re_in) reorder(s, s->re_in, s->in_user, s->mem[net->input]);
    else dnnl_memory_set_data_handle(s->mem[net->input], (void *)input);
    prof_lap(s, EXEC_ROW, NN_PART_REORDER);
    for (int i = 0; i < net->n_nodes; i++) {
        NnNode *d = &net->nodes[i];
        DNode *n = &s->dn[i];
        if (n->skip) continue;
        if (n->in_bn) {  /* first_grad.c runs it with the batch norm; in evaluation its output would be scanned:
                            it is finite when its input and filters are */
            if (!training && (nn_first_nonfinite(mem_ptr(s->mem[d->in]), (long)md_floats(&s->md[d->in])) >= 0 ||
                              nn_first_nonfinite(net->params + net->views[d->w].offset, (long)net->views[d->w].size) >= 0))
                return nc_fail(err, NC_ENUM, "layer %s (evaluation): the output is not finite (NaN or Inf)", d->name);
            continue;
        }
        prof_start(s);
        dnnl_memory_t in = s->mem[d->in], out = s->mem[n->out ? n->out : d->out];
        switch (d->op) {
        case NN_CONV: {
            if (n->wino || n->cg) {
                own_conv_fwd(s, i, net->params + net->views[d->w].offset, mem_ptr(in), mem_ptr(out),
                             training && n->sums_bn && !x->sync);
                break;
            }
            if (n->re_fwd) reorder(s, n->re_fwd, n->w_plain, n->w_fwd);
            prof_lap(s, i, NN_PART_REORDER);
            dnnl_exec_arg_t a[3] = {{DNNL_ARG_SRC, in}, {DNNL_ARG_WEIGHTS, n->w_fwd}, {DNNL_ARG_DST, out}};
            exec(s, n->fwd, 3, a);
            break;
        }
        case NN_BN: {
            const NnVal *vi = &net->vals[d->in];
            if (training) {
                dnnl_exec_arg_t a[7] = {{DNNL_ARG_SRC, in}, {DNNL_ARG_DST, out}, {DNNL_ARG_SCALE, n->scale},
                                        {DNNL_ARG_SHIFT, n->shift}, {DNNL_ARG_MEAN, n->mean},
                                        {DNNL_ARG_VARIANCE, n->var}, {DNNL_ARG_WORKSPACE, n->ws}};
                n->count = (double)x->batch * vi->h * vi->w;
                if (x->sync || (n->add && !n->csum) || n->fg) {
                    int rc = bn_batch_stats(x, s, i, err);
                    if (rc) return rc;
                    if (!n->pool && !n->add) {
                        a[6].memory = n->ws_sync;
                        exec(s, n->fwd_sync, n->fused_relu ? 7 : 6, a);
                    }
                } else if (n->csum && !n->pool && !n->add) {
                    dnnl_stream_wait(s->strm);
                    stats_from_sums(mem_ptr(n->mean), mem_ptr(n->var), n->csum, mem_ptr(n->rmean), n->count, vi->c);
                    a[6].memory = n->ws_sync;
                    exec(s, n->fwd_sync, n->fused_relu ? 7 : 6, a);
                } else if (n->pool || n->add) {
                    dnnl_stream_wait(s->strm);
                    if (n->csum)
                        stats_from_sums(mem_ptr(n->mean), mem_ptr(n->var), n->csum, mem_ptr(n->rmean), n->count, vi->c);
                    else
                        bnp_stats(mem_ptr(n->mean), mem_ptr(n->var), mem_ptr(in), x->batch, vi->c, vi->h, vi->w, n->pscr);
                } else {
                    exec(s, n->fwd, n->fused_relu ? 7 : 6, a);
                }
                /* running statistics, PyTorch's way: the unbiased batch variance */
                int c = net->vals[d->in].c;
                double m = n->count;
                float *rm = mem_ptr(n->rmean), *rv = mem_ptr(n->rvar), *bm = mem_ptr(n->mean), *bv = mem_ptr(n->var);
                float mo = net->bn_momentum, corr = m > 1 ? (float)(m / (m - 1)) : 1.0f;
                /* A NaN or Inf in the layer before shows in its batch statistics (a later ReLU
                   would turn it into 0): checking them costs C floats, not a pass over the data. */
                if (nn_first_nonfinite(bm, c) >= 0 || nn_first_nonfinite(bv, c) >= 0) {
                    const char *who = d->name;
                    for (int j = 0; j < i; j++) if (net->nodes[j].out == d->in) who = net->nodes[j].name;
                    return nc_fail(err, NC_ENUM, "layer %s (training): the output is not finite (NaN or Inf)", who);
                }
                for (int ch = 0; ch < c; ch++) {
                    rm[ch] = (1.0f - mo) * rm[ch] + mo * bm[ch];
                    rv[ch] = (1.0f - mo) * rv[ch] + mo * bv[ch] * corr;
                }
                if (n->fg_fwd)
                    first_grad_forward(x, s, i, mem_ptr(out), 1, bm, bv);
                else if (n->gap)
                    bnp_gap_forward(mem_ptr(out), n->gkept, mem_ptr(in), bm, bv, mem_ptr(n->scale), mem_ptr(n->shift),
                                    net->bn_eps, x->batch, vi->c, vi->h, vi->w);
                else if (n->pool)
                    bnp_forward(mem_ptr(out), n->pidx, n->fg ? n->fg->xk : n->xk, mem_ptr(in), bm, bv, mem_ptr(n->scale),
                                mem_ptr(n->shift), net->bn_eps, x->batch, vi->c, vi->h, vi->w);
                if (n->add)
                    bar_forward(mem_ptr(out), n->rmask, mem_ptr(in), mem_ptr(s->mem[n->res]), bm, bv, mem_ptr(n->scale),
                                mem_ptr(n->shift), net->bn_eps, n->blk, x->batch, vi->c, vi->h * vi->w);
            } else if (n->add) {
                dnnl_stream_wait(s->strm);
                bar_forward(mem_ptr(out), NULL, mem_ptr(in), mem_ptr(s->mem[n->res]), mem_ptr(n->rmean), mem_ptr(n->rvar),
                            mem_ptr(n->scale), mem_ptr(n->shift), net->bn_eps, n->blk, x->batch, vi->c, vi->h * vi->w);
            } else if (n->fg_fwd) {
                dnnl_stream_wait(s->strm);
                first_grad_forward(x, s, i, mem_ptr(out), 0, mem_ptr(n->rmean), mem_ptr(n->rvar));
            } else if (n->gap) {
                dnnl_stream_wait(s->strm);
                bnp_gap_forward(mem_ptr(out), NULL, mem_ptr(in), mem_ptr(n->rmean), mem_ptr(n->rvar), mem_ptr(n->scale),
                                mem_ptr(n->shift), net->bn_eps, x->batch, vi->c, vi->h, vi->w);
            } else if (n->pool) {
                dnnl_stream_wait(s->strm);
                bnp_forward(mem_ptr(out), n->pidx, NULL, mem_ptr(in), mem_ptr(n->rmean), mem_ptr(n->rvar), mem_ptr(n->scale),
                            mem_ptr(n->shift), net->bn_eps, x->batch, vi->c, vi->h, vi->w);
            } else {
                dnnl_exec_arg_t a[6] = {{DNNL_ARG_SRC, in}, {DNNL_ARG_DST, out}, {DNNL_ARG_SCALE, n->scale},
                                        {DNNL_ARG_SHIFT, n->shift}, {DNNL_ARG_MEAN, n->rmean},
                                        {DNNL_ARG_VARIANCE, n->rvar}};
                exec(s, n->fwd_eval, 6, a);
            }
            break;
        }
        case NN_RELU: {
            dnnl_exec_arg_t a[2] = {{DNNL_ARG_SRC, in}, {DNNL_ARG_DST, out}};
            exec(s, n->fwd, 2, a);
            break;
        }
        case NN_MAXPOOL: case NN_AVGPOOL: case NN_GAP: {
            dnnl_exec_arg_t a[3] = {{DNNL_ARG_SRC, in}, {DNNL_ARG_DST, out}, {DNNL_ARG_WORKSPACE, n->ws}};
            exec(s, n->fwd, n->ws ? 3 : 2, a);
            break;
        }
        case NN_LINEAR: {
            dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, in}, {DNNL_ARG_WEIGHTS, n->w_fwd}, {DNNL_ARG_BIAS, n->bias},
                                    {DNNL_ARG_DST, out}};
            exec(s, n->fwd, 4, a);
            break;
        }
        case NN_L2NORM:
            dnnl_stream_wait(s->strm);
            l2norm_forward(mem_ptr(out), mem_ptr(in), x->batch, net->vals[d->in].c);
            break;
        case NN_ADD: {
            dnnl_stream_wait(s->strm);
            add_forward(mem_ptr(out), mem_ptr(in), mem_ptr(s->mem[d->in2]), (long)md_floats(&s->md[d->out]));
            break;
        }
        }
        prof_lap(s, i, NN_PART_FWD);
        /* in evaluation every output is scanned as it is made (buffers are reused later) */
        if (!training) {
            int v = n->out ? n->out : d->out;
            dnnl_stream_wait(s->strm);
            if (nn_first_nonfinite(mem_ptr(s->mem[v]), (long)md_floats(&s->md[v])) >= 0)
                return nc_fail(err, NC_ENUM, "layer %s (evaluation): the output is not finite (NaN or Inf)", d->name);
        }
    }
    prof_start(s);
    dnnl_stream_wait(s->strm);
    memcpy(x->features, mem_ptr(s->mem[net->features]), sizeof(float) * x->batch * nnx_feature_dim(x));
    memcpy(x->embeddings, mem_ptr(s->mem[net->embeddings]), sizeof(float) * x->batch * nnx_embed_dim(x));
    int bad = training && nn_first_nonfinite(x->embeddings, (long)x->batch * nnx_embed_dim(x)) >= 0;
    prof_lap(s, EXEC_ROW, NN_PART_FWD);
    return bad ? nc_fail(err, NC_ENUM, "the embeddings are not finite (NaN or Inf)") : NC_OK;
}

static void add_param_grad(Net *net, int p, const float *src) {
    add_into(net->grads + net->views[p].offset, src, net->views[p].size);
}

/* The output v of BN+ReLU node i, dropped after the forward (s->rec_bn), computed again into
   s->mem_re[v] with the statistics the forward used (the BN with given statistics: the same
   values up to rounding; its own workspace, so the backward's ReLU mask stays the forward's). */
static dnnl_memory_t recompute_output(DState *s, int i, int v, int in) {
    DNode *n = &s->dn[i];
    dnnl_exec_arg_t a[7] = {{DNNL_ARG_SRC, s->mem[in]}, {DNNL_ARG_DST, s->mem_re[v]}, {DNNL_ARG_SCALE, n->scale},
                            {DNNL_ARG_SHIFT, n->shift}, {DNNL_ARG_MEAN, n->mean}, {DNNL_ARG_VARIANCE, n->var},
                            {DNNL_ARG_WORKSPACE, n->ws_re}};
    exec(s, n->fwd_sync, 7, a);
    return s->mem_re[v];
}

static int dnnl_bwd(NetExec *x, const float *d_emb, NcError *err) {
    DState *s = x->impl;
    Net *net = x->net;
    prof_start(s);
    memset(s->ginit, 0, sizeof s->ginit);
    memcpy(mem_ptr(s->gmem[net->embeddings]), d_emb, sizeof(float) * x->batch * nnx_embed_dim(x));
    s->ginit[net->embeddings] = 1;
    prof_lap(s, EXEC_ROW, NN_PART_BWD_DATA);
    for (int i = net->n_nodes - 1; i >= 0; nnx_node_done(x, i), i--) {  /* then its gradients are final */
        NnNode *d = &net->nodes[i];
        DNode *n = &s->dn[i];
        if (n->skip) continue;
        int vout = n->out ? n->out : d->out;
        dnnl_memory_t gout = s->gmem[vout], in = s->mem[d->in];
        if (!s->ginit[vout]) continue;  /* nothing flows back through this node */
        int need_in = d->in != net->input;
        prof_start(s);
        if (s->rec_bn[d->in]) {
            int b = s->rec_bn[d->in] - 1;
            in = recompute_output(s, b, d->in, net->nodes[b].in);
            prof_lap(s, b, NN_PART_BWD_DATA);
        }
        switch (d->op) {
        case NN_CONV: {
            if (n->wino || n->cg) {
                size_t off = net->views[d->w].offset;
                own_conv_bwd(s, i, net->params + off, net->grads + off, mem_ptr(in), mem_ptr(gout),
                             need_in ? d->in : -1);
                break;
            }
            if (n->re_src) reorder(s, n->re_src, in, n->src_bwd);
            prof_lap(s, i, NN_PART_REORDER);
            dnnl_exec_arg_t aw[3] = {{DNNL_ARG_SRC, n->re_src ? n->src_bwd : in}, {DNNL_ARG_DIFF_DST, gout},
                                     {DNNL_ARG_DIFF_WEIGHTS, n->dw}};
            exec(s, n->bwd_w, 3, aw);
            prof_lap(s, i, NN_PART_BWD_W);
            if (n->re_dw) reorder(s, n->re_dw, n->dw, n->dw_plain);
            prof_lap(s, i, NN_PART_REORDER);
            dnnl_stream_wait(s->strm);
            add_param_grad(net, d->w, s->wscratch);  /* wscratch = dw_plain, which bwd_data leaves alone */
            prof_lap(s, i, NN_PART_BWD_W);
            if (need_in) {
                if (n->re_bwd) reorder(s, n->re_bwd, n->w_plain, n->w_bwd);
                prof_lap(s, i, NN_PART_REORDER);
                dnnl_exec_arg_t a[3] = {{DNNL_ARG_DIFF_DST, gout}, {DNNL_ARG_WEIGHTS, n->w_bwd},
                                        {DNNL_ARG_DIFF_SRC, grad_target(s, d->in)}};
                exec(s, n->bwd_data, 3, a);
                dnnl_stream_wait(s->strm);
                grad_commit(s, d->in);
            }
            break;
        }
        case NN_BN: {
            dnnl_exec_arg_t a[10] = {{DNNL_ARG_SRC, in}, {DNNL_ARG_MEAN, n->mean}, {DNNL_ARG_VARIANCE, n->var},
                                     {DNNL_ARG_DIFF_DST, gout}, {DNNL_ARG_SCALE, n->scale}, {DNNL_ARG_SHIFT, n->shift},
                                     {DNNL_ARG_DIFF_SRC, grad_target(s, d->in)}, {DNNL_ARG_DIFF_SCALE, n->dscale},
                                     {DNNL_ARG_DIFF_SHIFT, n->dshift}, {DNNL_ARG_WORKSPACE, n->ws}};
            if (n->add) {
                int rc = bn_add_backward(x, s, i, err);
                if (rc) return rc;
            } else if (x->sync) {
                int rc = bn_backward_sync(x, s, i, a, err);
                if (rc) return rc;
            } else if (n->fg) {
                float *dscale = mem_ptr(n->dscale), *dshift = mem_ptr(n->dshift);
                dnnl_stream_wait(s->strm);
                first_grad_moments(x, s, i);
                for (int ch = 0; ch < net->vals[d->in].c; ch++) {
                    dshift[ch] = (float)n->fg->sdy[ch];
                    dscale[ch] = (float)n->fg->sdyx[ch];
                }
                first_grad_backward(x, s, i, n->fg->sdy, n->fg->sdyx);
            } else if (n->gap) {
                const NnVal *vi = &net->vals[d->in];
                dnnl_stream_wait(s->strm);
                bnp_gap_backward(mem_ptr(grad_target(s, d->in)), mem_ptr(n->dscale), mem_ptr(n->dshift), mem_ptr(gout),
                                 n->gkept, mem_ptr(in), mem_ptr(n->mean), mem_ptr(n->var), mem_ptr(n->scale),
                                 mem_ptr(n->shift), net->bn_eps, x->batch, vi->c, vi->h, vi->w, n->pscr);
            } else if (n->pool) {
                const NnVal *vi = &net->vals[d->in];
                dnnl_stream_wait(s->strm);
                bnp_backward(mem_ptr(grad_target(s, d->in)), mem_ptr(n->dscale), mem_ptr(n->dshift), mem_ptr(gout),
                             n->pidx, mem_ptr(in), n->xk, mem_ptr(n->mean), mem_ptr(n->var), mem_ptr(n->scale),
                             net->bn_eps, x->batch, vi->c, vi->h, vi->w, n->pscr);
            } else {
                exec(s, n->bwd_data, n->fused_relu ? 10 : 9, a);
            }
            dnnl_stream_wait(s->strm);
            add_param_grad(net, d->w, mem_ptr(n->dscale));
            add_param_grad(net, d->b, mem_ptr(n->dshift));
            if (!n->fg) grad_commit(s, d->in);  /* else the convolution before has its gradient already */
            break;
        }
        case NN_RELU: {
            dnnl_exec_arg_t a[3] = {{DNNL_ARG_SRC, in}, {DNNL_ARG_DIFF_DST, gout}, {DNNL_ARG_DIFF_SRC, grad_target(s, d->in)}};
            exec(s, n->bwd_data, 3, a);
            dnnl_stream_wait(s->strm);
            grad_commit(s, d->in);
            break;
        }
        case NN_MAXPOOL: case NN_AVGPOOL: case NN_GAP: {
            dnnl_exec_arg_t a[3] = {{DNNL_ARG_DIFF_DST, gout}, {DNNL_ARG_DIFF_SRC, grad_target(s, d->in)},
                                    {DNNL_ARG_WORKSPACE, n->ws}};
            exec(s, n->bwd_data, n->ws ? 3 : 2, a);
            dnnl_stream_wait(s->strm);
            grad_commit(s, d->in);
            break;
        }
        case NN_LINEAR: {
            dnnl_exec_arg_t aw[4] = {{DNNL_ARG_SRC, in}, {DNNL_ARG_DIFF_DST, gout}, {DNNL_ARG_DIFF_WEIGHTS, n->dw},
                                     {DNNL_ARG_DIFF_BIAS, n->dbias}};
            exec(s, n->bwd_w, 4, aw);
            dnnl_stream_wait(s->strm);
            add_param_grad(net, d->w, s->wscratch);
            add_param_grad(net, d->b, mem_ptr(n->dbias));
            prof_lap(s, i, NN_PART_BWD_W);
            dnnl_exec_arg_t a[3] = {{DNNL_ARG_DIFF_DST, gout}, {DNNL_ARG_WEIGHTS, n->w_bwd},
                                    {DNNL_ARG_DIFF_SRC, grad_target(s, d->in)}};
            exec(s, n->bwd_data, 3, a);
            dnnl_stream_wait(s->strm);
            grad_commit(s, d->in);
            break;
        }
        case NN_L2NORM: {
            float *t = mem_ptr(grad_target(s, d->in));
            int D = net->vals[d->in].c;
            memset(t, 0, sizeof(float) * x->batch * D);
            l2norm_backward(t, mem_ptr(gout), mem_ptr(s->mem[d->out]), mem_ptr(in), x->batch, D);
            grad_commit(s, d->in);
            break;
        }
        case NN_ADD: {
            size_t len = md_floats(&s->md[d->out]);
            int ops[2] = {d->in, d->in2};
            for (int o = 0; o < 2; o++) {
                memcpy(mem_ptr(grad_target(s, ops[o])), mem_ptr(gout), sizeof(float) * len);
                grad_commit(s, ops[o]);
            }
            break;
        }
        }
        prof_lap(s, i, NN_PART_BWD_DATA);
    }
    dnnl_stream_wait(s->strm);
    return NC_OK;
}

static void dnnl_peek(NetExec *x, int v, int grad, float *out) {
    DState *s = x->impl;
    dnnl_memory_t m = grad ? s->gmem[v] : s->mem[v];
    if (!m) return;
    int64_t dims[4];
    int nd = value_dims(x, v, dims);
    dnnl_memory_desc_t plain;
    md_plain(&plain, nd, dims, nd == 2 ? dnnl_nc : dnnl_nchw);
    if (s->md[v].ndims != nd) {  /* a (N, C, 1, 1) value seen as (N, C): same bytes */
        memcpy(out, mem_ptr(m), sizeof(float) * md_floats(&plain));
        return;
    }
    dnnl_memory_t o = mem_new(s, &plain, out);
    dnnl_primitive_t r = reorder_new(s, &s->md[v], &plain);
    if (r) { reorder(s, r, m, o); dnnl_stream_wait(s->strm); dnnl_primitive_destroy(r); }
    else memcpy(out, mem_ptr(m), sizeof(float) * md_floats(&plain));
    dnnl_memory_destroy(o);
}

static void dnnl_profile(NetExec *x, int on) {
    DState *s = x->impl;
    s->profile = on;
    if (on) memset(s->t, 0, sizeof s->t);  /* turning it off keeps the counts */
}

static void dnnl_profile_node(const NetExec *x, int node, NnNodeProfile *p) {
    const DState *s = x->impl;
    const Net *net = x->net;
    if (node < 0) {
        memcpy(p->sec, s->t[EXEC_ROW], sizeof p->sec);
        snprintf(p->path[NN_PART_FWD], sizeof p->path[0], "copy out + finite check");
        snprintf(p->path[NN_PART_BWD_DATA], sizeof p->path[0], "seed gradient");
        snprintf(p->path[NN_PART_REORDER], sizeof p->path[0], "%s", s->re_in ? "oneDNN reorder nchw" : "none");
        return;
    }
    const DNode *n = &s->dn[node];
    memcpy(p->sec, s->t[node], sizeof p->sec);
    memcpy(p->path, n->path, sizeof p->path);
    for (int i = node - 2; i < node && n->skip; i++)  /* a ReLU, pool or add run by the batch norm before it */
        if (i >= 0 && net->nodes[i].op == NN_BN &&
            (s->dn[i].pool == node || (s->dn[i].fused_relu && i + 1 == node) || (s->dn[i].add && i + 2 >= node)))
            p->runs_as = i;
    if (net->nodes[node].op == NN_BN) p->last = n->pool ? n->pool : n->fused_relu ? node + 1 : n->add ? node + 2 : node;
    if (net->nodes[node].op == NN_ADD || net->nodes[node].op == NN_L2NORM) {
        snprintf(p->path[NN_PART_FWD], sizeof p->path[0], "plain loop");
        snprintf(p->path[NN_PART_BWD_DATA], sizeof p->path[0], "plain loop");
    }
}

/* the bytes oneDNN's primitive p asks of the library's scratchpad (0 for none) */
static size_t scratchpad_bytes(dnnl_primitive_t p) {
    const_dnnl_primitive_desc_t pd = NULL;
    const dnnl_memory_desc_t *md;
    if (!p || dnnl_primitive_get_primitive_desc(p, &pd) != dnnl_success) return 0;
    md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t b = md ? dnnl_memory_desc_get_size(md) : 0;
    int64_t use = 0;
    if (dnnl_primitive_desc_query(pd, dnnl_query_memory_consumption_s64, 0, &use) == dnnl_success && (size_t)use > b)
        b = (size_t)use;
    return b;
}

static size_t mem_bytes(dnnl_memory_t m) {
    const dnnl_memory_desc_t *md = NULL;
    if (!m || dnnl_memory_get_memory_desc(m, &md) != dnnl_success) return 0;
    return dnnl_memory_desc_get_size(md);
}

static int dnnl_memory_rows(const NetExec *x, NnMemRow *rows, int cap, int k) {
    const DState *s = x->impl;
    const Net *net = x->net;
    char at[64];
    long n2 = 2L * net->n_nodes, t = s->live_t;
    int node = t < n2 - 1 ? (int)(t / 2) : (int)(n2 - 1 - t / 2);
    snprintf(at, sizeof at, "arena at %s %s", t == n2 - 1 ? "the loss" : net->nodes[node].name,
             t == n2 - 1 ? "" : t < n2 ? "forward" : "backward");
    k = nnx_mem_row(rows, cap, k, at, "activations kept for backward", s->live_data);
    k = nnx_mem_row(rows, cap, k, at, "gradients alive", s->live_grad);
    k = nnx_mem_row(rows, cap, k, "arena slots idle at its peak", "arena slack (liveness plan)",
                    s->arena_bytes - s->live_data - s->live_grad);
    size_t fl = sizeof(float);
    size_t wmax = s->wscratch_n, pad = 0;
    /* the part written so far: our convolutions add their second input gradient in place, so in
       ResNet-18 no pass writes it and it holds no pages */
    k = nnx_mem_row(rows, cap, k, "executor", "gradient accumulation scratch", s->scratch_used * fl);
    k = nnx_mem_row(rows, cap, k, "executor", "weight-gradient scratch", wmax * fl);
    if (s->wino_wbuf) {
        k = nnx_mem_row(rows, cap, k, "Winograd layers (shared)", "Winograd scratch (V, M)", s->wino_scratch_n * fl);
        k = nnx_mem_row(rows, cap, k, "Winograd layers (shared)", "Winograd weights or weight-grad sums",
                        s->wino_wbuf_n * fl);
    }
    for (int i = 0; i < net->n_nodes; i++) {
        const DNode *n = &s->dn[i];
        const char *nm = net->nodes[i].name;
        dnnl_primitive_t ps[] = {n->fwd, n->bwd_data, n->bwd_w, n->re_fwd, n->re_bwd, n->re_dw, n->re_src};
        for (size_t j = 0; j < sizeof ps / sizeof ps[0]; j++) {
            size_t b = scratchpad_bytes(ps[j]);
            if (b > pad) pad = b;
        }
        if (n->w_fwd != n->w_plain) k = nnx_mem_row(rows, cap, k, nm, "oneDNN blocked weights", mem_bytes(n->w_fwd));
        if (n->w_bwd && n->w_bwd != n->w_fwd && n->w_bwd != n->w_plain)
            k = nnx_mem_row(rows, cap, k, nm, "oneDNN blocked weights", mem_bytes(n->w_bwd));
        if (n->dw != n->dw_plain) k = nnx_mem_row(rows, cap, k, nm, "oneDNN blocked weight gradient", mem_bytes(n->dw));
        if (n->src_bwd) k = nnx_mem_row(rows, cap, k, nm, "input in the weight gradient's layout", mem_bytes(n->src_bwd));
        if (n->ws) k = nnx_mem_row(rows, cap, k, nm, net->nodes[i].op == NN_BN ? "bn+relu workspace" : "max-pool workspace",
                                   mem_bytes(n->ws));
        if (n->gkept)
            k = nnx_mem_row(rows, cap, k, nm, "bn+relu+gap ReLU counts and sums",
                            sizeof(double) * 2 * x->batch * net->vals[net->nodes[i].in].c);
        if (n->rmask) {
            const NnVal *vi = &net->vals[net->nodes[i].in];
            k = nnx_mem_row(rows, cap, k, nm, "bn+add+relu ReLU masks", (size_t)x->batch * vi->c * vi->h * vi->w / 8);
        }
        if (n->pidx) {
            const NnVal *vo = &net->vals[net->nodes[n->pool].out];
            k = nnx_mem_row(rows, cap, k, nm, "bn+relu+pool window indices", (size_t)x->batch * vo->c * vo->h * vo->w);
            if (n->xk || n->fg)
                k = nnx_mem_row(rows, cap, k, nm, "bn+relu+pool inputs at the maxima",
                                sizeof(float) * x->batch * vo->c * vo->h * vo->w);
        }
    }
    return nnx_mem_row(rows, cap, k, "oneDNN", "scratchpad (largest primitive's)", pad);
}

static void dnnl_destroy(NetExec *x) {
    DState *s = x->impl;
    Net *net = x->net;
    for (int i = 0; i < net->n_nodes; i++) {
        DNode *n = &s->dn[i];
        dnnl_primitive_t ps[] = {n->fwd, n->fwd_eval != n->fwd ? n->fwd_eval : NULL, n->bwd_data, n->bwd_w,
                                 n->fwd_sync, n->bwd_sync,
                                 n->re_fwd, n->re_bwd, n->re_dw, n->re_src};
        for (size_t j = 0; j < sizeof ps / sizeof ps[0]; j++) if (ps[j]) dnnl_primitive_destroy(ps[j]);
        dnnl_memory_t ms[] = {n->ws, n->w_plain, n->w_fwd != n->w_plain ? n->w_fwd : NULL,
                              (n->w_bwd != n->w_fwd && n->w_bwd != n->w_plain) ? n->w_bwd : NULL,
                              n->dw != n->dw_plain ? n->dw : NULL, n->dw_plain, n->bias, n->dbias, n->mean, n->var,
                              n->scale, n->shift, n->dscale, n->dshift, n->rmean, n->rvar, n->src_bwd,
                              n->ws_sync != n->ws ? n->ws_sync : NULL, n->ws_re};
        for (size_t j = 0; j < sizeof ms / sizeof ms[0]; j++) if (ms[j]) dnnl_memory_destroy(ms[j]);
        free(n->wino);
        free(n->csum);
        free(n->cpart);
        free(n->cg);
        free(n->ws2);
        free(n->pidx);
        free(n->rmask);
        free(n->gkept);
        free(n->xk);
        free(n->pscr);
        if (n->fg) fg_free(n->fg);
        free(n->fg);
    }
    for (int v = 0; v < net->n_vals; v++) {
        if (s->mem[v]) dnnl_memory_destroy(s->mem[v]);
        if (s->gmem[v]) dnnl_memory_destroy(s->gmem[v]);
        if (s->gscr[v]) dnnl_memory_destroy(s->gscr[v]);
        if (s->mem_re[v]) dnnl_memory_destroy(s->mem_re[v]);
    }
    if (s->in_user) dnnl_memory_destroy(s->in_user);
    if (s->re_in) dnnl_primitive_destroy(s->re_in);
    dnnl_stream_destroy(s->strm);
    dnnl_engine_destroy(s->eng);
    free(s->scratch);
    free(s->wscratch);
    free(s->wino_scratch);
    free(s->wino_wbuf);
    free(s->arena);
    free(s);
}

int nnx_create_dnnl(NetExec *x, NcError *err) {
    Net *net = x->net;
    DState *s = nc_calloc(1, sizeof *s);
    x->impl = s;
    x->forward = dnnl_fwd;
    x->backward = dnnl_bwd;
    x->destroy = dnnl_destroy;
    x->peek = dnnl_peek;
    x->profile = dnnl_profile;
    x->profile_node = dnnl_profile_node;
    x->memory = dnnl_memory_rows;
    if (dnnl_engine_create(&s->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&s->strm, s->eng, dnnl_stream_default_flags) != dnnl_success) {
        free(s);
        return nc_fail(err, NC_ENUM, "oneDNN: cannot create a CPU engine");
    }
    for (int i = 0; i < net->n_nodes; i++) {
        s->consumers[net->nodes[i].in]++;
        if (net->nodes[i].in2 >= 0) s->consumers[net->nodes[i].in2]++;
    }
    int rc = NC_OK;
    for (int i = 0; i < net->n_nodes && rc == NC_OK; i++) {
        NnNode *d = &net->nodes[i];
        switch (d->op) {
        case NN_CONV: rc = build_conv(x, s, i, err); break;
        case NN_BN: rc = build_bn(x, s, i, err); break;
        case NN_RELU: rc = build_relu(x, s, i, err); break;
        case NN_MAXPOOL: case NN_AVGPOOL: case NN_GAP: rc = build_pool(x, s, i, err); break;
        case NN_LINEAR: rc = build_linear(x, s, i, err); break;
        case NN_L2NORM: case NN_ADD: if (!s->dn[i].skip) s->md[d->out] = s->md[d->in]; break;
        }
    }
    if (rc) { dnnl_destroy(x); return rc; }
    s->wscratch = nc_malloc(sizeof(float) * (s->wscratch_n + 1));
    for (int i = 0; i < net->n_nodes; i++)
        if (s->dn[i].dw_plain) dnnl_memory_set_data_handle(s->dn[i].dw_plain, s->wscratch);
    /* the caller's input and its reorder */
    int64_t di[4];
    value_dims(x, net->input, di);
    dnnl_memory_desc_t user;
    md_plain(&user, 4, di, dnnl_nchw);
    s->in_user = mem_new(s, &user, x->features);  /* handle replaced at every forward */
    s->re_in = reorder_new(s, &user, &s->md[net->input]);
    /* value memories (skipped BN outputs get none) and gradient memories, planned in one arena */
    s->scratch = nc_malloc_big(sizeof(float) * (scratch_floats(x, s) + 1));
    share_wino_work(x, s);
    plan_arena(x, s);
    for (int v = 0; v < net->n_vals; v++) {
        if (s->md[v].ndims == 0) continue;  /* a BN output that the fused ReLU replaced */
        if (v == net->input && !s->re_in) { s->mem[v] = mem_new(s, &s->md[v], x->features); continue; }
        s->mem[v] = mem_new(s, &s->md[v], s->arena + s->data_off[v]);
        if (s->rec_bn[v]) s->mem_re[v] = mem_new(s, &s->md[v], s->arena + s->re_off[v]);
        if (v == net->input) continue;
        s->gmem[v] = mem_new(s, &s->md[v], s->arena + s->grad_off[v]);
        if (s->consumers[v] > 1) s->gscr[v] = mem_new(s, &s->md[v], s->scratch);
    }
    return NC_OK;
}
