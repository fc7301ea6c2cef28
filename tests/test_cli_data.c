// test_cli_data.c -- the shipped binary end to end: ncelab data info / convert, their JSON and their errors.
#define _POSIX_C_SOURCE 200809L
#include <sys/stat.h>

#include <png.h>

#include "check.h"
#include "cli_util.h"
#include "ncelab/jsonio.h"

static const cJSON *get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static int int_array_is(const cJSON *a, const int *want, int n) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return 0;
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(v) || v->valuedouble != want[i]) return 0;
    }
    return 1;
}

static cJSON *load_json(const char *path) {
    cJSON *doc = NULL;
    NcError e;
    if (json_load(path, &doc, &e)) return NULL;
    return doc;
}

/* A tiny CIFAR-10 directory: one record per batch file with a constant-per-channel image
   (R = 10 * label, G = 100, B = 200) so the channel means are known in closed form. */
static void write_cifar10(const char *dir, int bad_size) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd) != 0) return;
    for (int f = 0; f < 6; f++) {
        char path[700];
        if (f < 5) snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, f + 1);
        else snprintf(path, sizeof path, "%s/test_batch.bin", dir);
        unsigned char rec[3073];
        rec[0] = (unsigned char)(f < 5 ? f : 9);
        memset(rec + 1, 10 * rec[0], 1024);
        memset(rec + 1025, 100, 1024);
        memset(rec + 2049, 200, 1024);
        FILE *fp = fopen(path, "wb");
        if (!fp) continue;
        fwrite(rec, 1, bad_size && f == 2 ? 3000 : sizeof rec, fp);
        fclose(fp);
    }
}

static void test_help_and_usage(void) {
    CHECK(cli_run("--help") == 0 && strstr(cli_out, "data"), "ncelab --help lists data");
    CHECK(cli_run("data --help") == 0 && strstr(cli_out, "info") && strstr(cli_out, "convert"), "data --help");
    CHECK(cli_run("data info --help") == 0 && strstr(cli_out, "--resize") && strstr(cli_out, "--imbalance") &&
              strstr(cli_out, "synth:N"),
          "data info --help lists options and SPECs");
    CHECK(cli_run("data convert --help") == 0 && strstr(cli_out, "packed"), "data convert --help");
    CHECK(cli_run("data") == 2, "data without a subcommand: exit 2");
    CHECK(cli_run("data frob") == 2 && strstr(cli_err, "frob"), "unknown subcommand: exit 2: %s", cli_err);
}

