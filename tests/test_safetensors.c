// test_safetensors.c -- safetensors: round trips, files exchanged with numpy, corrupt inputs, fixtures.
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "ncelab/core.h"
#include "ncelab/safetensors.h"

static char tmpdir[] = "/tmp/ncelab_st_XXXXXX";

static char *tmp_path(const char *name) { return nc_path_join(tmpdir, name); }

/* ------------------------------------------------------------ round trip */

static void test_round_trip(void) {
    NcError err = {0};
    float a[6] = {1.5f, -2.25f, 3e-38f, 1e30f, -0.0f, 7.0f};
    double b[4] = {1e-300, 3.141592653589793, -2.5, 1e300};
    int32_t c[8] = {-7, 8, 2147483647, -2147483647 - 1, 0, 1, 2, 3};
    int64_t d[3] = {(int64_t)1 << 40, -1, 9007199254740993LL};
    uint8_t e[5] = {0, 1, 127, 128, 255};  /* 5 bytes: the next tensor starts misaligned */
    float f_after_u8[3] = {0.25f, -0.5f, 1.0f};
    uint8_t g[3] = {1, 0, 1};
    uint16_t h[2] = {0x3e00, 0xc000};      /* F16 1.5, -2 */
    uint16_t bf[2] = {0x3fc0, 0xc000};     /* BF16 1.5, -2 */
    int16_t i16[2] = {-32768, 32767};
    int8_t i8[3] = {-128, 0, 127};
    float scalar = 3.25f;
    float copied[2] = {11.0f, 12.0f};

    StWriter *w = st_writer_new();
    int64_t sa[2] = {2, 3}, sb[1] = {4}, sc[3] = {2, 2, 2}, sd[1] = {3}, se[1] = {5}, sf[1] = {3},
            sg[1] = {3}, sh[1] = {2}, s8[1] = {3}, sz[2] = {0, 3};
    int rc = 0;
    rc |= st_writer_add(w, "a.f32", ST_F32, 2, sa, a, &err);
    rc |= st_writer_add(w, "b.f64", ST_F64, 1, sb, b, &err);
    rc |= st_writer_add(w, "c.i32", ST_I32, 3, sc, c, &err);
    rc |= st_writer_add(w, "d.i64", ST_I64, 1, sd, d, &err);
    rc |= st_writer_add(w, "e.u8", ST_U8, 1, se, e, &err);
    rc |= st_writer_add(w, "f.f32_after_u8", ST_F32, 1, sf, f_after_u8, &err);
    rc |= st_writer_add(w, "g.bool", ST_BOOL, 1, sg, g, &err);
    rc |= st_writer_add(w, "h.f16", ST_F16, 1, sh, h, &err);
    rc |= st_writer_add(w, "h.bf16", ST_BF16, 1, sh, bf, &err);
    rc |= st_writer_add(w, "i.i16", ST_I16, 1, sh, i16, &err);
    rc |= st_writer_add(w, "i.i8", ST_I8, 1, s8, i8, &err);
    rc |= st_writer_add(w, "scalar", ST_F32, 0, NULL, &scalar, &err);
    rc |= st_writer_add(w, "empty", ST_F32, 2, sz, NULL, &err);
    rc |= st_writer_add_copy(w, "copied \"quoted\" \xc3\xa9", ST_F32, 1, sh, copied, &err);
    rc |= st_writer_meta(w, "model", "convnet", &err);
    rc |= st_writer_meta(w, "k", "16", &err);
    rc |= st_writer_meta(w, "T", "0.5", &err);
    rc |= st_writer_meta(w, "note", "line1\nline2 \"q\" \\ \xc3\xa9", &err);
    CHECK(rc == NC_OK, "writer accepts 14 tensors of 10 dtypes and 4 metadata entries");
    copied[0] = -1.0f; /* st_writer_add_copy took a copy: this must not reach the file */
    char *path = tmp_path("rt.safetensors");
    CHECK(st_writer_save(w, path, &err) == NC_OK, "save: %s", err.code ? err.msg : "ok");
    st_writer_free(w);

    /* raw layout: header length a multiple of 8, tensors contiguous from offset 0 */
    char *raw;
    size_t len;
    nc_read_file(path, &raw, &len, &err);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | (unsigned char)raw[i];
    size_t data_bytes = sizeof a + sizeof b + sizeof c + sizeof d + sizeof e + sizeof f_after_u8 + sizeof g +
                        sizeof h + sizeof bf + sizeof i16 + sizeof i8 + sizeof scalar + sizeof copied;
    CHECK(hl % 8 == 0 && len == 8 + hl + data_bytes && raw[8] == '{',
          "layout: header %llu bytes (multiple of 8), file %zu = 8 + header + %zu data bytes", (unsigned long long)hl,
          len, data_bytes);
    free(raw);

    StFile f;
    CHECK(st_load(path, &f, &err) == NC_OK, "load: %s", err.code ? err.msg : "ok");
    CHECK(f.ntensors == 14 && f.nmeta == 4, "14 tensors and 4 metadata entries read back (%d, %d)", f.ntensors,
          f.nmeta);
    /* st_load_mem: the same file from memory, at an odd address, and no pointer into the caller's copy */
    nc_read_file(path, &raw, &len, &err);
    char *odd = malloc(len + 1);
    memcpy(odd + 1, raw, len);
    free(raw);
    StFile fm;
    int mem_ok = st_load_mem(odd + 1, len, "in memory", &fm, &err) == NC_OK;
    memset(odd, 0xAB, len + 1);
    free(odd);
    mem_ok = mem_ok && fm.ntensors == f.ntensors && fm.nmeta == f.nmeta && strcmp(fm.path, "in memory") == 0;
    for (int i = 0; mem_ok && i < f.ntensors; i++) {
        const StTensor *x = &f.tensors[i], *y = &fm.tensors[i];
        mem_ok = strcmp(x->name, y->name) == 0 && x->dtype == y->dtype && x->nbytes == y->nbytes &&
                 memcmp(x->data, y->data, x->nbytes) == 0 && (uintptr_t)y->data % st_dtype_size(y->dtype) == 0;
    }
    for (int i = 0; mem_ok && i < f.nmeta; i++) mem_ok = strcmp(st_meta(&fm, f.meta_keys[i]), f.meta_vals[i]) == 0;
    CHECK(mem_ok, "st_load_mem gives the tensors and metadata of st_load, aligned, from a buffer at an odd address");
    st_free(&fm);
    struct {
        const char *name;
        StDtype dt;
        int ndim;
        const int64_t *shape;
        const void *data;
        size_t nbytes;
    } want[] = {
        {"a.f32", ST_F32, 2, sa, a, sizeof a},         {"b.f64", ST_F64, 1, sb, b, sizeof b},
        {"c.i32", ST_I32, 3, sc, c, sizeof c},         {"d.i64", ST_I64, 1, sd, d, sizeof d},
        {"e.u8", ST_U8, 1, se, e, sizeof e},
        {"f.f32_after_u8", ST_F32, 1, sf, f_after_u8, sizeof f_after_u8},
        {"g.bool", ST_BOOL, 1, sg, g, sizeof g},       {"h.f16", ST_F16, 1, sh, h, sizeof h},
        {"h.bf16", ST_BF16, 1, sh, bf, sizeof bf},     {"i.i16", ST_I16, 1, sh, i16, sizeof i16},
        {"i.i8", ST_I8, 1, s8, i8, sizeof i8},         {"scalar", ST_F32, 0, NULL, &scalar, sizeof scalar},
        {"empty", ST_F32, 2, sz, NULL, 0},
    };
    int all = 1, aligned = 1;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const StTensor *t;
        int ok = st_get(&f, want[i].name, want[i].dt, want[i].ndim, want[i].shape, &t, &err) == NC_OK;
        ok = ok && t->nbytes == want[i].nbytes && t->data &&
             (!want[i].nbytes || !memcmp(t->data, want[i].data, t->nbytes));
        ok = ok && f.tensors[i].name == t->name; /* header order = insertion order */
        if (ok) aligned &= (uintptr_t)t->data % st_dtype_size(t->dtype) == 0;
        if (!ok) printf("      mismatch in %s: %s\n", want[i].name, err.msg);
        all &= ok;
    }
    CHECK(all, "every tensor has its dtype, shape and exact bytes (incl. a 0-d scalar and a 0x3 empty tensor)");
    const StTensor *t = st_find(&f, "f.f32_after_u8");
    CHECK(aligned && t && ((const float *)t->data)[1] == -0.5f,
          "data pointers are aligned for their dtype, also after a 5-byte U8 tensor");
    t = st_find(&f, "scalar");
    CHECK(t && t->ndim == 0 && t->numel == 1 && *(const float *)t->data == 3.25f, "0-d scalar: numel 1, value 3.25");
    t = st_find(&f, "empty");
    CHECK(t && t->numel == 0 && t->nbytes == 0 && t->shape[1] == 3, "empty tensor: shape [0, 3], no bytes");
    t = st_find(&f, "copied \"quoted\" \xc3\xa9");
    CHECK(t && ((const float *)t->data)[0] == 11.0f,
          "a name with quotes and UTF-8; add_copy kept the value at add time");
    CHECK(st_find(&f, "missing") == NULL, "st_find of a missing name gives NULL");
    long k = 0;
    double T = 0;
    CHECK(st_meta_long(&f, "k", &k, &err) == NC_OK && k == 16 && st_meta_double(&f, "T", &T, &err) == NC_OK &&
              T == 0.5 && strcmp(st_meta(&f, "model"), "convnet") == 0 &&
              strcmp(st_meta(&f, "note"), "line1\nline2 \"q\" \\ \xc3\xa9") == 0 && st_meta(&f, "none") == NULL,
          "metadata: k = %ld, T = %g, model, an escaped note; absent key gives NULL", k, T);
    CHECK(st_meta_long(&f, "model", &k, &err) == NC_EFILE && strstr(err.msg, "model") && strstr(err.msg, path),
          "non-numeric metadata refused: %s", err.msg);
    CHECK(st_meta_double(&f, "absent", &T, &err) == NC_EFILE && strstr(err.msg, "absent"),
          "absent metadata refused: %s", err.msg);
    int64_t wrong[2] = {3, 2};
    CHECK(st_get(&f, "a.f32", ST_F32, 2, wrong, &t, &err) == NC_EFILE && strstr(err.msg, "[2, 3]") &&
              strstr(err.msg, "[3, 2]") && t == NULL,
          "st_get names the shapes: %s", err.msg);
    CHECK(st_get(&f, "a.f32", ST_F64, 2, sa, &t, &err) == NC_EFILE && strstr(err.msg, "F32") &&
              strstr(err.msg, "F64"),
          "st_get names the dtypes: %s", err.msg);
    CHECK(st_get(&f, "nope", ST_F32, 0, NULL, &t, &err) == NC_EFILE && strstr(err.msg, "nope"),
          "st_get names a missing tensor: %s", err.msg);
    st_free(&f);
    st_free(&f); /* harmless twice */

    /* writer argument errors are sticky, and a failed save leaves the old file alone */
    w = st_writer_new();
    st_writer_add(w, "x", ST_F32, 0, NULL, &scalar, &err);
    CHECK(st_writer_add(w, "x", ST_F32, 0, NULL, &scalar, &err) == NC_EUSAGE && strstr(err.msg, "\"x\""),
          "duplicate name refused: %s", err.msg);
    int64_t neg[1] = {-1};
    CHECK(st_writer_add(w, "n", ST_F32, 1, neg, &scalar, &err) == NC_EUSAGE, "negative dimension refused: %s",
          err.msg);
    CHECK(st_writer_add(w, "__metadata__", ST_F32, 0, NULL, &scalar, &err) == NC_EUSAGE,
          "__metadata__ as a tensor name refused: %s", err.msg);
    CHECK(st_writer_add(w, "m", ST_F32, 1, sh, NULL, &err) == NC_EUSAGE, "NULL data refused: %s", err.msg);
    CHECK(st_writer_save(w, path, &err) == NC_EUSAGE && strstr(err.msg, "added twice"),
          "save fails with the first error: %s", err.msg);
    st_writer_free(w);
    CHECK(st_load(path, &f, &err) == NC_OK && f.ntensors == 14, "the earlier file is intact");
    st_free(&f);

    /* a writer without tensors or metadata writes a valid empty file; an unwritable path is named */
    w = st_writer_new();
    char *p2 = tmp_path("empty.safetensors");
    CHECK(st_writer_save(w, p2, &err) == NC_OK && st_load(p2, &f, &err) == NC_OK && f.ntensors == 0 && f.nmeta == 0,
          "empty file round trip");
    st_free(&f);
    const char *bad = "/proc/ncelab-no/such/dir/x.safetensors";
    CHECK(st_writer_save(w, bad, &err) == NC_EFILE && strstr(err.msg, "no/such/dir"), "unwritable path: %s", err.msg);
    st_writer_free(w);
    free(p2);

    free(path);
}

