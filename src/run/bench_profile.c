// bench_profile.c -- `ncelab bench --profile`: the rows of a step (each layer's passes and the
// step's own parts) with their FLOPs and bytes, per-step samples, medians and the rest of the step.
#include "bench_profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const part_name[NN_PART_N] = {"fwd", "bwd_data", "bwd_w", "reorder"};

double bench_median(double *v, int n) {
    if (n <= 0) return 0.0;
    for (int i = 1; i < n; i++)  /* insertion sort: n is a few steps */
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) { double t = v[j]; v[j] = v[j - 1]; v[j - 1] = t; }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* bytes of value v for the whole batch */
static double val_bytes(const Net *net, int v, int images) {
    const NnVal *x = &net->vals[v];
    return 4.0 * images * x->c * x->h * x->w;
}

/* the summary category of node i's part (conv shapes told apart; reorders of any layer together) */
static void category(char *out, size_t cap, const Net *net, int i, int last, int part) {
    const NnNode *d = &net->nodes[i];
    if (part == NN_PART_REORDER) { snprintf(out, cap, "reorders, weight transforms"); return; }
    switch (d->op) {
    case NN_CONV:
        if (d->in == net->input) snprintf(out, cap, "conv first (%d ch)", net->vals[d->in].c);
        else if (d->k == 1) snprintf(out, cap, "conv 1x1 shortcut");
        else snprintf(out, cap, "conv %dx%d stride %d", d->k, d->k, d->stride);
        break;
    case NN_BN:
        snprintf(out, cap, "%s", last == i                                ? "bn"
                                 : net->nodes[last].op == NN_MAXPOOL ||
                                   net->nodes[last].op == NN_GAP          ? "bn+relu+pool"
                                 : net->nodes[i + 1].op == NN_ADD         ? "bn+add+relu"
                                                                          : "bn+relu");
        break;
    case NN_RELU: snprintf(out, cap, "relu"); break;
    case NN_ADD: snprintf(out, cap, "add (residual)"); break;
    case NN_MAXPOOL: case NN_AVGPOOL: case NN_GAP: snprintf(out, cap, "pool"); break;
    case NN_LINEAR: case NN_L2NORM: snprintf(out, cap, "head (linear, l2norm)"); break;
    }
}

/* FLOPs and bytes of node i's part (its kernel covering nodes i..last) for `images` images:
   FLOPs 2 per multiply-add of a direct convolution or GEMM (Winograd multiplies less), bytes the
   tensors the part reads or writes, each once (a lower bound of the traffic). */
static void work(double *flops, double *bytes, const Net *net, int i, int last, int part, const char *path,
                 int images) {
    const NnNode *d = &net->nodes[i];
    double in = val_bytes(net, d->in, images), out = val_bytes(net, net->nodes[last].out, images);
    double w = d->w >= 0 ? 4.0 * net->views[d->w].size : 0.0;
    *flops = 0.0;
    if (d->op == NN_CONV || d->op == NN_LINEAR) {
        const NnVal *o = &net->vals[d->out], *x = &net->vals[d->in];
        double macs = (double)images * o->c * o->h * o->w * x->c * (d->op == NN_CONV ? d->k * d->k : 1);
        if (part != NN_PART_REORDER) *flops = 2.0 * macs;
        if (d->b >= 0) w += 4.0 * net->views[d->b].size;
        *bytes = part == NN_PART_FWD ? in + out + w
                 : part == NN_PART_BWD_DATA ? out + in + w
                 : part == NN_PART_BWD_W ? in + out + 3 * w           /* dW written, added into the gradients */
                 : strncmp(path, "Winograd", 8) == 0 ? 10 * w         /* per pass w read, 36/9 w written */
                 : 2 * w + (d->in == net->input ? 2 * in : 0);        /* blocked weights; the first layer's input */
        return;
    }
    /* the add's other operand: its own, or that of the add fused into a batch norm */
    const NnNode *da = d->op == NN_ADD ? d : last > i && net->nodes[i + 1].op == NN_ADD ? &net->nodes[i + 1] : NULL;
    double in2 = da ? val_bytes(net, da == d ? d->in2 : (da->in == d->out ? da->in2 : da->in), images) : 0.0;
    if (part == NN_PART_FWD) *bytes = in + in2 + out;
    else *bytes = out + in + in2 + (d->op == NN_BN || d->op == NN_RELU || d->op == NN_L2NORM ? in : 0);  /* dy, dx (+ x) */
}

