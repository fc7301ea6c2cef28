// cifar_util.h -- tests: files written byte for byte, and CIFAR's binary release of a test
// pattern (the rule tests/ref/make_cifar_pickles.py's pix() follows for the python release).
#ifndef NCELAB_TEST_CIFAR_UTIL_H
#define NCELAB_TEST_CIFAR_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* write_bytes: path holds exactly data[0..len) (a message on stderr when it cannot be written). */
static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len)) fprintf(stderr, "cannot write %s\n", path);
    if (f) fclose(f);
}

/* The test pattern of CIFAR image r of file f at channel ch, row y, column x. */
static uint8_t cifar_pix(int f, int r, int ch, int y, int x) { return (uint8_t)(r * 7 + ch * 50 + y * 3 + x * 5 + f * 11); }

/* write_cifar: n records of a binary CIFAR file: nlab label bytes each (labels[r * nlab + j]),
   then the 3 x 32 x 32 CHW planes of the pattern. */
static void write_cifar(const char *path, int f, int n, int nlab, const int *labels) {
    size_t rec = (size_t)nlab + 3072;
    uint8_t *b = malloc(rec * n);
    for (int r = 0; r < n; r++) {
        uint8_t *p = b + r * rec;
        for (int j = 0; j < nlab; j++) p[j] = (uint8_t)labels[r * nlab + j];
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) p[nlab + ch * 1024 + y * 32 + x] = cifar_pix(f, r, ch, y, x);
    }
    write_bytes(path, b, rec * n);
    free(b);
}

#endif