/* ------------------------------------------------------------ numpy interop */

/* The Python side follows the layout by hand (no safetensors package): json + struct + numpy. */
static const char *py_script =
    "import json, struct, sys\n"
    "import numpy as np\n"
    "DT = {'F64': '<f8', 'F32': '<f4', 'F16': '<f2', 'BF16': '<u2', 'I64': '<i8', 'I32': '<i4',\n"
    "      'I16': '<i2', 'I8': 'i1', 'U8': 'u1', 'BOOL': '?'}\n"
    "def expected():\n"
    "    return {'w': ('F32', np.arange(12, dtype=np.float32).reshape(3, 4) * 0.5 - 1),\n"
    "            'pi': ('F64', np.array([np.pi, -1e-300, 2.0 ** 60])),\n"
    "            'idx': ('I32', np.array([[1, -2], [3, 2147483647]], dtype=np.int32)),\n"
    "            'big': ('I64', np.array([2 ** 40, -1], dtype=np.int64)),\n"
    "            'bytes': ('U8', np.array([0, 255, 7], dtype=np.uint8)),\n"
    "            'half': ('F16', np.array([1.5, -2.0], dtype=np.float16)),\n"
    "            'mask': ('BOOL', np.array([True, False, True])),\n"
    "            'scalar': ('F32', np.array(3.25, dtype=np.float32)),\n"
    "            'empty': ('F32', np.zeros((0, 5), dtype=np.float32))}\n"
    "META = {'model': 'convnet', 'k': '16'}\n"
    "def save(path):\n"
    "    hdr, blobs, off = {'__metadata__': META}, [], 0\n"
    "    for name, (dt, a) in expected().items():\n"
    "        b = np.ascontiguousarray(a, dtype=DT[dt]).tobytes()\n"
    "        hdr[name] = {'dtype': dt, 'shape': list(a.shape), 'data_offsets': [off, off + len(b)]}\n"
    "        off += len(b)\n"
    "        blobs.append(b)\n"
    "    h = json.dumps(hdr).encode()\n"
    "    h += b' ' * (-len(h) % 8)\n"
    "    open(path, 'wb').write(struct.pack('<Q', len(h)) + h + b''.join(blobs))\n"
    "def load(path):\n"
    "    raw = open(path, 'rb').read()\n"
    "    n, = struct.unpack('<Q', raw[:8])\n"
    "    assert n % 8 == 0, 'header length %d is not a multiple of 8' % n\n"
    "    hdr = json.loads(raw[8:8 + n])\n"
    "    meta = hdr.pop('__metadata__', {})\n"
    "    data, out, off = raw[8 + n:], {}, 0\n"
    "    for name, e in hdr.items():\n"
    "        b, end = e['data_offsets']\n"
    "        assert b == off, 'tensor %s starts at %d, not %d (insertion order, no holes)' % (name, b, off)\n"
    "        off = end\n"
    "        out[name] = np.frombuffer(data[b:end], dtype=DT[e['dtype']]).reshape(e['shape'])\n"
    "    assert off == len(data), 'data buffer has %d bytes, tensors cover %d' % (len(data), off)\n"
    "    return out, meta\n"
    "if sys.argv[1] == 'write':\n"
    "    save(sys.argv[2])\n"
    "else:\n"
    "    got, meta = load(sys.argv[2])\n"
    "    assert meta == META, meta\n"
    "    want = expected()\n"
    "    assert list(got) == list(want), list(got)\n"
    "    for name, (dt, a) in want.items():\n"
    "        g = got[name]\n"
    "        if dt == 'BF16': g = g.view(np.uint16)\n"
    "        assert g.shape == a.shape and g.dtype == np.dtype(DT[dt]), (name, g.shape, g.dtype)\n"
    "        assert np.array_equal(g, a), (name, g, a)\n"
    "    print('numpy read %d tensors from the C-written file' % len(got))\n";

