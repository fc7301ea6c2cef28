// core.h -- errors, checked allocation and IO, atomic file writes, JSON files, small parsers.
#ifndef NCELAB_CORE_H
#define NCELAB_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define NCELAB_VERSION "0.1.0"

/* Error codes. They double as the CLI's exit statuses. */
enum {
    NC_OK = 0,
    NC_EFILE = 1,   /* unreadable, unwritable or malformed file */
    NC_EUSAGE = 2,  /* bad option or value */
    NC_ENUM = 3,    /* numerical failure (did not converge, NaN) */
};

/* The one error pattern: a library function that can fail takes NcError *err (may be NULL),
   returns NC_OK or an error code, and on failure fills err->msg with one line that names the
   file, option or record and the problem. Only the CLI prints and exits. */
typedef struct {
    int code;
    char msg[1024];
} NcError;

/* nc_blas_single_begin / nc_blas_single_end: OpenBLAS runs on one thread between them, for
   GEMMs split over the OpenMP team (OpenBLAS's own threads would spin against the team). Nested
   and concurrent callers share one count: the last to leave restores what the first found. */
void nc_blas_single_begin(void);
void nc_blas_single_end(void);

/* nc_fail: fills err (if non-NULL) with code and the formatted message; returns code. */
int nc_fail(NcError *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Checked allocation: on failure prints size, file and line to stderr and aborts
   (an out-of-memory condition is not an input error). */
void *nc_malloc_(size_t n, const char *file, int line);
void *nc_calloc_(size_t count, size_t size, const char *file, int line);
void *nc_realloc_(void *p, size_t n, const char *file, int line);
char *nc_strdup_(const char *s, const char *file, int line);
#define nc_malloc(n) nc_malloc_((n), __FILE__, __LINE__)
#define nc_calloc(c, s) nc_calloc_((c), (s), __FILE__, __LINE__)
#define nc_realloc(p, n) nc_realloc_((p), (n), __FILE__, __LINE__)
#define nc_strdup(s) nc_strdup_((s), __FILE__, __LINE__)

/* nc_malloc_big: checked allocation for the buffers of megabytes a training step walks
   (activations, the convolutions' scratch and transformed weights): from 2 MiB aligned to 2 MiB
   and advised as transparent huge pages, so that walks over many planes megabytes apart miss the
   TLB less (NCELAB_HUGEPAGES=0: no advice); below, 64-byte aligned. Freed with free().
   nc_calloc_big: calloc (pages never written cost no RSS) with the 2 MiB pages inside it advised. */
void *nc_malloc_big_(size_t n, const char *file, int line);
void *nc_calloc_big_(size_t count, size_t size, const char *file, int line);
#define nc_malloc_big(n) nc_malloc_big_((n), __FILE__, __LINE__)
#define nc_calloc_big(c, s) nc_calloc_big_((c), (s), __FILE__, __LINE__)

/* nc_read_file: reads a whole file into a NUL-terminated malloc'd buffer (*len excludes the
   NUL). Fails with NC_EFILE naming the path. */
int nc_read_file(const char *path, char **data, size_t *len, NcError *err);

/* nc_read_regular: like nc_read_file, for inputs whose size must be known and bounded: the path
   must be a regular file (a device such as /dev/zero, a pipe or a directory is NC_EFILE: "not a
   regular file") of at most max bytes; exactly the size fstat reports is read, in one buffer.
   nc_regular_size: the same checks (through stat), giving the size without reading. */
int nc_read_regular(const char *path, size_t max, char **data, size_t *len, NcError *err);
int nc_regular_size(const char *path, size_t max, size_t *size, NcError *err);

/* nc_write_atomic: writes len bytes to path through a temporary file in the same directory,
   fsync, then rename, so that path holds either its old content or the new one, never half.
   What path already is decides: a symlink is followed and its target replaced the same way (a
   dangling one creates its target, like cp); a character device or a FIFO is opened and written,
   never replaced, and no file is created beside it; a directory, block device or socket is
   refused. Temporary files of killed writers (path.tmp.<pid> of a process that is gone) are
   removed. Parent directories that do not exist are created (mkdir -p), so `--json out/t.json`
   needs no `out/` beforehand. Fails with NC_EFILE naming the path (or the directory that could
   not be created). */
int nc_write_atomic(const char *path, const void *data, size_t len, NcError *err);

/* nc_mkdir_p: creates a directory and its parents (like mkdir -p). */
int nc_mkdir_p(const char *path, NcError *err);

/* nc_dir_writable: NC_OK when a file can be written into dir (a probe file is written through
   nc_write_atomic and removed); NC_EFILE naming dir otherwise. */
int nc_dir_writable(const char *dir, NcError *err);

/* nc_dir_lock: an exclusive lock on the directory dir, held until nc_dir_unlock(*fd) or the end
   of the process (flock on dir/.ncelab.lock, which records the holder's pid, so that a kill -9
   releases it). NC_EUSAGE naming dir and the holder's pid when another process holds it, NC_EFILE
   when the lock file cannot be made; *fd = -1 then. */
int nc_dir_lock(const char *dir, int *fd, NcError *err);
void nc_dir_unlock(int fd);

/* nc_path_join: "dir/name" in a malloc'd string. */
char *nc_path_join(const char *dir, const char *name);

/* Growing string buffer, for rendering text outputs. */
typedef struct {
    char *s;
    size_t len, cap;
} NcBuf;
void nc_buf_printf(NcBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void nc_buf_free(NcBuf *b);

/* nc_parse_double / nc_parse_long: the whole string must be a decimal number: an optional sign,
   digits with an optional fraction, an optional exponent ("3", "-0.5", "1e6"); no spaces, no
   hexadecimal, no inf or nan. double: finite (overflow and underflow are refused); long: an
   integer value (digits alone are read exactly; "1e6" and "2.5e3" are integers too) in
   [lo, hi]. what names the option for the message, which quotes the value; NC_EUSAGE. */
int nc_parse_double(const char *s, const char *what, double *out, NcError *err);
int nc_parse_long(const char *s, const char *what, long lo, long hi, long *out, NcError *err);

/* nc_parse_klist: comma-separated items, each an integer k ("1,2,4", "1e6") or a range a..b,
   the powers of two times a up to b ("1..4096" is 1, 2, 4, ..., 4096); items mix ("1,10..1000").
   Values in [1, 1e9]; the result is sorted and de-duplicated. An empty item ("1,,2", "4,") or
   one nc_parse_long refuses is NC_EUSAGE naming what and the item. *ks is malloc'd. */
int nc_parse_klist(const char *s, const char *what, long **ks, int *n, NcError *err);

/* The contrastive loss, one enum for the theory engine and the trainer: InfoNCE or the binary
   NCE of Gutmann and Hyvarinen. nc_loss_parse reads "infonce" or "nce" (NC_EUSAGE naming what);
   nc_loss_name gives the name back. */
typedef enum { NC_LOSS_INFONCE = 0, NC_LOSS_NCE = 1 } NcLoss;
int nc_loss_parse(const char *s, const char *what, NcLoss *out, NcError *err);
const char *nc_loss_name(NcLoss loss);

/* nc_now: monotonic seconds. */
double nc_now(void);

/* nc_peak_rss_mb: peak resident set size of this process in MiB. */
double nc_peak_rss_mb(void);

#endif
