// test_data.c -- dataset readers against files the test writes itself: CIFAR, IDX, image folders, synth, packed, errors.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "check.h"
#include "cifar_util.h"
#include "png_util.h"
#include "../src/data/data_internal.h"
#include "ncelab/data.h"

static char work[256];

/* ---- writers ---- */

static const char *at(const char *rel) {
    static char buf[8][1024];
    static int slot = 0;
    char *p = buf[slot++ % 8];
    snprintf(p, 1024, "%s/%s", work, rel);
    return p;
}

static void mkdirs(const char *path) {
    NcError e;
    if (nc_mkdir_p(path, &e)) fprintf(stderr, "%s\n", e.msg);
}

/* write_text: a string without its NUL. */
#define write_text(path, text) write_bytes((path), (text), strlen(text))

static void write_gz(const char *path, const void *data, size_t len) {
    gzFile f = gzopen(path, "wb");
    if (!f || gzwrite(f, data, (unsigned)len) != (int)len) fprintf(stderr, "cannot write %s\n", path);
    if (f) gzclose(f);
}

static uint8_t *slurp(const char *path, size_t *len) {
    uint8_t *buf;
    NcError e;
    if (data_read_small_file(path, 1 << 30, &buf, len, &e)) return NULL;
    return buf;
}

/* An IDX file: magic, dims (big-endian), data. */
static void write_idx(const char *path, int gz, uint32_t magic, int n, int h, int w, const uint8_t *data, size_t ndata) {
    int nd = magic == DATA_IDX_IMAGES ? 3 : 1;
    size_t len = 4 + 4 * (size_t)nd + ndata;
    uint8_t *b = malloc(len);
    uint32_t v[4] = {magic, (uint32_t)n, (uint32_t)h, (uint32_t)w};
    for (int i = 0; i <= nd; i++)
        for (int j = 0; j < 4; j++) b[4 * i + j] = (uint8_t)(v[i] >> (24 - 8 * j));
    memcpy(b + 4 + 4 * nd, data, ndata);
    if (gz) write_gz(path, b, len);
    else write_bytes(path, b, len);
    free(b);
}

/* A PNG of the given libpng colour type and bit depth; data is already in that format. */
static void write_png(const char *path, int w, int h, int type, int depth, const uint8_t *data,
                      const png_color *palette, int npal) {
    FILE *f = fopen(path, "wb");
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(p);
    if (setjmp(png_jmpbuf(p))) {
        fprintf(stderr, "png write failed: %s\n", path);
        png_destroy_write_struct(&p, &info);
        fclose(f);
        return;
    }
    png_init_io(p, f);
    png_set_IHDR(p, info, (png_uint_32)w, (png_uint_32)h, depth, type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (palette) png_set_PLTE(p, info, palette, npal);
    png_write_info(p, info);
    size_t row = png_get_rowbytes(p, info);
    for (int y = 0; y < h; y++) png_write_row(p, (png_const_bytep)(data + y * row));
    png_write_end(p, NULL);
    png_destroy_write_struct(&p, &info);
    fclose(f);
}

static void write_jpeg(const char *path, int w, int h, int c, const uint8_t *pix, int quality) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    FILE *f = fopen(path, "wb");
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = c;
    ci.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(pix + (size_t)ci.next_scanline * w * c);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    fclose(f);
}

/* The reference decode: plain libjpeg from a FILE with default settings. */
static uint8_t *ref_jpeg(const char *path, int *w, int *h, int *c) {
    struct jpeg_decompress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_decompress(&ci);
    FILE *f = fopen(path, "rb");
    jpeg_stdio_src(&ci, f);
    jpeg_read_header(&ci, TRUE);
    jpeg_start_decompress(&ci);
    *w = (int)ci.output_width;
    *h = (int)ci.output_height;
    *c = ci.output_components;
    uint8_t *pix = malloc((size_t)*w * *h * *c);
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW row = pix + (size_t)ci.output_scanline * *w * *c;
        jpeg_read_scanlines(&ci, &row, 1);
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    fclose(f);
    return pix;
}

/* A smooth RGB test image (h, w, 3) with a per-image offset. */
static void smooth_rgb(uint8_t *p, int h, int w, int seed) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < 3; ch++)
                p[(y * w + x) * 3 + ch] = (uint8_t)(40 + 60 * ch + 3 * x + 2 * y + 7 * seed);
}

/* ---- tests ---- */

