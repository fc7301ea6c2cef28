// read_cifar_py.c -- CIFAR-10 and CIFAR-100's python release (torchvision's cifar-10-batches-py, cifar-100-python): pickled batches.
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"
#include "pickle.h"

/* A pickled batch file: CIFAR-100's training batch is 155 MB; a Python 2 byte string holds at most 2 GiB. */
#define DATA_MAX_PICKLE ((size_t)1 << 32)

static int parse_dict(const uint8_t *buf, size_t len, const char *path, Pickle *pk, NcError *err) {
    int rc = pickle_parse(buf, len, path, pk, err);
    if (rc) return rc;
    if (pk->root->kind != PK_DICT) {
        rc = nc_fail(err, NC_EFILE, "%s: holds a %s, not the dict of a CIFAR batch", path, pickle_kind_name(pk->root->kind));
        pickle_free(pk);
    }
    return rc;
}

/* get: the entry key of the batch dict, of the given kind; NC_EFILE naming the file and key (and
   the keys there are, when it is missing). */
static int get(const Pickle *pk, const char *path, const char *key, PickleKind kind, const PickleObj **out, NcError *err) {
    const PickleObj *o = pickle_get(pk->root, key);
    *out = o;
    if (!o) {
        char keys[300];
        size_t j = 0;
        keys[0] = '\0';
        for (size_t i = 0; i < pk->root->seq.n && j < sizeof keys - 40; i += 2) {
            const PickleObj *kk = pk->root->seq.v[i];
            j += (size_t)snprintf(keys + j, sizeof keys - j, "%s'", i ? ", " : "");
            for (size_t c = 0; c < kk->s.len && c < 24 && j < sizeof keys - 8; c++)
                keys[j++] = kk->s.p[c] >= 0x20 && kk->s.p[c] < 0x7f ? (char)kk->s.p[c] : '?';
            j += (size_t)snprintf(keys + j, sizeof keys - j, "%s'", kk->s.len > 24 ? "..." : "");
        }
        return nc_fail(err, NC_EFILE, "%s: no '%s' entry (its keys: %s)", path, key, pk->root->seq.n ? keys : "none");
    }
    if (o->kind != kind)
        return nc_fail(err, NC_EFILE, "%s: byte %zu: '%s' is a %s, a %s expected", path, o->at, key, pickle_kind_name(o->kind),
                       pickle_kind_name(kind));
    return NC_OK;
}

int data_cifar_py_batch(const uint8_t *buf, size_t len, const char *path, const char *label_key, int num_classes,
                        DataSplit *s, NcError *err) {
    memset(s, 0, sizeof *s);
    Pickle pk;
    int rc = parse_dict(buf, len, path, &pk, err);
    if (rc) return rc;
    const PickleObj *data, *labels;
    if ((rc = get(&pk, path, "data", PK_ARRAY, &data, err)) || (rc = get(&pk, path, label_key, PK_LIST, &labels, err))) {
        pickle_free(&pk);
        return rc;
    }
    const PickleArray *a = data->arr;
    if (a->ndim != 2 || a->shape[1] != 3072) {
        char dims[200];
        size_t j = 0;
        for (int i = 0; i < a->ndim && j < sizeof dims - 24; i++)
            j += (size_t)snprintf(dims + j, sizeof dims - j, "%s%lld", i ? ", " : "", (long long)a->shape[i]);
        dims[j] = '\0';
        rc = nc_fail(err, NC_EFILE, "%s: byte %zu: 'data' has shape (%s); (n, 3072) expected: n images of 3 planes of 32 x 32",
                     path, data->at, dims);
    }
    else if (a->shape[0] == 0)
        rc = nc_fail(err, NC_EFILE, "%s: 'data' holds no images", path);
    else if (a->shape[0] > INT_MAX / 2)
        rc = nc_fail(err, NC_EFILE, "%s: too many images (%lld)", path, (long long)a->shape[0]);
    else if ((int64_t)labels->seq.n != a->shape[0])
        rc = nc_fail(err, NC_EFILE, "%s: %zu entries in '%s' for %lld images in 'data'", path, labels->seq.n, label_key,
                     (long long)a->shape[0]);
    int n = rc ? 0 : (int)a->shape[0];
    for (int r = 0; r < n && !rc; r++) {
        const PickleObj *l = labels->seq.v[r];
        if (l->kind != PK_INT)
            rc = nc_fail(err, NC_EFILE, "%s: record %d: the label is a %s (byte %zu), an int expected", path, r,
                         pickle_kind_name(l->kind), l->at);
        else if (l->i < 0 || l->i >= num_classes)
            rc = nc_fail(err, NC_EFILE, "%s: record %d: label %lld out of range [0, %d)", path, r, (long long)l->i, num_classes);
    }
    if (!rc) {
        data_split_alloc(s, n, 32, 32, 3);
        uint8_t *row = a->fortran ? nc_malloc(3072) : NULL;
        for (int r = 0; r < n; r++) {
            s->labels[r] = (int32_t)labels->seq.v[r]->i;
            const uint8_t *in = a->data + (size_t)r * 3072;
            if (a->fortran) {  /* column-major: element (r, j) at j * n + r */
                for (size_t j = 0; j < 3072; j++) row[j] = a->data[j * (size_t)n + (size_t)r];
                in = row;
            }
            data_cifar_chw_to_hwc(s->pixels + (size_t)r * 3072, in);
        }
        free(row);
    }
    pickle_free(&pk);
    return rc;
}