/* add_row: appends a row to p and returns its index */
static int add_row(BenchProfile *p, const char *name, const char *pass, const char *path, const char *cat, int node,
                   double flops, double bytes) {
    BenchProfRow *r = &p->rows[p->nrows];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->pass, sizeof r->pass, "%s", pass);
    snprintf(r->path, sizeof r->path, "%s", path);
    snprintf(r->category, sizeof r->category, "%s", cat);
    r->node = node;
    r->flops = flops;
    r->bytes = bytes;
    return p->nrows++;
}

/* the parts a node's kernel has: data gradient unless it reads the network's input, weights
   for convolutions and linear layers, reorders for convolutions */
static int has_part(const Net *net, int i, int part) {
    const NnNode *d = &net->nodes[i];
    int weights = d->op == NN_CONV || d->op == NN_LINEAR;
    if (part == NN_PART_BWD_DATA) return d->in != net->input || !weights;
    if (part == NN_PART_BWD_W) return weights;
    if (part == NN_PART_REORDER) return d->op == NN_CONV;
    return 1;
}

void prof_begin(ProfRun *pr, BenchProfile *p, const Net *net, NetExec *x, const ProfShape *sh, int steps) {
    memset(pr, 0, sizeof *pr);
    memset(p, 0, sizeof *p);
    pr->p = p;
    int cap = NN_PART_N * (net->n_nodes + 1) + OWN_N;
    p->rows = nc_calloc((size_t)cap, sizeof(BenchProfRow));
    pr->xnode = nc_malloc(sizeof(int) * cap);
    pr->xpart = nc_malloc(sizeof(int) * cap);
    for (int i = 0; i < net->n_nodes; i++) {
        NnNodeProfile np;
        nnx_profile_node(x, i, &np);
        if (np.runs_as != i) continue;  /* counted in the batch norm it is fused into */
        char name[64];  /* "layer1.0.bn1+relu", "bn1+relu+pool", "bn3+relu+avgpool", "layer1.0.bn2+add+relu" */
        snprintf(name, sizeof name, "%s", net->nodes[i].name);
        for (int j = i + 1; j <= np.last; j++) {
            int op = net->nodes[j].op;
            strncat(name, op == NN_RELU ? "+relu" : op == NN_ADD ? "+add" : op == NN_MAXPOOL ? "+pool" : "+avgpool",
                    sizeof name - strlen(name) - 1);
        }
        for (int part = 0; part < NN_PART_N; part++) {
            if (!has_part(net, i, part)) continue;
            double f, b;
            char cat[32];
            work(&f, &b, net, i, np.last, part, np.path[part], sh->images);
            category(cat, sizeof cat, net, i, np.last, part);
            add_row(p, name, part_name[part], np.path[part], cat, i, f, b);
            pr->xnode[pr->nx] = i;
            pr->xpart[pr->nx++] = part;
        }
    }
    /* the executor's own work: input reorder, output copies, gradient seed */
    NnNodeProfile ex;
    nnx_profile_node(x, -1, &ex);
    double img = 4.0 * sh->images * net->in_c * net->in_h * net->in_w;
    double feo = 4.0 * sh->images * (nnx_feature_dim(x) + nnx_embed_dim(x)), emb = 4.0 * sh->images * sh->dim;
    const struct { int part; double bytes; const char *cat; } exr[] = {
        {NN_PART_REORDER, 2 * img, "reorders, weight transforms"},
        {NN_PART_FWD, 2 * feo, "executor copies"},
        {NN_PART_BWD_DATA, 2 * emb, "executor copies"}};
    for (size_t j = 0; j < sizeof exr / sizeof exr[0]; j++) {
        add_row(p, "executor", part_name[exr[j].part], ex.path[exr[j].part], exr[j].cat, -1, 0.0, exr[j].bytes);
        pr->xnode[pr->nx] = -1;
        pr->xpart[pr->nx++] = exr[j].part;
    }
    /* the step's own parts */
    double P = 4.0 * net->n_param_floats, z = 4.0 * sh->images * sh->dim;
    double scores = 4.0 * sh->anchors * (sh->images + sh->queue);
    const struct { int own; const char *name, *path, *cat; double bytes; } own[] = {
        {OWN_SAMPLE, "negatives", "uniform without replacement", "loss", 4.0 * sh->anchors * sh->k},
        {OWN_ZERO, "zero gradients", "memset", "optimizer", P},
        {OWN_KEY, "key encoder forward", "MoCo, not profiled", "MoCo key encoder", 0.0},
        {OWN_LOSS, "loss + gradient", "InfoNCE, sgemm", "loss", 2 * z + 2 * scores + 4.0 * sh->queue * sh->dim},
        {OWN_OPT, "optimizer", "SGD momentum 0.9, wd", "optimizer", 5 * P},
        {OWN_MOMENTUM, "key momentum update", "MoCo", "MoCo key encoder", 3 * P}};
    for (size_t j = 0; j < sizeof own / sizeof own[0]; j++) {
        pr->own_row[own[j].own] = -1;
        if (!sh->queue && (own[j].own == OWN_KEY || own[j].own == OWN_MOMENTUM)) continue;
        pr->own_row[own[j].own] = add_row(p, own[j].name, "step", own[j].path, own[j].cat, -1, 0.0, own[j].bytes);
    }
    pr->steps = steps;
    pr->prev = nc_calloc((size_t)pr->nx, sizeof(double));
    pr->samples = nc_calloc((size_t)steps * p->nrows, sizeof(double));
    pr->step_s = nc_calloc((size_t)steps, sizeof(double));
    nnx_profile(x, 1);
}

