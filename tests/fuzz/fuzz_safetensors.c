// fuzz_safetensors.c -- libFuzzer harness: the input bytes as a safetensors file (st_load_mem and the getters).
#include "fuzz_util.h"

#include <math.h>

#include "ncelab/safetensors.h"

/* check_loaded: what st_load promises of a file it accepted, read through every getter. */
static void check_loaded(const StFile *f) {
    NcError err;
    for (int i = 0; i < f->ntensors; i++) {
        const StTensor *t = &f->tensors[i], *g;
        size_t es = st_dtype_size(t->dtype), numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= (size_t)t->shape[d];
        if (es == 0 || t->ndim < 0 || t->ndim > ST_MAX_DIMS || t->numel != numel || t->nbytes != numel * es) abort();
        if (!t->data || (uintptr_t)t->data % es != 0) abort();
        if (t->nbytes) {  /* every byte is there (ASan checks) */
            volatile uint8_t first = ((const uint8_t *)t->data)[0], last = ((const uint8_t *)t->data)[t->nbytes - 1];
            (void)first;
            (void)last;
        }
        if (st_find(f, t->name) != t) abort();  /* names are unique */
        if (st_get(f, t->name, t->dtype, t->ndim, t->shape, &g, &err) != NC_OK || g != t) abort();
    }
    for (int i = 0; i < f->nmeta; i++) {
        if (st_meta(f, f->meta_keys[i]) != f->meta_vals[i]) abort();  /* keys are unique */
        long l;
        double d;
        st_meta_long(f, f->meta_keys[i], &l, &err);
        if (st_meta_double(f, f->meta_keys[i], &d, &err) == NC_OK && !isfinite(d)) abort();
    }
}

static void load(const uint8_t *data, size_t size) {
    StFile f;
    NcError err;
    err.msg[0] = '\0';
    if (st_load_mem(data, size, "fuzz.safetensors", &f, &err) == NC_OK) {
        check_loaded(&f);
        st_free(&f);
    } else if (!err.msg[0] || f.buf || f.tensors || f.path) {
        abort();  /* a refusal says why and leaves nothing behind */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load(data, size);
    /* ... and with the header length patched to end at the last '}', so that mutations of the
       header's text reach the JSON checks instead of failing the length check */
    if (size > 9 && data[8] == '{') {
        size_t end = size;
        while (end > 9 && data[end - 1] != '}') end--;
        uint64_t hlen = end - 8, given = 0;
        for (int i = 7; i >= 0; i--) given = given << 8 | data[i];
        if (hlen != given) {
            uint8_t *copy = malloc(size);
            memcpy(copy, data, size);
            for (int i = 0; i < 8; i++) copy[i] = (uint8_t)(hlen >> (8 * i));
            load(copy, size);
            free(copy);
        }
    }
    return 0;
}
