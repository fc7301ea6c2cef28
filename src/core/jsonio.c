// jsonio.c -- loading and atomically saving JSON documents with cJSON.
#include "ncelab/jsonio.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int json_load(const char *path, cJSON **out, NcError *err) {
    *out = NULL;
    char *text;
    size_t len;
    int rc = nc_read_file(path, &text, &len, err);
    if (rc) return rc;
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!doc) {
        long off = end ? (long)(end - text) : -1;
        int line = 1;
        for (long i = 0; i < off && i < (long)len; i++) line += text[i] == '\n';
        free(text);
        return nc_fail(err, NC_EFILE, "%s: malformed JSON near line %d (byte %ld)", path, line, off);
    }
    free(text);
    *out = doc;
    return NC_OK;
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