static int have_numpy(void) {
    if (access("/usr/bin/python3", X_OK) != 0) return 0;
    return system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}

static void test_numpy_interop(void) {
    if (!have_numpy()) {
        printf("NOTE  /usr/bin/python3 with numpy not found: skipping the numpy interoperability checks\n");
        return;
    }
    NcError err = {0};
    char *script = tmp_path("st.py"), *pyfile = tmp_path("from_numpy.safetensors"),
         *cfile = tmp_path("from_c.safetensors");
    nc_write_atomic(script, py_script, strlen(py_script), &err);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s write %s", script, pyfile);
    CHECK(system(cmd) == 0, "numpy wrote a safetensors file by hand");
    StFile f;
    int rc = st_load(pyfile, &f, &err);
    CHECK(rc == NC_OK && f.ntensors == 9, "C reads the numpy-written file: %s", rc ? err.msg : "9 tensors");
    if (rc == NC_OK) {
        const StTensor *t;
        int64_t s34[2] = {3, 4}, s22[2] = {2, 2}, s05[2] = {0, 5};
        int ok = st_get(&f, "w", ST_F32, 2, s34, &t, &err) == NC_OK;
        for (int i = 0; ok && i < 12; i++) ok = ((const float *)t->data)[i] == (float)i * 0.5f - 1.0f;
        CHECK(ok, "w (F32 3x4) = arange(12) * 0.5 - 1");
        ok = st_get(&f, "pi", ST_F64, 1, (int64_t[]){3}, &t, &err) == NC_OK &&
             ((const double *)t->data)[0] == 3.141592653589793 && ((const double *)t->data)[1] == -1e-300 &&
             ((const double *)t->data)[2] == 1152921504606846976.0;
        CHECK(ok, "pi (F64) exact");
        ok = st_get(&f, "idx", ST_I32, 2, s22, &t, &err) == NC_OK && ((const int32_t *)t->data)[1] == -2 &&
             ((const int32_t *)t->data)[3] == 2147483647;
        CHECK(ok, "idx (I32 2x2)");
        ok = st_get(&f, "big", ST_I64, 1, (int64_t[]){2}, &t, &err) == NC_OK &&
             ((const int64_t *)t->data)[0] == (int64_t)1 << 40 && ((const int64_t *)t->data)[1] == -1;
        CHECK(ok, "big (I64)");
        ok = st_get(&f, "half", ST_F16, 1, (int64_t[]){2}, &t, &err) == NC_OK &&
             ((const uint16_t *)t->data)[0] == 0x3e00 && ((const uint16_t *)t->data)[1] == 0xc000;
        CHECK(ok, "half (F16 bits of 1.5, -2)");
        ok = st_get(&f, "mask", ST_BOOL, 1, (int64_t[]){3}, &t, &err) == NC_OK &&
             !memcmp(t->data, (uint8_t[]){1, 0, 1}, 3);
        CHECK(ok, "mask (BOOL)");
        ok = st_get(&f, "scalar", ST_F32, 0, (int64_t[]){0}, &t, &err) == NC_OK && *(const float *)t->data == 3.25f;
        CHECK(ok, "scalar (0-d F32)");
        ok = st_get(&f, "empty", ST_F32, 2, s05, &t, &err) == NC_OK && t->nbytes == 0;
        CHECK(ok, "empty (F32 0x5)");
        CHECK(st_meta(&f, "model") && !strcmp(st_meta(&f, "model"), "convnet") && st_meta(&f, "k") &&
                  !strcmp(st_meta(&f, "k"), "16"),
              "metadata from numpy");
        /* write the same content from C; numpy checks it (names in order, no holes, exact values) */
        StWriter *w = st_writer_new();
        st_writer_meta(w, "model", "convnet", &err);
        st_writer_meta(w, "k", "16", &err);
        for (int i = 0; i < f.ntensors; i++) {
            const StTensor *x = &f.tensors[i];
            st_writer_add(w, x->name, x->dtype, x->ndim, x->shape, x->data, &err);
        }
        CHECK(st_writer_save(w, cfile, &err) == NC_OK, "C wrote the file back");
        st_writer_free(w);
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s read %s", script, cfile);
        CHECK(system(cmd) == 0, "numpy reads the C-written file following the layout, values exact");
    }
    st_free(&f);
    free(script);
    free(pyfile);
    free(cfile);
}

