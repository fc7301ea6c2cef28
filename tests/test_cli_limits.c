// test_cli_limits.c -- hostile inputs through the shipped binary under a memory limit (ulimit -v):
// each must be refused with exit 1 or 2 and one line naming the file and the problem, never end in
// an abort (134), a kill (137) or a crash (139). A regression that sizes memory from an untrusted
// number, or reads a device until memory runs out, fails here loudly instead of passing slowly.
#define _DEFAULT_SOURCE
#include "check.h"
#include "png_util.h"
#include "cli_util.h"
#include "ncelab/jsonio.h"
#include "ncelab/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* The address-space limit of every hostile run, in KiB (NCELAB_TEST_ULIMIT_KB overrides it; 0:
   none, for AddressSanitizer builds, see tests/CMakeLists.txt): ncelab itself runs in a few
   hundred MiB of address space; the inputs below asked for 8 TB, 16 GiB, 4 GiB or 1.6 GB. */
static long limit_kb = 1024L * 1024;

static char bin[600], limited_bin[800];

/* limited: from now on cli_run runs the binary under ulimit -v LIMIT_KB. */
static void limited(int on) {
    setenv("NCELAB_BIN", on ? limited_bin : bin, 1);
}

static int one_line(const char *s) {
    int lines = 0;
    for (; *s; s++) lines += *s == '\n';
    return lines == 1;
}

/* refused: the run ended with exit want (1 or 2), one line on stderr holding every needle. */
static int refused(int rc, int want, const char *n1, const char *n2) {
    return rc == want && one_line(cli_err) && strstr(cli_err, n1) && (!n2 || strstr(cli_err, n2));
}

static const char *path_in(const char *name) {
    static char p[4][700];
    static int slot;
    char *s = p[slot++ % 4];
    snprintf(s, 700, "%s/%s", cli_dir, name);
    return s;
}

/* write_rows: a JSON array of n copies of row ("[]" or "[1]"), the Gram or support file of a
   hostile input. */
static const char *write_rows(const char *name, long n, const char *row) {
    const char *p = path_in(name);
    FILE *f = fopen(p, "w");
    if (!f) return p;
    fputc('[', f);
    for (long i = 0; i < n; i++) fprintf(f, "%s%s", i ? "," : "", row);
    fputs("]\n", f);
    fclose(f);
    return p;
}

/* 1. theory: a 3 MB Gram file of a million empty rows asked for 8 TB; a 60 MB one of twenty
   million, for 1.6 GB of parser nodes before any check; a device is read forever. */
static void test_theory_files(void) {
    const char *g = write_rows("rows1m.json", 1000000, "[]");
    int rc = cli_run("theory eval --gram %s --k 4", g);
    CHECK(refused(rc, 1, "rows1m.json", "1000000 rows is more than the 2000 allowed"),
          "Gram file of 10^6 empty rows -> exit %d: %s", rc, cli_err);
    g = write_rows("rows20m.json", 20000000, "[]");
    rc = cli_run("theory eval --gram %s --k 4", g);
    CHECK(refused(rc, 1, "rows20m.json", "more than a 2000 x 2000 matrix holds"),
          "Gram file of 2 x 10^7 empty rows, refused before parsing -> exit %d: %s", rc, cli_err);
    unlink(g);
    g = write_rows("support1m.json", 1000000, "[1]");
    rc = cli_run("theory --support %s --k 4", g);
    CHECK(refused(rc, 1, "support1m.json", "1000000 rows is more than the 2000 allowed"),
          "support file of 10^6 rows -> exit %d: %s", rc, cli_err);
    rc = cli_run("theory eval --gram /dev/zero --k 4");
    CHECK(refused(rc, 1, "/dev/zero", "not a regular file"), "--gram /dev/zero -> exit %d: %s", rc, cli_err);
}

/* 2. checkpoints that are not files, or whose header length asks for 100 MB of a 4 GB file */
static void test_checkpoint_files(void) {
    int rc = cli_run("eval --checkpoint /dev/zero");
    CHECK(refused(rc, 1, "/dev/zero", "not a regular file"), "eval --checkpoint /dev/zero -> exit %d: %s", rc, cli_err);
    const char *p = path_in("sparse.safetensors");
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    unsigned char h8[8];
    for (int i = 0; i < 8; i++) h8[i] = (unsigned char)((uint64_t)ST_MAX_HEADER >> (8 * i));
    int ok = fd >= 0 && write(fd, h8, 8) == 8 && ftruncate(fd, (off_t)4 << 30) == 0;  /* 4 GiB, sparse */
    if (fd >= 0) close(fd);
    rc = cli_run("eval --checkpoint %s", p);
    CHECK(ok && refused(rc, 1, "sparse.safetensors", "header length 100000000 is at or above the 100000000-byte limit"),
          "a 4 GiB checkpoint whose header length is 100 MB, refused from its first 8 bytes -> exit %d: %s", rc, cli_err);
    unlink(p);
}

