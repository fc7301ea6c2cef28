// args_config.c -- --config FILE: the options a run was made with, read back from what it wrote
// (a checkpoint's metadata, results.json, a sweep run's run.json), under the options given on
// the command line.
#define _POSIX_C_SOURCE 200809L
#include "args.h"
#include "ncelab/jsonio.h"
#include "ncelab/safetensors.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The configuration's name of an option where it is not the option's own with '_' for '-'. */
static const char *const CONFIG_NAMES[][2] = {
    {"warmup", "warmup_epochs"}, {"k", "ks"}, {"seed", "first_seed"},
};
/* Options never taken from a configuration: where the new run goes and how it starts. */
static const char *const NOT_CONFIG[] = {"out", "config", "resume", "force", "threads-force"};
/* Fields whose 0 (or "") means "not given": the option keeps its default. */
static const char *const ZERO_IS_UNSET[] = {"queue", "threads", "train_limit", "knn_monitor", "log_every", "queue_lr",
                                            "exclude_same_class"};

enum { CONFIG_MAX_BYTES = 64 << 20 };

/* The option values made from a configuration live until the program ends (the command reads
   them to the end), then are freed. */
static char **values;
static int nvalues;

static void values_free(void) {
    for (int i = 0; i < nvalues; i++) free(values[i]);
    free(values);
    values = NULL;
    nvalues = 0;
}

static const char *values_keep(char *s) {
    if (!values) atexit(values_free);
    values = nc_realloc(values, sizeof(char *) * (size_t)(nvalues + 1));
    values[nvalues++] = s;
    return s;
}

/* load: the configuration object in path: a checkpoint's "config" metadata, or a JSON document's
   "config" member, or the document itself when it is an object without one */
static int load(const char *path, cJSON **out, NcError *err) {
    char *text = NULL;
    size_t len = 0;
    int rc = nc_read_regular(path, CONFIG_MAX_BYTES, &text, &len, err);
    if (rc) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return nc_fail(err, rc, "--config: %s", msg);
    }
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) i++;
    cJSON *doc = NULL;
    char what[600];
    if (i < len && text[i] == '{') {
        snprintf(what, sizeof what, "--config %s", path);
        rc = json_parse(text, len, what, &doc, err);
    } else {  /* not JSON: a safetensors checkpoint, whose metadata holds the configuration */
        StFile f;
        rc = st_load_mem(text, len, path, &f, err);
        if (rc) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            rc = nc_fail(err, NC_EFILE, "--config %s: neither a JSON object nor a checkpoint (%s)", path, msg);
        } else {
            const char *cj = st_meta(&f, "config");
            snprintf(what, sizeof what, "--config %s: its \"config\" metadata", path);
            if (!cj) rc = nc_fail(err, NC_EFILE, "--config %s: a safetensors file without a \"config\" in its metadata "
                                  "(not a checkpoint of ncelab train)", path);
            else rc = json_parse(cj, strlen(cj), what, &doc, err);
            st_free(&f);
        }
    }
    free(text);
    if (rc) return rc;
    cJSON *c = cJSON_GetObjectItemCaseSensitive(doc, "config");
    if (cJSON_IsObject(c)) {
        cJSON_DetachItemViaPointer(doc, c);
        cJSON_Delete(doc);
        doc = c;
    }
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return nc_fail(err, NC_EFILE, "--config %s: the configuration is not a JSON object", path);
    }
    *out = doc;
    return NC_OK;
}

static int listed(const char *const *list, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0) return 1;
    return 0;
}

/* text: the option's value for field v of the configuration (key its name, o the whole object),
   appended to b; 0 when the field does not give a value (absent, 0 or "" where that means not
   given, or a type an option cannot take) */
static int text(const cJSON *o, const char *key, const cJSON *v, NcBuf *b) {
    int unset_zero = listed(ZERO_IS_UNSET, sizeof ZERO_IS_UNSET / sizeof ZERO_IS_UNSET[0], key);
    if (cJSON_IsString(v)) {
        char bname[80];
        snprintf(bname, sizeof bname, "%s_bytes", key);
        const cJSON *hex = cJSON_GetObjectItemCaseSensitive(o, bname);
        if (cJSON_IsString(hex)) {  /* a name that is not UTF-8: its exact bytes (config.c) */
            const char *h = hex->valuestring;
            for (size_t i = 0; h[i] && h[i + 1]; i += 2) {
                unsigned x;
                if (sscanf(h + i, "%2x", &x) != 1 || x == 0) return 0;
                nc_buf_printf(b, "%c", (char)x);
            }
        } else {
            nc_buf_printf(b, "%s", v->valuestring);
        }
        return b->s && b->s[0];
    }
    if (cJSON_IsNumber(v)) {
        if (unset_zero && v->valuedouble == 0) return 0;
        nc_buf_printf(b, "%.15g", v->valuedouble);
        return 1;
    }
    if (cJSON_IsBool(v)) {
        if (!cJSON_IsTrue(v) && unset_zero) return 0;
        nc_buf_printf(b, "%d", cJSON_IsTrue(v));
        return 1;
    }
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) {
        const cJSON *e;
        int first = 1;
        cJSON_ArrayForEach(e, v) {
            if (!first) nc_buf_printf(b, ",");
            first = 0;
            if (cJSON_IsNumber(e)) nc_buf_printf(b, "%.15g", e->valuedouble);
            else if (cJSON_IsString(e)) nc_buf_printf(b, "%s", e->valuestring);
            else return 0;
        }
        return 1;
    }
    return 0;
}

void args_config(Opt *opts, int nopt) {
    const char *path = args_get(opts, nopt, "config");
    if (!path) return;
    NcError err = {0};
    cJSON *cfg = NULL;
    if (load(path, &cfg, &err)) cli_die(&err);
    for (int j = 0; j < nopt; j++) {
        Opt *o = &opts[j];
        if (o->value || listed(NOT_CONFIG, sizeof NOT_CONFIG / sizeof NOT_CONFIG[0], o->name)) continue;
        char key[64];
        snprintf(key, sizeof key, "%s", o->name);
        for (char *p = key; *p; p++)
            if (*p == '-') *p = '_';
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
        for (size_t r = 0; !v && r < sizeof CONFIG_NAMES / sizeof CONFIG_NAMES[0]; r++)
            if (strcmp(CONFIG_NAMES[r][0], o->name) == 0) {
                snprintf(key, sizeof key, "%s", CONFIG_NAMES[r][1]);
                v = cJSON_GetObjectItemCaseSensitive(cfg, key);
            }
        NcBuf b = {0};
        if (v && text(cfg, key, v, &b)) {
            if (!o->takes_value && strcmp(b.s, "0") == 0) {
                nc_buf_free(&b);
                continue;
            }
            o->value = o->takes_value ? values_keep(b.s) : "1";
            if (!o->takes_value) nc_buf_free(&b);
        } else {
            nc_buf_free(&b);
        }
    }
    cJSON_Delete(cfg);
}
