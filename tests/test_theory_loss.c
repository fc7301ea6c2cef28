// test_theory_loss.c -- the exact population loss against enumeration, finite differences,
// Monte Carlo and closed forms.
#include "check.h"
#include "theory_util.h"

static double worst_grad_err(const double *C, const double *Cref, int M) {
    double scale = 0, worst = 0;
    for (int i = 0; i < M * M; i++) if (fabs(Cref[i]) > scale) scale = fabs(Cref[i]);
    for (int i = 0; i < M * M; i++) {
        double e = fabs(C[i] - Cref[i]) / scale;
        if (e > worst) worst = e;
    }
    return worst;
}

/* Enumeration over multinomial counts for small N, M and k. */
static void test_enumeration(void) {
    struct { int N, M; const char *rho; double R; int overlap; } cases[] = {
        {3, 3, "uniform", 1.0, 0}, {4, 4, "zipf:1", 1.0, 0}, {3, 3, "0.5,0.3,0.2", 3.0, 0},
        {3, 4, "0.2,0.5,0.3", 1.5, 1},
    };
    long ks[] = {1, 2, 3, 5, 8};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int N = cases[ci].N, M = cases[ci].M;
        double rho[8], P[32];
        NcError err;
        CHECK(theory_rho_parse(cases[ci].rho, N, rho, &err) == NC_OK, "rho %s parses", cases[ci].rho);
        if (cases[ci].overlap) {
            double Pv[] = {0.6, 0.4, 0, 0, 0, 0.3, 0.7, 0, 0, 0, 0.5, 0.5};
            memcpy(P, Pv, sizeof Pv);
        }
        TheoryModel m;
        theory_model_init(&m, N, rho, cases[ci].overlap ? P : NULL, M, cases[ci].R, 0, NC_LOSS_INFONCE, &err);
        double G[16], C[16], Cref[16];
        random_gram(G, M, M, cases[ci].R, 100 + ci);
        double worst_l = 0, worst_g = 0;
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
            double L = theory_loss(&m, ks[ki], G, C);
            double Lref = enum_loss(&m, ks[ki], G, Cref);
            double el = rel_err(L, Lref, 1e-300), eg = worst_grad_err(C, Cref, M);
            if (el > worst_l) worst_l = el;
            if (eg > worst_g) worst_g = eg;
        }
        CHECK(worst_l <= 1e-10, "case %zu (N=%d M=%d rho=%s R=%g): loss vs enumeration, k=1..8, worst rel err %.2e",
              ci, N, M, cases[ci].rho, cases[ci].R, worst_l);
        CHECK(worst_g <= 1e-9, "case %zu: gradient vs enumeration, worst err %.2e (relative to max |C|)", ci, worst_g);
        theory_model_free(&m);
    }
}

/* Central finite differences along symmetric directions, for large k where enumeration cannot go. */
static void test_finite_differences(void) {
    long ks[] = {1, 7, 1000, 1000000, 1000000000};
    int losses[] = {NC_LOSS_INFONCE, NC_LOSS_NCE};
    for (int li = 0; li < 2; li++) {
        int N = 5, M = 5;
        double rho[5];
        NcError err;
        theory_rho_parse("zipf:1", N, rho, &err);
        TheoryModel m;
        theory_model_init(&m, N, rho, NULL, M, 2.0, 0, losses[li], &err);
        double G[25], C[25], Gp[25];
        random_gram(G, M, M, 2.0, 5);
        double worst = 0;
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
            theory_loss(&m, ks[ki], G, C);
            double scale = 0;
            for (int i = 0; i < 25; i++) scale = fmax(scale, fabs(C[i]));
            for (int i = 0; i < M; i++)
                for (int j = i; j < M; j++) {
                    double eps = 1e-5, v[2];
                    for (int sgn = 0; sgn < 2; sgn++) {
                        memcpy(Gp, G, sizeof G);
                        double d = sgn ? -eps : eps;
                        Gp[i * M + j] += d;
                        if (i != j) Gp[j * M + i] += d;
                        v[sgn] = theory_loss(&m, ks[ki], Gp, NULL);
                    }
                    double fd = (v[0] - v[1]) / (2 * eps);
                    double an = i == j ? C[i * M + i] : 2 * C[i * M + j];
                    double e = fabs(fd - an) / scale;
                    if (e > worst) worst = e;
                }
        }
        CHECK(worst <= 1e-7, "%s: gradient vs central differences, k = 1..1e9, worst err %.2e",
              li ? "nce" : "infonce", worst);
        theory_model_free(&m);
    }
}

