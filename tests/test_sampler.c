// test_sampler.c -- contrastive sampler and embedding queue: validity, epochs, reproducibility, collision statistics.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ncelab/sampler.h"

/* A split of n 1x1 gray images with labels label_of(i); the sampler never reads pixels. */
static DataSplit make_split(int n, int classes) {
    DataSplit s = {n, 1, 1, 1, NULL, NULL};
    s.pixels = calloc((size_t)n, 1);
    s.labels = malloc(sizeof(int32_t) * n);
    for (int i = 0; i < n; i++) s.labels[i] = i % classes;
    return s;
}

static void free_split(DataSplit *s) {
    free(s->pixels);
    free(s->labels);
}

/* Checks every structural property of a batch; returns 1 if all hold. */
static int batch_valid(const SamplerBatch *b, const DataSplit *s, int positives, int *why) {
    int B = b->B, k = b->k;
    for (int i = 0; i < B; i++) {
        int a = b->index[i], p = b->index[B + i];
        if (b->labels[i] != s->labels[a] || b->labels[B + i] != s->labels[p]) { *why = 1; return 0; }
        if (positives == SAMPLER_POS_AUGMENT ? p != a : (p == a || s->labels[p] != s->labels[a])) { *why = 2; return 0; }
        const int32_t *ni = b->neg + (long)i * k;
        for (int j = 0; j < k; j++) {
            if (ni[j] < 0 || ni[j] >= 2 * B || ni[j] == i || ni[j] == B + i) { *why = 3; return 0; }
            for (int t = 0; t < j; t++)
                if (ni[t] == ni[j]) { *why = 4; return 0; }
        }
    }
    return 1;
}

/* The batch's statistics recomputed from its negatives and labels. */
static int batch_stats_agree(const SamplerBatch *b, const int32_t *qlabels) {
    int B = b->B, k = b->k;
    long c = 0, d = 0, any = 0;
    for (int i = 0; i < B; i++) {
        int seen[256] = {0}, ci = 0;
        for (int j = 0; j < k; j++) {
            int r = b->neg[(long)i * k + j], l = r < 2 * B ? b->labels[r] : qlabels[r - 2 * B];
            ci += l == b->labels[i];
            d += !seen[l]++;
        }
        c += ci;
        any += ci > 0;
    }
    return fabs((double)c / ((double)B * k) - b->collision_rate) < 1e-12 && fabs((double)d / B - b->coverage) < 1e-12 &&
           fabs((double)any / B - b->any_collision) < 1e-12;
}

