// config.c -- the training configuration: defaults, one check that turns its strings into typed
// settings, and its JSON form (stored in checkpoints and results).
#include "ncelab/train.h"
#include "ncelab/jsonio.h"
#include "ncelab/sampler.h"
#include "ncelab/utf8.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void train_config_default(TrainConfig *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->model, sizeof c->model, "convnet");
    snprintf(c->positives, sizeof c->positives, "class");
    snprintf(c->aug, sizeof c->aug, "simclr");
    snprintf(c->optim, sizeof c->optim, "sgd");
    snprintf(c->schedule, sizeof c->schedule, "cosine");
    snprintf(c->loss, sizeof c->loss, "infonce");
    c->k = 16;
    c->batch = 256;
    c->epochs = 1;
    c->lr = 0.06f;
    c->temp = 0.5f;
    c->wd = 5e-4f;
    c->key_momentum = 0.99f;
    c->ranks = 1;
}

int train_config_check(const TrainConfig *c, TrainSettings *s, NcError *err) {
    memset(s, 0, sizeof *s);
    int rc;
    if ((rc = optim_parse(c->optim, c->wd, &s->optim, err)) || (rc = lr_parse(c->schedule, &s->schedule, err)) ||
        (rc = nc_loss_parse(c->loss, "--loss", &s->loss, err)) ||
        (rc = sampler_positives_parse(c->positives, "--positives", &s->positives, err)) ||
        (rc = aug_preset(c->aug, "--aug", &s->aug, err)))
        return rc;
    if (!(c->lr > 0) || !isfinite(c->lr)) return nc_fail(err, NC_EUSAGE, "--lr: must be positive, got %g", c->lr);
    if (!(c->temp > 0) || !isfinite(c->temp)) return nc_fail(err, NC_EUSAGE, "--temp: must be positive, got %g", c->temp);
    if (!(c->wd >= 0) || !isfinite(c->wd)) return nc_fail(err, NC_EUSAGE, "--wd: must be >= 0, got %g", c->wd);
    if (!(c->key_momentum >= 0 && c->key_momentum < 1))
        return nc_fail(err, NC_EUSAGE, "--key-momentum: must be in [0, 1), got %g", c->key_momentum);
    if (c->epochs < 1) return nc_fail(err, NC_EUSAGE, "--epochs: must be at least 1, got %d", c->epochs);
    if (c->warmup_epochs < 0) return nc_fail(err, NC_EUSAGE, "--warmup: must be >= 0, got %d", c->warmup_epochs);
    if (c->batch < 2) return nc_fail(err, NC_EUSAGE, "--batch: must be at least 2, got %d", c->batch);
    if (c->k < 1) return nc_fail(err, NC_EUSAGE, "--k: must be at least 1, got %d", c->k);
    if ((rc = sampler_check_pool(c->batch, c->k, c->queue, err))) return rc;
    if (c->train_limit < 0) return nc_fail(err, NC_EUSAGE, "--train-limit: must be positive, got %d", c->train_limit);
    s->data.seed = c->seed;
    s->data.train_limit = c->train_limit;
    if (c->imbalance[0] && (strncmp(c->imbalance, "zipf:", 5) ||
                            nc_parse_double(c->imbalance + 5, "--imbalance", &s->data.imbalance_zipf, NULL) ||
                            !(s->data.imbalance_zipf > 0) || s->data.imbalance_zipf > 20))
        return nc_fail(err, NC_EUSAGE, "--imbalance: expected zipf:S with 0 < S <= 20, got '%s'", c->imbalance);
    return NC_OK;
}

#define CFG_STR(X) X(data) X(imbalance) X(model) X(positives) X(aug) X(optim) X(schedule) X(loss)
#define CFG_INT(X) X(k) X(batch) X(epochs) X(warmup_epochs) X(queue) X(exclude_same_class) X(threads)
#define CFG_OPT(X) X(train_limit) X(knn_monitor) X(log_every) X(ranks)  /* optional when read: absent in older checkpoints */
#define CFG_FLT(X) X(lr) X(temp) X(wd)
#define CFG_FLT_OPT(X) X(key_momentum)  /* optional when read: absent in older checkpoints */