/* A 16384 x 4096 RGB PNG that decodes: zlib level 9 of gray rows, about 200 KB. */
static void write_big_png(const char *path) {
    enum { W = 16384, H = 4096 };
    size_t row = 1 + (size_t)W * 3, raw = row * H;
    uint8_t *r = malloc(raw);
    for (size_t y = 0; y < H; y++) {
        r[y * row] = 0;
        memset(r + y * row + 1, 0x80, row - 1);
    }
    uLongf zn = compressBound((uLong)raw);
    uint8_t *z = malloc(zn + 64);
    compress2(z + 8, &zn, r, (uLong)raw, 9);
    free(r);
    write_png_header_only(path, W, H, 2);  /* then replace the empty IDAT by the real one */
    FILE *f = fopen(path, "r+b");
    if (!f) { free(z); return; }
    fseek(f, 8 + 25, SEEK_SET);
    uint8_t *c = z;
    c[0] = (uint8_t)(zn >> 24), c[1] = (uint8_t)(zn >> 16), c[2] = (uint8_t)(zn >> 8), c[3] = (uint8_t)zn;
    memcpy(c + 4, "IDAT", 4);
    uint32_t crc = (uint32_t)crc32(0, c + 4, 4 + (uInt)zn);
    uint8_t tail[16] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc, 0, 0, 0, 0,
                        'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    fwrite(c, 1, 8 + zn, f);
    fwrite(tail, 1, 16, f);
    fclose(f);
    free(z);
}

static void mkdirs(const char *dir) {
    char cmd[800];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot create %s\n", dir);
}

/* 3. image folders: images claiming 16384 x 4096 (decoded, 200 MB each), mixed sizes behind
   images that cannot be decoded, and 345 headers of 4096 x 4096 (16.2 GiB decoded) */
static void test_folders(void) {
    char d[700], f[760];
    snprintf(d, sizeof d, "%s/big", cli_dir);
    for (int s = 0; s < 2; s++) {
        snprintf(f, sizeof f, "%s/%s/a", d, s ? "test" : "train");
        mkdirs(f);
        for (int i = 0; i < (s ? 1 : 8); i++) {
            snprintf(f, sizeof f, "%s/%s/a/%d.png", d, s ? "test" : "train", i);
            if (i == 0) write_big_png(f);
            else {
                char cmd[1600];
                snprintf(cmd, sizeof cmd, "cp '%s/train/a/0.png' '%s'", d, f);
                if (system(cmd) != 0) fprintf(stderr, "cannot copy to %s\n", f);
            }
        }
    }
    struct stat st;
    snprintf(f, sizeof f, "%s/train/a/0.png", d);
    int rc = cli_run("data info folder:%s", d);
    CHECK(stat(f, &st) == 0 && st.st_size < 400000 &&
              refused(rc, 1, "big/train/a/0.png", "width 16384, height 4096: larger than allowed"),
          "folder of %lld-byte PNGs of 16384 x 4096 -> exit %d: %s", (long long)st.st_size, rc, cli_err);

    /* mixed sizes, found from the headers: decoding would fail on the first file */
    snprintf(d, sizeof d, "%s/mixed", cli_dir);
    for (int s = 0; s < 2; s++) {
        snprintf(f, sizeof f, "%s/%s/a", d, s ? "test" : "train");
        mkdirs(f);
        snprintf(f, sizeof f, "%s/%s/a/0.png", d, s ? "test" : "train");
        write_png_header_only(f, 4096, 4096, 2);
    }
    snprintf(f, sizeof f, "%s/train/a/1.png", d);
    write_png_header_only(f, 4096, 2048, 2);
    rc = cli_run("data info folder:%s", d);
    CHECK(refused(rc, 1, "mixed image sizes", "mixed/train/a/1.png is 2048 x 4096"),
          "mixed sizes before decoding -> exit %d: %s", rc, cli_err);

    /* 345 images of 4096 x 4096 x 3 (48 MiB each): 16.2 GiB, over the 16 GiB a folder may decode to */
    snprintf(d, sizeof d, "%s/many", cli_dir);
    for (int s = 0; s < 2; s++) {
        snprintf(f, sizeof f, "%s/%s/a", d, s ? "test" : "train");
        mkdirs(f);
        for (int i = 0; i < (s ? 1 : 344); i++) {
            snprintf(f, sizeof f, "%s/%s/a/%04d.png", d, s ? "test" : "train", i);
            write_png_header_only(f, 4096, 4096, 2);
        }
    }
    rc = cli_run("data info folder:%s", d);
    CHECK(refused(rc, 1, "many: 345 images of 4096 x 4096 x 3 decode to 16.2 GiB, more than the 16 GiB allowed",
                  "many/train/a/0341.png"),
          "a folder over the decoded-size limit, named with the image that crosses it -> exit %d: %s", rc, cli_err);
}

