// fuzz_folder.c -- libFuzzer harness: the input bytes build a small directory tree, then the image-folder reader walks it.
#include "fuzz_util.h"

#include <errno.h>
#include <setjmp.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <png.h>

#include "../../src/data/data_internal.h"

/* The input is a little program; each instruction is an opcode byte and its operands:
     op % 4 == 0  mkdir NAME and enter it (at most 5 levels deep)
     op % 4 == 1  file NAME with CONTENT
     op % 4 == 2  leave the directory
     op % 4 == 3  symbolic link NAME -> one of a few relative targets (op / 4 picks it)
   NAME is a byte: < 0xF0 picks from names[] below, else the next (byte - 0xF0) bytes are the
   name itself ('/' becomes '_'). CONTENT is a byte: % 8 picks a tiny image, an empty file,
   raw bytes from the input, a truncated or a corrupted image. The first byte holds the reader's
   options: bit 0 set resizes to ((b >> 1) % 5 + 1) x ((b >> 4) % 5 + 1). */

static const char *names[] = {
    "train", "test", "a", "b", "c", "0.png", "1.jpg", "2.JPEG", "3.png", "4.jpeg", "notes.txt", ".hidden.png",
    "dir.png", "B", "x.PNG", "\xc3\xa9.jpg", "a b.png", "png",
};
#define NNAMES ((int)(sizeof names / sizeof names[0]))

/* link targets, and how many levels each climbs: a link never points above the tree's root */
static const struct { const char *to; int up; } links[] = {
    {"..", 1}, {".", 0}, {"../train/a", 1}, {"0.png", 0}, {"missing", 0}, {"../train", 1}, {"../../test/a/0.png", 2},
    {"a/0.png", 0},
};

/* Tiny valid images, encoded once: gray and RGB PNG, an RGB PNG of another size, gray and RGB JPEG. */
typedef struct {
    uint8_t *b;
    size_t n, cap;
} Bytes;
static Bytes images[5];

static void png_put(png_structp png, png_bytep d, size_t n) {
    Bytes *o = png_get_io_ptr(png);
    if (o->n + n > o->cap) {
        o->cap = 2 * (o->n + n);
        o->b = realloc(o->b, o->cap);
    }
    memcpy(o->b + o->n, d, n);
    o->n += n;
}

static void png_flush_none(png_structp png) { (void)png; }

static void encode_png(Bytes *o, int w, int h, int c) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) abort();
    png_set_write_fn(png, o, png_put, png_flush_none);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    uint8_t row[64];
    for (int y = 0; y < h; y++) {
        for (int i = 0; i < w * c; i++) row[i] = (uint8_t)(40 * y + 13 * i);
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
}