/* ------------------------------------------------------------ corrupt inputs */

/* write_raw: 8-byte length (hlen_override if >= 0, else strlen(json)), json, then ndata bytes. */
static void write_raw(const char *path, const char *json, long long hlen_override, size_t ndata) {
    size_t hl = strlen(json);
    size_t n = 8 + hl + ndata;
    unsigned char *b = nc_calloc(n, 1);
    uint64_t v = hlen_override >= 0 ? (uint64_t)hlen_override : hl;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    memcpy(b + 8, json, hl);
    for (size_t i = 0; i < ndata; i++) b[8 + hl + i] = (unsigned char)i;
    NcError err;
    nc_write_atomic(path, b, n, &err);
    free(b);
}

static void expect_bad(const char *what, const char *path, const char *needle) {
    StFile f;
    NcError err = {0};
    int rc = st_load(path, &f, &err);
    int empty = f.buf == NULL && f.tensors == NULL && f.ntensors == 0 && f.nmeta == 0 && f.path == NULL;
    CHECK(rc == NC_EFILE && strstr(err.msg, path) && strstr(err.msg, needle) && empty, "%s: %s", what, err.msg);
    st_free(&f);
    /* the same bytes from memory: the same refusal, naming the buffer (regular files only: a
       device such as /dev/zero would be read forever) */
    char *buf;
    size_t len;
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || nc_read_file(path, &buf, &len, &err) != NC_OK) return;
    rc = st_load_mem(buf, len, "buffer.st", &f, &err);
    empty = f.buf == NULL && f.tensors == NULL && f.ntensors == 0 && f.path == NULL;
    CHECK(rc == NC_EFILE && strstr(err.msg, "buffer.st") && strstr(err.msg, needle) && empty, "%s from memory: %s",
          what, err.msg);
    free(buf);
}