/* Monte Carlo at k = 10^4: the exact value lies in the 99% confidence interval. */
static void test_monte_carlo(void) {
    int N = 5;
    double rho[5];
    NcError err;
    theory_rho_parse("zipf:1", N, rho, &err);
    TheoryModel m;
    theory_model_init(&m, N, rho, NULL, N, 1.5, 0, NC_LOSS_INFONCE, &err);
    double G[25];
    random_gram(G, N, N, 1.5, 11);
    long k = 10000;
    double exact = theory_loss(&m, k, G, NULL);
    double cum[5], acc = 0;
    for (int c = 0; c < N; c++) cum[c] = acc += rho[c];
    Rng r;
    rng_init(&r, 12345, 0, 0, 0);
    int S = 3000;
    double sum = 0, sum2 = 0;
    for (int s = 0; s < S; s++) {
        double u = rng_uniform(&r);
        int c = 0;
        while (c < N - 1 && u > cum[c]) c++;
        double tot = 0;
        for (long i = 0; i < k; i++) {
            double v = rng_uniform(&r);
            int y = 0;
            while (y < N - 1 && v > cum[y]) y++;
            tot += exp(G[c * N + y] - G[c * N + c]);
        }
        double l = log1p(tot);
        sum += l;
        sum2 += l * l;
    }
    double mean = sum / S, sd = sqrt((sum2 / S - mean * mean) * S / (S - 1)), half = 2.576 * sd / sqrt(S);
    CHECK(fabs(mean - exact) <= half, "k=1e4: exact %.6f vs Monte Carlo %.6f +- %.6f (99%%, %d samples)",
          exact, mean, half, S);
    theory_model_free(&m);
}

/* Closed forms: k = 1 with two classes at distance; the quadrature step converges. */
static void test_closed_forms(void) {
    /* Two points, one class each, uniform: for k = 1, E log(1 + e^{G_xy - G_xx+}) with the
       negative equal to the anchor's own point w.p. 1/2. */
    int N = 2;
    double rho[2] = {0.5, 0.5};
    NcError err;
    TheoryModel m;
    theory_model_init(&m, N, rho, NULL, N, 1.0, 0, NC_LOSS_INFONCE, &err);
    double G[4] = {1.0, -1.0, -1.0, 1.0};
    double L = theory_loss(&m, 1, G, NULL);
    double ref = 0.5 * log(2.0) + 0.5 * log1p(exp(-2.0));
    CHECK(rel_err(L, ref, 1e-300) <= 1e-12, "k=1, N=2 antipodal: %.15f vs closed form %.15f", L, ref);
    /* All points equal (G = 0): log(1 + k) for every k. */
    double Z[4] = {0, 0, 0, 0};
    double worst = 0;
    for (long k = 1; k <= 1000000000L; k *= 10) {
        double e = rel_err(theory_loss(&m, k, Z, NULL), log1p((double)k), 1e-300);
        if (e > worst) worst = e;
    }
    CHECK(worst <= 1e-11, "G = 0: loss = log(1+k) for k = 1..1e9, worst rel err %.2e", worst);
    /* Halving the quadrature step changes nothing at the 1e-12 level. */
    theory_model_free(&m);
    double rho5[5];
    theory_rho_parse("zipf:1.5", 5, rho5, &err);
    theory_model_init(&m, 5, rho5, NULL, 5, 4.0, 0, NC_LOSS_INFONCE, &err);
    double G5[25];
    random_gram(G5, 5, 5, 4.0, 3);
    worst = 0;
    for (long k = 1; k <= 1000000000L; k *= 31) {
        m.h = 0.25;
        double a = theory_loss(&m, k, G5, NULL);
        m.h = 0.05;
        double b = theory_loss(&m, k, G5, NULL);
        double e = rel_err(a, b, 1e-300);
        if (e > worst) worst = e;
    }
    CHECK(worst <= 1e-12, "R=4: step h=0.25 vs h=0.05, k = 1..1e9, worst rel diff %.2e", worst);
    theory_model_free(&m);
}

int main(void) {
    test_enumeration();
    test_finite_differences();
    test_monte_carlo();
    test_closed_forms();
    return check_done();
}
