// fuzz_util.h -- what the libFuzzer harnesses share: a private scratch directory and a file writer.
#ifndef NCELAB_FUZZ_UTIL_H
#define NCELAB_FUZZ_UTIL_H

#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700  /* nftw, mkdtemp, symlink; include this header first */
#endif
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_dir[512];

__attribute__((unused)) static int fuzz_rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    remove(p);  /* best effort: go on with the rest */
    return 0;
}

/* fuzz_rm_tree: removes path and everything under it (symbolic links are not followed). */
__attribute__((unused)) static void fuzz_rm_tree(const char *path) {
    nftw(path, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

__attribute__((unused)) static void fuzz_cleanup(void) {
    if (fuzz_dir[0]) fuzz_rm_tree(fuzz_dir);
}

/* fuzz_scratch: a directory of this process under $TMPDIR (made on first use, removed at exit). */
__attribute__((unused)) static const char *fuzz_scratch(void) {
    if (!fuzz_dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/ncelab_fuzz_XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(fuzz_dir)) abort();
        atexit(fuzz_cleanup);
    }
    return fuzz_dir;
}

/* fuzz_write: the n bytes at data into the file path (aborts if it cannot: not the code under test). */
__attribute__((unused)) static void fuzz_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n)) abort();
    fclose(f);
}

/* fuzz_cstr: the input as a NUL-terminated string (malloc'd; an embedded NUL ends it early). */
__attribute__((unused)) static char *fuzz_cstr(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
