// safetensors.c -- the safetensors reader (validates everything) and an atomic writer.
#include "ncelab/safetensors.h"
#include "ncelab/jsonio.h"
#include "ncelab/utf8.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host (the format is little-endian)"
#endif

static const struct { const char *name; size_t size; } dtypes[] = {
    [ST_F64] = {"F64", 8}, [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2},
    [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4}, [ST_I16] = {"I16", 2}, [ST_I8] = {"I8", 1},
    [ST_U8] = {"U8", 1},   [ST_BOOL] = {"BOOL", 1},
};
_Static_assert(sizeof(size_t) == 8, "safetensors.c assumes a 64-bit size_t");
#define NDTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

size_t st_dtype_size(StDtype dt) { return (int)dt >= 0 && (int)dt < NDTYPES ? dtypes[dt].size : 0; }

const char *st_dtype_name(StDtype dt) { return (int)dt >= 0 && (int)dt < NDTYPES ? dtypes[dt].name : "?"; }

int st_dtype_parse(const char *name, StDtype *out) {
    for (int i = 0; i < NDTYPES; i++)
        if (strcmp(name, dtypes[i].name) == 0) {
            *out = (StDtype)i;
            return 0;
        }
    return -1;
}

/* ---------------------------------------------------------------- reader */

/* json_u64: a JSON number that is a non-negative integer exactly representable (<= 2^53). */
static int json_u64(const cJSON *it, uint64_t *out) {
    if (!cJSON_IsNumber(it)) return -1;
    double d = it->valuedouble;
    if (!isfinite(d) || d < 0 || d != floor(d) || d > 9007199254740992.0) return -1;
    *out = (uint64_t)d;
    return 0;
}

/* One tensor entry while validating: its index in f->tensors and its byte range. */
typedef struct { uint64_t begin, end; int idx; } Span;

