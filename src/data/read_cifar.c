// read_cifar.c -- CIFAR-10 and CIFAR-100: which release a directory holds, and the binary one's records of label bytes + CHW planes.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data_internal.h"

#define CIFAR_SIDE 32
#define CIFAR_PLANE (CIFAR_SIDE * CIFAR_SIDE)  /* 1024 pixels per channel */
#define CIFAR_PIXELS (3 * CIFAR_PLANE)         /* 3072 bytes: R plane, G plane, B plane */

static const char *const cifar10_names[10] = {"airplane", "automobile", "bird", "cat", "deer",
                                              "dog", "frog", "horse", "ship", "truck"};

void data_cifar_chw_to_hwc(uint8_t *out, const uint8_t *in) {
    for (int j = 0; j < CIFAR_PLANE; j++) {
        out[3 * j + 0] = in[j];
        out[3 * j + 1] = in[CIFAR_PLANE + j];
        out[3 * j + 2] = in[2 * CIFAR_PLANE + j];
    }
}

int data_cifar_read_files(const char *const *paths, int nfiles, int label_bytes, int label_index,
                          int num_classes, DataSplit *s, NcError *err) {
    memset(s, 0, sizeof *s);
    const long rec = label_bytes + CIFAR_PIXELS;
    long long total = 0;
    long long *count = nc_malloc(sizeof(long long) * (size_t)(nfiles > 0 ? nfiles : 1));
    int rc = NC_OK;
    /* first pass: sizes, so that the split is allocated once */
    for (int f = 0; f < nfiles && !rc; f++) {
        struct stat st;
        if (stat(paths[f], &st) != 0) rc = nc_fail(err, NC_EFILE, "%s: cannot open: %s", paths[f], strerror(errno));
        else if (!S_ISREG(st.st_mode)) rc = nc_fail(err, NC_EFILE, "%s: not a regular file", paths[f]);
        else if (st.st_size == 0) rc = nc_fail(err, NC_EFILE, "%s: empty (no records)", paths[f]);
        else if (st.st_size % rec != 0)
            rc = nc_fail(err, NC_EFILE, "%s: size %lld bytes is not a multiple of the %ld-byte record (%d label byte%s + 3072 pixels): truncated or not a CIFAR-%s file",
                         paths[f], (long long)st.st_size, rec, label_bytes, label_bytes > 1 ? "s" : "",
                         label_bytes > 1 ? "100" : "10");
        else {
            count[f] = st.st_size / rec;
            total += count[f];
            if (total > INT_MAX / 2) rc = nc_fail(err, NC_EFILE, "%s: too many records", paths[f]);
        }
    }
    if (rc) {
        free(count);
        return rc;
    }
    data_split_alloc(s, (int)total, CIFAR_SIDE, CIFAR_SIDE, 3);
    enum { CHUNK = 1024 };
    uint8_t *buf = nc_malloc((size_t)CHUNK * rec);
    long long at = 0;
    for (int f = 0; f < nfiles && !rc; f++) {
        FILE *fp = fopen(paths[f], "rb");
        if (!fp) {
            rc = nc_fail(err, NC_EFILE, "%s: cannot open: %s", paths[f], strerror(errno));
            break;
        }
        for (long long r0 = 0; r0 < count[f] && !rc; r0 += CHUNK) {
            long long m = count[f] - r0 < CHUNK ? count[f] - r0 : CHUNK;
            size_t got = fread(buf, (size_t)rec, (size_t)m, fp);
            if ((long long)got != m) {
                rc = nc_fail(err, NC_EFILE, "%s: truncated at record %lld", paths[f], r0 + (long long)got);
                break;
            }
            for (long long r = 0; r < m; r++) {
                const uint8_t *p = buf + r * rec;
                int label = p[label_index];
                if (label >= num_classes) {
                    rc = nc_fail(err, NC_EFILE, "%s: record %lld: label %d out of range [0, %d)", paths[f], r0 + r,
                                 label, num_classes);
                    break;
                }
                s->labels[at] = label;
                data_cifar_chw_to_hwc(s->pixels + (size_t)at * CIFAR_PIXELS, p + label_bytes);
                at++;
            }
        }
        fclose(fp);
    }
    free(buf);
    free(count);
    if (rc) data_split_free(s);
    return rc;
}

