// metrics.c -- mean classifier, weighted kNN, linear probe (L-BFGS) and class-mean geometry.
#include "ncelab/eval.h"
#include "ncelab/progress.h"
#include "ncelab/rng.h"

#include <cblas.h>
#include <dnnl.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

void eval_config_default(EvalConfig *c) {
    memset(c, 0, sizeof *c);
    c->knn_k = 200;
    c->knn_t = 0.1;
    c->parts = 1;
}

/* this part's block [*a, *b) of n rows */
static void part_rows(const EvalConfig *c, int n, int *a, int *b) {
    int P = c->parts > 1 && c->sum ? c->parts : 1, r = P > 1 ? c->part : 0;
    *a = (int)((long)n * r / P);
    *b = (int)((long)n * (r + 1) / P);
}

static void class_means(const float *x, const int32_t *y, int n, int d, int nc, double *mu, int *cnt) {
    memset(mu, 0, sizeof(double) * nc * d);
    memset(cnt, 0, sizeof(int) * nc);
    for (int i = 0; i < n; i++) {
        cnt[y[i]]++;
        for (int j = 0; j < d; j++) mu[(size_t)y[i] * d + j] += x[(size_t)i * d + j];
    }
    for (int c = 0; c < nc; c++)
        for (int j = 0; j < d; j++) mu[(size_t)c * d + j] /= cnt[c] > 0 ? cnt[c] : 1;
}

static double mean_classifier(const double *mu, const int *cnt, const float *xte, const int32_t *yte, int nte,
                              int d, int nc) {
    long right = 0;
    #pragma omp parallel for reduction(+:right) schedule(static)
    for (int i = 0; i < nte; i++) {
        int best = -1;
        double bv = -INFINITY;
        for (int c = 0; c < nc; c++) {
            if (!cnt[c]) continue;
            double s = 0;
            for (int j = 0; j < d; j++) s += xte[(size_t)i * d + j] * mu[(size_t)c * d + j];
            if (s > bv) { bv = s; best = c; }
        }
        right += best == yte[i];
    }
    return (double)right / nte;
}

static void normalise_rows(float *x, int n, int d) {
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < d; j++) s += (double)x[(size_t)i * d + j] * x[(size_t)i * d + j];
        float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
        for (int j = 0; j < d; j++) x[(size_t)i * d + j] *= inv;
    }
}

/* Weighted kNN (InstDisc): the k most cosine-similar train rows vote with weight exp(cos / T). */
/* The class of the weighted vote of the k largest similarities s[0..ntr). */
static int knn_vote(const float *s, const int32_t *ytr, int ntr, int nc, int k, double T) {
    /* a min-heap of the k best (value, index) */
    float hv[1024];
    int hi[1024], hn = 0, kk = k > 1024 ? 1024 : k;
    for (int j = 0; j < ntr; j++) {
        float v = s[j];
        if (hn < kk) {
            int p = hn++;
            while (p > 0 && hv[(p - 1) / 2] > v) { hv[p] = hv[(p - 1) / 2]; hi[p] = hi[(p - 1) / 2]; p = (p - 1) / 2; }
            hv[p] = v; hi[p] = j;
        } else if (v > hv[0]) {
            int p = 0;
            for (;;) {
                int l = 2 * p + 1, rr = l + 1, q = p;
                float qv = v;
                if (l < hn && hv[l] < qv) { q = l; qv = hv[l]; }
                if (rr < hn && hv[rr] < qv) { q = rr; }
                if (q == p) break;
                hv[p] = hv[q]; hi[p] = hi[q]; p = q;
            }
            hv[p] = v; hi[p] = j;
        }
    }
    double votes[1024];
    int ncc = nc > 1024 ? 1024 : nc;
    for (int c = 0; c < ncc; c++) votes[c] = 0;
    for (int t = 0; t < hn; t++) if (ytr[hi[t]] < ncc) votes[ytr[hi[t]]] += exp(hv[t] / T);
    int best = 0;
    for (int c = 1; c < ncc; c++) if (votes[c] > votes[best]) best = c;
    return best;
}

