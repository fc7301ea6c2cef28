// file.c -- checked file reading, safe writes (a temporary name, fsync and rename for regular files;
// devices and FIFOs written through, never replaced), mkdir -p.
#define _DEFAULT_SOURCE  /* O_NOFOLLOW, DT_*, kill */
#define _POSIX_C_SOURCE 200809L
#include "ncelab/core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
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

static int write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? errno : EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* A character device or a FIFO named as an output: opened and written, never replaced. */
static int write_through(const char *path, const void *data, size_t len, NcError *err) {
    int fd = open(path, O_WRONLY | O_NOCTTY);
    if (fd < 0) return nc_fail(err, NC_EFILE, "%s: cannot write: %s", path, strerror(errno));
    int e = write_all(fd, data, len);
    if (close(fd) != 0 && !e) e = errno;
    return e ? nc_fail(err, NC_EFILE, "%s: write failed: %s", path, strerror(e)) : NC_OK;
}

/* Removes path.tmp.<pid> files that a killed writer left beside path (their pid is gone). */
static void remove_stale_temps(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? nc_strdup(path) : nc_strdup(".");
    if (slash) dir[slash - path + (slash == path)] = '\0';
    const char *base = slash ? slash + 1 : path;
    size_t bl = strlen(base);
    DIR *d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d));) {
        const char *n = de->d_name;
        if (strncmp(n, base, bl) != 0 || strncmp(n + bl, ".tmp.", 5) != 0) continue;
        char *end;
        long pid = strtol(n + bl + 5, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char *stale = nc_path_join(dir, n);
        unlink(stale);
        free(stale);
    }
    if (d) closedir(d);
    free(dir);
}

/* The file a symlink names (relative targets are relative to the link's directory), following
   chains like open() would; a dangling link names the file to create. NULL on a loop. */
static char *follow_links(const char *path) {
    char *cur = nc_strdup(path);
    for (int hops = 0; hops < 40; hops++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) return cur;
        char buf[4096];
        ssize_t n = readlink(cur, buf, sizeof buf - 1);
        if (n < 0) return cur;
        buf[n] = '\0';
        char *next;
        const char *slash = strrchr(cur, '/');
        if (buf[0] == '/' || !slash) {
            next = nc_strdup(buf);
        } else {
            size_t dl = (size_t)(slash - cur) + 1;
            next = nc_malloc(dl + (size_t)n + 1);
            memcpy(next, cur, dl);
            memcpy(next + dl, buf, (size_t)n + 1);
        }
        free(cur);
        cur = next;
    }
    free(cur);
    return NULL;
}

int nc_write_atomic(const char *path, const void *data, size_t len, NcError *err) {
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {   /* replace the link's target, like cp */
        char *target = follow_links(path);
        if (!target) return nc_fail(err, NC_EFILE, "%s: too many levels of symbolic links", path);
        int rc = nc_write_atomic(target, data, len, err);
        free(target);
        return rc;
    }
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) return write_through(path, data, len, err);
        return nc_fail(err, NC_EFILE, "%s: is a %s, not a regular file: refusing to replace it", path,
                       S_ISDIR(st.st_mode) ? "directory" : S_ISBLK(st.st_mode) ? "block device"
                       : S_ISSOCK(st.st_mode) ? "socket" : "special file");
    }
    remove_stale_temps(path);
    size_t n = strlen(path) + 64;
    char *tmp = nc_malloc(n);
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644);
    if (fd < 0 && errno == ENOENT) {  /* the parent directories the path names, created as mkdir -p does */
        char *dir = nc_strdup(path), *slash = strrchr(dir, '/');
        int rc = NC_OK;
        if (slash && slash != dir) {
            *slash = '\0';
            NcError me = {0};
            if ((rc = nc_mkdir_p(dir, &me)) == NC_OK) fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644);
            else rc = nc_fail(err, NC_EFILE, "%s: cannot write: %s", path, me.msg);
        }
        free(dir);
        if (rc) {
            free(tmp);
            return rc;
        }
    }
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return nc_fail(err, NC_EFILE, "%s: cannot write: %s", path, strerror(e));
    }
    int e = write_all(fd, data, len);
    if (!e && fsync(fd) != 0) e = errno;
    if (close(fd) != 0 && !e) e = errno;
    if (e) {
        unlink(tmp);
        free(tmp);
        return nc_fail(err, NC_EFILE, "%s: write failed: %s", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        e = errno;
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

int nc_dir_lock(const char *dir, int *fd, NcError *err) {
    char *path = nc_path_join(dir, ".ncelab.lock");
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (*fd < 0) {
        int rc = nc_fail(err, NC_EFILE, "%s: cannot create the lock file: %s", path, strerror(errno));
        free(path);
        return rc;
    }
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(*fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(*fd);
        *fd = -1;
        free(path);
        if (e == EWOULDBLOCK)
            return nc_fail(err, NC_EUSAGE, "%s: another ncelab (pid %s) is writing this directory; wait for it or choose "
                           "another --out", dir, pid[0] ? pid : "unknown");
        return nc_fail(err, NC_EFILE, "%s: cannot lock: %s", dir, strerror(e));
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    int told = ftruncate(*fd, 0) == 0 && pwrite(*fd, pid, (size_t)n, 0) == n;
    (void)told;  /* the pid is a courtesy to the next writer: the lock holds without it */
    free(path);
    return NC_OK;
}

void nc_dir_unlock(int fd) {
    if (fd >= 0) close(fd);  /* closing the descriptor releases the flock */
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
