// dataset.c -- the data SPEC, data_load's dispatch to the readers, imbalance, statistics and freeing.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data_internal.h"
#include "ncelab/rng.h"
#include "ncelab/utf8.h"

#define SPEC_KINDS "fmnist[:DIR], mnist:DIR, cifar10:DIR, cifar100:DIR[:coarse], folder:DIR, packed:FILE or synth:N[:SIZE[:PER_CLASS]]"

static int spec_path(DataSpec *o, const char *spec, const char *path, const char *what, NcError *err) {
    if (!*path) return nc_fail(err, NC_EUSAGE, "data SPEC '%s': %s needs a %s (%s)", spec, o->name, what, SPEC_KINDS);
    if (strlen(path) >= sizeof o->path)
        return nc_fail(err, NC_EUSAGE, "data SPEC '%s': %s is longer than %zu characters", spec, what, sizeof o->path - 1);
    strcpy(o->path, path);
    return NC_OK;
}

int data_spec_parse(const char *spec, DataSpec *o, NcError *err) {
    memset(o, 0, sizeof *o);
    if (!spec || !*spec) return nc_fail(err, NC_EUSAGE, "data SPEC: empty (expected %s)", SPEC_KINDS);
    const char *colon = strchr(spec, ':');
    size_t klen = colon ? (size_t)(colon - spec) : strlen(spec);
    const char *rest = colon ? colon + 1 : NULL;
    static const struct { const char *word; DataSource kind; } kinds[] = {
        {"fmnist", DATA_SRC_IDX}, {"mnist", DATA_SRC_IDX}, {"cifar10", DATA_SRC_CIFAR10},
        {"cifar100", DATA_SRC_CIFAR100}, {"folder", DATA_SRC_FOLDER}, {"packed", DATA_SRC_PACKED},
        {"synth", DATA_SRC_SYNTH},
    };
    int found = -1;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strlen(kinds[i].word) == klen && strncmp(spec, kinds[i].word, klen) == 0) found = (int)i;
    if (found < 0)
        return nc_fail(err, NC_EUSAGE, "data SPEC '%s': unknown dataset '%.*s' (expected %s)", spec,
                       (int)(klen > 40 ? 40 : klen), spec, SPEC_KINDS);
    o->kind = kinds[found].kind;
    strcpy(o->name, kinds[found].word);
    switch (o->kind) {
    case DATA_SRC_IDX:
        o->fashion = strcmp(o->name, "fmnist") == 0;
        if (o->fashion && !rest) rest = "/usr/share/datasets/fashion-mnist";
        return spec_path(o, spec, rest ? rest : "", "DIR", err);
    case DATA_SRC_CIFAR10:
    case DATA_SRC_FOLDER:
        return spec_path(o, spec, rest ? rest : "", "DIR", err);
    case DATA_SRC_PACKED:
        return spec_path(o, spec, rest ? rest : "", "FILE", err);
    case DATA_SRC_CIFAR100: {
        const char *last = rest ? strrchr(rest, ':') : NULL;
        if (last && (strcmp(last, ":coarse") == 0 || strcmp(last, ":fine") == 0)) {
            o->coarse = strcmp(last, ":coarse") == 0;
            char dir[sizeof o->path];
            size_t n = (size_t)(last - rest);
            if (n >= sizeof dir)
                return nc_fail(err, NC_EUSAGE, "data SPEC '%s': DIR is longer than %zu characters", spec, sizeof dir - 1);
            memcpy(dir, rest, n);
            dir[n] = '\0';
            return spec_path(o, spec, dir, "DIR", err);
        }
        return spec_path(o, spec, rest ? rest : "", "DIR", err);
    }
    case DATA_SRC_SYNTH: {
        if (!rest || !*rest) return nc_fail(err, NC_EUSAGE, "data SPEC '%s': synth needs N (synth:N[:SIZE[:PER_CLASS]])", spec);
        char buf[128];
        if (strlen(rest) >= sizeof buf) return nc_fail(err, NC_EUSAGE, "data SPEC '%s': too long", spec);
        strcpy(buf, rest);
        char *parts[4] = {buf, NULL, NULL, NULL};
        int np = 1;
        for (char *p = buf; *p; p++)
            if (*p == ':') {
                if (np == 3) return nc_fail(err, NC_EUSAGE, "data SPEC '%s': synth takes at most N:SIZE:PER_CLASS", spec);
                *p = '\0';
                parts[np++] = p + 1;
            }
        long v;
        char what[200];
        snprintf(what, sizeof what, "data SPEC '%s': synth N", spec);
        if (nc_parse_long(parts[0], what, 2, 1000, &v, err)) return NC_EUSAGE;
        o->synth_classes = (int)v;
        o->synth_size = 32;
        o->synth_train = 500;
        o->synth_test = 100;
        if (np > 1) {
            snprintf(what, sizeof what, "data SPEC '%s': synth SIZE", spec);
            if (nc_parse_long(parts[1], what, 8, 256, &v, err)) return NC_EUSAGE;
            o->synth_size = (int)v;
        }
        if (np > 2) {
            snprintf(what, sizeof what, "data SPEC '%s': synth PER_CLASS", spec);
            if (nc_parse_long(parts[2], what, 1, 100000, &v, err)) return NC_EUSAGE;
            o->synth_train = (int)v;
            o->synth_test = v / 5 > 0 ? (int)(v / 5) : 1;
        }
        double bytes = (double)o->synth_classes * (o->synth_train + o->synth_test) * o->synth_size * o->synth_size * 3;
        if (bytes > 4.0 * 1024 * 1024 * 1024)
            return nc_fail(err, NC_EUSAGE, "data SPEC '%s': %.1f GiB of pixels is more than the 4 GiB allowed for synth",
                           spec, bytes / (1024.0 * 1024 * 1024));
        return NC_OK;
    }
    }
    return nc_fail(err, NC_EUSAGE, "data SPEC '%s': unknown dataset", spec);
}

