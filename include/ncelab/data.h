// data.h -- labelled image datasets in memory: readers, the packed format, per-split statistics.
#ifndef NCELAB_DATA_H
#define NCELAB_DATA_H

#include <stdint.h>

#include "ncelab/core.h"

/* One split: n images of h x w x c uint8 pixels, stored image after image in HWC order
   (row-major, channels last), and their labels in [0, num_classes). */
typedef struct {
    int n, h, w, c;
    uint8_t *pixels;   /* (n, h, w, c) */
    int32_t *labels;   /* (n) */
} DataSplit;

typedef struct {
    char name[64];        /* e.g. "cifar10", "fmnist", "folder", "synth" */
    char source[512];     /* the directory or file it was read from ("" for synth) */
    int num_classes;
    char **class_names;   /* (num_classes) */
    DataSplit train, test;
} Dataset;

typedef struct {
    int resize_h, resize_w;   /* folder: resize every image to this size (0: sizes must agree) */
    double imbalance_zipf;    /* > 0: keep n_c proportional to c^-S training images of class c (1-based) */
    int train_limit;          /* > 0: keep this many training images (a seeded random subset, after the imbalance) */
    uint64_t seed;            /* synth, and which images the imbalance and the limit keep */
} DataOpts;

/* data_load: reads a dataset named by a SPEC:
     fmnist[:DIR]        IDX files (gzipped or plain); default DIR /usr/share/datasets/fashion-mnist
     mnist:DIR           IDX files
     cifar10:DIR         cifar-10-batches-bin: data_batch_1..5.bin, test_batch.bin, batches.meta.txt, or
                         cifar-10-batches-py (torchvision's): data_batch_1..5, test_batch, batches.meta
     cifar100:DIR[:coarse]  cifar-100-binary: train.bin, test.bin, or cifar-100-python: train, test,
                         meta (fine labels; :coarse the 20 superclasses). The release is told apart by
                         its files; the python one's pickles are read without executing anything.
     folder:DIR          DIR/train/<class>/ and DIR/test/<class>/ (or DIR/val/<class>/) with .jpg,
                         .jpeg, .png files (class names sorted)
     packed:FILE         the packed file written by data_convert
     synth:N[:SIZE]      N latent classes of SIZE x SIZE x 3 images (default 32): a random template
                         per class plus noise
       synth:N:SIZE:PER_CLASS  PER_CLASS training and PER_CLASS/5 test images per class (default 500, 100)
   opts may be NULL (no resize, no imbalance, seed 0); a resize applies to every dataset.
   NC_EUSAGE for a malformed SPEC or option, NC_EFILE naming the file (and record) for bad data;
   on failure ds is left empty (data_free is harmless). */
int data_load(const char *spec, const DataOpts *opts, Dataset *ds, NcError *err);
void data_free(Dataset *ds);

/* data_select: out = a copy of full (loaded without imbalance or train limit) with opts'
   imbalance and train limit applied, keyed by opts->seed: the training split data_load with opts
   would give, for sources that do not depend on the seed (every source but synth). */
void data_select(const Dataset *full, const DataOpts *opts, Dataset *out);

/* data_convert: writes ds to one packed file (magic "NCEDATA1", version, shapes, class names,
   pixels, labels, CRC-32 checksum) atomically; data_load("packed:FILE") reads it back with one read. */
int data_convert(const Dataset *ds, const char *path, NcError *err);

/* Per-split statistics, for `ncelab data info`. */
typedef struct {
    int n;
    int *per_class;       /* (num_classes) counts, malloc'd */
    double mean[4], std[4];  /* per channel, pixel values scaled to [0, 1] */
} DataStats;
void data_stats(const Dataset *ds, const DataSplit *s, DataStats *st);

/* data_norm_stats: the input normalisation of training and evaluation: per-channel mean and std
   of split s (pixel values in [0, 1]); a std below 1e-6 becomes 1; channels beyond the image's
   repeat channel 0. */
void data_norm_stats(const Dataset *ds, const DataSplit *s, float mean[3], float std[3]);

#endif