static void test_structure(void) {
    int n = 160, B = 16, k = 10;
    DataSplit s = make_split(n, 10);
    int modes[3] = {SAMPLER_POS_CLASS, SAMPLER_POS_AUGMENT, SAMPLER_POS_CLASS_AUGMENT};
    for (int mi = 0; mi < 3; mi++) {
        SamplerConfig cfg = {B, k, modes[mi], 0, 0, 7};
        Sampler *sp;
        NcError err = {0};
        int rc = sampler_create(&s, &cfg, &sp, &err);
        CHECK(rc == NC_OK && sampler_steps_per_epoch(sp) == 10 && sampler_num_classes(sp) == 10,
              "%s: sampler created, 10 batches per epoch, 10 classes", sampler_positives_name(modes[mi]));
        SamplerBatch b;
        sampler_batch_init(&b, sp);
        int valid = 1, once = 1, why = 0, stats_ok = 1, epochs_differ = 0;
        int32_t first_epoch_anchor0 = -1;
        for (int e = 0; e < 3; e++) {
            int *count = calloc((size_t)n, sizeof(int));
            for (int t = 0; t < 10; t++) {
                if (sampler_batch(sp, e, t, &b, &err)) { valid = 0; break; }
                valid &= batch_valid(&b, &s, modes[mi], &why);
                for (int i = 0; i < B; i++) count[b.index[i]]++;
                stats_ok &= batch_stats_agree(&b, NULL);
                if (t == 0 && e == 0) first_epoch_anchor0 = b.index[0];
                if (t == 0 && e > 0) epochs_differ += b.index[0] != first_epoch_anchor0;
            }
            for (int i = 0; i < n; i++) once &= count[i] == 1;
            free(count);
        }
        CHECK(valid, "%s: negatives are k distinct batch rows, never the anchor or its positive; positives %s (why %d)",
              sampler_positives_name(modes[mi]),
              modes[mi] == SAMPLER_POS_AUGMENT ? "are the anchor's image" : "share the class and differ", why);
        CHECK(once, "%s: every image is an anchor exactly once per epoch (3 epochs)", sampler_positives_name(modes[mi]));
        CHECK(stats_ok, "%s: collision rate, any-collision rate and coverage agree with a recount", sampler_positives_name(modes[mi]));
        CHECK(epochs_differ == 2, "%s: each epoch has a fresh permutation", sampler_positives_name(modes[mi]));
        sampler_batch_free(&b);
        sampler_free(sp);
    }
    free_split(&s);

    /* an incomplete last batch is dropped: 170 images, B = 16 -> 10 batches, 160 distinct anchors */
    s = make_split(170, 10);
    SamplerConfig cfg = {16, 5, SAMPLER_POS_CLASS, 0, 0, 1};
    Sampler *sp;
    NcError err = {0};
    sampler_create(&s, &cfg, &sp, &err);
    SamplerBatch b;
    sampler_batch_init(&b, sp);
    int *count = calloc(170, sizeof(int)), distinct = 0, twice = 0;
    for (int t = 0; t < sampler_steps_per_epoch(sp); t++) {
        sampler_batch(sp, 0, t, &b, &err);
        for (int i = 0; i < 16; i++) count[b.index[i]]++;
    }
    for (int i = 0; i < 170; i++) { distinct += count[i] == 1; twice += count[i] > 1; }
    int rc = sampler_batch(sp, 0, 10, &b, &err);
    CHECK(sampler_steps_per_epoch(sp) == 10 && distinct == 160 && twice == 0 && rc == NC_EUSAGE,
          "170 images, B 16: 10 batches of distinct anchors, the last 10 images dropped, batch 10 refused: %s", err.msg);
    free(count);
    sampler_batch_free(&b);
    sampler_free(sp);
    free_split(&s);
}

static void test_reproducible(void) {
    DataSplit s = make_split(300, 7);
    SamplerConfig cfg = {20, 12, SAMPLER_POS_CLASS_AUGMENT, 0, 0, 42};
    Sampler *a, *b;
    NcError err = {0};
    sampler_create(&s, &cfg, &a, &err);
    sampler_create(&s, &cfg, &b, &err);
    SamplerBatch x, y;
    sampler_batch_init(&x, a);
    sampler_batch_init(&y, b);
    int same = 1;
    /* a walks forward; b jumps straight to the same (epoch, step) */
    for (int e = 0; e < 3; e++)
        for (int t = 0; t < 15; t++) {
            sampler_batch(a, e, t, &x, &err);
            sampler_batch(b, 2 - e, 14 - t, &y, &err);   /* disturb b's cached permutation */
            sampler_batch(b, e, t, &y, &err);
            same &= memcmp(x.index, y.index, sizeof(int32_t) * 40) == 0 &&
                    memcmp(x.neg, y.neg, sizeof(int32_t) * 20 * 12) == 0;
        }
    CHECK(same, "a batch is a pure function of (seed, epoch, step): same batches in any call order");
    sampler_free(b);
    cfg.seed = 43;
    sampler_create(&s, &cfg, &b, &err);
    sampler_batch(a, 0, 0, &x, &err);
    sampler_batch(b, 0, 0, &y, &err);
    CHECK(memcmp(x.index, y.index, sizeof(int32_t) * 40) != 0 && memcmp(x.neg, y.neg, sizeof(int32_t) * 240) != 0,
          "another seed gives other anchors and negatives");
    sampler_batch_free(&x);
    sampler_batch_free(&y);
    sampler_free(a);
    sampler_free(b);
    free_split(&s);
}

/* Collisions against the exact expectation of sampling k of the 2B - 2 other rows without
   replacement: for anchor i with m_i same-label rows among them, the count is hypergeometric
   with mean k m_i/(2B-2) and variance k p (1-p) (N-k)/(N-1), p = m_i/N, N = 2B - 2. */
