// ckpt_meta.c -- what a checkpoint says about its encoder (model, input, normalisation, classes,
// dimensions), written into and read back from the safetensors metadata (docs/checkpoint.md).
#include "ncelab/ckpt.h"
#include "ncelab/jsonio.h"
#include "ncelab/utf8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* meta_json: adds key with o printed compactly, and deletes o */
static int meta_json(StWriter *w, const char *key, cJSON *o, NcError *err) {
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    int rc = st_writer_meta(w, key, s ? s : "null", err);
    free(s);
    return rc;
}

static cJSON *float_array(const float *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    return a;
}

int ckpt_meta_write(StWriter *w, const TrainConfig *c, const Net *net, const CkptEncoder *e, NcError *err) {
    char num[32];
    int rc = st_writer_meta(w, "model", net->model, err);
    cJSON *shape = cJSON_CreateArray();
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(net->in_c));
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(net->in_h));
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(net->in_w));
    if (!rc) rc = meta_json(w, "input_shape", shape, err);
    else cJSON_Delete(shape);
    snprintf(num, sizeof num, "%d", net->vals[net->features].c);
    if (!rc) rc = st_writer_meta(w, "feature_dim", num, err);
    snprintf(num, sizeof num, "%d", net->vals[net->embeddings].c);
    if (!rc) rc = st_writer_meta(w, "head_dim", num, err);
    if (!rc) rc = st_writer_meta(w, "data", c->data, err);
    if (!rc && e) {
        cJSON *norm = cJSON_CreateObject();
        cJSON_AddItemToObject(norm, "mean", float_array(e->mean, net->in_c));
        cJSON_AddItemToObject(norm, "std", float_array(e->std, net->in_c));
        rc = meta_json(w, "normalization", norm, err);
    }
    if (!rc && e && e->class_names) {
        cJSON *names = cJSON_CreateArray();
        for (int i = 0; i < e->num_classes; i++) cJSON_AddItemToArray(names, utf8_json_string(e->class_names[i]));
        rc = meta_json(w, "class_names", names, err);
    }
    return rc;
}

/* one of the normalisation's arrays: exactly n finite numbers (positive ones for std) */
static int norm_array(const cJSON *o, const char *key, int n, int positive, float *out) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return 0;
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || (positive && !(v->valuedouble > 0))) return 0;
        out[i] = (float)v->valuedouble;
        if (positive && !(out[i] > 0)) return 0;
    }
    return 1;
}

int ckpt_read_norm(const char *path, int channels, float mean[3], float std[3], int *found, NcError *err) {
    *found = 0;
    if (channels < 1 || channels > 3) return nc_fail(err, NC_EUSAGE, "ckpt_read_norm: %d channels (1 to 3)", channels);
    StFile f;
    int rc = st_load(path, &f, err);
    if (rc) return rc;
    const char *s = st_meta(&f, "normalization");
    if (s) {
        cJSON *o = NULL;
        if (json_parse(s, strlen(s), "normalization", &o, NULL) || !cJSON_IsObject(o) ||
            !norm_array(o, "mean", channels, 0, mean) || !norm_array(o, "std", channels, 1, std))
            rc = nc_fail(err, NC_EFILE,
                         "%s: metadata normalization: {\"mean\": [...], \"std\": [...]} of %d finite numbers each "
                         "(std > 0) expected, found %.80s",
                         path, channels, s);
        cJSON_Delete(o);
        if (!rc) {
            for (int ch = channels; ch < 3; ch++) {  /* as data_norm_stats: channel 0 repeated */
                mean[ch] = mean[0];
                std[ch] = std[0];
            }
            *found = 1;
        }
    }
    st_free(&f);
    return rc;
}