static void test_cifar10(void) {
    const char *dir = at("c10");
    mkdirs(dir);
    int counts[5] = {3, 2, 2, 2, 2}, lab[16];
    for (int f = 0; f < 5; f++) {
        for (int r = 0; r < counts[f]; r++) lab[r] = (r * 3 + f) % 10;
        char name[64];
        snprintf(name, sizeof name, "c10/data_batch_%d.bin", f + 1);
        write_cifar(at(name), f, counts[f], 1, lab);
    }
    for (int r = 0; r < 4; r++) lab[r] = 9 - r;
    write_cifar(at("c10/test_batch.bin"), 7, 4, 1, lab);
    Dataset ds;
    NcError e = {0};
    char spec[1200];
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    int rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_OK, "cifar10 loads: %s", rc ? e.msg : "ok");
    if (rc) return;
    CHECK(ds.train.n == 11 && ds.test.n == 4 && ds.train.h == 32 && ds.train.w == 32 && ds.train.c == 3 &&
              ds.num_classes == 10 && strcmp(ds.name, "cifar10") == 0,
          "cifar10 shapes: train %d, test %d, %dx%dx%d", ds.train.n, ds.test.n, ds.train.h, ds.train.w, ds.train.c);
    CHECK(strcmp(ds.class_names[0], "airplane") == 0 && strcmp(ds.class_names[9], "truck") == 0,
          "without batches.meta.txt the standard names: %s .. %s", ds.class_names[0], ds.class_names[9]);
    /* CHW -> HWC: every pixel of every record, and the labels, in file then record order */
    int bad = 0, badlab = 0, i = 0;
    for (int f = 0; f < 5; f++)
        for (int r = 0; r < counts[f]; r++, i++) {
            badlab += ds.train.labels[i] != (r * 3 + f) % 10;
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                    for (int ch = 0; ch < 3; ch++)
                        bad += ds.train.pixels[(size_t)i * 3072 + (y * 32 + x) * 3 + ch] != cifar_pix(f, r, ch, y, x);
        }
    for (int r = 0; r < 4; r++) {
        badlab += ds.test.labels[r] != 9 - r;
        bad += ds.test.pixels[(size_t)r * 3072 + (5 * 32 + 7) * 3 + 2] != cifar_pix(7, r, 2, 5, 7);
    }
    CHECK(bad == 0 && badlab == 0, "cifar10 pixels CHW->HWC exact (%d wrong) and labels (%d wrong)", bad, badlab);
    /* a specific value: record 1 of batch 1, green channel at row 2, column 3 */
    CHECK(ds.train.pixels[3072 + (2 * 32 + 3) * 3 + 1] == (uint8_t)(7 + 50 + 6 + 15),
          "cifar10 pixel (record 1, y 2, x 3, G) = %d", ds.train.pixels[3072 + (2 * 32 + 3) * 3 + 1]);
    data_free(&ds);
    write_text(at("c10/batches.meta.txt"), "a\nb\nc\nd\ne\nf\ng\nh\ni\njay\r\n\n");
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_OK && strcmp(ds.class_names[9], "jay") == 0 && strcmp(ds.class_names[0], "a") == 0,
          "class names from batches.meta.txt: %s", rc ? e.msg : ds.class_names[9]);
    data_free(&ds);
    write_text(at("c10/batches.meta.txt"), "a\nb\nc\n");
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "batches.meta.txt") && strstr(e.msg, "3 class names"),
          "a meta file with 3 names: %s", e.msg);
    remove(at("c10/batches.meta.txt"));

    /* errors: wrong record size, label out of range, missing file, empty file */
    write_cifar(at("c10/data_batch_3.bin"), 2, 2, 2, lab);  /* 3074-byte records */
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "data_batch_3.bin") && strstr(e.msg, "6148") && strstr(e.msg, "multiple"),
          "wrong record size: %s", e.msg);
    CHECK(ds.train.pixels == NULL && ds.num_classes == 0, "a failed load leaves an empty dataset");
    lab[0] = 3;
    lab[1] = 10;
    write_cifar(at("c10/data_batch_3.bin"), 2, 2, 1, lab);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "data_batch_3.bin") && strstr(e.msg, "record 1") && strstr(e.msg, "label 10"),
          "label out of range: %s", e.msg);
    write_bytes(at("c10/data_batch_3.bin"), "", 0);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "data_batch_3.bin") && strstr(e.msg, "empty"), "empty batch: %s", e.msg);
    remove(at("c10/data_batch_3.bin"));
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "data_batch_3.bin") && strstr(e.msg, "cannot open"), "missing batch: %s", e.msg);
    snprintf(spec, sizeof spec, "cifar10:%s", at("nonexistent"));
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "nonexistent") && strstr(e.msg, "no such directory"), "missing directory: %s", e.msg);
}

static void test_cifar100(void) {
    const char *dir = at("c100");
    mkdirs(dir);
    int lab[2 * 6] = {19, 99, 0, 0, 7, 42, 3, 1, 11, 55, 4, 98};  /* (coarse, fine) pairs */
    write_cifar(at("c100/train.bin"), 1, 6, 2, lab);
    write_cifar(at("c100/test.bin"), 2, 2, 2, lab + 4);
    char spec[1200];
    snprintf(spec, sizeof spec, "cifar100:%s", dir);
    Dataset ds;
    NcError e = {0};
    int rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_OK && ds.num_classes == 100 && ds.train.n == 6 && ds.test.n == 2, "cifar100 fine loads: %s",
          rc ? e.msg : "ok");
    if (rc) return;
    int okf = 1;
    for (int r = 0; r < 6; r++) okf &= ds.train.labels[r] == lab[2 * r + 1];
    CHECK(okf && strcmp(ds.class_names[42], "42") == 0 &&
              ds.train.pixels[(size_t)5 * 3072 + (31 * 32 + 31) * 3 + 0] == cifar_pix(1, 5, 0, 31, 31),
          "fine labels (second byte), numbered names, pixels after two label bytes");
    data_free(&ds);
    write_text(at("c100/coarse_label_names.txt"), "aquatic_mammals\nfish\nc2\nc3\nc4\nc5\nc6\nc7\nc8\nc9\n"
                                                  "c10\nc11\nc12\nc13\nc14\nc15\nc16\nc17\nc18\nvehicles_2\n");
    snprintf(spec, sizeof spec, "cifar100:%s:coarse", dir);
    rc = data_load(spec, NULL, &ds, &e);
    int okc = rc == NC_OK;
    for (int r = 0; okc && r < 6; r++) okc &= ds.train.labels[r] == lab[2 * r];
    CHECK(okc && ds.num_classes == 20 && strcmp(ds.class_names[19], "vehicles_2") == 0 && strcmp(ds.class_names[1], "fish") == 0,
          "cifar100:coarse: 20 superclasses with names from coarse_label_names.txt: %s", rc ? e.msg : ds.class_names[19]);
    data_free(&ds);
    int badlab[4] = {20, 5, 1, 1};
    write_cifar(at("c100/test.bin"), 2, 2, 2, badlab);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "test.bin") && strstr(e.msg, "record 0") && strstr(e.msg, "label 20"),
          "coarse label 20 out of range: %s", e.msg);
    snprintf(spec, sizeof spec, "cifar100:%s", dir);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_OK, "the same file is fine for fine labels (5 < 100)");
    data_free(&ds);
    write_cifar(at("c100/train.bin"), 1, 2, 1, lab);  /* CIFAR-10 records in a CIFAR-100 file */
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "train.bin") && strstr(e.msg, "3074"), "cifar-10 records in train.bin: %s", e.msg);
}

