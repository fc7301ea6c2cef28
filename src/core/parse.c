// parse.c -- strict number and k-list parsing for options, plus clocks and memory readings.
#define _POSIX_C_SOURCE 200809L
#include "ncelab/core.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

int nc_parse_double(const char *s, const char *what, double *out, NcError *err) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0.0;
    if (!s || !*s || *end != '\0' || errno == ERANGE || !isfinite(v))
        return nc_fail(err, NC_EUSAGE, "%s: expected a finite number, got '%s'", what, s ? s : "");
    *out = v;
    return NC_OK;
}

int nc_parse_long(const char *s, const char *what, long lo, long hi, long *out, NcError *err) {
    double v;
    if (nc_parse_double(s, what, &v, NULL) != NC_OK || v != floor(v))
        return nc_fail(err, NC_EUSAGE, "%s: expected an integer, got '%s'", what, s ? s : "");
    if (v < (double)lo || v > (double)hi)
        return nc_fail(err, NC_EUSAGE, "%s: %s is out of range [%ld, %ld]", what, s, lo, hi);
    *out = (long)v;
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
    char *save = NULL;
    int rc = NC_OK;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *dots = strstr(tok, "..");
        long a, b;
        if (dots) {
            *dots = '\0';
            if ((rc = nc_parse_long(tok, what, 1, kmax, &a, err)) ||
                (rc = nc_parse_long(dots + 2, what, 1, kmax, &b, err)))
                break;
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