static void encode_jpeg(Bytes *o, int w, int h, int c) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    unsigned char *out = NULL;
    unsigned long len = 0;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &out, &len);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = c;
    ci.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_start_compress(&ci, TRUE);
    uint8_t row[64];
    while (ci.next_scanline < ci.image_height) {
        for (int i = 0; i < w * c; i++) row[i] = (uint8_t)(30 * ci.next_scanline + 7 * i);
        JSAMPROW r = row;
        jpeg_write_scanlines(&ci, &r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    o->b = malloc(len);
    memcpy(o->b, out, len);
    o->n = len;
    free(out);
}

static void free_images(void) {
    for (int i = 0; i < 5; i++) free(images[i].b);
}

/* the cursor over the input */
typedef struct {
    const uint8_t *d;
    size_t n, at;
} In;

static int next(In *in) { return in->at < in->n ? in->d[in->at++] : -1; }

/* take_name: the next NAME into out; 0 at the end of the input */
static int take_name(In *in, char *out, size_t cap) {
    int b = next(in);
    if (b < 0) return 0;
    if (b < 0xF0) {
        snprintf(out, cap, "%s", names[b % NNAMES]);
        return 1;
    }
    size_t len = (size_t)(b - 0xF0) + 1, k = 0;
    for (; k < len && k + 1 < cap; k++) {
        int c = next(in);
        if (c < 0) break;
        out[k] = c == '/' || c == 0 ? '_' : (char)c;
    }
    out[k] = '\0';
    if (strcmp(out, ".") == 0 || strcmp(out, "..") == 0) out[0] = '_';  /* the tree stays under its root */
    return k > 0;
}

static void put_content(In *in, const char *path) {
    int b = next(in);
    if (b < 0) b = 0;
    const Bytes *img = &images[(b >> 3) % 5];
    switch (b % 8) {
    case 0: case 1: case 2: case 3:  /* a valid image (kind chosen by the high bits) */
        fuzz_write(path, img->b, img->n);
        break;
    case 4:  /* empty */
        fuzz_write(path, "", 0);
        break;
    case 5: {  /* raw bytes from the input: a length byte, then the bytes */
        size_t len = (size_t)(next(in) & 0xff);
        if (len > in->n - in->at) len = in->n - in->at;
        fuzz_write(path, in->d + in->at, len);
        in->at += len;
        break;
    }
    case 6: {  /* a valid image cut short */
        size_t len = (size_t)(next(in) & 0xff) * img->n / 256;
        fuzz_write(path, img->b, len);
        break;
    }
    default: {  /* a valid image with one byte changed */
        uint8_t *c = malloc(img->n);
        memcpy(c, img->b, img->n);
        int at = next(in), v = next(in);
        c[(size_t)(at < 0 ? 0 : at) * img->n / 256] ^= (uint8_t)(v < 0 ? 0xff : v);
        fuzz_write(path, c, img->n);
        free(c);
        break;
    }
    }
}

/* build: runs the program under root; the tree stays small (the input is at most a few KB) */
static void build(In *in, const char *root) {
    char dir[4096], name[64], path[4200];
    snprintf(dir, sizeof dir, "%s", root);
    int depth = 0;
    for (int op; (op = next(in)) >= 0;) {
        switch (op % 4) {
        case 0: {
            if (!take_name(in, name, sizeof name)) return;
            snprintf(path, sizeof path, "%s/%s", dir, name);
            struct stat st;
            if (depth < 5 && (mkdir(path, 0755) == 0 || errno == EEXIST) && lstat(path, &st) == 0 &&
                S_ISDIR(st.st_mode) && strlen(path) < sizeof dir - 80) {  /* never enter a link */
                snprintf(dir, sizeof dir, "%s", path);
                depth++;
            }
            break;
        }
        case 1: {
            if (!take_name(in, name, sizeof name)) return;
            snprintf(path, sizeof path, "%s/%s", dir, name);
            struct stat st;
            if (lstat(path, &st) == 0) break;  /* never write through a link or over a directory */
            put_content(in, path);
            break;
        }
        case 2:
            if (depth > 0) {
                *strrchr(dir, '/') = '\0';
                depth--;
            }
            break;
        default: {
            if (!take_name(in, name, sizeof name)) return;
            snprintf(path, sizeof path, "%s/%s", dir, name);
            int l = (op / 4) % 8;
            if (links[l].up <= depth && symlink(links[l].to, path) != 0) { /* the name exists: leave it */ }
            break;
        }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char root[600];
    if (!root[0]) {
        encode_png(&images[0], 2, 2, 1);
        encode_png(&images[1], 2, 2, 3);
        encode_png(&images[2], 3, 2, 3);
        encode_jpeg(&images[3], 2, 2, 1);
        encode_jpeg(&images[4], 2, 2, 3);
        atexit(free_images);
        snprintf(root, sizeof root, "%s/d", fuzz_scratch());
    }
    if (mkdir(root, 0755) != 0) abort();
    In in = {data, size, 0};
    DataOpts opts = {0};
    int o = next(&in);
    if (o > 0 && (o & 1)) {
        opts.resize_h = (o >> 1) % 5 + 1;
        opts.resize_w = (o >> 4) % 5 + 1;
    }
    build(&in, root);

    Dataset ds;
    NcError err;
    memset(&ds, 0, sizeof ds);
    err.msg[0] = '\0';
    if (data_read_folder(root, &opts, &ds, &err) == NC_OK) {
        const DataSplit *sp[2] = {&ds.train, &ds.test};
        if (ds.num_classes < 1 || !ds.class_names) abort();
        for (int s = 0; s < 2; s++) {
            const DataSplit *x = sp[s];
            if (x->n < 1 || x->h < 1 || x->w < 1 || (x->c != 1 && x->c != 3)) abort();
            if (opts.resize_h && (x->h != opts.resize_h || x->w != opts.resize_w)) abort();
            for (int i = 0; i < x->n; i++)
                if (x->labels[i] < 0 || x->labels[i] >= ds.num_classes) abort();
            volatile uint8_t last = x->pixels[(size_t)x->n * x->h * x->w * x->c - 1];
            (void)last;
        }
    } else if (!err.msg[0]) {
        abort();
    }
    data_free(&ds);
    fuzz_rm_tree(root);
    return 0;
}