static void test_idx(void) {
    enum { N = 7, H = 5, W = 4, NT = 3 };
    uint8_t img[N * H * W], lab[N], timg[NT * H * W], tlab[NT];
    for (int i = 0; i < N * H * W; i++) img[i] = (uint8_t)(i * 13 + 1);
    for (int i = 0; i < N; i++) lab[i] = (uint8_t)((i * 3) % 10);
    for (int i = 0; i < NT * H * W; i++) timg[i] = (uint8_t)(255 - i);
    for (int i = 0; i < NT; i++) tlab[i] = (uint8_t)(9 - i);
    const char *sub[3] = {"idx_plain", "idx_gz", "idx_mixed"};
    for (int v = 0; v < 3; v++) {
        char d[64], p[128];
        snprintf(d, sizeof d, "%s", sub[v]);
        mkdirs(at(d));
        int gz = v == 1, gzl = v >= 1;
        snprintf(p, sizeof p, "%s/train-images-idx3-ubyte%s", d, gz ? ".gz" : "");
        write_idx(at(p), gz, DATA_IDX_IMAGES, N, H, W, img, sizeof img);
        snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte%s", d, gzl ? ".gz" : "");
        write_idx(at(p), gzl, DATA_IDX_LABELS, N, 1, 1, lab, sizeof lab);
        snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte%s", d, gz ? ".gz" : "");
        write_idx(at(p), gz, DATA_IDX_IMAGES, NT, H, W, timg, sizeof timg);
        snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte%s", d, gzl ? ".gz" : "");
        write_idx(at(p), gzl, DATA_IDX_LABELS, NT, 1, 1, tlab, sizeof tlab);
        char spec[1200];
        snprintf(spec, sizeof spec, "%s:%s", v == 2 ? "fmnist" : "mnist", at(d));
        Dataset ds;
        NcError e = {0};
        int rc = data_load(spec, NULL, &ds, &e);
        int ok = rc == NC_OK && ds.train.n == N && ds.train.h == H && ds.train.w == W && ds.train.c == 1 &&
                 ds.test.n == NT && memcmp(ds.train.pixels, img, sizeof img) == 0 &&
                 memcmp(ds.test.pixels, timg, sizeof timg) == 0;
        for (int i = 0; ok && i < N; i++) ok &= ds.train.labels[i] == lab[i];
        for (int i = 0; ok && i < NT; i++) ok &= ds.test.labels[i] == tlab[i];
        CHECK(ok, "IDX %s: %d x %d (non-square) images and labels exact: %s", sub[v], H, W, rc ? e.msg : "ok");
        if (!rc)
            CHECK(strcmp(ds.class_names[0], v == 2 ? "T-shirt/top" : "0") == 0 &&
                      strcmp(ds.class_names[9], v == 2 ? "Ankle boot" : "9") == 0,
                  "class names %s .. %s", ds.class_names[0], ds.class_names[9]);
        data_free(&ds);
    }
    /* errors, on copies of the plain directory */
    char spec[1200];
    snprintf(spec, sizeof spec, "mnist:%s", at("idx_plain"));
    Dataset ds;
    NcError e = {0};
    const char *ti = at("idx_plain/train-images-idx3-ubyte"), *tl = at("idx_plain/train-labels-idx1-ubyte");
    char tic[1024], tlc[1024];
    snprintf(tic, sizeof tic, "%s", ti);
    snprintf(tlc, sizeof tlc, "%s", tl);
    size_t len;
    uint8_t *orig = slurp(tic, &len);
    write_bytes(tic, orig, len - 5);
    int rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "train-images-idx3-ubyte") && strstr(e.msg, "truncated"), "truncated IDX: %s", e.msg);
    write_bytes(tic, orig, len);
    write_bytes(tic, orig, 10);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "train-images-idx3-ubyte") && strstr(e.msg, "truncated IDX header"),
          "truncated IDX header: %s", e.msg);
    uint8_t *more = malloc(len + 3);
    memcpy(more, orig, len);
    memset(more + len, 0, 3);
    write_bytes(tic, more, len + 3);
    free(more);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "extra bytes"), "trailing bytes: %s", e.msg);
    write_idx(tic, 0, 0x00000804u, N, H, W, img, sizeof img);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "train-images-idx3-ubyte") && strstr(e.msg, "magic number 0x00000804") &&
              strstr(e.msg, "0x00000803"),
          "wrong magic: %s", e.msg);
    write_idx(tic, 0, DATA_IDX_LABELS, N, 1, 1, lab, sizeof lab);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "magic number 0x00000801"), "labels where images belong: %s", e.msg);
    write_idx(tic, 0, DATA_IDX_IMAGES, N - 1, H, W, img, (size_t)(N - 1) * H * W);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "7 labels") && strstr(e.msg, "6 images"), "count mismatch: %s", e.msg);
    write_idx(tic, 0, DATA_IDX_IMAGES, 0, H, W, img, 0);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "empty dataset"), "zero images: %s", e.msg);
    write_bytes(tic, orig, len);
    free(orig);
    uint8_t badlab[N];
    memcpy(badlab, lab, N);
    badlab[4] = 10;
    write_idx(tlc, 0, DATA_IDX_LABELS, N, 1, 1, badlab, N);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "train-labels-idx1-ubyte") && strstr(e.msg, "record 4") && strstr(e.msg, "label 10"),
          "IDX label out of range: %s", e.msg);
    remove(tlc);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "missing train-labels-idx1-ubyte"), "missing labels file: %s", e.msg);
    /* corrupt gzip stream */
    const char *gzp = at("idx_gz/t10k-images-idx3-ubyte.gz");
    uint8_t *g = slurp(gzp, &len);
    if (g) {
        for (size_t i = 12; i < len - 8; i++) g[i] ^= 0x5a;
        write_bytes(gzp, g, len);
        free(g);
    }
    snprintf(spec, sizeof spec, "mnist:%s", at("idx_gz"));
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "t10k-images-idx3-ubyte.gz"), "corrupt gzip: %s", e.msg);
}

