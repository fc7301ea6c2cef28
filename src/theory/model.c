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

int theory_support_load(const char *path, int *N, int *M, double **P, NcError *err) {
    cJSON *doc;
    *P = NULL;
    int rc = json_load(path, &doc, err);
    if (rc) return rc;
    const cJSON *rows = cJSON_IsObject(doc) ? cJSON_GetObjectItemCaseSensitive(doc, "support") : doc;
    if (!cJSON_IsArray(rows) || cJSON_GetArraySize(rows) < 2) {
        cJSON_Delete(doc);
        return nc_fail(err, NC_EFILE, "%s: expected an N x M matrix (array of at least 2 rows)", path);
    }
    int n = cJSON_GetArraySize(rows), m = -1, r = 0;
    if (n > 2000) {
        cJSON_Delete(doc);
        return nc_fail(err, NC_EFILE, "%s: %d classes is more than 2000", path, n);
    }
    double *p = NULL;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows) {
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) < 1) {
            rc = nc_fail(err, NC_EFILE, "%s: row %d is not a non-empty array", path, r + 1);
            break;
        }
        if (m < 0) {
            m = cJSON_GetArraySize(row);
            if (m > 2000) { rc = nc_fail(err, NC_EFILE, "%s: %d points is more than 2000", path, m); break; }
            p = nc_calloc((size_t)n * m, sizeof(double));
        } else if (cJSON_GetArraySize(row) != m) {
            rc = nc_fail(err, NC_EFILE, "%s: row %d has %d entries, row 1 has %d", path, r + 1,
                         cJSON_GetArraySize(row), m);
            break;
        }
        int j = 0;
        double sum = 0;
        const cJSON *v;
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

int theory_gram_load(const char *path, int *M, double **G, NcError *err) {
    cJSON *doc;
    *G = NULL;
    int rc = json_load(path, &doc, err);
    if (rc) return rc;
    int m = cJSON_IsArray(doc) ? cJSON_GetArraySize(doc) : 0;
    if (m < 2) rc = nc_fail(err, NC_EFILE, "%s: expected a square matrix (array of at least 2 rows)", path);
    else if (m > 2000) rc = nc_fail(err, NC_EFILE, "%s: %d points is more than 2000", path, m);
    if (rc) { cJSON_Delete(doc); return rc; }
    double *g = nc_malloc(sizeof(double) * (size_t)m * m);
    int r = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, doc) {
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != m) {
            rc = nc_fail(err, NC_EFILE, "%s: row %d has %d entries, expected %d (not square)", path, r + 1,
                         cJSON_IsArray(row) ? cJSON_GetArraySize(row) : 0, m);
            break;
        }
        int c = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, row) {
            if (!cJSON_IsNumber(v)) {
                rc = nc_fail(err, NC_EFILE, "%s: entry (%d,%d) is not a number", path, r + 1, c + 1);
                break;
            }
            g[(size_t)r * m + c++] = v->valuedouble;
        }
        if (rc) break;
        r++;
    }
    cJSON_Delete(doc);
    if (rc) { free(g); return rc; }
    *M = m;
    *G = g;
    return NC_OK;
}

int theory_model_init(TheoryModel *m, int N, const double *rho, const double *P, int M,
                      double R, int d, NcLoss loss, NcError *err) {
    memset(m, 0, sizeof *m);
    if (N < 2) return nc_fail(err, NC_EUSAGE, "--classes: need at least 2 classes, got %d", N);
    if (!P) M = N;
    if (N > 2000 || M > 2000) return nc_fail(err, NC_EUSAGE, "--classes: at most 2000 classes and points");
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
