// error.c -- the one error pattern (code + message) and checked allocation.
#define _DEFAULT_SOURCE  /* madvise, posix_memalign */
#include "ncelab/core.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int nc_fail(NcError *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

static void nc_oom(size_t n, const char *file, int line) {
    fprintf(stderr, "ncelab: out of memory allocating %zu bytes at %s:%d\n", n, file, line);
    abort();
}

void *nc_malloc_(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) nc_oom(n, file, line);
    return p;
}

void *nc_calloc_(size_t count, size_t size, const char *file, int line) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) nc_oom(count * size, file, line);
    return p;
}

void *nc_realloc_(void *p, size_t n, const char *file, int line) {
    void *q = realloc(p, n ? n : 1);
    if (!q) nc_oom(n, file, line);
    return q;
}

/* Advises [p, p + len) (whole 2 MiB pages) MADV_HUGEPAGE unless NCELAB_HUGEPAGES=0; advice whose
   failure changes nothing. */
static void advise_huge(void *p, size_t len) {
    const char *env = getenv("NCELAB_HUGEPAGES");
    if (len && !(env && *env == '0')) (void)madvise(p, len, MADV_HUGEPAGE);
}

/* Below 2 MiB: 64-byte aligned. From 2 MiB: 2 MiB aligned, rounded up to whole 2 MiB, and advised
   MADV_HUGEPAGE unless NCELAB_HUGEPAGES=0 (with the kernel's transparent huge pages set to
   "madvise", the usual default, memory gets huge pages only where asked). */
void *nc_malloc_big_(size_t n, const char *file, int line) {
    const size_t huge = (size_t)2 << 20;
    void *p = NULL;
    if (n < huge) {
        if (posix_memalign(&p, 64, n ? n : 1) != 0) nc_oom(n, file, line);
        return p;
    }
    size_t len = (n + huge - 1) / huge * huge;
    if (posix_memalign(&p, huge, len) != 0) nc_oom(n, file, line);
    advise_huge(p, len);
    return p;
}

/* calloc's memory (fresh pages stay untouched until written, so a part never used costs no RSS),
   with the whole 2 MiB pages inside it advised MADV_HUGEPAGE. */
void *nc_calloc_big_(size_t count, size_t size, const char *file, int line) {
    void *p = nc_calloc_(count, size, file, line);
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1), hi = ((uintptr_t)p + count * size) & ~(huge - 1);
    if (hi > lo) advise_huge((void *)lo, hi - lo);
    return p;
}

char *nc_strdup_(const char *s, const char *file, int line) {
    size_t n = strlen(s) + 1;
    char *p = nc_malloc_(n, file, line);
    memcpy(p, s, n);
    return p;
}

void nc_buf_printf(NcBuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0) { va_end(ap2); return; }
    if (b->len + (size_t)need + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + (size_t)need + 1) cap *= 2;
        b->s = nc_realloc(b->s, cap);
        b->cap = cap;
    }
    vsnprintf(b->s + b->len, (size_t)need + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)need;
}

void nc_buf_free(NcBuf *b) {
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}
