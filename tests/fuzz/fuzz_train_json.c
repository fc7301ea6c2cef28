// fuzz_train_json.c -- libFuzzer harness: the input as a checkpoint's configuration and as log.json.
#include "fuzz_util.h"

#include <math.h>

#include "ncelab/jsonio.h"
#include "ncelab/train.h"

/* The configuration stored in a checkpoint's metadata (and in a sweep's result.json): parsed,
   checked, and when valid written and read back to the same run. */
static void config(const uint8_t *data, size_t size) {
    char *text = fuzz_cstr(data, size);
    TrainConfig c, back;
    TrainSettings s;
    NcError err;
    err.msg[0] = '\0';
    if (train_config_parse(text, "fuzz.json", &c, &err) == NC_OK) {
        if (train_config_check(&c, &s, &err) == NC_OK) {
            char *js = train_config_json(&c);
            if (train_config_parse(js, "round trip", &back, &err) != NC_OK || !train_config_same(&c, &back) ||
                back.epochs != c.epochs)
                abort();
            free(js);
        }
    } else if (!strstr(err.msg, "fuzz.json")) {
        abort();  /* a refusal names what it read */
    }
    free(text);
}

/* log.json (an array of epochs, appended to on --resume) and a checkpoint's last_epoch (one). */
static void epochs(const uint8_t *data, size_t size) {
    cJSON *doc;
    if (json_parse((const char *)data, size, "log.json", &doc, NULL) != NC_OK) return;
    TrainEpoch e;
    const cJSON *it;
    if (cJSON_IsArray(doc)) {
        cJSON_ArrayForEach(it, doc) {
            if (train_epoch_from_json(it, &e)) {
                cJSON *o = train_epoch_json(&e);  /* what an appended run writes back */
                cJSON_Delete(o);
            }
        }
    } else {
        train_epoch_from_json(doc, &e);
    }
    cJSON_Delete(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    config(data, size);
    epochs(data, size);
    return 0;
}
