// loader.c -- the batch loader: sampler + augmentation over OpenMP threads, a producer thread and two buffers.
#define _POSIX_C_SOURCE 200809L
#include "ncelab/loader.h"

#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct Loader {
    LoaderConfig cfg;
    const DataSplit *split;
    Sampler *sampler;
    AugConfig view_aug;      /* what rows are rendered with: cfg.aug, or normalisation only */
    int threads, steps;
    int parts;               /* cfg.parts, or 1 */
    Batch buf[2];
    int buf_rc[2];
    NcError buf_err[2];
    int epoch, step;         /* the next batch to produce (producer side) */
    /* producer protocol: batch number j goes to buf[j % 2]; the producer makes batch `produced`
       while produced < requested; loader_next hands out batch `handed` and then allows one more */
    pthread_t thread;
    int has_thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long requested, produced, handed;
    int stop;
    int failed;              /* sticky: the error of a failed batch is returned from then on */
    NcError fail_err;
};

void loader_config_default(LoaderConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->sampler.batch = 256;
    cfg->sampler.k = 16;
    cfg->sampler.positives = SAMPLER_POS_AUGMENT;
    aug_preset_simclr_cifar(&cfg->aug);
    cfg->prefetch = 1;
}

/* The rendering of every row of a batch: independent images, one OpenMP loop. */
static void render_rows(const Loader *l, Batch *b) {
    const DataSplit *s = l->split;
    const SamplerBatch *sb = &b->s;
    int B = sb->B, nb = B / l->parts, a0 = l->cfg.part * nb, rows = 2 * nb;
    size_t in_sz = (size_t)s->h * s->w * s->c, out_sz = (size_t)b->C * b->H * b->W;
    uint64_t seed = l->cfg.sampler.seed;
#pragma omp parallel for num_threads(l->threads) schedule(static)
    for (int lr = 0; lr < rows; lr++) {
        int r = lr < nb ? a0 + lr : B + a0 + lr - nb;  /* the batch row of local row lr */
        int idx = sb->index[r];
        uint32_t view = r < B ? 0u : 1u + (uint32_t)sb->index[r - B];
        aug_apply(b->x + (size_t)lr * out_sz, s->pixels + (size_t)idx * in_sz, s->h, s->w, s->c, &l->view_aug, seed,
                  (uint32_t)sb->epoch, (uint32_t)idx, view);
    }
}

/* Makes the next batch (l->epoch, l->step) into b and advances the position. */
static int produce(Loader *l, Batch *b, NcError *err) {
    int rc = sampler_batch(l->sampler, l->epoch, l->step, &b->s, err);
    if (rc) return rc;
    render_rows(l, b);
    if (++l->step == l->steps) {
        l->step = 0;
        l->epoch++;
    }
    return NC_OK;
}

static void *producer_main(void *arg) {
    Loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && l->produced >= l->requested) pthread_cond_wait(&l->cv, &l->mu);
        if (l->stop) break;
        int slot = (int)(l->produced % 2);
        pthread_mutex_unlock(&l->mu);
        l->buf_err[slot].code = 0;
        l->buf_rc[slot] = produce(l, &l->buf[slot], &l->buf_err[slot]);
        pthread_mutex_lock(&l->mu);
        l->produced++;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