long eval_knn_right(const float *xtr, const int32_t *ytr, int ntr, const float *xte, const int32_t *yte, int t0, int t1,
                    int d, int nc, int k, double T) {
    int nte = t1 - t0;
    float *a = nc_malloc(sizeof(float) * (size_t)ntr * d), *b = nc_malloc(sizeof(float) * ((size_t)nte * d + 1));
    memcpy(a, xtr, sizeof(float) * (size_t)ntr * d);
    memcpy(b, xte + (size_t)t0 * d, sizeof(float) * (size_t)nte * d);
    normalise_rows(a, ntr, d);
    normalise_rows(b, nte, d);
    if (k > ntr) k = ntr;
    /* each thread takes chunks of test rows: its own GEMM (oneDNN's sgemm, one thread inside
       ours; 25% faster here than OpenBLAS under OPENBLAS_CORETYPE=Haswell) into its own
       similarity block, then a heap of the k best per row */
    enum { CHUNK = 64 };
    long right = 0, done = 0;
    Progress bar;
    progress_start(&bar, "eval: kNN", nte);
    #pragma omp parallel reduction(+:right)
    {
        float *sim = nc_malloc(sizeof(float) * (size_t)CHUNK * ntr);
        #pragma omp for schedule(dynamic, 1)
        for (int i0 = 0; i0 < nte; i0 += CHUNK) {
            int m = nte - i0 < CHUNK ? nte - i0 : CHUNK;
            dnnl_sgemm('N', 'T', m, ntr, d, 1.0f, b + (size_t)i0 * d, d, a, d, 0.0f, sim, ntr);
            for (int r = 0; r < m; r++) right += knn_vote(sim + (size_t)r * ntr, ytr, ntr, nc, k, T) == yte[t0 + i0 + r];
            long now;
            #pragma omp atomic capture
            now = done += m;
            if (omp_get_thread_num() == 0) progress_update(&bar, now);
        }
        free(sim);
    }
    progress_update(&bar, nte);
    progress_end(&bar);
    free(a); free(b);
    return right;
}

double eval_knn(const float *xtr, const int32_t *ytr, int ntr, const float *xte, const int32_t *yte, int nte, int d,
                int nc, int k, double T) {
    return (double)eval_knn_right(xtr, ytr, ntr, xte, yte, 0, nte, d, nc, k, T) / nte;
}

/* ---- linear probe: softmax regression, loss = mean CE + l2/2 |W|^2, L-BFGS ---- */
typedef struct {
    const float *x;          /* (n, d) standardised embeddings */
    const int32_t *y;
    int n, d, nc;            /* nc <= 1024 */
    double l2;
    float *wf, *z, *gf;      /* scratch: (nc, d), (n, nc), (nthr, nc, d) */
    int nthr;                /* threads; each takes a block of rows */
    const EvalConfig *dist;  /* parts > 1: this part's rows only, the sums over the parts */
    double *sums;            /* scratch (1 + nc + nc d) for the parts' sum */
    Progress *bar;           /* advanced by one per iteration from *iters_done */
    long *iters_done;
} Probe;

/* f and g in two GEMMs: Z = X W^T + b (n, nc), then softmax minus one-hot in Z, G = Z^T X. Each
   thread does both for its block of rows on one OpenBLAS thread; the partial G and f are summed
   in thread order, so the result depends only on the thread count. */
