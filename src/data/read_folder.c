// read_folder.c -- image folders DIR/{train,test}/<class>/*.{jpg,jpeg,png}: libjpeg-turbo/libpng decoding in parallel.
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <png.h>

#include "data_internal.h"

/* ---- JPEG: libjpeg-turbo with an error manager that longjmps instead of exiting ---- */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} JpegErr;

/* Everything the decoder touches between setjmp and longjmp lives here, in memory. */
typedef struct {
    struct jpeg_decompress_struct ci;
    JpegErr je;
    uint8_t *pix;
    int h, w, c, cmyk;
    char bad[160];  /* a problem found without libjpeg's help (size limits) */
} JpegJob;

static void jpeg_on_error(j_common_ptr ci) {
    JpegErr *e = (JpegErr *)ci->err;
    e->pub.format_message(ci, e->msg);
    longjmp(e->jb, 1);
}

/* libjpeg reports truncated and corrupt data as warnings (level -1) and goes on with gray
   fill; for a dataset that is an error. Trace messages (level >= 0) are ignored. */
static void jpeg_on_message(j_common_ptr ci, int level) {
    if (level < 0) jpeg_on_error(ci);
}

static int jpeg_run(JpegJob *j, const uint8_t *buf, size_t len) {
    j->ci.err = jpeg_std_error(&j->je.pub);
    j->je.pub.error_exit = jpeg_on_error;
    j->je.pub.emit_message = jpeg_on_message;
    if (setjmp(j->je.jb)) return 1;
    jpeg_create_decompress(&j->ci);
    jpeg_mem_src(&j->ci, buf, (unsigned long)len);
    jpeg_read_header(&j->ci, TRUE);
    switch (j->ci.jpeg_color_space) {
    case JCS_GRAYSCALE: j->ci.out_color_space = JCS_GRAYSCALE; break;
    case JCS_CMYK:
    case JCS_YCCK: j->ci.out_color_space = JCS_CMYK; j->cmyk = 1; break;
    default: j->ci.out_color_space = JCS_RGB; break;
    }
    if (j->ci.image_width > DATA_MAX_SIDE || j->ci.image_height > DATA_MAX_SIDE ||
        (long)j->ci.image_width * (long)j->ci.image_height > DATA_MAX_PIXELS) {
        snprintf(j->bad, sizeof j->bad, "%u x %u pixels is larger than allowed", (unsigned)j->ci.image_width,
                 (unsigned)j->ci.image_height);
        return 1;
    }
    jpeg_start_decompress(&j->ci);
    int oc = j->ci.output_components;
    j->h = (int)j->ci.output_height;
    j->w = (int)j->ci.output_width;
    if (oc != (j->cmyk ? 4 : j->ci.out_color_space == JCS_GRAYSCALE ? 1 : 3) || j->h <= 0 || j->w <= 0) {
        snprintf(j->bad, sizeof j->bad, "unexpected decoder output (%d components)", oc);
        return 1;
    }
    j->pix = nc_malloc((size_t)j->h * j->w * oc);
    while (j->ci.output_scanline < j->ci.output_height) {
        JSAMPROW row = j->pix + (size_t)j->ci.output_scanline * j->w * oc;
        jpeg_read_scanlines(&j->ci, &row, 1);
    }
    jpeg_finish_decompress(&j->ci);
    j->c = j->cmyk ? 3 : oc;
    return 0;
}

int data_decode_jpeg(const uint8_t *buf, size_t len, const char *path, DataImage *img, NcError *err) {
    JpegJob *j = nc_calloc(1, sizeof *j);
    int bad = jpeg_run(j, buf, len);
    jpeg_destroy_decompress(&j->ci);
    int rc = NC_OK;
    if (bad) {
        free(j->pix);
        rc = nc_fail(err, NC_EFILE, "%s: corrupt JPEG: %s", path, j->bad[0] ? j->bad : j->je.msg);
    } else {
        if (j->cmyk) {
            /* Adobe CMYK (stored inverted, as Photoshop writes it): R = C * K / 255, ... */
            size_t n = (size_t)j->h * j->w;
            for (size_t i = 0; i < n; i++) {
                const uint8_t *q = j->pix + 4 * i;
                uint8_t *o = j->pix + 3 * i;
                unsigned k = q[3], r = (q[0] * k + 127) / 255, g = (q[1] * k + 127) / 255, b = (q[2] * k + 127) / 255;
                o[0] = (uint8_t)r;
                o[1] = (uint8_t)g;
                o[2] = (uint8_t)b;
            }
        }
        img->h = j->h;
        img->w = j->w;
        img->c = j->c;
        img->pixels = j->pix;
    }
    free(j);
    return rc;
}