/* Folder fixtures: PNG in every colour type, sorted classes and files, hidden and foreign files. */
static void test_folder_png(void) {
    enum { S = 6 };
    const char *classes[2] = {"b_dog", "a_cat"};
    uint8_t rgb[S * S * 3], gray[S * S], rgba[S * S * 4], g16[S * S * 2], idx[S * S];
    png_color pal[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}};
    for (int i = 0; i < S * S; i++) {
        gray[i] = (uint8_t)(i * 7);
        for (int ch = 0; ch < 4; ch++) rgba[i * 4 + ch] = (uint8_t)(i * 5 + ch * 60);
        g16[2 * i] = (uint8_t)(200 - i);  /* big-endian 16-bit: high byte first */
        g16[2 * i + 1] = (uint8_t)(i * 31);
        idx[i] = (uint8_t)(i % 4);
    }
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 2; k++) {
            char d[128];
            snprintf(d, sizeof d, "pngs/%s/%s", s ? "test" : "train", classes[k]);
            mkdirs(at(d));
            char p[256];
            smooth_rgb(rgb, S, S, k + 2 * s);
            snprintf(p, sizeof p, "%s/2.png", d);
            write_png(at(p), S, S, PNG_COLOR_TYPE_RGB, 8, rgb, NULL, 0);
            snprintf(p, sizeof p, "%s/10.png", d);
            write_png(at(p), S, S, PNG_COLOR_TYPE_GRAY, 8, gray, NULL, 0);
            snprintf(p, sizeof p, "%s/1.PNG", d);
            write_png(at(p), S, S, PNG_COLOR_TYPE_RGBA, 8, rgba, NULL, 0);
            snprintf(p, sizeof p, "%s/3.png", d);
            write_png(at(p), S, S, PNG_COLOR_TYPE_GRAY, 16, g16, NULL, 0);
            snprintf(p, sizeof p, "%s/4.png", d);
            write_png(at(p), S, S, PNG_COLOR_TYPE_PALETTE, 8, idx, pal, 4);
            snprintf(p, sizeof p, "%s/.hidden.png", d);
            write_bytes(at(p), "junk", 4);
            snprintf(p, sizeof p, "%s/notes.txt", d);
            write_bytes(at(p), "junk", 4);
        }
    char spec[1200];
    snprintf(spec, sizeof spec, "folder:%s", at("pngs"));
    Dataset ds;
    NcError e = {0};
    int rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_OK && ds.num_classes == 2 && ds.train.n == 10 && ds.test.n == 10 && ds.train.c == 3 &&
              ds.train.h == S && ds.train.w == S,
          "PNG folder loads mixed gray/RGB as c = 3: %s", rc ? e.msg : "ok");
    if (rc) return;
    CHECK(strcmp(ds.class_names[0], "a_cat") == 0 && strcmp(ds.class_names[1], "b_dog") == 0,
          "class names sorted: %s, %s", ds.class_names[0], ds.class_names[1]);
    /* file order by name: 1.PNG (RGBA), 10.png (gray), 2.png (RGB), 3.png (gray16), 4.png (palette) */
    int bad = 0;
    const size_t isz = S * S * 3;
    for (int s = 0; s < 2; s++) {
        const DataSplit *sp = s ? &ds.test : &ds.train;
        for (int k = 0; k < 2; k++) {  /* k: sorted class index; a_cat was written as classes[1] */
            const uint8_t *im = sp->pixels + (size_t)(5 * k) * isz;
            smooth_rgb(rgb, S, S, (k == 0 ? 1 : 0) + 2 * s);
            for (int i = 0; i < S * S; i++)
                for (int ch = 0; ch < 3; ch++) {
                    bad += im[0 * isz + i * 3 + ch] != rgba[i * 4 + ch];
                    bad += im[1 * isz + i * 3 + ch] != gray[i];
                    bad += im[2 * isz + i * 3 + ch] != rgb[i * 3 + ch];
                    bad += im[3 * isz + i * 3 + ch] != g16[2 * i];
                    const png_byte pc[3] = {pal[i % 4].red, pal[i % 4].green, pal[i % 4].blue};
                    bad += im[4 * isz + i * 3 + ch] != pc[ch];
                }
            for (int j = 0; j < 5; j++) bad += sp->labels[5 * k + j] != k;
        }
    }
    CHECK(bad == 0, "PNG pixels exact (RGBA alpha dropped, gray expanded, 16-bit high byte, palette), labels: %d wrong", bad);
    data_free(&ds);

    /* a gray-only folder stays c = 1 */
    for (int s = 0; s < 2; s++) {
        char d[128];
        snprintf(d, sizeof d, "gray/%s/only/x.png", s ? "test" : "train");
        const char *p = at(d);
        char dir[1024];
        snprintf(dir, sizeof dir, "%s", p);
        *strrchr(dir, '/') = '\0';
        mkdirs(dir);
        write_png(p, S, S, PNG_COLOR_TYPE_GRAY, 8, gray, NULL, 0);
    }
    snprintf(spec, sizeof spec, "folder:%s", at("gray"));
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_OK && ds.train.c == 1 && ds.num_classes == 1 && memcmp(ds.train.pixels, gray, sizeof gray) == 0,
          "gray folder: c = %d, exact", ds.train.c);
    data_free(&ds);

    /* bilinear resize: a row [0, 100] of width 2 becomes [0, 25, 75, 100] (half-pixel centres) */
    uint8_t in[2] = {0, 100}, out[4];
    data_resize_bilinear(out, 1, 4, in, 1, 2, 1);
    CHECK(out[0] == 0 && out[1] == 25 && out[2] == 75 && out[3] == 100, "bilinear 2 -> 4: %d %d %d %d", out[0], out[1],
          out[2], out[3]);
    uint8_t big[8 * 8], small[4];
    for (int i = 0; i < 64; i++) big[i] = (uint8_t)(i % 8 < 4 ? 10 : 200);
    data_resize_bilinear(small, 2, 2, big, 8, 8, 1);
    CHECK(small[0] == 10 && small[1] == 200 && small[2] == 10 && small[3] == 200, "bilinear 8 -> 2 keeps halves: %d %d",
          small[0], small[1]);
}

static void test_folder_jpeg(void) {
    enum { H = 16, W = 24 };
    uint8_t rgb[H * W * 3], gray[H * W];
    smooth_rgb(rgb, H, W, 1);
    for (int i = 0; i < H * W; i++) gray[i] = (uint8_t)(30 + i % W * 5 + i / W * 3);
    const char *files[4] = {"jpgs/train/c0/a.jpg", "jpgs/train/c1/b.JPEG", "jpgs/test/c0/c.jpeg", "jpgs/test/c1/d.jpg"};
    for (int i = 0; i < 4; i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s", at(files[i]));
        *strrchr(dir, '/') = '\0';
        mkdirs(dir);
        if (i % 2 == 0) write_jpeg(at(files[i]), W, H, 3, rgb, 95);
        else write_jpeg(at(files[i]), W, H, 1, gray, 95);
    }
    char spec[1200];
    snprintf(spec, sizeof spec, "folder:%s", at("jpgs"));
    Dataset ds;
    NcError e = {0};
    int rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_OK && ds.train.n == 2 && ds.train.c == 3 && ds.train.h == H && ds.train.w == W,
          "JPEG folder (RGB and gray, .jpg/.JPEG/.jpeg) loads %d x %d x %d: %s", ds.train.h, ds.train.w, ds.train.c,
          rc ? e.msg : "ok");
    if (rc) return;
    int w, h, c, bad = 0;
    double err_rgb = 0;
    uint8_t *ref = ref_jpeg(at(files[0]), &w, &h, &c);
    for (int i = 0; i < H * W * 3; i++) {
        bad += ds.train.pixels[i] != ref[i];
        err_rgb += fabs((double)ds.train.pixels[i] - rgb[i]);
    }
    free(ref);
    ref = ref_jpeg(at(files[1]), &w, &h, &c);
    for (int i = 0; i < H * W; i++)
        for (int ch = 0; ch < 3; ch++) bad += ds.train.pixels[H * W * 3 + i * 3 + ch] != ref[i];
    free(ref);
    err_rgb /= H * W * 3;
    CHECK(bad == 0 && c == 1, "JPEG pixels equal libjpeg's own decoding (gray expanded): %d differ", bad);
    CHECK(err_rgb < 3.0, "JPEG q95 close to the original: mean |error| %.2f", err_rgb);
    data_free(&ds);

    /* mixed sizes: an error naming both files, or a resize */
    write_jpeg(at("jpgs/test/c1/d.jpg"), W / 2, H, 1, gray, 95);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "mixed image sizes") && strstr(e.msg, "train/c0/a.jpg") &&
              strstr(e.msg, "test/c1/d.jpg") && strstr(e.msg, "16 x 12"),
          "mixed sizes: %s", e.msg);
    DataOpts o = {.resize_h = 8, .resize_w = 8};
    rc = data_load(spec, &o, &ds, &e);
    CHECK(rc == NC_OK && ds.train.h == 8 && ds.test.w == 8 && ds.test.n == 2, "with resize 8 x 8 they load: %s",
          rc ? e.msg : "ok");
    data_free(&ds);

    /* corrupt JPEGs: truncated, and a destroyed header */
    size_t len;
    uint8_t *j = slurp(at(files[0]), &len);
    write_bytes(at(files[0]), j, len / 2);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "train/c0/a.jpg") && strstr(e.msg, "corrupt JPEG"), "truncated JPEG: %s", e.msg);
    memset(j + 4, 0x01, 40);  /* keep the SOI marker and the APP0 marker, ruin the rest of the header */
    write_bytes(at(files[0]), j, len);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "train/c0/a.jpg") && strstr(e.msg, "corrupt JPEG"), "bad JPEG header: %s", e.msg);
    write_bytes(at(files[0]), "GIF89a....", 10);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "not a JPEG or PNG"), "not an image: %s", e.msg);
    free(j);
}