static int cmp_span(const void *a, const void *b) {
    const Span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* parse_metadata: "__metadata__" must be an object of string values. */
static int parse_metadata(StFile *f, const cJSON *md, NcError *err) {
    if (!cJSON_IsObject(md))
        return nc_fail(err, NC_EFILE, "%s: safetensors __metadata__ is not an object", f->path);
    int n = cJSON_GetArraySize(md);
    f->meta_keys = nc_calloc((size_t)n + 1, sizeof(char *));
    f->meta_vals = nc_calloc((size_t)n + 1, sizeof(char *));
    for (const cJSON *it = md->child; it; it = it->next) {
        if (!cJSON_IsString(it) || !it->valuestring)
            return nc_fail(err, NC_EFILE, "%s: safetensors __metadata__ value of \"%s\" is not a string",
                           f->path, it->string);
        for (int j = 0; j < f->nmeta; j++)
            if (strcmp(f->meta_keys[j], it->string) == 0)
                return nc_fail(err, NC_EFILE, "%s: safetensors __metadata__ key \"%s\" appears twice",
                               f->path, it->string);
        f->meta_keys[f->nmeta] = nc_strdup(it->string);
        f->meta_vals[f->nmeta] = nc_strdup(it->valuestring);
        f->nmeta++;
    }
    return NC_OK;
}

/* parse_tensor: one header entry -> f->tensors[f->ntensors] (data not yet pointed). */
static int parse_tensor(StFile *f, const cJSON *e, uint64_t datalen, Span *span, NcError *err) {
    const char *p = f->path, *name = e->string;
    if (name[0] == '\0') return nc_fail(err, NC_EFILE, "%s: safetensors tensor with an empty name", p);
    if (!cJSON_IsObject(e)) return nc_fail(err, NC_EFILE, "%s: tensor \"%s\": entry is not an object", p, name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(jd) || !jd->valuestring)
        return nc_fail(err, NC_EFILE, "%s: tensor \"%s\": missing or non-string \"dtype\"", p, name);
    StDtype dt;
    if (st_dtype_parse(jd->valuestring, &dt) != 0)
        return nc_fail(err, NC_EFILE,
                       "%s: tensor \"%s\": unknown dtype \"%.40s\" (known: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)",
                       p, name, jd->valuestring);
    if (!cJSON_IsArray(js))
        return nc_fail(err, NC_EFILE, "%s: tensor \"%s\": missing or non-array \"shape\"", p, name);
    int ndim = cJSON_GetArraySize(js);
    if (ndim > ST_MAX_DIMS)
        return nc_fail(err, NC_EFILE, "%s: tensor \"%s\": %d dimensions (at most %d supported)", p, name, ndim,
                       ST_MAX_DIMS);
    StTensor *t = &f->tensors[f->ntensors];
    t->dtype = dt;
    t->ndim = ndim;
    uint64_t numel = 1;
    int overflow = 0, d = 0;
    for (const cJSON *it = js->child; it; it = it->next, d++) {
        uint64_t v;
        if (json_u64(it, &v) != 0)
            return nc_fail(err, NC_EFILE, "%s: tensor \"%s\": shape[%d] is not a non-negative integer", p, name, d);
        t->shape[d] = (int64_t)v;
        if (v != 0 && numel > UINT64_MAX / v) overflow = 1;
        else numel *= v;
    }
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] == 0) overflow = 0, numel = 0; /* an empty tensor, however large the other dims */
    size_t es = st_dtype_size(dt);
    if (overflow || numel > UINT64_MAX / es)
        return nc_fail(err, NC_EFILE, "%s: tensor \"%s\": shape too large", p, name);
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return nc_fail(err, NC_EFILE, "%s: tensor \"%s\": \"data_offsets\" is not a pair [begin, end]", p, name);
    uint64_t begin, end;
    if (json_u64(jo->child, &begin) != 0 || json_u64(jo->child->next, &end) != 0)
        return nc_fail(err, NC_EFILE, "%s: tensor \"%s\": data_offsets are not non-negative integers", p, name);
    if (begin > end)
        return nc_fail(err, NC_EFILE, "%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64 "] decrease", p,
                       name, begin, end);
    if (end > datalen)
        return nc_fail(err, NC_EFILE,
                       "%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64
                       "] run past the end of the data buffer (%" PRIu64 " bytes; truncated file?)",
                       p, name, begin, end, datalen);
    if (end - begin != numel * es) {
        char sh[160] = "";
        size_t o = 0;
        for (int i = 0; i < ndim && o < sizeof sh - 24; i++)
            o += (size_t)snprintf(sh + o, sizeof sh - o, "%s%" PRId64, i ? ", " : "", t->shape[i]);
        return nc_fail(err, NC_EFILE,
                       "%s: tensor \"%s\": shape [%s] of %s needs %" PRIu64 " bytes but data_offsets span %" PRIu64,
                       p, name, sh, jd->valuestring, numel * es, end - begin);
    }
    t->numel = (size_t)numel;
    t->nbytes = (size_t)(numel * es);
    t->name = nc_strdup(name);
    span->begin = begin;
    span->end = end;
    span->idx = f->ntensors;
    f->ntensors++;
    return NC_OK;
}

/* check_header_length: the first 8 bytes of a file of len bytes (b) give a header length that
   fits in the file and below ST_MAX_HEADER. */
static int check_header_length(const char *path, const unsigned char *b, size_t len, uint64_t *hlen, NcError *err) {
    if (len < 8)
        return nc_fail(err, NC_EFILE, "%s: not a safetensors file: %zu bytes, shorter than the 8-byte header length",
                       path, len);
    *hlen = 0;
    for (int i = 7; i >= 0; i--) *hlen = *hlen << 8 | b[i];
    if (*hlen > len - 8)
        return nc_fail(err, NC_EFILE,
                       "%s: safetensors header length %" PRIu64 " is larger than the %zu bytes after it (truncated "
                       "or not a safetensors file)",
                       path, *hlen, len - 8);
    if (*hlen >= ST_MAX_HEADER)
        return nc_fail(err, NC_EFILE, "%s: safetensors header length %" PRIu64 " is at or above the %u-byte limit",
                       path, *hlen, ST_MAX_HEADER);
    return NC_OK;
}

