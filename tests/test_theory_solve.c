// test_theory_solve.c -- the solver against the regular simplex, the certificate against
// perturbations, the Saunshi bound against the downstream loss it bounds.
#include "check.h"
#include "theory_util.h"

static void simplex_case(int N, double R) {
    double rho[16];
    NcError err;
    TheoryModel m;
    theory_rho_parse("uniform", N, rho, &err);
    theory_model_init(&m, N, rho, NULL, 0, R, 0, NC_LOSS_INFONCE, &err);
    TheorySolveOpts o;
    theory_solve_opts_default(&o);
    long ks[] = {1, 2, 16, 1024, 1000000};
    double closed = log1p((N - 1) * exp(-R * R * N / (N - 1.0)));
    for (int i = 0; i < 5; i++) {
        TheorySolution s;
        int rc = theory_solve(&m, ks[i], NULL, &o, &s, &err);
        CHECK(rc == NC_OK && s.st.simplex_deviation <= 1e-6 && s.cert.optimal,
              "uniform N=%d R=%g k=%ld: simplex deviation %.1e, gap %.1e, optimal %d", N, R, ks[i],
              s.st.simplex_deviation, s.cert.gap, s.cert.optimal);
        CHECK(rel_err(s.ds.mean_ce, closed, 1e-300) <= 1e-8,
              "  mean-classifier CE %.12f vs log(1+(N-1)exp(-R^2 N/(N-1))) = %.12f (rel err %.1e)", s.ds.mean_ce,
              closed, rel_err(s.ds.mean_ce, closed, 1e-300));
        CHECK(fabs(s.st.min_norm - R) <= 1e-8 && s.st.rank == N - 1 && s.unique,
              "  norms at R (min %.10f), rank %d = N-1, unique optimum", s.st.min_norm, s.st.rank);
        theory_solution_free(&s);
    }
    theory_model_free(&m);
}

/* The optimum's loss is the smallest over feasible points: perturbed optima are worse, and
   their certificates say so. */
static void test_certificate(void) {
    int N = 6;
    double rho[6];
    NcError err;
    TheoryModel m;
    theory_rho_parse("zipf:1", N, rho, &err);
    theory_model_init(&m, N, rho, NULL, 0, 1.0, 0, NC_LOSS_INFONCE, &err);
    TheorySolveOpts o;
    theory_solve_opts_default(&o);
    TheorySolution s;
    theory_solve(&m, 8, NULL, &o, &s, &err);
    CHECK(s.cert.optimal && s.cert.gap >= -1e-12 && s.cert.kkt_residual < 1e-6,
          "zipf:1 N=6 k=8: certified, gap %.1e, kkt %.1e, min_eig %.1e", s.cert.gap, s.cert.kkt_residual, s.cert.min_eig);
    double G[36], Gr[36];
    TheoryCert c;
    for (int i = 0; i < 36; i++) G[i] = 0.97 * s.G[i];
    theory_certify(&m, 8, G, &c, &err);
    double dl = theory_loss(&m, 8, G, NULL) - s.loss;
    CHECK(!c.optimal && c.gap >= dl - 1e-12 && dl > 0,
          "G shrunk by 3%%: optimal %d, gap %.3e >= true excess %.3e", c.optimal, c.gap, dl);
    random_gram(Gr, N, N, 1.0, 9);
    for (int i = 0; i < 36; i++) G[i] = 0.99 * s.G[i] + 0.01 * Gr[i];
    theory_certify(&m, 8, G, &c, &err);
    dl = theory_loss(&m, 8, G, NULL) - s.loss;
    CHECK(!c.optimal && c.gap >= dl - 1e-12, "G mixed with 1%% of a random Gram: optimal %d, gap %.3e >= %.3e",
          c.optimal, c.gap, dl);
    /* the bound of Saunshi et al. holds at the optimum for every k */
    int holds = 1;
    for (long k = 1; k <= 4096; k *= 4) {
        TheorySolution t;
        theory_solve(&m, k, s.V, &o, &t, &err);
        holds &= t.saunshi_bound >= t.ds.kplus1_ce - 1e-12 && t.cert.optimal;
        theory_solution_free(&t);
    }
    CHECK(holds, "saunshi_bound >= kplus1_ce and certified for k = 1, 4, ..., 4096");
    theory_solution_free(&s);
    theory_model_free(&m);
}