/* a float as the user wrote it: the shortest decimal that reads back as the same float (0.3, not
   0.300000011920929) */
static double float_as_given(float v) {
    char b[32];
    for (int p = 6; p <= 9; p++) {
        snprintf(b, sizeof b, "%.*g", p, (double)v);
        if (strtof(b, NULL) == v) break;
    }
    return strtod(b, NULL);
}

/* add_text: "key": s as UTF-8 (invalid bytes as U+FFFD) and, when s is not UTF-8, its exact bytes
   in hex as "key_bytes", which train_config_parse prefers: the configuration goes through JSON
   (checkpoints, the broadcast to ranks, results) without losing a file name's bytes. */
static void add_text(cJSON *o, const char *key, const char *s) {
    cJSON_AddItemToObject(o, key, utf8_json_string(s));
    size_t n = strlen(s);
    if (utf8_invalid(s, n) < 0) return;
    char *hex = nc_malloc(2 * n + 1), name[64];
    for (size_t i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", (unsigned char)s[i]);
    snprintf(name, sizeof name, "%s_bytes", key);
    cJSON_AddStringToObject(o, name, hex);
    free(hex);
}

/* get_text: key's exact bytes (key_bytes when present, else key) into dst of n bytes; 0 when
   neither is a string that fits. */
static int get_text(const cJSON *o, const char *key, char *dst, size_t n) {
    char name[64];
    snprintf(name, sizeof name, "%s_bytes", key);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, name), *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v)) return 0;
    if (!b) {
        snprintf(dst, n, "%s", v->valuestring);
        return 1;
    }
    size_t len = cJSON_IsString(b) ? strlen(b->valuestring) : 1;
    if (len % 2 || len / 2 >= n) return 0;
    for (size_t i = 0; i < len / 2; i++) {
        unsigned x;
        if (sscanf(b->valuestring + 2 * i, "%2x", &x) != 1 || x == 0) return 0;
        dst[i] = (char)x;
    }
    dst[len / 2] = '\0';
    return 1;
}

char *train_config_json(const TrainConfig *c) {
    cJSON *o = cJSON_CreateObject();
#define S(f) add_text(o, #f, c->f);
#define I(f) cJSON_AddNumberToObject(o, #f, c->f);
#define F(f) cJSON_AddNumberToObject(o, #f, float_as_given(c->f));
    CFG_STR(S) CFG_INT(I) CFG_FLT(F) CFG_FLT_OPT(F) CFG_OPT(I)
#undef S
#undef I
#undef F
    cJSON_AddNumberToObject(o, "seed", (double)c->seed);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* the configuration's fields, read with their type checked: 0 when absent or of another type */
static int cfg_int(const cJSON *o, const char *name, int *dst) {
    double x;
    if (!json_get_int(cJSON_GetObjectItemCaseSensitive(o, name), INT_MIN, INT_MAX, &x)) return 0;
    *dst = (int)x;
    return 1;
}

static int cfg_float(const cJSON *o, const char *name, float *dst) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(v)) return 0;
    *dst = (float)v->valuedouble;
    return 1;
}