/* read_file: the whole file into f->buf, once its size (a regular file: never a device or a pipe,
   which could be read forever) and header length are known to be sound from its first 8 bytes. */
static int read_file(const char *path, StFile *f, NcError *err) {
    size_t size;
    unsigned char head[8] = {0};
    uint64_t hlen;
    int rc = nc_regular_size(path, SIZE_MAX - 1, &size, err);
    if (rc) return rc;
    FILE *fp = fopen(path, "rb");
    if (!fp) return nc_fail(err, NC_EFILE, "%s: cannot open: %s", path, strerror(errno));
    size_t got = fread(head, 1, sizeof head, fp);
    fclose(fp);
    if ((rc = check_header_length(path, head, got == sizeof head ? size : got, &hlen, err))) return rc;
    return nc_read_regular(path, SIZE_MAX - 1, &f->buf, &f->len, err);
}

/* parse: validates f->buf[0..f->len) and points the tensors into it; f->path names it */
static int parse(StFile *f, NcError *err) {
    const char *path = f->path;
    uint64_t hlen;
    int rc = check_header_length(path, (const unsigned char *)f->buf, f->len, &hlen, err);
    if (rc) return rc;
    if (hlen < 2 || f->buf[8] != '{')
        return nc_fail(err, NC_EFILE, "%s: safetensors header does not start with a JSON object", path);
    const char *hdr = f->buf + 8;
    long bad = utf8_invalid(hdr, (size_t)hlen);
    if (bad >= 0)
        return nc_fail(err, NC_EFILE, "%s: safetensors header is not valid UTF-8 (byte %ld)", path, bad);
    char what[sizeof err->msg];
    snprintf(what, sizeof what, "%s: safetensors header", path);
    cJSON *doc;
    if ((rc = json_parse(hdr, (size_t)hlen, what, &doc, err))) return rc;
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return nc_fail(err, NC_EFILE, "%s: safetensors header is not a JSON object", path);
    }
    uint64_t datalen = f->len - 8 - hlen;
    const char *data = f->buf + 8 + hlen;
    int n = cJSON_GetArraySize(doc);
    f->tensors = nc_calloc((size_t)n + 1, sizeof(StTensor));
    Span *spans = nc_calloc((size_t)n + 1, sizeof(Span));
    int seen_md = 0;
    rc = NC_OK;
    for (const cJSON *e = doc->child; e && rc == NC_OK; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (seen_md++) rc = nc_fail(err, NC_EFILE, "%s: safetensors __metadata__ appears twice", path);
            else rc = parse_metadata(f, e, err);
        } else {
            rc = parse_tensor(f, e, datalen, &spans[f->ntensors], err);
        }
    }
    cJSON_Delete(doc);
    if (rc == NC_OK && f->ntensors > 1) {
        /* names unique */
        char **names = nc_malloc((size_t)f->ntensors * sizeof(char *));
        for (int i = 0; i < f->ntensors; i++) names[i] = f->tensors[i].name;
        qsort(names, (size_t)f->ntensors, sizeof(char *), cmp_str);
        for (int i = 1; i < f->ntensors && rc == NC_OK; i++)
            if (strcmp(names[i - 1], names[i]) == 0)
                rc = nc_fail(err, NC_EFILE, "%s: safetensors tensor name \"%s\" appears twice", path, names[i]);
        free(names);
        /* byte ranges disjoint (empty tensors overlap nothing) */
        qsort(spans, (size_t)f->ntensors, sizeof(Span), cmp_span);
        int last = -1;
        for (int i = 0; i < f->ntensors && rc == NC_OK; i++) {
            if (spans[i].begin == spans[i].end) continue;
            if (last >= 0 && spans[i].begin < spans[last].end)
                rc = nc_fail(err, NC_EFILE,
                             "%s: safetensors tensors \"%s\" [%" PRIu64 ", %" PRIu64 ") and \"%s\" [%" PRIu64
                             ", %" PRIu64 ") overlap",
                             path, f->tensors[spans[last].idx].name, spans[last].begin, spans[last].end,
                             f->tensors[spans[i].idx].name, spans[i].begin, spans[i].end);
            last = i;
        }
    }
    if (rc == NC_OK) {
        /* point the tensors at their bytes; copy the ones misaligned for their dtype */
        f->copies = nc_calloc((size_t)f->ntensors + 1, sizeof(void *));
        for (int i = 0; i < f->ntensors; i++) {
            StTensor *t = &f->tensors[spans[i].idx];
            const char *src = data + spans[i].begin;
            size_t es = st_dtype_size(t->dtype);
            if ((uintptr_t)src % es != 0) {
                void *c = nc_malloc(t->nbytes);
                memcpy(c, src, t->nbytes);
                f->copies[f->ncopies++] = c;
                src = c;
            }
            t->data = src;
        }
    }
    free(spans);
    return rc;
}