static void test_collisions(void) {
    int n = 1000, B = 16, k = 10, N = 2 * B - 2, nb = 0;
    DataSplit s = make_split(n, 10);
    SamplerConfig cfg = {B, k, SAMPLER_POS_CLASS, 0, 0, 3};
    Sampler *sp;
    NcError err = {0};
    sampler_create(&s, &cfg, &sp, &err);
    SamplerBatch b;
    sampler_batch_init(&b, sp);
    double obs = 0, expect = 0, var = 0, rate_sum = 0, any_obs = 0, any_exp = 0, any_var = 0;
    static long hits[30];   /* how often row r is among anchor 0's negatives */
    for (int e = 0; e < 40; e++)
        for (int t = 0; t < sampler_steps_per_epoch(sp); t++, nb++) {
            sampler_batch(sp, e, t, &b, &err);
            rate_sum += b.collision_rate;
            for (int i = 0; i < B; i++) {
                int m = 0;
                for (int r = 0; r < 2 * B; r++) m += r != i && r != B + i && b.labels[r] == b.labels[i];
                double p = (double)m / N;
                expect += k * p;
                var += k * p * (1 - p) * (N - k) / (N - 1);
                int ci = 0;
                for (int j = 0; j < k; j++) ci += b.labels[b.neg[(long)i * k + j]] == b.labels[i];
                obs += ci;
                /* P(no collision) = C(N - m, k) / C(N, k) */
                double p0 = 1;
                for (int j = 0; j < k; j++) p0 *= (double)(N - m - j) / (N - j);
                if (p0 < 0) p0 = 0;
                any_obs += ci > 0;
                any_exp += 1 - p0;
                any_var += p0 * (1 - p0);
            }
            for (int j = 0; j < k; j++) {
                int r = b.neg[j];
                hits[r < B ? r - 1 : r - 2]++;   /* rows 1..15 and 17..31 -> 0..29 */
            }
        }
    double z = (obs - expect) / sqrt(var);
    CHECK(fabs(z) < 4, "collision count %.0f vs exact expectation %.1f over %d batches: z = %.2f (rate %.4f)", obs,
          expect, nb, z, rate_sum / nb);
    CHECK(fabs(rate_sum / nb * B * k * nb - obs) < 1e-6 * obs, "per-batch collision rates add up to the recount");
    double za = (any_obs - any_exp) / sqrt(any_var);
    CHECK(fabs(za) < 4, "anchors with at least one collision %.0f vs exact 1 - C(N-m,k)/C(N,k) summed %.1f: z = %.2f",
          any_obs, any_exp, za);
    double zmax = 0, pe = (double)k / N, mean_hits = nb * pe, sd = sqrt(nb * pe * (1 - pe));
    for (int r = 0; r < 30; r++) zmax = fmax(zmax, fabs(hits[r] - mean_hits) / sd);
    CHECK(zmax < 4.5, "each of the 30 candidate rows of anchor 0 is drawn with probability k/(2B-2): max |z| %.2f", zmax);
    sampler_batch_free(&b);
    sampler_free(sp);

    /* excluding same-class negatives: no collision at all */
    cfg.exclude_same_class = 1;
    sampler_create(&s, &cfg, &sp, &err);
    sampler_batch_init(&b, sp);
    int zero = 1, valid = 1, why = 0;
    for (int t = 0; t < sampler_steps_per_epoch(sp); t++) {
        if (sampler_batch(sp, 0, t, &b, &err)) { zero = 0; break; }
        zero &= b.collision_rate == 0;
        valid &= batch_valid(&b, &s, SAMPLER_POS_CLASS, &why);
        for (int i = 0; i < B; i++)
            for (int j = 0; j < k; j++) zero &= b.labels[b.neg[i * k + j]] != b.labels[i];
    }
    CHECK(zero && valid, "exclude_same_class: collision rate 0, no negative of the anchor's class, k distinct");
    sampler_batch_free(&b);
    sampler_free(sp);
    free_split(&s);

    /* two classes, B 4, k 5: excluding leaves some anchor at most 4 candidates */
    s = make_split(40, 2);
    SamplerConfig c2 = {4, 5, SAMPLER_POS_CLASS, 1, 0, 1};
    sampler_create(&s, &c2, &sp, &err);
    sampler_batch_init(&b, sp);
    int rc = sampler_batch(sp, 0, 0, &b, &err);
    CHECK(rc == NC_EUSAGE && strstr(err.msg, "k = 5") && strstr(err.msg, "fewer"),
          "exclude_same_class with too few other-class rows is an error: %s", err.msg);
    sampler_batch_free(&b);
    sampler_free(sp);
    free_split(&s);
}

