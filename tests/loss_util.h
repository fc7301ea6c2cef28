// loss_util.h -- inputs for the contrastive-loss tests: rows of unit vectors from a seed.
#ifndef NCELAB_TEST_LOSS_UTIL_H
#define NCELAB_TEST_LOSS_UTIL_H

#include <math.h>
#include <stdint.h>

#include "ncelab/rng.h"

/* unit_rows: z (n, D) = n Gaussian directions, each scaled to length 1, keyed by seed */
static inline void unit_rows(float *z, int n, int D, uint64_t seed) {
    Rng r;
    rng_init(&r, seed, 4, 5, 6);
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < D; j++) {
            z[(size_t)i * D + j] = (float)rng_normal(&r);
            s += (double)z[(size_t)i * D + j] * z[(size_t)i * D + j];
        }
        for (int j = 0; j < D; j++) z[(size_t)i * D + j] /= (float)sqrt(s);
    }
}

#endif