static void test_folder_errors(void) {
    enum { S = 4 };
    uint8_t gray[S * S] = {0};
    mkdirs(at("fe/train/a"));
    mkdirs(at("fe/train/b"));
    mkdirs(at("fe/test/a"));
    mkdirs(at("fe/test/b"));
    write_png(at("fe/train/a/1.png"), S, S, PNG_COLOR_TYPE_GRAY, 8, gray, NULL, 0);
    write_png(at("fe/test/a/1.png"), S, S, PNG_COLOR_TYPE_GRAY, 8, gray, NULL, 0);
    write_png(at("fe/test/b/1.png"), S, S, PNG_COLOR_TYPE_GRAY, 8, gray, NULL, 0);
    char spec[1200];
    snprintf(spec, sizeof spec, "folder:%s", at("fe"));
    Dataset ds;
    NcError e = {0};
    int rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "fe/train/b") && strstr(e.msg, "empty class folder"), "empty class folder: %s", e.msg);
    write_png(at("fe/train/b/1.png"), S, S, PNG_COLOR_TYPE_GRAY, 8, gray, NULL, 0);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_OK, "then it loads: %s", rc ? e.msg : "ok");
    data_free(&ds);
    /* a corrupt PNG: a flipped byte in the image data (CRC), then truncated */
    size_t len;
    uint8_t *p = slurp(at("fe/train/b/1.png"), &len);
    uint8_t *q = malloc(len);
    memcpy(q, p, len);
    q[len - 20] ^= 0xff;
    write_bytes(at("fe/train/b/1.png"), q, len);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "fe/train/b/1.png") && strstr(e.msg, "corrupt PNG"), "PNG with a flipped byte: %s", e.msg);
    write_bytes(at("fe/train/b/1.png"), p, len - 30);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "fe/train/b/1.png") && strstr(e.msg, "corrupt PNG"), "truncated PNG: %s", e.msg);
    free(p);
    free(q);
    /* sizes come from the headers, before anything is decoded: an image over the limit (16384 x
       4096 = 2^26 pixels) is refused for its size, and mixed sizes are found, though decoding the
       second file would fail */
    write_png(at("fe/train/b/1.png"), S, S, PNG_COLOR_TYPE_GRAY, 8, gray, NULL, 0);
    write_png_header_only(at("fe/train/b/2.png"), 16384, 4096, PNG_COLOR_TYPE_RGB);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "fe/train/b/2.png") && strstr(e.msg, "width 16384, height 4096") &&
              strstr(e.msg, "larger than allowed") && !strstr(e.msg, "corrupt"),
          "image over the size limit: %s", e.msg);
    write_png_header_only(at("fe/train/b/2.png"), 8, 6, PNG_COLOR_TYPE_GRAY);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "mixed image sizes") && strstr(e.msg, "fe/train/b/2.png is 6 x 8"),
          "mixed sizes found from the headers, before decoding: %s", e.msg);
    DataImage hd;
    size_t hlen;
    uint8_t *hb = slurp(at("fe/train/b/2.png"), &hlen);
    CHECK(hb && data_image_header(hb, hlen, "2.png", &hd, &e) == NC_OK && hd.h == 6 && hd.w == 8 && hd.c == 1 &&
              !hd.pixels && data_decode_png(hb, hlen, "2.png", &hd, &e) == NC_EFILE,
          "data_image_header reads what decoding refuses: %d x %d x %d", hd.h, hd.w, hd.c);
    free(hb);
    DataOpts rs = {.resize_h = 4, .resize_w = 4};
    rc = data_load(spec, &rs, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "fe/train/b/2.png") && strstr(e.msg, "corrupt PNG"),
          "with --resize the sizes may differ, and the bad file is found decoding: %s", e.msg);
    remove(at("fe/train/b/2.png"));
    /* test classes differ from train */
    write_png(at("fe/train/b/1.png"), S, S, PNG_COLOR_TYPE_GRAY, 8, gray, NULL, 0);
    mkdirs(at("fe/test/c"));
    write_png(at("fe/test/c/1.png"), S, S, PNG_COLOR_TYPE_GRAY, 8, gray, NULL, 0);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "class folders differ") && strstr(e.msg, "'c'"), "test classes differ: %s", e.msg);
    /* val/ in place of test/ (ImageNet's layout): the test split, named in messages as val */
    const char *fv[5] = {"fv/train/a/1.png", "fv/train/b/1.png", "fv/val/a/1.png", "fv/val/b/1.png", "fv/val/b/2.png"};
    for (int i = 0; i < 5; i++) {
        char d[64];
        snprintf(d, sizeof d, "%.*s", (int)(strrchr(fv[i], '/') - fv[i]), fv[i]);
        mkdirs(at(d));
        gray[0] = (uint8_t)(10 * i);
        write_png(at(fv[i]), S, S, PNG_COLOR_TYPE_GRAY, 8, gray, NULL, 0);
    }
    gray[0] = 0;
    snprintf(spec, sizeof spec, "folder:%s", at("fv"));
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_OK && ds.train.n == 2 && ds.test.n == 3 && ds.test.labels[2] == 1 && ds.test.pixels[2 * S * S] == 40,
          "DIR/val is the test split when DIR/test is not there: %s", rc ? e.msg : "3 images, the last of class b");
    data_free(&ds);
    mkdirs(at("fv/val/c"));
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "fv/val: class folders differ") && strstr(e.msg, "in val"), "val classes differ: %s", e.msg);
    /* missing test directory, missing root, empty train */
    mkdirs(at("fe2/train"));
    snprintf(spec, sizeof spec, "folder:%s", at("fe2"));
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "no test split") && strstr(e.msg, "fe2/test and ") && strstr(e.msg, "fe2/val)"),
          "missing test/ and val/: the message names both: %s", e.msg);
    mkdirs(at("fe4/val"));
    snprintf(spec, sizeof spec, "folder:%s", at("fe4"));
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "no training split") && strstr(e.msg, "fe4/train"), "missing train/: %s", e.msg);
    mkdirs(at("fe3"));
    write_bytes(at("fe3/data_batch_1"), "x", 1);
    snprintf(spec, sizeof spec, "folder:%s", at("fe3"));
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "no training split") && strstr(e.msg, "use cifar10:"), "a CIFAR directory as folder: %s", e.msg);
    snprintf(spec, sizeof spec, "folder:%s", at("fe2"));
    mkdirs(at("fe2/test"));
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "fe2/train") && strstr(e.msg, "empty dataset"), "no classes: %s", e.msg);
    snprintf(spec, sizeof spec, "folder:%s", at("nowhere"));
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "nowhere") && strstr(e.msg, "no such directory"), "missing directory: %s", e.msg);
}