/* ---- PNG: libpng reading from memory, errors through png_jmpbuf ---- */

typedef struct {
    const uint8_t *buf;
    size_t len, at;
    uint8_t *pix;
    png_bytep *rows;
    int h, w, c;
    char msg[200];
} PngJob;

static void png_on_error(png_structp png, png_const_charp m) {
    PngJob *j = png_get_error_ptr(png);
    snprintf(j->msg, sizeof j->msg, "%s", m);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp m) {
    (void)png;
    (void)m;  /* ancillary-chunk complaints (profiles, CRCs of optional chunks) do not change pixels */
}

static void png_read_mem(png_structp png, png_bytep out, size_t n) {
    PngJob *j = png_get_io_ptr(png);
    if (n > j->len - j->at) png_error(png, "truncated file");
    memcpy(out, j->buf + j->at, n);
    j->at += n;
}

static int png_run(PngJob *j, png_structp png, png_infop info) {
    if (setjmp(png_jmpbuf(png))) return 1;
    png_set_user_limits(png, DATA_MAX_SIDE, DATA_MAX_SIDE);
    png_set_read_fn(png, j, png_read_mem);
    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, type;
    png_get_IHDR(png, info, &w, &h, &depth, &type, NULL, NULL, NULL);
    if ((long)w * (long)h > DATA_MAX_PIXELS) png_error(png, "image larger than allowed");
    if (depth == 16) png_set_strip_16(png);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int c = png_get_channels(png, info);
    if ((c != 1 && c != 3) || png_get_rowbytes(png, info) != (size_t)w * c) png_error(png, "unsupported pixel format");
    j->h = (int)h;
    j->w = (int)w;
    j->c = c;
    j->pix = nc_malloc((size_t)h * w * c);
    j->rows = nc_malloc(sizeof(png_bytep) * h);
    for (png_uint_32 y = 0; y < h; y++) j->rows[y] = j->pix + (size_t)y * w * c;
    png_read_image(png, j->rows);
    png_read_end(png, NULL);
    return 0;
}

int data_decode_png(const uint8_t *buf, size_t len, const char *path, DataImage *img, NcError *err) {
    PngJob *j = nc_calloc(1, sizeof *j);
    j->buf = buf;
    j->len = len;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, j, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int bad = !info || png_run(j, png, info);
    png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
    free(j->rows);
    int rc = NC_OK;
    if (bad) {
        free(j->pix);
        rc = nc_fail(err, NC_EFILE, "%s: corrupt PNG: %s", path, j->msg[0] ? j->msg : "cannot start libpng");
    } else {
        img->h = j->h;
        img->w = j->w;
        img->c = j->c;
        img->pixels = j->pix;
    }
    free(j);
    return rc;
}

int data_decode_file(const char *path, DataImage *img, NcError *err) {
    uint8_t *buf;
    size_t len;
    int rc = data_read_small_file(path, (size_t)1 << 30, &buf, &len, err);
    if (rc) return rc;
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) rc = data_decode_jpeg(buf, len, path, img, err);
    else if (len >= 8 && memcmp(buf, png_sig, 8) == 0) rc = data_decode_png(buf, len, path, img, err);
    else rc = nc_fail(err, NC_EFILE, "%s: not a JPEG or PNG file (%s)", path, len ? "unknown signature" : "empty");
    free(buf);
    return rc;
}