static double probe_fg(Probe *pr, const double *w, double *g) {
    int n = pr->n, d = pr->d, nc = pr->nc, dd = d + 1, T = pr->nthr, r0, r1;
    part_rows(pr->dist, n, &r0, &r1);
    float *wf = pr->wf, *z = pr->z, *gf = pr->gf;
    float bias[1024];
    double fpart[256] = {0};
    for (int c = 0; c < nc; c++) {
        for (int j = 0; j < d; j++) wf[(size_t)c * d + j] = (float)w[(size_t)c * dd + j];
        bias[c] = (float)w[(size_t)c * dd + d];
    }
    #pragma omp parallel num_threads(T)
    {
        int t = omp_get_thread_num();
        int i0 = r0 + (int)((long)(r1 - r0) * t / T), i1 = r0 + (int)((long)(r1 - r0) * (t + 1) / T);
        float *gt = gf + (size_t)t * nc * d;
        if (i1 > i0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, i1 - i0, nc, d, 1.0f, pr->x + (size_t)i0 * d, d, wf,
                        d, 0.0f, z + (size_t)i0 * nc, nc);
        double f = 0.0;
        for (int i = i0; i < i1; i++) {
            float *zi = z + (size_t)i * nc;
            int yi = pr->y[i];
            float mx = -INFINITY, zy = 0.0f;
            for (int c = 0; c < nc; c++) {
                zi[c] += bias[c];
                if (zi[c] > mx) mx = zi[c];
                if (c == yi) zy = zi[c];
            }
            double sum = 0.0;
            for (int c = 0; c < nc; c++) {
                zi[c] = expf(zi[c] - mx);
                sum += zi[c];
            }
            f += mx + log(sum) - zy;
            float inv = (float)(1.0 / sum);
            for (int c = 0; c < nc; c++) zi[c] = zi[c] * inv - (c == yi);
        }
        fpart[t] = f;
        if (i1 > i0)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nc, d, i1 - i0, 1.0f, z + (size_t)i0 * nc, nc,
                        pr->x + (size_t)i0 * d, d, 0.0f, gt, d);
        else
            memset(gt, 0, sizeof(float) * nc * d);
    }
    double f = 0.0;
    for (int t = 0; t < T; t++) f += fpart[t];
    for (int t = 1; t < T; t++)
        for (size_t i = 0; i < (size_t)nc * d; i++) gf[i] += gf[(size_t)t * nc * d + i];
    double reg = 0, *gb = pr->sums + 1, *gs = pr->sums + 1 + nc;
    for (int c = 0; c < nc; c++) {
        gb[c] = 0.0;
        for (int i = r0; i < r1; i++) gb[c] += z[(size_t)i * nc + c];
    }
    if (pr->dist->parts > 1 && pr->dist->sum) {  /* f, the bias and the weight sums over every part's rows */
        pr->sums[0] = f;
        for (size_t i = 0; i < (size_t)nc * d; i++) gs[i] = gf[i];
        f = pr->dist->sum(pr->dist->ctx, pr->sums, 1 + nc + nc * d, NULL) ? NAN : pr->sums[0];  /* NaN stops the fit */
        for (size_t i = 0; i < (size_t)nc * d; i++) gf[i] = (float)gs[i];
    }
    for (int c = 0; c < nc; c++) {
        g[(size_t)c * dd + d] = gb[c] / n;
        for (int j = 0; j < d; j++) {
            size_t t = (size_t)c * dd + j;
            g[t] = gf[(size_t)c * d + j] / n + pr->l2 * w[t];
            reg += w[t] * w[t];
        }
    }
    return f / n + 0.5 * pr->l2 * reg;
}

