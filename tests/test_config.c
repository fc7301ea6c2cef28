// test_config.c -- the training configuration's JSON and log.json entries: round trips and strict reading.
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ncelab/jsonio.h"
#include "ncelab/train.h"

/* the configuration of c as text, with one field replaced by the JSON text value (NULL: removed) */
static char *with_field(const TrainConfig *c, const char *field, const char *value) {
    char *js = train_config_json(c);
    cJSON *o = cJSON_Parse(js);
    free(js);
    cJSON_DeleteItemFromObjectCaseSensitive(o, field);
    if (value) cJSON_AddItemToObject(o, field, cJSON_Parse(value));
    js = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return js;
}

static void test_config(void) {
    NcError err = {0};
    TrainConfig c, back;
    train_config_default(&c);
    snprintf(c.data, sizeof c.data, "synth:3");
    c.k = 100;
    c.queue = 128;
    c.lr = 0.3f;
    c.seed = 4294967297ULL;  /* beyond 32 bits */
    char *js = train_config_json(&c);
    CHECK(train_config_parse(js, "cfg", &back, &err) == NC_OK && train_config_same(&c, &back) &&
              back.seed == c.seed && back.lr == 0.3f && back.queue == 128,
          "the configuration reads back: %s", js);
    /* text after the object is refused, whitespace is not */
    size_t n = strlen(js);
    char *more = malloc(n + 8);
    snprintf(more, n + 8, "%s {}", js);
    CHECK(train_config_parse(more, "ckpt.safetensors", &back, &err) == NC_EFILE && strstr(err.msg, "ckpt.safetensors") &&
              strstr(err.msg, "trailing"), "text after the configuration refused: %s", err.msg);
    snprintf(more, n + 8, "%s\n\t ", js);
    CHECK(train_config_parse(more, "cfg", &back, &err) == NC_OK && train_config_same(&c, &back),
          "whitespace after the configuration accepted");
    free(more);
    free(js);
    /* integer fields must be integers that fit (a huge k was a float-to-int overflow) */
    struct { const char *field, *value; } bad[] = {
        {"k", "1e300"}, {"k", "2.5"}, {"k", "null"}, {"k", "\"16\""}, {"batch", "-3000000000"},
        {"ranks", "1e10"}, {"train_limit", "0.5"}, {"seed", "-1"}, {"seed", "1e20"}, {"seed", "1.5"},
        {"loss", NULL}, {"lr", "\"0.1\""}, {"data", "3"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        js = with_field(&c, bad[i].field, bad[i].value);
        char want[64];
        snprintf(want, sizeof want, "\"%s\"", bad[i].field);
        int rc = train_config_parse(js, "cfg", &back, &err);
        CHECK(rc == NC_EFILE && strstr(err.msg, want), "%s = %s refused: %s", bad[i].field,
              bad[i].value ? bad[i].value : "(absent)", err.msg);
        free(js);
    }
    js = with_field(&c, "ranks", NULL);
    CHECK(train_config_parse(js, "cfg", &back, &err) == NC_OK && back.ranks == 1, "ranks may be absent (older checkpoints): 1");
    free(js);
    js = with_field(&c, "k", "2147483647");
    CHECK(train_config_parse(js, "cfg", &back, &err) == NC_OK && back.k == INT_MAX, "k = INT_MAX reads exactly");
    free(js);
}

static void test_epochs(void) {
    TrainEpoch e = {.epoch = 3, .loss = 2.5, .lr = 0.1f, .imgs_per_sec = 100, .collision_rate = 0.25,
                    .any_collision = 0.5, .coverage = 2, .seconds = 1.5, .queue_age = NAN, .knn_acc = 0.75};
    cJSON *o = train_epoch_json(&e);
    TrainEpoch back;
    CHECK(train_epoch_from_json(o, &back) == 1 && back.epoch == 3 && back.loss == 2.5 && back.lr == 0.1f &&
              isnan(back.queue_age) && back.knn_acc == 0.75, "a log.json entry reads back");
    cJSON_Delete(o);
    const char *bad[] = {"{\"epoch\": 1e300, \"loss\": 1}", "{\"epoch\": null}", "{\"epoch\": -1}", "{\"epoch\": 2.5}",
                         "[1]", "{}"};
    for (int i = 0; i < 6; i++) {
        o = cJSON_Parse(bad[i]);
        int ok = train_epoch_from_json(o, &back);
        CHECK(ok == 0 && back.epoch == 0 && isnan(back.loss), "%s is not an epoch", bad[i]);
        cJSON_Delete(o);
    }
}

int main(void) {
    test_config();
    test_epochs();
    return check_done();
}