static void test_corrupt(void) {
    char *p = tmp_path("bad.safetensors");
    const char *ok_hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";

    /* a good file, then the same file truncated */
    write_raw(p, ok_hdr, -1, 16);
    StFile f;
    NcError err = {0};
    CHECK(st_load(p, &f, &err) == NC_OK && f.ntensors == 1, "the uncorrupted file loads");
    st_free(&f);
    write_raw(p, ok_hdr, -1, 10);
    expect_bad("truncated data", p, "past the end");
    nc_write_atomic(p, "\x10\0\0\0", 4, &err);
    expect_bad("file shorter than 8 bytes", p, "shorter than the 8-byte");
    nc_write_atomic(p, "", 0, &err);
    expect_bad("empty file", p, "0 bytes");
    write_raw(p, ok_hdr, 100000, 16);
    expect_bad("header length larger than the file", p, "header length 100000");
    write_raw(p, ok_hdr, (long long)1 << 62, 16);
    expect_bad("header length 2^62", p, "larger than");
    /* a header length inside the file but at the 100 MB limit (a sparse file; test_cli_limits
       checks under a memory limit that such a file is refused before it is read) */
    {
        FILE *sp = fopen(p, "wb");
        unsigned char h8[8];
        uint64_t big = ST_MAX_HEADER;
        for (int i = 0; i < 8; i++) h8[i] = (unsigned char)(big >> (8 * i));
        int ok = sp && fwrite(h8, 1, 8, sp) == 8 && fseek(sp, (long)ST_MAX_HEADER + 8, SEEK_SET) == 0 &&
                 fputc('}', sp) != EOF;
        if (sp) fclose(sp);
        CHECK(ok, "sparse file of 100 MB written");
        expect_bad("header length at the 100 MB limit", p, "at or above the 100000000-byte limit");
    }
    expect_bad("a device", "/dev/zero", "not a regular file");
    expect_bad("a directory", "/tmp", "is a directory");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",", -1, 16);
    expect_bad("malformed JSON", p, "malformed JSON");
    write_raw(p, "{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", -1, 4);
    expect_bad("header not UTF-8", p, "UTF-8");
    write_raw(p, "{\"\xed\xa0\x80\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", -1, 4);
    expect_bad("UTF-8 surrogate in a name", p, "UTF-8");
    write_raw(p, "[1, 2]", -1, 0);
    expect_bad("header is an array", p, "JSON object");
    write_raw(p, "{}  x", -1, 0);
    expect_bad("trailing garbage after the JSON", p, "trailing");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,24]}}", -1, 16);
    expect_bad("offsets past the end", p, "\"a\"");
    write_raw(p,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
              -1, 24);
    expect_bad("overlapping tensors", p, "overlap");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]}}", -1, 16);
    expect_bad("shape/size mismatch", p, "needs 24 bytes but data_offsets span 16");
    write_raw(p, "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", -1, 4);
    expect_bad("unknown dtype", p, "unknown dtype \"F8_E4M3\"");
    write_raw(p,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
              "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
              -1, 8);
    expect_bad("duplicate names", p, "appears twice");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", -1, 4);
    expect_bad("negative dimension", p, "shape[0]");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", -1, 4);
    expect_bad("fractional dimension", p, "shape[0]");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", -1, 4);
    expect_bad("decreasing offsets", p, "decrease");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", -1, 4);
    expect_bad("one offset", p, "pair");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", -1, 4);
    expect_bad("missing shape", p, "shape");
    write_raw(p, "{\"a\":[1,2]}", -1, 0);
    expect_bad("entry not an object", p, "not an object");
    write_raw(p,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}",
              -1, 4);
    expect_bad("shape whose product overflows", p, "too large");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", -1, 4);
    expect_bad("too many dimensions", p, "9 dimensions");
    write_raw(p, "{\"__metadata__\":{\"k\":16}}", -1, 0);
    expect_bad("non-string metadata value", p, "not a string");
    write_raw(p, "{\"__metadata__\":[1]}", -1, 0);
    expect_bad("metadata not an object", p, "__metadata__");
    expect_bad("missing file", "/nonexistent/dir/x.safetensors", "cannot open");
    /* an empty tensor may sit anywhere, even at the end, without overlapping anything */
    write_raw(p,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"z\":{\"dtype\":\"I64\",\"shape\":[0,7],\"data_offsets\":[4,4]},"
              "\"s\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[8,9]}}",
              -1, 9);
    int rc = st_load(p, &f, &err);
    const StTensor *s8 = rc == NC_OK ? st_find(&f, "s") : NULL;
    CHECK(rc == NC_OK && f.ntensors == 3 && s8 && s8->numel == 1 && *(const uint8_t *)s8->data == 8,
          "empty tensors overlap nothing; a U8 scalar at an odd offset: %s", rc ? err.msg : "ok");
    st_free(&f);
    free(p);
}

