// read_pickle.c -- a strict reader of the pickles CIFAR's python release uses: a stack machine that executes nothing.
//
// The pickle virtual machine is run over the bytes with its stack, its marks and its memo, for
// the opcodes that Python 2's cPickle (protocol 2) and Python 3 (protocols 2 to 5) write for
// dicts, lists, tuples, ints, byte strings, strings and numpy uint8 arrays. A global is a name
// looked up in a table of five callables; REDUCE and BUILD on them build data from checked
// arguments (see pickle.h). Every length is checked against the bytes that remain before
// anything is allocated, and the values pushed and memoised are counted (PICKLE_MAX_VALUES), so
// memory stays a small multiple of the values a file holds, never what it claims.
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ncelab/utf8.h"
#include "pickle.h"

/* The recognised callables (PK_GLOBAL's i). */
enum { G_RECONSTRUCT, G_NDARRAY, G_DTYPE, G_FROMBUFFER, G_ENCODE };

static const struct {
    const char *module, *name;
    int id;
} globals[] = {
    {"numpy.core.multiarray", "_reconstruct", G_RECONSTRUCT},  /* numpy 1.x */
    {"numpy._core.multiarray", "_reconstruct", G_RECONSTRUCT}, /* numpy 2.x */
    {"numpy", "ndarray", G_NDARRAY},
    {"numpy", "dtype", G_DTYPE},
    {"numpy.core.numeric", "_frombuffer", G_FROMBUFFER},       /* protocol 5 */
    {"numpy._core.numeric", "_frombuffer", G_FROMBUFFER},
    {"_codecs", "encode", G_ENCODE},                           /* bytes at protocol 2 from Python 3 */
};

/* flags */
#define F_OWNED 1     /* BYTES whose s.p is malloc'd (made by _codecs.encode) */
#define F_DONE 2      /* DTYPE or ARRAY whose state is set */

/* Opcodes: the ones read, then the ones refused by name. */
enum {
    OP_MARK = '(', OP_STOP = '.', OP_BININT = 'J', OP_BININT1 = 'K', OP_BININT2 = 'M', OP_NONE = 'N',
    OP_REDUCE = 'R', OP_BINSTRING = 'T', OP_SHORT_BINSTRING = 'U', OP_BINUNICODE = 'X', OP_APPEND = 'a',
    OP_BUILD = 'b', OP_GLOBAL = 'c', OP_APPENDS = 'e', OP_BINGET = 'h', OP_LONG_BINGET = 'j',
    OP_BINPUT = 'q', OP_LONG_BINPUT = 'r', OP_SETITEM = 's', OP_TUPLE = 't', OP_SETITEMS = 'u',
    OP_EMPTY_DICT = '}', OP_EMPTY_LIST = ']', OP_EMPTY_TUPLE = ')',
    OP_PROTO = 0x80, OP_TUPLE1 = 0x85, OP_TUPLE2 = 0x86, OP_TUPLE3 = 0x87, OP_NEWTRUE = 0x88,
    OP_NEWFALSE = 0x89, OP_LONG1 = 0x8a, OP_BINBYTES = 'B', OP_SHORT_BINBYTES = 'C',
    OP_SHORT_BINUNICODE = 0x8c, OP_BINUNICODE8 = 0x8d, OP_BINBYTES8 = 0x8e, OP_STACK_GLOBAL = 0x93,
    OP_MEMOIZE = 0x94, OP_FRAME = 0x95, OP_BYTEARRAY8 = 0x96,
};

static const char *op_name(int op) {
    switch (op) {
    case '(': return "MARK";
    case '.': return "STOP";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 'F': return "FLOAT";
    case 'I': return "INT";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'L': return "LONG";
    case 'M': return "BININT2";
    case 'N': return "NONE";
    case 'P': return "PERSID";
    case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'X': return "BINUNICODE";
    case 'a': return "APPEND";
    case 'b': return "BUILD";
    case 'c': return "GLOBAL";
    case 'd': return "DICT";
    case '}': return "EMPTY_DICT";
    case 'e': return "APPENDS";
    case 'g': return "GET";
    case 'h': return "BINGET";
    case 'i': return "INST";
    case 'j': return "LONG_BINGET";
    case 'l': return "LIST";
    case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";
    case 'p': return "PUT";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";
    case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    }
    return NULL;
}