int train_config_parse(const char *json, const char *what, TrainConfig *c, NcError *err) {
    cJSON *o;
    int rc = json_parse(json, strlen(json), what, &o, err);
    if (rc) return rc;
    if (!cJSON_IsObject(o)) { cJSON_Delete(o); return nc_fail(err, NC_EFILE, "%s: the configuration is not a JSON object", what); }
    train_config_default(c);
    const char *field = NULL, *want = NULL;
#define S(f) if (!get_text(o, #f, c->f, sizeof c->f)) { field = #f, want = "a string"; goto bad; }
#define I(f) if (!cfg_int(o, #f, &c->f)) { field = #f, want = "an integer"; goto bad; }
#define F(f) if (!cfg_float(o, #f, &c->f)) { field = #f, want = "a number"; goto bad; }
#define O(f) if (cJSON_GetObjectItemCaseSensitive(o, #f) && !cfg_int(o, #f, &c->f)) { field = #f, want = "an integer"; goto bad; }
#define P(f) if (cJSON_GetObjectItemCaseSensitive(o, #f) && !cfg_float(o, #f, &c->f)) { field = #f, want = "a number"; goto bad; }
    CFG_STR(S) CFG_INT(I) CFG_FLT(F) CFG_OPT(O) CFG_FLT_OPT(P)
#undef S
#undef I
#undef F
#undef O
#undef P
    double seed;
    if (!json_get_int(cJSON_GetObjectItemCaseSensitive(o, "seed"), 0, 9007199254740992.0, &seed)) {
        field = "seed", want = "an integer in [0, 2^53]";
        goto bad;
    }
    c->seed = (uint64_t)seed;
    cJSON_Delete(o);
    return NC_OK;
bad:
    cJSON_Delete(o);
    return nc_fail(err, NC_EFILE, "%s: the configuration's \"%s\" is missing or not %s", what, field, want);
}

int train_config_same(const TrainConfig *a, const TrainConfig *b) {
    TrainConfig x = *a, y = *b;
    x.epochs = y.epochs = 0;
    x.knn_monitor = y.knn_monitor = 0;
    x.log_every = y.log_every = 0;
    x.ranks = y.ranks = 0;
    char *s = train_config_json(&x), *t = train_config_json(&y);
    int same = strcmp(s, t) == 0;
    free(s);
    free(t);
    return same;
}

void train_config_diff(const TrainConfig *saved, const TrainConfig *given, char *buf, size_t n) {
    char *a = train_config_json(saved), *b = train_config_json(given);
    cJSON *x = cJSON_Parse(a), *y = cJSON_Parse(b);
    size_t used = 0;
    buf[0] = '\0';
    const cJSON *e;
    cJSON_ArrayForEach(e, x) {
        if (!strcmp(e->string, "epochs") || !strcmp(e->string, "knn_monitor") || !strcmp(e->string, "log_every") ||
            !strcmp(e->string, "ranks"))
            continue;
        char *u = cJSON_PrintUnformatted(e), *v = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(y, e->string));
        if (u && v && strcmp(u, v) != 0 && used < n)
            used += (size_t)snprintf(buf + used, n - used, "%s%s: %s in the checkpoint, %s given", used ? "; " : "",
                                     e->string, u, v);
        free(u);
        free(v);
    }
    if (!buf[0]) snprintf(buf, n, "the same fields, other values");
    cJSON_Delete(x);
    cJSON_Delete(y);
    free(a);
    free(b);
}

#define EPOCH_NUM(X) X(imgs_per_sec) X(collision_rate) X(any_collision) X(coverage) X(seconds) X(queue_age)

cJSON *train_epoch_json(const TrainEpoch *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", e->epoch);
    cJSON_AddItemToObject(o, "loss", json_number(e->loss));
    cJSON_AddItemToObject(o, "lr", json_number(e->lr));
#define ADD(f) cJSON_AddItemToObject(o, #f, json_number(e->f));
    EPOCH_NUM(ADD)
#undef ADD
    if (isfinite(e->knn_acc)) cJSON_AddNumberToObject(o, "knn_acc", e->knn_acc);
    return o;
}

int train_epoch_from_json(const cJSON *o, TrainEpoch *e) {
    double v;
    memset(e, 0, sizeof *e);
    int ok = cJSON_IsObject(o) && json_get_int(cJSON_GetObjectItemCaseSensitive(o, "epoch"), 0, INT_MAX, &v);
    e->epoch = ok ? (int)v : 0;
    e->lr = ok && json_get_number(cJSON_GetObjectItemCaseSensitive(o, "lr"), &v) ? (float)v : NAN;
#define GET(f) if (!ok || !json_get_number(cJSON_GetObjectItemCaseSensitive(o, #f), &e->f)) e->f = NAN;
    GET(loss) EPOCH_NUM(GET) GET(knn_acc)
#undef GET
    return ok;
}
