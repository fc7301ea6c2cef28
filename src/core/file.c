// file.c -- checked file reading, atomic writes (temporary name, fsync, rename), mkdir -p.
#define _POSIX_C_SOURCE 200809L
#include "ncelab/core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int nc_read_file(const char *path, char **data, size_t *len, NcError *err) {
    *data = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return nc_fail(err, NC_EFILE, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return nc_fail(err, NC_EFILE, "%s: is a directory", path);
    }
    size_t cap = 4096, n = 0;
    char *buf = nc_malloc(cap);
    for (;;) {
        if (n + 1 >= cap) { cap *= 2; buf = nc_realloc(buf, cap); }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return nc_fail(err, NC_EFILE, "%s: read error", path);
    }
    buf[n] = '\0';
    *data = buf;
    if (len) *len = n;
    return NC_OK;
}

int nc_write_atomic(const char *path, const void *data, size_t len, NcError *err) {
    size_t n = strlen(path) + 64;
    char *tmp = nc_malloc(n);
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return nc_fail(err, NC_EFILE, "%s: cannot write: %s", path, strerror(e));
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            free(tmp);
            return nc_fail(err, NC_EFILE, "%s: write failed: %s", path, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return nc_fail(err, NC_EFILE, "%s: write failed: %s", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return nc_fail(err, NC_EFILE, "%s: cannot rename into place: %s", path, strerror(e));
    }
    free(tmp);
    return NC_OK;
}

int nc_mkdir_p(const char *path, NcError *err) {
    char *p = nc_strdup(path);
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') p[--n] = '\0';
    for (char *s = p + 1; ; s++) {
        char c = *s;
        if (c == '/' || c == '\0') {
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                int e = errno;
                int rc = nc_fail(err, NC_EFILE, "%s: cannot create directory: %s", p, strerror(e));
                free(p);
                return rc;
            }
            *s = c;
        }
        if (c == '\0') break;
    }
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
        int rc = nc_fail(err, NC_EFILE, "%s: not a directory", p);
        free(p);
        return rc;
    }
    free(p);
    return NC_OK;
}

char *nc_path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = nc_malloc(n);
    snprintf(s, n, "%s%s%s", dir, (*dir && dir[strlen(dir) - 1] != '/') ? "/" : "", name);
    return s;
}

int nc_dir_writable(const char *dir, NcError *err) {
    char *probe = nc_path_join(dir, ".write-test");
    int rc = nc_write_atomic(probe, "ok\n", 3, err);
    unlink(probe);
    free(probe);
    return rc ? nc_fail(err, NC_EFILE, "%s: the output directory is not writable", dir) : NC_OK;
}