/* The protocol an opcode first appeared in (those that are read). */
static int op_min_proto(int op) {
    switch (op) {
    case OP_BINBYTES: case OP_SHORT_BINBYTES: return 3;
    case OP_SHORT_BINUNICODE: case OP_BINUNICODE8: case OP_BINBYTES8: case OP_STACK_GLOBAL:
    case OP_MEMOIZE: case OP_FRAME: return 4;
    case OP_BYTEARRAY8: return 5;
    }
    return 2;
}

const char *pickle_kind_name(PickleKind kind) {
    switch (kind) {
    case PK_NONE: return "None";
    case PK_BOOL: return "bool";
    case PK_INT: return "int";
    case PK_BYTES: return "byte string";
    case PK_STR: return "str";
    case PK_TUPLE: return "tuple";
    case PK_LIST: return "list";
    case PK_DICT: return "dict";
    case PK_ARRAY: return "numpy array";
    case PK_DTYPE: return "numpy dtype";
    case PK_GLOBAL: return "global";
    }
    return "?";
}

/* ---- the memo: index -> object, open addressing (indices are any 32-bit number) ---- */

typedef struct {
    uint64_t *keys;       /* index + 1; 0 marks an empty slot */
    PickleObj **vals;
    size_t n, cap;        /* cap: a power of two, or 0 */
} Memo;

static size_t memo_slot(const Memo *m, uint64_t key) {
    size_t mask = m->cap - 1, h = (size_t)(key * 0x9E3779B97F4A7C15ull) & mask;
    while (m->keys[h] && m->keys[h] != key) h = (h + 1) & mask;
    return h;
}

static void memo_put(Memo *m, uint32_t idx, PickleObj *o) {
    if (2 * (m->n + 1) > m->cap) {
        Memo g = {nc_calloc(m->cap ? 2 * m->cap : 64, sizeof(uint64_t)), NULL, m->n, m->cap ? 2 * m->cap : 64};
        g.vals = nc_calloc(g.cap, sizeof(PickleObj *));
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) {
                size_t h = memo_slot(&g, m->keys[i]);
                g.keys[h] = m->keys[i];
                g.vals[h] = m->vals[i];
            }
        free(m->keys);
        free(m->vals);
        *m = g;
    }
    uint64_t key = (uint64_t)idx + 1;
    size_t h = memo_slot(m, key);
    if (!m->keys[h]) m->n++;
    m->keys[h] = key;
    m->vals[h] = o;
}

static PickleObj *memo_get(const Memo *m, uint32_t idx) {
    if (!m->cap) return NULL;
    size_t h = memo_slot(m, (uint64_t)idx + 1);
    return m->keys[h] ? m->vals[h] : NULL;
}

/* ---- the machine ---- */

typedef struct {
    const uint8_t *b;
    size_t len, pos, at;  /* at: the offset of the opcode being run */
    const char *path;
    NcError *err;
    int proto, op;
    Pickle *pk;
    PickleObj **stack;
    size_t sp, scap;
    size_t *marks;        /* stack depths at each open MARK */
    size_t nmarks, mcap;
    Memo memo;
    long pushes;
} Vm;

static int fail(Vm *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(Vm *m, const char *fmt, ...) {
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nc_fail(m->err, NC_EFILE, "%s: byte %zu: %s", m->path, m->at, msg);
}

/* need: n more bytes of the current opcode's argument are in the file. */
static int need(Vm *m, uint64_t n) {
    if (n > m->len - m->pos) {
        const char *name = op_name(m->op);
        return fail(m, "truncated: %s needs %llu more bytes, the file ends %zu byte%s later", name ? name : "opcode",
                    (unsigned long long)n, m->len - m->pos, m->len - m->pos == 1 ? "" : "s");
    }
    return NC_OK;
}

static uint64_t read_le(Vm *m, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)m->b[m->pos + i] << (8 * i);
    m->pos += (size_t)n;
    return v;
}

static PickleObj *new_obj(Vm *m, PickleKind kind) {
    PickleObj *o = nc_calloc(1, sizeof *o);
    o->kind = kind;
    o->at = m->at;
    Pickle *pk = m->pk;
    if (pk->nall == pk->cap) {
        pk->cap = pk->cap ? 2 * pk->cap : 256;
        pk->all = nc_realloc(pk->all, sizeof(PickleObj *) * pk->cap);
    }
    pk->all[pk->nall++] = o;
    return o;
}

static int push(Vm *m, PickleObj *o) {
    if (++m->pushes > PICKLE_MAX_VALUES)
        return fail(m, "more than %ld values (a CIFAR batch has about 10^5): refused", PICKLE_MAX_VALUES);
    if (m->sp == m->scap) {
        m->scap = m->scap ? 2 * m->scap : 256;
        m->stack = nc_realloc(m->stack, sizeof(PickleObj *) * m->scap);
    }
    m->stack[m->sp++] = o;
    return NC_OK;
}