/* JPEG headers: one that starts past the first 64 KiB (two large comments before the frame) is
   read whole; one whose frame claims 8192 x 4096 (2^25 pixels) is refused before decoding. */
static void test_folder_jpeg_headers(void) {
    enum { W = 16, H = 8 };
    uint8_t rgb[H * W * 3];
    smooth_rgb(rgb, H, W, 3);
    mkdirs(at("jh/train/a"));
    mkdirs(at("jh/test/a"));
    write_jpeg(at("jh/test/a/1.jpg"), W, H, 3, rgb, 95);
    /* the same image with 2 x 60000 bytes of comments before its frame header */
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    FILE *f = fopen(at("jh/train/a/1.jpg"), "wb");
    jpeg_stdio_dest(&ci, f);
    ci.image_width = W;
    ci.image_height = H;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 95, TRUE);
    jpeg_start_compress(&ci, TRUE);
    uint8_t *com = malloc(60000);
    memset(com, 'x', 60000);
    jpeg_write_marker(&ci, JPEG_COM, com, 60000);
    jpeg_write_marker(&ci, JPEG_COM, com, 60000);
    free(com);
    for (int y = 0; y < H; y++) {
        JSAMPROW row = rgb + y * W * 3;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    fclose(f);
    DataImage hd = {0};
    NcError e = {0};
    int rc = data_read_header(at("jh/train/a/1.jpg"), &hd, &e);
    CHECK(rc == NC_OK && hd.h == H && hd.w == W && hd.c == 3, "JPEG header after 120 kB of comments: %d x %d x %d %s",
          hd.h, hd.w, hd.c, rc ? e.msg : "");
    char spec[1200];
    snprintf(spec, sizeof spec, "folder:%s", at("jh"));
    Dataset ds;
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_OK && ds.train.h == H && ds.train.w == W && ds.train.c == 3 &&
              memcmp(ds.train.pixels, ds.test.pixels, (size_t)H * W * 3) == 0,
          "and the folder loads, the same pixels as without the comments: %s", rc ? e.msg : "ok");
    if (rc == NC_OK) data_free(&ds);
    /* the frame header (SOF0: FF C0, length, precision, height, width) patched to 8192 x 4096 */
    size_t len;
    uint8_t *b = slurp(at("jh/test/a/1.jpg"), &len);
    size_t sof = 0;
    for (size_t i = 2; b && i + 9 < len && !sof; i++)
        if (b[i] == 0xFF && b[i + 1] == 0xC0) sof = i;
    CHECK(sof > 0, "SOF0 found at %zu", sof);
    b[sof + 5] = 4096 >> 8, b[sof + 6] = 0, b[sof + 7] = 8192 >> 8, b[sof + 8] = 0;
    write_bytes(at("jh/test/a/1.jpg"), b, len);
    free(b);
    rc = data_load(spec, NULL, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "jh/test/a/1.jpg") && strstr(e.msg, "width 8192, height 4096") &&
              strstr(e.msg, "larger than allowed") && !strstr(e.msg, "corrupt"),
          "JPEG over the size limit: %s", e.msg);
}