/* 3b. CIFAR's python release: a pickle whose lengths claim a terabyte, or whose 4 MB hold 2^22
   values (each a few dozen bytes of parser state): refused from the file's size, or at the count */
static void test_pickles(void) {
    char d[700];
    snprintf(d, sizeof d, "%s/c10py", cli_dir);
    mkdirs(d);
    const char *p = path_in("c10py/data_batch_1");
    static const unsigned char tb[] = "\x80\x04\x8e\x00\x00\x00\x00\x00\x01\x00\x00xyz.";
    FILE *f = fopen(p, "wb");
    if (f) {
        fwrite(tb, 1, sizeof tb - 1, f);
        fclose(f);
    }
    int rc = cli_run("data info cifar10:%s", d);
    CHECK(refused(rc, 1, "c10py/data_batch_1: byte 2", "BINBYTES8 needs 1099511627776 more bytes"),
          "a pickled batch claiming 1 TiB of bytes -> exit %d: %s", rc, cli_err);
    f = fopen(p, "wb");
    if (f) {
        fputs("\x80\x02](", f);
        for (long i = 0; i < (1L << 22) + 1; i++) fputc('N', f);
        fputs("e.", f);
        fclose(f);
    }
    rc = cli_run("data info cifar10:%s", d);
    CHECK(refused(rc, 1, "c10py/data_batch_1: byte", "more than 4194304 values"),
          "a pickled batch of 2^22 + 1 Nones in 4 MiB -> exit %d: %s", rc, cli_err);
}

/* 4. --threads 1000: capped at the online cores (one line on stderr); --threads-force keeps it */
static void test_threads(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    const char *j = path_in("bench.json");
    cJSON *doc = NULL;
    NcError e;
    int rc = cli_run("bench --model convnet --batch 4 --k 6 --steps 1 --threads 1000 --json %s", j);
    char note[160];
    snprintf(note, sizeof note, "--threads 1000 is more than the %ld online cores: using %ld", cores, cores);
    int ok = rc == 0 && one_line(cli_err) && strstr(cli_err, note) && json_load(j, &doc, &e) == NC_OK;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "threads");
    CHECK(ok && cJSON_IsNumber(t) && t->valuedouble == cores, "bench --threads 1000 runs on %ld threads (exit %d): %s",
          cores, rc, cli_err);
    cJSON_Delete(doc);
    doc = NULL;
    rc = cli_run("bench --model convnet --batch 4 --k 6 --steps 1 --threads %ld --threads-force --json %s", cores + 1, j);
    t = rc == 0 && json_load(j, &doc, &e) == NC_OK ? cJSON_GetObjectItemCaseSensitive(doc, "threads") : NULL;
    CHECK(cJSON_IsNumber(t) && t->valuedouble == cores + 1 && !cli_err[0],
          "--threads-force keeps %ld threads, silently (exit %d)", cores + 1, rc);
    cJSON_Delete(doc);
    rc = cli_run("eval --checkpoint /nonexistent.safetensors --threads 0");
    CHECK(refused(rc, 2, "--threads", NULL), "--threads 0 -> exit %d: %s", rc, cli_err);
}

/* copy_ckpt: src rewritten to dst with tensor name replaced by (dtype, ndim, shape) zeros, or with
   element idx of it set to v (name == NULL: nothing changed). */
static int copy_ckpt(const char *src, const char *dst, const char *name, int retype, StDtype dt, int ndim,
                     const int64_t *shape, size_t idx, float v) {
    StFile f;
    NcError e;
    if (st_load(src, &f, &e)) return 0;
    StWriter *w = st_writer_new();
    int rc = 0;
    void *zero = calloc(1, 1 << 20);
    for (int i = 0; i < f.ntensors && !rc; i++) {
        const StTensor *t = &f.tensors[i];
        if (name && strcmp(t->name, name) == 0 && retype) {
            rc = st_writer_add(w, t->name, dt, ndim, shape, zero, &e);
        } else if (name && strcmp(t->name, name) == 0) {
            float *c = malloc(t->nbytes);
            memcpy(c, t->data, t->nbytes);
            c[idx] = v;
            rc = st_writer_add_copy(w, t->name, t->dtype, t->ndim, t->shape, c, &e);
            free(c);
        } else {
            rc = st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data, &e);
        }
    }
    for (int i = 0; i < f.nmeta && !rc; i++) rc = st_writer_meta(w, f.meta_keys[i], f.meta_vals[i], &e);
    if (!rc) rc = st_writer_save(w, dst, &e);
    st_writer_free(w);
    st_free(&f);
    free(zero);
    return rc == 0;
}

