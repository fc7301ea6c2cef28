// read_folder.c -- image folders DIR/{train,test or val}/<class>/*.{jpg,jpeg,png}: libjpeg-turbo/libpng decoding in parallel.
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
#include "ncelab/progress.h"

#ifdef _OPENMP  /* the fuzzing build compiles without OpenMP */
#include <omp.h>
#define ON_FIRST_THREAD (omp_get_thread_num() == 0)
#else
#define ON_FIRST_THREAD 1
#endif

/* size_limit: the message for an image over DATA_MAX_SIDE or DATA_MAX_PIXELS. */
static void size_limit(char *msg, size_t n, unsigned long w, unsigned long h) {
    snprintf(msg, n, "width %lu, height %lu: larger than allowed (at most %ld pixels, %d on a side), refused before decoding",
             w, h, (long)DATA_MAX_PIXELS, DATA_MAX_SIDE);
}

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
    int too_big;    /* refused for its size, not corrupt */
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

/* jpeg_run: the header, then (decode = 1) the pixels. After the header j->h, j->w, j->c hold the
   size and the channels the decoder will give (1 gray, 3 colour); a size over the limits is
   refused before anything is decoded. */
static int jpeg_run(JpegJob *j, const uint8_t *buf, size_t len, int decode) {
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
        j->too_big = 1;
        size_limit(j->bad, sizeof j->bad, j->ci.image_width, j->ci.image_height);
        return 1;
    }
    j->h = (int)j->ci.image_height;
    j->w = (int)j->ci.image_width;
    j->c = j->ci.out_color_space == JCS_GRAYSCALE ? 1 : 3;
    if (!decode) return 0;
    jpeg_start_decompress(&j->ci);
    int oc = j->ci.output_components;
    if (oc != (j->cmyk ? 4 : j->c) || (int)j->ci.output_height != j->h || (int)j->ci.output_width != j->w) {
        snprintf(j->bad, sizeof j->bad, "unexpected decoder output (%d components)", oc);
        return 1;
    }
    j->pix = nc_malloc((size_t)j->h * j->w * oc);
    while (j->ci.output_scanline < j->ci.output_height) {
        JSAMPROW row = j->pix + (size_t)j->ci.output_scanline * j->w * oc;
        jpeg_read_scanlines(&j->ci, &row, 1);
    }
    jpeg_finish_decompress(&j->ci);
    return 0;
}