static void test_synth_imbalance(void) {
    Dataset a, b, c;
    NcError e = {0};
    DataOpts o = {.seed = 7};
    int rc = data_load("synth:5:16:40", &o, &a, &e);
    CHECK(rc == NC_OK && a.num_classes == 5 && a.train.n == 200 && a.test.n == 40 && a.train.h == 16 && a.train.c == 3,
          "synth:5:16:40: 200 train, 40 test, 16x16x3: %s", rc ? e.msg : "ok");
    if (rc) return;
    data_load("synth:5:16:40", &o, &b, &e);
    o.seed = 8;
    data_load("synth:5:16:40", &o, &c, &e);
    size_t nb = (size_t)a.train.n * 16 * 16 * 3;
    CHECK(memcmp(a.train.pixels, b.train.pixels, nb) == 0 && memcmp(a.test.pixels, b.test.pixels, (size_t)a.test.n * 768) == 0,
          "synth is a function of the seed");
    CHECK(memcmp(a.train.pixels, c.train.pixels, nb) != 0, "another seed, other images");
    DataStats st;
    data_stats(&a, &a.train, &st);
    int balanced = 1;
    for (int k = 0; k < 5; k++) balanced &= st.per_class[k] == 40;
    free(st.per_class);
    CHECK(balanced, "40 training images per class");
    /* learnable: nearest class mean (train) classifies the test split; images within a class differ */
    double *mu = calloc(5 * 768, sizeof(double));
    for (int i = 0; i < a.train.n; i++)
        for (int j = 0; j < 768; j++) mu[a.train.labels[i] * 768 + j] += a.train.pixels[(size_t)i * 768 + j] / 40.0;
    int correct = 0;
    for (int i = 0; i < a.test.n; i++) {
        double best = INFINITY;
        int arg = -1;
        for (int k = 0; k < 5; k++) {
            double d = 0;
            for (int j = 0; j < 768; j++) {
                double t = a.test.pixels[(size_t)i * 768 + j] - mu[k * 768 + j];
                d += t * t;
            }
            if (d < best) { best = d; arg = k; }
        }
        correct += arg == a.test.labels[i];
    }
    free(mu);
    double within = 0;
    for (int j = 0; j < 768; j++) within += fabs((double)a.train.pixels[j] - a.train.pixels[(size_t)5 * 768 + j]);
    within /= 768;
    CHECK(correct >= 38, "nearest class mean: %d / 40 test images right", correct);
    CHECK(a.train.labels[0] == a.train.labels[5] && within > 10,
          "two images of one class differ: mean |difference| %.1f grey levels", within);

    /* imbalance zipf:1 keeps round(40 / c) = 40, 20, 13, 10, 8 of classes 1..5, in order; test untouched */
    o.seed = 7;
    o.imbalance_zipf = 1.0;
    Dataset z;
    rc = data_load("synth:5:16:40", &o, &z, &e);
    data_stats(&z, &z.train, &st);
    int want[5] = {40, 20, 13, 10, 8}, ok = rc == NC_OK;
    for (int k = 0; ok && k < 5; k++) ok &= st.per_class[k] == want[k];
    free(st.per_class);
    CHECK(ok && z.train.n == 91 && z.test.n == 40 && memcmp(z.test.pixels, a.test.pixels, (size_t)a.test.n * 768) == 0,
          "zipf:1 counts 40 20 13 10 8, test untouched");
    /* every kept image is an original image of the same class, in increasing original order */
    int j = 0, sub = 1;
    for (int i = 0; ok && i < z.train.n; i++) {
        while (j < a.train.n && memcmp(a.train.pixels + (size_t)j * 768, z.train.pixels + (size_t)i * 768, 768) != 0) j++;
        if (j == a.train.n || a.train.labels[j] != z.train.labels[i]) { sub = 0; break; }
        j++;
    }
    CHECK(sub, "kept images are an ordered subset of the originals");
    Dataset z2;
    o.seed = 99;
    data_load("synth:5:16:40", &o, &z2, &e);  /* other images (and another subset) */
    int same = z2.train.n == z.train.n;
    CHECK(same, "the counts do not depend on the seed");
    o.imbalance_zipf = 3;
    o.seed = 7;
    Dataset z3;
    rc = data_load("synth:5:16:40", &o, &z3, &e);
    data_stats(&z3, &z3.train, &st);
    CHECK(rc == NC_OK && st.per_class[4] == 1 && st.per_class[1] == 5, "zipf:3: class 2 keeps 5, class 5 keeps 1 (at least 1)");
    free(st.per_class);
    data_free(&z3);
    data_free(&z2);
    data_free(&z);
    data_free(&a);
    data_free(&b);
    data_free(&c);
}

static void test_stats(void) {
    Dataset ds = {0};
    const char *names[2] = {"x", "y"};
    data_set_names(&ds, 2, names);
    data_split_alloc(&ds.train, 3, 1, 2, 3);
    /* channel 0: 0, 255, 0, 255, 0, 255 -> mean 0.5, std 0.5; channel 1: all 51 -> 0.2, 0; channel 2: 0..5 */
    uint8_t px[18];
    for (int p = 0; p < 6; p++) {
        px[p * 3] = (uint8_t)(p % 2 ? 255 : 0);
        px[p * 3 + 1] = 51;
        px[p * 3 + 2] = (uint8_t)p;
    }
    memcpy(ds.train.pixels, px, 18);
    ds.train.labels[0] = 1;
    ds.train.labels[1] = 1;
    ds.train.labels[2] = 0;
    DataStats st;
    data_stats(&ds, &ds.train, &st);
    double m2 = 2.5 / 255, s2 = sqrt(17.5 / 6) / 255;
    CHECK(st.n == 3 && st.per_class[0] == 1 && st.per_class[1] == 2, "stats counts per class: %d %d", st.per_class[0],
          st.per_class[1]);
    CHECK(fabs(st.mean[0] - 0.5) < 1e-15 && fabs(st.std[0] - 0.5) < 1e-15 && fabs(st.mean[1] - 0.2) < 1e-15 &&
              st.std[1] == 0 && fabs(st.mean[2] - m2) < 1e-15 && fabs(st.std[2] - s2) < 1e-15,
          "per-channel mean/std of pixel/255: %.6f/%.6f %.6f/%.6f %.6f/%.6f", st.mean[0], st.std[0], st.mean[1], st.std[1],
          st.mean[2], st.std[2]);
    free(st.per_class);
    data_free(&ds);
}

static int datasets_equal(const Dataset *a, const Dataset *b) {
    if (strcmp(a->name, b->name) || a->num_classes != b->num_classes) return 0;
    for (int k = 0; k < a->num_classes; k++)
        if (strcmp(a->class_names[k], b->class_names[k])) return 0;
    const DataSplit *x[2] = {&a->train, &a->test}, *y[2] = {&b->train, &b->test};
    for (int s = 0; s < 2; s++) {
        if (x[s]->n != y[s]->n || x[s]->h != y[s]->h || x[s]->w != y[s]->w || x[s]->c != y[s]->c) return 0;
        if (memcmp(x[s]->pixels, y[s]->pixels, (size_t)x[s]->n * x[s]->h * x[s]->w * x[s]->c)) return 0;
        if (memcmp(x[s]->labels, y[s]->labels, sizeof(int32_t) * (size_t)x[s]->n)) return 0;
    }
    return 1;
}

