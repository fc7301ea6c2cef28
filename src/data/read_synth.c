// read_synth.c -- synthetic latent-class images: a smooth random template per class, shifted, plus noise.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"
#include "ncelab/rng.h"

#define SYNTH_BLOBS 4
#define SYNTH_PI 3.14159265358979323846
#define SYNTH_NOISE 0.10  /* per-pixel Gaussian noise, in units of the [0, 1] intensity */

static double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

static double uniform(Rng *r, double a, double b) { return a + (b - a) * rng_uniform(r); }

/* The template of class k: t (S, S, 3) in [0, 1] = base colour + a few Gaussian blobs of random
   colour + one low-frequency plane wave; a pure function of (seed, k). */
static void synth_template(float *t, int S, uint64_t seed, int k) {
    Rng r;
    rng_init(&r, seed, 0x5e11u, (uint32_t)k, 0);
    double base[3], cx[SYNTH_BLOBS], cy[SYNTH_BLOBS], inv2s2[SYNTH_BLOBS], amp[SYNTH_BLOBS][3], wamp[3], phase[3];
    for (int ch = 0; ch < 3; ch++) base[ch] = uniform(&r, 0.3, 0.7);
    for (int b = 0; b < SYNTH_BLOBS; b++) {
        cx[b] = uniform(&r, 0, S);
        cy[b] = uniform(&r, 0, S);
        double sg = uniform(&r, S / 10.0, S / 4.0);
        inv2s2[b] = 1.0 / (2 * sg * sg);
        for (int ch = 0; ch < 3; ch++) amp[b][ch] = uniform(&r, -0.5, 0.5);
    }
    int fx, fy;
    do {
        fx = (int)rng_below(&r, 5) - 2;
        fy = (int)rng_below(&r, 5) - 2;
    } while (fx == 0 && fy == 0);
    for (int ch = 0; ch < 3; ch++) {
        wamp[ch] = uniform(&r, -0.15, 0.15);
        phase[ch] = uniform(&r, 0, 2 * SYNTH_PI);
    }
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            double wave = 2 * SYNTH_PI * (fx * x + fy * y) / S;
            for (int ch = 0; ch < 3; ch++) {
                double v = base[ch] + wamp[ch] * sin(wave + phase[ch]);
                for (int b = 0; b < SYNTH_BLOBS; b++) {
                    double dx = x + 0.5 - cx[b], dy = y + 0.5 - cy[b];
                    v += amp[b][ch] * exp(-(dx * dx + dy * dy) * inv2s2[b]);
                }
                t[((size_t)y * S + x) * 3 + ch] = (float)clamp01(v);
            }
        }
}

/* noise: an approximately standard normal variate, the centred sum of the 4 bytes of one
   32-bit draw (Irwin-Hall; variance 4 * (256^2 - 1) / 12); a quarter of a Philox block each. */
static double noise(Rng *r) {
    uint32_t u = rng_u32(r);
    int s = (int)(u & 255) + (int)(u >> 8 & 255) + (int)(u >> 16 & 255) + (int)(u >> 24);
    return (s - 510) * (1.0 / 147.8005);
}

/* Image i of class k in split sp: the template shifted by up to S/16 pixels (edges clamped), its
   contrast and brightness jittered, plus noise; written to out (S, S, 3). */
static void synth_image(uint8_t *out, const float *t, int S, uint64_t seed, int sp, int k, int i) {
    Rng r;
    rng_init(&r, seed, 0x5e12u + (uint32_t)sp, (uint32_t)k, (uint32_t)i);
    int m = S / 16 > 1 ? S / 16 : 1;
    int dx = (int)rng_below(&r, (uint64_t)(2 * m + 1)) - m, dy = (int)rng_below(&r, (uint64_t)(2 * m + 1)) - m;
    double contrast = uniform(&r, 0.8, 1.2), bright = uniform(&r, -0.08, 0.08);
    for (int y = 0; y < S; y++) {
        int sy = y + dy < 0 ? 0 : y + dy >= S ? S - 1 : y + dy;
        for (int x = 0; x < S; x++) {
            int sx = x + dx < 0 ? 0 : x + dx >= S ? S - 1 : x + dx;
            for (int ch = 0; ch < 3; ch++) {
                double v = 0.5 + bright + contrast * (t[((size_t)sy * S + sx) * 3 + ch] - 0.5) + SYNTH_NOISE * noise(&r);
                out[((size_t)y * S + x) * 3 + ch] = (uint8_t)lround(255 * clamp01(v));
            }
        }
    }
}

int data_synth(const DataSpec *sp, uint64_t seed, Dataset *ds, NcError *err) {
    int N = sp->synth_classes, S = sp->synth_size, per[2] = {sp->synth_train, sp->synth_test};
    if (N < 2 || N > 1000 || S < 8 || S > 256 || per[0] < 1 || per[1] < 1)
        return nc_fail(err, NC_EUSAGE, "synth: N = %d, SIZE = %d, %d/%d images per class out of range", N, S, per[0], per[1]);
    DataSplit *split[2] = {&ds->train, &ds->test};
    for (int s = 0; s < 2; s++) data_split_alloc(split[s], N * per[s], S, S, 3);
    size_t isz = (size_t)S * S * 3;
    /* classes interleave: image j of a split is image j / N of class j % N */
    #pragma omp parallel
    {
        float *t = nc_malloc(sizeof(float) * isz);
        #pragma omp for schedule(dynamic, 1)
        for (int k = 0; k < N; k++) {
            synth_template(t, S, seed, k);
            for (int s = 0; s < 2; s++)
                for (int i = 0; i < per[s]; i++) {
                    size_t j = (size_t)i * N + k;
                    split[s]->labels[j] = k;
                    synth_image(split[s]->pixels + j * isz, t, S, seed, s, k, i);
                }
        }
        free(t);
    }
    data_set_names(ds, N, NULL);
    ds->source[0] = '\0';
    return NC_OK;
}
