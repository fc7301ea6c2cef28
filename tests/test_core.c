// test_core.c -- core utilities: Philox known answers, parsers, atomic writes, JSON errors, the
// large-buffer allocation (alignment, and the huge-page advice as the kernel records it).
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "ncelab/core.h"
#include "ncelab/jsonio.h"
#include "ncelab/rng.h"
#include "ncelab/train.h"
#include "ncelab/utf8.h"

static void test_philox(void) {
    /* Known-answer vectors of Random123 (kat_vectors, philox4x32 10 rounds). */
    struct { uint32_t ctr[4], key[2], out[4]; } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        rng_philox(out, kat[i].ctr, kat[i].key);
        CHECK(memcmp(out, kat[i].out, sizeof out) == 0, "philox4x32-10 known answer %d: %08x %08x %08x %08x", i,
              out[0], out[1], out[2], out[3]);
    }
    /* the stream is a function of (seed, coordinates) only */
    Rng a, b;
    rng_init(&a, 42, 1, 2, 3);
    rng_init(&b, 42, 1, 2, 3);
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= rng_u32(&a) == rng_u32(&b);
    rng_init(&b, 42, 1, 2, 4);
    int differ = 0;
    rng_init(&a, 42, 1, 2, 3);
    for (int i = 0; i < 8; i++) differ += rng_u32(&a) != rng_u32(&b);
    CHECK(same && differ == 8, "streams repeat for equal keys and differ for another coordinate");
    /* uniform moments and range */
    double s = 0, s2 = 0, lo = 1, hi = 0;
    int n = 200000;
    rng_init(&a, 7, 0, 0, 0);
    for (int i = 0; i < n; i++) {
        double u = rng_uniform(&a);
        s += u; s2 += u * u;
        lo = fmin(lo, u); hi = fmax(hi, u);
    }
    double mean = s / n, var = s2 / n - mean * mean;
    CHECK(lo > 0 && hi < 1 && fabs(mean - 0.5) < 0.005 && fabs(var - 1.0 / 12) < 0.002,
          "uniform in (0,1): mean %.4f var %.4f", mean, var);
    long counts[5] = {0};
    for (int i = 0; i < 50000; i++) counts[rng_below(&a, 5)]++;
    int ok = 1;
    for (int i = 0; i < 5; i++) ok &= labs(counts[i] - 10000) < 500;
    CHECK(ok, "rng_below(5) is uniform: %ld %ld %ld %ld %ld", counts[0], counts[1], counts[2], counts[3], counts[4]);
}