/* ------------------------------------------------------------ committed fixtures */

/* The fixture initialisation of docs/nn_spec.md, written independently of the engine. */
static uint32_t fx_hash(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}
static double fx_u(uint32_t t, uint64_t i) {
    return fx_hash((uint32_t)(i * 2654435761u + t * 40503u + 12345u)) / 4294967296.0;
}

/* check_init: tensor name of parameter index t has the fixture-init values, bit for bit. */
static int check_init(const StFile *f, const char *name, uint32_t t, int kind, double fan_in) {
    const StTensor *x = st_find(f, name);
    if (!x || x->dtype != ST_F32) return 0;
    const float *v = x->data;
    double b = 1.0 / sqrt(fan_in);
    for (size_t i = 0; i < x->numel; i++) {
        double u = fx_u(t, i), want;
        if (kind == 0) want = b * (2 * u - 1);          /* conv/linear weight or linear bias */
        else if (kind == 1) want = 1 + 0.1 * (2 * u - 1); /* batch-norm weight */
        else if (kind == 2) want = 0.1 * (2 * u - 1);     /* batch-norm bias */
        else want = 2 * u - 1;                            /* input image */
        if (v[i] != (float)want) {
            printf("      %s[%zu] = %.9g, the spec's rule gives %.9g\n", name, i, v[i], (float)want);
            return 0;
        }
    }
    return 1;
}

