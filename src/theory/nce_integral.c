// nce_integral.c -- E log(1 + sum of k i.i.d. terms) as a one-dimensional integral, any k.
//
// For S = sum_{i<=k} W_i with W_i i.i.d., log(1+S) = int_0^inf (e^{-t} - e^{-t(1+S)}) dt/t, so
//   E log(1+S) = int_0^inf e^{-t} (1 - phi(t)^k) dt/t,   phi(t) = E e^{-t W}.
// Here W = exp(g[Y] - a), Y ~ p. Put s = t e^{-a}: then t W = s e^{g_Y}, and with
// psi(s) = sum_y p_y exp(-s e^{g_y}) (which does not depend on a, so one psi serves every
// positive j of an anchor):
//   l_j      = int e^{-s e^{a_j}} (1 - psi(s)^k) du,                 u = log s,
//   dl/dg_y  = k p_y int e^{-s e^{a_j}} psi^{k-1} B_y(s) du,           B_y = z e^{-z}, z = s e^{g_y},
//   dl/da_j  = -sum_y dl/dg_y                                          (l depends on g - a only).
// The u-integrands vanish like e^u as u -> -inf (so the nodes below the first one sum as a
// geometric series, to relative O(e^-18)) and like exp(-e^u) as u -> +inf; the trapezoid
// rule on such analytic integrands converges geometrically in 1/h. 1 - psi and 1 - psi^k are
// formed with expm1/log1p so that nothing cancels when k t E[W] is small.
#include "ncelab/theory.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__)
#define NCE_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NCE_CLONES
#endif
/* a function compiled without contraction into FMA (GCC's attribute; clang takes a pragma in the body) */
#if defined(__GNUC__) && !defined(__clang__)
#define NCE_NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define NCE_NO_CONTRACT
#endif

/* nce_exp_om: e = e^x and om = 1 - e^x for x <= 0 (e = 0 below -708), both to a few ulp and
   without cancellation. Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, and one polynomial
   q(r) = (e^r - 1)/r = sum_j r^j/(j+1)! of degree 12 (truncation < 1e-17 relative): e^r - 1 = r q(r)
   is exact in relative terms, and for |x| < ln2/2, where n = 0, om = -r q(r). Elsewhere
   e <= 0.71 and 1 - e loses under two bits. Branch-free so that loops over it vectorise;
   tests/test_theory_loss.c measures it against libm's exp and expm1. */
static inline void nce_exp_om(double x, double *e, double *om) {
    const double shift = 0x1.8p52, inv_ln2 = 0x1.71547652b82fep0;
    const double ln2_hi = 0x1.62e42fefa3800p-1, ln2_lo = 0x1.ef35793c76730p-45;
    double xc = x < -708.0 ? -708.0 : x;
    double kd = xc * inv_ln2 + shift;
    uint64_t ki;
    memcpy(&ki, &kd, sizeof ki);
    kd -= shift;
    double r = xc - kd * ln2_hi - kd * ln2_lo;
    /* q(r) by Estrin's scheme: short dependency chains */
    double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    double c01 = 1.0 + r * (1.0 / 2);
    double c23 = 1.0 / 6 + r * (1.0 / 24);
    double c45 = 1.0 / 120 + r * (1.0 / 720);
    double c67 = 1.0 / 5040 + r * (1.0 / 40320);
    double c89 = 1.0 / 362880 + r * (1.0 / 3628800);
    double c1011 = 1.0 / 39916800 + r * (1.0 / 479001600);
    double c12 = 1.0 / 6227020800.0;
    double q = (c01 + r2 * c23) + r4 * (c45 + r2 * c67) + r8 * ((c89 + r2 * c1011) + r4 * c12);
    double em1 = r * q;
    uint64_t sb = (ki + 1023u) << 52;
    double scale;
    memcpy(&scale, &sb, sizeof scale);
    double ex = x < -708.0 ? 0.0 : (1.0 + em1) * scale;
    *e = ex;
    *om = kd == 0.0 ? -em1 : 1.0 - ex;
}

static inline double nce_expneg(double x) {
    double e, om;
    nce_exp_om(x, &e, &om);
    return e;
}

/* Accumulates over the nodes: ez[q] = e^{-s_q e^g}, om[q] += py (1 - ez[q]), ps[q] += py ez[q]. */
NCE_CLONES
static void nce_psi_row(double *restrict ez, double *restrict om, double *restrict ps,
                        const double *restrict s, int Q, double eg, double py) {
    for (int q = 0; q < Q; q++) {
        double e, o;
        nce_exp_om(-s[q] * eg, &e, &o);
        ez[q] = e;
        om[q] += py * o;
        ps[q] += py * e;
    }
}

/* sum_q H[q] z_q e^{-z_q}, z_q = s_q e^g. */
NCE_CLONES
static double nce_grad_row(const double *restrict ez, const double *restrict H,
                           const double *restrict s, int Q, double eg) {
    double sum = 0.0;
    for (int q = 0; q < Q; q++) {
        double z = s[q] * eg;
        sum += z < 700.0 ? H[q] * z * ez[q] : 0.0;
    }
    return sum;
}

/* One positive: l = sum_q wq e^{-s ea} f_q, dl = sum_q wq s ea e^{-s ea} f_q, and
   H[q] += c wq e^{-s ea} pk1_q when H is non-NULL. */
