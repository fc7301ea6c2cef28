// jsonio.c -- loading and atomically saving JSON documents with cJSON.
#include "ncelab/jsonio.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* line_of: the 1-based line of byte off in text */
static int line_of(const char *text, size_t len, size_t off) {
    int line = 1;
    for (size_t i = 0; i < off && i < len; i++) line += text[i] == '\n';
    return line;
}

int json_parse(const char *text, size_t len, const char *what, cJSON **out, NcError *err) {
    *out = NULL;
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!doc) {
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        return nc_fail(err, NC_EFILE, "%s: malformed JSON near line %d (byte %zu)", what, line_of(text, len, off), off);
    }
    for (const char *q = end; q < text + len; q++)
        if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') {
            size_t off = (size_t)(q - text);
            cJSON_Delete(doc);
            return nc_fail(err, NC_EFILE, "%s: trailing text after the JSON document at line %d (byte %zu)", what,
                           line_of(text, len, off), off);
        }
    *out = doc;
    return NC_OK;
}

int json_load(const char *path, cJSON **out, NcError *err) {
    *out = NULL;
    char *text;
    size_t len;
    int rc = nc_read_file(path, &text, &len, err);
    if (rc) return rc;
    rc = json_parse(text, len, path, out, err);
    free(text);
    return rc;
}

int json_save(const char *path, const cJSON *doc, NcError *err) {
    char *s = cJSON_Print(doc);
    if (!s) return nc_fail(err, NC_EFILE, "%s: cannot render JSON", path);
    size_t n = strlen(s);
    s = nc_realloc(s, n + 2);
    s[n] = '\n';
    s[n + 1] = '\0';
    int rc = nc_write_atomic(path, s, n + 1, err);
    free(s);
    return rc;
}

cJSON *json_number(double v) {
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

cJSON *json_number_array(const double *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, json_number(v[i]));
    return a;
}

cJSON *json_matrix(const double *m, int r, int c) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < r; i++) cJSON_AddItemToArray(a, json_number_array(m + (size_t)i * c, c));
    return a;
}

int json_get_number(const cJSON *v, double *out) {
    if (cJSON_IsNumber(v)) { *out = v->valuedouble; return 1; }
    if (cJSON_IsNull(v)) { *out = NAN; return 1; }
    return 0;
}

int json_get_int(const cJSON *v, double lo, double hi, double *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double x = v->valuedouble;
    if (!(x >= lo && x <= hi) || x != floor(x)) return 0;
    *out = x;
    return 1;
}