/* avail: the values above the innermost open MARK, the only ones an opcode may take. */
static size_t avail(const Vm *m) { return m->sp - (m->nmarks ? m->marks[m->nmarks - 1] : 0); }

static int underflow(Vm *m, size_t want) {
    const char *name = op_name(m->op);
    return fail(m, "%s needs %zu value%s on the stack%s, %zu there", name, want, want == 1 ? "" : "s",
                m->nmarks ? " above its MARK" : "", avail(m));
}

static void seq_add(PickleObj *o, PickleObj *v) {
    if (o->seq.n == o->seq.cap) {
        o->seq.cap = o->seq.cap ? 2 * o->seq.cap : 8;
        o->seq.v = nc_realloc(o->seq.v, sizeof(PickleObj *) * o->seq.cap);
    }
    o->seq.v[o->seq.n++] = v;
}

/* make_tuple: a tuple of the top n values (popped). */
static int make_tuple(Vm *m, size_t n) {
    if (avail(m) < n) return underflow(m, n);
    PickleObj *t = new_obj(m, PK_TUPLE);
    for (size_t i = m->sp - n; i < m->sp; i++) seq_add(t, m->stack[i]);
    m->sp -= n;
    return push(m, t);
}

/* pop_mark: the base of the innermost MARK's values, which are stack[base..sp). */
static int pop_mark(Vm *m, size_t *base) {
    if (!m->nmarks) return fail(m, "%s without a MARK", op_name(m->op));
    *base = m->marks[--m->nmarks];
    return NC_OK;
}

/* below_mark: the container just below stack[base] (the innermost MARK's values), which must be
   above the next MARK out. */
static int below_mark(Vm *m, size_t base, PickleKind kind, PickleObj **out) {
    size_t floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
    if (base <= floor) return fail(m, "%s has no %s below its MARK", op_name(m->op), pickle_kind_name(kind));
    PickleObj *o = m->stack[base - 1];
    if (o->kind != kind)
        return fail(m, "%s on a %s (made at byte %zu): a %s expected", op_name(m->op), pickle_kind_name(o->kind), o->at,
                    pickle_kind_name(kind));
    *out = o;
    return NC_OK;
}

static int is_text(const PickleObj *o, const char *s) {
    size_t n = strlen(s);
    return (o->kind == PK_BYTES || o->kind == PK_STR) && o->s.len == n && memcmp(o->s.p, s, n) == 0;
}

static int dict_set(Vm *m, PickleObj *d, PickleObj *k, PickleObj *v) {
    if (k->kind != PK_BYTES && k->kind != PK_STR)
        return fail(m, "a dict key is a %s (made at byte %zu): only string keys are read", pickle_kind_name(k->kind), k->at);
    seq_add(d, k);
    seq_add(d, v);
    return NC_OK;
}

/* quote: a name from the file, printable ASCII only, for a message. */
static void quote(char *out, size_t cap, const uint8_t *s, size_t n) {
    size_t i = 0, j = 0;
    for (; i < n && j + 4 < cap; i++) out[j++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
    if (i < n) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
}

static int find_global(Vm *m, const uint8_t *mod, size_t mlen, const uint8_t *name, size_t nlen) {
    for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++)
        if (strlen(globals[i].module) == mlen && memcmp(globals[i].module, mod, mlen) == 0 &&
            strlen(globals[i].name) == nlen && memcmp(globals[i].name, name, nlen) == 0) {
            PickleObj *g = new_obj(m, PK_GLOBAL);
            g->i = globals[i].id;
            return push(m, g);
        }
    char a[80], b[80];
    quote(a, sizeof a, mod, mlen);
    quote(b, sizeof b, name, nlen);
    return fail(m, "global '%s.%s' refused: nothing is executed, and the only globals read are numpy's "
                   "_reconstruct, ndarray, dtype, _frombuffer and _codecs.encode", a, b);
}

/* A GLOBAL argument: "module\nname\n", each at most 256 bytes of printable ASCII. */
static int read_line(Vm *m, const uint8_t **s, size_t *n) {
    size_t i = m->pos;
    while (i < m->len && m->b[i] != '\n' && i - m->pos < 256) i++;
    if (i >= m->len) return fail(m, "truncated: GLOBAL's name has no end of line");
    if (m->b[i] != '\n') return fail(m, "GLOBAL's name is longer than 256 bytes");
    *s = m->b + m->pos;
    *n = i - m->pos;
    m->pos = i + 1;
    return NC_OK;
}

