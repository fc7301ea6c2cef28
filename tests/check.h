// check.h -- a tiny test harness: named checks that print the worst error and count failures.
#ifndef NCELAB_TEST_CHECK_H
#define NCELAB_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int check_failures = 0, check_count = 0;

/* CHECK(cond, fmt, ...): records one check; prints PASS/FAIL with the message. */
#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        check_count++;                                                      \
        int ok_ = (cond);                                                   \
        if (!ok_) check_failures++;                                         \
        printf("%s  ", ok_ ? "PASS" : "FAIL");                              \
        printf(__VA_ARGS__);                                                \
        printf("\n");                                                       \
        if (!ok_) printf("      at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
        fflush(stdout);                                                     \
    } while (0)

/* rel_err: |a - b| / max(|b|, floor). */
static inline double rel_err(double a, double b, double floor_) {
    double d = fabs(b) > floor_ ? fabs(b) : floor_;
    return fabs(a - b) / d;
}

static inline int check_done(void) {
    printf("%d passed, %d failed\n", check_count - check_failures, check_failures);
    return check_failures ? 1 : 0;
}

/* avx2_twin_skip: 1 when this run is the AVX2 twin of a test (tests/CMakeLists.txt sets
   NCELAB_AVX2_TWIN=1 beside ONEDNN_MAX_CPU_ISA=AVX2) on a CPU without AVX-512, where the plain
   run already took the AVX2 paths: the caller then returns 77 (skipped) instead of repeating it. */
static inline int avx2_twin_skip(void) {
    const char *twin = getenv("NCELAB_AVX2_TWIN");
    if (!twin || !*twin || *twin == '0') return 0;
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("avx512f")) return 0;
#endif
    printf("SKIP  this CPU has no AVX-512: the plain run of this test already took its AVX2 paths\n");
    return 1;
}

#endif
