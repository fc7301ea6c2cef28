// bench_step.c -- times the contrastive training step that `ncelab bench --model` reports.
#include "bench_profile.h"
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
#include <strings.h>

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

__attribute__((target("avx512f"))) static double fma_loop_avx512(long iters) {
    /* as fma_loop_avx2 on 16 lanes */
    __m512 b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
    __m512 a0 = _mm512_set1_ps(0.f), a1 = _mm512_set1_ps(1.f), a2 = _mm512_set1_ps(2.f), a3 = _mm512_set1_ps(3.f);
    __m512 a4 = _mm512_set1_ps(4.f), a5 = _mm512_set1_ps(5.f), a6 = _mm512_set1_ps(6.f), a7 = _mm512_set1_ps(7.f);
    __m512 a8 = _mm512_set1_ps(8.f), a9 = _mm512_set1_ps(9.f);
    for (long i = 0; i < iters; i++) {
        a0 = _mm512_fmadd_ps(a0, b, c); a1 = _mm512_fmadd_ps(a1, b, c); a2 = _mm512_fmadd_ps(a2, b, c);
        a3 = _mm512_fmadd_ps(a3, b, c); a4 = _mm512_fmadd_ps(a4, b, c); a5 = _mm512_fmadd_ps(a5, b, c);
        a6 = _mm512_fmadd_ps(a6, b, c); a7 = _mm512_fmadd_ps(a7, b, c); a8 = _mm512_fmadd_ps(a8, b, c);
        a9 = _mm512_fmadd_ps(a9, b, c);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(_mm512_add_ps(a6, a7), _mm512_add_ps(a8, a9))));
    return _mm512_reduce_add_ps(s);
}
#endif

double bench_fma_peak(int threads, int bits) {
#if defined(__x86_64__) && defined(__GNUC__)
    int ok = bits == 256 ? __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
             : bits == 512 ? __builtin_cpu_supports("avx512f") : 0;
    if (!ok) return 0.0;
    long iters = 50000000 / (bits / 256);
    double sink = 0.0, t0 = nc_now();
    #pragma omp parallel num_threads(threads) reduction(+:sink)
    sink += bits == 512 ? fma_loop_avx512(iters) : fma_loop_avx2(iters);
    double dt = nc_now() - t0;
    if (sink == 12345.0) dt += 1e-9;  /* keep the loop */
    return (double)threads * iters * 10 * (bits / 32) * 2 / dt * 1e-9;
#else
    (void)threads; (void)bits;
    return 0.0;
#endif
}

/* the vector width oneDNN may use here: 512 with AVX-512 unless ONEDNN_MAX_CPU_ISA (or
   DNNL_MAX_CPU_ISA) caps it at AVX2, else 256 */
static int widest_isa_bits(void) {
    const char *cap = getenv("ONEDNN_MAX_CPU_ISA");
    if (!cap) cap = getenv("DNNL_MAX_CPU_ISA");
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512f") && !(cap && strncasecmp(cap, "AVX2", 4) == 0 ) &&
        !(cap && strncasecmp(cap, "SSE", 3) == 0))
        return 512;
#endif
    return 256;
}

/* Everything a step touches, made once. With a queue (k > 2B - 2) the step is MoCo's, as in
   train (moco.h): a key encoder's forward, the symmetric loss against the keys and the queue,
   the momentum update. */
typedef struct {
    const BenchConfig *cfg;
    Net net, key;
    NetExec *x, *xk;
    Optim opt;
    ContrastWork work;
    float *input;            /* (N, c, h, w) random images */
    float *dz;               /* (N, D) the loss's gradient */
    float *queue;            /* (Q, D) unit rows, or NULL */
    float *zl, *dzl;         /* (N, D) MoCo's keys and their gradient */
    int32_t *neg, *scratch;  /* (B, k) negatives; (N) the sampler's scratch */
    int B, N, k, D, Q;
    double bwd_start, bwd_end;  /* when the last backward began and ended (the bucket clock) */
} Bench;

/* bench_step: step s of training; own[OWN_*] = seconds of the step's parts outside the network
   (each a lap of one clock, so they do not overlap the executor's), *step_s the whole step. */
