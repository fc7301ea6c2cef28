// augment.h -- image augmentations (crops, flip, colour jitter, grayscale) from uint8 HWC to normalised float CHW.
#ifndef NCELAB_AUGMENT_H
#define NCELAB_AUGMENT_H

#include <stdint.h>

#include "ncelab/core.h"
#include "ncelab/rng.h"

/* The pipeline, in torchvision's SimCLR order, applied to one image of h x w x c uint8 pixels
   (c = 1 or 3, HWC) and written as c x out_h x out_w floats (CHW):

     1. geometry: the whole image, or a random resized crop (RandomResizedCrop), or pad-and-crop
        (RandomCrop with padding), resampled bilinearly to out_h x out_w (half-pixel centres, as
        torch's interpolate with align_corners=False, no antialiasing); then a horizontal flip
        with probability p_flip. Pixels become floats x/255 in [0, 1].
     2. colour jitter with probability p_jitter: brightness, contrast, saturation and hue in a
        random order (ColorJitter); every factor is drawn even when unused.
     3. random grayscale with probability p_gray (luma 0.299 R + 0.587 G + 0.114 B, replicated).
     4. normalisation per channel: (x - mean[c]) / std[c].

   For 1-channel images saturation, hue and grayscale are no-ops (as in torchvision).
   All draws come from a counter-based stream keyed by (seed, epoch, index, view), so a view is
   a pure function of its key whatever the thread that renders it. */

enum { AUG_PAD_ZERO = 0, AUG_PAD_REFLECT = 1 };

typedef struct {
    int out_h, out_w;             /* output size; 0 means the input's size */
    /* random resized crop (rrc = 1): area fraction ~ U[smin, smax], aspect ratio w/h log-uniform
       on [rmin, rmax], up to 10 attempts, then the centre-crop fallback of torchvision */
    int rrc;
    double rrc_smin, rrc_smax;    /* 0 < smin <= smax <= 1 */
    double rrc_rmin, rrc_rmax;    /* 0 < rmin <= rmax (3/4 and 4/3 in the presets) */
    /* pad-and-crop (pad > 0, not together with rrc): pad by pad pixels on every side with zeros
       or by reflection (edge pixel not repeated), then a uniformly placed crop of the input size */
    int pad;
    int pad_mode;                 /* AUG_PAD_ZERO or AUG_PAD_REFLECT */
    double p_flip;                /* probability of a horizontal flip */
    double p_jitter;              /* probability of applying the colour jitter as a whole */
    double brightness, contrast, saturation;  /* strengths s >= 0: factor ~ U[max(0, 1-s), 1+s] */
    double hue;                   /* strength in [0, 0.5]: shift ~ U[-hue, hue] turns */
    double p_gray;                /* probability of grayscale */
    float mean[3], std[3];        /* normalisation per channel (of x/255); std > 0 */
} AugConfig;

/* Presets; out_h/out_w are 0 (input size). mean 0, std 1 (set them from data statistics).
   simclr_cifar: rrc 0.2..1, ratio 3/4..4/3, flip 0.5, jitter 0.4/0.4/0.4/0.1 with p 0.8, gray 0.2.
   crop_flip:    pad 4 (zeros) and crop, flip 0.5.
   none:         identity, then normalisation. */
void aug_preset_simclr_cifar(AugConfig *cfg);
void aug_preset_crop_flip(AugConfig *cfg);
void aug_preset_none(AugConfig *cfg);

/* aug_preset: fills cfg from a name ("simclr", "crop_flip" or "none"); NC_EUSAGE naming the
   value otherwise (what names the option). */
int aug_preset(const char *name, const char *what, AugConfig *cfg, NcError *err);

/* aug_check: validates cfg for input images h x w x c: probabilities in [0, 1], strengths >= 0,
   hue <= 0.5, crop ranges, pad < h and w for reflection, std > 0, no NaN, c in {1, 3}.
   NC_EUSAGE with a message naming the field and the value. */
int aug_check(const AugConfig *cfg, int h, int w, int c, NcError *err);

/* The random choices of one view; aug_draw makes them, aug_render applies them. */
typedef struct {
    /* source window (in input pixels, may extend beyond the image by the padding) that is
       resampled to the output: rows y0..y0+ch-1, columns x0..x0+cw-1 */
    int y0, x0, ch, cw;
    int flip;
    int jitter;                   /* 1: apply the four factors below in the order `order` */
    float brightness, contrast, saturation, hue;
    int order[4];                 /* a permutation of 0 brightness, 1 contrast, 2 saturation, 3 hue */
    int gray;
} AugParams;

/* aug_draw: the random choices for an h x w input from the stream r (cfg already checked). */
void aug_draw(AugParams *p, const AugConfig *cfg, int h, int w, Rng *r);

/* aug_render: out (c, OH, OW) = the view p of img (h, w, c) under cfg, where OH, OW are
   cfg->out_h, cfg->out_w (or h, w when 0). Allocates nothing. */
void aug_render(float *out, const uint8_t *img, int h, int w, int c, const AugConfig *cfg,
                const AugParams *p);

/* aug_apply: aug_draw with the stream keyed by (seed, epoch, index, view), then aug_render. */
void aug_apply(float *out, const uint8_t *img, int h, int w, int c, const AugConfig *cfg,
               uint64_t seed, uint32_t epoch, uint32_t index, uint32_t view);

/* The single operations, on float images x (c, n) with n = height * width pixels per channel,
   values in [0, 1], in place; results clamped to [0, 1] as in torchvision. */
/* x = x * b */
void aug_brightness(float *x, int c, int n, float b);
/* x = f x + (1 - f) m, with m the mean luma of the whole image (the mean of x when c = 1) */
void aug_contrast(float *x, int c, int n, float f);
/* x = f x + (1 - f) luma(x) per pixel (c = 3; no-op for c = 1) */
void aug_saturation(float *x, int c, int n, float f);
/* hue += shift (in turns, any real) via RGB -> HSV -> RGB (c = 3; no-op for c = 1) */
void aug_hue(float *x, int c, int n, float shift);
/* every channel = 0.299 R + 0.587 G + 0.114 B (c = 3; no-op for c = 1) */
void aug_grayscale(float *x, int c, int n);
/* x (c, h, w) mirrored left-right */
void aug_hflip(float *x, int c, int h, int w);
/* x = (x - mean[ch]) / std[ch] per channel */
void aug_normalize(float *x, int c, int n, const float *mean, const float *std);

#endif
