// fuzz_readers.c -- libFuzzer harness: the input bytes as every binary format the dataset readers accept.
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../../src/data/data_internal.h"

static char path[512];

static void cleanup(void) {
    if (path[0]) remove(path);
}

/* Each reader must either succeed with a consistent result or fail with a message; never crash,
   leak or read out of bounds (ASan + UBSan watch the rest). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!path[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/fuzz_readers_%ld.bin", tmp && *tmp ? tmp : "/tmp", (long)getpid());
        atexit(cleanup);
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    NcError err;
    const char *p = path;

    /* CIFAR-10 and CIFAR-100 record files */
    DataSplit s;
    memset(&err, 0, sizeof err);
    if (data_cifar_read_files(&p, 1, 1, 0, 10, &s, &err) == NC_OK) {
        if (s.n < 1 || (size_t)s.n * 3073 != size) abort();
        data_split_free(&s);
    } else if (!err.msg[0]) abort();
    if (data_cifar_read_files(&p, 1, 2, 1, 100, &s, &err) == NC_OK) data_split_free(&s);

    /* IDX images and labels, plain or gzipped */
    uint8_t *buf;
    int n, h, w;
    if (data_idx_read_file(p, DATA_IDX_IMAGES, &buf, &n, &h, &w, &err) == NC_OK) {
        volatile uint8_t last = buf[(size_t)n * h * w - 1];  /* the whole buffer is there */
        (void)last;
        free(buf);
    }
    if (data_idx_read_file(p, DATA_IDX_LABELS, &buf, &n, &h, &w, &err) == NC_OK) free(buf);

    /* packed datasets */
    Dataset ds;
    memset(&ds, 0, sizeof ds);
    if (data_read_packed(p, &ds, &err) == NC_OK) {
        DataStats st;
        data_stats(&ds, &ds.train, &st);
        free(st.per_class);
    }
    data_free(&ds);
    /* ... and with the payload length and CRC-32 patched to match, so that mutations reach the
       parser behind the checksum */
    if (size >= 32 && memcmp(data, "NCEDATA1", 8) == 0) {
        uint8_t *copy = malloc(size);
        memcpy(copy, data, size);
        uint64_t payload = size - 32;
        uint32_t crc = (uint32_t)crc32_z(crc32_z(0, NULL, 0), copy + 32, (size_t)payload);
        for (int i = 0; i < 8; i++) copy[16 + i] = (uint8_t)(payload >> (8 * i));
        for (int i = 0; i < 4; i++) copy[24 + i] = (uint8_t)(crc >> (8 * i));
        memset(&ds, 0, sizeof ds);
        data_packed_parse(copy, size, "fuzz.packed", &ds, &err);
        data_free(&ds);
        free(copy);
    }

    /* JPEG and PNG decoding, then a resize of what was decoded */
    DataImage im;
    for (int kind = 0; kind < 2; kind++) {
        int rc = kind ? data_decode_png(data, size, "fuzz.png", &im, &err) : data_decode_jpeg(data, size, "fuzz.jpg", &im, &err);
        if (rc != NC_OK) continue;
        if (im.h < 1 || im.w < 1 || (im.c != 1 && im.c != 3)) abort();
        int oh = 1 + (size ? data[size - 1] % 13 : 0), ow = 1 + (size > 1 ? data[size - 2] % 13 : 0);
        if ((long)im.h * im.w <= 1 << 20) {
            uint8_t *out = malloc((size_t)oh * ow * im.c);
            data_resize_bilinear(out, oh, ow, im.pixels, im.h, im.w, im.c);
            free(out);
        }
        free(im.pixels);
    }

    /* the SPEC grammar */
    char *spec = malloc(size + 1);
    memcpy(spec, data, size);
    spec[size] = '\0';
    DataSpec sp;
    data_spec_parse(spec, &sp, &err);
    free(spec);
    return 0;
}