/* jpeg_do: the header alone (decode = 0: img->pixels NULL) or the whole image into img. */
static int jpeg_do(const uint8_t *buf, size_t len, const char *path, int decode, DataImage *img, NcError *err) {
    JpegJob *j = nc_calloc(1, sizeof *j);
    int bad = jpeg_run(j, buf, len, decode);
    jpeg_destroy_decompress(&j->ci);
    int rc = NC_OK;
    if (bad) {
        free(j->pix);
        rc = nc_fail(err, NC_EFILE, "%s: %s%s", path, j->too_big ? "" : "corrupt JPEG: ", j->bad[0] ? j->bad : j->je.msg);
    } else {
        if (j->cmyk && j->pix) {
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

int data_decode_jpeg(const uint8_t *buf, size_t len, const char *path, DataImage *img, NcError *err) {
    return jpeg_do(buf, len, path, 1, img, err);
}

/* ---- PNG: libpng reading from memory, errors through png_jmpbuf ---- */

typedef struct {
    const uint8_t *buf;
    size_t len, at;
    uint8_t *pix;
    png_bytep *rows;
    int h, w, c;
    int too_big;    /* refused for its size, not corrupt */
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

/* png_run: the header, then (decode = 1) the pixels; as jpeg_run. */
static int png_run(PngJob *j, png_structp png, png_infop info, int decode) {
    if (setjmp(png_jmpbuf(png))) return 1;
    png_set_read_fn(png, j, png_read_mem);
    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, type;
    png_get_IHDR(png, info, &w, &h, &depth, &type, NULL, NULL, NULL);
    if (w > DATA_MAX_SIDE || h > DATA_MAX_SIDE || (long)w * (long)h > DATA_MAX_PIXELS) {
        j->too_big = 1;
        size_limit(j->msg, sizeof j->msg, w, h);
        return 1;
    }
    j->h = (int)h;
    j->w = (int)w;
    j->c = type & PNG_COLOR_MASK_COLOR ? 3 : 1;  /* palette and RGB(A) give RGB; gray(+alpha) gray */
    if (!decode) return 0;
    if (depth == 16) png_set_strip_16(png);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int c = png_get_channels(png, info);
    if (c != j->c || png_get_rowbytes(png, info) != (size_t)w * c) png_error(png, "unsupported pixel format");
    j->pix = nc_malloc((size_t)h * w * c);
    j->rows = nc_malloc(sizeof(png_bytep) * h);
    for (png_uint_32 y = 0; y < h; y++) j->rows[y] = j->pix + (size_t)y * w * c;
    png_read_image(png, j->rows);
    png_read_end(png, NULL);
    return 0;
}

static int png_do(const uint8_t *buf, size_t len, const char *path, int decode, DataImage *img, NcError *err) {
    PngJob *j = nc_calloc(1, sizeof *j);
    j->buf = buf;
    j->len = len;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, j, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int bad = !info || png_run(j, png, info, decode);
    png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
    free(j->rows);
    int rc = NC_OK;
    if (bad) {
        free(j->pix);
        rc = nc_fail(err, NC_EFILE, "%s: %s%s", path, j->too_big ? "" : "corrupt PNG: ",
                     j->msg[0] ? j->msg : "cannot start libpng");
    } else {
        img->h = j->h;
        img->w = j->w;
        img->c = j->c;
        img->pixels = j->pix;
    }
    free(j);
    return rc;
}

int data_decode_png(const uint8_t *buf, size_t len, const char *path, DataImage *img, NcError *err) {
    return png_do(buf, len, path, 1, img, err);
}

/* image_do: JPEG or PNG, chosen by the first bytes; the header alone or the whole image. */
static int image_do(const uint8_t *buf, size_t len, const char *path, int decode, DataImage *img, NcError *err) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) return jpeg_do(buf, len, path, decode, img, err);
    if (len >= 8 && memcmp(buf, png_sig, 8) == 0) return png_do(buf, len, path, decode, img, err);
    return nc_fail(err, NC_EFILE, "%s: not a JPEG or PNG file (%s)", path, len ? "unknown signature" : "empty");
}

int data_image_header(const uint8_t *buf, size_t len, const char *path, DataImage *img, NcError *err) {
    return image_do(buf, len, path, 0, img, err);
}

/* The bytes a header is looked for in first; the whole file is read when it runs past them (large
   metadata before the image data). */
#define HEAD_BYTES 65536

int data_read_header(const char *path, DataImage *img, NcError *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return nc_fail(err, NC_EFILE, "%s: cannot open: %s", path, strerror(errno));
    uint8_t *buf = nc_malloc(HEAD_BYTES);
    size_t len = fread(buf, 1, HEAD_BYTES, f);
    int more = len == HEAD_BYTES && fgetc(f) != EOF;
    fclose(f);
    NcError e;
    int rc = image_do(buf, len, path, 0, img, more ? &e : err);
    free(buf);
    if (rc && more) {
        if ((rc = data_read_small_file(path, DATA_MAX_FILE, &buf, &len, err))) return rc;
        rc = image_do(buf, len, path, 0, img, err);
        free(buf);
    }
    return rc;
}

int data_decode_file(const char *path, DataImage *img, NcError *err) {
    uint8_t *buf;
    size_t len;
    int rc = data_read_small_file(path, DATA_MAX_FILE, &buf, &len, err);
    if (rc) return rc;
    rc = image_do(buf, len, path, 1, img, err);
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

/* Where a folder's images are decoded to: image i at h x w x c into place i of train, then of test. */
typedef struct {
    int h, w, c, ntrain;
    DataSplit *train, *test;
} Target;

/* decode_into: decodes path, whose header said head (h, w, c), into dst of t's size: resized when
   the sizes differ (--resize), a gray image's channel replicated into RGB. */
static int decode_into(const char *path, const DataImage *head, const Target *t, uint8_t *dst, NcError *err) {
    DataImage im = {0};
    int rc = data_decode_file(path, &im, err);
    if (rc) return rc;
    if (im.h != head->h || im.w != head->w || im.c != head->c) {
        rc = nc_fail(err, NC_EFILE, "%s: decodes to %d x %d x %d, but its header said %d x %d x %d", path, im.h, im.w,
                     im.c, head->h, head->w, head->c);
        free(im.pixels);
        return rc;
    }
    if (im.h != t->h || im.w != t->w) {
        uint8_t *r = nc_malloc((size_t)t->h * t->w * im.c);
        data_resize_bilinear(r, t->h, t->w, im.pixels, im.h, im.w, im.c);
        free(im.pixels);
        im.pixels = r;
    }
    size_t hw = (size_t)t->h * t->w;
    if (im.c == t->c) memcpy(dst, im.pixels, hw * im.c);
    else  /* gray in an RGB folder: replicate the channel */
        for (size_t p = 0; p < hw; p++) dst[3 * p] = dst[3 * p + 1] = dst[3 * p + 2] = im.pixels[p];
    free(im.pixels);
    return NC_OK;
}

/* each_image: in parallel over the folder's images, reads every header into hdr[] (t NULL), or
   decodes every image into its place in t (hdr[] then holds the headers read before, checked
   against what the decoder gives). The first failure in file order is the one reported; the
   files after it are skipped. */
static int each_image(const Entries *all, DataImage *hdr, const Target *t, NcError *err) {
    int total = all->n, first_bad = INT_MAX;
    long done = 0;
    NcError bad = {0};
    Progress bar;
    progress_start(&bar, t ? "decoding images" : "reading image headers", total);
    #pragma omp parallel for schedule(dynamic, 32)
    for (int i = 0; i < total; i++) {
        int fb;
        #pragma omp atomic read
        fb = first_bad;
        if (i > fb) continue;
        NcError e;
        int rc;
        if (t) {
            DataSplit *s = i < t->ntrain ? t->train : t->test;
            int j = i < t->ntrain ? i : i - t->ntrain;
            s->labels[j] = all->v[i].label;
            rc = decode_into(all->v[i].path, &hdr[i], t, s->pixels + (size_t)j * t->h * t->w * t->c, &e);
        } else {
            rc = data_read_header(all->v[i].path, &hdr[i], &e);
        }
        if (rc) {
            #pragma omp critical(data_folder_error)
            if (i < first_bad) {
                bad = e;
                #pragma omp atomic write
                first_bad = i;
            }
        }
        long now;
        #pragma omp atomic capture
        now = ++done;
        if (ON_FIRST_THREAD) progress_update(&bar, now);
    }
    progress_update(&bar, total);
    progress_end(&bar);
    if (first_bad != INT_MAX) return nc_fail(err, bad.code ? bad.code : NC_EFILE, "%s", bad.msg);
    return NC_OK;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int data_read_folder(const char *dir, const DataOpts *opts, Dataset *ds, NcError *err) {
    if (!is_dir(dir))
        return nc_fail(err, NC_EFILE, "%s: no such directory (expected DIR/train/<class>/*.jpg|png and DIR/test/... or DIR/val/...)", dir);
    /* the test split: DIR/test, else DIR/val */
    char *troot = nc_path_join(dir, "train"), *vroot = nc_path_join(dir, "test");
    const char *vname = "test";
    if (!is_dir(vroot)) {
        char *val = nc_path_join(dir, "val");
        if (is_dir(val)) {
            free(vroot);
            vroot = val;
            vname = "val";
        } else {
            free(val);
        }
    }
    Names classes = {0}, tclasses = {0};
    Entries all = {0};
    DataImage *hdr = NULL;
    int rc = NC_OK, ntrain = 0, ntest = 0;
    const char *guess = is_dir(troot) && is_dir(vroot) ? NULL : data_cifar_guess(dir);
    char hint[700] = "";
    if (guess) snprintf(hint, sizeof hint, "; it holds CIFAR files: use %s:%s", guess, dir);
    if (!is_dir(troot))
        rc = nc_fail(err, NC_EFILE, "%s: no training split (looked for the folder %s)%s", dir, troot, hint);
    else if (!is_dir(vroot))
        rc = nc_fail(err, NC_EFILE, "%s: no test split (looked for the folders %s/test and %s/val)%s", dir, dir, dir, hint);
    if (!rc) rc = list_dir(troot, 1, &classes, err);
    if (!rc && classes.n == 0) rc = nc_fail(err, NC_EFILE, "%s: no class folders: an empty dataset", troot);
    if (!rc && classes.n > DATA_MAX_CLASSES) rc = nc_fail(err, NC_EFILE, "%s: more than %d classes", troot, DATA_MAX_CLASSES);
    if (!rc) rc = list_dir(vroot, 1, &tclasses, err);
    if (!rc) {
        for (int k = 0; k < classes.n || k < tclasses.n; k++) {
            const char *a = k < classes.n ? classes.v[k] : NULL, *b = k < tclasses.n ? tclasses.v[k] : NULL;
            if (!a || !b || strcmp(a, b) != 0) {
                rc = nc_fail(err, NC_EFILE, "%s: class folders differ from %s ('%s' in %s, '%s' in train)", vroot, troot,
                             b ? b : "(none)", vname, a ? a : "(none)");
                break;
            }
        }
    }
    if (!rc) rc = list_split(troot, &classes, &all, &ntrain, err);
    if (!rc) rc = list_split(vroot, &classes, &all, &ntest, err);
    if (rc) goto done;

    /* 1. every image's header, in parallel: sizes and channels, nothing decoded */
    int rh = opts ? opts->resize_h : 0, rw = opts ? opts->resize_w : 0, total = all.n;
    hdr = nc_calloc((size_t)total, sizeof(DataImage));
    if ((rc = each_image(&all, hdr, NULL, err))) goto done;
    /* 2. the sizes agree (or --resize gives one), and the folder fits, before anything is decoded */
    Target t = {rh > 0 ? rh : hdr[0].h, rh > 0 ? rw : hdr[0].w, 1, ntrain, &ds->train, &ds->test};
    for (int i = 0; i < total; i++) t.c = hdr[i].c > t.c ? hdr[i].c : t.c;
    for (int i = 1; i < total && rh <= 0; i++)
        if (hdr[i].h != t.h || hdr[i].w != t.w) {
            rc = nc_fail(err, NC_EFILE, "mixed image sizes (height x width): %s is %d x %d but %s is %d x %d (use --resize H,W)",
                         all.v[0].path, t.h, t.w, all.v[i].path, hdr[i].h, hdr[i].w);
            goto done;
        }
    size_t isz = (size_t)t.h * t.w * t.c;
    if ((unsigned long long)total * isz > DATA_MAX_BYTES) {
        int at = (int)(DATA_MAX_BYTES / isz);  /* the first image past the limit */
        rc = nc_fail(err, NC_EFILE, "%s: %d images of %d x %d x %d decode to %.1f GiB, more than the %.0f GiB allowed "
                     "(reached at %s)", dir, total, t.h, t.w, t.c, (double)total * isz / (1 << 30),
                     (double)DATA_MAX_BYTES / (1 << 30), all.v[at].path);
        goto done;
    }
    /* 3. decode in parallel, each image straight into its place */
    data_split_alloc(&ds->train, ntrain, t.h, t.w, t.c);
    data_split_alloc(&ds->test, ntest, t.h, t.w, t.c);
    if ((rc = each_image(&all, hdr, &t, err))) goto done;
    data_set_names(ds, classes.n, (const char *const *)classes.v);
done:
    free(hdr);
    for (int i = 0; i < all.n; i++) free(all.v[i].path);
    free(all.v);
    names_free(&classes);
    names_free(&tclasses);
    free(troot);
    free(vroot);
    return rc;
}
