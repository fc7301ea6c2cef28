// test_loader.c -- batch loader: rows are the keyed views of the sampled images, independent of threads and prefetch.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ncelab/loader.h"
#include "ncelab/rng.h"

enum { N = 96, S = 8, C = 3, CLASSES = 4 };

static DataSplit make_split(void) {
    DataSplit s = {N, S, S, C, NULL, NULL};
    s.pixels = malloc((size_t)N * S * S * C);
    s.labels = malloc(sizeof(int32_t) * N);
    Rng r;
    rng_init(&r, 99, 0, 0, 0);
    for (int i = 0; i < N * S * S * C; i++) s.pixels[i] = (uint8_t)(rng_u32(&r) & 255);
    for (int i = 0; i < N; i++) s.labels[i] = (i * 7) % CLASSES;
    return s;
}

static LoaderConfig base_config(void) {
    LoaderConfig cfg;
    loader_config_default(&cfg);
    cfg.sampler.batch = 8;
    cfg.sampler.k = 6;
    cfg.sampler.seed = 17;
    cfg.threads = 1;
    float mean[3] = {0.5f, 0.4f, 0.3f}, sd[3] = {0.25f, 0.2f, 0.3f};
    memcpy(cfg.aug.mean, mean, sizeof mean);
    memcpy(cfg.aug.std, sd, sizeof sd);
    return cfg;
}

/* Row r of b rendered independently with aug_apply (the documented key). */
static int row_matches(const Batch *b, int r, const DataSplit *s, const AugConfig *aug, uint64_t seed) {
    int B = b->s.B, idx = b->s.index[r];
    size_t sz = (size_t)b->C * b->H * b->W;
    float *want = malloc(sizeof(float) * sz);
    uint32_t view = r < B ? 0u : 1u + (uint32_t)b->s.index[r - B];
    aug_apply(want, s->pixels + (size_t)idx * S * S * C, S, S, C, aug, seed, (uint32_t)b->s.epoch, (uint32_t)idx, view);
    int ok = memcmp(want, b->x + r * sz, sizeof(float) * sz) == 0;
    free(want);
    return ok;
}