static void test_info_json(void) {
    char j1[400], j2[400], pk[400];
    snprintf(j1, sizeof j1, "%s/synth.json", cli_dir);
    snprintf(j2, sizeof j2, "%s/packed.json", cli_dir);
    snprintf(pk, sizeof pk, "%s/s.packed", cli_dir);
    int rc = cli_run("data info synth:4:16:10 --seed 3 --json %s", j1);
    CHECK(rc == 0 && strstr(cli_out, "train") && strstr(cli_out, "16 x 16 x 3"), "data info synth runs (exit %d)", rc);
    cJSON *doc = load_json(j1);
    CHECK(doc != NULL, "its JSON parses");
    if (!doc) return;
    const char *keys[] = {"name", "source", "num_classes", "class_names", "train", "test"};
    int have = 1;
    for (int i = 0; i < 6; i++) have &= get(doc, keys[i]) != NULL;
    const cJSON *tr = get(doc, "train"), *te = get(doc, "test");
    const char *skeys[] = {"n", "shape", "per_class", "mean", "std"};
    for (int i = 0; i < 5; i++) have &= get(tr, skeys[i]) != NULL && get(te, skeys[i]) != NULL;
    CHECK(have, "every contract field is present");
    int shape[3] = {16, 16, 3}, pc[4] = {10, 10, 10, 10}, pct[4] = {2, 2, 2, 2};
    CHECK(strcmp(cJSON_GetStringValue(get(doc, "name")), "synth") == 0 && get(doc, "num_classes")->valuedouble == 4 &&
              cJSON_GetArraySize(get(doc, "class_names")) == 4 && get(tr, "n")->valuedouble == 40 &&
              int_array_is(get(tr, "shape"), shape, 3) && int_array_is(get(tr, "per_class"), pc, 4) &&
              get(te, "n")->valuedouble == 8 && int_array_is(get(te, "per_class"), pct, 4),
          "synth:4:16:10: 40 train (10 per class), 8 test, shape [16,16,3]");
    const cJSON *m = get(tr, "mean"), *s = get(tr, "std");
    double m0 = cJSON_GetArrayItem(m, 0)->valuedouble, s0 = cJSON_GetArrayItem(s, 0)->valuedouble;
    CHECK(cJSON_GetArraySize(m) == 3 && m0 > 0.2 && m0 < 0.8 && s0 > 0.05 && s0 < 0.5, "3 channel means, mean %.3f std %.3f", m0, s0);

    /* convert, then info on the packed file: the same statistics */
    rc = cli_run("data convert synth:4:16:10 %s --seed 3", pk);
    CHECK(rc == 0 && strstr(cli_out, "wrote"), "data convert writes the packed file (exit %d): %s", rc, cli_err);
    rc = cli_run("data info packed:%s --json %s", pk, j2);
    cJSON *d2 = load_json(j2);
    int same = rc == 0 && d2 != NULL;
    if (same) {
        char *a = cJSON_PrintUnformatted(get(doc, "train")), *b = cJSON_PrintUnformatted(get(d2, "train"));
        char *c = cJSON_PrintUnformatted(get(doc, "test")), *d = cJSON_PrintUnformatted(get(d2, "test"));
        same = strcmp(a, b) == 0 && strcmp(c, d) == 0 && strcmp(cJSON_GetStringValue(get(d2, "source")), pk) == 0;
        free(a);
        free(b);
        free(c);
        free(d);
    }
    CHECK(same, "info on packed:FILE gives the same splits as on synth");
    cJSON_Delete(d2);
    rc = cli_run("data info synth:4:16:10 --seed 4 --json %s", j2);
    d2 = load_json(j2);
    CHECK(rc == 0 && d2 && cJSON_GetArrayItem(get(get(d2, "train"), "mean"), 0)->valuedouble != m0,
          "--seed changes the synthetic images");
    cJSON_Delete(d2);
    cJSON_Delete(doc);

    /* --imbalance zipf:1 keeps round(10 / c) = 10, 5, 3, 3 (2.5 rounds up); --resize */
    rc = cli_run("data info synth:4:16:10 --imbalance zipf:1 --resize 8,12 --json %s", j1);
    doc = load_json(j1);
    int want[4] = {10, 5, 3, 3}, sh[3] = {8, 12, 3};
    CHECK(rc == 0 && doc && int_array_is(get(get(doc, "train"), "per_class"), want, 4) &&
              int_array_is(get(get(doc, "test"), "per_class"), pct, 4) && int_array_is(get(get(doc, "train"), "shape"), sh, 3),
          "--imbalance zipf:1: per class 10 5 3 3, test untouched, --resize 8,12");
    cJSON_Delete(doc);

    /* CIFAR-10 binary with closed-form channel statistics */
    char dir[400];
    snprintf(dir, sizeof dir, "%s/c10", cli_dir);
    write_cifar10(dir, 0);
    cli_file("c10/batches.meta.txt", "plane\ncar\nbird\nkitty\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
    rc = cli_run("data info cifar10:%s --json %s", dir, j1);
    doc = load_json(j1);
    int pcc[10] = {1, 1, 1, 1, 1, 0, 0, 0, 0, 0};
    double mr = 10.0 * (0 + 1 + 2 + 3 + 4) / 5 / 255, sr = 10.0 * sqrt(2.0) / 255;
    const cJSON *tm = doc ? get(get(doc, "train"), "mean") : NULL, *ts = doc ? get(get(doc, "train"), "std") : NULL;
    CHECK(rc == 0 && tm && int_array_is(get(get(doc, "train"), "per_class"), pcc, 10) &&
              fabs(cJSON_GetArrayItem(tm, 0)->valuedouble - mr) < 1e-12 &&
              fabs(cJSON_GetArrayItem(ts, 0)->valuedouble - sr) < 1e-12 &&
              fabs(cJSON_GetArrayItem(tm, 2)->valuedouble - 200.0 / 255) < 1e-12 &&
              cJSON_GetArrayItem(ts, 2)->valuedouble == 0 &&
              strcmp(cJSON_GetStringValue(cJSON_GetArrayItem(get(doc, "class_names"), 3)), "kitty") == 0,
          "cifar10 names from batches.meta.txt, per class counts and mean/std in closed form (R mean %.4f, std %.4f)", mr, sr);
    cJSON_Delete(doc);
}

static void test_errors(void) {
    int rc = cli_run("data info");
    CHECK(rc == 2 && strstr(cli_err, "SPEC"), "no SPEC: exit 2: %s", cli_err);
    rc = cli_run("data info bogus:1");
    CHECK(rc == 2 && strstr(cli_err, "bogus"), "bad SPEC: exit 2: %s", cli_err);
    rc = cli_run("data info synth:1");
    CHECK(rc == 2 && strstr(cli_err, "synth"), "synth:1: exit 2: %s", cli_err);
    const char *bad_opts[][2] = {
        {"--resize 8", "--resize"},       {"--resize 0,8", "--resize"}, {"--resize 8,x", "--resize"},
        {"--imbalance zipf:-1", "--imbalance"}, {"--imbalance 2", "--imbalance"}, {"--imbalance zipf:nan", "--imbalance"},
        {"--seed x", "--seed"},           {"--frob 1", "--frob"},       {"--json", "--json"},
    };
    for (size_t i = 0; i < sizeof bad_opts / sizeof bad_opts[0]; i++) {
        rc = cli_run("data info synth:3:8:5 %s", bad_opts[i][0]);
        CHECK(rc == 2 && strstr(cli_err, bad_opts[i][1]) && !strchr(strchr(cli_err, '\n') ? strchr(cli_err, '\n') + 1 : "", '\n'),
              "'%s': exit 2, one line naming the option: %s", bad_opts[i][0], cli_err);
    }
    rc = cli_run("data info synth:3:8:5 extra");
    CHECK(rc == 2 && strstr(cli_err, "extra"), "extra argument: exit 2: %s", cli_err);
    rc = cli_run("data convert synth:3:8:5");
    CHECK(rc == 2 && strstr(cli_err, "FILE"), "convert without FILE: exit 2: %s", cli_err);
    rc = cli_run("data info cifar10:%s/nowhere", cli_dir);
    CHECK(rc == 1 && strstr(cli_err, "nowhere") && strstr(cli_err, "no such directory"), "missing directory: exit 1: %s", cli_err);
    char dir[400];
    snprintf(dir, sizeof dir, "%s/c10bad", cli_dir);
    write_cifar10(dir, 1);
    rc = cli_run("data info cifar10:%s", dir);
    CHECK(rc == 1 && strstr(cli_err, "data_batch_3.bin") && strstr(cli_err, "3000"), "bad record size: exit 1: %s", cli_err);
    /* a packed file with one flipped byte */
    char pk[400];
    snprintf(pk, sizeof pk, "%s/flip.packed", cli_dir);
    rc = cli_run("data convert synth:3:8:5 %s", pk);
    FILE *f = fopen(pk, "r+b");
    if (f) {
        fseek(f, -10, SEEK_END);
        int c = fgetc(f);
        fseek(f, -10, SEEK_END);
        fputc(c ^ 1, f);
        fclose(f);
    }
    rc = cli_run("data info packed:%s", pk);
    CHECK(rc == 1 && strstr(cli_err, "flip.packed") && strstr(cli_err, "checksum mismatch"), "flipped byte: exit 1: %s", cli_err);
    rc = cli_run("data convert synth:3:8:5 /proc/ncelab-no/dir/x.packed");
    struct stat st;
    CHECK(rc == 1 && strstr(cli_err, "x.packed") && stat(pk, &st) == 0, "unwritable output: exit 1: %s", cli_err);
}

/* py_json_ok: /usr/bin/python3 parses path as JSON (a strict UTF-8 decoder); header = 1 reads the
   JSON header of a safetensors file instead. */
static int py_json_ok(const char *path, int header) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd,
             header ? "/usr/bin/python3 -c 'import json, struct, sys; b = open(sys.argv[1], \"rb\").read(); "
                      "n = struct.unpack(\"<Q\", b[:8])[0]; json.loads(b[8:8 + n].decode(\"utf-8\"))' '%s' 2>/dev/null"
                    : "/usr/bin/python3 -c 'import json, sys; json.load(open(sys.argv[1], encoding=\"utf-8\"))' '%s' 2>/dev/null",
             path);
    return system(cmd) == 0;
}

