// solve.c -- Burer-Monteiro for min L_k(G), G = F F^T, rows of F in the R-ball: L-BFGS + certificate.
//
// A row f_x in the closed R-ball is written f_x = R P v_x / |v_x| with v_x in R^{d+1} and P the
// projection onto the first d coordinates: the unit sphere of R^{d+1} projects onto the whole
// ball, rows on the boundary are those with v_x[d] = 0, and interior rows are reached at
// finite parameters. Each iterate is projected (rows renormalised to the unit sphere), so the
// method is projected L-BFGS on a product of spheres. dL/dF = 2 C F with C = dL/dG, and
// dL/dv_x = R (I - v v^T) P^T (2 C F)_x for unit v_x.
#include "ncelab/theory.h"
#include "ncelab/rng.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void theory_solve_opts_default(TheorySolveOpts *o) {
    o->restarts = 2;
    o->max_iter = 3000;
    o->seed = 1;
}

typedef struct {
    const TheoryModel *m;
    long k;
    int M, d, D1;        /* D1 = d + 1 */
    double *F, *G, *C, *CF;
    double gscale;       /* max_x |R (2 C F)_x| at the last evaluation: the scale of the gradient */
    long evals;
} Objective;

static void rows_normalise(double *V, int M, int D1) {
    for (int x = 0; x < M; x++) {
        double *v = V + (size_t)x * D1, n = 0.0;
        for (int j = 0; j < D1; j++) n += v[j] * v[j];
        n = sqrt(n);
        if (n == 0) { v[D1 - 1] = 1.0; continue; }
        for (int j = 0; j < D1; j++) v[j] /= n;
    }
}

static void gram_of(Objective *o, const double *V) {
    int M = o->M, d = o->d, D1 = o->D1;
    double R = o->m->R;
    for (int x = 0; x < M; x++)
        for (int j = 0; j < d; j++) o->F[(size_t)x * d + j] = R * V[(size_t)x * D1 + j];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, M, d, 1.0, o->F, d, o->F, d, 0.0, o->G, M);
}

/* f(V) and its gradient dV (V has unit rows). */
static double objective(Objective *o, const double *V, double *dV) {
    int M = o->M, d = o->d, D1 = o->D1;
    gram_of(o, V);
    double L = theory_loss(o->m, o->k, o->G, o->C);
    o->evals++;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, d, M, 2.0 * o->m->R, o->C, M, o->F, d, 0.0, o->CF, d);
    for (int x = 0; x < M; x++) {
        const double *v = V + (size_t)x * D1;
        double *g = dV + (size_t)x * D1, dot = 0.0, nrm = 0.0;
        for (int j = 0; j < d; j++) { g[j] = o->CF[(size_t)x * d + j]; dot += g[j] * v[j]; nrm += g[j] * g[j]; }
        if (x == 0 || sqrt(nrm) > o->gscale) o->gscale = sqrt(nrm);
        g[d] = 0.0;
        for (int j = 0; j < D1; j++) g[j] -= dot * v[j];
    }
    return L;
}

