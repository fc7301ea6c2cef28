// safetensors.h -- reading and writing safetensors files (checkpoints and test fixtures).
//
// The format (https://github.com/huggingface/safetensors): an 8-byte little-endian u64 N, then
// N bytes of UTF-8 JSON
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "string value", ...}}
// (the writer pads it with spaces to a multiple of 8), then the data buffer. Offsets are
// relative to the start of the data buffer; tensors are contiguous, row-major, little-endian.
// Python opens these files with the `safetensors` package, or with numpy alone by following
// the layout above (tests/ref/README.md shows the ten lines it takes).
#ifndef NCELAB_SAFETENSORS_H
#define NCELAB_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "ncelab/core.h"

typedef enum {
    ST_F64, ST_F32, ST_F16, ST_BF16, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL,
} StDtype;

#define ST_MAX_DIMS 8                        /* tensors of higher rank are refused */
#define ST_MAX_HEADER (100u * 1000u * 1000u) /* header length limit (as in the reference code) */

/* One tensor of a loaded file. data is aligned for the dtype and stays valid until st_free;
   it is read-only. A 0-d tensor (ndim 0) holds one element; a tensor with a 0 in its shape
   holds none (data is then a valid, non-NULL pointer to nothing). */
typedef struct {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;   /* product of shape (1 for ndim 0) */
    size_t nbytes;  /* numel * st_dtype_size(dtype) */
    const void *data;
} StTensor;

/* A loaded file: tensors in the order of the header, metadata key/value strings. */
typedef struct {
    char *path;
    char *buf;          /* the whole file */
    size_t len;
    StTensor *tensors;
    int ntensors;
    char **meta_keys, **meta_vals;
    int nmeta;
    void **copies;      /* aligned copies of tensors whose bytes were misaligned in buf */
    int ncopies;
} StFile;

/* st_dtype_size: bytes per element (BOOL: 1). st_dtype_name: "F32", ... .
   st_dtype_parse: the inverse of st_dtype_name; returns 0 on success, -1 for an unknown name. */
size_t st_dtype_size(StDtype dt);
const char *st_dtype_name(StDtype dt);
int st_dtype_parse(const char *name, StDtype *out);

/* st_load: reads and validates the whole file at path, which must be a regular file (a device
   such as /dev/zero or a pipe is refused: nothing is read without a known size): the header length
   (within the file and below ST_MAX_HEADER, checked from the first 8 bytes before the rest is
   read), UTF-8, the JSON (an object; every entry has a known dtype, a shape of
   non-negative integers, data_offsets [begin, end] with begin <= end inside the data buffer and
   end - begin = numel * dtype size; no two tensors overlap; names are unique; metadata values
   are strings; only whitespace after the JSON). On failure *f is left empty (st_free is
   harmless) and the return is NC_EFILE with a message that names the file and the tensor or
   the problem. The data buffer may contain bytes no tensor refers to (the reference code
   refuses such holes; ncelab's writer never makes them). */
int st_load(const char *path, StFile *f, NcError *err);
/* st_load_mem: st_load of the len bytes at data (copied; the caller keeps its buffer), with name
   in place of the path in f->path and in messages. */
int st_load_mem(const void *data, size_t len, const char *name, StFile *f, NcError *err);

/* st_find: the tensor called name, or NULL. */
const StTensor *st_find(const StFile *f, const char *name);

/* st_get: the tensor called name, checked: it must exist, have dtype dt and, when shape is
   non-NULL, exactly ndim dimensions equal to shape[0..ndim-1]. NC_EFILE naming the file, the
   tensor, and what was expected and found. */
int st_get(const StFile *f, const char *name, StDtype dt, int ndim, const int64_t *shape,
           const StTensor **out, NcError *err);

/* st_meta: the metadata value for key, or NULL if absent. st_meta_double / st_meta_long parse
   it as a finite number / an integer; NC_EFILE naming the file and key when it is absent or
   not a number. */
const char *st_meta(const StFile *f, const char *key);
int st_meta_double(const StFile *f, const char *key, double *out, NcError *err);
int st_meta_long(const StFile *f, const char *key, long *out, NcError *err);

/* st_free: releases everything st_load allocated and empties *f. */
void st_free(StFile *f);

/* Writer: collect tensors and metadata, then write the file in one go.
   st_writer_add keeps a *reference* to data: the caller keeps those bytes alive and unchanged
   until st_writer_save (the usual case: views into the parameter block). st_writer_add_copy
   copies the nbytes at once. Tensors are laid out in insertion order, contiguous, after a
   header padded with spaces to a multiple of 8 bytes.
   Bad arguments (an empty or duplicate name, "__metadata__", ndim outside 0..ST_MAX_DIMS, a
   negative dimension, data NULL for a non-empty tensor, a duplicate metadata key) return
   NC_EUSAGE and fill err; errors are sticky: st_writer_save then fails with the first one.
   Names and metadata are written as UTF-8: a byte that is not becomes U+FFFD (ncelab/utf8.h). */
typedef struct StWriter StWriter;
StWriter *st_writer_new(void);
int st_writer_add(StWriter *w, const char *name, StDtype dt, int ndim, const int64_t *shape,
                  const void *data, NcError *err);
int st_writer_add_copy(StWriter *w, const char *name, StDtype dt, int ndim,
                       const int64_t *shape, const void *data, NcError *err);
/* st_writer_meta: adds "key": "value" to __metadata__ (both strings are copied). */
int st_writer_meta(StWriter *w, const char *key, const char *value, NcError *err);
/* st_writer_save: assembles the file in memory (one copy of every tensor) and writes it
   atomically (temporary name, fsync, rename: path keeps its old content if anything fails).
   NC_EFILE naming path, or the sticky NC_EUSAGE. The writer can be saved again or extended
   afterwards. */
int st_writer_save(StWriter *w, const char *path, NcError *err);
void st_writer_free(StWriter *w);

#endif
