// model.c -- the latent-class model: class prior, class-conditional supports, derived laws.
#define _POSIX_C_SOURCE 200809L
#include "ncelab/jsonio.h"
#include "ncelab/theory.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int theory_rho_parse(const char *spec, int N, double *rho, NcError *err) {
    if (N < 2) return nc_fail(err, NC_EUSAGE, "--classes: need at least 2 classes, got %d", N);
    if (!spec || strcmp(spec, "uniform") == 0) {
        for (int c = 0; c < N; c++) rho[c] = 1.0 / N;
        return NC_OK;
    }
    if (strncmp(spec, "zipf:", 5) == 0) {
        double s;
        if (nc_parse_double(spec + 5, "--rho zipf:S", &s, err)) return NC_EUSAGE;
        if (s < 0 || s > 20) return nc_fail(err, NC_EUSAGE, "--rho: zipf exponent must be in [0, 20], got %g", s);
        double z = 0;
        for (int c = 0; c < N; c++) z += rho[c] = pow(c + 1.0, -s);
        for (int c = 0; c < N; c++) rho[c] /= z;
        return NC_OK;
    }
    char *copy = nc_strdup(spec);
    int n = 0, rc = NC_OK;
    double sum = 0;
    for (char *tok = copy, *next; tok; tok = next) {
        next = strchr(tok, ',');
        if (next) *next++ = '\0';
        double v;
        if (!*tok) { rc = nc_fail(err, NC_EUSAGE, "--rho: probability %d of '%s' is empty", n + 1, spec); break; }
        if (nc_parse_double(tok, "--rho", &v, NULL)) {
            rc = nc_fail(err, NC_EUSAGE, "--rho: '%s' is not a number (expected uniform, zipf:S or p1,p2,...)", tok);
            break;
        }
        if (!(v > 0)) { rc = nc_fail(err, NC_EUSAGE, "--rho: probability %d is %g, must be positive", n + 1, v); break; }
        if (n < N) rho[n] = v;
        n++;
        sum += v;
    }
    free(copy);
    if (rc) return rc;
    if (n != N) return nc_fail(err, NC_EUSAGE, "--rho: %d probabilities given for %d classes", n, N);
    if (fabs(sum - 1.0) > 1e-9) return nc_fail(err, NC_EUSAGE, "--rho: probabilities sum to %.12g, not 1", sum);
    return NC_OK;
}

/* The most JSON values a file of THEORY_MAX_POINTS rows of THEORY_MAX_POINTS numbers holds (with
   room for an enclosing object). The parser's tree takes about 64 bytes a value, 20 to 30 times
   the bytes of a file of empty rows or one-digit numbers: the values are counted before parsing. */
#define THEORY_MAX_VALUES ((size_t)(THEORY_MAX_POINTS + 2) * (THEORY_MAX_POINTS + 2))

/* load_rows: the JSON file at path, which must be a regular file of at most THEORY_MAX_FILE bytes
   (*size: its size) and THEORY_MAX_VALUES values, and in it the array of rows (doc itself, or
   doc's "support" when key is given and doc is an object). The rows must number
   2..THEORY_MAX_POINTS and be arrays of 1..THEORY_MAX_POINTS entries, all as many as the first
   (square: as many as there are rows), which the file's size must be able to hold. All of this is
   checked before anything is sized from the file. On NC_OK the caller owns *doc. */