static double dotv(const double *a, const double *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* L-BFGS from V (unit rows), in place. Returns the final loss. */
static double lbfgs(Objective *o, double *V, int max_iter, int *iters) {
    enum { MEM = 12 };
    size_t n = (size_t)o->M * o->D1;
    double *g = nc_malloc(sizeof(double) * n), *gn = nc_malloc(sizeof(double) * n);
    double *dir = nc_malloc(sizeof(double) * n), *Vn = nc_malloc(sizeof(double) * n);
    double *S = nc_malloc(sizeof(double) * n * MEM), *Y = nc_malloc(sizeof(double) * n * MEM);
    double rhoh[MEM], alpha[MEM];
    int head = 0, used = 0, it = 0, fails = 0;
    double f = objective(o, V, g), best_gmax = INFINITY;
    int since_best = 0;
    for (it = 0; it < max_iter; it++) {
        /* stop at a relative gradient of 1e-13, or when it has not halved in 200 iterations */
        double gmax = 0.0;
        for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
        if (gmax <= 1e-13 * o->gscale) break;
        if (gmax < 0.5 * best_gmax) { best_gmax = gmax; since_best = 0; }
        else if (++since_best > 200) break;
        /* two-loop recursion */
        for (size_t i = 0; i < n; i++) dir[i] = -g[i];
        for (int t = 0; t < used; t++) {
            int s = (head - 1 - t + MEM) % MEM;
            alpha[s] = rhoh[s] * dotv(S + s * n, dir, n);
            for (size_t i = 0; i < n; i++) dir[i] -= alpha[s] * Y[s * n + i];
        }
        if (used > 0) {
            int s = (head - 1 + MEM) % MEM;
            double gamma = dotv(S + s * n, Y + s * n, n) / dotv(Y + s * n, Y + s * n, n);
            for (size_t i = 0; i < n; i++) dir[i] *= gamma;
        } else {
            double gn2 = sqrt(dotv(g, g, n));
            for (size_t i = 0; i < n; i++) dir[i] *= 0.1 / gn2;
        }
        for (int t = used - 1; t >= 0; t--) {
            int s = (head - 1 - t + MEM) % MEM;
            double beta = rhoh[s] * dotv(Y + s * n, dir, n);
            for (size_t i = 0; i < n; i++) dir[i] += (alpha[s] - beta) * S[s * n + i];
        }
        double slope = dotv(g, dir, n);
        if (!(slope < 0)) {  /* not a descent direction: restart from steepest descent */
            used = 0;
            for (size_t i = 0; i < n; i++) dir[i] = -g[i];
            slope = -dotv(g, g, n);
        }
        /* backtracking (Armijo) along the projected path */
        double step = 1.0, fn = f;
        int ok = 0;
        for (int ls = 0; ls < 40; ls++) {
            for (size_t i = 0; i < n; i++) Vn[i] = V[i] + step * dir[i];
            rows_normalise(Vn, o->M, o->D1);
            fn = objective(o, Vn, gn);
            if (fn <= f + 1e-4 * step * slope) { ok = 1; break; }
            /* at the noise level of f, accept a step that reduces the gradient */
            if (fn <= f + 4e-16 * fabs(f)) {
                double gnmax = 0.0;
                for (size_t i = 0; i < n; i++) gnmax = fmax(gnmax, fabs(gn[i]));
                if (gnmax < gmax) { ok = 1; break; }
            }
            step *= 0.5;
        }
        if (!ok) {
            if (++fails >= 2 || used == 0) break;
            used = 0;  /* forget curvature and retry from steepest descent */
            continue;
        }
        fails = 0;
        /* curvature pair */
        double *sv = S + head * n, *yv = Y + head * n;
        for (size_t i = 0; i < n; i++) { sv[i] = Vn[i] - V[i]; yv[i] = gn[i] - g[i]; }
        double sy = dotv(sv, yv, n);
        if (sy > 1e-18 * sqrt(dotv(sv, sv, n) * dotv(yv, yv, n)) && sy > 0) {
            rhoh[head] = 1.0 / sy;
            head = (head + 1) % MEM;
            if (used < MEM) used++;
        }
        memcpy(V, Vn, sizeof(double) * n);
        memcpy(g, gn, sizeof(double) * n);
        f = fn;
    }
    free(g); free(gn); free(dir); free(Vn); free(S); free(Y);
    *iters = it;
    return f;
}

static void ds_minmax(TheoryDownstream *lo, TheoryDownstream *hi, const TheoryDownstream *v) {
    const double *pv = (const double *)v;
    double *pl = (double *)lo, *ph = (double *)hi;
    for (size_t i = 0; i < sizeof *v / sizeof(double); i++) {
        pl[i] = fmin(pl[i], pv[i]);
        ph[i] = fmax(ph[i], pv[i]);
    }
}

int theory_solve(const TheoryModel *m, long k, const double *V0, const TheorySolveOpts *opt,
                 TheorySolution *out, NcError *err) {
    double t0 = nc_now();
    int M = m->M, d = m->d, D1 = d + 1;
    size_t n = (size_t)M * D1;
    Objective o = {m, k, M, d, D1, NULL, NULL, NULL, NULL, 0.0, 0};
    o.F = nc_malloc(sizeof(double) * M * d);
    o.G = nc_malloc(sizeof(double) * M * M);
    o.C = nc_malloc(sizeof(double) * M * M);
    o.CF = nc_malloc(sizeof(double) * M * d);
    int starts = opt->restarts + (V0 != NULL);
    double *Vs = nc_malloc(sizeof(double) * n * starts), *Ls = nc_malloc(sizeof(double) * starts);
    int best = 0, total_iters = 0;
    for (int s = 0; s < starts; s++) {
        double *V = Vs + s * n;
        if (V0 && s == 0) {
            memcpy(V, V0, sizeof(double) * n);
        } else {
            Rng r;
            rng_init(&r, opt->seed, (uint32_t)s, (uint32_t)k, (uint32_t)(k >> 32));
            for (size_t i = 0; i < n; i++) V[i] = rng_normal(&r);
        }
        rows_normalise(V, M, D1);
        int iters;
        Ls[s] = lbfgs(&o, V, opt->max_iter, &iters);
        total_iters += iters;
        if (!isfinite(Ls[s])) {
            free(o.F); free(o.G); free(o.C); free(o.CF); free(Vs); free(Ls);
            return nc_fail(err, NC_ENUM, "solver: the loss is not finite at k = %ld", k);
        }
        if (Ls[s] < Ls[best]) best = s;
    }
    memset(out, 0, sizeof *out);
    out->k = k;
    out->starts = starts;
    out->iters = total_iters;
    out->V = nc_malloc(sizeof(double) * n);
    out->G = nc_malloc(sizeof(double) * M * M);
    memcpy(out->V, Vs + best * n, sizeof(double) * n);
    gram_of(&o, out->V);
    memcpy(out->G, o.G, sizeof(double) * M * M);
    out->loss = theory_loss(m, k, out->G, NULL);
    int rc = theory_certify(m, k, out->G, &out->cert, err);
    if (rc == NC_OK) {
        theory_downstream(m, k, out->G, &out->ds);
        theory_structure(m, out->G, &out->st);
        out->ds_lo = out->ds_hi = out->ds;
        /* Other starts that reach the optimum within the certified gap: same downstream? */
        double tol = fmax(2.0 * fabs(out->cert.gap), 1e-9 * fmax(1.0, out->loss));
        out->unique = 1;
        for (int s = 0; s < starts; s++) {
            if (s == best || Ls[s] - out->loss > tol) continue;
            gram_of(&o, Vs + s * n);
            TheoryDownstream ds;
            theory_downstream(m, k, o.G, &ds);
            ds_minmax(&out->ds_lo, &out->ds_hi, &ds);
        }
        const double *lo = (const double *)&out->ds_lo, *hi = (const double *)&out->ds_hi;
        for (size_t i = 0; i < sizeof out->ds / sizeof(double); i++)
            if (hi[i] - lo[i] > 1e-6 * fmax(1.0, fabs(hi[i]))) out->unique = 0;
        out->collision_prob = theory_collision_prob(m, k);
        out->saunshi_bound = m->loss == NC_LOSS_INFONCE ? theory_saunshi_bound(m, k, out->loss) : NAN;
    }
    free(o.F); free(o.G); free(o.C); free(o.CF); free(Vs); free(Ls);
    out->seconds = nc_now() - t0;
    return rc;
}

void theory_solution_free(TheorySolution *s) {
    free(s->G);
    free(s->V);
    s->G = s->V = NULL;
}