/* recompute the InfoNCE and NCE losses (double) from stored embeddings and negatives */
static void check_losses(const StFile *f, const char *file, int B, int k, double T, int has_nce) {
    const StTensor *z = st_find(f, "embeddings"), *neg = st_find(f, "negatives"), *loss = st_find(f, "loss"),
                   *nce = st_find(f, "nce_loss");
    if (!z || !neg || !loss || z->dtype != ST_F32 || neg->dtype != ST_I32 || loss->dtype != ST_F32 ||
        neg->numel != (size_t)B * k || k > 64 || z->ndim != 2 || z->shape[0] != 2 * B) {
        CHECK(0, "%s: embeddings, negatives and loss present with the right shapes", file);
        return;
    }
    const float *zz = z->data;
    const int32_t *n = neg->data;
    int D = (int)z->shape[1], rule = 1;
    double L = 0, Lnce = 0, logk = log((double)k);
    for (int i = 0; i < B; i++) {
        /* the spec's rule: first k of (i+1, ..., i+2B-1) mod 2B that are neither i nor B+i */
        int j = 0;
        for (int s = 1; s < 2 * B && j < k; s++) {
            int r = (i + s) % (2 * B);
            if (r == i || r == B + i) continue;
            rule &= n[i * k + j] == r;
            j++;
        }
        double sp = 0, sj[64];
        for (int d = 0; d < D; d++) sp += (double)zz[i * D + d] * zz[(B + i) * D + d];
        sp /= T;
        double m = sp;
        for (int q = 0; q < k && q < 64; q++) {
            sj[q] = 0;
            for (int d = 0; d < D; d++) sj[q] += (double)zz[i * D + d] * zz[n[i * k + q] * D + d];
            sj[q] /= T;
            if (sj[q] > m) m = sj[q];
        }
        double s = exp(sp - m);
        for (int q = 0; q < k; q++) s += exp(sj[q] - m);
        L += m + log(s) - sp;
        Lnce += log1p(exp(logk - sp));
        for (int q = 0; q < k; q++) Lnce += log1p(exp(sj[q] - logk));
    }
    L /= B;
    Lnce /= B;
    double got = ((const float *)loss->data)[0];
    CHECK(rule, "%s: negatives follow the spec's rule", file);
    CHECK(rel_err(got, L, 1e-6) < 1e-5, "%s: stored InfoNCE %.7f, recomputed in double %.7f", file, got, L);
    if (has_nce) {
        double gn = nce ? ((const float *)nce->data)[0] : NAN;
        CHECK(nce && rel_err(gn, Lnce, 1e-6) < 1e-5, "%s: stored NCE %.7f, recomputed in double %.7f", file, gn,
              Lnce);
    }
}