int loader_create(const DataSplit *s, const LoaderConfig *cfg, Loader **out, NcError *err) {
    *out = NULL;
    if (cfg->threads < 0 || cfg->threads > 1024)
        return nc_fail(err, NC_EUSAGE, "--threads: %d must be in [0, 1024] (0: the OpenMP default)", cfg->threads);
    if (cfg->start_epoch < 0 || cfg->start_step < 0)
        return nc_fail(err, NC_EUSAGE, "loader: start at epoch %d, step %d must not be negative", cfg->start_epoch,
                       cfg->start_step);
    int parts = cfg->parts ? cfg->parts : 1;
    if (parts < 1 || cfg->part < 0 || cfg->part >= parts || cfg->sampler.batch % parts)
        return nc_fail(err, NC_EUSAGE, "--batch: %d anchors cannot be shared by %d ranks (part %d): it must be a multiple of the number of ranks",
                       cfg->sampler.batch, parts, cfg->part);
    AugConfig va = cfg->aug;
    if (cfg->sampler.positives == SAMPLER_POS_CLASS) {   /* no augmentation: keep size and normalisation */
        aug_preset_none(&va);
        va.out_h = cfg->aug.out_h;
        va.out_w = cfg->aug.out_w;
        memcpy(va.mean, cfg->aug.mean, sizeof va.mean);
        memcpy(va.std, cfg->aug.std, sizeof va.std);
    }
    int rc = aug_check(&va, s->h, s->w, s->c, err);
    if (rc) return rc;
    Sampler *sp;
    if ((rc = sampler_create(s, &cfg->sampler, &sp, err))) return rc;
    if (cfg->start_step >= sampler_steps_per_epoch(sp)) {
        int steps = sampler_steps_per_epoch(sp);
        sampler_free(sp);
        return nc_fail(err, NC_EUSAGE, "loader: start step %d is beyond the %d batches of an epoch", cfg->start_step,
                       steps);
    }
    Loader *l = nc_calloc(1, sizeof *l);
    l->cfg = *cfg;
    l->split = s;
    l->sampler = sp;
    l->view_aug = va;
    l->threads = cfg->threads ? cfg->threads : omp_get_max_threads();
    l->steps = sampler_steps_per_epoch(sp);
    l->parts = parts;
    l->epoch = cfg->start_epoch;
    l->step = cfg->start_step;
    int C = s->c, H = va.out_h ? va.out_h : s->h, W = va.out_w ? va.out_w : s->w;
    for (int i = 0; i < 2; i++) {
        Batch *b = &l->buf[i];
        sampler_batch_init(&b->s, sp);
        b->C = C;
        b->H = H;
        b->W = W;
        b->x = nc_malloc(sizeof(float) * 2 * (size_t)(cfg->sampler.batch / parts) * C * H * W);
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (cfg->prefetch) {
        l->requested = 1;
        if (pthread_create(&l->thread, NULL, producer_main, l) != 0) {
            loader_free(l);
            return nc_fail(err, NC_ENUM, "loader: cannot start the producer thread");
        }
        l->has_thread = 1;
    }
    *out = l;
    return NC_OK;
}

int loader_next(Loader *l, Batch **b, NcError *err) {
    *b = NULL;
    if (l->failed) return nc_fail(err, l->fail_err.code, "%s", l->fail_err.msg);
    int slot, rc;
    if (!l->has_thread) {
        slot = (int)(l->handed++ % 2);
        l->buf_err[slot].code = 0;
        rc = l->buf_rc[slot] = produce(l, &l->buf[slot], &l->buf_err[slot]);
    } else {
        pthread_mutex_lock(&l->mu);
        while (l->produced <= l->handed) pthread_cond_wait(&l->cv, &l->mu);
        slot = (int)(l->handed % 2);
        rc = l->buf_rc[slot];
        l->handed++;
        if (!rc) {   /* the caller gave back the other buffer: prepare the next batch there */
            l->requested = l->handed + 1;
            pthread_cond_broadcast(&l->cv);
        }
        pthread_mutex_unlock(&l->mu);
    }
    if (rc) {
        l->failed = 1;
        l->fail_err = l->buf_err[slot];
        l->fail_err.code = rc;
        return nc_fail(err, rc, "%s", l->buf_err[slot].msg);
    }
    *b = &l->buf[slot];
    return NC_OK;
}

int loader_queue_negatives(Loader *l, Batch *b, const EmbQueue *q, NcError *err) {
    return sampler_queue_negatives(l->sampler, &b->s, q, err);
}

int loader_steps_per_epoch(const Loader *l) { return l->steps; }
int loader_num_classes(const Loader *l) { return sampler_num_classes(l->sampler); }

void loader_free(Loader *l) {
    if (!l) return;
    if (l->has_thread) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    for (int i = 0; i < 2; i++) {
        sampler_batch_free(&l->buf[i].s);
        free(l->buf[i].x);
    }
    sampler_free(l->sampler);
    free(l);
}

int loader_eval_images(const DataSplit *s, int start, int count, const AugConfig *norm_only, float *out,
                       NcError *err) {
    if (start < 0 || count < 0 || start > s->n - count)
        return nc_fail(err, NC_EUSAGE, "loader: images %d..%d are outside the split of %d", start, start + count - 1,
                       s->n);
    AugConfig a;
    aug_preset_none(&a);
    a.out_h = norm_only->out_h;
    a.out_w = norm_only->out_w;
    memcpy(a.mean, norm_only->mean, sizeof a.mean);
    memcpy(a.std, norm_only->std, sizeof a.std);
    int rc = aug_check(&a, s->h, s->w, s->c, err);
    if (rc) return rc;
    AugParams p;
    memset(&p, 0, sizeof p);
    p.ch = s->h;
    p.cw = s->w;
    size_t in_sz = (size_t)s->h * s->w * s->c;
    size_t out_sz = (size_t)s->c * (a.out_h ? a.out_h : s->h) * (a.out_w ? a.out_w : s->w);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < count; i++)
        aug_render(out + (size_t)i * out_sz, s->pixels + (size_t)(start + i) * in_sz, s->h, s->w, s->c, &a, &p);
    return NC_OK;
}
