// test_verdict.c -- the sweep's verdict rule on crafted results: hurt, not hurt, unknown (one
// seed), and the edges of the rule (a drop within 2 standard errors, a significant drop under half
// a point).
#include "check.h"
#include "ncelab/sweep.h"

#include <string.h>

/* runs of ks {1, 16, 256} x 3 seeds: head accuracies acc[i] +- spread (seeds at -s, 0, +s) */
static void craft(SweepRun *r, const double acc[3], double spread, int seeds) {
    static const long ks[3] = {1, 16, 256};
    memset(r, 0, sizeof(SweepRun) * 9);
    for (int i = 0; i < 3; i++)
        for (int s = 0; s < seeds; s++) {
            SweepRun *x = &r[i * seeds + s];
            double off = seeds > 1 ? spread * (s - 1) : 0;
            x->k = ks[i];
            x->seed = s;
            x->head.mean_acc = x->head.linear_acc = x->head.knn_acc = acc[i] + off;
            x->features = x->head;
        }
}

static SweepOutcome judge(const double acc[3], double spread, int seeds, SweepVerdict *v) {
    static const long ks[3] = {1, 16, 256};
    SweepConfig c;
    memset(&c, 0, sizeof c);
    c.ks = ks;
    c.nk = 3;
    c.seeds = seeds;
    SweepRun r[9];
    craft(r, acc, spread, seeds);
    sweep_verdict(&c, r, v);
    return v->outcome;
}

int main(void) {
    SweepVerdict v;
    /* seeds at -0.01, 0, +0.01: sample std 0.01, se of a difference sqrt(2 x 0.0001 / 3) = 0.00816 */
    double falls[3] = {0.80, 0.82, 0.76};
    CHECK(judge(falls, 0.01, 3, &v) == SWEEP_HURT && v.best_k[0] == 16 && fabs(v.drop[0] - 0.06) < 1e-12 &&
              fabs(v.se[0] - sqrt(2e-4 / 3)) < 1e-12,
          "a 6-point fall from the best k (16) to the largest, se %.4f: hurt (%s)", v.se[0], sweep_outcome_name(v.outcome));
    double rises[3] = {0.70, 0.75, 0.80};
    CHECK(judge(rises, 0.01, 3, &v) == SWEEP_NOT_HURT && v.best_k[1] == 256 && v.drop[1] == 0,
          "accuracies rising with k: did not hurt (%s)", sweep_outcome_name(v.outcome));
    double noise[3] = {0.80, 0.81, 0.80};  /* a 1-point drop, under 2 se = 0.0163 */
    CHECK(judge(noise, 0.01, 3, &v) == SWEEP_NOT_HURT && !v.hurt[2],
          "a 1-point drop within 2 standard errors (%.4f): did not hurt", 2 * v.se[2]);
    double tiny[3] = {0.800, 0.804, 0.800};  /* significant (spread 1e-4) but under half a point */
    CHECK(judge(tiny, 1e-4, 3, &v) == SWEEP_NOT_HURT && v.drop[0] > 2 * v.se[0],
          "a significant 0.4-point drop: under half a point, did not hurt");
    CHECK(judge(falls, 0.0, 1, &v) == SWEEP_UNKNOWN && isnan(v.se[0]), "one seed: unknown, whatever the means (%s)",
          sweep_outcome_name(v.outcome));
    return check_done();
}