static void probe_fit(Probe *pr, double *w, int iters) {
    enum { M = 10 };
    size_t n = (size_t)pr->nc * (pr->d + 1);
    double *g = calloc(n, sizeof(double)), *gn = calloc(n, sizeof(double)), *dir = calloc(n, sizeof(double));
    double *wn = calloc(n, sizeof(double)), *S = calloc(n * M, sizeof(double)), *Y = calloc(n * M, sizeof(double));
    double rho[M], al[M];
    int head = 0, used = 0;
    double f = probe_fg(pr, w, g);
    for (int it = 0; it < iters; it++) {
        for (size_t i = 0; i < n; i++) dir[i] = -g[i];
        for (int t = 0; t < used; t++) {
            int s = (head - 1 - t + M) % M;
            double dot = 0;
            for (size_t i = 0; i < n; i++) dot += S[s * n + i] * dir[i];
            al[s] = rho[s] * dot;
            for (size_t i = 0; i < n; i++) dir[i] -= al[s] * Y[s * n + i];
        }
        if (used) {
            int s = (head - 1 + M) % M;
            double sy = 0, yy = 0;
            for (size_t i = 0; i < n; i++) { sy += S[s * n + i] * Y[s * n + i]; yy += Y[s * n + i] * Y[s * n + i]; }
            for (size_t i = 0; i < n; i++) dir[i] *= sy / yy;
        }
        for (int t = used - 1; t >= 0; t--) {
            int s = (head - 1 - t + M) % M;
            double dot = 0;
            for (size_t i = 0; i < n; i++) dot += Y[s * n + i] * dir[i];
            double be = rho[s] * dot;
            for (size_t i = 0; i < n; i++) dir[i] += (al[s] - be) * S[s * n + i];
        }
        double slope = 0;
        for (size_t i = 0; i < n; i++) slope += g[i] * dir[i];
        if (!(slope < 0)) { used = 0; for (size_t i = 0; i < n; i++) dir[i] = -g[i]; slope = 0; for (size_t i = 0; i < n; i++) slope -= g[i] * g[i]; }
        double step = 1.0, fn = f;
        int ok = 0;
        for (int ls = 0; ls < 30; ls++) {
            for (size_t i = 0; i < n; i++) wn[i] = w[i] + step * dir[i];
            fn = probe_fg(pr, wn, gn);
            if (fn <= f + 1e-4 * step * slope) { ok = 1; break; }
            step *= 0.5;
        }
        if (!ok || f - fn < 1e-10 * fabs(f)) { if (ok) memcpy(w, wn, sizeof(double) * n); break; }
        double sy = 0;
        for (size_t i = 0; i < n; i++) { S[head * n + i] = wn[i] - w[i]; Y[head * n + i] = gn[i] - g[i]; sy += S[head * n + i] * Y[head * n + i]; }
        if (sy > 1e-12) { rho[head] = 1.0 / sy; head = (head + 1) % M; if (used < M) used++; }
        memcpy(w, wn, sizeof(double) * n);
        memcpy(g, gn, sizeof(double) * n);
        f = fn;
        progress_update(pr->bar, ++*pr->iters_done);
    }
    free(g); free(gn); free(dir); free(wn); free(S); free(Y);
}

static double probe_acc(const double *w, const float *x, const int32_t *y, int n, int d, int nc) {
    long right = 0;
    for (int i = 0; i < n; i++) {
        int best = 0;
        double bv = -INFINITY;
        for (int c = 0; c < nc; c++) {
            double s = w[(size_t)c * (d + 1) + d];
            for (int j = 0; j < d; j++) s += w[(size_t)c * (d + 1) + j] * x[(size_t)i * d + j];
            if (s > bv) { bv = s; best = c; }
        }
        right += best == y[i];
    }
    return (double)right / n;
}

