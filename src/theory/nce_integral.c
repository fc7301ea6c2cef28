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
// geometric series, to relative O(e^-20)) and like exp(-e^u) as u -> +inf; the trapezoid
// rule on such analytic integrands converges geometrically in 1/h. 1 - psi and 1 - psi^k are
// formed with expm1/log1p so that nothing cancels when k t E[W] is small.
#include "ncelab/theory.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void nce_work_reserve(NceWork *w, int n, int q) {
    if (n <= w->cap_n && q <= w->cap_q) return;
    if (n < w->cap_n) n = w->cap_n;
    if (q < w->cap_q) q = w->cap_q;
    free(w->ez); free(w->u); free(w->wq); free(w->acc); free(w->lpsi);
    w->ez = nc_malloc(sizeof(double) * (size_t)n * q);
    w->u = nc_malloc(sizeof(double) * q);
    w->wq = nc_malloc(sizeof(double) * q);
    w->acc = nc_malloc(sizeof(double) * q);
    w->lpsi = nc_malloc(sizeof(double) * q);
    w->cap_n = n;
    w->cap_q = q;
}

void nce_work_free(NceWork *w) {
    free(w->ez); free(w->u); free(w->wq); free(w->acc); free(w->lpsi);
    memset(w, 0, sizeof *w);
}

static double logaddexp(double a, double b) {
    if (a < b) { double t = a; a = b; b = t; }
    return b == -INFINITY ? a : a + log1p(exp(b - a));
}

double nce_anchor(int n, const double *g, const double *p, int np, const double *a,
                  const double *pw, long k, double h, double *dg, double *da, NceWork *w) {
    /* The range of u: above u_hi every e^{-s e^{a_j}} < e^-40; below u_lo, s e^{a_j},
       k s E e^{g} and s max e^{g} are all below e^-20, where every integrand is c e^u. */
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
    double u_lo = -20.0 - top, u_hi = log(40.0) - amin;
    int Q = (int)ceil((u_hi - u_lo) / h) + 1;
    nce_work_reserve(w, n, Q);
    double *s = w->u, *wq = w->wq, *acc = w->acc, *lpsi = w->lpsi;
    for (int q = 0; q < Q; q++) {
        s[q] = exp(u_lo + h * q);
        wq[q] = h;
        acc[q] = 0.0;   /* 1 - psi(s_q) */
        lpsi[q] = 0.0;  /* psi(s_q) */
    }
    /* Below u_0 the integrands are f(u_0) e^{u - u_0}: continuing the trapezoid rule over
       the nodes u_0, u_0 - h, ... sums to h f(u_0) / (1 - e^{-h}). */
    wq[0] = h / -expm1(-h);
    wq[Q - 1] = 0.5 * h;

    /* psi(s_q) in log form; e^{-z} kept for the gradient. */
    for (int y = 0; y < n; y++) {
        if (p[y] <= 0) continue;
        double *ez = w->ez + (size_t)y * Q;
        double py = p[y], eg = exp(g[y]);
        for (int q = 0; q < Q; q++) {
            double z = s[q] * eg;
            double e = exp(-z);
            ez[q] = e;
            acc[q] += py * (z < 0.5 ? -expm1(-z) : 1.0 - e);
            lpsi[q] += py * e;
        }
    }
    for (int q = 0; q < Q; q++) lpsi[q] = acc[q] < 0.5 ? log1p(-acc[q]) : log(lpsi[q]);

    /* The loss; H(u) = sum_j pw_j e^{-s e^{a_j}} psi^{k-1} (times weights) into acc. */
    double loss = 0.0, kd = (double)k;
    for (int q = 0; q < Q; q++) acc[q] = 0.0;
    for (int j = 0; j < np; j++) {
        if (pw[j] <= 0) continue;
        double ea = exp(a[j]), lj = 0.0, dj = 0.0;
        for (int q = 0; q < Q; q++) {
            double sea = s[q] * ea;
            double e = exp(-sea);
            if (e == 0.0) break;
            double f = -expm1(kd * lpsi[q]);  /* 1 - psi^k */
            lj += wq[q] * e * f;
            dj += wq[q] * sea * e * f;
            if (dg) acc[q] += wq[q] * pw[j] * e * (k == 1 ? 1.0 : exp((kd - 1.0) * lpsi[q]));
        }
        loss += pw[j] * lj;
        if (da) da[j] -= pw[j] * dj;  /* dl_j/da_j = -int s e^{a_j} e^{-s e^{a_j}} (1 - psi^k) du */
    }
    if (dg) {
        for (int y = 0; y < n; y++) {
            if (p[y] <= 0) continue;
            const double *ez = w->ez + (size_t)y * Q;
            double eg = exp(g[y]), sum = 0.0;
            for (int q = 0; q < Q; q++) {
                double z = s[q] * eg;
                if (z < 700.0) sum += acc[q] * z * ez[q];
            }
            dg[y] += kd * p[y] * sum;
        }
    }
    return loss;
}
