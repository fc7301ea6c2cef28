// data_internal.h -- what the dataset readers share inside src/data, and expose to tests and the fuzzer.
#ifndef NCELAB_DATA_INTERNAL_H
#define NCELAB_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ncelab/data.h"

/* Limits that keep a malformed header from asking for absurd amounts of memory (README, "Limits").
   Every reader checks them against the sizes a header claims, before anything is allocated or
   decoded. */
#define DATA_MAX_SIDE 16384          /* height or width of one image */
#define DATA_MAX_PIXELS (1L << 24)   /* h * w of one image: 4096 x 4096, 48 MiB as RGB */
#define DATA_MAX_CLASSES 100000
#define DATA_MAX_BYTES (1ULL << 34)  /* decoded pixels of one split, or of a folder's two (16 GiB) */
#define DATA_MAX_FILE ((size_t)1 << 30)  /* one JPEG or PNG file (1 GiB) */

/* A parsed SPEC (see data_load in ncelab/data.h). */
typedef enum {
    DATA_SRC_IDX,
    DATA_SRC_CIFAR10,
    DATA_SRC_CIFAR100,
    DATA_SRC_FOLDER,
    DATA_SRC_PACKED,
    DATA_SRC_SYNTH,
} DataSource;

typedef struct {
    DataSource kind;
    char name[64];        /* "fmnist", "mnist", "cifar10", "cifar100", "folder", "packed", "synth" */
    char path[512];       /* DIR or FILE ("" for synth) */
    int coarse;           /* cifar100: the 20 superclasses */
    int fashion;          /* idx: Fashion-MNIST class names */
    int synth_classes;    /* synth: N in [2, 1000] */
    int synth_size;       /* synth: SIZE in [8, 256] */
    int synth_train;      /* synth: training images per class (default 500) */
    int synth_test;       /* synth: test images per class (default 100; PER_CLASS / 5 when given) */
} DataSpec;

/* data_spec_parse: "kind:rest" into out; NC_EUSAGE naming the SPEC and the problem. */
int data_spec_parse(const char *spec, DataSpec *out, NcError *err);

/* Splits and class names. data_split_alloc allocates (n, h, w, c) pixels and n labels. */
void data_split_alloc(DataSplit *s, int n, int h, int w, int c);
void data_split_free(DataSplit *s);
/* data_set_names: copies n names, as UTF-8 (a byte that is not becomes U+FFFD: a class name is
   shown and written to JSON, never used as a path); names == NULL gives "0", "1", ... */
void data_set_names(Dataset *ds, int n, const char *const *names);
/* data_check_labels: every label in [0, num_classes); NC_EFILE naming what and the record. */
int data_check_labels(const DataSplit *s, int num_classes, const char *what, NcError *err);
/* data_read_small_file: reads a whole regular file of at most max_len bytes (one read). */
int data_read_small_file(const char *path, size_t max_len, uint8_t **buf, size_t *len, NcError *err);

/* CIFAR binary (read_cifar.c). data_cifar_read_files: concatenates record files into one split;
   a record is label_bytes label bytes (the label used is byte label_index) and 3072 bytes CHW
   (R, G, B planes of 32 x 32); the split holds (n, 32, 32, 3) HWC. Labels must be < num_classes. */
int data_cifar_read_files(const char *const *paths, int nfiles, int label_bytes, int label_index,
                          int num_classes, DataSplit *s, NcError *err);
/* data_cifar_chw_to_hwc: one image's pixels, in (3, 32, 32) CHW planes -> out (32, 32, 3) HWC. */
void data_cifar_chw_to_hwc(uint8_t *out, const uint8_t *in);
/* data_read_cifar: DIR in either release, told apart by its files: the binary one (read when any
   of its files is there) or the python one (read_cifar_py.c). A directory that holds neither is
   NC_EFILE naming both and, when it is recognisable, what it holds instead. */
int data_read_cifar(const char *dir, int hundred, int coarse, Dataset *ds, NcError *err);
/* data_cifar_guess: "cifar10" or "cifar100" when dir holds a file of either release, else NULL. */
const char *data_cifar_guess(const char *dir);
/* data_cifar_default_names: CIFAR-10's ten names, or "0".."k-1" (CIFAR-100), when no names file is there. */
void data_cifar_default_names(Dataset *ds, int hundred, int k);
/* data_path_exists: something (of any type) is at path. */
int data_path_exists(const char *path);