/* Non-uniform prior: the optimum moves with k, the class-balanced mean-classifier loss falls. */
static void test_zipf_and_nce(void) {
    int N = 10;
    double rho[10];
    NcError err;
    TheoryModel m;
    theory_rho_parse("zipf:1", N, rho, &err);
    theory_model_init(&m, N, rho, NULL, 0, 1.0, 0, NC_LOSS_INFONCE, &err);
    TheorySolveOpts o;
    theory_solve_opts_default(&o);
    long ks[] = {1, 4, 16, 64, 256, 1024, 4096};
    TheorySolution s[7];
    theory_sweep(&m, ks, 7, &o, s, NULL, NULL, &err);
    int ok = 1, falls = 1;
    for (int i = 0; i < 7; i++) ok &= s[i].cert.optimal;
    for (int i = 1; i < 7; i++) falls &= s[i].ds.mean_ce_balanced < s[i - 1].ds.mean_ce_balanced;
    CHECK(ok, "zipf:1 N=10 sweep certified for every k");
    CHECK(falls && s[0].st.simplex_deviation > 0.1,
          "zipf:1: not a simplex (dev %.3f); class-balanced CE falls with k: %.5f -> %.5f",
          s[0].st.simplex_deviation, s[0].ds.mean_ce_balanced, s[6].ds.mean_ce_balanced);
    for (int i = 0; i < 7; i++) theory_solution_free(&s[i]);
    theory_model_free(&m);
    /* binary NCE: also convex, also certified */
    theory_rho_parse("uniform", 4, rho, &err);
    theory_model_init(&m, 4, rho, NULL, 0, 1.5, 0, NC_LOSS_NCE, &err);
    TheorySolution t;
    theory_solve(&m, 16, NULL, &o, &t, &err);
    CHECK(t.cert.optimal && t.st.simplex_deviation < 1e-6, "nce loss, uniform N=4, k=16: certified simplex (dev %.1e)",
          t.st.simplex_deviation);
    theory_solution_free(&t);
    theory_model_free(&m);
}

/* Several points per class, disjoint (eps = 0) and overlapping (eps = 0.1), and a rank constraint. */
static void test_overlap_and_rank(void) {
    double *P, rho[4];
    NcError err;
    TheoryModel m;
    TheorySolveOpts o;
    theory_solve_opts_default(&o);
    TheorySolution s;
    theory_rho_parse("uniform", 4, rho, &err);
    double eps[2] = {0.0, 0.1};
    for (int i = 0; i < 2; i++) {
        theory_support_banded(4, 12, eps[i], &P);
        theory_model_init(&m, 4, rho, P, 12, 1.0, 0, NC_LOSS_INFONCE, &err);
        theory_solve(&m, 32, NULL, &o, &s, &err);
        CHECK(s.cert.optimal && s.st.simplex_deviation < 1e-6,
              "4 classes x 3 points, overlap eps=%.1f: certified (gap %.1e), class means a simplex (dev %.1e)",
              eps[i], s.cert.gap, s.st.simplex_deviation);
        if (i == 0)
            CHECK(s.st.class_spread < 1e-6, "  disjoint classes collapse: spread %.1e", s.st.class_spread);
        else
            CHECK(s.st.class_spread > 1e-3, "  overlapping classes do not collapse: spread %.3f", s.st.class_spread);
        theory_solution_free(&s);
        theory_model_free(&m);
        free(P);
    }
    theory_rho_parse("uniform", 3, rho, &err);
    theory_model_init(&m, 3, rho, NULL, 0, 1.0, 2, NC_LOSS_INFONCE, &err);
    theory_solve(&m, 8, NULL, &o, &s, &err);
    CHECK(s.cert.optimal && s.st.simplex_deviation < 1e-6 && s.st.rank == 2,
          "d = 2 for N = 3: the triangle, certified (dev %.1e)", s.st.simplex_deviation);
    theory_solution_free(&s);
    theory_model_free(&m);
}

int main(void) {
    simplex_case(10, 1.0);
    simplex_case(5, 2.0);
    test_certificate();
    test_zipf_and_nce();
    test_overlap_and_rank();
    return check_done();
}