void prof_sample(ProfRun *pr, const NetExec *x, const double own[OWN_N], double step_s) {
    if (pr->done >= pr->steps) return;
    double *s = pr->samples + (size_t)pr->done * pr->p->nrows;
    for (int r = 0; r < pr->nx; r++) {
        NnNodeProfile np;
        nnx_profile_node(x, pr->xnode[r], &np);
        s[r] = np.sec[pr->xpart[r]] - pr->prev[r];
        pr->prev[r] = np.sec[pr->xpart[r]];
    }
    for (int o = 0; o < OWN_N; o++)
        if (pr->own_row[o] >= 0) s[pr->own_row[o]] = own[o];
    pr->step_s[pr->done++] = step_s;
}

void prof_end(ProfRun *pr, NetExec *x) {
    BenchProfile *p = pr->p;
    int S = pr->done, R = p->nrows;
    double *col = nc_malloc(sizeof(double) * (S > 0 ? S : 1)), *rest = nc_malloc(sizeof(double) * (S > 0 ? S : 1));
    nnx_profile(x, 0);
    for (int k = 0; k < S; k++) {
        /* the rows are disjoint laps inside the step, so the difference is >= 0 but for the
           rounding of the subtractions (1e-15 s), which is cut off */
        double sum = 0.0;
        for (int r = 0; r < R; r++) sum += pr->samples[(size_t)k * R + r];
        rest[k] = pr->step_s[k] - sum > 0 ? pr->step_s[k] - sum : 0.0;
    }
    p->rows_ms = 0.0;
    for (int r = 0; r < R; r++) {
        for (int k = 0; k < S; k++) col[k] = pr->samples[(size_t)k * R + r];
        p->rows[r].ms = 1e3 * bench_median(col, S);
        p->rows_ms += p->rows[r].ms;
    }
    p->rest_ms = 1e3 * bench_median(rest, S);
    p->total_ms = p->rows_ms + p->rest_ms;
    p->step_ms = 1e3 * bench_median(pr->step_s, S);
    p->steps = S;
    free(col); free(rest);
    free(pr->xnode); free(pr->xpart); free(pr->prev); free(pr->samples); free(pr->step_s);
}

void prof_memory(BenchProfile *p, const NnMemRow *own, int n, NetExec *const *xs, const char *const *prefix, int nxs) {
    int total = n;
    for (int j = 0; j < nxs; j++) total += nnx_memory(xs[j], NULL, 0);
    p->mem = nc_calloc((size_t)(total > 0 ? total : 1), sizeof(NnMemRow));
    memcpy(p->mem, own, sizeof(NnMemRow) * n);
    p->nmem = n;
    for (int j = 0; j < nxs; j++) {
        int m = nnx_memory(xs[j], p->mem + p->nmem, total - p->nmem);
        for (int r = p->nmem; r < p->nmem + m && prefix[j][0]; r++) {
            char nm[64];
            snprintf(nm, sizeof nm, "%s%s", prefix[j], p->mem[r].name);
            memcpy(p->mem[r].name, nm, sizeof nm);
        }
        p->nmem += m;
    }
    p->mem_bytes = 0.0;
    for (int r = 0; r < p->nmem; r++) p->mem_bytes += (double)p->mem[r].bytes;
}

void bench_result_free(BenchResult *r) {
    free(r->prof.rows);
    free(r->prof.mem);
    free(r->steps_ms);
    r->prof.rows = NULL;
    r->prof.mem = NULL;
    r->steps_ms = NULL;
}
