// check.h -- a tiny test harness: named checks that print the worst error and count failures.
#ifndef NCELAB_TEST_CHECK_H
#define NCELAB_TEST_CHECK_H

#include <math.h>
#include <stdio.h>

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

#endif
