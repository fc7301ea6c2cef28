// theory.h -- the latent-class model: exact population loss for any k, certified optimum, downstream.
#ifndef NCELAB_THEORY_H
#define NCELAB_THEORY_H

#include <stdint.h>

#include "ncelab/core.h"

/* The latent-class model of Saunshi et al. (2019). Classes c = 0..N-1 with prior rho; class c
   draws points x = 0..M-1 from row c of P (N x M, row-stochastic). Default: M = N, P = I
   (non-overlapping classes). Representations f: points -> R^d with |f(x)| <= R. */
typedef struct {
    int N, M, d;
    double R;
    NcLoss loss;           /* NC_LOSS_INFONCE or NC_LOSS_NCE (core.h) */
    int overlapping;       /* 0 when P is the identity */
    double *rho;           /* (N) class prior */
    double *P;             /* (N, M) class-conditional distributions */
    double *D;             /* (M) marginal D(y) = sum_c rho_c P[c][y]: the negatives' law */
    double *pair;          /* (M, M) pi(x, x+) = sum_c rho_c P[c][x] P[c][x+] */
    double h;              /* quadrature step in u = log t (default 0.25) */
} TheoryModel;

/* theory_rho_parse: "uniform", "zipf:S" (rho_c proportional to c^-S, c = 1..N, S >= 0) or an
   explicit list "p1,p2,..." of N positive numbers summing to 1 within 1e-9. rho has N slots.
   NC_EUSAGE naming --rho and the problem. */
int theory_rho_parse(const char *spec, int N, double *rho, NcError *err);

/* Bounds on what the model and its input files may ask for: classes and points, and the size of
   a JSON file read by theory_support_load or theory_gram_load (a 2000 x 2000 matrix of numbers
   written in full precision takes about 100 MB). */
#define THEORY_MAX_POINTS 2000
#define THEORY_MAX_FILE ((size_t)256 << 20)

/* theory_support_load: reads a JSON N x M row-stochastic matrix (an array of rows, or an object
   {"support": rows}); entries finite and >= 0, rows summing to 1 within 1e-9, every point of
   positive probability under some class. *P is malloc'd. NC_EFILE naming the file and row; also
   for anything but a regular file of at most THEORY_MAX_FILE bytes, or N or M above
   THEORY_MAX_POINTS. Every row's length is checked before anything is allocated. */
int theory_support_load(const char *path, int *N, int *M, double **P, NcError *err);

/* theory_gram_load: reads a JSON M x M matrix (an array of M rows of M numbers), 2 <= M <=
   THEORY_MAX_POINTS, into *G (malloc'd, row-major). The file must be a regular file of at most
   THEORY_MAX_FILE bytes, and at least the M (2M + 1) bytes M rows of M numbers take: the shape is
   checked against the file before *G is allocated. NC_EFILE naming the file and the row or
   entry. (Symmetry and the model's constraints: theory_check_gram.) */
int theory_gram_load(const char *path, int *M, double **G, NcError *err);

/* theory_support_check: the checks theory_support_load makes, on an N x M matrix in memory
   (row-major): entries finite and >= 0, rows summing to 1 within 1e-9, every point of positive
   probability under some class. NC_EUSAGE naming what, the row and the entry. */
int theory_support_check(int N, int M, const double *P, const char *what, NcError *err);

/* theory_model_init: builds the model (copies rho and P; P == NULL means the identity with
   M = N). d <= 0 means d = M. R must be in (0, 20]. */
int theory_model_init(TheoryModel *m, int N, const double *rho, const double *P, int M,
                      double R, int d, NcLoss loss, NcError *err);
void theory_model_free(TheoryModel *m);

/* Workspace of the one-dimensional integral, sized for up to n outcomes. */
typedef struct {
    int cap_n, cap_q;
    double *ez;            /* (n, Q) exp(-s_q e^{g_y}) */
    double *s, *wq;        /* (Q) nodes s_q = e^{u_q} and weights; s owns the (7, Q) block */
    double *om, *ps;       /* (Q) 1 - psi(s_q), psi(s_q) */
    double *f, *pk1, *H;   /* (Q) 1 - psi^k, psi^{k-1}, gradient weights */
} NceWork;
void nce_work_free(NceWork *w);

/* nce_anchor: the expectation over k i.i.d. negatives Y_1..Y_k ~ p (n outcomes) of
     sum_j pw[j] * log(1 + sum_i exp(g[Y_i] - a[j]))          (np positives j)
   computed through E log(1+S) = int_0^inf e^{-t} (1 - phi(t)^k) dt/t, phi(t) = E e^{-t w},
   on a trapezoid rule in u = log t with step h; its cost does not depend on k (1..1e9).
   Adds the derivatives into dg[y] (d/dg_y) and da[j] (d/da_j) when non-NULL. */
double nce_anchor(int n, const double *g, const double *p, int np, const double *a,
                  const double *pw, long k, double h, double *dg, double *da, NceWork *w);

/* theory_loss: the exact population loss L_k(G) at the Gram matrix G (M x M, symmetric) and,
   if grad is non-NULL, its gradient C = dL/dG (M x M, symmetric: <C, dG> = dL for symmetric dG).
   InfoNCE: E log(1 + sum_i exp(G[x][x_i] - G[x][x+])); NCE: see docs/theory.md. */