static int bench_step(Bench *b, int s, double own[OWN_N], double *step_s, NcError *err) {
    double loss, t0 = nc_now(), lap = t0, now;
    int rc = NC_OK;
    memset(own, 0, sizeof(double) * OWN_N);
#define LAP(part) (now = nc_now(), own[part] += now - lap, lap = now)
    if (!b->Q) contrast_random_negatives(b->neg, b->B, b->k, 1, (uint32_t)s, b->scratch);
    LAP(OWN_SAMPLE);
    memset(b->net.grads, 0, sizeof(float) * b->net.n_param_floats);
    LAP(OWN_ZERO);
    if ((rc = nnx_forward(b->x, b->input, 1, err))) return rc;
    lap = nc_now();
    if (b->Q && (rc = nnx_forward(b->xk, b->input, 1, err))) return rc;
    LAP(OWN_KEY);
    if (b->Q)
        rc = moco_loss_part(NC_LOSS_INFONCE, nnx_embeddings(b->x), nnx_embeddings(b->xk), b->B, b->D, b->neg, b->k,
                            b->queue, b->Q, 0.5f, 0, b->B, &loss, b->dz, b->zl, b->dzl, &b->work, err);
    else
        rc = contrast_loss_part(NC_LOSS_INFONCE, nnx_embeddings(b->x), b->B, b->D, b->neg, b->k, NULL, 0, 0.5f, 0, b->B,
                                &loss, b->dz, &b->work, err);
    if (rc) return rc;
    LAP(OWN_LOSS);
    b->bwd_start = lap;
    if ((rc = nnx_backward(b->x, b->dz, err))) return rc;
    lap = b->bwd_end = nc_now();
    optim_step(&b->opt, 0.01f);
    LAP(OWN_OPT);
    if (b->Q) moco_momentum_update(&b->key, &b->net, 0.99f);
    LAP(OWN_MOMENTUM);
#undef LAP
    *step_s = lap - t0;
    return NC_OK;
}

/* bench_open: the networks, executors, optimiser and buffers of cfg's step */
static int bench_open(Bench *b, const BenchConfig *cfg, NcError *err) {
    memset(b, 0, sizeof *b);
    b->cfg = cfg;
    int rc = net_create(&b->net, cfg->model, cfg->c, cfg->h, cfg->w, err);
    if (rc) return rc;
    net_init_random(&b->net, 1);
    b->B = cfg->batch; b->N = 2 * b->B; b->k = cfg->k;
    if ((rc = nnx_create(&b->x, &b->net, b->N, cfg->backend, err))) return rc;
    size_t in_len = (size_t)b->N * cfg->c * cfg->h * cfg->w;
    b->input = nc_malloc(sizeof(float) * in_len);
    Rng g;
    rng_init(&g, 7, 0, 0, 0);
    for (size_t i = 0; i < in_len; i++) b->input[i] = (float)rng_normal(&g);
    int D = b->D = nnx_embed_dim(b->x), N = b->N, k = b->k;
    b->dz = nc_malloc(sizeof(float) * N * D);
    b->neg = nc_malloc(sizeof(int32_t) * b->B * k);
    b->scratch = nc_malloc(sizeof(int32_t) * N);
    /* beyond the batch: a queue of Q = k unit vectors and, as the sampler draws k of Q without
       replacement, every slot for every anchor (in a rotated order) */
    int Q = b->Q = k > N - 2 ? k : 0;
    b->queue = Q ? nc_malloc(sizeof(float) * (size_t)Q * D) : NULL;
    for (int j = 0; j < Q; j++) {
        float *qj = b->queue + (size_t)j * D;
        double s2 = 0;
        for (int t = 0; t < D; t++) {
            qj[t] = (float)rng_normal(&g);
            s2 += (double)qj[t] * qj[t];
        }
        for (int t = 0; t < D; t++) qj[t] /= (float)sqrt(s2);
    }
    for (int i = 0; Q && i < b->B; i++)
        for (int j = 0; j < k; j++) b->neg[(size_t)i * k + j] = N + (i + j) % Q;
    contrast_work_init(&b->work, b->B, k, N + Q);
    OptConfig oc;
    optim_parse("sgd", 5e-4f, &oc, err);
    optim_create(&b->opt, &b->net, &oc, err);
    if (Q) {
        if ((rc = net_create(&b->key, cfg->model, cfg->c, cfg->h, cfg->w, err))) return rc;
        moco_copy(&b->key, &b->net);
        if ((rc = nnx_create(&b->xk, &b->key, N, cfg->backend, err))) return rc;
        b->zl = nc_calloc((size_t)N * D, sizeof(float));
        b->dzl = nc_malloc(sizeof(float) * (size_t)N * D);
    }
    return NC_OK;
}

