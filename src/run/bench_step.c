// bench_step.c -- times the contrastive training step that `ncelab bench --model` reports.
#include "ncelab/bench.h"
#include "ncelab/loss.h"
#include "ncelab/moco.h"
#include "ncelab/optim.h"
#include "ncelab/rng.h"
#include "ncelab/trainer.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Multiply-adds of the convolutions, forward + backward (the first layer has no data gradient), as flops. */
static double conv_flops(const Net *net, int batch) {
    double f = 0.0;
    for (int i = 0; i < net->n_nodes; i++) {
        const NnNode *d = &net->nodes[i];
        if (d->op != NN_CONV) continue;
        const NnVal *o = &net->vals[d->out], *in = &net->vals[d->in];
        double fwd = 2.0 * batch * o->c * o->h * o->w * in->c * d->k * d->k;
        f += fwd * (d->in == net->input ? 2.0 : 3.0);
    }
    return f;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx2,fma"))) static double fma_loop_avx2(long iters) {
    /* ten independent chains (FMA latency 4 cycles x 2 units needs at least 8) */
    __m256 b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-7f);
    __m256 a0 = _mm256_set1_ps(0.f), a1 = _mm256_set1_ps(1.f), a2 = _mm256_set1_ps(2.f), a3 = _mm256_set1_ps(3.f);
    __m256 a4 = _mm256_set1_ps(4.f), a5 = _mm256_set1_ps(5.f), a6 = _mm256_set1_ps(6.f), a7 = _mm256_set1_ps(7.f);
    __m256 a8 = _mm256_set1_ps(8.f), a9 = _mm256_set1_ps(9.f);
    for (long i = 0; i < iters; i++) {
        a0 = _mm256_fmadd_ps(a0, b, c); a1 = _mm256_fmadd_ps(a1, b, c); a2 = _mm256_fmadd_ps(a2, b, c);
        a3 = _mm256_fmadd_ps(a3, b, c); a4 = _mm256_fmadd_ps(a4, b, c); a5 = _mm256_fmadd_ps(a5, b, c);
        a6 = _mm256_fmadd_ps(a6, b, c); a7 = _mm256_fmadd_ps(a7, b, c); a8 = _mm256_fmadd_ps(a8, b, c);
        a9 = _mm256_fmadd_ps(a9, b, c);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(_mm256_add_ps(a6, a7), _mm256_add_ps(a8, a9))));
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}
#endif

double bench_fma_peak(int threads) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0.0;
    long iters = 50000000;
    double sink = 0.0, t0 = nc_now();
    #pragma omp parallel num_threads(threads) reduction(+:sink)
    sink += fma_loop_avx2(iters);
    double dt = nc_now() - t0;
    if (sink == 12345.0) dt += 1e-9;  /* keep the loop */
    return (double)threads * iters * 10 * 8 * 2 / dt * 1e-9;
#else
    (void)threads;
    return 0.0;
#endif
}

/* the bucket-ready times of one backward */
typedef struct {
    BenchResult *r;
    size_t n;                /* parameter floats */
    int next;
    double t0;
} ReadyClock;

static void ready_tick(void *ctx, size_t offset) {
    ReadyClock *rc = ctx;
    BenchResult *r = rc->r;
    while (rc->next < r->nbuckets) {
        size_t lo = rc->n > (size_t)(rc->next + 1) * r->bucket_floats ? rc->n - (size_t)(rc->next + 1) * r->bucket_floats : 0;
        if (lo < offset) break;
        r->ready_ms[rc->next++] = 1e3 * (nc_now() - rc->t0);
    }
}