static void test_packed(void) {
    Dataset a, b;
    NcError e = {0};
    char spec[1200];
    snprintf(spec, sizeof spec, "folder:%s", at("pngs"));
    int rc = data_load(spec, NULL, &a, &e);
    const char *path = at("pngs.packed");
    char ppath[1024];
    snprintf(ppath, sizeof ppath, "%s", path);
    if (!rc) rc = data_convert(&a, ppath, &e);
    snprintf(spec, sizeof spec, "packed:%s", ppath);
    if (!rc) rc = data_load(spec, NULL, &b, &e);
    CHECK(rc == NC_OK && datasets_equal(&a, &b) && strcmp(b.source, ppath) == 0 && strcmp(b.name, "folder") == 0,
          "packed round trip of the PNG folder equals the original: %s", rc ? e.msg : "ok");
    if (rc) return;
    data_free(&b);
    Dataset s, s2;
    rc = data_load("synth:3:8:5", NULL, &s, &e);
    char sp2[1024];
    snprintf(sp2, sizeof sp2, "%s", at("synth.packed"));
    data_convert(&s, sp2, &e);
    snprintf(spec, sizeof spec, "packed:%s", sp2);
    rc = data_load(spec, NULL, &s2, &e);
    CHECK(rc == NC_OK && datasets_equal(&s, &s2), "packed round trip of synth");
    data_free(&s);
    data_free(&s2);

    size_t len;
    uint8_t *buf = slurp(ppath, &len);
    snprintf(spec, sizeof spec, "packed:%s", ppath);
    /* a flipped byte in the pixels, in a name, in the header's checksum */
    size_t where[3] = {len - 100, 40, 24};
    for (int t = 0; t < 3; t++) {
        buf[where[t]] ^= 0x10;
        write_bytes(ppath, buf, len);
        buf[where[t]] ^= 0x10;
        rc = data_load(spec, NULL, &b, &e);
        CHECK(rc == NC_EFILE && strstr(e.msg, "pngs.packed") && strstr(e.msg, "checksum mismatch"),
              "flipped byte at %zu: %s", where[t], e.msg);
    }
    write_bytes(ppath, buf, len - 1);
    rc = data_load(spec, NULL, &b, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "pngs.packed") && strstr(e.msg, "truncated"), "truncated packed file: %s", e.msg);
    write_bytes(ppath, buf, 20);
    rc = data_load(spec, NULL, &b, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "truncated"), "truncated header: %s", e.msg);
    buf[3] = 'X';
    write_bytes(ppath, buf, len);
    rc = data_load(spec, NULL, &b, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "magic"), "wrong magic: %s", e.msg);
    free(buf);
    snprintf(spec, sizeof spec, "packed:%s", at("nothing.packed"));
    rc = data_load(spec, NULL, &b, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "nothing.packed") && strstr(e.msg, "cannot open"), "missing packed file: %s", e.msg);
    char bad[1200];
    snprintf(bad, sizeof bad, "/proc/ncelab-no/such/dir/x.packed");
    rc = data_convert(&a, bad, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "x.packed"), "convert to an unwritable path: %s", e.msg);
    data_free(&a);
}

static void test_spec_errors(void) {
    const char *bad[] = {"", "bogus:x", "cifar10", "cifar10:", "mnist", "folder:", "packed:", "synth", "synth:",
                         "synth:1", "synth:1001", "synth:10:7", "synth:10:257", "synth:x", "synth:10:32:0",
                         "synth:10:32:5:9", "synth:10:32:5.5", "cifar100::coarse", "synth:1000:256:100000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Dataset ds;
        NcError e = {0};
        int rc = data_load(bad[i], NULL, &ds, &e);
        CHECK(rc == NC_EUSAGE && strlen(e.msg) > 10 && (i == 0 || strstr(e.msg, bad[i])), "SPEC '%s': %s", bad[i], e.msg);
    }
    DataSpec sp;
    NcError e;
    CHECK(data_spec_parse("cifar100:/a:b/c:coarse", &sp, &e) == NC_OK && sp.coarse && strcmp(sp.path, "/a:b/c") == 0,
          "cifar100 DIR with colons and :coarse: '%s'", sp.path);
    CHECK(data_spec_parse("fmnist", &sp, &e) == NC_OK && strcmp(sp.path, "/usr/share/datasets/fashion-mnist") == 0 &&
              sp.fashion,
          "fmnist defaults to /usr/share/datasets/fashion-mnist");
    CHECK(data_spec_parse("synth:10", &sp, &e) == NC_OK && sp.synth_size == 32 && sp.synth_train == 500 && sp.synth_test == 100,
          "synth defaults: 32 x 32, 500 + 100 per class");
    Dataset ds;
    DataOpts o = {.resize_h = 8};
    CHECK(data_load("synth:3:8:5", &o, &ds, &e) == NC_EUSAGE && strstr(e.msg, "resize"), "resize with one side: %s", e.msg);
    DataOpts o2 = {.imbalance_zipf = -1};
    CHECK(data_load("synth:3:8:5", &o2, &ds, &e) == NC_EUSAGE && strstr(e.msg, "imbalance"), "negative zipf: %s", e.msg);
}

static void test_fmnist(void) {
    const char *dir = "/usr/share/datasets/fashion-mnist";
    struct stat st;
    if (stat(dir, &st) != 0) {
        printf("SKIP  %s not installed\n", dir);
        return;
    }
    Dataset ds;
    NcError e = {0};
    double t0 = nc_now();
    int rc = data_load("fmnist", NULL, &ds, &e);
    double secs = nc_now() - t0;
    CHECK(rc == NC_OK && ds.train.n == 60000 && ds.test.n == 10000 && ds.train.h == 28 && ds.train.w == 28 &&
              ds.train.c == 1 && ds.num_classes == 10,
          "Fashion-MNIST: %d + %d images of %dx%dx%d (%.2f s)", ds.train.n, ds.test.n, ds.train.h, ds.train.w, ds.train.c, secs);
    if (rc) return;
    DataStats s;
    data_stats(&ds, &ds.train, &s);
    int even = 1;
    for (int k = 0; k < 10; k++) even &= s.per_class[k] == 6000;
    CHECK(even, "6000 training images per class");
    /* published statistics of the training set: mean 0.2860, std 0.3530 */
    CHECK(fabs(s.mean[0] - 0.2860) < 5e-4 && fabs(s.std[0] - 0.3530) < 5e-4, "train mean %.4f, std %.4f", s.mean[0], s.std[0]);
    CHECK(ds.train.labels[0] == 9 && ds.test.labels[0] == 9 && strcmp(ds.class_names[9], "Ankle boot") == 0,
          "first images are ankle boots (label 9)");
    free(s.per_class);
    data_free(&ds);
}

int main(void) {
    const char *base = getenv("NCELAB_TESTDIR");
    snprintf(work, sizeof work, "%s/data_work", base ? base : "/tmp");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", work, work);
    if (system(cmd) != 0) return 1;
    test_cifar10();
    test_cifar100();
    test_idx();
    test_folder_png();
    test_folder_jpeg();
    test_folder_errors();
    test_folder_jpeg_headers();
    test_synth_imbalance();
    test_stats();
    test_packed();
    test_spec_errors();
    test_fmnist();
    return check_done();
}