static void test_parsers(void) {
    NcError err = {0};
    long *ks;
    int n;
    CHECK(nc_parse_klist("1..4096", "--k", &ks, &n, &err) == NC_OK && n == 13 && ks[0] == 1 && ks[12] == 4096,
          "1..4096 gives the 13 powers of two");
    free(ks);
    CHECK(nc_parse_klist("16,1,1e6,2", "--k", &ks, &n, &err) == NC_OK && n == 4 && ks[0] == 1 && ks[3] == 1000000,
          "lists are sorted, 1e6 is accepted");
    free(ks);
    CHECK(nc_parse_klist("0,4", "--k", &ks, &n, &err) == NC_EUSAGE && strstr(err.msg, "--k"), "k = 0 refused: %s", err.msg);
    CHECK(nc_parse_klist("-3", "--k", &ks, &n, &err) == NC_EUSAGE, "k = -3 refused: %s", err.msg);
    CHECK(nc_parse_klist("2000000000", "--k", &ks, &n, &err) == NC_EUSAGE, "k > 1e9 refused: %s", err.msg);
    CHECK(nc_parse_klist("abc", "--k", &ks, &n, &err) == NC_EUSAGE, "k = abc refused: %s", err.msg);
    CHECK(nc_parse_klist("1.5", "--k", &ks, &n, &err) == NC_EUSAGE, "k = 1.5 refused: %s", err.msg);
    double d;
    CHECK(nc_parse_double("nan", "--norm", &d, &err) == NC_EUSAGE, "NaN refused: %s", err.msg);
    CHECK(nc_parse_double("1e400", "--norm", &d, &err) == NC_EUSAGE, "overflow refused: %s", err.msg);
    CHECK(nc_parse_double("2.5x", "--norm", &d, &err) == NC_EUSAGE, "trailing junk refused: %s", err.msg);
    /* strict: what strtod would take but a person did not mean is refused, naming option and item */
    const char *bad_k[] = {"1,,2", ",4", "4,", "0x10", " 4", "4 ", "4x", "\t4", "1..", "..8", "1...8", "1..8x",
                           "inf", "1e", "e3", ".", "-", "1..2..8"};
    for (size_t i = 0; i < sizeof bad_k / sizeof bad_k[0]; i++) {
        ks = NULL;
        int rc = nc_parse_klist(bad_k[i], "--k", &ks, &n, &err);
        int named = strstr(err.msg, "--k") && (strstr(err.msg, bad_k[i]) || strstr(err.msg, "empty"));
        CHECK(rc == NC_EUSAGE && ks == NULL && named && !strchr(err.msg, '\n'), "--k '%s' refused: %s", bad_k[i], err.msg);
    }
    CHECK(nc_parse_klist("1,,2", "--k", &ks, &n, &err) == NC_EUSAGE && strstr(err.msg, "item 2"),
          "the empty item is located: %s", err.msg);
    CHECK(nc_parse_klist("0x10", "--k", &ks, &n, &err) == NC_EUSAGE && strstr(err.msg, "'0x10'"),
          "hexadecimal is not a k: %s", err.msg);
    CHECK(nc_parse_klist("3,2e3,+8,1..4", "--k", &ks, &n, &err) == NC_OK && n == 6 && ks[0] == 1 && ks[1] == 2 &&
              ks[2] == 3 && ks[3] == 4 && ks[4] == 8 && ks[5] == 2000,
          "a sign and an exponent are still numbers: n = %d", n);
    free(ks);
    long x = 0;
    CHECK(nc_parse_long("9007199254740993", "--seed", 0, 9007199254740993L, &x, &err) == NC_OK &&
              x == 9007199254740993L, "digits are read exactly beyond 2^53: %ld", x);
    CHECK(nc_parse_long("-7", "--x", -10, 10, &x, &err) == NC_OK && x == -7, "negative integers: %ld", x);
    CHECK(nc_parse_long("99999999999999999999", "--seed", 0, 100, &x, &err) == NC_EUSAGE && strstr(err.msg, "range"),
          "an integer beyond long is out of range: %s", err.msg);
    CHECK(nc_parse_long("2.5e0", "--x", 0, 100, &x, &err) == NC_EUSAGE, "2.5e0 is not an integer: %s", err.msg);
    CHECK(nc_parse_long("9.223372036854775808e18", "--x", LONG_MIN, LONG_MAX, &x, &err) == NC_EUSAGE &&
              strstr(err.msg, "range") &&
              nc_parse_long("-9.223372036854775808e18", "--x", LONG_MIN, LONG_MAX, &x, &err) == NC_OK && x == LONG_MIN,
          "2^63 written with an exponent is beyond long, -2^63 is not (no float-to-long overflow)");
    CHECK(nc_parse_long("2.5e3", "--x", 0, 10000, &x, &err) == NC_OK && x == 2500, "2.5e3 is 2500: %ld", x);
    CHECK(nc_parse_long("", "--x", 0, 10, &x, &err) == NC_EUSAGE && strstr(err.msg, "--x"), "empty refused: %s", err.msg);
    const char *bad_d[] = {"0x1p3", " 1", "1 ", "inf", "-infinity", "nan(1)", "1e", "+", ".e1", "1e-400", "1,5", ""};
    for (size_t i = 0; i < sizeof bad_d / sizeof bad_d[0]; i++)
        CHECK(nc_parse_double(bad_d[i], "--lr", &d, &err) == NC_EUSAGE && strstr(err.msg, "--lr") &&
                  strstr(err.msg, bad_d[i]), "--lr '%s' refused: %s", bad_d[i], err.msg);
    const char *good_d[] = {"0.5", ".5", "5.", "-1e-3", "+2", "1E+2", "007"};
    const double want_d[] = {0.5, 0.5, 5.0, -1e-3, 2.0, 100.0, 7.0};
    for (size_t i = 0; i < sizeof good_d / sizeof good_d[0]; i++)
        CHECK(nc_parse_double(good_d[i], "--lr", &d, &err) == NC_OK && d == want_d[i], "--lr '%s' = %g", good_d[i], d);
}