/* A folder dataset whose own path and one class folder ("cat\xff") are not UTF-8: data info
   --json is valid JSON (U+FFFD for the byte), training writes a checkpoint that ncelab and Python
   read back, eval finds the data from the checkpoint alone, and --resume accepts the run. */
static void test_names_not_utf8(void) {
    char root[400], dir[600], path[700];
    snprintf(root, sizeof root, "%s/u8\xff", cli_dir);
    const char *classes[2] = {"cat\xff", "dog"};
    png_uint_32 S = 16;
    unsigned char pix[16 * 16 * 3];
    for (int sp = 0; sp < 2; sp++)
        for (int k = 0; k < 2; k++) {
            snprintf(dir, sizeof dir, "mkdir -p '%s/%s/%s'", root, sp ? "test" : "train", classes[k]);
            if (system(dir) != 0) return;
            for (int i = 0; i < (sp ? 4 : 12); i++) {
                for (size_t p = 0; p < sizeof pix; p++) pix[p] = (unsigned char)(k * 150 + (p * 7 + i * 13) % 40);
                png_image im;
                memset(&im, 0, sizeof im);
                im.version = PNG_IMAGE_VERSION;
                im.width = S;
                im.height = S;
                im.format = PNG_FORMAT_RGB;
                snprintf(path, sizeof path, "%s/%s/%s/%d.png", root, sp ? "test" : "train", classes[k], i);
                png_image_write_to_file(&im, path, 0, pix, 0, NULL);
            }
        }
    int rc = cli_run("data info 'folder:%s' --json %s/u8info.json", root, cli_dir);
    snprintf(path, sizeof path, "%s/u8info.json", cli_dir);
    cJSON *doc = load_json(path);
    const cJSON *names = get(doc, "class_names");
    CHECK(rc == 0 && py_json_ok(path, 0) && cJSON_GetArraySize(names) == 2 &&
              strcmp(cJSON_GetArrayItem(names, 0)->valuestring, "cat\xef\xbf\xbd") == 0 &&
              strstr(get(doc, "source")->valuestring, "u8\xef\xbf\xbd"),
          "data info --json on names that are not UTF-8 is valid JSON, U+FFFD for the byte (exit %d)", rc);
    cJSON_Delete(doc);
    rc = cli_run("train --data 'folder:%s' --k 6 --batch 8 --epochs 1 --threads 1 --out %s/u8run", root, cli_dir);
    snprintf(path, sizeof path, "%s/u8run/ckpt.safetensors", cli_dir);
    CHECK(rc == 0 && py_json_ok(path, 1), "train writes a checkpoint whose header is UTF-8 JSON (exit %d): %s", rc, cli_err);
    rc = cli_run("eval --checkpoint %s --json %s/u8eval.json", path, cli_dir);
    snprintf(dir, sizeof dir, "%s/u8eval.json", cli_dir);
    CHECK(rc == 0 && py_json_ok(dir, 0), "eval reads it back and finds the data from its configuration (exit %d): %s", rc,
          cli_err);
    rc = cli_run("train --data 'folder:%s' --k 6 --batch 8 --epochs 2 --threads 1 --out %s/u8run --resume", root, cli_dir);
    CHECK(rc == 0 && strstr(cli_out, "trained"), "--resume accepts the run of the same folder (exit %d): %s", rc, cli_err);
}