double theory_loss(const TheoryModel *m, long k, const double *G, double *grad);

/* Certificate of global optimality for the convex program min L_k(G), G PSD, G_xx <= R^2. */
typedef struct {
    double gap;            /* rigorous bound on L(G) - L*: <C,G> + R^2 sum lambda */
    double min_eig;        /* smallest eigenvalue of Z = C + Diag(lambda) at the stationarity lambda */
    double kkt_residual;   /* max_x |(C F)_x + lambda_x F_x| + lambda_x (R^2 - G_xx) */
    int optimal;           /* gap <= 1e-9 * max(1, loss) */
} TheoryCert;

/* theory_certify: certificate at G (need not come from the solver). NC_ENUM if LAPACK fails. */
int theory_certify(const TheoryModel *m, long k, const double *G, TheoryCert *cert, NcError *err);

/* Downstream losses of the mean classifier mu_c = E_{x~D_c} f(x), logits f(x).mu_j. */
typedef struct {
    double mean_ce;           /* N-way cross-entropy, weighted by rho */
    double mean_ce_balanced;  /* N-way cross-entropy, classes weighted equally */
    double mean_acc;          /* accuracy weighted by rho (ties share credit) */
    double avg_binary_ce;     /* Saunshi et al.'s average binary task loss */
    double kplus1_ce;         /* (k+1)-way task: anchor class vs k classes i.i.d. from rho | != c */
} TheoryDownstream;

/* Structure of a representation. */
typedef struct {
    double simplex_deviation; /* max_{i<j} |cos(mu_i, mu_j) + 1/(N-1)| */
    double class_spread;      /* max_c E_{D_c}|f - mu_c|^2 (0: classes collapse) */
    double min_norm, max_norm;
    int rank;                 /* eigenvalues of G above 1e-6 R^2 */
} TheoryStructure;

void theory_downstream(const TheoryModel *m, long k, const double *G, TheoryDownstream *ds);
void theory_structure(const TheoryModel *m, const double *G, TheoryStructure *st);

/* theory_collision_prob: tau_k = 1 - sum_c rho_c (1 - rho_c)^k. */
double theory_collision_prob(const TheoryModel *m, long k);
/* theory_saunshi_bound: (L_k - tau_k log 2) / (1 - tau_k), the bound of Arora et al. (2019,
   Thm 4.1, natural log, extended to k negatives) on kplus1_ce; +inf when tau_k = 1. */
double theory_saunshi_bound(const TheoryModel *m, long k, double loss);

/* Solver options and result. */
typedef struct {
    int restarts;          /* random starts besides the warm start (default 2) */
    int max_iter;          /* L-BFGS iterations per start (default 3000) */
    uint64_t seed;
} TheorySolveOpts;

typedef struct {
    long k;
    double loss;
    double *G;             /* (M, M) */
    double *V;             /* (M, d+1) unit rows; F = R V[:, :d] */
    int iters, starts;
    TheoryCert cert;
    TheoryDownstream ds;
    TheoryStructure st;
    int unique;            /* 0 when starts reach the same loss but different downstream values */
    TheoryDownstream ds_lo, ds_hi;  /* range over the optimal starts */
    double collision_prob, saunshi_bound;
    double seconds;
} TheorySolution;

void theory_solve_opts_default(TheorySolveOpts *o);
/* theory_solve: minimises L_k over G = F F^T with rows of F in the R-ball (Burer-Monteiro, rank
   d, L-BFGS), from a warm start V0 ((M, d+1) or NULL) and o->restarts random starts; keeps the
   best, certifies it, computes its downstream losses and structure. */
int theory_solve(const TheoryModel *m, long k, const double *V0, const TheorySolveOpts *o,
                 TheorySolution *out, NcError *err);
void theory_solution_free(TheorySolution *s);

/* theory_sweep: solves for each k of ks (increasing), each solve warm-started from the
   previous optimum; out has nk slots. progress (may be NULL) is called after each k. */
typedef void (*TheoryProgress)(void *ctx, int done, int total);
int theory_sweep(const TheoryModel *m, const long *ks, int nk, const TheorySolveOpts *o,
                 TheorySolution *out, TheoryProgress progress, void *ctx, NcError *err);

/* theory_support_banded: an N x M support (M a multiple of N) in which class c puts mass
   1 - eps uniformly on its own block of M/N points and eps uniformly on the others:
   overlapping classes for tests and benchmarks. *P is malloc'd. */
void theory_support_banded(int N, int M, double eps, double **P);

/* theory_check_gram: checks a user's Gram matrix: M x M, symmetric (1e-9 relative), positive
   semidefinite (smallest eigenvalue >= -1e-9 max|G|), diagonal <= R^2 (1e-9). what names it. */
int theory_check_gram(const TheoryModel *m, const double *G, const char *what, NcError *err);

/* theory_min_eig: smallest eigenvalue of a symmetric n x n matrix (LAPACK dsyevr). */
int theory_min_eig(const double *A, int n, double *lmin);

#endif