/* Reads exactly k class names, one per line (blank lines skipped), from a text file. */
static int read_names(const char *path, int k, Dataset *ds, NcError *err) {
    uint8_t *text;
    size_t len;
    int rc = data_read_small_file(path, 1 << 20, &text, &len, err);
    if (rc) return rc;
    char **names = nc_calloc((size_t)k, sizeof(char *));
    int n = 0;
    size_t i = 0;
    while (i < len && !rc) {
        size_t j = i;
        while (j < len && text[j] != '\n') j++;
        size_t a = i, b = j;
        while (a < b && (text[a] == ' ' || text[a] == '\t' || text[a] == '\r')) a++;
        while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' || text[b - 1] == '\r')) b--;
        if (b > a) {
            if (n >= k) {
                rc = nc_fail(err, NC_EFILE, "%s: more than %d class names", path, k);
            } else if (memchr(text + a, '\0', b - a)) {
                rc = nc_fail(err, NC_EFILE, "%s: line %d: a NUL byte in a class name", path, n + 1);
            } else {
                names[n] = nc_malloc(b - a + 1);
                memcpy(names[n], text + a, b - a);
                names[n][b - a] = '\0';
                n++;
            }
        }
        i = j + 1;
    }
    if (!rc && n != k) rc = nc_fail(err, NC_EFILE, "%s: %d class names, expected %d", path, n, k);
    if (!rc) data_set_names(ds, k, (const char *const *)names);
    for (int c = 0; c < k; c++) free(names[c]);
    free(names);
    free(text);
    return rc;
}

int data_path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

void data_cifar_default_names(Dataset *ds, int hundred, int k) { data_set_names(ds, k, hundred ? NULL : cifar10_names); }