static void test_errors(void) {
    DataSplit s = make_split(100, 10);
    Sampler *sp;
    NcError err = {0};
    SamplerConfig cfg = {8, 15, SAMPLER_POS_CLASS, 0, 0, 1};
    int rc = sampler_create(&s, &cfg, &sp, &err);
    CHECK(rc == NC_EUSAGE && sp == NULL && strstr(err.msg, "15") && strstr(err.msg, "2B-2 = 14") &&
              strstr(err.msg, "no queue"),
          "k > 2B-2 without a queue: %s", err.msg);
    cfg.queue = 10;
    rc = sampler_create(&s, &cfg, &sp, &err);
    CHECK(rc == NC_EUSAGE && strstr(err.msg, "--queue"), "a queue smaller than k: %s", err.msg);
    cfg.k = 14;
    cfg.queue = 0;
    rc = sampler_create(&s, &cfg, &sp, &err);
    CHECK(rc == NC_OK, "k = 2B-2 needs no queue");
    sampler_free(sp);
    cfg.batch = 101;
    rc = sampler_create(&s, &cfg, &sp, &err);
    CHECK(rc == NC_EUSAGE && strstr(err.msg, "--batch"), "a batch larger than the split: %s", err.msg);
    free_split(&s);

    /* class 3 has a single image */
    s = make_split(50, 3);
    for (int i = 0; i < 50; i++) s.labels[i] = i % 3;
    s.labels[49] = 3;
    cfg = (SamplerConfig){4, 3, SAMPLER_POS_CLASS_AUGMENT, 0, 0, 1};
    rc = sampler_create(&s, &cfg, &sp, &err);
    CHECK(rc == NC_EUSAGE && strstr(err.msg, "class 3") && strstr(err.msg, "single"),
          "a class with a single image under class positives: %s", err.msg);
    cfg.positives = SAMPLER_POS_AUGMENT;
    rc = sampler_create(&s, &cfg, &sp, &err);
    CHECK(rc == NC_OK, "the same split is fine with augment positives");
    sampler_free(sp);
    s.labels[3] = -2;
    rc = sampler_create(&s, &cfg, &sp, &err);
    CHECK(rc == NC_EUSAGE && strstr(err.msg, "-2"), "a negative label: %s", err.msg);
    free_split(&s);
    int mode;
    rc = sampler_positives_parse("class+augment", "--positives", &mode, &err);
    CHECK(rc == NC_OK && mode == SAMPLER_POS_CLASS_AUGMENT, "parse class+augment");
    rc = sampler_positives_parse("views", "--positives", &mode, &err);
    CHECK(rc == NC_EUSAGE && strstr(err.msg, "--positives") && strstr(err.msg, "views"), "parse error: %s", err.msg);
}