/* CIFAR's python release (read_cifar_py.c), pickles read by read_pickle.c (pickle.h).
   data_cifar_py_batch: the pickled batch dict held in buf (path names it in messages): its 'data'
   numpy uint8 array (n, 3072) of CHW planes becomes s (n, 32, 32, 3) HWC, and its label_key list
   of n ints the labels, each < num_classes.
   data_cifar_py_names: the list of exactly k class names under key in the pickled meta dict in buf.
   data_read_cifar_py: DIR/data_batch_1..5, test_batch, batches.meta (CIFAR-10) or DIR/train,
   test, meta (CIFAR-100: fine_labels, or coarse_labels with coarse); without the meta file the
   names are those of data_cifar_default_names. */
int data_cifar_py_batch(const uint8_t *buf, size_t len, const char *path, const char *label_key, int num_classes,
                        DataSplit *s, NcError *err);
int data_cifar_py_names(const uint8_t *buf, size_t len, const char *path, const char *key, int k, Dataset *ds,
                        NcError *err);
int data_read_cifar_py(const char *dir, int hundred, int coarse, Dataset *ds, NcError *err);

/* IDX (read_idx.c). data_idx_read_file: one IDX file, plain or gzipped, of unsigned bytes with the
   given magic (0x803: images (n, h, w); 0x801: labels (n)); *data is malloc'd, n*h*w bytes
   (h = w = 1 for labels). */
#define DATA_IDX_IMAGES 0x00000803u
#define DATA_IDX_LABELS 0x00000801u
int data_idx_read_file(const char *path, uint32_t magic, uint8_t **data, int *n, int *h, int *w,
                       NcError *err);
int data_read_idx(const char *dir, int fashion, Dataset *ds, NcError *err);

/* One decoded image (read_folder.c): pixels (h, w, c) HWC, c = 1 (gray) or 3 (RGB). */
typedef struct {
    int h, w, c;
    uint8_t *pixels;
} DataImage;
/* data_decode_jpeg / data_decode_png: decode len bytes; path names the file in messages.
   Palette, alpha and 16-bit PNGs become 8-bit gray or RGB; CMYK JPEGs become RGB. Any libjpeg
   warning (truncated or corrupt data) is an error. NC_EFILE on failure, img untouched. */
int data_decode_jpeg(const uint8_t *buf, size_t len, const char *path, DataImage *img, NcError *err);
int data_decode_png(const uint8_t *buf, size_t len, const char *path, DataImage *img, NcError *err);
/* data_decode_file: reads path and decodes it as JPEG or PNG, chosen by its first bytes. */
int data_decode_file(const char *path, DataImage *img, NcError *err);
/* data_image_header: the size and channels (1 or 3, as the decoder gives them) of the JPEG or PNG
   in buf, from its header alone: img->pixels is NULL. An image over DATA_MAX_SIDE on a side or
   DATA_MAX_PIXELS in all is NC_EFILE naming path, as in the decoders.
   data_read_header: the same for the file at path, from its first 64 KiB (all of it when the
   header runs past them). */
int data_image_header(const uint8_t *buf, size_t len, const char *path, DataImage *img, NcError *err);
int data_read_header(const char *path, DataImage *img, NcError *err);
/* data_resize_bilinear: out (oh, ow, c) from in (h, w, c), half-pixel centres (as PIL/torch
   with align_corners=False, no antialiasing). */
void data_resize_bilinear(uint8_t *out, int oh, int ow, const uint8_t *in, int h, int w, int c);
int data_read_folder(const char *dir, const DataOpts *opts, Dataset *ds, NcError *err);

/* Synthetic latent-class images (read_synth.c). */
int data_synth(const DataSpec *sp, uint64_t seed, Dataset *ds, NcError *err);

/* Packed files (packed.c). data_packed_parse reads a whole packed file held in buf. */
int data_packed_parse(const uint8_t *buf, size_t len, const char *path, Dataset *ds, NcError *err);
int data_read_packed(const char *path, Dataset *ds, NcError *err);

/* data_imbalance: keeps round(n_max * c^-s) (at least 1) training images of class c (1-based),
   chosen with the seed and kept in their order; the test split is untouched. */
void data_imbalance(Dataset *ds, double s, uint64_t seed);
/* data_limit: keeps n training images (a random subset drawn with seed), in their order. */
void data_limit(Dataset *ds, int n, uint64_t seed);

#endif