int st_load(const char *path, StFile *f, NcError *err) {
    memset(f, 0, sizeof *f);
    f->path = nc_strdup(path);
    int rc = read_file(path, f, err);
    if (!rc) rc = parse(f, err);
    if (rc) st_free(f);
    return rc;
}

int st_load_mem(const void *data, size_t len, const char *name, StFile *f, NcError *err) {
    memset(f, 0, sizeof *f);
    f->path = nc_strdup(name);
    f->buf = nc_malloc(len + 1);
    if (len) memcpy(f->buf, data, len);
    f->buf[len] = '\0';
    f->len = len;
    int rc = parse(f, err);
    if (rc) st_free(f);
    return rc;
}

void st_free(StFile *f) {
    if (!f) return;
    for (int i = 0; i < f->ntensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    for (int i = 0; i < f->nmeta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->meta_keys);
    free(f->meta_vals);
    for (int i = 0; i < f->ncopies; i++) free(f->copies[i]);
    free(f->copies);
    free(f->buf);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const StTensor *st_find(const StFile *f, const char *name) {
    for (int i = 0; i < f->ntensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

static void shape_str(char *s, size_t n, int ndim, const int64_t *shape) {
    size_t o = (size_t)snprintf(s, n, "[");
    for (int i = 0; i < ndim && o < n - 24; i++)
        o += (size_t)snprintf(s + o, n - o, "%s%" PRId64, i ? ", " : "", shape[i]);
    snprintf(s + o, n - o, "]");
}

int st_get(const StFile *f, const char *name, StDtype dt, int ndim, const int64_t *shape,
           const StTensor **out, NcError *err) {
    *out = NULL;
    const StTensor *t = st_find(f, name);
    if (!t) return nc_fail(err, NC_EFILE, "%s: no tensor \"%s\"", f->path, name);
    if (t->dtype != dt)
        return nc_fail(err, NC_EFILE, "%s: tensor \"%s\" is %s, expected %s", f->path, name,
                       st_dtype_name(t->dtype), st_dtype_name(dt));
    int ok = !shape || t->ndim == ndim;
    for (int i = 0; shape && ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char want[200], got[200];
        shape_str(want, sizeof want, ndim, shape);
        shape_str(got, sizeof got, t->ndim, t->shape);
        return nc_fail(err, NC_EFILE, "%s: tensor \"%s\" has shape %s, expected %s", f->path, name, got, want);
    }
    *out = t;
    return NC_OK;
}

const char *st_meta(const StFile *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

int st_meta_double(const StFile *f, const char *key, double *out, NcError *err) {
    const char *v = st_meta(f, key);
    if (!v) return nc_fail(err, NC_EFILE, "%s: no metadata \"%s\"", f->path, key);
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end != '\0' || !isfinite(d))
        return nc_fail(err, NC_EFILE, "%s: metadata \"%s\" = \"%.60s\" is not a finite number", f->path, key, v);
    *out = d;
    return NC_OK;
}

int st_meta_long(const StFile *f, const char *key, long *out, NcError *err) {
    const char *v = st_meta(f, key);
    if (!v) return nc_fail(err, NC_EFILE, "%s: no metadata \"%s\"", f->path, key);
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end != '\0' || errno == ERANGE)
        return nc_fail(err, NC_EFILE, "%s: metadata \"%s\" = \"%.60s\" is not an integer", f->path, key, v);
    *out = x;
    return NC_OK;
}

/* ---------------------------------------------------------------- writer */

typedef struct {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t nbytes;
    const void *data;
    void *owned;  /* the copy made by st_writer_add_copy, or NULL */
} WTensor;

struct StWriter {
    WTensor *t;
    int n, cap;
    char **keys, **vals;
    int nmeta, capmeta;
    NcError first;  /* the first argument error (sticky); code 0 if none */
};

StWriter *st_writer_new(void) { return nc_calloc(1, sizeof(StWriter)); }

void st_writer_free(StWriter *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].owned);
    }
    free(w->t);
    for (int i = 0; i < w->nmeta; i++) {
        free(w->keys[i]);
        free(w->vals[i]);
    }
    free(w->keys);
    free(w->vals);
    free(w);
}

