// taps_avx2.h -- the last store of the Winograd weight gradients (conv_wino.c, conv_wino_s2.c):
// the 9 taps of 4 filters, one vector of 4 filters per tap, written as the filters' rows of the
// plain (k, c, 3, 3) gradient. Include only in files compiled with -mavx2 -mfma.
#ifndef NCELAB_NN_TAPS_AVX2_H
#define NCELAB_NN_TAPS_AVX2_H

#include <immintrin.h>
#include <stddef.h>

/* tap[r 3 + q] lane j -> dw[j fs + r 3 + q] (acc: dw + it, the float addition of the scalar
   loops): two 4 x 4 transposes and 3 stores a filter, where lane by lane is 36 scattered stores
   (a fifth of the step's time at 512 x 512 channels). */
static inline void taps_store4(float *dw, size_t fs, __m128 *tap, int acc) {
    _MM_TRANSPOSE4_PS(tap[0], tap[1], tap[2], tap[3]);
    _MM_TRANSPOSE4_PS(tap[4], tap[5], tap[6], tap[7]);
    float t8[4];
    _mm_storeu_ps(t8, tap[8]);
    for (int j = 0; j < 4; j++) {
        float *d = dw + j * fs;
        __m128 a = tap[j], b = tap[4 + j];
        if (acc) {
            a = _mm_add_ps(_mm_loadu_ps(d), a);
            b = _mm_add_ps(_mm_loadu_ps(d + 4), b);
            t8[j] = d[8] + t8[j];
        }
        _mm_storeu_ps(d, a);
        _mm_storeu_ps(d + 4, b);
        d[8] = t8[j];
    }
}

#endif
