// rng.h -- counter-based random numbers (Philox4x32-10): the value depends only on (key, counter).
#ifndef NCELAB_RNG_H
#define NCELAB_RNG_H

#include <stdint.h>

/* rng_philox: the Philox4x32-10 block function of Salmon et al. (SC'11): four 32-bit outputs
   for a 128-bit counter ctr[4] and a 64-bit key[2]. Matches the Random123 known answers. */
void rng_philox(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]);

/* A stream keyed by a seed and up to three coordinates (e.g. epoch, step, item); draws are a
   pure function of (seed, a, b, c, draw index), whatever the thread that asks. */
typedef struct {
    uint32_t key[2];
    uint32_t ctr[4];
    uint32_t buf[4];
    int left;
} Rng;

void rng_init(Rng *r, uint64_t seed, uint32_t a, uint32_t b, uint32_t c);
uint32_t rng_u32(Rng *r);
/* rng_uniform: a double in the open interval (0, 1), 53 random bits. */
double rng_uniform(Rng *r);
/* rng_normal: a standard normal variate (Box-Muller). */
double rng_normal(Rng *r);
/* rng_below: an integer uniform on [0, n), without modulo bias; n >= 1. */
uint64_t rng_below(Rng *r, uint64_t n);

#endif