static void test_fixtures(void) {
    const char *src = getenv("NCELAB_SRCDIR");
    if (!src) {
        printf("NOTE  NCELAB_SRCDIR not set: skipping the committed fixtures\n");
        return;
    }
    const char *files[] = {"convnet_c3.safetensors", "convnet_c1.safetensors", "resnet18.safetensors"};
    for (int fi = 0; fi < 3; fi++) {
        char rel[128];
        snprintf(rel, sizeof rel, "tests/fixtures/%s", files[fi]);
        char *path = nc_path_join(src, rel);
        StFile f;
        NcError err = {0};
        int rc = st_load(path, &f, &err);
        CHECK(rc == NC_OK, "%s loads: %s", files[fi], rc ? err.msg : "ok");
        if (rc) {
            free(path);
            continue;
        }
        long B = 0, k = 0;
        double T = 0;
        CHECK(st_meta_long(&f, "B", &B, &err) == NC_OK && st_meta_long(&f, "k", &k, &err) == NC_OK &&
                  st_meta_double(&f, "T", &T, &err) == NC_OK && st_meta(&f, "torch_version"),
              "%s: metadata B = %ld, k = %ld, T = %g, torch %s", files[fi], B, k, T,
              st_meta(&f, "torch_version") ? st_meta(&f, "torch_version") : "?");
        int C = fi == 1 ? 1 : 3;
        CHECK(check_init(&f, "input", 1000, 3, 1), "%s: input = the spec's fixture images (t = 1000)", files[fi]);
        if (fi == 0) {
            /* every convnet parameter: index t in the spec's order, its init rule, bit for bit */
            struct { const char *name; int kind; double fan_in; } ps[] = {
                {"conv1.weight", 0, C * 9}, {"bn1.weight", 1, 0},      {"bn1.bias", 2, 0},
                {"conv2.weight", 0, 32 * 9}, {"bn2.weight", 1, 0},     {"bn2.bias", 2, 0},
                {"conv3.weight", 0, 64 * 9}, {"bn3.weight", 1, 0},     {"bn3.bias", 2, 0},
                {"head.0.weight", 0, 128},  {"head.0.bias", 0, 128},  {"head.2.weight", 0, 128},
                {"head.2.bias", 0, 128},
            };
            int ok = 1;
            for (int t = 0; t < 13; t++) {
                ok &= check_init(&f, ps[t].name, (uint32_t)t, ps[t].kind, ps[t].fan_in);
                char g[64];
                snprintf(g, sizeof g, "grad.%s", ps[t].name);
                ok &= st_find(&f, g) != NULL;
            }
            CHECK(ok, "%s: the 13 parameters equal the spec's fixture initialisation bit for bit; all grads present",
                  files[fi]);
            const char *more[] = {"features", "d_embeddings", "eval_embeddings", "bn1.running_mean",
                                  "bn3.running_var", "losses.sgd", "losses.sgd_nesterov", "losses.adamw",
                                  "losses.lars", "weights_after.sgd.conv1.weight",
                                  "weights_after.lars.head.2.weight"};
            ok = 1;
            for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) ok &= st_find(&f, more[i]) != NULL;
            const StTensor *l5 = st_find(&f, "losses.sgd");
            const StTensor *l0 = st_find(&f, "loss");
            ok = ok && l5 && l5->numel == 5 && l0 &&
                 ((const float *)l5->data)[0] == ((const float *)l0->data)[0];
            CHECK(ok, "%s: optimiser trajectories, running statistics and eval embeddings present; "
                      "losses.sgd[0] == loss", files[fi]);
        }
        check_losses(&f, files[fi], (int)B, (int)k, T, fi == 0);
        st_free(&f);
        free(path);
    }
}

/* A name or metadata value that is not UTF-8 is written with U+FFFD for the byte: the file reads
   back (the reader refuses a header that is not UTF-8). */
static void test_not_utf8(void) {
    char path[300];
    snprintf(path, sizeof path, "%s/u8.safetensors", tmpdir);
    float v = 1;
    int64_t one[1] = {1};
    NcError err = {0};
    StWriter *w = st_writer_new();
    int rc = st_writer_add(w, "w\xff", ST_F32, 1, one, &v, &err);
    rc |= st_writer_meta(w, "data", "folder:/tmp/pp\xff", &err);
    rc |= st_writer_save(w, path, &err);
    st_writer_free(w);
    StFile f;
    int lrc = rc ? rc : st_load(path, &f, &err);
    CHECK(lrc == NC_OK && st_find(&f, "w\xef\xbf\xbd") && strcmp(st_meta(&f, "data"), "folder:/tmp/pp\xef\xbf\xbd") == 0,
          "names and metadata that are not UTF-8 are written as U+FFFD and read back: %s", lrc ? err.msg : "ok");
    if (lrc == NC_OK) st_free(&f);
}

int main(void) {
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_numpy_interop();
    test_corrupt();
    test_fixtures();
    test_not_utf8();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    CHECK(system(cmd) == 0, "cleanup");
    return check_done();
}
