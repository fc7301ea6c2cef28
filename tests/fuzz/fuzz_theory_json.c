// fuzz_theory_json.c -- libFuzzer harness: the input as the theory's JSON files (--support, theory eval --gram).
#include "fuzz_util.h"

#include <math.h>

#include "ncelab/theory.h"

static char path[600];

/* a support matrix that loaded: N x M, rows are distributions, every point reachable */
static void check_support(int N, int M, const double *P) {
    if (N < 2 || N > 2000 || M < 1 || M > 2000) abort();
    for (int c = 0; c < N; c++) {
        double s = 0;
        for (int x = 0; x < M; x++) {
            double p = P[(size_t)c * M + x];
            if (!(p >= 0) || !isfinite(p)) abort();
            s += p;
        }
        if (fabs(s - 1) > 1e-6) abort();
    }
    /* the model built on it (small ones: its set-up is N M^2) */
    if ((double)N * M * M <= 1e5) {
        double *rho = malloc(sizeof(double) * N);
        NcError err;
        if (theory_rho_parse("uniform", N, rho, &err) != NC_OK) abort();
        TheoryModel m;
        if (theory_model_init(&m, N, rho, P, M, 1.0, 0, NC_LOSS_INFONCE, &err) == NC_OK) {
            double sd = 0;
            for (int x = 0; x < M; x++) sd += m.D[x];
            if (fabs(sd - 1) > 1e-6) abort();  /* the negatives' law is a distribution */
            theory_model_free(&m);
        }
        free(rho);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!path[0]) snprintf(path, sizeof path, "%s/theory.json", fuzz_scratch());
    fuzz_write(path, data, size);
    NcError err;
    int N, M;
    double *P = NULL, *G = NULL;
    err.msg[0] = '\0';
    if (theory_support_load(path, &N, &M, &P, &err) == NC_OK) {
        check_support(N, M, P);
        free(P);
    } else if (P || !strstr(err.msg, path)) {
        abort();  /* a refusal names the file and returns nothing */
    }
    err.msg[0] = '\0';
    if (theory_gram_load(path, &M, &G, &err) == NC_OK) {
        if (M < 2 || M > 2000) abort();
        volatile double last = G[(size_t)M * M - 1];
        (void)last;
        free(G);
    } else if (G || !strstr(err.msg, path)) {
        abort();
    }
    return 0;
}