/* CIFAR's python release (tests/fixtures/cifar_py, written by tests/ref/make_cifar_pickles.py):
   Python 2's form and Python 3's protocols 2 and 5 give the same JSON, whose counts and channel
   means follow from the fixtures' pixel rule. */
static void test_cifar_python(void) {
    const char *src = getenv("NCELAB_SRCDIR");
    char fix[600], j[400], first[8192] = "";
    snprintf(fix, sizeof fix, "%s/tests/fixtures/cifar_py", src ? src : "..");
    snprintf(j, sizeof j, "%s/c10py.json", cli_dir);
    /* the channel means of the 6 training images: image r of batch f has pixel (r*7 + ch*50 + y*3 + x*5 + f*11) mod 256 */
    int counts[5] = {1, 2, 1, 1, 1};
    double sum[3] = {0};
    for (int f = 0; f < 5; f++)
        for (int r = 0; r < counts[f]; r++)
            for (int ch = 0; ch < 3; ch++)
                for (int y = 0; y < 32; y++)
                    for (int x = 0; x < 32; x++) sum[ch] += (unsigned char)(r * 7 + ch * 50 + y * 3 + x * 5 + f * 11);
    const char *forms[3] = {"py2", "p2", "p5"};
    for (int i = 0; i < 3; i++) {
        int rc = cli_run("data info cifar10:%s/c10_%s --json %s", fix, forms[i], j);
        cJSON *doc = load_json(j);
        int pc[10] = {1, 1, 1, 1, 2, 0, 0, 0, 0, 0}, pt[10] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1}, shape[3] = {32, 32, 3};
        const cJSON *tr = doc ? get(doc, "train") : NULL, *m = tr ? get(tr, "mean") : NULL;
        int ok = rc == 0 && m && strcmp(cJSON_GetStringValue(get(doc, "name")), "cifar10") == 0 &&
                 strcmp(cJSON_GetStringValue(cJSON_GetArrayItem(get(doc, "class_names"), 9)), "lorry") == 0 &&
                 get(tr, "n")->valuedouble == 6 && int_array_is(get(tr, "shape"), shape, 3) &&
                 int_array_is(get(tr, "per_class"), pc, 10) && int_array_is(get(get(doc, "test"), "per_class"), pt, 10);
        for (int ch = 0; ok && ch < 3; ch++) ok = fabs(cJSON_GetArrayItem(m, ch)->valuedouble - sum[ch] / (6 * 1024) / 255) < 1e-12;
        char *a = ok ? cJSON_PrintUnformatted(tr) : NULL, *b = ok ? cJSON_PrintUnformatted(get(doc, "test")) : NULL;
        if (ok && i == 0) snprintf(first, sizeof first, "%s%s", a, b);
        else if (ok) {
            char both[8192];
            snprintf(both, sizeof both, "%s%s", a, b);
            ok = strcmp(both, first) == 0;
        }
        free(a);
        free(b);
        CHECK(ok, "data info cifar10:DIR on the python release (%s): 6 + 2 images, per-class counts, channel means of the rule, names from batches.meta%s (exit %d) %s",
              forms[i], i ? ", the same JSON as Python 2's" : "", rc, cli_err);
        cJSON_Delete(doc);
    }
    int rc = cli_run("data info cifar100:%s/c100_py2:coarse --json %s", fix, j);
    cJSON *doc = load_json(j);
    CHECK(rc == 0 && doc && get(doc, "num_classes")->valuedouble == 20 &&
              strcmp(cJSON_GetStringValue(cJSON_GetArrayItem(get(doc, "class_names"), 19)), "vehicles_2") == 0 &&
              get(get(doc, "train"), "n")->valuedouble == 3,
          "data info cifar100:DIR:coarse on Python 2's cifar-100-python: 20 superclasses named from meta (exit %d) %s", rc, cli_err);
    cJSON_Delete(doc);

    /* errors: a directory of neither release, a batch that calls os.system */
    char dir[500];
    snprintf(dir, sizeof dir, "%s/notcifar", cli_dir);
    mkdir(dir, 0755);
    rc = cli_run("data info cifar10:%s", dir);
    CHECK(rc == 1 && strstr(cli_err, "not a CIFAR-10 directory") && strstr(cli_err, "cifar-10-batches-bin") &&
              strstr(cli_err, "cifar-10-batches-py") && !strchr(strchr(cli_err, '\n') ? strchr(cli_err, '\n') + 1 : "", '\n'),
          "an empty directory: exit 1, one line naming both releases: %s", cli_err);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cp -r %s/c10_p4 %s/c10evil", fix, cli_dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot copy the fixtures\n");
    FILE *f = fopen(cli_file("c10evil/test_batch", ""), "wb");
    if (f) {
        static const char evil[] = "\x80\x02" "cos\nsystem\n" "X\x0b\x00\x00\x00touch pwned" "\x85R.";
        fwrite(evil, 1, sizeof evil - 1, f);
        fclose(f);
    }
    rc = cli_run("data info cifar10:%s/c10evil", cli_dir);
    struct stat st;
    CHECK(rc == 1 && strstr(cli_err, "c10evil/test_batch: byte 2: global 'os.system' refused") && stat("pwned", &st) != 0,
          "a pickle calling os.system: exit 1 naming the file and byte, nothing run: %s", cli_err);
}

int main(void) {
    cli_setup("cli_data");
    test_help_and_usage();
    test_info_json();
    test_errors();
    test_names_not_utf8();
    test_cifar_python();
    return check_done();
}