static void bench_close(Bench *b) {
    nnx_free(b->xk);
    net_free(&b->key);
    optim_free(&b->opt);
    nnx_free(b->x);
    net_free(&b->net);
    contrast_work_free(&b->work);
    free(b->zl); free(b->dzl); free(b->input); free(b->dz); free(b->neg); free(b->scratch); free(b->queue);
}

/* bench_memory: the buffers of the step (the caller's, the optimiser's, the executors') into r->prof */
static void bench_memory(Bench *b, BenchResult *r) {
    size_t P = sizeof(float) * b->net.n_param_floats, fz = sizeof(float) * (size_t)b->N * b->D;
    const BenchConfig *c = b->cfg;
    NnMemRow own[] = {
        {"parameters", "parameters", P},
        {"gradients", "gradients", P},
        {"SGD momentum", "optimizer state", P},  /* the block has room for 2 P, the second half untouched by SGD */
        {"batch-norm running statistics", "parameters", sizeof(float) * b->net.n_stat_floats},
        {"input images", "step inputs", sizeof(float) * (size_t)b->N * c->c * c->h * c->w},
        {"negative indices", "step inputs", sizeof(int32_t) * (size_t)b->B * b->k},
        {"loss: scores and coefficients", "loss workspace", sizeof(float) * b->work.n_scores + sizeof(double) * b->work.n_coef},
        {"loss: embedding gradient", "loss workspace", fz},
        {"MoCo: queue", "MoCo key encoder", sizeof(float) * (size_t)b->Q * b->D},
        {"MoCo: key parameters", "MoCo key encoder", b->Q ? P : 0},
        {"MoCo: keys and their gradient", "MoCo key encoder", b->Q ? 2 * fz : 0}};
    NnMemRow kept[sizeof own / sizeof own[0]];
    int n = 0;
    for (size_t j = 0; j < sizeof own / sizeof own[0]; j++) if (own[j].bytes) kept[n++] = own[j];
    NetExec *xs[2] = {b->x, b->xk};
    const char *pre[2] = {"", "key "};
    prof_memory(&r->prof, kept, n, xs, pre, b->Q ? 2 : 1);
}

/* the bucket-ready times of one backward */
typedef struct {
    BenchResult *r;
    const Bench *b;
    size_t n;                /* parameter floats */
    int next;
} ReadyClock;

static void ready_tick(void *ctx, size_t offset) {
    ReadyClock *rc = ctx;
    BenchResult *r = rc->r;
    while (rc->next < r->nbuckets) {
        size_t lo = rc->n > (size_t)(rc->next + 1) * r->bucket_floats ? rc->n - (size_t)(rc->next + 1) * r->bucket_floats : 0;
        if (lo < offset) break;
        r->ready_ms[rc->next++] = 1e3 * (nc_now() - rc->b->bwd_start);
    }
}