static double linear_probe(const float *xtr, const int32_t *ytr, int ntr, const float *xte, const int32_t *yte, int nte,
                           int d, int nc, const EvalConfig *ec, double *l2_out) {
    uint64_t seed = ec->seed;
    /* standardise with the train statistics */
    double *mu = calloc(d, sizeof(double)), *sd = calloc(d, sizeof(double));
    for (int i = 0; i < ntr; i++) for (int j = 0; j < d; j++) mu[j] += xtr[(size_t)i * d + j];
    for (int j = 0; j < d; j++) mu[j] /= ntr;
    for (int i = 0; i < ntr; i++) for (int j = 0; j < d; j++) sd[j] += pow(xtr[(size_t)i * d + j] - mu[j], 2);
    for (int j = 0; j < d; j++) sd[j] = sqrt(sd[j] / ntr) + 1e-8;
    float *a = nc_malloc(sizeof(float) * (size_t)ntr * d), *b = nc_malloc(sizeof(float) * (size_t)nte * d);
    int32_t *ya = nc_malloc(sizeof(int32_t) * ntr);
    /* a held-out 10% of train (a seeded shuffle) for the choice of L2 */
    int *perm = nc_malloc(sizeof(int) * ntr);
    for (int i = 0; i < ntr; i++) perm[i] = i;
    Rng r;
    rng_init(&r, seed, 0x50524f42u, 0, 0);
    for (int i = ntr - 1; i > 0; i--) { int j = (int)rng_below(&r, (uint64_t)i + 1); int t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
    for (int i = 0; i < ntr; i++) {
        ya[i] = ytr[perm[i]];
        for (int j = 0; j < d; j++) a[(size_t)i * d + j] = (float)((xtr[(size_t)perm[i] * d + j] - mu[j]) / sd[j]);
    }
    for (int i = 0; i < nte; i++) for (int j = 0; j < d; j++) b[(size_t)i * d + j] = (float)((xte[(size_t)i * d + j] - mu[j]) / sd[j]);
    int nval = ntr / 10, nfit = ntr - nval;
    size_t nw = (size_t)nc * (d + 1);
    double *w = calloc(nw, sizeof(double));
    int nthr = omp_get_max_threads() < 256 ? omp_get_max_threads() : 256;
    float *wf = nc_malloc(sizeof(float) * (size_t)nc * d), *gfb = nc_malloc(sizeof(float) * (size_t)nc * d * nthr);
    float *zb = nc_malloc(sizeof(float) * (size_t)ntr * nc);
    double *sums = nc_malloc(sizeof(double) * (1 + nc + (size_t)nc * d));
    /* the grid from strong to weak regularisation, each fit warm-started from the previous one;
       the final fit on all of train starts from the best */
    enum { GRID_ITERS = 100, FINAL_ITERS = 150 };
    double grid[4] = {1e-2, 1e-3, 1e-4, 1e-5}, best_l2 = grid[0], best = -1;
    double *wbest = calloc(nw, sizeof(double));
    Progress bar;  /* in iterations of L-BFGS, at most 4 x 100 + 150 (a fit may stop sooner) */
    long iters = 0;
    progress_start(&bar, "eval: linear probe", 4 * GRID_ITERS + FINAL_ITERS);
    for (int g = 0; g < 4; g++) {
        Probe pr = {a, ya, nfit, d, nc, grid[g], wf, zb, gfb, nthr, ec, sums, &bar, &iters};
        probe_fit(&pr, w, GRID_ITERS);
        iters = (long)(g + 1) * GRID_ITERS;
        double acc = probe_acc(w, a + (size_t)nfit * d, ya + nfit, nval, d, nc);
        if (acc > best) { best = acc; best_l2 = grid[g]; memcpy(wbest, w, sizeof(double) * nw); }
    }
    memcpy(w, wbest, sizeof(double) * nw);
    free(wbest);
    Probe pr = {a, ya, ntr, d, nc, best_l2, wf, zb, gfb, nthr, ec, sums, &bar, &iters};
    probe_fit(&pr, w, FINAL_ITERS);
    progress_update(&bar, 4 * GRID_ITERS + FINAL_ITERS);
    progress_end(&bar);
    double acc = probe_acc(w, b, yte, nte, d, nc);
    *l2_out = best_l2;
    free(mu); free(sd); free(a); free(b); free(ya); free(perm); free(w); free(wf); free(gfb); free(zb); free(sums);
    return acc;
}

int eval_metrics(const float *xtr, const int32_t *ytr, int ntr, const float *xte, const int32_t *yte,
                 int nte, int d, int nclass, const EvalConfig *c, EvalMetrics *m, NcError *err) {
    if (ntr < 2 || nte < 1) return nc_fail(err, NC_EUSAGE, "evaluation: need train and test images");
    if (nclass < 2 || nclass > 1024) return nc_fail(err, NC_EUSAGE, "evaluation: %d classes (2 to 1024 are supported)", nclass);
    memset(m, 0, sizeof *m);
    /* OpenBLAS's own threads and the OpenMP team spin against each other on 2 cores (the probe
       took twice as long): the GEMMs here run on one OpenBLAS thread inside OpenMP regions */
    nc_blas_single_begin();
    double *mu = nc_malloc(sizeof(double) * nclass * d);
    int *cnt = nc_malloc(sizeof(int) * nclass);
    /* the mean classifier on unit-normalised embeddings, as the theory's f (the head's rows
       are unit already; backbone features after a ReLU would otherwise favour large norms) */
    float *ntr_x = nc_malloc(sizeof(float) * (size_t)ntr * d), *nte_x = nc_malloc(sizeof(float) * (size_t)nte * d);
    memcpy(ntr_x, xtr, sizeof(float) * (size_t)ntr * d);
    memcpy(nte_x, xte, sizeof(float) * (size_t)nte * d);
    normalise_rows(ntr_x, ntr, d);
    normalise_rows(nte_x, nte, d);
    class_means(ntr_x, ytr, ntr, d, nclass, mu, cnt);
    m->mean_acc = mean_classifier(mu, cnt, nte_x, yte, nte, d, nclass);
    free(ntr_x);
    free(nte_x);
    class_means(xtr, ytr, ntr, d, nclass, mu, cnt);
    int t0, t1;
    part_rows(c, nte, &t0, &t1);
    double right = (double)eval_knn_right(xtr, ytr, ntr, xte, yte, t0, t1, d, nclass, c->knn_k, c->knn_t);
    if (c->parts > 1 && c->sum) {
        int rc = c->sum(c->ctx, &right, 1, err);
        if (rc) { free(mu); free(cnt); nc_blas_single_end(); return rc; }
    }
    m->knn_acc = right / nte;
    m->linear_acc = linear_probe(xtr, ytr, ntr, xte, yte, nte, d, nclass, c, &m->probe_l2);
    /* geometry of the class means */
    double dev = 0;
    for (int i = 0; i < nclass; i++)
        for (int j = i + 1; j < nclass; j++) {
            double dot = 0, ni = 0, nj = 0;
            for (int t = 0; t < d; t++) {
                dot += mu[(size_t)i * d + t] * mu[(size_t)j * d + t];
                ni += mu[(size_t)i * d + t] * mu[(size_t)i * d + t];
                nj += mu[(size_t)j * d + t] * mu[(size_t)j * d + t];
            }
            if (ni > 0 && nj > 0) dev = fmax(dev, fabs(dot / sqrt(ni * nj) + 1.0 / (nclass - 1)));
        }
    m->simplex_deviation = dev;
    double *gm = calloc(d, sizeof(double)), within = 0, between = 0;
    for (int i = 0; i < ntr; i++) for (int t = 0; t < d; t++) gm[t] += xtr[(size_t)i * d + t] / ntr;
    for (int i = 0; i < ntr; i++)
        for (int t = 0; t < d; t++) within += pow(xtr[(size_t)i * d + t] - mu[(size_t)ytr[i] * d + t], 2);
    for (int cc = 0; cc < nclass; cc++)
        for (int t = 0; t < d; t++) between += cnt[cc] * pow(mu[(size_t)cc * d + t] - gm[t], 2);
    m->within_class_ratio = between > 0 ? within / between : INFINITY;
    free(gm); free(mu); free(cnt);
    nc_blas_single_end();
    return NC_OK;
}
