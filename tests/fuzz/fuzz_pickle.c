// fuzz_pickle.c -- libFuzzer harness: the input bytes as a pickle, then as a CIFAR batch and a CIFAR meta file of the python release.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/data/data_internal.h"
#include "../../src/data/pickle.h"

/* walk: every object the parse made is well-formed: strings and arrays lie inside the input (or
   an owned copy no longer than it), containers hold objects, arrays' sizes agree. Iterative (the
   input may nest deeply or hold cycles through the memo). */
static void check_objects(const Pickle *pk, const uint8_t *data, size_t size) {
    for (size_t i = 0; i < pk->nall; i++) {
        const PickleObj *o = pk->all[i];
        if (o->at >= size) abort();
        switch (o->kind) {
        case PK_BYTES:
        case PK_STR:
            if (o->s.len > size) abort();
            if (o->s.len) {
                volatile uint8_t first = o->s.p[0], last = o->s.p[o->s.len - 1];  /* ASan checks both ends */
                (void)first;
                (void)last;
            }
            break;
        case PK_TUPLE:
        case PK_LIST:
        case PK_DICT:
            if (o->seq.n > o->seq.cap || (o->kind == PK_DICT && o->seq.n % 2)) abort();
            for (size_t j = 0; j < o->seq.n; j++)
                if (!o->seq.v[j]) abort();
            break;
        case PK_ARRAY: {
            const PickleArray *a = o->arr;
            uint64_t prod = 1;
            for (int d = 0; d < a->ndim; d++) prod *= (uint64_t)a->shape[d];
            if (a->ndim < 0 || a->ndim > PICKLE_MAX_DIM || prod != a->len || a->len > size) abort();
            if (a->len) {
                volatile uint8_t last = a->data[a->len - 1];
                (void)last;
            }
            break;
        }
        default:
            break;
        }
    }
    (void)data;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    NcError err;
    memset(&err, 0, sizeof err);
    Pickle pk;
    if (pickle_parse(data, size, "fuzz.pkl", &pk, &err) == NC_OK) {
        if (!pk.root) abort();
        check_objects(&pk, data, size);
        pickle_get(pk.root, "data");
        pickle_get(pk.root, "labels");
        pickle_free(&pk);
    } else if (!err.msg[0] || strncmp(err.msg, "fuzz.pkl: ", 10) != 0) {
        abort();  /* every refusal names the file */
    }

    /* as CIFAR-10 and CIFAR-100 batches, and as meta files */
    DataSplit s;
    if (data_cifar_py_batch(data, size, "fuzz.pkl", "labels", 10, &s, &err) == NC_OK) {
        if (s.n < 1 || s.h != 32 || s.w != 32 || s.c != 3) abort();
        for (int i = 0; i < s.n; i++)
            if (s.labels[i] < 0 || s.labels[i] >= 10) abort();
        data_split_free(&s);
    }
    if (data_cifar_py_batch(data, size, "fuzz.pkl", "coarse_labels", 20, &s, &err) == NC_OK) data_split_free(&s);
    Dataset ds;
    memset(&ds, 0, sizeof ds);
    if (data_cifar_py_names(data, size, "fuzz.pkl", "label_names", 10, &ds, &err) == NC_OK && ds.num_classes != 10) abort();
    data_free(&ds);
    return 0;
}