/* 5. checkpoints with wrong values: NaN or Inf weights, a negative or NaN running variance, a
   tensor of another dtype or shape; eval and --resume refuse them, naming the file and tensor */
static void test_checkpoint_values(void) {
    char out[700], ck[760];
    snprintf(out, sizeof out, "%s/run", cli_dir);
    snprintf(ck, sizeof ck, "%s/ckpt.safetensors", out);
    limited(0);
    int rc = cli_run("train --data synth:4:16:60 --k 6 --batch 16 --epochs 1 --threads 1000 --out %s", out);
    limited(1);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    char note[160];
    snprintf(note, sizeof note, "using %ld (--threads-force keeps 1000)", cores);
    CHECK(rc == 0 && one_line(cli_err) && strstr(cli_err, note), "train 1 epoch on synth, --threads capped (exit %d): %s",
          rc, cli_err);
    rc = cli_run("eval --checkpoint %s", ck);
    CHECK(rc == 0, "the checkpoint evaluates under the memory limit (exit %d): %s", rc, cli_err);
    int64_t i32[1] = {32}, flat[2] = {32, 27};
    struct { const char *file, *tensor; int retype; StDtype dt; int ndim; const int64_t *shape; size_t idx; float v;
             const char *needle; } cases[] = {
        {"nan.safetensors", "conv1.weight", 0, ST_F32, 0, NULL, 17, NAN, "conv1.weight: element 17 of 864 is nan"},
        {"inf.safetensors", "head.2.bias", 0, ST_F32, 0, NULL, 3, -INFINITY, "head.2.bias: element 3 of 128 is -inf"},
        {"negvar.safetensors", "bn2.running_var", 0, ST_F32, 0, NULL, 5, -0.5f, "bn2.running_var: element 5 of 64 is -0.5"},
        {"nanvar.safetensors", "bn1.running_var", 0, ST_F32, 0, NULL, 0, NAN, "bn1.running_var: element 0 of 32 is nan"},
        {"i32.safetensors", "conv1.weight", 1, ST_I32, 1, i32, 0, 0, "conv1.weight: F32 [32,3,3,3] expected, I32 [32] found"},
        {"flat.safetensors", "conv1.weight", 1, ST_F32, 2, flat, 0, 0, "conv1.weight: F32 [32,3,3,3] expected, F32 [32,27] found"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = path_in(cases[i].file);
        int made = copy_ckpt(ck, p, cases[i].tensor, cases[i].retype, cases[i].dt, cases[i].ndim, cases[i].shape,
                             cases[i].idx, cases[i].v);
        rc = cli_run("eval --checkpoint %s", p);
        CHECK(made && refused(rc, 1, cases[i].file, cases[i].needle), "eval of %s -> exit %d: %s", cases[i].file, rc,
              cli_err);
    }
    /* --resume reads the same checks */
    const char *p = path_in("nan.safetensors");
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", p, ck);
    rc = system(cmd) == 0 ? cli_run("train --data synth:4:16:60 --k 6 --batch 16 --epochs 2 --threads 1000 --out %s --resume", out)
                          : -1;
    CHECK(rc == 1 && strstr(cli_err, "ckpt.safetensors: conv1.weight: element 17 of 864 is nan"),
          "--resume from it -> exit %d: %s", rc, cli_err);
}

int main(void) {
    cli_setup("cli_limits");
    const char *b = getenv("NCELAB_BIN");
    snprintf(bin, sizeof bin, "%s", b ? b : "./ncelab");
    const char *lim = getenv("NCELAB_TEST_ULIMIT_KB");
    if (lim) limit_kb = atol(lim);
    if (limit_kb > 0) snprintf(limited_bin, sizeof limited_bin, "ulimit -v %ld && exec %s", limit_kb, bin);
    else snprintf(limited_bin, sizeof limited_bin, "%s", bin);
    limited(1);
    int rc = cli_run("--help");
    CHECK(rc == 0, "ncelab runs under ulimit -v %ld (exit %d)", limit_kb, rc);
    test_theory_files();
    test_checkpoint_files();
    test_folders();
    test_pickles();
    test_threads();
    test_checkpoint_values();
    return check_done();
}
