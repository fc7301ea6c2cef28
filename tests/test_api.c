// test_api.c -- the stable C interface (api.h) against the library calls it wraps: the theory
// sweep's JSON agrees with report_theory_json of theory_sweep, the loss and gradient with
// theory_loss, and bad values give the library's codes and messages, cut to the caller's buffer.
#include "check.h"
#include "ncelab/api.h"
#include "ncelab/report.h"
#include "ncelab/theory.h"

#include <stdlib.h>
#include <string.h>

/* the sweep of the CLI for N = 3, rho "0.5,0.3,0.2", k 1, 4, 16, R 1.5, as report_theory_json writes it */
static char *direct_json(const double *P, int M) {
    double rho[3] = {0.5, 0.3, 0.2};
    TheoryModel m;
    NcError err;
    if (theory_model_init(&m, 3, rho, P, M, 1.5, 0, NC_LOSS_INFONCE, &err)) return NULL;
    long ks[3] = {1, 4, 16};
    TheorySolveOpts o;
    theory_solve_opts_default(&o);
    TheorySolution s[3];
    char *text = NULL;
    if (theory_sweep(&m, ks, 3, &o, s, NULL, NULL, &err) == NC_OK) {
        cJSON *doc = report_theory_json(&m, "0.5,0.3,0.2", NULL, s, 3);
        text = cJSON_PrintUnformatted(doc);
        cJSON_Delete(doc);
        for (int i = 0; i < 3; i++) theory_solution_free(&s[i]);
    }
    theory_model_free(&m);
    return text;
}

/* close_json: a and b are the same JSON but for numbers, which agree to 1e-9 relative or 1e-8
   absolute (the solver's OpenMP sums are not bit-reproducible from run to run; quantities that
   vanish at the optimum, the certificate's, agree in absolute terms); "seconds", "iterations"
   and "starts" are the solver's path and are skipped. */
static int close_json(const cJSON *a, const cJSON *b) {
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
        return fabs(a->valuedouble - b->valuedouble) <= fmax(1e-8, 1e-9 * fabs(b->valuedouble));
    if ((a->type & 0xff) != (b->type & 0xff)) return 0;
    if (cJSON_IsString(a)) return strcmp(a->valuestring, b->valuestring) == 0;
    if (!cJSON_IsArray(a) && !cJSON_IsObject(a)) return 1;
    if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b)) return 0;
    const cJSON *x, *y = b->child;
    cJSON_ArrayForEach(x, a) {
        if (cJSON_IsObject(a)) {
            if (strcmp(x->string, "seconds") == 0 || strcmp(x->string, "iterations") == 0 || strcmp(x->string, "starts") == 0) {
                y = y->next;
                continue;
            }
            if (strcmp(x->string, y->string) != 0) return 0;
        }
        if (!close_json(x, y)) return 0;
        y = y->next;
    }
    return 1;
}

static void refused(int rc, int code, const char *msg, const char *want) {
    CHECK(rc == code && strstr(msg, want), "refused with %d (%d expected): %s", rc, code, msg);
}

int main(void) {
    char msg[256];
    CHECK(strcmp(ncelab_version(), NCELAB_VERSION) == 0, "ncelab_version: %s", ncelab_version());

    /* the sweep, with the default and with an overlapping support */
    double P[6] = {0.8, 0.2, 0.1, 0.9, 0.5, 0.5};
    for (int sup = 0; sup < 2; sup++) {
        char *json = NULL;
        int rc = ncelab_theory_solve(3, "0.5,0.3,0.2", sup ? P : NULL, sup ? 2 : 0, NULL, 1.5, 0, "infonce", "16,1,4", 2, 1,
                                     &json, msg, sizeof msg);
        char *b = direct_json(sup ? P : NULL, sup ? 2 : 0);
        cJSON *x = rc == 0 ? cJSON_Parse(json) : NULL, *y = b ? cJSON_Parse(b) : NULL;
        CHECK(rc == 0 && x && y && close_json(x, y), "ncelab_theory_solve (%s) = report_theory_json of theory_sweep (%zu bytes)",
              sup ? "3 x 2 support" : "one point per class", json ? strlen(json) : 0);
        cJSON_Delete(x);
        cJSON_Delete(y);
        free(b);
        ncelab_free(json);
    }

    /* the loss and its gradient at a Gram matrix */
    double G[9] = {1, 0.2, -0.3, 0.2, 0.9, 0.1, -0.3, 0.1, 0.8}, C[9], C2[9], L = 0;
    int rc = ncelab_theory_loss(3, "zipf:1", NULL, 0, NULL, 1.0, "nce", 64, G, 3, &L, C, msg, sizeof msg);
    TheoryModel m;
    double rho[3];
    theory_rho_parse("zipf:1", 3, rho, NULL);
    theory_model_init(&m, 3, rho, NULL, 0, 1.0, 0, NC_LOSS_NCE, NULL);
    double L2 = theory_loss(&m, 64, G, C2);
    theory_model_free(&m);
    double worst = 0;
    for (int i = 0; i < 9; i++) worst = fmax(worst, fabs(C[i] - C2[i]));
    CHECK(rc == 0 && fabs(L - L2) <= 1e-13 * L2 && worst <= 1e-13, "ncelab_theory_loss = theory_loss (%.15g; gradient within %.1e)",
          L, worst);

    /* refusals: the code and the library's message; nothing written on failure */
    char *json = (char *)"untouched";
    rc = ncelab_theory_solve(2, "0.5,0.6", NULL, 0, NULL, 1, 0, NULL, "4", 2, 1, &json, msg, sizeof msg);
    refused(rc, 2, msg, "--rho: probabilities sum to 1.1");
    CHECK(json == NULL, "a failed solve leaves *json NULL");
    rc = ncelab_theory_solve(3, NULL, NULL, 0, NULL, 1, 0, NULL, "0", 2, 1, &json, msg, sizeof msg);
    refused(rc, 2, msg, "--k: 0 is out of range");
    double bad[6] = {0.5, 0.5, 0.5, 0.4, 0.5, 0.5};
    rc = ncelab_theory_solve(3, NULL, bad, 2, NULL, 1, 0, NULL, "4", 2, 1, &json, msg, sizeof msg);
    refused(rc, 2, msg, "support: row 2 sums to 0.9");
    double G2[9] = {2, 0, 0, 0, 1, 0, 0, 0, 1};
    rc = ncelab_theory_loss(3, NULL, NULL, 0, NULL, 1, NULL, 4, G2, 3, &L, C, msg, sizeof msg);
    refused(rc, 1, msg, "G: diagonal entry 1 is 2 > R^2");
    rc = ncelab_theory_loss(4, NULL, NULL, 0, NULL, 1, NULL, 4, G, 3, &L, C, msg, sizeof msg);
    refused(rc, 2, msg, "G: a 3 x 3 matrix, but the model has 4 points");
    rc = ncelab_theory_loss(0, NULL, NULL, 0, "/nonexistent/s.json", 1, NULL, 4, G, 3, &L, C, msg, sizeof msg);
    refused(rc, 1, msg, "/nonexistent/s.json");
    char tiny[8];
    rc = ncelab_theory_loss(3, NULL, NULL, 0, NULL, 1, "hinge", 4, G, 3, &L, C, tiny, sizeof tiny);
    CHECK(rc == 2 && strlen(tiny) == 7, "a message cut to the caller's 8-byte buffer: \"%s\"", tiny);
    return check_done();
}