void data_resize_bilinear(uint8_t *out, int oh, int ow, const uint8_t *in, int h, int w, int c) {
    int *x0 = nc_malloc(sizeof(int) * 2 * (size_t)ow), *x1 = x0 + ow;
    float *fx = nc_malloc(sizeof(float) * (size_t)ow);
    for (int x = 0; x < ow; x++) {
        float sx = ((float)x + 0.5f) * (float)w / (float)ow - 0.5f;
        if (sx < 0) sx = 0;
        if (sx > (float)(w - 1)) sx = (float)(w - 1);
        x0[x] = (int)sx;
        x1[x] = x0[x] + 1 < w ? x0[x] + 1 : w - 1;
        fx[x] = sx - (float)x0[x];
    }
    for (int y = 0; y < oh; y++) {
        float sy = ((float)y + 0.5f) * (float)h / (float)oh - 0.5f;
        if (sy < 0) sy = 0;
        if (sy > (float)(h - 1)) sy = (float)(h - 1);
        int y0 = (int)sy, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
        float fy = sy - (float)y0;
        const uint8_t *r0 = in + (size_t)y0 * w * c, *r1 = in + (size_t)y1 * w * c;
        uint8_t *o = out + (size_t)y * ow * c;
        for (int x = 0; x < ow; x++)
            for (int ch = 0; ch < c; ch++) {
                float a = r0[x0[x] * c + ch] + fx[x] * (r0[x1[x] * c + ch] - r0[x0[x] * c + ch]);
                float b = r1[x0[x] * c + ch] + fx[x] * (r1[x1[x] * c + ch] - r1[x0[x] * c + ch]);
                float v = a + fy * (b - a);
                o[x * c + ch] = (uint8_t)(v + 0.5f);
            }
    }
    free(x0);
    free(fx);
}

/* ---- the folder layout ---- */

typedef struct {
    char **v;
    int n, cap;
} Names;

static void names_add(Names *s, const char *name) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = nc_realloc(s->v, sizeof(char *) * (size_t)s->cap);
    }
    s->v[s->n++] = nc_strdup(name);
}

static void names_free(Names *s) {
    for (int i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 || strcasecmp(dot, ".png") == 0);
}

/* list_dir: sorted names in dir (hidden ones skipped): subdirectories (dirs = 1) or image files. */
static int list_dir(const char *dir, int dirs, Names *out, NcError *err) {
    DIR *d = opendir(dir);
    if (!d) return nc_fail(err, NC_EFILE, "%s: cannot open directory: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        int isdir = e->d_type == DT_DIR, isreg = e->d_type == DT_REG;
        if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
            char *p = nc_path_join(dir, e->d_name);
            struct stat st;
            if (stat(p, &st) == 0) {
                isdir = S_ISDIR(st.st_mode);
                isreg = S_ISREG(st.st_mode);
            }
            free(p);
        }
        if (dirs ? isdir : (isreg && is_image_name(e->d_name))) names_add(out, e->d_name);
    }
    closedir(d);
    if (out->n > 1) qsort(out->v, (size_t)out->n, sizeof(char *), cmp_str);
    return NC_OK;
}

typedef struct {
    char *path;
    int label;
} Entry;

typedef struct {
    Entry *v;
    int n, cap;
} Entries;