/* wfail: records the first argument error and reports this one. */
static int wfail(StWriter *w, NcError *err, const char *fmt, const char *arg) {
    NcError e;
    nc_fail(&e, NC_EUSAGE, fmt, arg);
    if (!w->first.code) w->first = e;
    if (err) *err = e;
    return NC_EUSAGE;
}

static int add(StWriter *w, const char *name, StDtype dt, int ndim, const int64_t *shape,
               const void *data, int copy, NcError *err) {
    if (!name || !name[0]) return wfail(w, err, "safetensors writer: empty tensor name%s", "");
    if (strcmp(name, "__metadata__") == 0)
        return wfail(w, err, "safetensors writer: \"%s\" is reserved for metadata", name);
    if ((int)dt < 0 || (int)dt >= NDTYPES)
        return wfail(w, err, "safetensors writer: tensor \"%s\": unknown dtype", name);
    if (ndim < 0 || ndim > ST_MAX_DIMS || (ndim > 0 && !shape))
        return wfail(w, err, "safetensors writer: tensor \"%s\": bad number of dimensions", name);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return wfail(w, err, "safetensors writer: tensor \"%s\" added twice", name);
    size_t numel = 1, es = st_dtype_size(dt);
    int empty = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return wfail(w, err, "safetensors writer: tensor \"%s\": negative dimension", name);
        if (shape[i] == 0) empty = 1;
    }
    for (int i = 0; i < ndim && !empty; i++) {
        if ((uint64_t)shape[i] > SIZE_MAX / es / numel)
            return wfail(w, err, "safetensors writer: tensor \"%s\": shape too large", name);
        numel *= (size_t)shape[i];
    }
    if (empty) numel = 0;
    size_t nbytes = numel * es;
    if (nbytes > 0 && !data) return wfail(w, err, "safetensors writer: tensor \"%s\": no data", name);
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->t = nc_realloc(w->t, (size_t)w->cap * sizeof(WTensor));
    }
    WTensor *t = &w->t[w->n++];
    memset(t, 0, sizeof *t);
    t->name = nc_strdup(name);
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->nbytes = nbytes;
    t->data = data;
    if (copy && nbytes > 0) {
        t->owned = nc_malloc(nbytes);
        memcpy(t->owned, data, nbytes);
        t->data = t->owned;
    }
    return NC_OK;
}