NCE_CLONES
static void nce_pair(double *l, double *dl, double *restrict H, const double *restrict s,
                     const double *restrict wq, const double *restrict f,
                     const double *restrict pk1, int Q, double ea, double c) {
    double lj = 0.0, dj = 0.0;
    for (int q = 0; q < Q; q++) {  /* one e^{-s ea} for the loss and H (GCC unswitches the if) */
        double sea = s[q] * ea;
        double e = nce_expneg(-sea);
        lj += wq[q] * e * f[q];
        dj += wq[q] * sea * e * f[q];
        if (H) H[q] += c * wq[q] * e * pk1[q];
    }
    *l = lj;
    *dl = dj;
}

/* f[q] = 1 - psi_q^k and its complement from x[q] = k log psi_q, in place. Compiled without
   contraction into FMA (-ffp-contract=fast elsewhere in this file) so that every clone rounds as
   the scalar code before it did: the values do not depend on the CPU's vector width. */
NCE_CLONES NCE_NO_CONTRACT
static void nce_pow_om(double *restrict f, int Q) {
#ifdef __clang__
#pragma clang fp contract(off)
#endif
    for (int q = 0; q < Q; q++) {
        double pk;
        nce_exp_om(f[q], &pk, &f[q]);
    }
}

static void nce_work_reserve(NceWork *w, int n, int q) {
    if (n <= w->cap_n && q <= w->cap_q) return;
    if (n < w->cap_n) n = w->cap_n;
    if (q < w->cap_q) q = w->cap_q;
    nce_work_free(w);
    w->ez = nc_malloc(sizeof(double) * (size_t)n * q);
    w->s = nc_malloc(sizeof(double) * 7 * q);
    w->wq = w->s + q; w->om = w->s + 2 * q; w->ps = w->s + 3 * q;
    w->f = w->s + 4 * q; w->pk1 = w->s + 5 * q; w->H = w->s + 6 * q;
    w->cap_n = n;
    w->cap_q = q;
}

void nce_work_free(NceWork *w) {
    free(w->ez);
    free(w->s);
    memset(w, 0, sizeof *w);
}

static double logaddexp(double a, double b) {
    if (a < b) { double t = a; a = b; b = t; }
    return b == -INFINITY ? a : a + log1p(exp(b - a));
}

double nce_anchor(int n, const double *g, const double *p, int np, const double *a,
                  const double *pw, long k, double h, double *dg, double *da, NceWork *w) {
    /* The range of u: above u_hi every e^{-s e^{a_j}} < e^-40; below u_lo, s e^{a_j},
       k s E e^{g} and s max e^{g} are all below e^-18, where every integrand is c e^u. */
    double amin = INFINITY, amax = -INFINITY, gmax = -INFINITY, lmean = -INFINITY;
    for (int j = 0; j < np; j++) {
        if (pw[j] <= 0) continue;
        if (a[j] < amin) amin = a[j];
        if (a[j] > amax) amax = a[j];
    }
    if (amin == INFINITY) return 0.0;
    for (int y = 0; y < n; y++) {
        if (p[y] <= 0) continue;
        if (g[y] > gmax) gmax = g[y];
        lmean = logaddexp(lmean, g[y] + log(p[y]));
    }
    double top = logaddexp(logaddexp(amax, log((double)k) + lmean), gmax);
    double u_lo = -18.0 - top, u_hi = log(40.0) - amin;
    int Q = (int)ceil((u_hi - u_lo) / h) + 1;
    nce_work_reserve(w, n, Q);
    double *s = w->s, *wq = w->wq, *om = w->om, *ps = w->ps, *f = w->f, *pk1 = w->pk1, *H = w->H;
    for (int q = 0; q < Q; q++) {
        s[q] = exp(u_lo + h * q);
        wq[q] = h;
        om[q] = ps[q] = H[q] = 0.0;
    }
    /* Below u_0 the integrands are f(u_0) e^{u - u_0}: continuing the trapezoid rule over
       the nodes u_0, u_0 - h, ... sums to h f(u_0) / (1 - e^{-h}). */
    wq[0] = h / -expm1(-h);
    wq[Q - 1] = 0.5 * h;

    /* 1 - psi(s_q) and psi(s_q); e^{-z} kept for the gradient. */
    for (int y = 0; y < n; y++)
        if (p[y] > 0) nce_psi_row(w->ez + (size_t)y * Q, om, ps, s, Q, exp(g[y]), p[y]);
    double kd = (double)k;
    for (int q = 0; q < Q; q++) {  /* libm's log1p, log and exp: not vectorised */
        double lpsi = om[q] < 0.5 ? log1p(-om[q]) : log(ps[q]);
        f[q] = kd * lpsi;
        pk1[q] = k == 1 ? 1.0 : exp((kd - 1.0) * lpsi);
    }
    nce_pow_om(f, Q);  /* 1 - psi^k */

    /* The loss, and H(u) = sum_j pw_j wq e^{-s e^{a_j}} psi^{k-1} for the gradient. */
    double loss = 0.0;
    for (int j = 0; j < np; j++) {
        if (pw[j] <= 0) continue;
        double lj, dj;
        nce_pair(&lj, &dj, dg ? H : NULL, s, wq, f, pk1, Q, exp(a[j]), pw[j]);
        loss += pw[j] * lj;
        if (da) da[j] -= pw[j] * dj;  /* dl_j/da_j = -int s e^{a_j} e^{-s e^{a_j}} (1 - psi^k) du */
    }
    if (dg)
        for (int y = 0; y < n; y++)
            if (p[y] > 0) dg[y] += kd * p[y] * nce_grad_row(w->ez + (size_t)y * Q, H, s, Q, exp(g[y]));
    return loss;
}
