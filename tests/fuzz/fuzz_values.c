// fuzz_values.c -- libFuzzer harness: the input as the value of every option parser (numbers, --k, --rho, SPEC, names).
#include "fuzz_util.h"

#include <math.h>

#include "../../src/data/data_internal.h"
#include "ncelab/augment.h"
#include "ncelab/optim.h"
#include "ncelab/sampler.h"
#include "ncelab/theory.h"

/* what a strict number never contains: spaces, hexadecimal, inf/nan spellings */
static int plain_number_text(const char *s) {
    return *s && strspn(s, "+-.0123456789eE") == strlen(s);
}

static const char *input;  /* this run's value */

/* refused: a failure names the option, in one line (unless the value quoted in it has a newline) */
static void refused(const NcError *err, const char *what) {
    if (!strstr(err->msg, what) || (strchr(err->msg, '\n') && !strchr(input, '\n'))) abort();
}

static void numbers(const char *s) {
    NcError err;
    double d;
    if (nc_parse_double(s, "--x", &d, &err) == NC_OK) {
        if (!isfinite(d) || !plain_number_text(s)) abort();
    } else {
        refused(&err, "--x");
    }
    static const long ranges[][2] = {{1, 1000000000L}, {0, 9007199254740992L}, {-10, 10}, {-9223372036854775807L - 1, 9223372036854775807L}};
    for (int i = 0; i < 4; i++) {
        long v;
        if (nc_parse_long(s, "--n", ranges[i][0], ranges[i][1], &v, &err) == NC_OK) {
            if (v < ranges[i][0] || v > ranges[i][1] || !plain_number_text(s)) abort();
        } else {
            refused(&err, "--n");
        }
    }
}

static void klist(const char *s) {
    NcError err;
    long *ks;
    int n;
    if (nc_parse_klist(s, "--k", &ks, &n, &err) == NC_OK) {
        if (n < 1 || strstr(s, ",,") || s[0] == ',' || s[strlen(s) - 1] == ',') abort();
        for (int i = 0; i < n; i++)
            if (ks[i] < 1 || ks[i] > 1000000000L || (i && ks[i] <= ks[i - 1])) abort();  /* sorted, distinct */
        free(ks);
    } else {
        if (ks) abort();
        refused(&err, "--k");
    }
}

static void rho(const char *s) {
    int commas = 0;
    for (const char *p = s; *p; p++) commas += *p == ',';
    int Ns[3] = {2, 3, commas + 1};
    for (int i = 0; i < 3; i++) {
        if (Ns[i] < 2 || (i == 2 && Ns[i] <= 3)) continue;
        double *r = malloc(sizeof(double) * Ns[i]);
        NcError err;
        if (theory_rho_parse(s, Ns[i], r, &err) == NC_OK) {
            double sum = 0;
            for (int c = 0; c < Ns[i]; c++) {
                if (!(r[c] > 0) || !isfinite(r[c])) abort();
                sum += r[c];
            }
            if (fabs(sum - 1) > 1e-6) abort();
        } else {
            refused(&err, "--rho");
        }
        free(r);
    }
}

static void spec(const char *s) {
    DataSpec sp;
    NcError err;
    if (data_spec_parse(s, &sp, &err) == NC_OK) {
        if (strnlen(sp.path, sizeof sp.path) == sizeof sp.path || strnlen(sp.name, sizeof sp.name) == sizeof sp.name)
            abort();
        if (sp.kind == DATA_SRC_SYNTH && (sp.synth_classes < 2 || sp.synth_classes > 1000 || sp.synth_size < 8 ||
                                          sp.synth_size > 256 || sp.synth_train < 1 || sp.synth_test < 1))
            abort();
        if (sp.kind != DATA_SRC_SYNTH && !sp.path[0]) abort();
    } else {
        refused(&err, "SPEC");
    }
}

static void names(const char *s) {
    NcError err;
    NcLoss loss;
    OptConfig oc;
    LrKind lr;
    AugConfig aug;
    int mode;
    nc_loss_parse(s, "--loss", &loss, &err);
    optim_parse(s, 5e-4f, &oc, &err);
    lr_parse(s, &lr, &err);
    sampler_positives_parse(s, "--positives", &mode, &err);
    aug_preset(s, "--aug", &aug, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = fuzz_cstr(data, size);
    input = s;
    numbers(s);
    klist(s);
    rho(s);
    spec(s);
    names(s);
    free(s);
    return 0;
}