int st_writer_add(StWriter *w, const char *name, StDtype dt, int ndim, const int64_t *shape,
                  const void *data, NcError *err) {
    return add(w, name, dt, ndim, shape, data, 0, err);
}

int st_writer_add_copy(StWriter *w, const char *name, StDtype dt, int ndim,
                       const int64_t *shape, const void *data, NcError *err) {
    return add(w, name, dt, ndim, shape, data, 1, err);
}

int st_writer_meta(StWriter *w, const char *key, const char *value, NcError *err) {
    if (!key || !value) return wfail(w, err, "safetensors writer: NULL metadata key or value%s", "");
    for (int i = 0; i < w->nmeta; i++)
        if (strcmp(w->keys[i], key) == 0)
            return wfail(w, err, "safetensors writer: metadata key \"%s\" added twice", key);
    if (w->nmeta == w->capmeta) {
        w->capmeta = w->capmeta ? 2 * w->capmeta : 8;
        w->keys = nc_realloc(w->keys, (size_t)w->capmeta * sizeof(char *));
        w->vals = nc_realloc(w->vals, (size_t)w->capmeta * sizeof(char *));
    }
    w->keys[w->nmeta] = nc_strdup(key);
    w->vals[w->nmeta] = nc_strdup(value);
    w->nmeta++;
    return NC_OK;
}

/* json_str: appends s as a JSON string literal (UTF-8 passes through; controls escaped; a byte
   that is not UTF-8 becomes U+FFFD, so that the reader never refuses what the writer wrote). */
static void json_str(NcBuf *b, const char *s) {
    char *r = utf8_repair(s);
    nc_buf_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)r; *p; p++) {
        if (*p == '"' || *p == '\\') nc_buf_printf(b, "\\%c", *p);
        else if (*p < 0x20) nc_buf_printf(b, "\\u%04x", *p);
        else nc_buf_printf(b, "%c", *p);
    }
    nc_buf_printf(b, "\"");
    free(r);
}

int st_writer_save(StWriter *w, const char *path, NcError *err) {
    if (w->first.code) {
        if (err) *err = w->first;
        return w->first.code;
    }
    NcBuf h = {0};
    nc_buf_printf(&h, "{");
    if (w->nmeta > 0) {
        nc_buf_printf(&h, "\"__metadata__\":{");
        for (int i = 0; i < w->nmeta; i++) {
            if (i) nc_buf_printf(&h, ",");
            json_str(&h, w->keys[i]);
            nc_buf_printf(&h, ":");
            json_str(&h, w->vals[i]);
        }
        nc_buf_printf(&h, "}");
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const WTensor *t = &w->t[i];
        if (i || w->nmeta > 0) nc_buf_printf(&h, ",");
        json_str(&h, t->name);
        nc_buf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) nc_buf_printf(&h, "%s%" PRId64, d ? "," : "", t->shape[d]);
        nc_buf_printf(&h, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + t->nbytes);
        off += t->nbytes;
    }
    nc_buf_printf(&h, "}");
    while (h.len % 8 != 0) nc_buf_printf(&h, " ");
    if (h.len >= ST_MAX_HEADER) {
        nc_buf_free(&h);
        return nc_fail(err, NC_EFILE, "%s: safetensors header would be %zu bytes (limit %u)", path, h.len,
                       ST_MAX_HEADER);
    }
    size_t total = 8 + h.len + (size_t)off;
    unsigned char *out = nc_malloc(total);
    uint64_t hl = h.len;
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)(hl >> (8 * i));
    memcpy(out + 8, h.s, h.len);
    size_t pos = 8 + h.len;
    for (int i = 0; i < w->n; i++) {
        if (w->t[i].nbytes) memcpy(out + pos, w->t[i].data, w->t[i].nbytes);
        pos += w->t[i].nbytes;
    }
    nc_buf_free(&h);
    int rc = nc_write_atomic(path, out, total, err);
    free(out);
    return rc;
}