static void test_rows_and_determinism(void) {
    DataSplit s = make_split();
    NcError err = {0};
    LoaderConfig c1 = base_config(), c2 = base_config();
    c2.threads = 3;
    c2.prefetch = 0;
    Loader *l1, *l2;
    int rc1 = loader_create(&s, &c1, &l1, &err), rc2 = loader_create(&s, &c2, &l2, &err);
    CHECK(rc1 == NC_OK && rc2 == NC_OK && loader_steps_per_epoch(l1) == 12 && loader_num_classes(l1) == CLASSES,
          "loaders created: 12 batches per epoch, %d classes", CLASSES);
    int same = 1, rows_ok = 1, labels_ok = 1, order_ok = 1, views_differ = 1, bufs = 1;
    float *prev[2] = {NULL, NULL};
    for (int t = 0; t < 30; t++) {
        Batch *a, *b;
        if (loader_next(l1, &a, &err) || loader_next(l2, &b, &err)) { same = 0; break; }
        size_t nx = (size_t)2 * 8 * C * S * S;
        same &= a->s.epoch == b->s.epoch && a->s.step == b->s.step &&
                memcmp(a->x, b->x, sizeof(float) * nx) == 0 && memcmp(a->s.neg, b->s.neg, sizeof(int32_t) * 8 * 6) == 0 &&
                memcmp(a->s.index, b->s.index, sizeof(int32_t) * 16) == 0;
        order_ok &= a->s.epoch == t / 12 && a->s.step == t % 12 && a->C == C && a->H == S && a->W == S;
        for (int r = 0; r < 16; r++) {
            labels_ok &= a->s.labels[r] == s.labels[a->s.index[r]];
            if (t % 7 == 0) rows_ok &= row_matches(a, r, &s, &c1.aug, 17);
        }
        for (int i = 0; i < 8; i++)
            views_differ &= a->s.index[8 + i] == a->s.index[i] &&
                            memcmp(a->x + (size_t)i * C * S * S, a->x + (size_t)(8 + i) * C * S * S,
                                   sizeof(float) * C * S * S) != 0;
        if (t >= 2) bufs &= a->x == prev[t % 2] && a->x != prev[(t + 1) % 2];
        prev[t % 2] = a->x;
    }
    CHECK(same, "prefetching with 1 thread and synchronous with 3 threads give bit-identical batches (30 batches)");
    CHECK(order_ok, "batches run through steps 0..11 and on into the next epochs");
    CHECK(rows_ok, "every row is aug_apply keyed by (seed, epoch, dataset index, view)");
    CHECK(labels_ok, "labels are the split's labels of the rows' images");
    CHECK(views_differ, "augment positives: the same image in two different views");
    CHECK(bufs, "two buffers used in turn (no allocation per batch)");
    loader_free(l1);
    loader_free(l2);

    /* resuming at (epoch 1, step 5) gives the 18th batch */
    LoaderConfig c3 = base_config();
    Loader *l3, *l4;
    loader_create(&s, &c3, &l3, &err);
    c3.start_epoch = 1;
    c3.start_step = 5;
    loader_create(&s, &c3, &l4, &err);
    Batch *a = NULL, *b = NULL;
    for (int t = 0; t < 18; t++) loader_next(l3, &a, &err);
    loader_next(l4, &b, &err);
    CHECK(a->s.epoch == 1 && a->s.step == 5 && b->s.epoch == 1 && b->s.step == 5 &&
              memcmp(a->x, b->x, sizeof(float) * 16 * C * S * S) == 0,
          "a loader started at epoch 1 step 5 reproduces that batch");
    loader_free(l3);
    loader_free(l4);
    free(s.pixels);
    free(s.labels);
}

static void test_class_positives_and_eval(void) {
    DataSplit s = make_split();
    NcError err = {0};
    LoaderConfig c = base_config();
    c.sampler.positives = SAMPLER_POS_CLASS;
    Loader *l;
    loader_create(&s, &c, &l, &err);
    Batch *b;
    loader_next(l, &b, &err);
    int exact = 1, pos_ok = 1;
    for (int r = 0; r < 16; r++) {
        const uint8_t *img = s.pixels + (size_t)b->s.index[r] * S * S * C;
        for (int ch = 0; ch < C; ch++)
            for (int p = 0; p < S * S; p++)
                exact &= b->x[((size_t)r * C + ch) * S * S + p] == ((float)img[p * C + ch] / 255.0f - c.aug.mean[ch]) / c.aug.std[ch];
    }
    for (int i = 0; i < 8; i++)
        pos_ok &= b->s.index[8 + i] != b->s.index[i] && b->s.labels[8 + i] == b->s.labels[i];
    CHECK(exact && pos_ok, "class positives: another image of the class, no augmentation, only normalisation");
    loader_free(l);

    float *out = malloc(sizeof(float) * 10 * C * S * S);
    int rc = loader_eval_images(&s, 40, 10, &c.aug, out, &err);
    exact = rc == NC_OK;
    for (int i = 0; i < 10; i++)
        for (int ch = 0; ch < C; ch++)
            for (int p = 0; p < S * S; p++)
                exact &= out[((size_t)i * C + ch) * S * S + p] ==
                         ((float)s.pixels[((size_t)(40 + i) * S * S + p) * C + ch] / 255.0f - c.aug.mean[ch]) / c.aug.std[ch];
    CHECK(exact, "loader_eval_images: images 40..49 as normalised CHW floats, not augmented");
    rc = loader_eval_images(&s, 90, 10, &c.aug, out, &err);
    CHECK(rc == NC_EUSAGE && strstr(err.msg, "90..99"), "eval images beyond the split: %s", err.msg);
    free(out);

    /* another output size: shapes follow the configuration */
    c = base_config();
    c.aug.out_h = 12;
    c.aug.out_w = 6;
    loader_create(&s, &c, &l, &err);
    loader_next(l, &b, &err);
    CHECK(b->C == C && b->H == 12 && b->W == 6 && row_matches(b, 3, &s, &c.aug, 17) && row_matches(b, 11, &s, &c.aug, 17),
          "output size 12 x 6: batch shape (16, 3, 12, 6), rows as aug_apply");
    loader_free(l);
    free(s.pixels);
    free(s.labels);
}

