// parse.c -- strict number and k-list parsing for options, plus clocks and memory readings.
#define _POSIX_C_SOURCE 200809L
#include "ncelab/core.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* number_syntax: 1 when all of s is a decimal number as a person types it: an optional sign,
   digits with an optional fraction, an optional exponent. No spaces, no hexadecimal, no inf or
   nan (strtod takes all of these). *plain is set when it is digits alone after the sign. */
static int number_syntax(const char *s, int *plain) {
    const char *digits = "0123456789";
    if (*s == '+' || *s == '-') s++;
    size_t whole = strspn(s, digits), frac = 0;
    s += whole;
    *plain = 1;
    if (*s == '.') {
        frac = strspn(++s, digits);
        s += frac;
        *plain = 0;
    }
    if (whole + frac == 0) return 0;
    if (*s == 'e' || *s == 'E') {
        if (*++s == '+' || *s == '-') s++;
        size_t e = strspn(s, digits);
        if (e == 0) return 0;
        s += e;
        *plain = 0;
    }
    return *s == '\0';
}

int nc_parse_double(const char *s, const char *what, double *out, NcError *err) {
    int plain;
    if (!s || !number_syntax(s, &plain))
        return nc_fail(err, NC_EUSAGE, "%s: expected a number, got '%s'", what, s ? s : "");
    errno = 0;
    double v = strtod(s, NULL);
    if (errno == ERANGE || !isfinite(v))
        return nc_fail(err, NC_EUSAGE, "%s: '%s' is out of range (overflow or underflow)", what, s);
    *out = v;
    return NC_OK;
}

int nc_parse_long(const char *s, const char *what, long lo, long hi, long *out, NcError *err) {
    int plain;
    if (!s || !number_syntax(s, &plain))
        return nc_fail(err, NC_EUSAGE, "%s: expected an integer, got '%s'", what, s ? s : "");
    long x;
    if (plain) {  /* exact, beyond 2^53 too */
        errno = 0;
        x = strtol(s, NULL, 10);
        if (errno == ERANGE) return nc_fail(err, NC_EUSAGE, "%s: %s is out of range [%ld, %ld]", what, s, lo, hi);
    } else {  /* 1e6, 2.5e3: the value must be an integer */
        errno = 0;
        double v = strtod(s, NULL);
        if (errno == ERANGE || !isfinite(v) || v != floor(v))
            return nc_fail(err, NC_EUSAGE, "%s: expected an integer, got '%s'", what, s);
        if (!(v >= -0x1p63 && v < 0x1p63))  /* (double)LONG_MAX is 2^63, one past it */
            return nc_fail(err, NC_EUSAGE, "%s: %s is out of range [%ld, %ld]", what, s, lo, hi);
        x = (long)v;
    }
    if (x < lo || x > hi) return nc_fail(err, NC_EUSAGE, "%s: %s is out of range [%ld, %ld]", what, s, lo, hi);
    *out = x;
    return NC_OK;
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int nc_parse_klist(const char *s, const char *what, long **ks, int *n, NcError *err) {
    const long kmax = 1000000000L;
    *ks = NULL;
    *n = 0;
    if (!s || !*s) return nc_fail(err, NC_EUSAGE, "%s: empty list", what);
    int cap = 16, cnt = 0;
    long *v = nc_malloc(sizeof(long) * (size_t)cap);
    char *copy = nc_strdup(s);
    int rc = NC_OK, item = 0;
    for (char *tok = copy, *next; tok; tok = next) {
        next = strchr(tok, ',');
        if (next) *next++ = '\0';
        item++;
        if (!*tok) { rc = nc_fail(err, NC_EUSAGE, "%s: item %d of '%s' is empty", what, item, s); break; }
        char *dots = strstr(tok, "..");
        long a, b;
        if (dots) {
            *dots = '\0';
            if (nc_parse_long(tok, what, 1, kmax, &a, NULL) || nc_parse_long(dots + 2, what, 1, kmax, &b, NULL)) {
                rc = nc_fail(err, NC_EUSAGE, "%s: '%s..%s' is not a range a..b of integers in [1, %ld]", what, tok,
                             dots + 2, kmax);
                break;
            }
            if (b < a) { rc = nc_fail(err, NC_EUSAGE, "%s: empty range %ld..%ld", what, a, b); break; }
        } else {
            if ((rc = nc_parse_long(tok, what, 1, kmax, &a, err))) break;
            b = a;
        }
        for (long k = a; k <= b; k *= 2) {
            if (cnt == cap) { cap *= 2; v = nc_realloc(v, sizeof(long) * (size_t)cap); }
            v[cnt++] = k;
            if (k > kmax / 2) break;
        }
    }
    free(copy);
    if (rc == NC_OK && cnt == 0) rc = nc_fail(err, NC_EUSAGE, "%s: empty list", what);
    if (rc != NC_OK) { free(v); return rc; }
    qsort(v, (size_t)cnt, sizeof(long), cmp_long);
    int m = 0;
    for (int i = 0; i < cnt; i++)
        if (m == 0 || v[i] != v[m - 1]) v[m++] = v[i];
    *ks = v;
    *n = m;
    return NC_OK;
}

double nc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double nc_peak_rss_mb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0.0;
    return (double)ru.ru_maxrss / 1024.0;
}

int nc_loss_parse(const char *s, const char *what, NcLoss *out, NcError *err) {
    if (s && strcmp(s, "infonce") == 0) *out = NC_LOSS_INFONCE;
    else if (s && strcmp(s, "nce") == 0) *out = NC_LOSS_NCE;
    else return nc_fail(err, NC_EUSAGE, "%s: expected infonce or nce, got '%s'", what, s ? s : "");
    return NC_OK;
}

const char *nc_loss_name(NcLoss loss) { return loss == NC_LOSS_NCE ? "nce" : "infonce"; }