static int load_rows(const char *path, const char *key, int square, cJSON **doc, const cJSON **rows, int *n,
                     int *m, size_t *size, NcError *err) {
    *doc = NULL;
    char *text;
    int rc = nc_read_regular(path, THEORY_MAX_FILE, &text, size, err);
    if (rc) return rc;
    size_t values = 1;  /* every value but the first follows a ',', a '[' or a ':' */
    for (size_t i = 0; i < *size; i++) values += text[i] == ',' || text[i] == '[' || text[i] == ':';
    free(text);
    if (values > THEORY_MAX_VALUES)
        return nc_fail(err, NC_EFILE, "%s: up to %zu JSON values, more than a %d x %d matrix holds", path, values,
                       THEORY_MAX_POINTS, THEORY_MAX_POINTS);
    if ((rc = json_load(path, doc, err))) return rc;
    const cJSON *r = key && cJSON_IsObject(*doc) ? cJSON_GetObjectItemCaseSensitive(*doc, key) : *doc;
    *n = cJSON_IsArray(r) ? cJSON_GetArraySize(r) : 0;
    *m = square ? *n : *n >= 2 && cJSON_IsArray(r->child) ? cJSON_GetArraySize(r->child) : 0;
    if (*n < 2)
        rc = nc_fail(err, NC_EFILE, "%s: expected %s (array of at least 2 rows)", path,
                     square ? "a square matrix" : "an N x M matrix");
    else if (*n > THEORY_MAX_POINTS)
        rc = nc_fail(err, NC_EFILE, "%s: %d rows is more than the %d allowed", path, *n, THEORY_MAX_POINTS);
    else if (*m > THEORY_MAX_POINTS)
        rc = nc_fail(err, NC_EFILE, "%s: %d points is more than the %d allowed", path, *m, THEORY_MAX_POINTS);
    /* n rows of m numbers take at least n (2m + 1) bytes: "[x,...,x]" and a comma each */
    else if (*m > 0 && (size_t)*n * (2 * (size_t)*m + 1) > *size)
        rc = nc_fail(err, NC_EFILE, "%s: %zu bytes cannot hold %d rows of %d numbers", path, *size, *n, *m);
    int i = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, r) {
        if (rc) break;
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) < 1)
            rc = nc_fail(err, NC_EFILE, "%s: row %d is not a non-empty array", path, i + 1);
        else if (cJSON_GetArraySize(row) != *m)
            rc = square ? nc_fail(err, NC_EFILE, "%s: row %d has %d entries, expected %d (not square)", path, i + 1,
                                  cJSON_GetArraySize(row), *m)
                        : nc_fail(err, NC_EFILE, "%s: row %d has %d entries, row 1 has %d", path, i + 1,
                                  cJSON_GetArraySize(row), *m);
        i++;
    }
    if (rc) {
        cJSON_Delete(*doc);
        *doc = NULL;
        return rc;
    }
    *rows = r;
    return NC_OK;
}

int theory_gram_load(const char *path, int *M, double **G, NcError *err) {
    cJSON *doc;
    const cJSON *rows;
    int n, m;
    size_t size;
    (void)m;
    *G = NULL;
    int rc = load_rows(path, NULL, 1, &doc, &rows, &n, &m, &size, err);
    if (rc) return rc;
    double *g = nc_malloc(sizeof(double) * (size_t)n * n);
    int r = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows) {
        if (rc) break;
        int c = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, row) {
            if (!cJSON_IsNumber(v)) {
                rc = nc_fail(err, NC_EFILE, "%s: entry (%d,%d) is not a number", path, r + 1, c + 1);
                break;
            }
            g[(size_t)r * n + c++] = v->valuedouble;
        }
        r++;
    }
    cJSON_Delete(doc);
    if (rc) { free(g); return rc; }
    *M = n;
    *G = g;
    return NC_OK;
}

int theory_support_check(int N, int M, const double *P, const char *what, NcError *err) {
    for (int r = 0; r < N; r++) {
        double sum = 0;
        for (int j = 0; j < M; j++) {
            double v = P[(size_t)r * M + j];
            if (!isfinite(v) || v < 0)
                return nc_fail(err, NC_EUSAGE, "%s: row %d, entry %d is %g, not a finite number >= 0", what, r + 1, j + 1, v);
            sum += v;
        }
        if (fabs(sum - 1.0) > 1e-9)
            return nc_fail(err, NC_EUSAGE, "%s: row %d sums to %.12g, not 1 (rows are distributions)", what, r + 1, sum);
    }
    for (int j = 0; j < M; j++) {
        double col = 0;
        for (int c = 0; c < N; c++) col += P[(size_t)c * M + j];
        if (col <= 0) return nc_fail(err, NC_EUSAGE, "%s: point %d has probability 0 under every class", what, j + 1);
    }
    return NC_OK;
}