void data_split_alloc(DataSplit *s, int n, int h, int w, int c) {
    s->n = n;
    s->h = h;
    s->w = w;
    s->c = c;
    s->pixels = nc_malloc((size_t)n * h * w * c);
    s->labels = nc_malloc(sizeof(int32_t) * (size_t)n);
}

void data_split_free(DataSplit *s) {
    free(s->pixels);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

void data_set_names(Dataset *ds, int n, const char *const *names) {
    ds->num_classes = n;
    ds->class_names = nc_calloc((size_t)n, sizeof(char *));
    for (int i = 0; i < n; i++) {
        char num[32];
        snprintf(num, sizeof num, "%d", i);
        ds->class_names[i] = utf8_repair(names ? names[i] : num);  /* shown and written as JSON: UTF-8 */
    }
}

int data_check_labels(const DataSplit *s, int num_classes, const char *what, NcError *err) {
    for (int i = 0; i < s->n; i++)
        if (s->labels[i] < 0 || s->labels[i] >= num_classes)
            return nc_fail(err, NC_EFILE, "%s: record %d: label %d out of range [0, %d)", what, i, (int)s->labels[i],
                           num_classes);
    return NC_OK;
}

int data_read_small_file(const char *path, size_t max_len, uint8_t **buf, size_t *len, NcError *err) {
    char *b;
    int rc = nc_read_regular(path, max_len, &b, len, err);
    *buf = (uint8_t *)b;
    return rc;
}

void data_free(Dataset *ds) {
    if (!ds) return;
    if (ds->class_names)
        for (int i = 0; i < ds->num_classes; i++) free(ds->class_names[i]);
    free(ds->class_names);
    data_split_free(&ds->train);
    data_split_free(&ds->test);
    memset(ds, 0, sizeof *ds);
}

/* Keeps the images of split t whose keep flag is set, in their order. */
static void split_keep(DataSplit *t, const uint8_t *keep) {
    size_t isz = (size_t)t->h * t->w * t->c;
    int m = 0;
    for (int i = 0; i < t->n; i++)
        if (keep[i]) {
            if (m != i) memcpy(t->pixels + (size_t)m * isz, t->pixels + (size_t)i * isz, isz);
            t->labels[m++] = t->labels[i];
        }
    t->n = m;
    t->pixels = nc_realloc(t->pixels, (size_t)(m > 0 ? m : 1) * isz);
    t->labels = nc_realloc(t->labels, sizeof(int32_t) * (size_t)(m > 0 ? m : 1));
}

/* Marks `want` of the n indices v[] in keep, drawn uniformly without replacement by a partial
   Fisher-Yates shuffle (v is permuted). */
static void keep_random(int *v, int n, long want, Rng *r, uint8_t *keep) {
    for (long j = 0; j < want; j++) {
        long k = j + (long)rng_below(r, (uint64_t)(n - j));
        int tmp = v[j];
        v[j] = v[k];
        v[k] = tmp;
        keep[v[j]] = 1;
    }
}

void data_imbalance(Dataset *ds, double s, uint64_t seed) {
    DataSplit *t = &ds->train;
    int K = ds->num_classes;
    if (!(s > 0) || K <= 0 || t->n == 0) return;
    int *count = nc_calloc((size_t)K, sizeof(int)), nmax = 0;
    for (int i = 0; i < t->n; i++) count[t->labels[i]]++;
    for (int c = 0; c < K; c++) nmax = count[c] > nmax ? count[c] : nmax;
    /* idx: the images of each class, grouped by class, in order */
    int *start = nc_calloc((size_t)K + 1, sizeof(int)), *idx = nc_malloc(sizeof(int) * (size_t)t->n);
    for (int c = 0; c < K; c++) start[c + 1] = start[c] + count[c];
    int *fill = nc_malloc(sizeof(int) * (size_t)K);
    memcpy(fill, start, sizeof(int) * (size_t)K);
    for (int i = 0; i < t->n; i++) idx[fill[t->labels[i]]++] = i;
    uint8_t *keep = nc_calloc((size_t)t->n, 1);
    for (int c = 0; c < K; c++) {
        long want = lround(nmax * pow(c + 1.0, -s));
        if (want < 1) want = 1;
        if (want > count[c]) want = count[c];
        Rng r;
        rng_init(&r, seed, 0x1b1a, (uint32_t)c, 0);
        keep_random(idx + start[c], count[c], want, &r, keep);
    }
    split_keep(t, keep);
    free(count);
    free(start);
    free(idx);
    free(fill);
    free(keep);
}

void data_limit(Dataset *ds, int n, uint64_t seed) {
    DataSplit *t = &ds->train;
    if (n <= 0 || n >= t->n) return;
    /* n images drawn at random; they keep their order */
    int *idx = nc_malloc(sizeof(int) * (size_t)t->n);
    for (int i = 0; i < t->n; i++) idx[i] = i;
    uint8_t *keep = nc_calloc((size_t)t->n, 1);
    Rng r;
    rng_init(&r, seed, 0x4c494d54u, 0, 0);
    keep_random(idx, t->n, n, &r, keep);
    split_keep(t, keep);
    free(idx);
    free(keep);
}

/* Resizes every image of a split to (h, w). */
static void split_resize(DataSplit *s, int h, int w) {
    if (s->h == h && s->w == w) return;
    size_t in_sz = (size_t)s->h * s->w * s->c, out_sz = (size_t)h * w * s->c;
    uint8_t *out = nc_malloc((size_t)s->n * out_sz);
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < s->n; i++)
        data_resize_bilinear(out + (size_t)i * out_sz, h, w, s->pixels + (size_t)i * in_sz, s->h, s->w, s->c);
    free(s->pixels);
    s->pixels = out;
    s->h = h;
    s->w = w;
}