/* Lists DIR/split/<class>/ images for the given class names, in class then file order. */
static int list_split(const char *root, const Names *classes, Entries *out, int *count, NcError *err) {
    *count = 0;
    for (int k = 0; k < classes->n; k++) {
        char *cdir = nc_path_join(root, classes->v[k]);
        Names files = {0};
        int rc = list_dir(cdir, 0, &files, err);
        if (!rc && files.n == 0) rc = nc_fail(err, NC_EFILE, "%s: empty class folder (no .jpg, .jpeg or .png files)", cdir);
        for (int i = 0; !rc && i < files.n; i++) {
            if (out->n == out->cap) {
                out->cap = out->cap ? 2 * out->cap : 1024;
                out->v = nc_realloc(out->v, sizeof(Entry) * (size_t)out->cap);
            }
            out->v[out->n].path = nc_path_join(cdir, files.v[i]);
            out->v[out->n++].label = k;
            if (++*count > INT_MAX / 2) rc = nc_fail(err, NC_EFILE, "%s: too many images", root);
        }
        names_free(&files);
        free(cdir);
        if (rc) return rc;
    }
    return NC_OK;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int data_read_folder(const char *dir, const DataOpts *opts, Dataset *ds, NcError *err) {
    if (!is_dir(dir)) return nc_fail(err, NC_EFILE, "%s: no such directory (expected DIR/train/<class>/*.jpg|png and DIR/test/...)", dir);
    char *troot = nc_path_join(dir, "train"), *vroot = nc_path_join(dir, "test");
    Names classes = {0}, tclasses = {0};
    Entries all = {0};
    DataImage *img = NULL;
    int rc = NC_OK, ntrain = 0, ntest = 0;
    if (!is_dir(troot)) rc = nc_fail(err, NC_EFILE, "%s: no such directory", troot);
    else if (!is_dir(vroot)) rc = nc_fail(err, NC_EFILE, "%s: no such directory", vroot);
    if (!rc) rc = list_dir(troot, 1, &classes, err);
    if (!rc && classes.n == 0) rc = nc_fail(err, NC_EFILE, "%s: no class folders: an empty dataset", troot);
    if (!rc && classes.n > DATA_MAX_CLASSES) rc = nc_fail(err, NC_EFILE, "%s: more than %d classes", troot, DATA_MAX_CLASSES);
    if (!rc) rc = list_dir(vroot, 1, &tclasses, err);
    if (!rc) {
        for (int k = 0; k < classes.n || k < tclasses.n; k++) {
            const char *a = k < classes.n ? classes.v[k] : NULL, *b = k < tclasses.n ? tclasses.v[k] : NULL;
            if (!a || !b || strcmp(a, b) != 0) {
                rc = nc_fail(err, NC_EFILE, "%s: class folders differ from %s ('%s' in %s, '%s' in train)", vroot, troot,
                             b ? b : "(none)", "test", a ? a : "(none)");
                break;
            }
        }
    }
    if (!rc) rc = list_split(troot, &classes, &all, &ntrain, err);
    if (!rc) rc = list_split(vroot, &classes, &all, &ntest, err);
    if (rc) goto done;

    /* decode every file in parallel; the first failure in file order is the one reported */
    int rh = opts ? opts->resize_h : 0, rw = opts ? opts->resize_w : 0, total = all.n, first_bad = INT_MAX;
    NcError bad = {0};
    img = nc_calloc((size_t)total, sizeof(DataImage));
    #pragma omp parallel for schedule(dynamic, 32)
    for (int i = 0; i < total; i++) {
        int fb;
        #pragma omp atomic read
        fb = first_bad;
        if (i > fb) continue;
        NcError e;
        DataImage im = {0};
        if (data_decode_file(all.v[i].path, &im, &e)) {
            #pragma omp critical(data_folder_error)
            if (i < first_bad) {
                bad = e;
                #pragma omp atomic write
                first_bad = i;
            }
            continue;
        }
        if (rh > 0 && (im.h != rh || im.w != rw)) {
            uint8_t *r = nc_malloc((size_t)rh * rw * im.c);
            data_resize_bilinear(r, rh, rw, im.pixels, im.h, im.w, im.c);
            free(im.pixels);
            im.pixels = r;
            im.h = rh;
            im.w = rw;
        }
        img[i] = im;
    }
    if (first_bad != INT_MAX) {
        rc = nc_fail(err, bad.code ? bad.code : NC_EFILE, "%s", bad.msg);
        goto done;
    }
    int c = 1;
    for (int i = 0; i < total; i++) c = img[i].c > c ? img[i].c : c;
    for (int i = 1; i < total; i++)
        if (img[i].h != img[0].h || img[i].w != img[0].w) {
            rc = nc_fail(err, NC_EFILE, "mixed image sizes: %s is %d x %d but %s is %d x %d (use --resize H,W)",
                         all.v[0].path, img[0].h, img[0].w, all.v[i].path, img[i].h, img[i].w);
            goto done;
        }
    int h = img[0].h, w = img[0].w;
    size_t hw = (size_t)h * w;
    if ((unsigned long long)total * hw * c > DATA_MAX_BYTES) {
        rc = nc_fail(err, NC_EFILE, "%s: too many pixels", dir);
        goto done;
    }
    data_split_alloc(&ds->train, ntrain, h, w, c);
    data_split_alloc(&ds->test, ntest, h, w, c);
    for (int i = 0; i < total; i++) {
        DataSplit *s = i < ntrain ? &ds->train : &ds->test;
        int j = i < ntrain ? i : i - ntrain;
        uint8_t *o = s->pixels + (size_t)j * hw * c;
        s->labels[j] = all.v[i].label;
        if (img[i].c == c) {
            memcpy(o, img[i].pixels, hw * c);
        } else {  /* gray in an RGB folder: replicate the channel */
            for (size_t p = 0; p < hw; p++) o[3 * p] = o[3 * p + 1] = o[3 * p + 2] = img[i].pixels[p];
        }
    }
    data_set_names(ds, classes.n, (const char *const *)classes.v);
done:
    if (img)
        for (int i = 0; i < all.n; i++) free(img[i].pixels);
    free(img);
    for (int i = 0; i < all.n; i++) free(all.v[i].path);
    free(all.v);
    names_free(&classes);
    names_free(&tclasses);
    free(troot);
    free(vroot);
    return rc;
}