int theory_support_load(const char *path, int *N, int *M, double **P, NcError *err) {
    cJSON *doc;
    const cJSON *rows;
    int n, m;
    size_t size;
    *P = NULL;
    int rc = load_rows(path, "support", 0, &doc, &rows, &n, &m, &size, err);
    if (rc) return rc;
    double *p = nc_calloc((size_t)n * m, sizeof(double)), sum;
    int r = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows) {
        int j = 0;
        const cJSON *v;
        sum = 0;
        cJSON_ArrayForEach(v, row) {
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0) {
                rc = nc_fail(err, NC_EFILE, "%s: row %d, entry %d is not a finite number >= 0", path, r + 1, j + 1);
                break;
            }
            p[(size_t)r * m + j++] = v->valuedouble;
            sum += v->valuedouble;
        }
        if (rc) break;
        if (fabs(sum - 1.0) > 1e-9) {
            rc = nc_fail(err, NC_EFILE, "%s: row %d sums to %.12g, not 1 (rows are distributions)", path, r + 1, sum);
            break;
        }
        r++;
    }
    cJSON_Delete(doc);
    for (int j = 0; rc == NC_OK && j < m; j++) {
        double col = 0;
        for (int c = 0; c < n; c++) col += p[(size_t)c * m + j];
        if (col <= 0) rc = nc_fail(err, NC_EFILE, "%s: point %d has probability 0 under every class", path, j + 1);
    }
    if (rc) { free(p); return rc; }
    *N = n;
    *M = m;
    *P = p;
    return NC_OK;
}

int theory_model_init(TheoryModel *m, int N, const double *rho, const double *P, int M,
                      double R, int d, NcLoss loss, NcError *err) {
    memset(m, 0, sizeof *m);
    if (N < 2) return nc_fail(err, NC_EUSAGE, "--classes: need at least 2 classes, got %d", N);
    if (!P) M = N;
    if (N > THEORY_MAX_POINTS || M > THEORY_MAX_POINTS)
        return nc_fail(err, NC_EUSAGE, "--classes: at most %d classes and points", THEORY_MAX_POINTS);
    if (!(R > 0) || R > 20) return nc_fail(err, NC_EUSAGE, "--norm: R must be in (0, 20], got %g", R);
    if (d <= 0) d = M;
    if (d > M) return nc_fail(err, NC_EUSAGE, "--dim: %d is more than the number of points %d", d, M);
    m->N = N; m->M = M; m->d = d; m->R = R; m->loss = loss; m->h = 0.25;
    m->rho = nc_malloc(sizeof(double) * N);
    memcpy(m->rho, rho, sizeof(double) * N);
    m->P = nc_calloc((size_t)N * M, sizeof(double));
    if (P) {
        memcpy(m->P, P, sizeof(double) * N * M);
        m->overlapping = 1;
    } else {
        for (int c = 0; c < N; c++) m->P[(size_t)c * M + c] = 1.0;
    }
    m->D = nc_calloc(M, sizeof(double));
    m->pair = nc_calloc((size_t)M * M, sizeof(double));
    for (int c = 0; c < N; c++) {
        const double *pc = m->P + (size_t)c * M;
        for (int x = 0; x < M; x++) {
            m->D[x] += rho[c] * pc[x];
            if (pc[x] == 0) continue;
            for (int y = 0; y < M; y++) m->pair[(size_t)x * M + y] += rho[c] * pc[x] * pc[y];
        }
    }
    return NC_OK;
}

void theory_model_free(TheoryModel *m) {
    free(m->rho); free(m->P); free(m->D); free(m->pair);
    memset(m, 0, sizeof *m);
}

/* 1 - tau_k = sum_c rho_c (1 - rho_c)^k, the probability that no negative collides. */
static double theory_no_collision(const TheoryModel *m, long k) {
    double s = 0;
    for (int c = 0; c < m->N; c++) s += m->rho[c] * exp((double)k * log1p(-m->rho[c]));
    return s;
}

double theory_collision_prob(const TheoryModel *m, long k) {
    return 1.0 - theory_no_collision(m, k);
}

double theory_saunshi_bound(const TheoryModel *m, long k, double loss) {
    double s = theory_no_collision(m, k);
    if (!(s > 0)) return INFINITY;
    return (loss - (1.0 - s) * log(2.0)) / s;
}