/* The files of each release: the binary one, the python one (torchvision's), the MATLAB one. */
static const char *const bin10[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                                    "data_batch_5.bin", "test_batch.bin", NULL};
static const char *const py10[] = {"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                                   "test_batch", "batches.meta", NULL};
static const char *const bin100[] = {"train.bin", "test.bin", NULL};
static const char *const py100[] = {"train", "test", "meta", NULL};
static const char *const mat[] = {"data_batch_1.mat", "test_batch.mat", "batches.meta.mat", "train.mat", "test.mat", NULL};

#define ACCEPTED10 "the binary release (cifar-10-batches-bin: data_batch_1..5.bin, test_batch.bin) or the python " \
                   "release (cifar-10-batches-py: data_batch_1..5, test_batch, batches.meta)"
#define ACCEPTED100 "the binary release (cifar-100-binary: train.bin, test.bin) or the python release " \
                    "(cifar-100-python: train, test, meta)"

/* holds_file: one of names is a regular file in dir (its name in *which). */
static int holds_file(const char *dir, const char *const *names, const char **which) {
    for (int i = 0; names[i]; i++) {
        char *p = nc_path_join(dir, names[i]);
        struct stat st;
        int ok = stat(p, &st) == 0 && S_ISREG(st.st_mode);
        free(p);
        if (ok) {
            if (which) *which = names[i];
            return 1;
        }
    }
    return 0;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *data_cifar_guess(const char *dir) {
    if (holds_file(dir, bin10, NULL) || holds_file(dir, py10, NULL)) return "cifar10";
    if (holds_file(dir, bin100, NULL) || holds_file(dir, py100, NULL)) return "cifar100";
    return NULL;
}

/* not_cifar: the message for a directory that holds neither release: what it holds instead, if
   that is recognisable, and the releases that are read. */
static int not_cifar(const char *dir, int hundred, NcError *err) {
    static const char *const subs[] = {"cifar-10-batches-py", "cifar-10-batches-bin", "cifar-100-python", "cifar-100-binary", NULL};
    static const char *const archives[] = {"cifar-10-python.tar.gz", "cifar-10-binary.tar.gz", "cifar-100-python.tar.gz",
                                           "cifar-100-binary.tar.gz", NULL};
    char hint[700];
    const char *which = NULL;
    char *train = nc_path_join(dir, "train"), *test = nc_path_join(dir, "test");
    int folder = is_dir(train) && is_dir(test);
    free(train);
    free(test);
    snprintf(hint, sizeof hint, "no CIFAR-%s files in it", hundred ? "100" : "10");
    for (int i = 0; subs[i]; i++) {
        char *p = nc_path_join(dir, subs[i]);
        int d = is_dir(p);
        free(p);
        if (d) {
            snprintf(hint, sizeof hint, "it holds %s/: use %s:%s/%s", subs[i], strstr(subs[i], "100") ? "cifar100" : "cifar10",
                     dir, subs[i]);
            which = subs[i];
            break;
        }
    }
    if (which) {
        /* the hint names the subdirectory */
    } else if (!hundred && (holds_file(dir, bin100, &which) || holds_file(dir, py100, &which))) {
        snprintf(hint, sizeof hint, "it holds CIFAR-100's %s: use cifar100:%s", which, dir);
    } else if (hundred && (holds_file(dir, bin10, &which) || holds_file(dir, py10, &which))) {
        snprintf(hint, sizeof hint, "it holds CIFAR-10's %s: use cifar10:%s", which, dir);
    } else if (holds_file(dir, mat, &which)) {
        snprintf(hint, sizeof hint, "it holds %s: the MATLAB release is not read", which);
    } else if (holds_file(dir, archives, &which)) {
        snprintf(hint, sizeof hint, "it holds %s: unpack it first (tar xzf)", which);
    } else if (folder) {
        snprintf(hint, sizeof hint, "it holds train/ and test/ folders: for an image folder use folder:%s", dir);
    }
    return nc_fail(err, NC_EFILE, "%s: not a CIFAR-%s directory (%s); ncelab reads %s", dir, hundred ? "100" : "10", hint,
                   hundred ? ACCEPTED100 : ACCEPTED10);
}

int data_read_cifar(const char *dir, int hundred, int coarse, Dataset *ds, NcError *err) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return nc_fail(err, NC_EFILE, "%s: %s (expected %s)", dir, stat(dir, &st) != 0 ? "no such directory" : "not a directory",
                       hundred ? ACCEPTED100 : ACCEPTED10);
    /* the binary release when any of its files is there (so that a missing one is named), else the python one */
    if (!holds_file(dir, hundred ? bin100 : bin10, NULL)) {
        if (holds_file(dir, hundred ? py100 : py10, NULL)) return data_read_cifar_py(dir, hundred, coarse, ds, err);
        return not_cifar(dir, hundred, err);
    }
    int k = hundred ? (coarse ? 20 : 100) : 10, rc;
    int label_bytes = hundred ? 2 : 1, label_index = hundred ? (coarse ? 0 : 1) : 0;
    char *train[5], *test;
    int ntrain = hundred ? 1 : 5;
    if (hundred) {
        train[0] = nc_path_join(dir, "train.bin");
        test = nc_path_join(dir, "test.bin");
    } else {
        for (int i = 0; i < 5; i++) {
            char name[32];
            snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
            train[i] = nc_path_join(dir, name);
        }
        test = nc_path_join(dir, "test_batch.bin");
    }
    rc = data_cifar_read_files((const char *const *)train, ntrain, label_bytes, label_index, k, &ds->train, err);
    if (!rc) rc = data_cifar_read_files((const char *const *)&test, 1, label_bytes, label_index, k, &ds->test, err);
    if (!rc) {
        char *names = nc_path_join(dir, hundred ? (coarse ? "coarse_label_names.txt" : "fine_label_names.txt")
                                                : "batches.meta.txt");
        if (data_path_exists(names)) rc = read_names(names, k, ds, err);
        else data_cifar_default_names(ds, hundred, k);
        free(names);
    }
    for (int i = 0; i < ntrain; i++) free(train[i]);
    free(test);
    return rc;
}
