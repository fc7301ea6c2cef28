// pickle.h -- the objects of a Python pickle as read_pickle.c gives them: plain data and uint8 numpy arrays.
//
// read_pickle.c reads exactly what CIFAR's python release and its re-pickled copies hold: a dict
// of byte-string or str keys whose values are ints, strings, lists of them and one numpy uint8
// array, as Python 2's cPickle wrote them (protocol 2) and as Python 3 writes them (protocols 2
// to 5). It executes nothing: the only globals it recognises are numpy's array and dtype
// reconstructors and _codecs.encode (Python 3's protocol-2 form of bytes), each checked to make
// a uint8 array, a uint8 dtype or bytes; any other global, opcode or shape is refused.
#ifndef NCELAB_PICKLE_H
#define NCELAB_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "ncelab/core.h"

/* What a pickle may hold at most: values pushed, marks and memo entries stored while reading (a
   CIFAR-100 training batch makes about 2 * 10^5), and dimensions of an array. */
#define PICKLE_MAX_VALUES (1L << 22)
#define PICKLE_MAX_DIM 8

typedef enum {
    PK_NONE,
    PK_BOOL,    /* i: 0 or 1 */
    PK_INT,     /* i: a signed 64-bit integer */
    PK_BYTES,   /* s: Python 2's str, Python 3's bytes and bytearray */
    PK_STR,     /* s: well-formed UTF-8 (Python 3's str, Python 2's unicode) */
    PK_TUPLE,   /* seq */
    PK_LIST,    /* seq */
    PK_DICT,    /* seq: key, value, key, value, ...; keys are BYTES or STR */
    PK_ARRAY,   /* arr: a numpy uint8 array */
    PK_DTYPE,   /* numpy.dtype('u1'), while an array is made */
    PK_GLOBAL,  /* i: one of the recognised callables, while an array is made */
} PickleKind;

typedef struct {
    int ndim;
    int64_t shape[PICKLE_MAX_DIM];
    int fortran;          /* 1: column-major (Fortran) order */
    const uint8_t *data;  /* prod(shape) bytes */
    size_t len;
} PickleArray;

typedef struct PickleObj PickleObj;
struct PickleObj {
    PickleKind kind;
    int flags;            /* internal: owned bytes, dtype or array complete */
    size_t at;            /* byte offset of the opcode that made it */
    union {
        int64_t i;
        struct {
            const uint8_t *p;  /* not NUL-terminated; points into the pickle's bytes or an owned copy */
            size_t len;
        } s;
        struct {
            PickleObj **v;
            size_t n, cap;     /* DICT: n counts keys and values */
        } seq;
        PickleArray *arr;
    };
};

/* A parsed pickle. Its strings and arrays point into the bytes it was parsed from, which must
   outlive it. */
typedef struct {
    PickleObj *root;
    PickleObj **all;      /* every object, for pickle_free */
    size_t nall, cap;
} Pickle;

/* pickle_parse: reads the one pickle that fills buf[0..len) (nothing may follow its STOP).
   path names the file in messages. NC_EFILE "path: byte N: what is wrong" for anything outside
   the subset above; pk is then empty. */
int pickle_parse(const uint8_t *buf, size_t len, const char *path, Pickle *pk, NcError *err);
void pickle_free(Pickle *pk);

/* pickle_get: the value of key (BYTES or STR with these bytes) in dict, the last one when a key
   repeats; NULL when absent or dict is not a DICT. */
const PickleObj *pickle_get(const PickleObj *dict, const char *key);

/* pickle_kind_name: "int", "bytes", "list", "numpy array", ... for messages. */
const char *pickle_kind_name(PickleKind kind);

#endif