static void test_files(void) {
    NcError err = {0};
    char dir[] = "/tmp/ncelab_core_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "temporary directory");
    char *path = nc_path_join(dir, "a.txt");
    CHECK(nc_write_atomic(path, "old", 3, &err) == NC_OK, "atomic write");
    CHECK(nc_write_atomic(path, "new content", 11, &err) == NC_OK, "atomic overwrite");
    char *data;
    size_t len;
    CHECK(nc_read_file(path, &data, &len, &err) == NC_OK && len == 11 && strcmp(data, "new content") == 0,
          "read back the new content");
    free(data);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 1", dir);
    CHECK(system(cmd) == 0, "no temporary file left beside it");
    char *made = nc_path_join(dir, "missing/dir/b.txt");  /* missing parents are created */
    CHECK(nc_write_atomic(made, "x", 1, &err) == NC_OK && nc_read_file(made, &data, &len, &err) == NC_OK && len == 1,
          "a path's missing parent directories are created");
    free(data);
    free(made);
    char *bad = nc_path_join("/proc", "ncelab-missing/dir/b.txt");
    CHECK(nc_write_atomic(bad, "x", 1, &err) == NC_EFILE && strstr(err.msg, bad), "unwritable path named: %s", err.msg);
    CHECK(nc_read_file(bad, &data, &len, &err) == NC_EFILE && strstr(err.msg, "ncelab-missing/dir/b.txt"),
          "unreadable file named: %s", err.msg);
    char *sub = nc_path_join(dir, "x/y/z");
    CHECK(nc_mkdir_p(sub, &err) == NC_OK, "mkdir -p");
    struct stat st;
    CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode), "directory exists");
    /* JSON: malformed text names file and line */
    char *jp = nc_path_join(dir, "bad.json");
    nc_write_atomic(jp, "[[1, 2],\n [3, 4,]]\n", 18, &err);
    cJSON *doc;
    CHECK(json_load(jp, &doc, &err) == NC_EFILE && strstr(err.msg, "bad.json") && strstr(err.msg, "line 2"),
          "malformed JSON: %s", err.msg);
    /* one document, then whitespace only */
    nc_write_atomic(jp, "{\"a\": 1}\n\n xyz\n", 16, &err);
    CHECK(json_load(jp, &doc, &err) == NC_EFILE && !doc && strstr(err.msg, "bad.json") && strstr(err.msg, "trailing") &&
              strstr(err.msg, "line 3 (byte 11)"), "text after the document refused: %s", err.msg);
    nc_write_atomic(jp, "{\"a\": 1}\r\n\t \n", 13, &err);
    CHECK(json_load(jp, &doc, &err) == NC_OK && cJSON_IsObject(doc), "trailing whitespace accepted");
    cJSON_Delete(doc);
    const char *bad_json[] = {"[1] [2]", "{}}", "1 2", "[1]\0", "", " ", "[1]\x01", "null x"};
    const size_t bad_len[] = {7, 3, 3, 4, 0, 1, 4, 6};
    for (int i = 0; i < 8; i++)
        CHECK(json_parse(bad_json[i], bad_len[i], "--what", &doc, &err) == NC_EFILE && !doc && strstr(err.msg, "--what"),
              "json_parse refuses case %d: %s", i, err.msg);
    CHECK(json_parse("[1]  \n", 6, "x", &doc, &err) == NC_OK && cJSON_GetArraySize(doc) == 1, "json_parse with spaces after");
    cJSON_Delete(doc);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    free(path); free(bad); free(sub); free(jp);
}

/* UTF-8: what is well-formed, what the repair gives, and a configuration with a folder name that
   is not UTF-8 written as valid JSON and read back to the same bytes. */
