// blocked_util.h -- what the tests of the nChw8c kernels share: layout conversions and the worst
// error relative to the largest reference value.
#ifndef NCELAB_TEST_BLOCKED_UTIL_H
#define NCELAB_TEST_BLOCKED_UTIL_H

#include <math.h>
#include <stddef.h>

/* NCHW -> nChw8c (c a multiple of 8) */
static inline void to_blocked(float *dst, const float *src, int n, int c, int hw) {
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++)
                dst[(((size_t)i * (c / 8) + ch / 8) * hw + p) * 8 + ch % 8] = src[((size_t)i * c + ch) * hw + p];
}

/* nChw8c -> NCHW */
static inline void from_blocked(float *dst, const float *src, int n, int c, int hw) {
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++)
                dst[((size_t)i * c + ch) * hw + p] = src[(((size_t)i * (c / 8) + ch / 8) * hw + p) * 8 + ch % 8];
}

/* NCHW <-> [n][c / B][hw][B] for any block B dividing c (8: nChw8c, 16: nChw16c) */
static inline void to_blocked_b(float *dst, const float *src, int n, int c, int hw, int B) {
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++)
                dst[(((size_t)i * (c / B) + ch / B) * hw + p) * B + ch % B] = src[((size_t)i * c + ch) * hw + p];
}

static inline void from_blocked_b(float *dst, const float *src, int n, int c, int hw, int B) {
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++)
                dst[((size_t)i * c + ch) * hw + p] = src[(((size_t)i * (c / B) + ch / B) * hw + p) * B + ch % B];
}

/* worst |a - b| relative to max |b| */
static inline double worst_rel(const float *a, const float *b, size_t len) {
    double m = 0.0, e = 0.0;
    for (size_t i = 0; i < len; i++) {
        if (fabs(b[i]) > m) m = fabs(b[i]);
        if (fabs(a[i] - b[i]) > e) e = fabs(a[i] - b[i]);
    }
    return e / (m > 0 ? m : 1.0);
}

#endif
