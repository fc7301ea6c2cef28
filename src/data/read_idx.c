// read_idx.c -- IDX files (MNIST, Fashion-MNIST), plain or gzipped through zlib, into gray 28x28 splits.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data_internal.h"

static const char *const fmnist_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* gz_read_all: reads up to want bytes into buf; returns the count, or -1 on a zlib error. */
static long long gz_read_all(gzFile f, uint8_t *buf, size_t want) {
    size_t got = 0;
    while (got < want) {
        size_t ask = want - got > (1u << 30) ? (1u << 30) : want - got;
        int r = gzread(f, buf + got, (unsigned)ask);
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (long long)got;
}

static int gz_fail(gzFile f, const char *path, const char *what, NcError *err) {
    int zerr = 0;
    const char *m = gzerror(f, &zerr);
    return nc_fail(err, NC_EFILE, "%s: %s: %s", path, what, zerr == Z_ERRNO ? strerror(errno) : m);
}

int data_idx_read_file(const char *path, uint32_t magic, uint8_t **data, int *n, int *h, int *w, NcError *err) {
    *data = NULL;
    *n = *h = *w = 0;
    struct stat st;
    if (stat(path, &st) != 0) return nc_fail(err, NC_EFILE, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return nc_fail(err, NC_EFILE, "%s: not a regular file", path);
    gzFile f = gzopen(path, "rb");
    if (!f) return nc_fail(err, NC_EFILE, "%s: cannot open: %s", path, strerror(errno));
    gzbuffer(f, 1 << 18);
    const char *kind = magic == DATA_IDX_IMAGES ? "images" : "labels";
    int ndim = magic == DATA_IDX_IMAGES ? 3 : 1, rc = NC_OK;
    uint8_t head[16];
    size_t hlen = 4 + 4 * (size_t)ndim;
    uint8_t *buf = NULL;
    uint32_t dn = 0, dh = 0, dw = 0;
    long long got = gz_read_all(f, head, hlen);
    if (got < 0) {
        rc = gz_fail(f, path, "corrupt gzip data", err);
        goto done;
    }
    if (got < 4 || be32(head) != magic) {
        if (got < 4) rc = nc_fail(err, NC_EFILE, "%s: truncated IDX header (%lld bytes)", path, got);
        else rc = nc_fail(err, NC_EFILE, "%s: magic number 0x%08x, expected 0x%08x (IDX unsigned-byte %s)", path,
                          be32(head), magic, kind);
        goto done;
    }
    if (got < (long long)hlen) {
        rc = nc_fail(err, NC_EFILE, "%s: truncated IDX header (%lld of %zu bytes)", path, got, hlen);
        goto done;
    }
    dn = be32(head + 4);
    dh = ndim == 3 ? be32(head + 8) : 1;
    dw = ndim == 3 ? be32(head + 12) : 1;
    if (dn == 0) {
        rc = nc_fail(err, NC_EFILE, "%s: no %s (count 0): an empty dataset", path, kind);
        goto done;
    }
    if (dn > INT_MAX / 2 || dh == 0 || dw == 0 || dh > DATA_MAX_SIDE || dw > DATA_MAX_SIDE ||
        (unsigned long long)dh * dw > DATA_MAX_PIXELS) {
        rc = nc_fail(err, NC_EFILE, "%s: implausible dimensions %u x %u x %u", path, dn, dh, dw);
        goto done;
    }
    unsigned long long want = (unsigned long long)dn * dh * dw;
    if (want > DATA_MAX_BYTES) {
        rc = nc_fail(err, NC_EFILE, "%s: %llu bytes of %s is more than allowed", path, want, kind);
        goto done;
    }
    /* grow the buffer as data arrives, so that a lying header on a short file costs little */
    size_t cap = want < (1u << 24) ? (size_t)want : (1u << 24), have = 0;
    buf = nc_malloc(cap);
    for (;;) {
        long long r = gz_read_all(f, buf + have, cap - have);
        if (r < 0) {
            rc = gz_fail(f, path, "corrupt gzip data", err);
            goto done;
        }
        have += (size_t)r;
        if (have < cap || cap == want) break;
        cap = cap * 2 < want ? cap * 2 : (size_t)want;
        buf = nc_realloc(buf, cap);
    }
    if (have < want) {
        rc = nc_fail(err, NC_EFILE, "%s: truncated: %zu of %llu bytes of %s (%u x %u x %u)", path, have, want, kind,
                     dn, dh, dw);
        goto done;
    }
    uint8_t extra;
    got = gz_read_all(f, &extra, 1);
    if (got < 0) rc = gz_fail(f, path, "corrupt gzip data", err);
    else if (got > 0) rc = nc_fail(err, NC_EFILE, "%s: extra bytes after the %u %s the header announces", path, dn, kind);
done:
    gzclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    *data = buf;
    *n = (int)dn;
    *h = (int)dh;
    *w = (int)dw;
    return NC_OK;
}

/* Finds DIR/base.gz or DIR/base; NULL (and an error) if neither exists. */
static char *idx_find(const char *dir, const char *base, NcError *err) {
    char name[64];
    snprintf(name, sizeof name, "%s.gz", base);
    char *p = nc_path_join(dir, name);
    struct stat st;
    if (stat(p, &st) == 0) return p;
    free(p);
    p = nc_path_join(dir, base);
    if (stat(p, &st) == 0) return p;
    free(p);
    nc_fail(err, NC_EFILE, "%s: missing %s (or %s.gz)", dir, base, base);
    return NULL;
}

static int idx_split(const char *dir, const char *images, const char *labels, DataSplit *s, NcError *err) {
    char *ip = idx_find(dir, images, err), *lp = ip ? idx_find(dir, labels, err) : NULL;
    if (!ip || !lp) {
        free(ip);
        return NC_EFILE;
    }
    uint8_t *pix = NULL, *lab = NULL;
    int n, h, w, nl, one, rc;
    rc = data_idx_read_file(ip, DATA_IDX_IMAGES, &pix, &n, &h, &w, err);
    if (!rc) rc = data_idx_read_file(lp, DATA_IDX_LABELS, &lab, &nl, &one, &one, err);
    if (!rc && nl != n) rc = nc_fail(err, NC_EFILE, "%s: %d labels, but %s has %d images", lp, nl, ip, n);
    for (int i = 0; !rc && i < n; i++)
        if (lab[i] >= 10) rc = nc_fail(err, NC_EFILE, "%s: record %d: label %d out of range [0, 10)", lp, i, lab[i]);
    if (!rc) {
        /* (n, h, w) bytes are already (n, h, w, 1) HWC */
        s->n = n;
        s->h = h;
        s->w = w;
        s->c = 1;
        s->pixels = pix;
        s->labels = nc_malloc(sizeof(int32_t) * (size_t)n);
        for (int i = 0; i < n; i++) s->labels[i] = lab[i];
        pix = NULL;
    }
    free(pix);
    free(lab);
    free(ip);
    free(lp);
    return rc;
}

int data_read_idx(const char *dir, int fashion, Dataset *ds, NcError *err) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return nc_fail(err, NC_EFILE, "%s: no such directory (expected train-images-idx3-ubyte[.gz] and friends)", dir);
    int rc = idx_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", &ds->train, err);
    if (!rc) rc = idx_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", &ds->test, err);
    if (!rc && (ds->test.h != ds->train.h || ds->test.w != ds->train.w))
        rc = nc_fail(err, NC_EFILE, "%s: test images are %d x %d but training images %d x %d", dir, ds->test.h,
                     ds->test.w, ds->train.h, ds->train.w);
    if (!rc) data_set_names(ds, 10, fashion ? fmnist_names : NULL);
    return rc;
}
