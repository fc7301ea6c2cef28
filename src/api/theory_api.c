// theory_api.c -- the theory engine behind the stable C interface (api.h): a model built from
// the CLI's option values, a sweep returned as the CLI's JSON, the loss and gradient at a Gram matrix.
#include "ncelab/api.h"
#include "ncelab/report.h"
#include "ncelab/theory.h"

#include <stdlib.h>
#include <string.h>

const char *ncelab_version(void) { return NCELAB_VERSION; }

void ncelab_free(void *p) { free(p); }

/* the error's message into the caller's buffer; returns its code */
static int api_error(const NcError *err, char *msg, size_t msg_len) {
    if (msg && msg_len) snprintf(msg, msg_len, "%s", err->msg);
    return err->code ? err->code : NC_ENUM;
}

static int api_model(TheoryModel *m, int N, const char *rho_spec, const double *support, int M,
                     const char *support_path, double R, int dim, const char *loss_name, NcError *err) {
    NcLoss loss;
    int rc = nc_loss_parse(loss_name ? loss_name : "infonce", "loss", &loss, err);
    if (rc) return rc;
    double *P = NULL;
    if (support && support_path) return nc_fail(err, NC_EUSAGE, "support: give a matrix or a file, not both");
    if (support_path) {
        int Ns;
        if ((rc = theory_support_load(support_path, &Ns, &M, &P, err))) return rc;
        if (N > 0 && N != Ns) {
            free(P);
            return nc_fail(err, NC_EUSAGE, "--classes: %d but %s has %d rows", N, support_path, Ns);
        }
        N = Ns;
    } else if (support) {
        if (N < 2 || M < 1 || N > THEORY_MAX_POINTS || M > THEORY_MAX_POINTS)
            return nc_fail(err, NC_EUSAGE, "support: an N x M matrix with 2 <= N <= %d and 1 <= M <= %d, got %d x %d",
                           THEORY_MAX_POINTS, THEORY_MAX_POINTS, N, M);
        if ((rc = theory_support_check(N, M, support, "support", err))) return rc;
        P = nc_malloc(sizeof(double) * (size_t)N * M);
        memcpy(P, support, sizeof(double) * (size_t)N * M);
    }
    if (N < 2 || N > THEORY_MAX_POINTS) {
        free(P);
        return nc_fail(err, NC_EUSAGE, "--classes: need 2 to %d classes, got %d", THEORY_MAX_POINTS, N);
    }
    double *rho = nc_malloc(sizeof(double) * N);
    rc = theory_rho_parse(rho_spec, N, rho, err);
    if (!rc) rc = theory_model_init(m, N, rho, P, M, R, dim, loss, err);
    free(rho);
    free(P);
    return rc;
}

int ncelab_theory_solve(int N, const char *rho, const double *support, int M, const char *support_path, double R,
                        int dim, const char *loss, const char *k_list, int restarts, uint64_t seed, char **json,
                        char *msg, size_t msg_len) {
    NcError err = {0};
    *json = NULL;
    if (restarts < 0 || restarts > 100) {
        nc_fail(&err, NC_EUSAGE, "--restarts: %d is not in [0, 100]", restarts);
        return api_error(&err, msg, msg_len);
    }
    long *ks;
    int nk;
    if (nc_parse_klist(k_list ? k_list : "1..4096", "--k", &ks, &nk, &err)) return api_error(&err, msg, msg_len);
    TheoryModel m;
    if (api_model(&m, N, rho, support, M, support_path, R, dim, loss, &err)) {
        free(ks);
        return api_error(&err, msg, msg_len);
    }
    TheorySolveOpts so;
    theory_solve_opts_default(&so);
    so.restarts = restarts;
    so.seed = seed;
    TheorySolution *sol = nc_calloc((size_t)nk, sizeof(TheorySolution));
    int rc = theory_sweep(&m, ks, nk, &so, sol, NULL, NULL, &err);
    if (!rc) {
        cJSON *doc = report_theory_json(&m, rho ? rho : "uniform", support_path, sol, nk);
        *json = cJSON_PrintUnformatted(doc);
        cJSON_Delete(doc);
        if (!*json) rc = nc_fail(&err, NC_ENUM, "theory: cannot render the results as JSON");
    }
    for (int i = 0; i < nk; i++) theory_solution_free(&sol[i]);
    free(sol);
    free(ks);
    theory_model_free(&m);
    return rc ? api_error(&err, msg, msg_len) : NC_OK;
}

int ncelab_theory_loss(int N, const char *rho, const double *support, int M, const char *support_path, double R,
                       const char *loss, int64_t k, const double *G, int MG, double *loss_out, double *grad,
                       char *msg, size_t msg_len) {
    NcError err = {0};
    if (k < 1 || k > 1000000000) {
        nc_fail(&err, NC_EUSAGE, "--k: %lld is not in [1, 1000000000]", (long long)k);
        return api_error(&err, msg, msg_len);
    }
    TheoryModel m;
    if (api_model(&m, N, rho, support, M, support_path, R, 0, loss, &err)) return api_error(&err, msg, msg_len);
    int rc = NC_OK;
    if (MG != m.M)
        rc = nc_fail(&err, NC_EUSAGE, "G: a %d x %d matrix, but the model has %d points", MG, MG, m.M);
    if (!rc) rc = theory_check_gram(&m, G, "G", &err);
    if (!rc) *loss_out = theory_loss(&m, (long)k, G, grad);
    theory_model_free(&m);
    return rc ? api_error(&err, msg, msg_len) : NC_OK;
}
