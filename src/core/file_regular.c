// file_regular.c -- reading regular files of bounded size: nothing is read from a device or a pipe.
#define _POSIX_C_SOURCE 200809L
#include "ncelab/core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* check_regular: st is a regular file of at most max bytes; NC_EFILE naming path otherwise. */
static int check_regular(const char *path, const struct stat *st, size_t max, NcError *err) {
    if (S_ISDIR(st->st_mode)) return nc_fail(err, NC_EFILE, "%s: is a directory", path);
    if (!S_ISREG(st->st_mode))
        return nc_fail(err, NC_EFILE, "%s: not a regular file (a device, pipe or socket has no size to check)", path);
    if ((unsigned long long)st->st_size > max)
        return nc_fail(err, NC_EFILE, "%s: %lld bytes is more than the %zu allowed", path, (long long)st->st_size, max);
    return NC_OK;
}

int nc_regular_size(const char *path, size_t max, size_t *size, NcError *err) {
    *size = 0;
    struct stat st;
    if (stat(path, &st) != 0) return nc_fail(err, NC_EFILE, "%s: cannot open: %s", path, strerror(errno));
    int rc = check_regular(path, &st, max, err);
    if (rc) return rc;
    *size = (size_t)st.st_size;
    return NC_OK;
}

int nc_read_regular(const char *path, size_t max, char **data, size_t *len, NcError *err) {
    *data = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return nc_fail(err, NC_EFILE, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int rc = fstat(fileno(f), &st) != 0 ? nc_fail(err, NC_EFILE, "%s: cannot stat: %s", path, strerror(errno))
                                        : check_regular(path, &st, max, err);
    if (rc) {
        fclose(f);
        return rc;
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *buf = nc_malloc(n + 1);
    while (got < n) {
        size_t r = fread(buf + got, 1, n - got, f);
        if (r == 0) break;
        got += r;
    }
    fclose(f);
    if (got != n) {
        free(buf);
        return nc_fail(err, NC_EFILE, "%s: read %zu of its %zu bytes (changed while being read?)", path, got, n);
    }
    buf[n] = '\0';
    *data = buf;
    if (len) *len = n;
    return NC_OK;
}