int bench_train_step(const BenchConfig *cfg, BenchResult *r, NcError *err) {
    memset(r, 0, sizeof *r);
    if (cfg->k < 1) return nc_fail(err, NC_EUSAGE, "--k: must be at least 1, got %d", cfg->k);
    if (cfg->batch < 2) return nc_fail(err, NC_EUSAGE, "--batch: must be at least 2, got %d", cfg->batch);
    if (cfg->threads > 0) omp_set_num_threads(cfg->threads);
    Net net;
    int rc = net_create(&net, cfg->model, cfg->c, cfg->h, cfg->w, err);
    if (rc) return rc;
    net_init_random(&net, 1);
    int B = cfg->batch, N = 2 * B, k = cfg->k;
    NetExec *x;
    if ((rc = nnx_create(&x, &net, N, cfg->backend, err))) { net_free(&net); return rc; }
    size_t in_len = (size_t)N * cfg->c * cfg->h * cfg->w;
    float *input = nc_malloc(sizeof(float) * in_len);
    Rng g;
    rng_init(&g, 7, 0, 0, 0);
    for (size_t i = 0; i < in_len; i++) input[i] = (float)rng_normal(&g);
    int D = nnx_embed_dim(x);
    float *dz = nc_malloc(sizeof(float) * N * D);
    int32_t *neg = nc_malloc(sizeof(int32_t) * B * k), *scratch = nc_malloc(sizeof(int32_t) * N);
    /* beyond the batch: a queue of Q = k unit vectors and, as the sampler draws k of Q without
       replacement, every slot for every anchor (in a rotated order) */
    int Q = k > N - 2 ? k : 0;
    float *queue = Q ? nc_malloc(sizeof(float) * (size_t)Q * D) : NULL;
    for (int j = 0; j < Q; j++) {
        float *qj = queue + (size_t)j * D;
        double s2 = 0;
        for (int t = 0; t < D; t++) {
            qj[t] = (float)rng_normal(&g);
            s2 += (double)qj[t] * qj[t];
        }
        for (int t = 0; t < D; t++) qj[t] /= (float)sqrt(s2);
    }
    for (int i = 0; Q && i < B; i++)
        for (int j = 0; j < k; j++) neg[(size_t)i * k + j] = N + (i + j) % Q;
    ContrastWork work;
    contrast_work_init(&work, B, k, N + Q);
    r->queue = Q;
    Optim opt;
    OptConfig oc;
    optim_parse("sgd", 5e-4f, &oc, err);
    optim_create(&opt, &net, &oc, err);
    int total = cfg->warmup + cfg->steps;
    double *t = nc_malloc(sizeof(double) * (total > 0 ? total : 1)), *tl = nc_malloc(sizeof(double) * (total > 0 ? total : 1));
    /* with a queue the step is MoCo's, as in train (moco.h): a key encoder's forward, the symmetric
       loss against the keys and the queue, the momentum update */
    Net key = {0};
    NetExec *xk = NULL;
    float *zl = NULL, *dzl = NULL;
    if (Q) {
        if ((rc = net_create(&key, cfg->model, cfg->c, cfg->h, cfg->w, err)) == NC_OK) {
            moco_copy(&key, &net);
            rc = nnx_create(&xk, &key, N, cfg->backend, err);
        }
        zl = nc_calloc((size_t)N * D, sizeof(float));
        dzl = nc_malloc(sizeof(float) * (size_t)N * D);
    }
    for (int s = 0; s < total && rc == NC_OK; s++) {
        double t0 = nc_now(), loss;
        if (!Q) contrast_random_negatives(neg, B, k, 1, (uint32_t)s, scratch);
        memset(net.grads, 0, sizeof(float) * net.n_param_floats);
        if ((rc = nnx_forward(x, input, 1, err)) || (Q && (rc = nnx_forward(xk, input, 1, err)))) break;
        double t1 = nc_now();
        if (Q) rc = moco_loss_part(NC_LOSS_INFONCE, nnx_embeddings(x), nnx_embeddings(xk), B, D, neg, k, queue, Q, 0.5f,
                                   0, B, &loss, dz, zl, dzl, &work, err);
        else rc = contrast_loss_part(NC_LOSS_INFONCE, nnx_embeddings(x), B, D, neg, k, NULL, 0, 0.5f, 0, B, &loss, dz,
                                     &work, err);
        if (rc) break;
        tl[s] = nc_now() - t1;
        if ((rc = nnx_backward(x, dz, err))) break;
        optim_step(&opt, 0.01f);
        if (Q) moco_momentum_update(&key, &net, 0.99f);
        t[s] = nc_now() - t0;
    }
    if (rc == NC_OK && cfg->steps > 0) {
        qsort(t + cfg->warmup, (size_t)cfg->steps, sizeof(double), cmp_d);
        qsort(tl + cfg->warmup, (size_t)cfg->steps, sizeof(double), cmp_d);
        double med = t[cfg->warmup + cfg->steps / 2];
        r->loss_ms = 1e3 * tl[cfg->warmup + cfg->steps / 2];
        r->ms_per_step = 1e3 * med;
        r->imgs_per_sec = N / med;
        r->conv_gflop = conv_flops(&net, N) * 1e-9;
        /* three more steps with every layer timed: the convolutions' share and rate */
        int ps = 3;
        nnx_profile(x, 1);
        for (int s = 0; s < ps && rc == NC_OK; s++) {
            memset(net.grads, 0, sizeof(float) * net.n_param_floats);
            double l;
            if ((rc = nnx_forward(x, input, 1, err))) break;
            contrast_loss_part(NC_LOSS_INFONCE, nnx_embeddings(x), B, D, neg, k, queue, Q, 0.5f, 0, B, &l, dz, &work, err);
            if ((rc = nnx_backward(x, dz, err))) break;
        }
        double conv_s = (nnx_profile_seconds(x, NN_CONV, 0) + nnx_profile_seconds(x, NN_CONV, 1)) / ps;
        nnx_profile(x, 0);
        /* one more step, its backward clocked bucket by bucket */
        r->bucket_floats = TRAINER_BUCKET_FLOATS;
        r->nbuckets = (int)((net.n_param_floats + r->bucket_floats - 1) / r->bucket_floats);
        if (r->nbuckets > 64) r->nbuckets = 64;
        ReadyClock clk = {r, net.n_param_floats, 0, 0};
        nnx_set_grad_ready(x, ready_tick, &clk);
        memset(net.grads, 0, sizeof(float) * net.n_param_floats);
        double loss;
        if (rc == NC_OK && (rc = nnx_forward(x, input, 1, err)) == NC_OK) {
            contrast_loss_part(NC_LOSS_INFONCE, nnx_embeddings(x), B, D, neg, k, queue, Q, 0.5f, 0, B, &loss, dz, &work, err);
            clk.t0 = nc_now();
            rc = nnx_backward(x, dz, err);
            r->backward_ms = 1e3 * (nc_now() - clk.t0);
        }
        nnx_set_grad_ready(x, NULL, NULL);
        r->conv_ms = 1e3 * conv_s;
        r->conv_gflops = conv_s > 0 ? r->conv_gflop / conv_s : 0.0;
        r->other_ms = r->ms_per_step - r->conv_ms;
        r->fma_peak_gflops = bench_fma_peak(cfg->threads > 0 ? cfg->threads : omp_get_max_threads());
    }
    r->peak_rss_mb = nc_peak_rss_mb();
    nnx_free(xk);
    net_free(&key);
    free(zl);
    free(dzl);
    optim_free(&opt);
    nnx_free(x);
    net_free(&net);
    contrast_work_free(&work);
    free(input); free(dz); free(neg); free(scratch); free(t); free(tl); free(queue);
    return rc;
}
