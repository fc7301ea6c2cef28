// kern_avx2.h -- the GEMM micro-kernel of the convolutions (conv_wino.c, conv_gemm.c), AVX2/FMA:
// c (mr, 16) (+)= sum_p a(i, p) b(p, 16), mr <= 6 rows of a read by broadcasts at any strides, b
// 16 floats a step. Every element of c is the same sum in the same order whatever mr and whatever
// rows sit beside it, so a row's result does not depend on how the rows are blocked.
// Include only in files compiled with -mavx2 -mfma.
#ifndef NCELAB_NN_KERN_AVX2_H
#define NCELAB_NN_KERN_AVX2_H

#include <immintrin.h>

/* Accumulators are named variables (GCC spills arrays of vectors to the stack every iteration);
   rows beyond mr fold away because mr is a constant in each instance. */

#define ROW_INIT(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();                        \
    if (mr > i && acc) { c##i##0 = _mm256_loadu_ps(c + i * sc); c##i##1 = _mm256_loadu_ps(c + i * sc + 8); }
#define ROW_FMA(i) if (mr > i) { __m256 av = _mm256_broadcast_ss(a + i * sai + p * sap);                       \
    c##i##0 = _mm256_fmadd_ps(av, b0, c##i##0); c##i##1 = _mm256_fmadd_ps(av, b1, c##i##1); }
#define ROW_STORE(i) if (mr > i) { _mm256_storeu_ps(c + i * sc, c##i##0); _mm256_storeu_ps(c + i * sc + 8, c##i##1); }

static inline __attribute__((always_inline)) void kern(int mr, int np, const float *a, long sai, long sap,
                                                       const float *b, long sb, float *c, long sc, int acc) {
    ROW_INIT(0) ROW_INIT(1) ROW_INIT(2) ROW_INIT(3) ROW_INIT(4) ROW_INIT(5)
    for (int p = 0; p < np; p++) {
        __m256 b0 = _mm256_loadu_ps(b + p * sb), b1 = _mm256_loadu_ps(b + p * sb + 8);
        ROW_FMA(0) ROW_FMA(1) ROW_FMA(2) ROW_FMA(3) ROW_FMA(4) ROW_FMA(5)
    }
    ROW_STORE(0) ROW_STORE(1) ROW_STORE(2) ROW_STORE(3) ROW_STORE(4) ROW_STORE(5)
}

static inline void kern_any(int mr, int np, const float *a, long sai, long sap, const float *b, long sb, float *c,
                     long sc, int acc) {
    switch (mr) {
    case 6: kern(6, np, a, sai, sap, b, sb, c, sc, acc); break;
    case 5: kern(5, np, a, sai, sap, b, sb, c, sc, acc); break;
    case 4: kern(4, np, a, sai, sap, b, sb, c, sc, acc); break;
    case 3: kern(3, np, a, sai, sap, b, sb, c, sc, acc); break;
    case 2: kern(2, np, a, sai, sap, b, sb, c, sc, acc); break;
    default: kern(1, np, a, sai, sap, b, sb, c, sc, acc); break;
    }
}

#endif
