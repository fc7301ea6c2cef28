// api.h -- the small, stable C interface for other languages (the Python package's ctypes
// binding): plain numbers, arrays and strings in and out. Every function that can fail returns
// 0 or an NcError code (1: a file or matrix that is malformed or breaks the model's constraints,
// 2: a bad value, 3: a numerical failure) and writes the library's one-line
// message into the caller's buffer msg (msg_len bytes, NUL-terminated, truncated to fit); nothing
// is printed and nothing exits. These are the only symbols libncelab.so exports
// (cmake -DNCELAB_SHARED=ON); the static library has them too.
#ifndef NCELAB_API_H
#define NCELAB_API_H

#include <stddef.h>
#include <stdint.h>

#define NCELAB_API __attribute__((visibility("default")))

/* ncelab_version: "0.1.0", the version that checkpoints and JSON results record. */
NCELAB_API const char *ncelab_version(void);

/* ncelab_free: releases a buffer an ncelab_ function returned (NULL: nothing). */
NCELAB_API void ncelab_free(void *p);

/* The latent-class model of `ncelab theory` (theory.h), from what its options take:
     N            classes (ignored when support_path gives them; must agree when both, N > 0)
     rho          "uniform", "zipf:S" or "p1,p2,...,pN" (theory_rho_parse; NULL: uniform)
     support      NULL (non-overlapping classes, M = N) or an N x M row-stochastic matrix,
                  row-major: entries finite and >= 0, rows summing to 1 within 1e-9, every
                  point of positive probability under some class
     support_path NULL, or a JSON support file (theory_support_load); not with support
     R            the norm bound, (0, 20]
     loss         "infonce" or "nce" (NULL: infonce) */

/* ncelab_theory_solve: `ncelab theory --json`: for each k of k_list ("1,2,4" or "1..4096",
   powers of two in a range; sorted, duplicates dropped) the certified optimum, its structure and
   downstream losses. dim: the representation's dimension (<= 0: M); restarts: random starts per
   k besides the warm start (0..100); seed: theirs. *json (free with ncelab_free) gets the
   document the CLI writes, {"model": {...}, "results": [...]} (DESIGN.md section 4), compact. */
NCELAB_API int ncelab_theory_solve(int N, const char *rho, const double *support, int M, const char *support_path,
                                   double R, int dim, const char *loss, const char *k_list, int restarts,
                                   uint64_t seed, char **json, char *msg, size_t msg_len);

/* ncelab_theory_loss: `ncelab theory eval`: the exact population loss at the Gram matrix G
   (MG x MG, row-major; MG must equal the model's number of points M; symmetric, positive
   semidefinite, diagonal <= R^2: theory_check_gram) for k negatives (1..1e9), into *loss, and its
   gradient dL/dG into grad (MG x MG, or NULL). */
NCELAB_API int ncelab_theory_loss(int N, const char *rho, const double *support, int M, const char *support_path,
                                  double R, const char *loss, int64_t k, const double *G, int MG, double *loss_out,
                                  double *grad, char *msg, size_t msg_len);

#endif