int data_load(const char *spec, const DataOpts *opts, Dataset *ds, NcError *err) {
    memset(ds, 0, sizeof *ds);
    DataOpts def = {0};
    if (!opts) opts = &def;
    DataSpec sp;
    int rc = data_spec_parse(spec, &sp, err);
    if (rc) return rc;
    if (opts->resize_h < 0 || opts->resize_w < 0 || (opts->resize_h > 0) != (opts->resize_w > 0) ||
        opts->resize_h > 4096 || opts->resize_w > 4096)
        return nc_fail(err, NC_EUSAGE, "resize: %d x %d; both sides must be in [1, 4096] (or both 0)", opts->resize_h,
                       opts->resize_w);
    if (!isfinite(opts->imbalance_zipf) || opts->imbalance_zipf < 0 || opts->imbalance_zipf > 20)
        return nc_fail(err, NC_EUSAGE, "imbalance: Zipf exponent %g must be in [0, 20]", opts->imbalance_zipf);
    if (opts->train_limit < 0) return nc_fail(err, NC_EUSAGE, "train limit: %d images", opts->train_limit);
    strcpy(ds->name, sp.name);
    strcpy(ds->source, sp.path);
    switch (sp.kind) {
    case DATA_SRC_IDX: rc = data_read_idx(sp.path, sp.fashion, ds, err); break;
    case DATA_SRC_CIFAR10: rc = data_read_cifar(sp.path, 0, 0, ds, err); break;
    case DATA_SRC_CIFAR100: rc = data_read_cifar(sp.path, 1, sp.coarse, ds, err); break;
    case DATA_SRC_FOLDER: rc = data_read_folder(sp.path, opts, ds, err); break;
    case DATA_SRC_PACKED: rc = data_read_packed(sp.path, ds, err); break;
    case DATA_SRC_SYNTH: rc = data_synth(&sp, opts->seed, ds, err); break;
    }
    if (rc) {
        data_free(ds);
        return rc;
    }
    if (opts->resize_h > 0) {
        split_resize(&ds->train, opts->resize_h, opts->resize_w);
        split_resize(&ds->test, opts->resize_h, opts->resize_w);
    }
    if (opts->imbalance_zipf > 0) data_imbalance(ds, opts->imbalance_zipf, opts->seed);
    if (opts->train_limit > 0) data_limit(ds, opts->train_limit, opts->seed);
    return NC_OK;
}

