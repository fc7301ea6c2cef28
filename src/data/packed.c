// packed.c -- the packed dataset file: one header, names, shapes, pixels and labels, checked by CRC-32.
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data_internal.h"

/* Layout, all integers little-endian:
     header (32 bytes): "NCEDATA1" | u32 version (1) | u32 num_classes | u64 payload bytes |
                        u32 CRC-32 (zlib) of the payload | u32 0
     payload: u32 len + name | u32 len + source | num_classes x (u32 len + class name) |
              train u32 n, h, w, c | test u32 n, h, w, c |
              train pixels (n, h, w, c) | train labels (n) i32 | test pixels | test labels */
#define PACKED_MAGIC "NCEDATA1"
#define PACKED_VERSION 1u
#define PACKED_HEADER 32
#define PACKED_MAX_NAME 4096

static void put32(uint8_t **p, uint32_t v) {
    for (int i = 0; i < 4; i++) *(*p)++ = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t **p, uint64_t v) {
    for (int i = 0; i < 8; i++) *(*p)++ = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

static void put_str(uint8_t **p, const char *s) {
    size_t n = strlen(s);
    put32(p, (uint32_t)n);
    memcpy(*p, s, n);
    *p += n;
}

static size_t split_bytes(const DataSplit *s) { return (size_t)s->n * s->h * s->w * s->c; }

int data_convert(const Dataset *ds, const char *path, NcError *err) {
    if (ds->num_classes < 1 || !ds->class_names || ds->train.n < 1)
        return nc_fail(err, NC_EFILE, "%s: nothing to write (an empty dataset)", path);
    const DataSplit *sp[2] = {&ds->train, &ds->test};
    size_t payload = 8 + strlen(ds->name) + strlen(ds->source) + 32;
    for (int k = 0; k < ds->num_classes; k++) {
        if (strlen(ds->class_names[k]) > PACKED_MAX_NAME)
            return nc_fail(err, NC_EFILE, "%s: class name %d is longer than %d bytes", path, k, PACKED_MAX_NAME);
        payload += 4 + strlen(ds->class_names[k]);
    }
    for (int s = 0; s < 2; s++) payload += split_bytes(sp[s]) + 4 * (size_t)sp[s]->n;
    uint8_t *buf = nc_malloc(PACKED_HEADER + payload), *p = buf + PACKED_HEADER;
    put_str(&p, ds->name);
    put_str(&p, ds->source);
    for (int k = 0; k < ds->num_classes; k++) put_str(&p, ds->class_names[k]);
    for (int s = 0; s < 2; s++) {
        put32(&p, (uint32_t)sp[s]->n);
        put32(&p, (uint32_t)sp[s]->h);
        put32(&p, (uint32_t)sp[s]->w);
        put32(&p, (uint32_t)sp[s]->c);
    }
    for (int s = 0; s < 2; s++) {
        size_t nb = split_bytes(sp[s]);
        if (nb) memcpy(p, sp[s]->pixels, nb);
        p += nb;
        for (int i = 0; i < sp[s]->n; i++) put32(&p, (uint32_t)sp[s]->labels[i]);
    }
    uint8_t *h = buf;
    memcpy(h, PACKED_MAGIC, 8);
    h += 8;
    put32(&h, PACKED_VERSION);
    put32(&h, (uint32_t)ds->num_classes);
    put64(&h, payload);
    put32(&h, (uint32_t)crc32_z(crc32_z(0, NULL, 0), buf + PACKED_HEADER, payload));
    put32(&h, 0);
    int rc = nc_write_atomic(path, buf, PACKED_HEADER + payload, err);
    free(buf);
    return rc;
}

/* A bounds-checked cursor over the payload. */
typedef struct {
    const uint8_t *p;
    size_t left;
} Cursor;

static int take(Cursor *c, size_t n, const uint8_t **out) {
    if (n > c->left) return 0;
    *out = c->p;
    c->p += n;
    c->left -= n;
    return 1;
}

static int take32(Cursor *c, uint32_t *v) {
    const uint8_t *q;
    if (!take(c, 4, &q)) return 0;
    *v = get32(q);
    return 1;
}

/* A length-prefixed string of at most max bytes and no NUL, malloc'd. */
static char *take_str(Cursor *c, size_t max) {
    uint32_t n;
    const uint8_t *q;
    if (!take32(c, &n) || n > max || !take(c, n, &q) || memchr(q, '\0', n)) return NULL;
    char *s = nc_malloc((size_t)n + 1);
    memcpy(s, q, n);
    s[n] = '\0';
    return s;
}

int data_packed_parse(const uint8_t *buf, size_t len, const char *path, Dataset *ds, NcError *err) {
    if (len < PACKED_HEADER)
        return nc_fail(err, NC_EFILE, "%s: truncated (%zu bytes; a packed dataset starts with a %d-byte header)", path,
                       len, PACKED_HEADER);
    if (memcmp(buf, PACKED_MAGIC, 8) != 0)
        return nc_fail(err, NC_EFILE, "%s: not a packed ncelab dataset (wrong magic number, expected \"%s\")", path,
                       PACKED_MAGIC);
    uint32_t version = get32(buf + 8), k = get32(buf + 12), crc = get32(buf + 24);
    uint64_t payload = get64(buf + 16);
    if (version != PACKED_VERSION)
        return nc_fail(err, NC_EFILE, "%s: packed format version %u, this ncelab reads version %u", path, version,
                       PACKED_VERSION);
    if (payload > len - PACKED_HEADER)
        return nc_fail(err, NC_EFILE, "%s: truncated (%zu bytes, the header announces %llu)", path, len,
                       (unsigned long long)payload + PACKED_HEADER);
    if (payload < len - PACKED_HEADER)
        return nc_fail(err, NC_EFILE, "%s: %zu bytes after the end of the dataset the header announces", path,
                       (size_t)(len - PACKED_HEADER - payload));
    uint32_t got = (uint32_t)crc32_z(crc32_z(0, NULL, 0), buf + PACKED_HEADER, (size_t)payload);
    if (got != crc)
        return nc_fail(err, NC_EFILE, "%s: checksum mismatch (CRC-32 %08x, the header says %08x): the file is corrupt",
                       path, got, crc);
    if (k < 1 || k > DATA_MAX_CLASSES) return nc_fail(err, NC_EFILE, "%s: %u classes is out of range", path, k);
    Cursor c = {buf + PACKED_HEADER, (size_t)payload};
    int rc = NC_OK;
    char *name = take_str(&c, sizeof ds->name - 1), *source = name ? take_str(&c, sizeof ds->source - 1) : NULL;
    if (!name || !source) rc = nc_fail(err, NC_EFILE, "%s: malformed dataset name or source", path);
    else {
        strcpy(ds->name, name);
        strcpy(ds->source, source);
    }
    free(name);
    free(source);
    if (rc) return rc;
    ds->class_names = nc_calloc(k, sizeof(char *));
    ds->num_classes = (int)k;
    for (uint32_t i = 0; i < k; i++)
        if (!(ds->class_names[i] = take_str(&c, PACKED_MAX_NAME)))
            return nc_fail(err, NC_EFILE, "%s: malformed class name %u", path, i);
    uint32_t dims[2][4];
    for (int s = 0; s < 2; s++)
        for (int d = 0; d < 4; d++)
            if (!take32(&c, &dims[s][d])) return nc_fail(err, NC_EFILE, "%s: malformed split shapes", path);
    DataSplit *sp[2] = {&ds->train, &ds->test};
    const char *sname[2] = {"train", "test"};
    for (int s = 0; s < 2; s++) {
        uint32_t n = dims[s][0], h = dims[s][1], w = dims[s][2], ch = dims[s][3];
        if (n > INT_MAX / 2 || h < 1 || w < 1 || h > DATA_MAX_SIDE || w > DATA_MAX_SIDE ||
            (uint64_t)h * w > DATA_MAX_PIXELS || ch < 1 || ch > 4)
            return nc_fail(err, NC_EFILE, "%s: %s split has implausible shape %u x %u x %u x %u", path, sname[s], n, h, w, ch);
        if (s == 0 && n == 0) return nc_fail(err, NC_EFILE, "%s: no training images: an empty dataset", path);
        size_t isz = (size_t)h * w * ch;
        if (n > c.left / (isz + 4))
            return nc_fail(err, NC_EFILE, "%s: %s split: %u images do not fit in the file", path, sname[s], n);
        const uint8_t *pix = NULL, *lab = NULL;
        if (!take(&c, (size_t)n * isz, &pix) || !take(&c, 4 * (size_t)n, &lab))
            return nc_fail(err, NC_EFILE, "%s: %s split: truncated pixels or labels", path, sname[s]);
        data_split_alloc(sp[s], (int)n, (int)h, (int)w, (int)ch);
        if (n) memcpy(sp[s]->pixels, pix, (size_t)n * isz);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t v = get32(lab + 4 * (size_t)i);
            if (v >= k)
                return nc_fail(err, NC_EFILE, "%s: %s record %u: label %u out of range [0, %u)", path, sname[s], i, v, k);
            sp[s]->labels[i] = (int32_t)v;
        }
    }
    if (c.left) return nc_fail(err, NC_EFILE, "%s: %zu unexplained bytes at the end", path, c.left);
    return NC_OK;
}

int data_read_packed(const char *path, Dataset *ds, NcError *err) {
    uint8_t *buf;
    size_t len;
    int rc = data_read_small_file(path, (size_t)DATA_MAX_BYTES * 2, &buf, &len, err);
    if (rc) return rc;
    char src[sizeof ds->source];
    snprintf(src, sizeof src, "%s", path);
    rc = data_packed_parse(buf, len, path, ds, err);
    free(buf);
    /* the dataset keeps the name it was packed under; its source is now this file */
    if (!rc) strcpy(ds->source, src);
    return rc;
}
