// test_pickle.c -- CIFAR's python release against its binary one (the same images in both), and the pickle reader's refusals.
#define _GNU_SOURCE  /* memmem */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "cifar_util.h"
#include "../src/data/data_internal.h"
#include "../src/data/pickle.h"
#include "ncelab/data.h"

static char work[256], fix[700];

/* The forms of tests/fixtures/cifar_py (tests/ref/make_cifar_pickles.py): Python 2's cPickle, and
   Python 3 at protocols 2 to 5. */
static const char *const forms[] = {"py2", "p2", "p3", "p4", "p5"};
#define NFORMS 5

static const char *at(const char *fmt, const char *a) {
    static char buf[8][1024];
    static int slot = 0;
    char *p = buf[slot++ % 8], rel[600];
    snprintf(rel, sizeof rel, fmt, a);
    snprintf(p, 1024, "%s/%s", work, rel);
    return p;
}

static void mkdirs(const char *path) {
    NcError e;
    if (nc_mkdir_p(path, &e)) fprintf(stderr, "%s\n", e.msg);
}

static uint8_t *slurp(const char *path, size_t *len) {
    uint8_t *buf;
    NcError e;
    if (data_read_small_file(path, 1 << 26, &buf, len, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        *len = 0;
        return NULL;
    }
    return buf;
}

static const char *const c10_names[10] = {"plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "lorry"};

/* The binary twins of c10_* and c100_*, with their names as text files. */
static void write_binary_twins(void) {
    mkdirs(at("c10bin", ""));
    int counts[5] = {1, 2, 1, 1, 1}, lab[4];
    for (int f = 0; f < 5; f++) {
        for (int r = 0; r < counts[f]; r++) lab[r] = (r * 3 + f) % 10;
        char name[64];
        snprintf(name, sizeof name, "c10bin/data_batch_%d.bin", f + 1);
        write_cifar(at("%s", name), f, counts[f], 1, lab);
    }
    lab[0] = 9, lab[1] = 8;
    write_cifar(at("c10bin/test_batch.bin", ""), 7, 2, 1, lab);
    char text[400] = "";
    for (int c = 0; c < 10; c++) strcat(strcat(text, c10_names[c]), "\n");
    write_bytes(at("c10bin/batches.meta.txt", ""), text, strlen(text));

    mkdirs(at("c100bin", ""));
    int train[6] = {19, 99, 0, 0, 7, 42}, test[4] = {11, 55, 4, 98};  /* (coarse, fine) */
    write_cifar(at("c100bin/train.bin", ""), 1, 3, 2, train);
    write_cifar(at("c100bin/test.bin", ""), 2, 2, 2, test);
    static char fine[100 * 16], coarse[20 * 24];
    fine[0] = coarse[0] = '\0';
    for (int c = 0; c < 100; c++) {
        char w[32];
        snprintf(w, sizeof w, "%s\n", c == 0 ? "apple" : c == 1 ? "aquarium_fish" : c == 99 ? "worm" : "");
        if (c > 1 && c < 99) snprintf(w, sizeof w, "fine%d\n", c);
        strcat(fine, w);
    }
    for (int c = 0; c < 20; c++) {
        char w[32];
        snprintf(w, sizeof w, "%s\n", c == 0 ? "aquatic_mammals" : c == 1 ? "fish" : c == 19 ? "vehicles_2" : "");
        if (c > 1 && c < 19) snprintf(w, sizeof w, "coarse%d\n", c);
        strcat(coarse, w);
    }
    write_bytes(at("c100bin/fine_label_names.txt", ""), fine, strlen(fine));
    write_bytes(at("c100bin/coarse_label_names.txt", ""), coarse, strlen(coarse));
}

/* same_dataset: every image, label and class name of a equals b's. */
static int same_dataset(const Dataset *a, const Dataset *b, char *why, size_t cap) {
    const DataSplit *sa[2] = {&a->train, &a->test}, *sb[2] = {&b->train, &b->test};
    if (a->num_classes != b->num_classes) return snprintf(why, cap, "%d classes, %d", a->num_classes, b->num_classes), 0;
    for (int c = 0; c < a->num_classes; c++)
        if (strcmp(a->class_names[c], b->class_names[c]) != 0)
            return snprintf(why, cap, "class %d: '%s', '%s'", c, a->class_names[c], b->class_names[c]), 0;
    for (int k = 0; k < 2; k++) {
        const DataSplit *x = sa[k], *y = sb[k];
        if (x->n != y->n || x->h != y->h || x->w != y->w || x->c != y->c)
            return snprintf(why, cap, "%s: %d x %dx%dx%d, %d x %dx%dx%d", k ? "test" : "train", x->n, x->h, x->w, x->c,
                            y->n, y->h, y->w, y->c), 0;
        for (int i = 0; i < x->n; i++)
            if (x->labels[i] != y->labels[i]) return snprintf(why, cap, "%s label %d: %d, %d", k ? "test" : "train", i, x->labels[i], y->labels[i]), 0;
        size_t bytes = (size_t)x->n * x->h * x->w * x->c;
        for (size_t j = 0; j < bytes; j++)
            if (x->pixels[j] != y->pixels[j])
                return snprintf(why, cap, "%s pixel byte %zu: %d, %d", k ? "test" : "train", j, x->pixels[j], y->pixels[j]), 0;
    }
    snprintf(why, cap, "same");
    return 1;
}

static int load(const char *fmt, const char *dir, Dataset *ds, NcError *e) {
    char spec[1200];
    snprintf(spec, sizeof spec, fmt, dir);
    return data_load(spec, NULL, ds, e);
}

static void test_cifar10_forms(void) {
    Dataset bin;
    NcError e = {0};
    int rc = load("cifar10:%s", at("c10bin", ""), &bin, &e);
    CHECK(rc == NC_OK && bin.train.n == 6 && bin.test.n == 2, "the binary twin loads: %s", rc ? e.msg : "ok");
    if (rc) return;
    for (int i = 0; i < NFORMS; i++) {
        char dir[800], why[200];
        snprintf(dir, sizeof dir, "%s/c10_%s", fix, forms[i]);
        Dataset py;
        rc = load("cifar10:%s", dir, &py, &e);
        int same = rc == NC_OK && same_dataset(&py, &bin, why, sizeof why);
        CHECK(same, "cifar10 python release (%s): the binary twin's 8 images, labels and names: %s", forms[i], rc ? e.msg : why);
        /* and a value from the rule itself: image 1 of data_batch_2 (train index 2), G at row 2, column 3 */
        if (rc == NC_OK)
            CHECK(py.train.pixels[2 * 3072 + (2 * 32 + 3) * 3 + 1] == cifar_pix(1, 1, 1, 2, 3) &&
                      py.train.labels[2] == 4 && strcmp(py.class_names[9], "lorry") == 0 && strcmp(py.name, "cifar10") == 0,
                  "cifar10 (%s): pixel (batch 2, image 1, y 2, x 3, G) = %d, label 4, names from batches.meta",
                  forms[i], py.train.pixels[2 * 3072 + (2 * 32 + 3) * 3 + 1]);
        data_free(&py);
    }
    data_free(&bin);
}

static void test_cifar100_forms(void) {
    for (int coarse = 0; coarse < 2; coarse++) {
        const char *fmt = coarse ? "cifar100:%s:coarse" : "cifar100:%s";
        Dataset bin;
        NcError e = {0};
        int rc = load(fmt, at("c100bin", ""), &bin, &e);
        CHECK(rc == NC_OK && bin.num_classes == (coarse ? 20 : 100), "the cifar100 binary twin loads: %s", rc ? e.msg : "ok");
        if (rc) return;
        for (int i = 0; i < NFORMS; i++) {
            char dir[800], why[200];
            snprintf(dir, sizeof dir, "%s/c100_%s", fix, forms[i]);
            Dataset py;
            rc = load(fmt, dir, &py, &e);
            int same = rc == NC_OK && same_dataset(&py, &bin, why, sizeof why);
            CHECK(same && py.train.labels[0] == (coarse ? 19 : 99) &&
                      strcmp(py.class_names[coarse ? 19 : 99], coarse ? "vehicles_2" : "worm") == 0,
                  "cifar100%s python release (%s): the binary twin's images, %s labels and names: %s", coarse ? ":coarse" : "",
                  forms[i], coarse ? "coarse" : "fine", rc ? e.msg : why);
            data_free(&py);
        }
        data_free(&bin);
    }
}

/* A batch in memory, through data_cifar_py_batch: NC_OK and its split, or the message. */
static int batch(const uint8_t *b, size_t n, DataSplit *s, NcError *e) {
    memset(e, 0, sizeof *e);
    return data_cifar_py_batch(b, n, "mem.pkl", "labels", 10, s, e);
}

static void test_variants(void) {
    char p[800];
    size_t n0, n;
    snprintf(p, sizeof p, "%s/c10_p2/test_batch", fix);
    uint8_t *ref = slurp(p, &n0);
    DataSplit want, got;
    NcError e;
    int rc = batch(ref, n0, &want, &e);
    CHECK(rc == NC_OK && want.n == 2, "c10_p2/test_batch in memory: %s", rc ? e.msg : "ok");
    if (rc) return;
    /* Fortran-ordered arrays: _reconstruct's is_fortran (protocol 2), _frombuffer's 'F' (protocol 5) */
    for (int proto = 2; proto <= 5; proto += 3) {
        snprintf(p, sizeof p, "%s/fortran/test_batch_p%d", fix, proto);
        uint8_t *b = slurp(p, &n);
        rc = batch(b, n, &got, &e);
        CHECK(rc == NC_OK && got.n == 2 && memcmp(got.pixels, want.pixels, 2 * 3072) == 0 &&
                  memcmp(got.labels, want.labels, 2 * sizeof(int32_t)) == 0,
              "a Fortran-ordered array (protocol %d) gives the C-ordered one's images: %s", proto, rc ? e.msg : "ok");
        if (!rc) data_split_free(&got);
        free(b);
    }
    /* numpy 2 names the module numpy._core */
    const char *from = "cnumpy.core.multiarray\n", *to = "cnumpy._core.multiarray\n";
    uint8_t *hit = memmem(ref, n0, from, strlen(from));
    if (hit) {
        size_t off = (size_t)(hit - ref);
        uint8_t *b = malloc(n0 + 1);
        memcpy(b, ref, off);
        memcpy(b + off, to, strlen(to));
        memcpy(b + off + strlen(to), ref + off + strlen(from), n0 - off - strlen(from));
        rc = batch(b, n0 + 1, &got, &e);
        CHECK(rc == NC_OK && memcmp(got.pixels, want.pixels, 2 * 3072) == 0,
              "numpy._core.multiarray._reconstruct (numpy 2) reads as numpy.core's: %s", rc ? e.msg : "ok");
        if (!rc) data_split_free(&got);
        free(b);
    } else {
        CHECK(0, "c10_p2/test_batch holds GLOBAL numpy.core.multiarray");
    }
    data_split_free(&want);
    free(ref);
}

/* expect_refusal: data_cifar_py_batch refuses b[0..n) with NC_EFILE and a message holding every
   one of the NULL-terminated strings. */
static void expect_refusal(const char *what, const uint8_t *b, size_t n, ...) {
    DataSplit s;
    NcError e;
    int rc = batch(b, n, &s, &e), ok = rc == NC_EFILE && strncmp(e.msg, "mem.pkl: ", 9) == 0;
    va_list ap;
    va_start(ap, n);
    for (const char *want; ok && (want = va_arg(ap, const char *));) ok = strstr(e.msg, want) != NULL;
    va_end(ap);
    if (rc == NC_OK) data_split_free(&s);
    CHECK(ok, "%s: refused: %s", what, rc ? e.msg : "(accepted)");
}

/* patched: a copy of b with the first occurrence of from replaced by to (same length). */
static uint8_t *patched(const uint8_t *b, size_t n, const void *from, const void *to, size_t len) {
    uint8_t *c = malloc(n), *hit;
    memcpy(c, b, n);
    if ((hit = memmem(c, n, from, len))) memcpy(hit, to, len);
    else fprintf(stderr, "patched: pattern not found\n");
    return c;
}

static void test_refusals(void) {
    /* pickle.dumps of os.system('ls') at protocol 2, and eval at protocol 4 through STACK_GLOBAL */
    static const uint8_t os_system[] = "\x80\x02" "cos\nsystem\n" "q\x00" "X\x02\x00\x00\x00ls" "q\x01\x85q\x02Rq\x03.";
    expect_refusal("GLOBAL os.system", os_system, sizeof os_system - 1, "byte 2", "global 'os.system' refused",
                   "nothing is executed", NULL);
    static const uint8_t eval4[] = "\x80\x04\x95\x1a\x00\x00\x00\x00\x00\x00\x00" "\x8c\x08" "builtins" "\x94"
                                   "\x8c\x04" "eval" "\x94\x93\x94" "\x8c\x01" "1" "\x85R.";
    expect_refusal("STACK_GLOBAL builtins.eval", eval4, sizeof eval4 - 1, "byte 29", "'builtins.eval' refused", NULL);
    static const uint8_t text[] = "(dp0\nS'data'\np1\nI1\ns.";
    expect_refusal("a protocol 0 pickle", text, sizeof text - 1, "byte 0", "no PROTO", NULL);
    static const uint8_t proto6[] = "\x80\x06}.";
    expect_refusal("protocol 6", proto6, sizeof proto6 - 1, "protocol 6", NULL);
    static const uint8_t frame2[] = "\x80\x02\x95\x01\x00\x00\x00\x00\x00\x00\x00}.";
    expect_refusal("FRAME in protocol 2", frame2, sizeof frame2 - 1, "byte 2", "FRAME in a protocol 2 pickle", NULL);
    /* lengths far beyond the file: refused before anything is allocated */
    static const uint8_t huge_str[] = "\x80\x02}U\x04" "dataT\xff\xff\xff\x7f" "xyz";
    expect_refusal("BINSTRING of 2^31 - 1 bytes in a 17-byte file", huge_str, sizeof huge_str - 1, "byte 9",
                   "truncated: BINSTRING needs 2147483647 more bytes", NULL);
    static const uint8_t huge8[] = "\x80\x05\x96\xff\xff\xff\xff\xff\xff\xff\x7f.";
    expect_refusal("BYTEARRAY8 of 2^63 - 1 bytes", huge8, sizeof huge8 - 1, "byte 2", "BYTEARRAY8 needs 9223372036854775807", NULL);
    static const uint8_t negative[] = "\x80\x02T\xfe\xff\xff\xff.";
    expect_refusal("BINSTRING of negative length", negative, sizeof negative - 1, "negative length", NULL);
    static const uint8_t frame[] = "\x80\x04\x95\x00\x00\x00\x00\x01\x00\x00\x00}.";
    expect_refusal("a FRAME longer than the file", frame, sizeof frame - 1, "FRAME of 4294967296 bytes", NULL);
    static const uint8_t memo[] = "\x80\x02h\x05.";
    expect_refusal("BINGET of an entry never stored", memo, sizeof memo - 1, "memo entry 5 was never stored", NULL);
    static const uint8_t under[] = "\x80\x02K\x01\x86.";
    expect_refusal("TUPLE2 of one value", under, sizeof under - 1, "TUPLE2 needs 2 values", NULL);
    static const uint8_t marked[] = "\x80\x02}(K\x01K\x02\x86.";
    expect_refusal("STOP inside a MARK", marked, sizeof marked - 1, "MARK still open", NULL);
    static const uint8_t list[] = "\x80\x02]q\x00.";
    expect_refusal("a list at the top", list, sizeof list - 1, "holds a list, not the dict", NULL);
    static const uint8_t flt[] = "\x80\x02G\x3f\xf0\x00\x00\x00\x00\x00\x00.";
    expect_refusal("a float", flt, sizeof flt - 1, "BINFLOAT (0x47) is not read", NULL);
    static const uint8_t latin[] = "\x80\x02" "c_codecs\nencode\n" "X\x02\x00\x00\x00\xc4\x80" "X\x06\x00\x00\x00latin1\x86R.";
    expect_refusal("_codecs.encode of U+0100", latin, sizeof latin - 1, "above U+00FF", NULL);
    static const uint8_t utf8[] = "\x80\x02X\x01\x00\x00\x00\xff.";
    expect_refusal("a str that is not UTF-8", utf8, sizeof utf8 - 1, "not UTF-8", NULL);
    /* a list of 2^22 + 1 Nones: refused when the count passes the limit, not when memory runs out */
    size_t nn = ((size_t)1 << 22) + 1;
    uint8_t *many = malloc(nn + 8);
    memcpy(many, "\x80\x02](", 4);
    memset(many + 4, 'N', nn);
    memcpy(many + 4 + nn, "e.", 2);
    expect_refusal("2^22 + 1 values", many, nn + 6, "more than 4194304 values", NULL);
    free(many);
    static const uint8_t empty[] = "";
    expect_refusal("an empty file", empty, 0, "empty", NULL);

    char p[800];
    size_t n;
    snprintf(p, sizeof p, "%s/c10_py2/test_batch", fix);
    uint8_t *b = slurp(p, &n);
    if (!b) return;
    /* every truncation of Python 2's test batch is refused, and none reads past the end */
    int refused = 0, named = 0;
    for (size_t k = 0; k < n; k++) {
        uint8_t *c = malloc(k ? k : 1);
        memcpy(c, b, k);
        DataSplit s;
        NcError e;
        int rc = batch(c, k, &s, &e);
        refused += rc == NC_EFILE;
        named += rc == NC_EFILE && strncmp(e.msg, "mem.pkl: ", 9) == 0 && (k == 0 || strstr(e.msg, "byte "));
        if (rc == NC_OK) data_split_free(&s);
        free(c);
    }
    CHECK(refused == (int)n && named == (int)n, "all %zu truncations refused (%d), each message naming the byte (%d)", n,
          refused, named);
    uint8_t *g = malloc(n + 3);
    memcpy(g, b, n);
    memcpy(g + n, "abc", 3);
    char where[40];
    snprintf(where, sizeof where, "byte %zu", n - 1);
    expect_refusal("trailing garbage after STOP", g, n + 3, where, "3 bytes after STOP", NULL);
    free(g);
    uint8_t *c = patched(b, n, "U\x02u1", "U\x02i1", 4);
    expect_refusal("dtype int8", c, n, "numpy.dtype('i1'): only uint8", NULL);
    free(c);
    c = patched(b, n, "M\x00\x0c\x86", "M\xff\x0b\x86", 4);
    expect_refusal("shape (2, 3071) for 6144 bytes", c, n, "shape (2, 3071) with 6144 bytes", NULL);
    free(c);
    c = patched(b, n, "(K\x09K\x08" "e", "(K\x0aK\x08" "e", 6);
    expect_refusal("label 10 of 10 classes", c, n, "record 0: label 10 out of range [0, 10)", NULL);
    free(c);
    c = patched(b, n, "U\x04" "data", "U\x04" "dat4", 6);
    expect_refusal("no 'data' key", c, n, "no 'data' entry", "'dat4'", NULL);
    free(c);
    c = patched(b, n, "cnumpy\ndtype\n", "cposix\nsystm\n", 13);
    expect_refusal("GLOBAL posix.systm in place of numpy.dtype", c, n, "'posix.systm' refused", NULL);
    free(c);
    c = patched(b, n, "\x89T", "\x88T", 2);  /* is_fortran True: the same bytes read column-major */
    const uint8_t *raw = (const uint8_t *)memmem(b, n, "\x89T", 2) + 6;  /* the pixel bytes, after T and its length */
    DataSplit s;
    NcError e;
    int rc = batch(c, n, &s, &e);
    /* HWC byte 3 is (y 0, x 1, R): CHW element 1 of image 0, which column-major order puts at 1 * 2 + 0 */
    CHECK(rc == NC_OK && s.pixels[3] == raw[2] && raw[2] == cifar_pix(7, 0, 0, 0, 2) && s.pixels[3] != cifar_pix(7, 0, 0, 0, 1),
          "is_fortran True reads the buffer column-major: %s", rc ? e.msg : "ok");
    if (!rc) data_split_free(&s);
    free(c);
    free(b);
}

/* The directory: which release, what else it may hold, and a missing file. */
static void test_directories(void) {
    Dataset ds;
    NcError e = {0};
    mkdirs(at("empty", ""));
    int rc = load("cifar10:%s", at("empty", ""), &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "not a CIFAR-10 directory (no CIFAR-10 files in it)") &&
              strstr(e.msg, "cifar-10-batches-bin") && strstr(e.msg, "cifar-10-batches-py: data_batch_1..5, test_batch, batches.meta"),
          "an empty directory: the message names both releases: %s", e.msg);
    rc = load("cifar100:%s", at("empty", ""), &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "cifar-100-python: train, test, meta") && strstr(e.msg, "cifar-100-binary"),
          "cifar100 on an empty directory: %s", e.msg);
    mkdirs(at("root/cifar-10-batches-py", ""));
    rc = load("cifar10:%s", at("root", ""), &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "it holds cifar-10-batches-py/: use cifar10:") && strstr(e.msg, "root/cifar-10-batches-py"),
          "torchvision's root directory: the message names the folder to give: %s", e.msg);
    char dir[800];
    snprintf(dir, sizeof dir, "%s/c100_py2", fix);
    rc = load("cifar10:%s", dir, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "CIFAR-100's") && strstr(e.msg, "use cifar100:"), "CIFAR-100's files for cifar10: %s", e.msg);
    snprintf(dir, sizeof dir, "%s/c10_p4", fix);
    rc = load("cifar100:%s", dir, &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "CIFAR-10's") && strstr(e.msg, "use cifar10:"), "CIFAR-10's files for cifar100: %s", e.msg);
    mkdirs(at("mat", ""));
    write_bytes(at("mat/data_batch_1.mat", ""), "MATLAB", 6);
    rc = load("cifar10:%s", at("mat", ""), &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "MATLAB release is not read"), "the MATLAB release: %s", e.msg);
    mkdirs(at("imgs/train", ""));
    mkdirs(at("imgs/test", ""));
    rc = load("cifar10:%s", at("imgs", ""), &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "use folder:"), "an image folder given as cifar10: %s", e.msg);
    write_bytes(at("file", ""), "x", 1);
    rc = load("cifar10:%s", at("file", ""), &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "not a directory"), "a file given as DIR: %s", e.msg);

    /* the python release with a batch missing, a batch refused, no meta file */
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "cp -r %s/c10_p3 %s/c10", fix, work);
    if (system(cmd) != 0) fprintf(stderr, "cannot copy the fixtures\n");
    remove(at("c10/data_batch_3", ""));
    rc = load("cifar10:%s", at("c10", ""), &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "c10/data_batch_3: cannot open"), "a missing batch is named: %s", e.msg);
    static const uint8_t os_system[] = "\x80\x02" "cos\nsystem\n" "q\x00" "X\x02\x00\x00\x00ls" "q\x01\x85q\x02Rq\x03.";
    write_bytes(at("c10/data_batch_3", ""), os_system, sizeof os_system - 1);
    rc = load("cifar10:%s", at("c10", ""), &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "c10/data_batch_3: byte 2: global 'os.system' refused") && ds.train.pixels == NULL,
          "a batch calling os.system is refused, the dataset left empty: %s", e.msg);
    snprintf(cmd, sizeof cmd, "cp %s/c10_p3/data_batch_3 %s/c10/", fix, work);
    if (system(cmd) != 0) fprintf(stderr, "cannot copy the fixture\n");
    remove(at("c10/batches.meta", ""));
    rc = load("cifar10:%s", at("c10", ""), &ds, &e);
    CHECK(rc == NC_OK && strcmp(ds.class_names[9], "truck") == 0 && ds.train.n == 6,
          "without batches.meta CIFAR-10's own names, as for the binary release: %s", rc ? e.msg : ds.class_names[9]);
    data_free(&ds);
    /* a meta file with the wrong number of names */
    snprintf(cmd, sizeof cmd, "cp %s/c100_p5/meta %s/c10/batches.meta", fix, work);
    if (system(cmd) != 0) fprintf(stderr, "cannot copy the fixture\n");
    rc = load("cifar10:%s", at("c10", ""), &ds, &e);
    CHECK(rc == NC_EFILE && strstr(e.msg, "batches.meta: no 'label_names' entry") && strstr(e.msg, "'fine_label_names'"),
          "CIFAR-100's meta as batches.meta: %s", e.msg);
}

int main(void) {
    const char *base = getenv("NCELAB_TESTDIR"), *src = getenv("NCELAB_SRCDIR");
    snprintf(work, sizeof work, "%s/pickle_work", base ? base : "/tmp");
    snprintf(fix, sizeof fix, "%s/tests/fixtures/cifar_py", src ? src : "..");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", work, work);
    if (system(cmd) != 0) return 1;
    write_binary_twins();
    test_cifar10_forms();
    test_cifar100_forms();
    test_variants();
    test_refusals();
    test_directories();
    return check_done();
}