static void split_copy(DataSplit *dst, const DataSplit *src) {
    *dst = *src;
    size_t isz = (size_t)src->h * src->w * src->c;
    dst->pixels = nc_malloc(isz * (size_t)(src->n > 0 ? src->n : 1));
    dst->labels = nc_malloc(sizeof(int32_t) * (size_t)(src->n > 0 ? src->n : 1));
    memcpy(dst->pixels, src->pixels, isz * (size_t)src->n);
    memcpy(dst->labels, src->labels, sizeof(int32_t) * (size_t)src->n);
}

void data_select(const Dataset *full, const DataOpts *opts, Dataset *out) {
    *out = *full;
    out->class_names = nc_malloc(sizeof(char *) * (size_t)(full->num_classes > 0 ? full->num_classes : 1));
    for (int i = 0; i < full->num_classes; i++) out->class_names[i] = nc_strdup(full->class_names[i]);
    split_copy(&out->train, &full->train);
    split_copy(&out->test, &full->test);
    if (opts->imbalance_zipf > 0) data_imbalance(out, opts->imbalance_zipf, opts->seed);
    if (opts->train_limit > 0) data_limit(out, opts->train_limit, opts->seed);
}

void data_stats(const Dataset *ds, const DataSplit *s, DataStats *st) {
    memset(st, 0, sizeof *st);
    st->n = s->n;
    st->per_class = nc_calloc(ds->num_classes > 0 ? (size_t)ds->num_classes : 1, sizeof(int));
    for (int i = 0; i < s->n; i++)
        if (s->labels[i] >= 0 && s->labels[i] < ds->num_classes) st->per_class[s->labels[i]]++;
    int c = s->c < 4 ? s->c : 4;
    if (s->n == 0 || c <= 0) return;
    /* exact integer sums of p and p^2 per channel, then mean and std of p / 255 */
    unsigned long long sum[4] = {0}, sq[4] = {0};
    size_t hw = (size_t)s->h * s->w;
    #pragma omp parallel for schedule(static) reduction(+ : sum[:4], sq[:4])
    for (int i = 0; i < s->n; i++) {
        const uint8_t *p = s->pixels + (size_t)i * hw * s->c;
        unsigned long long a[4] = {0}, b[4] = {0};
        for (size_t j = 0; j < hw; j++)
            for (int ch = 0; ch < c; ch++) {
                unsigned v = p[j * s->c + ch];
                a[ch] += v;
                b[ch] += v * v;
            }
        for (int ch = 0; ch < c; ch++) {
            sum[ch] += a[ch];
            sq[ch] += b[ch];
        }
    }
    double cnt = (double)s->n * (double)hw;
    for (int ch = 0; ch < c; ch++) {
        double m = (double)sum[ch] / cnt, v = (double)sq[ch] / cnt - m * m;
        st->mean[ch] = m / 255.0;
        st->std[ch] = sqrt(v > 0 ? v : 0) / 255.0;
    }
}

void data_norm_stats(const Dataset *ds, const DataSplit *s, float mean[3], float std[3]) {
    DataStats st;
    data_stats(ds, s, &st);
    for (int ch = 0; ch < 3; ch++) {
        int c = ch < s->c ? ch : 0;
        mean[ch] = (float)st.mean[c];
        std[ch] = (float)(st.std[c] > 1e-6 ? st.std[c] : 1.0);
    }
    free(st.per_class);
}
