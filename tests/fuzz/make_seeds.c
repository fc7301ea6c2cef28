// make_seeds.c -- writes the fuzzer's seed corpus: one small valid file of every format the readers accept.
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "../../src/data/data_internal.h"

static const char *dir;

static void put(const char *name, const void *data, size_t len) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(data, 1, len, f) != len) { fprintf(stderr, "make_seeds: cannot write %s\n", p); exit(1); }
    fclose(f);
}

static void put_gz(const char *name, const void *data, size_t len) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    gzFile f = gzopen(p, "wb");
    if (!f || gzwrite(f, data, (unsigned)len) != (int)len) { fprintf(stderr, "make_seeds: cannot write %s\n", p); exit(1); }
    gzclose(f);
}

static void cifar(const char *name, int nlab) {
    size_t rec = (size_t)nlab + 3072;
    uint8_t *b = malloc(2 * rec);
    for (size_t i = 0; i < 2 * rec; i++) b[i] = (uint8_t)(i * 7);
    b[0] = 3;
    b[rec] = 1;
    if (nlab == 2) b[1] = 77, b[rec + 1] = 5;
    put(name, b, 2 * rec);
    free(b);
}

static void idx(const char *name, int gz, uint32_t magic, int n, int h, int w) {
    int nd = magic == DATA_IDX_IMAGES ? 3 : 1;
    size_t len = 4 + 4 * (size_t)nd + (size_t)n * h * w;
    uint8_t *b = calloc(len, 1);
    uint32_t v[4] = {magic, (uint32_t)n, (uint32_t)h, (uint32_t)w};
    for (int i = 0; i <= nd; i++)
        for (int j = 0; j < 4; j++) b[4 * i + j] = (uint8_t)(v[i] >> (24 - 8 * j));
    for (size_t i = 4 + 4 * (size_t)nd; i < len; i++) b[i] = (uint8_t)(i % 10);
    if (gz) put_gz(name, b, len);
    else put(name, b, len);
    free(b);
}

static void jpeg(const char *name, int w, int h, int c, int progressive) {
    uint8_t *pix = malloc((size_t)w * h * c), *out = NULL;
    for (int i = 0; i < w * h * c; i++) pix[i] = (uint8_t)(i * 5 + i / w);
    unsigned long outlen = 0;
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &out, &outlen);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = c;
    ci.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 80, TRUE);
    if (progressive) jpeg_simple_progression(&ci);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = pix + (size_t)ci.next_scanline * w * c;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    put(name, out, outlen);
    free(out);
    free(pix);
}

static void png(const char *name, int w, int h, int type, int depth, int interlace) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    png_structp s = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(s);
    if (!f || setjmp(png_jmpbuf(s))) { fprintf(stderr, "make_seeds: cannot write %s\n", p); exit(1); }
    png_init_io(s, f);
    png_set_IHDR(s, info, (png_uint_32)w, (png_uint_32)h, depth, type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_color pal[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {9, 9, 9}};
    png_byte trns[1] = {128};
    if (type == PNG_COLOR_TYPE_PALETTE) {
        png_set_PLTE(s, info, pal, 4);
        png_set_tRNS(s, info, trns, 1, NULL);
    }
    png_write_info(s, info);
    size_t rb = png_get_rowbytes(s, info);
    uint8_t *img = malloc(rb * h);
    for (size_t i = 0; i < rb * h; i++) img[i] = type == PNG_COLOR_TYPE_PALETTE ? (uint8_t)(i % 4) : (uint8_t)(i * 11);
    png_bytep *rows = malloc(sizeof(png_bytep) * h);
    for (int y = 0; y < h; y++) rows[y] = img + y * rb;
    png_write_image(s, rows);
    png_write_end(s, NULL);
    png_destroy_write_struct(&s, &info);
    fclose(f);
    free(rows);
    free(img);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: make_seeds DIR\n"); return 2; }
    dir = argv[1];
    cifar("cifar10.bin", 1);
    cifar("cifar100.bin", 2);
    idx("images.idx", 0, DATA_IDX_IMAGES, 3, 4, 5);
    idx("labels.idx", 0, DATA_IDX_LABELS, 6, 1, 1);
    idx("images.idx.gz", 1, DATA_IDX_IMAGES, 2, 7, 3);
    idx("labels.idx.gz", 1, DATA_IDX_LABELS, 9, 1, 1);
    jpeg("gray.jpg", 8, 8, 1, 0);
    jpeg("rgb.jpg", 16, 8, 3, 0);
    jpeg("progressive.jpg", 9, 17, 3, 1);
    png("gray.png", 5, 4, PNG_COLOR_TYPE_GRAY, 8, 0);
    png("gray1.png", 9, 3, PNG_COLOR_TYPE_GRAY, 1, 0);
    png("rgb.png", 4, 6, PNG_COLOR_TYPE_RGB, 8, 0);
    png("rgba16.png", 3, 3, PNG_COLOR_TYPE_RGB_ALPHA, 16, 0);
    png("gray_alpha.png", 3, 2, PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0);
    png("palette.png", 7, 5, PNG_COLOR_TYPE_PALETTE, 2, 0);
    png("interlaced.png", 11, 9, PNG_COLOR_TYPE_RGB, 8, 1);
    const char *specs[] = {"synth:3:8:5", "cifar100:/x:y:coarse", "fmnist", "folder:/a/b", "synth:1000:256:100000"};
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "spec%d.txt", i);
        put(name, specs[i], strlen(specs[i]));
    }
    Dataset ds;
    NcError err;
    char p[1024];
    snprintf(p, sizeof p, "%s/synth.packed", dir);
    if (data_load("synth:2:8:1", NULL, &ds, &err) || data_convert(&ds, p, &err)) {
        fprintf(stderr, "make_seeds: %s\n", err.msg);
        return 1;
    }
    data_free(&ds);
    return 0;
}
