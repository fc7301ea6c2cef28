// bnp_window.h -- what bn_relu_pool.c's forward and first_grad.c's one-pass forward share: a
// channel block's batch norm as x vs + vb, and one 2x2 window normalised, ReLU'd and max-pooled.
// AVX2/FMA: include it only from files compiled for it.
#ifndef NCELAB_NN_BNP_WINDOW_H
#define NCELAB_NN_BNP_WINDOW_H

#include <immintrin.h>
#include <math.h>
#include <stdint.h>

/* The batch norm of channel block cb (channels 8 cb .. 8 cb + 7) as x vs + vb. */
static inline void bnp_scale_shift(__m256 *vs, __m256 *vb, const float *mean, const float *var, const float *gamma,
                                   const float *beta, float eps, int cb) {
    float sc[8], sh[8];
    for (int l = 0; l < 8; l++) {
        int ch = cb * 8 + l;
        sc[l] = gamma[ch] / sqrtf(var[ch] + eps);
        sh[l] = beta[ch] - mean[ch] * sc[l];
    }
    *vs = _mm256_loadu_ps(sc);
    *vb = _mm256_loadu_ps(sh);
}

/* One pooled window of 8 channels from its four inputs x0-x3 (pixels (0,0), (0,1), (1,0), (1,1)):
   y = the ReLU of the first maximum of the normalised values (a later value wins only when
   strictly larger), ix its position 0-3 (4 when not positive: no gradient flows), and xk (or
   NULL) the input there (x0 for 4). */
static inline void bnp_pool_window(float *y, uint8_t *ix, float *xk, __m256 x0, __m256 x1, __m256 x2, __m256 x3,
                                   __m256 vs, __m256 vb) {
    __m256 zero = _mm256_setzero_ps();
    __m256 a = _mm256_fmadd_ps(x0, vs, vb), b = _mm256_fmadd_ps(x1, vs, vb);
    __m256 c = _mm256_fmadd_ps(x2, vs, vb), d = _mm256_fmadd_ps(x3, vs, vb);
    __m256 m = a, k = zero, xr = x0;
    __m256 gt = _mm256_cmp_ps(b, m, _CMP_GT_OQ);
    m = _mm256_blendv_ps(m, b, gt); k = _mm256_blendv_ps(k, _mm256_set1_ps(1), gt); xr = _mm256_blendv_ps(xr, x1, gt);
    gt = _mm256_cmp_ps(c, m, _CMP_GT_OQ);
    m = _mm256_blendv_ps(m, c, gt); k = _mm256_blendv_ps(k, _mm256_set1_ps(2), gt); xr = _mm256_blendv_ps(xr, x2, gt);
    gt = _mm256_cmp_ps(d, m, _CMP_GT_OQ);
    m = _mm256_blendv_ps(m, d, gt); k = _mm256_blendv_ps(k, _mm256_set1_ps(3), gt); xr = _mm256_blendv_ps(xr, x3, gt);
    __m256 pos = _mm256_cmp_ps(m, zero, _CMP_GT_OQ);
    k = _mm256_blendv_ps(_mm256_set1_ps(4), k, pos);
    _mm256_storeu_ps(y, _mm256_max_ps(m, zero));
    if (xk) _mm256_storeu_ps(xk, _mm256_blendv_ps(x0, xr, pos));
    __m256i ki = _mm256_cvtps_epi32(k);  /* 0-4 as 8 bytes */
    __m128i k16 = _mm_packus_epi32(_mm256_castsi256_si128(ki), _mm256_extracti128_si256(ki, 1));
    _mm_storel_epi64((__m128i *)ix, _mm_packus_epi16(k16, k16));
}

#endif