static int int_value(const PickleObj *o, int64_t *v) {
    if (o->kind != PK_INT && o->kind != PK_BOOL) return 0;
    *v = o->i;
    return 1;
}

/* shape_of: the dims of a tuple of ints >= 0 whose product is len (uint8 elements). */
static int shape_of(Vm *m, const PickleObj *t, size_t len, PickleArray *a) {
    if (t->kind != PK_TUPLE) return fail(m, "an array's shape is a %s, a tuple expected", pickle_kind_name(t->kind));
    if (t->seq.n > PICKLE_MAX_DIM) return fail(m, "an array of %zu dimensions (at most %d are read)", t->seq.n, PICKLE_MAX_DIM);
    a->ndim = (int)t->seq.n;
    uint64_t prod = 1;
    int over = 0;
    for (size_t i = 0; i < t->seq.n; i++) {
        const PickleObj *d = t->seq.v[i];
        if (d->kind != PK_INT || d->i < 0) return fail(m, "an array's shape holds a %s that is not a size", pickle_kind_name(d->kind));
        a->shape[i] = d->i;
        if (d->i && prod > UINT64_MAX / (uint64_t)d->i) over = 1;
        else prod *= (uint64_t)d->i;
    }
    for (size_t i = 0; i < t->seq.n; i++)
        if (a->shape[i] == 0) over = 0, prod = 0;
    if (over || prod != len) {
        char dims[200];
        size_t j = 0;
        for (int i = 0; i < a->ndim && j < sizeof dims - 24; i++)
            j += (size_t)snprintf(dims + j, sizeof dims - j, "%s%lld", i ? ", " : "", (long long)a->shape[i]);
        dims[j] = '\0';
        return fail(m, "an array of shape (%s) with %zu bytes of uint8 data: the sizes disagree", dims, len);
    }
    return NC_OK;
}

/* The dtype's reduce arguments: ('u1', False, True) (Python 3) or ('u1', 0, 1) (Python 2). */
static int reduce_dtype(Vm *m, const PickleObj *args) {
    int64_t align, copy;
    if (args->seq.n != 3 || (args->seq.v[0]->kind != PK_STR && args->seq.v[0]->kind != PK_BYTES) ||
        !int_value(args->seq.v[1], &align) || !int_value(args->seq.v[2], &copy) || align != 0 || copy != 1)
        return fail(m, "numpy.dtype with arguments other than (type, False, True)");
    if (!is_text(args->seq.v[0], "u1")) {
        char t[40];
        quote(t, sizeof t, args->seq.v[0]->s.p, args->seq.v[0]->s.len);
        return fail(m, "numpy.dtype('%s'): only uint8 ('u1') arrays are read", t);
    }
    return push(m, new_obj(m, PK_DTYPE));
}

static int reduce_encode(Vm *m, const PickleObj *args) {
    if (args->seq.n != 2 || args->seq.v[0]->kind != PK_STR || !is_text(args->seq.v[1], "latin1") ||
        args->seq.v[1]->kind != PK_STR)
        return fail(m, "_codecs.encode with arguments other than (str, 'latin1')");
    /* well-formed UTF-8 (checked when the str was read) to bytes: every character must be < 256 */
    const PickleObj *s = args->seq.v[0];
    uint8_t *out = nc_malloc(s->s.len ? s->s.len : 1);
    size_t n = 0;
    for (size_t i = 0; i < s->s.len;) {
        uint8_t c = s->s.p[i];
        if (c < 0x80) out[n++] = c, i++;
        else if ((c == 0xc2 || c == 0xc3) && i + 1 < s->s.len) out[n++] = (uint8_t)(((c & 0x1f) << 6) | (s->s.p[i + 1] & 0x3f)), i += 2;
        else {
            free(out);
            return fail(m, "_codecs.encode(..., 'latin1') of a character above U+00FF (string at byte %zu)", s->at);
        }
    }
    PickleObj *o = new_obj(m, PK_BYTES);
    o->flags = F_OWNED;
    o->s.p = out;
    o->s.len = n;
    return push(m, o);
}