static void test_queue(void) {
    EmbQueue q;
    NcError err = {0};
    int rc = queue_init(&q, 0, 4, &err);
    CHECK(rc == NC_EUSAGE && strstr(err.msg, "--queue"), "a queue of 0 slots: %s", err.msg);
    queue_init(&q, 64, 4, &err);
    float rows[70 * 4];
    int32_t lab[70];
    for (int i = 0; i < 70; i++) {
        lab[i] = i % 5;
        for (int d = 0; d < 4; d++) rows[i * 4 + d] = (float)(i * 10 + d);
    }
    queue_push(&q, rows, lab, 30);
    int ok = q.count == 30 && q.head == 30 && queue_row(&q, 29)[3] == 293.0f;
    queue_push(&q, rows + 30 * 4, lab + 30, 40);   /* rows 30..69: wraps, overwriting slots 0..5 */
    ok &= q.count == 64 && q.head == 6 && queue_row(&q, 0)[0] == 640.0f && queue_row(&q, 5)[1] == 691.0f &&
          queue_row(&q, 6)[0] == 60.0f && q.labels[5] == 69 % 5;
    queue_push(&q, rows, lab, 70);   /* more than Q: the last 64 rows */
    ok &= q.count == 64 && q.head == 6 && queue_row(&q, 6)[0] == 60.0f && queue_row(&q, 5)[0] == 690.0f;
    CHECK(ok, "queue: FIFO ring, wraps around, keeps the last Q rows");
    queue_free(&q);

    /* k = 20 > 2B - 2 = 14 with a queue of 64 */
    DataSplit s = make_split(200, 5);
    SamplerConfig cfg = {8, 20, SAMPLER_POS_CLASS, 0, 64, 5};
    Sampler *sp;
    rc = sampler_create(&s, &cfg, &sp, &err);
    CHECK(rc == NC_OK, "k 20 > 2B-2 with --queue 64 is accepted");
    SamplerBatch b;
    sampler_batch_init(&b, sp);
    queue_init(&q, 64, 4, &err);
    sampler_batch(sp, 0, 3, &b, &err);
    CHECK(b.from_queue && b.neg[0] == -1 && isnan(b.collision_rate), "queue batch: negatives pending until drawn");
    queue_push(&q, rows, lab, 10);
    rc = sampler_queue_negatives(sp, &b, &q, &err);
    CHECK(rc == NC_EUSAGE && strstr(err.msg, "10") && strstr(err.msg, "k = 20"), "a queue holding 10 < k: %s", err.msg);
    queue_push(&q, rows + 40, lab + 10, 30);   /* 40 filled slots */
    int valid = 1;
    long slot_hits[64] = {0};
    double coll_sum = 0;
    for (int rep = 0; rep < 200; rep++) {
        sampler_batch(sp, rep / 25, rep % 25, &b, &err);
        rc = sampler_queue_negatives(sp, &b, &q, &err);
        valid &= rc == NC_OK;
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 20; j++) {
                int r = b.neg[i * 20 + j];
                valid &= r >= 16 && r < 16 + 40;
                if (r >= 16 && r < 16 + 64) slot_hits[r - 16]++;
                for (int t = 0; t < j; t++) valid &= b.neg[i * 20 + t] != r;
            }
        valid &= batch_stats_agree(&b, q.labels);
        coll_sum += b.collision_rate;
    }
    double zmax = 0, pe = 20.0 / 40, nd = 200 * 8;
    for (int j = 0; j < 40; j++) zmax = fmax(zmax, fabs(slot_hits[j] - nd * pe) / sqrt(nd * pe * (1 - pe)));
    CHECK(valid, "queue negatives: 2B + slot over the 40 filled slots, k distinct, statistics from the queue labels");
    CHECK(zmax < 4.5 && fabs(coll_sum / 200 - 0.2) < 0.01,
          "queue slots drawn uniformly (max |z| %.2f), collision rate %.4f = 8/40 (labels i mod 5)", zmax, coll_sum / 200);
    int32_t keep[160];
    sampler_batch(sp, 1, 2, &b, &err);
    sampler_queue_negatives(sp, &b, &q, &err);
    memcpy(keep, b.neg, sizeof keep);
    sampler_queue_negatives(sp, &b, &q, &err);
    CHECK(memcmp(keep, b.neg, sizeof keep) == 0, "queue negatives are a pure function of (seed, epoch, step) and the queue");
    sampler_batch_free(&b);
    sampler_free(sp);

    cfg.exclude_same_class = 1;
    sampler_create(&s, &cfg, &sp, &err);
    sampler_batch_init(&b, sp);
    int zero = 1;
    for (int t = 0; t < 20; t++) {
        sampler_batch(sp, 0, t, &b, &err);
        rc = sampler_queue_negatives(sp, &b, &q, &err);
        zero &= rc == NC_OK && b.collision_rate == 0;
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 20; j++) zero &= q.labels[b.neg[i * 20 + j] - 16] != b.labels[i];
    }
    CHECK(zero, "queue negatives with exclude_same_class: no collision");
    sampler_batch_free(&b);
    sampler_free(sp);
    queue_free(&q);
    free_split(&s);
}

int main(void) {
    test_structure();
    test_reproducible();
    test_collisions();
    test_errors();
    test_queue();
    return check_done();
}