static void test_utf8(void) {
    struct { const char *s; long bad; const char *repaired; } cases[] = {
        {"plain", -1, "plain"},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", -1, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        {"cat\xff", 3, "cat\xef\xbf\xbd"},
        {"\xc0\xaf", 0, "\xef\xbf\xbd\xef\xbf\xbd"},            /* overlong '/' */
        {"a\xed\xa0\x80" "b", 1, "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "b"},  /* a surrogate */
        {"\xf4\x90\x80\x80", 0, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},  /* above U+10FFFF */
        {"x\xe2\x82", 1, "x\xef\xbf\xbd\xef\xbf\xbd"},          /* cut short */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long bad = utf8_invalid(cases[i].s, strlen(cases[i].s));
        char *r = utf8_repair(cases[i].s);
        CHECK(bad == cases[i].bad && strcmp(r, cases[i].repaired) == 0 && utf8_invalid(r, strlen(r)) < 0,
              "utf8 case %zu: first bad byte %ld (want %ld), repaired to valid UTF-8 as expected", i, bad, cases[i].bad);
        free(r);
    }
    TrainConfig c, back;
    train_config_default(&c);
    snprintf(c.data, sizeof c.data, "folder:/tmp/pp\xff/d\xc3\xa9");
    char *js = train_config_json(&c);
    cJSON *doc = cJSON_Parse(js);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(doc, "data"), *b = cJSON_GetObjectItemCaseSensitive(doc, "data_bytes");
    CHECK(utf8_invalid(js, strlen(js)) < 0 && cJSON_IsString(d) && strcmp(d->valuestring, "folder:/tmp/pp\xef\xbf\xbd/d\xc3\xa9") == 0 &&
              cJSON_IsString(b) && strcmp(b->valuestring, "666f6c6465723a2f746d702f7070ff2f64c3a9") == 0,
          "a configuration naming a folder that is not UTF-8 is UTF-8 JSON, with data_bytes beside data");
    CHECK(train_config_parse(js, "test", &back, NULL) == NC_OK && strcmp(back.data, c.data) == 0 &&
              train_config_same(&back, &c),
          "and it reads back to the same bytes: %s", back.data);
    CHECK(!cJSON_GetObjectItemCaseSensitive(doc, "model_bytes"), "valid strings have no _bytes");
    cJSON_Delete(doc);
    free(js);
    const char *bad = "{\"data\":\"x\",\"data_bytes\":\"7g\",\"model\":\"convnet\"}";
    CHECK(train_config_parse(bad, "bad.json", &back, NULL) == NC_EFILE, "malformed data_bytes is refused");
}

/* README's table of exit statuses lists every error code of core.h, which the CLI exits with. */
static void test_exit_statuses_documented(void) {
    const char *src = getenv("NCELAB_SRCDIR");
    char path[600], *text = NULL;
    size_t len;
    NcError err;
    snprintf(path, sizeof path, "%s/README.md", src ? src : "..");
    int rc = nc_read_file(path, &text, &len, &err);
    const int codes[] = {NC_OK, NC_EFILE, NC_EUSAGE, NC_ENUM};
    int all = rc == NC_OK && strstr(text, "| status | meaning |");
    for (size_t i = 0; all && i < sizeof codes / sizeof codes[0]; i++) {
        char row[16];
        snprintf(row, sizeof row, "\n| %d | ", codes[i]);
        all = strstr(text, row) != NULL;
    }
    CHECK(all, "README's exit-status table has a row for each of 0, 1, 2, 3 (%s)", rc ? err.msg : path);
    free(text);
}

/* The VmFlags of the mapping holding p in /proc/self/smaps ("" when not found). */
static void vm_flags_of(const void *p, char *flags, size_t cap) {
    flags[0] = 0;
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return;
    char line[512];
    int inside = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            inside = (unsigned long)p >= lo && (unsigned long)p < hi;
        } else if (inside && !strncmp(line, "VmFlags:", 8)) {
            snprintf(flags, cap, "%s", line + 8);
            break;
        }
    }
    fclose(f);
}

static void test_big_alloc(void) {
    char *small = nc_malloc_big(100);
    CHECK(((uintptr_t)small & 63) == 0, "a small buffer from nc_malloc_big is 64-byte aligned");
    free(small);
    size_t n = ((size_t)5 << 20) + 1;
    char *big = nc_malloc_big(n);
    big[0] = 1;
    big[n - 1] = 2;
    CHECK(((uintptr_t)big & (((uintptr_t)2 << 20) - 1)) == 0, "a 5 MiB buffer is 2 MiB aligned");
    char flags[512];
    vm_flags_of(big, flags, sizeof flags);
    FILE *thp = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!thp || !flags[0]) {
        printf("SKIP  no transparent huge pages or no smaps on this kernel: the advice is not checked\n");
    } else {
        CHECK(strstr(flags, " hg") != NULL, "the kernel records MADV_HUGEPAGE on it (VmFlags:%.*s)",
              (int)strcspn(flags, "\n"), flags);
        setenv("NCELAB_HUGEPAGES", "0", 1);
        char *plain = nc_malloc_big(n);
        unsetenv("NCELAB_HUGEPAGES");
        plain[0] = 1;
        vm_flags_of(plain, flags, sizeof flags);
        CHECK(strstr(flags, " hg") == NULL, "NCELAB_HUGEPAGES=0: no advice (VmFlags:%.*s)", (int)strcspn(flags, "\n"),
              flags);
        free(plain);
    }
    if (thp) fclose(thp);
    free(big);
    /* nc_calloc_big: zeroed, the whole 2 MiB pages inside it advised */
    size_t nf = (size_t)3 << 20;
    float *z = nc_calloc_big(nf, sizeof(float));
    int zero = 1;
    for (size_t i = 0; i < nf; i += 4099) zero &= z[i] == 0.0f;
    CHECK(zero && z[nf - 1] == 0.0f, "nc_calloc_big gives zeros");
    uintptr_t inner = ((uintptr_t)z + (((uintptr_t)2 << 20) - 1)) & ~((((uintptr_t)2 << 20)) - 1);
    ((float *)inner)[0] = 1.0f;
    vm_flags_of((void *)inner, flags, sizeof flags);
    if (flags[0] && access("/sys/kernel/mm/transparent_hugepage/enabled", R_OK) == 0)
        CHECK(strstr(flags, " hg") != NULL, "the 2 MiB pages inside a 12 MiB nc_calloc_big are advised (VmFlags:%.*s)",
              (int)strcspn(flags, "\n"), flags);
    free(z);
}

int main(void) {
    test_philox();
    test_big_alloc();
    test_exit_statuses_documented();
    test_parsers();
    test_files();
    test_utf8();
    return check_done();
}