/* _reconstruct(ndarray, (0,), b'b'): an empty array that BUILD fills. */
static int reduce_reconstruct(Vm *m, const PickleObj *args) {
    const PickleObj *sub = args->seq.n == 3 ? args->seq.v[0] : NULL, *sh = args->seq.n == 3 ? args->seq.v[1] : NULL;
    if (!sub || sub->kind != PK_GLOBAL || sub->i != G_NDARRAY || sh->kind != PK_TUPLE || sh->seq.n != 1 ||
        sh->seq.v[0]->kind != PK_INT || sh->seq.v[0]->i != 0 || args->seq.v[2]->kind != PK_BYTES ||
        !is_text(args->seq.v[2], "b"))
        return fail(m, "numpy _reconstruct with arguments other than (numpy.ndarray, (0,), b'b')");
    PickleObj *o = new_obj(m, PK_ARRAY);
    o->arr = nc_calloc(1, sizeof(PickleArray));
    return push(m, o);
}

/* _frombuffer(buffer, dtype, shape, order): protocol 5's array. */
static int reduce_frombuffer(Vm *m, const PickleObj *args) {
    if (args->seq.n != 4 || args->seq.v[0]->kind != PK_BYTES || args->seq.v[1]->kind != PK_DTYPE ||
        !(args->seq.v[1]->flags & F_DONE) || args->seq.v[3]->kind != PK_STR ||
        !(is_text(args->seq.v[3], "C") || is_text(args->seq.v[3], "F")))
        return fail(m, "numpy _frombuffer with arguments other than (bytes, uint8 dtype, shape, 'C' or 'F')");
    PickleObj *o = new_obj(m, PK_ARRAY);
    o->arr = nc_calloc(1, sizeof(PickleArray));
    int rc = shape_of(m, args->seq.v[2], args->seq.v[0]->s.len, o->arr);
    if (rc) return rc;
    o->arr->fortran = is_text(args->seq.v[3], "F");
    o->arr->data = args->seq.v[0]->s.p;
    o->arr->len = args->seq.v[0]->s.len;
    o->flags = F_DONE;
    return push(m, o);
}

static int op_reduce(Vm *m) {
    if (avail(m) < 2) return underflow(m, 2);
    PickleObj *args = m->stack[m->sp - 1], *fn = m->stack[m->sp - 2];
    m->sp -= 2;
    if (fn->kind != PK_GLOBAL) return fail(m, "REDUCE calls a %s (made at byte %zu)", pickle_kind_name(fn->kind), fn->at);
    if (args->kind != PK_TUPLE) return fail(m, "REDUCE's arguments are a %s, a tuple expected", pickle_kind_name(args->kind));
    switch (fn->i) {
    case G_DTYPE: return reduce_dtype(m, args);
    case G_ENCODE: return reduce_encode(m, args);
    case G_RECONSTRUCT: return reduce_reconstruct(m, args);
    case G_FROMBUFFER: return reduce_frombuffer(m, args);
    }
    return fail(m, "REDUCE calls numpy.ndarray (read only as _reconstruct's first argument)");
}

/* BUILD on a dtype: (3, '|', None, None, None, elsize, alignment, flags), numpy's state of a
   uint8 dtype (version 4 adds metadata, None). */
static int build_dtype(Vm *m, PickleObj *d, const PickleObj *st) {
    size_t n = st->kind == PK_TUPLE ? st->seq.n : 0;
    int64_t ver = -1, v;
    int ok = (n == 8 || n == 9) && int_value(st->seq.v[0], &ver) && ver == (int64_t)n - 5 && is_text(st->seq.v[1], "|");
    for (size_t i = 2; ok && i < 5; i++) ok = st->seq.v[i]->kind == PK_NONE;
    for (size_t i = 5; ok && i < 8; i++) ok = int_value(st->seq.v[i], &v);
    if (ok && n == 9) ok = st->seq.v[8]->kind == PK_NONE;
    if (!ok) return fail(m, "a numpy dtype's state is not that of uint8 (version 3: (3, '|', None, None, None, -1, -1, 0))");
    d->flags |= F_DONE;
    return NC_OK;
}

/* BUILD on _reconstruct's array: (1, shape, dtype, is_fortran, data). */
static int build_array(Vm *m, PickleObj *a, const PickleObj *st) {
    int64_t ver, fortran;
    if (st->kind != PK_TUPLE || st->seq.n != 5 || !int_value(st->seq.v[0], &ver) || ver != 1 ||
        st->seq.v[2]->kind != PK_DTYPE || !(st->seq.v[2]->flags & F_DONE) || !int_value(st->seq.v[3], &fortran) ||
        (fortran != 0 && fortran != 1) || st->seq.v[4]->kind != PK_BYTES)
        return fail(m, "a numpy array's state is not (1, shape, uint8 dtype, is_fortran, bytes)");
    int rc = shape_of(m, st->seq.v[1], st->seq.v[4]->s.len, a->arr);
    if (rc) return rc;
    a->arr->fortran = (int)fortran;
    a->arr->data = st->seq.v[4]->s.p;
    a->arr->len = st->seq.v[4]->s.len;
    a->flags |= F_DONE;
    return NC_OK;
}

