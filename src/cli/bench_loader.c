// bench_loader.c -- `ncelab bench --loader`: images/s and ms/batch of the batch loader (sampler + augmentation).
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "args.h"
#include "ncelab/data.h"
#include "ncelab/jsonio.h"
#include "ncelab/loader.h"
#include "ncelab/rng.h"
#include "ncelab/utf8.h"

int bench_loader(int argc, char **argv);

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The default data: n random 32x32x3 images with labels i mod 10 (a CIFAR-10-sized split). */
static void synthetic_split(DataSplit *s, int n) {
    s->n = n;
    s->h = s->w = 32;
    s->c = 3;
    size_t per = 32 * 32 * 3;
    s->pixels = nc_malloc(per * n);
    s->labels = nc_malloc(sizeof(int32_t) * n);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        Rng r;
        rng_init(&r, 2024, 0, (uint32_t)i, 0);
        for (size_t j = 0; j < per; j += 4) {
            uint32_t v = rng_u32(&r);
            memcpy(s->pixels + (size_t)i * per + j, &v, 4);
        }
        s->labels[i] = i % 10;
    }
}

int bench_loader(int argc, char **argv) {
    Opt o[] = {
        {"loader", 0, "time the batch loader", NULL},
        {"data", 1, "SPEC  dataset (its training split); default 50000 random 32x32x3 images, 10 labels", NULL},
        {"batch", 1, "B  anchors per batch (2B images; default 256)", NULL},
        {"k", 1, "K  negatives per anchor (default min(2B - 2, 255))", NULL},
        {"queue", 1, "Q  queue slots, needed when k > 2B - 2", NULL},
        {"positives", 1, "MODE  class | augment | class+augment (default augment)", NULL},
        {"aug", 1, "NAME  simclr | crop_flip | none (default simclr)", NULL},
        ARGS_THREADS,
        ARGS_THREADS_FORCE,
        {"batches", 1, "N  timed batches (default 50, after 3 warm-up batches)", NULL},
        {"seed", 1, "S  seed (default 0)", NULL},
        {"json", 1, "FILE  write the timings as JSON", NULL},
    };
    int no = sizeof o / sizeof o[0], npos, help;
    const char *pos[1];
    NcError err = {0};
    if (args_parse(argc, argv, 2, o, no, pos, 0, &npos, &help, &err)) cli_die(&err);
    if (help) {
        args_usage(stdout,
                   "bench --loader [--data SPEC] [--batch B] [--k K] [--positives MODE] [--aug NAME]\n"
                   "              [--threads T] [--batches N] [--json FILE]",
                   "Times the batch loader as training uses it: the sampler (anchors, positives, k negatives)\n"
                   "and the augmentation of 2B images a batch on OpenMP threads, prepared by the background\n"
                   "producer. Prints images/s (2B images a batch) and the median ms per batch.", o, no);
        return 0;
    }
    LoaderConfig cfg;
    loader_config_default(&cfg);
    long v;
    const char *a;
    if ((a = args_get(o, no, "batch"))) {
        if (nc_parse_long(a, "--batch", 2, 65536, &v, &err)) cli_die(&err);
        cfg.sampler.batch = (int)v;
    }
    int B = cfg.sampler.batch;
    cfg.sampler.k = 2 * B - 2 < 255 ? 2 * B - 2 : 255;
    if ((a = args_get(o, no, "k"))) {
        if (nc_parse_long(a, "--k", 1, 1000000000L, &v, &err)) cli_die(&err);
        cfg.sampler.k = (int)v;
    }
    if ((a = args_get(o, no, "queue"))) {
        if (nc_parse_long(a, "--queue", 1, 100000000L, &v, &err)) cli_die(&err);
        cfg.sampler.queue = (int)v;
    }
    const char *pname = args_get(o, no, "positives") ? args_get(o, no, "positives") : "augment";
    if (sampler_positives_parse(pname, "--positives", &cfg.sampler.positives, &err)) cli_die(&err);
    const char *aname = args_get(o, no, "aug") ? args_get(o, no, "aug") : "simclr";
    if (aug_preset(aname, "--aug", &cfg.aug, &err)) cli_die(&err);
    if (cfg.sampler.positives == SAMPLER_POS_CLASS) aname = "none";   /* class positives are not augmented */
    cfg.threads = args_threads(o, no);
    long nb = 50;
    if ((a = args_get(o, no, "batches")) && nc_parse_long(a, "--batches", 1, 100000, &nb, &err)) cli_die(&err);
    if ((a = args_get(o, no, "seed"))) {
        if (nc_parse_long(a, "--seed", 0, 2147483647L, &v, &err)) cli_die(&err);
        cfg.sampler.seed = (uint64_t)v;
    }

    const char *spec = args_get(o, no, "data");
    Dataset ds;
    memset(&ds, 0, sizeof ds);
    DataSplit synth = {0};
    const DataSplit *split;
    double t0 = nc_now();
    if (spec) {
        DataOpts dopts;
        memset(&dopts, 0, sizeof dopts);
        if (data_load(spec, &dopts, &ds, &err)) cli_die(&err);
        split = &ds.train;
        DataStats st;
        data_stats(&ds, &ds.train, &st);
        for (int c = 0; c < ds.train.c && c < 3; c++) {
            cfg.aug.mean[c] = (float)st.mean[c];
            cfg.aug.std[c] = st.std[c] > 0 ? (float)st.std[c] : 1.0f;
        }
        free(st.per_class);
    } else {
        synthetic_split(&synth, 50000);
        split = &synth;
        for (int c = 0; c < 3; c++) {
            cfg.aug.mean[c] = 0.5f;
            cfg.aug.std[c] = 0.2887f;
        }
    }
    double load_s = nc_now() - t0;
    const char *dname = spec ? spec : "random:50000x32x32x3";

    Loader *l;
    if (loader_create(split, &cfg, &l, &err)) cli_die(&err);
    int threads = cfg.threads ? cfg.threads : omp_get_max_threads(), warm = 3;
    double *dt = nc_malloc(sizeof(double) * nb), coll = 0, any = 0;
    Batch *b;
    for (int i = 0; i < warm; i++)
        if (loader_next(l, &b, &err)) cli_die(&err);
    /* the consumer does nothing, so the time between hand-outs is the time to make a batch */
    double start = nc_now(), prev = start;
    for (long i = 0; i < nb; i++) {
        if (loader_next(l, &b, &err)) cli_die(&err);
        double now = nc_now();
        dt[i] = now - prev;
        prev = now;
        if (!b->s.from_queue) {
            coll += b->s.collision_rate;
            any += b->s.any_collision;
        }
    }
    double total = nc_now() - start;
    qsort(dt, (size_t)nb, sizeof(double), cmp_double);
    double med = nb % 2 ? dt[nb / 2] : 0.5 * (dt[nb / 2 - 1] + dt[nb / 2]);
    double ips = 2.0 * B / med, ips_mean = 2.0 * B * nb / total;
    printf("loader: %s (%d images %dx%dx%d, loaded in %.2f s), batch %d (%d images), k = %d, positives %s, aug %s, "
           "%d threads\n", dname, split->n, split->h, split->w, split->c, load_s, B, 2 * B, cfg.sampler.k, pname, aname,
           threads);
    printf("  %.0f images/s   %.2f ms/batch (median of %ld; mean rate %.0f images/s)   peak RSS %.0f MB\n", ips,
           1e3 * med, nb, ips_mean, nc_peak_rss_mb());
    if (coll > 0 || any > 0)
        printf("  negatives: collision rate %.4f per negative, %.4f of anchors with one or more\n", coll / nb, any / nb);
    const char *jpath = args_get(o, no, "json");
    if (jpath) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "model", "loader");
        cJSON_AddItemToObject(doc, "data", utf8_json_string(dname));
        cJSON_AddNumberToObject(doc, "batch", B);
        cJSON_AddNumberToObject(doc, "k", cfg.sampler.k);
        cJSON_AddStringToObject(doc, "positives", pname);
        cJSON_AddStringToObject(doc, "aug", aname);
        cJSON_AddNumberToObject(doc, "threads", threads);
        cJSON_AddNumberToObject(doc, "batches", (double)nb);
        cJSON_AddNumberToObject(doc, "imgs_per_sec", ips);
        cJSON_AddNumberToObject(doc, "ms_per_batch", 1e3 * med);
        cJSON_AddNumberToObject(doc, "ms_per_step", 1e3 * med);
        cJSON_AddNumberToObject(doc, "peak_rss_mb", nc_peak_rss_mb());
        if (!b->s.from_queue) {
            cJSON_AddNumberToObject(doc, "collision_rate", coll / nb);
            cJSON_AddNumberToObject(doc, "any_collision", any / nb);
        }
        if (json_save(jpath, doc, &err)) cli_die(&err);
        cJSON_Delete(doc);
    }
    loader_free(l);
    free(dt);
    if (spec) data_free(&ds);
    free(synth.pixels);
    free(synth.labels);
    return 0;
}