int data_cifar_py_names(const uint8_t *buf, size_t len, const char *path, const char *key, int k, Dataset *ds,
                        NcError *err) {
    Pickle pk;
    int rc = parse_dict(buf, len, path, &pk, err);
    if (rc) return rc;
    const PickleObj *list;
    if ((rc = get(&pk, path, key, PK_LIST, &list, err))) {
        pickle_free(&pk);
        return rc;
    }
    if (list->seq.n != (size_t)k)
        rc = nc_fail(err, NC_EFILE, "%s: '%s' holds %zu class names, expected %d", path, key, list->seq.n, k);
    char **names = nc_calloc((size_t)k, sizeof(char *));
    for (int c = 0; c < k && !rc; c++) {
        const PickleObj *o = list->seq.v[c];
        if (o->kind != PK_BYTES && o->kind != PK_STR)
            rc = nc_fail(err, NC_EFILE, "%s: '%s'[%d] is a %s (byte %zu), a string expected", path, key, c,
                         pickle_kind_name(o->kind), o->at);
        else if (memchr(o->s.p, '\0', o->s.len))
            rc = nc_fail(err, NC_EFILE, "%s: '%s'[%d]: a NUL byte in a class name", path, key, c);
        else {
            names[c] = nc_malloc(o->s.len + 1);
            memcpy(names[c], o->s.p, o->s.len);
            names[c][o->s.len] = '\0';
        }
    }
    if (!rc) data_set_names(ds, k, (const char *const *)names);
    for (int c = 0; c < k; c++) free(names[c]);
    free(names);
    pickle_free(&pk);
    return rc;
}

/* read_batches: the pickled batch files, one after another, into s. */
static int read_batches(const char *const *paths, int nfiles, const char *label_key, int k, DataSplit *s, NcError *err) {
    memset(s, 0, sizeof *s);
    int rc = NC_OK;
    for (int f = 0; f < nfiles && !rc; f++) {
        uint8_t *buf;
        size_t len;
        DataSplit b;
        if ((rc = data_read_small_file(paths[f], DATA_MAX_PICKLE, &buf, &len, err))) break;
        rc = data_cifar_py_batch(buf, len, paths[f], label_key, k, &b, err);
        free(buf);
        if (rc) break;
        if (!s->pixels) {
            *s = b;
            continue;
        }
        if (b.n > INT_MAX / 2 - s->n) {
            rc = nc_fail(err, NC_EFILE, "%s: too many images", paths[f]);
        } else {
            s->pixels = nc_realloc(s->pixels, (size_t)(s->n + b.n) * 3072);
            s->labels = nc_realloc(s->labels, sizeof(int32_t) * (size_t)(s->n + b.n));
            memcpy(s->pixels + (size_t)s->n * 3072, b.pixels, (size_t)b.n * 3072);
            memcpy(s->labels + s->n, b.labels, sizeof(int32_t) * (size_t)b.n);
            s->n += b.n;
        }
        data_split_free(&b);
    }
    if (rc) data_split_free(s);
    return rc;
}

int data_read_cifar_py(const char *dir, int hundred, int coarse, Dataset *ds, NcError *err) {
    int k = hundred ? (coarse ? 20 : 100) : 10, ntrain = hundred ? 1 : 5, rc;
    const char *label_key = hundred ? (coarse ? "coarse_labels" : "fine_labels") : "labels";
    char *train[5], *test, *meta;
    if (hundred) {
        train[0] = nc_path_join(dir, "train");
        test = nc_path_join(dir, "test");
        meta = nc_path_join(dir, "meta");
    } else {
        for (int i = 0; i < 5; i++) {
            char name[32];
            snprintf(name, sizeof name, "data_batch_%d", i + 1);
            train[i] = nc_path_join(dir, name);
        }
        test = nc_path_join(dir, "test_batch");
        meta = nc_path_join(dir, "batches.meta");
    }
    rc = read_batches((const char *const *)train, ntrain, label_key, k, &ds->train, err);
    if (!rc) rc = read_batches((const char *const *)&test, 1, label_key, k, &ds->test, err);
    if (!rc) {
        if (data_path_exists(meta)) {
            uint8_t *buf;
            size_t len;
            rc = data_read_small_file(meta, DATA_MAX_PICKLE, &buf, &len, err);
            if (!rc) {
                const char *key = hundred ? (coarse ? "coarse_label_names" : "fine_label_names") : "label_names";
                rc = data_cifar_py_names(buf, len, meta, key, k, ds, err);
                free(buf);
            }
        } else {
            data_cifar_default_names(ds, hundred, k);
        }
    }
    for (int i = 0; i < ntrain; i++) free(train[i]);
    free(test);
    free(meta);
    return rc;
}