static int op_build(Vm *m) {
    if (avail(m) < 2) return underflow(m, 2);
    PickleObj *st = m->stack[--m->sp], *o = m->stack[m->sp - 1];
    if ((o->kind != PK_DTYPE && o->kind != PK_ARRAY) || (o->flags & F_DONE))
        return fail(m, "BUILD on a %s (made at byte %zu)%s", pickle_kind_name(o->kind), o->at,
                    o->flags & F_DONE ? " whose state is set already" : ": only numpy arrays and dtypes are built");
    return o->kind == PK_DTYPE ? build_dtype(m, o, st) : build_array(m, o, st);
}

/* A counted string of n bytes at pos: BYTES, or STR after checking it is UTF-8. */
static int counted(Vm *m, uint64_t n, PickleKind kind) {
    int rc = need(m, n);
    if (rc) return rc;
    if (kind == PK_STR) {
        long bad = utf8_invalid((const char *)m->b + m->pos, (size_t)n);
        if (bad >= 0) return fail(m, "a str that is not UTF-8 (byte %zu)", m->pos + (size_t)bad);
    }
    PickleObj *o = new_obj(m, kind);
    o->s.p = m->b + m->pos;
    o->s.len = (size_t)n;
    m->pos += (size_t)n;
    return push(m, o);
}

static int length_arg(Vm *m, int bytes, PickleKind kind, int is_signed) {
    int rc = need(m, (uint64_t)bytes);
    if (rc) return rc;
    uint64_t n = read_le(m, bytes);
    if (is_signed && (n & 0x80000000u)) return fail(m, "BINSTRING with a negative length");
    return counted(m, n, kind);
}

static int put_memo(Vm *m, uint32_t idx) {
    if (avail(m) < 1) return underflow(m, 1);
    if (++m->pushes > PICKLE_MAX_VALUES)  /* a memo entry costs as much as a value */
        return fail(m, "more than %ld values and memo entries (a CIFAR batch has about 10^5): refused", PICKLE_MAX_VALUES);
    memo_put(&m->memo, idx, m->stack[m->sp - 1]);
    return NC_OK;
}

static int get_memo(Vm *m, uint32_t idx) {
    PickleObj *o = memo_get(&m->memo, idx);
    if (!o) return fail(m, "memo entry %u was never stored", idx);
    return push(m, o);
}

static int new_int(Vm *m, PickleKind kind, int64_t v) {
    PickleObj *o = new_obj(m, kind);
    o->i = v;
    return push(m, o);
}