static void test_queue_and_errors(void) {
    DataSplit s = make_split();
    NcError err = {0};
    LoaderConfig c = base_config();
    c.sampler.k = 20;
    Loader *l = NULL;
    int rc = loader_create(&s, &c, &l, &err);
    CHECK(rc == NC_EUSAGE && l == NULL && strstr(err.msg, "no queue"), "k > 2B-2 without a queue: %s", err.msg);
    c.sampler.queue = 32;
    rc = loader_create(&s, &c, &l, &err);
    EmbQueue q;
    queue_init(&q, 32, 2, &err);
    float e[32 * 2] = {0};
    int32_t lab[32];
    for (int i = 0; i < 32; i++) lab[i] = i % CLASSES;
    queue_push(&q, e, lab, 32);
    Batch *b;
    loader_next(l, &b, &err);
    int pending = b->s.from_queue && b->s.neg[0] == -1;
    rc = loader_queue_negatives(l, b, &q, &err);
    int ok = rc == NC_OK;
    for (int j = 0; j < 8 * 20; j++) ok &= b->s.neg[j] >= 16 && b->s.neg[j] < 16 + 32;
    CHECK(pending && ok && fabs(b->s.collision_rate - 0.25) < 0.1,
          "k 20 with a queue of 32: negatives 2B + slot after loader_queue_negatives (collision %.3f)",
          b->s.collision_rate);
    loader_free(l);
    queue_free(&q);

    c = base_config();
    c.threads = -1;
    rc = loader_create(&s, &c, &l, &err);
    CHECK(rc == NC_EUSAGE && strstr(err.msg, "--threads"), "bad thread count: %s", err.msg);
    c = base_config();
    c.aug.hue = 0.7;
    rc = loader_create(&s, &c, &l, &err);
    CHECK(rc == NC_EUSAGE && strstr(err.msg, "hue"), "bad augmentation: %s", err.msg);
    c = base_config();
    c.start_step = 12;
    rc = loader_create(&s, &c, &l, &err);
    CHECK(rc == NC_EUSAGE && strstr(err.msg, "12"), "start step beyond the epoch: %s", err.msg);

    /* 4 classes, B 2, k 2, exclude: some batch leaves an anchor fewer than k other-class rows */
    c = base_config();
    c.sampler.batch = 2;
    c.sampler.k = 2;
    c.sampler.positives = SAMPLER_POS_CLASS;
    c.sampler.exclude_same_class = 1;
    loader_create(&s, &c, &l, &err);
    int t = 0;
    for (; t < 48 && loader_next(l, &b, &err) == NC_OK; t++) {}
    NcError err2 = {0};
    rc = loader_next(l, &b, &err2);
    CHECK(t < 48 && rc == NC_EUSAGE && b == NULL && strcmp(err.msg, err2.msg) == 0 && strstr(err.msg, "k = 2"),
          "a failing batch (at %d) is an error, returned again by later calls: %s", t, err.msg);
    loader_free(l);

    /* freeing right after creation, while the producer works (ASan and the timeout watch it) */
    c = base_config();
    loader_create(&s, &c, &l, &err);
    loader_free(l);
    free(s.pixels);
    free(s.labels);
}

int main(void) {
    test_rows_and_determinism();
    test_class_positives_and_eval();
    test_queue_and_errors();
    return check_done();
}