int bench_train_step(const BenchConfig *cfg, BenchResult *r, NcError *err) {
    memset(r, 0, sizeof *r);
    if (cfg->k < 1) return nc_fail(err, NC_EUSAGE, "--k: must be at least 1, got %d", cfg->k);
    if (cfg->batch < 2) return nc_fail(err, NC_EUSAGE, "--batch: must be at least 2, got %d", cfg->batch);
    if (cfg->threads > 0) omp_set_num_threads(cfg->threads);
    Bench b;
    int rc = bench_open(&b, cfg, err);
    r->queue = b.Q;
    /* the warm-up steps, then timed steps: cfg->steps of them, or as many as fill cfg->seconds */
    int cap = cfg->warmup + cfg->steps > 0 ? cfg->warmup + cfg->steps : 1, total = 0, timed = 0;
    double *t = nc_malloc(sizeof(double) * cap), *tl = nc_malloc(sizeof(double) * cap);
    double own[OWN_N], t0 = 0.0;
    while (rc == NC_OK) {
        if (total == cfg->warmup) t0 = nc_now();
        timed = total - cfg->warmup;
        if (timed >= cfg->steps && (cfg->seconds <= 0 || nc_now() - t0 >= cfg->seconds || timed >= BENCH_MAX_STEPS)) break;
        if (total == cap) {
            cap *= 2;
            t = nc_realloc(t, sizeof(double) * cap);
            tl = nc_realloc(tl, sizeof(double) * cap);
        }
        rc = bench_step(&b, total, own, &t[total], err);
        tl[total++] = own[OWN_LOSS];
    }
    r->steps = timed;
    if (rc == NC_OK && timed > 0) {
        r->steps_ms = nc_malloc(sizeof(double) * timed);
        r->ms_min = r->ms_max = 1e3 * t[cfg->warmup];
        for (int s = 0; s < timed; s++) {
            double ms = 1e3 * t[cfg->warmup + s];
            r->steps_ms[s] = ms;
            if (ms < r->ms_min) r->ms_min = ms;
            if (ms > r->ms_max) r->ms_max = ms;
        }
        double med = bench_median(t + cfg->warmup, timed);  /* sorts them */
        r->loss_ms = 1e3 * bench_median(tl + cfg->warmup, timed);
        r->ms_per_step = 1e3 * med;
        r->imgs_per_sec = b.N / med;
        int thr = cfg->threads > 0 ? cfg->threads : omp_get_max_threads();
        r->fma_peak_avx2_gflops = bench_fma_peak(thr, 256);
        r->fma_peak_avx512_gflops = bench_fma_peak(thr, 512);
        r->fma_bits = widest_isa_bits();
        r->fma_peak_gflops = r->fma_bits == 512 && r->fma_peak_avx512_gflops > 0 ? r->fma_peak_avx512_gflops
                                                                                : r->fma_peak_avx2_gflops;
        /* as many steps again with every layer timed */
        if (cfg->profile) {
            ProfRun pr;
            ProfShape sh = {b.N, b.B, b.k, b.D, b.Q};
            prof_begin(&pr, &r->prof, &b.net, b.x, &sh, cfg->steps);
            for (int s = 0; s < cfg->steps && rc == NC_OK; s++) {
                double st;
                if ((rc = bench_step(&b, total + s, own, &st, err)) == NC_OK) prof_sample(&pr, b.x, own, st);
            }
            prof_end(&pr, b.x);
            for (int j = 0; j < r->prof.nrows; j++) {
                const BenchProfRow *row = &r->prof.rows[j];
                if (row->node < 0 || b.net.nodes[row->node].op != NN_CONV) continue;
                r->conv_ms += row->ms;
                r->conv_gflop += row->flops * 1e-9;
            }
            r->conv_gflops = r->conv_ms > 0 ? r->conv_gflop / (1e-3 * r->conv_ms) : 0.0;
            r->other_ms = r->prof.total_ms - r->conv_ms;
        }
        /* one more step, its backward clocked bucket by bucket */
        r->bucket_floats = TRAINER_BUCKET_FLOATS;
        r->nbuckets = (int)((b.net.n_param_floats + r->bucket_floats - 1) / r->bucket_floats);
        if (r->nbuckets > 64) r->nbuckets = 64;
        ReadyClock clk = {r, &b, b.net.n_param_floats, 0};
        nnx_set_grad_ready(b.x, ready_tick, &clk);
        double st;
        if (rc == NC_OK && (rc = bench_step(&b, total + cfg->steps, own, &st, err)) == NC_OK)
            r->backward_ms = 1e3 * (b.bwd_end - b.bwd_start);
        nnx_set_grad_ready(b.x, NULL, NULL);
    }
    r->peak_rss_mb = nc_peak_rss_mb();
    if (rc == NC_OK && cfg->profile) bench_memory(&b, r);
    bench_close(&b);
    free(t); free(tl);
    return rc;
}