/* step: runs the opcode at m->pos. *stop is set by STOP. */
static int step(Vm *m, int *stop) {
    m->at = m->pos;
    m->op = m->b[m->pos++];
    int op = m->op, rc;
    const char *name = op_name(op);
    if (op != OP_PROTO && m->at == 0)
        return fail(m, "no PROTO opcode first: a protocol 0 or 1 pickle, or not a pickle (ncelab reads protocols 2 to 5)");
    if (name && op_min_proto(op) > m->proto)
        return fail(m, "%s in a protocol %d pickle (it is protocol %d's)", name, m->proto, op_min_proto(op));
    switch (op) {
    case OP_PROTO:
        if (m->at != 0) return fail(m, "PROTO after the first byte");
        if ((rc = need(m, 1))) return rc;
        m->proto = m->b[m->pos++];
        if (m->proto < 2 || m->proto > 5) return fail(m, "pickle protocol %d (ncelab reads 2 to 5)", m->proto);
        return NC_OK;
    case OP_FRAME: {
        if ((rc = need(m, 8))) return rc;
        uint64_t n = read_le(m, 8);
        if (n > m->len - m->pos) return fail(m, "truncated: a FRAME of %llu bytes, %zu left", (unsigned long long)n, m->len - m->pos);
        return NC_OK;
    }
    case OP_STOP:
        if (m->nmarks) return fail(m, "STOP with a MARK still open");
        if (m->sp != 1) return fail(m, "STOP with %zu values on the stack (one expected)", m->sp);
        if (m->pos != m->len) return fail(m, "%zu bytes after STOP: trailing data", m->len - m->pos);
        *stop = 1;
        return NC_OK;
    case OP_MARK:
        if (m->nmarks == m->mcap) {
            m->mcap = m->mcap ? 2 * m->mcap : 64;
            m->marks = nc_realloc(m->marks, sizeof(size_t) * m->mcap);
        }
        if (++m->pushes > PICKLE_MAX_VALUES) return fail(m, "more than %ld values: refused", PICKLE_MAX_VALUES);
        m->marks[m->nmarks++] = m->sp;
        return NC_OK;
    case OP_NONE: return push(m, new_obj(m, PK_NONE));
    case OP_NEWTRUE: return new_int(m, PK_BOOL, 1);
    case OP_NEWFALSE: return new_int(m, PK_BOOL, 0);
    case OP_BININT1:
        if ((rc = need(m, 1))) return rc;
        return new_int(m, PK_INT, (int64_t)read_le(m, 1));
    case OP_BININT2:
        if ((rc = need(m, 2))) return rc;
        return new_int(m, PK_INT, (int64_t)read_le(m, 2));
    case OP_BININT:
        if ((rc = need(m, 4))) return rc;
        return new_int(m, PK_INT, (int64_t)(int32_t)(uint32_t)read_le(m, 4));
    case OP_LONG1: {
        if ((rc = need(m, 1))) return rc;
        int n = m->b[m->pos++];
        if (n > 8) return fail(m, "LONG1 of %d bytes: an integer beyond 64 bits", n);
        if ((rc = need(m, (uint64_t)n))) return rc;
        uint64_t v = read_le(m, n);
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~(uint64_t)0 << (8 * n);  /* sign-extend */
        return new_int(m, PK_INT, (int64_t)v);
    }
    case OP_SHORT_BINSTRING: return length_arg(m, 1, PK_BYTES, 0);
    case OP_BINSTRING: return length_arg(m, 4, PK_BYTES, 1);
    case OP_SHORT_BINBYTES: return length_arg(m, 1, PK_BYTES, 0);
    case OP_BINBYTES: return length_arg(m, 4, PK_BYTES, 0);
    case OP_BINBYTES8:
    case OP_BYTEARRAY8: return length_arg(m, 8, PK_BYTES, 0);
    case OP_SHORT_BINUNICODE: return length_arg(m, 1, PK_STR, 0);
    case OP_BINUNICODE: return length_arg(m, 4, PK_STR, 0);
    case OP_BINUNICODE8: return length_arg(m, 8, PK_STR, 0);
    case OP_EMPTY_DICT: return push(m, new_obj(m, PK_DICT));
    case OP_EMPTY_LIST: return push(m, new_obj(m, PK_LIST));
    case OP_EMPTY_TUPLE: return push(m, new_obj(m, PK_TUPLE));
    case OP_TUPLE1: return make_tuple(m, 1);
    case OP_TUPLE2: return make_tuple(m, 2);
    case OP_TUPLE3: return make_tuple(m, 3);
    case OP_TUPLE: {
        size_t base = 0;
        if ((rc = pop_mark(m, &base))) return rc;
        PickleObj *t = new_obj(m, PK_TUPLE);
        for (size_t i = base; i < m->sp; i++) seq_add(t, m->stack[i]);
        m->sp = base;
        return push(m, t);
    }
    case OP_APPEND: {
        if (avail(m) < 2) return underflow(m, 2);
        PickleObj *v = m->stack[m->sp - 1], *l = m->stack[m->sp - 2];
        if (l->kind != PK_LIST) return fail(m, "APPEND to a %s (made at byte %zu)", pickle_kind_name(l->kind), l->at);
        seq_add(l, v);
        m->sp--;
        return NC_OK;
    }
    case OP_APPENDS: {
        size_t base = 0;
        PickleObj *l;
        if ((rc = pop_mark(m, &base)) || (rc = below_mark(m, base, PK_LIST, &l))) return rc;
        for (size_t i = base; i < m->sp; i++) seq_add(l, m->stack[i]);
        m->sp = base;
        return NC_OK;
    }
    case OP_SETITEM: {
        if (avail(m) < 3) return underflow(m, 3);
        PickleObj *v = m->stack[m->sp - 1], *k = m->stack[m->sp - 2], *d = m->stack[m->sp - 3];
        if (d->kind != PK_DICT) return fail(m, "SETITEM on a %s (made at byte %zu)", pickle_kind_name(d->kind), d->at);
        if ((rc = dict_set(m, d, k, v))) return rc;
        m->sp -= 2;
        return NC_OK;
    }
    case OP_SETITEMS: {
        size_t base = 0;
        PickleObj *d;
        if ((rc = pop_mark(m, &base)) || (rc = below_mark(m, base, PK_DICT, &d))) return rc;
        if ((m->sp - base) % 2) return fail(m, "SETITEMS with an odd number of values (%zu)", m->sp - base);
        for (size_t i = base; i < m->sp; i += 2)
            if ((rc = dict_set(m, d, m->stack[i], m->stack[i + 1]))) return rc;
        m->sp = base;
        return NC_OK;
    }
    case OP_BINPUT:
        if ((rc = need(m, 1))) return rc;
        return put_memo(m, (uint32_t)read_le(m, 1));
    case OP_LONG_BINPUT:
        if ((rc = need(m, 4))) return rc;
        return put_memo(m, (uint32_t)read_le(m, 4));
    case OP_MEMOIZE:
        if (m->memo.n >= UINT32_MAX) return fail(m, "MEMOIZE: the memo is full");
        return put_memo(m, (uint32_t)m->memo.n);
    case OP_BINGET:
        if ((rc = need(m, 1))) return rc;
        return get_memo(m, (uint32_t)read_le(m, 1));
    case OP_LONG_BINGET:
        if ((rc = need(m, 4))) return rc;
        return get_memo(m, (uint32_t)read_le(m, 4));
    case OP_GLOBAL: {
        const uint8_t *mod, *nm;
        size_t ml, nl;
        if ((rc = read_line(m, &mod, &ml)) || (rc = read_line(m, &nm, &nl))) return rc;
        return find_global(m, mod, ml, nm, nl);
    }
    case OP_STACK_GLOBAL: {
        if (avail(m) < 2) return underflow(m, 2);
        PickleObj *nm = m->stack[m->sp - 1], *mod = m->stack[m->sp - 2];
        if (mod->kind != PK_STR || nm->kind != PK_STR) return fail(m, "STACK_GLOBAL of a %s and a %s (two str expected)",
                                                                 pickle_kind_name(mod->kind), pickle_kind_name(nm->kind));
        m->sp -= 2;
        return find_global(m, mod->s.p, mod->s.len, nm->s.p, nm->s.len);
    }
    case OP_REDUCE: return op_reduce(m);
    case OP_BUILD: return op_build(m);
    }
    if (name) return fail(m, "opcode %s (0x%02x) is not read: CIFAR's pickles do not use it", name, op);
    return fail(m, "0x%02x is not a pickle opcode", op);
}

static void free_obj(PickleObj *o) {
    if (o->kind == PK_TUPLE || o->kind == PK_LIST || o->kind == PK_DICT) free(o->seq.v);
    else if (o->kind == PK_ARRAY) free(o->arr);
    else if (o->kind == PK_BYTES && (o->flags & F_OWNED)) free((void *)o->s.p);
    free(o);
}

void pickle_free(Pickle *pk) {
    if (!pk) return;
    for (size_t i = 0; i < pk->nall; i++) free_obj(pk->all[i]);
    free(pk->all);
    memset(pk, 0, sizeof *pk);
}

int pickle_parse(const uint8_t *buf, size_t len, const char *path, Pickle *pk, NcError *err) {
    memset(pk, 0, sizeof *pk);
    if (len == 0) return nc_fail(err, NC_EFILE, "%s: empty (not a pickle)", path);
    Vm m = {.b = buf, .len = len, .path = path, .err = err, .proto = 2, .pk = pk};
    int rc = NC_OK, stop = 0;
    while (!rc && !stop) {
        if (m.pos >= m.len) {
            m.at = m.pos;
            rc = fail(&m, "truncated: the file ends before STOP");
        } else {
            rc = step(&m, &stop);
        }
    }
    if (!rc) {
        pk->root = m.stack[0];
        /* an array or dtype whose BUILD never came is not data */
        for (size_t i = 0; i < pk->nall && !rc; i++) {
            PickleObj *o = pk->all[i];
            if ((o->kind == PK_ARRAY || o->kind == PK_DTYPE) && !(o->flags & F_DONE)) {
                m.at = o->at;
                rc = fail(&m, "a numpy %s without its state (no BUILD)", o->kind == PK_ARRAY ? "array" : "dtype");
            }
        }
    }
    free(m.stack);
    free(m.marks);
    free(m.memo.keys);
    free(m.memo.vals);
    if (rc) pickle_free(pk);
    return rc;
}

const PickleObj *pickle_get(const PickleObj *dict, const char *key) {
    if (!dict || dict->kind != PK_DICT) return NULL;
    for (size_t i = dict->seq.n; i >= 2; i -= 2)
        if (is_text(dict->seq.v[i - 2], key)) return dict->seq.v[i - 1];
    return NULL;
}
