// test_cli_explore.c -- `ncelab theory explore` end to end: the uniform prior, a known rise, commands, resume, errors.
#define _POSIX_C_SOURCE 200809L
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "cli_util.h"
#include "ncelab/jsonio.h"

static const char *METRICS[4] = {"mean_ce", "mean_ce_balanced", "mean_acc", "avg_binary_ce"};

static const cJSON *get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }
static double num(const cJSON *o, const char *key) {
    const cJSON *v = get(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}
static double at(const cJSON *a, int i) {
    const cJSON *v = cJSON_GetArrayItem(a, i);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static cJSON *load(const char *dir, const char *name) {
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    cJSON *doc = NULL;
    NcError err;
    if (json_load(p, &doc, &err) != NC_OK) printf("      %s\n", err.msg);
    return doc;
}

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* The paper's theorem: with a uniform prior the optimum is the regular simplex for every k, so no
   metric may be reported as changing; mean_ce equals its closed form at every k. */
static void test_uniform(void) {
    char out[400];
    snprintf(out, sizeof out, "%s/uniform", cli_dir);
    int rc = cli_run("theory explore --out %s --rho uniform --classes 2..12 --norm 0.5,1,2 --k 1,64,4096 --phase-map 0", out);
    cJSON *doc = load(out, "explore.json");
    CHECK(rc == 0 && doc, "explore over uniform priors runs (exit %d): %s", rc, cli_err);
    if (!doc) return;
    const cJSON *inst = get(doc, "instances"), *x;
    int n = 0, certified = 1, changed = 0, rises = 0, klen = 1;
    double worst = 0;
    cJSON_ArrayForEach(x, inst) {
        n++;
        certified &= cJSON_IsTrue(get(x, "certified")) && cJSON_IsNull(get(x, "failed_k"));
        const cJSON *k = get(x, "k");
        klen &= cJSON_GetArraySize(k) == 4 && at(k, 3) == 1e9;
        for (int m = 0; m < 4; m++) {
            rises += num(get(x, "rise"), METRICS[m]) != 0;
            changed += cJSON_IsTrue(get(get(x, "change_significant"), METRICS[m]));
            changed += !cJSON_IsTrue(get(get(x, "monotone"), METRICS[m]));
        }
        double N = num(x, "classes"), R = num(x, "R");
        double closed = log1p((N - 1) * exp(-R * R * N / (N - 1)));
        for (int i = 0; i < 4; i++) worst = fmax(worst, fabs(at(get(get(x, "curves"), "mean_ce"), i) - closed));
    }
    CHECK(n == 33 && klen, "33 instances (N = 2..12, R = 0.5, 1, 2), each k = 1, 64, 4096 and the limit 1e9: %d", n);
    CHECK(certified, "every uniform instance is certified (failed_k null)");
    CHECK(rises == 0 && changed == 0, "no metric rises or changes: %d rises, %d changes or non-monotone", rises, changed);
    CHECK(worst < 1e-8, "mean_ce = log(1 + (N-1) exp(-R^2 N/(N-1))) at every k: worst error %.1e", worst);
    const cJSON *sm = get(get(doc, "summary"), "metrics");
    double total = 0;
    for (int m = 0; m < 4; m++) total += num(get(sm, METRICS[m]), "rises");
    CHECK(total == 0 && cJSON_GetArraySize(get(get(doc, "summary"), "counterexamples")) == 0,
          "summary: no rises, no counterexamples");
    cJSON_Delete(doc);
}

/* rho = (0.85, 0.10, 0.04, 0.01), R = 1: the rho-weighted CE rises (0.4611 at k = 1, 0.4715 at
   k = 4096), the class-balanced CE falls (0.9422 to 0.8024): values from `ncelab theory`. */
static void test_known_rise(void) {
    char out[400];
    snprintf(out, sizeof out, "%s/rise", cli_dir);
    int rc = cli_run("theory explore --out %s --rho 0.85,0.10,0.04,0.01 --norm 1 --phase-map 0 --shrink-evals 0", out);
    cJSON *doc = load(out, "explore.json");
    CHECK(rc == 0 && doc, "explore of one prior runs (exit %d): %s", rc, cli_err);
    if (!doc) return;
    const cJSON *x = cJSON_GetArrayItem(get(doc, "instances"), 0), *k = get(x, "k");
    const cJSON *ce = get(get(x, "curves"), "mean_ce"), *bal = get(get(x, "curves"), "mean_ce_balanced");
    CHECK(cJSON_GetArraySize(k) == 14 && at(k, 0) == 1 && at(k, 12) == 4096 && at(k, 13) == 1e9, "k = 1..4096 and 1e9");
    CHECK(cJSON_IsTrue(get(x, "certified")), "certified (max gap %.1e)", num(x, "max_gap"));
    CHECK(fabs(at(ce, 0) - 0.4611) < 1e-4 && fabs(at(ce, 12) - 0.4715) < 1e-4,
          "rho-weighted CE %.5f at k = 1, %.5f at k = 4096 (0.4611, 0.4715)", at(ce, 0), at(ce, 12));
    CHECK(fabs(at(bal, 0) - 0.9422) < 1e-4 && fabs(at(bal, 12) - 0.8024) < 1e-4,
          "balanced CE %.5f at k = 1, %.5f at k = 4096 (0.9422, 0.8024)", at(bal, 0), at(bal, 12));
    const cJSON *rise = get(x, "rise"), *mono = get(x, "monotone");
    CHECK(num(rise, "mean_ce") > 0.01 && cJSON_IsFalse(get(mono, "mean_ce")) &&
              num(get(x, "change"), "mean_ce") > 0 && cJSON_IsTrue(get(get(x, "change_significant"), "mean_ce")),
          "mean_ce reported rising: rise %.5f", num(rise, "mean_ce"));
    CHECK(num(rise, "mean_ce_balanced") == 0 && cJSON_IsTrue(get(mono, "mean_ce_balanced")) &&
              num(get(x, "change"), "mean_ce_balanced") < -0.1,
          "mean_ce_balanced reported falling: change %.5f", num(get(x, "change"), "mean_ce_balanced"));
    CHECK(strstr(cli_out, "counterexample, mean_ce:") && strstr(cli_out, "ncelab theory --classes 4 --rho 0.85,0.10,0.04,0.01"),
          "the counterexample and its command are printed");
    const cJSON *tol = get(get(doc, "config"), "tolerance");
    CHECK(num(tol, "max_gap") == 1e-9 && num(tol, "relative") == 1e-6 && cJSON_IsString(get(tol, "rule")),
          "the tolerance is stated in the output");
    cJSON_Delete(doc);
}

/* compares the metric's curve of an explore record with `ncelab theory`'s JSON of its command */
static double reproduce(const char *command, const cJSON *curve, const char *metric, const char *jpath) {
    const char *args = strstr(command, "ncelab theory ");
    if (!args) return INFINITY;
    int rc = cli_run("%s --json %s", args + strlen("ncelab "), jpath);
    cJSON *doc = NULL;
    NcError err;
    if (rc != 0 || json_load(jpath, &doc, &err) != NC_OK) return INFINITY;
    const cJSON *res = get(doc, "results"), *r;
    double worst = cJSON_GetArraySize(res) == cJSON_GetArraySize(curve) ? 0 : INFINITY;
    int i = 0;
    cJSON_ArrayForEach(r, res) worst = fmax(worst, fabs(num(get(r, "downstream"), metric) - at(curve, i++)));
    cJSON_Delete(doc);
    return worst;
}

/* Every counterexample printed is reproduced by its own `ncelab theory` line; a second call
   resumes; a journal line cut short is dropped; other settings in the same directory are refused. */
static void test_counterexamples_and_resume(void) {
    char out[400], args[1200], jpath[460];
    snprintf(out, sizeof out, "%s/cx", cli_dir);
    snprintf(jpath, sizeof jpath, "%s/repro.json", cli_dir);
    snprintf(args, sizeof args, "theory explore --out %s --instances 6 --seed 3 --classes 3..4 --families heavy,zipf "
                                "--supports disjoint,overlap:1 --k 1,64,4096 --phase-map 5 --shrink-evals 8", out);
    int rc = cli_run("%s", args);
    cJSON *doc = load(out, "explore.json");
    CHECK(rc == 0 && doc, "a random exploration runs (exit %d): %s", rc, cli_err);
    if (!doc) return;
    const cJSON *cx = get(get(doc, "summary"), "counterexamples"), *c;
    int ncx = cJSON_GetArraySize(cx), printed = 1;
    double worst = 0;
    cJSON_ArrayForEach(c, cx) {  /* before cli_run replaces cli_out */
        printed &= strstr(cli_out, get(get(c, "worst"), "command")->valuestring) != NULL;
        printed &= strstr(cli_out, get(get(c, "minimal"), "command")->valuestring) != NULL;
    }
    cJSON_ArrayForEach(c, cx) {
        const char *metric = get(c, "metric")->valuestring;
        const char *which[2] = {"worst", "minimal"};
        for (int j = 0; j < 2; j++) {
            const cJSON *w = get(c, which[j]);
            const char *cmd = get(w, "command")->valuestring;
            worst = fmax(worst, reproduce(cmd, get(w, "curve"), metric, jpath));
        }
    }
    CHECK(ncx >= 1, "counterexamples found: %d", ncx);
    CHECK(printed, "each counterexample's command is printed");
    CHECK(worst < 1e-9, "each command reproduces the curve: worst difference %.1e", worst);
    int n = cJSON_GetArraySize(get(doc, "instances"));
    CHECK(n == 6 + 6, "6 random instances and 6 of the N = 3 map: %d", n);
    double first = at(get(get(cJSON_GetArrayItem(get(doc, "instances"), 0), "curves"), "mean_ce"), 1);
    cJSON_Delete(doc);

    char p[460], html[1 << 16];
    snprintf(p, sizeof p, "%s/explore.html", out);
    cli_slurp(p, html, sizeof html);
    int maps = 0;
    for (const char *s = html; (s = strstr(s, "change k = 1 &#8594; 4096")); s++) maps++;
    CHECK(strstr(html, "<h2>Counterexamples</h2>") && maps == 4, "explore.html: counterexamples and 4 phase maps (%d)", maps);
    snprintf(p, sizeof p, "%s/explore.csv", out);
    char csv[1 << 16];
    cli_slurp(p, csv, sizeof csv);
    CHECK(lines(csv) == 1 + n && strstr(csv, "mean_ce_rise_relative"), "explore.csv: a header and one row per instance");

    rc = cli_run("%s", args);
    CHECK(rc == 0 && strstr(cli_out, "12 instances (12 read back"), "a second call skips every instance: %s", cli_out);
    doc = load(out, "explore.json");
    double again = doc ? at(get(get(cJSON_GetArrayItem(get(doc, "instances"), 0), "curves"), "mean_ce"), 1) : NAN;
    CHECK(again == first, "and reports the same values (%.15g)", again);
    cJSON_Delete(doc);

    /* a killed run: the last line cut short */
    snprintf(p, sizeof p, "%s/explore.jsonl", out);
    FILE *f = fopen(p, "a");
    if (f) { fputs("{\"index\": 3, \"command\": \"ncel", f); fclose(f); }
    rc = cli_run("%s", args);
    CHECK(rc == 0 && strstr(cli_out, "12 instances (12 read back"), "a cut-short journal line is dropped: %s", cli_err);

    rc = cli_run("theory explore --out %s --instances 6 --seed 4 --classes 3..4 --phase-map 0", out);
    CHECK(rc == 2 && strstr(cli_err, "explore.jsonl") && lines(cli_err) == 1, "other settings in the same --out: exit 2: %s",
          cli_err);
}

/* More instances in the same directory: the first ones are read back, but the phase map, which
   comes after them, moves; a record whose index now means another instance is solved again. */
static void test_more_instances(void) {
    char out[400];
    snprintf(out, sizeof out, "%s/more", cli_dir);
    int rc = cli_run("theory explore --out %s --instances 2 --classes 3 --k 1,2 --phase-map 4", out);
    CHECK(rc == 0 && strstr(cli_out, "5 instances (0 read back"), "2 instances and 3 of the map (exit %d)", rc);
    rc = cli_run("theory explore --out %s --instances 3 --classes 3 --k 1,2 --phase-map 4", out);
    CHECK(rc == 0 && strstr(cli_out, "6 instances (2 read back"), "3 instances: the first 2 read back, the map again: %s",
          cli_out);
    cJSON *doc = load(out, "explore.json");
    int triangles = 0, i = 0, in_order = 1;
    const cJSON *x;
    if (doc) cJSON_ArrayForEach(x, get(doc, "instances")) {
        int tri = strncmp(get(x, "family")->valuestring, "triangle:", 9) == 0;
        triangles += tri;
        in_order &= tri == (i >= 3) && num(x, "index") == i;
        i++;
    }
    CHECK(doc && triangles == 3 && in_order, "instances 0..2 random, 3..5 the map (%d triangles)", triangles);
    cJSON_Delete(doc);
}

static int exists(const char *dir, const char *name) {
    char p[500];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* Bad input: one line, exit 2 (options) or 1 (files), and nothing written. */
/* An instance that cannot be certified: rho from Dirichlet(0.3) with N = 8 (instance 148 of
   --seed 7), whose gap at k = 1 is about 2e-6, far above 1e-9. Its sweep stops there: failed_k = 1,
   the curves after k = 1 are null, and the CSV leaves its change empty. */
static void test_stops_uncertified(void) {
    char out[400];
    snprintf(out, sizeof out, "%s/stop", cli_dir);
    int rc = cli_run("theory explore --out %s --rho 0.500049234429,0.000209178680292,0.218018047565,0.242303313798,"
                     "0.0120870049619,0.000119639465739,0.0244779009898,0.00273568011038 --k 1..64 --phase-map 0 "
                     "--shrink-evals 0", out);
    cJSON *doc = load(out, "explore.json");
    CHECK(rc == 0 && doc, "explore of an ill-conditioned Dirichlet(0.3) prior runs (exit %d): %s", rc, cli_err);
    if (!doc) return;
    const cJSON *x = cJSON_GetArrayItem(get(doc, "instances"), 0), *ce = get(get(x, "curves"), "mean_ce");
    int nulls = 0;
    for (int i = 1; i < cJSON_GetArraySize(ce); i++) nulls += cJSON_IsNull(cJSON_GetArrayItem(ce, i));
    CHECK(!cJSON_IsTrue(get(x, "certified")) && num(x, "failed_k") == 1 && num(x, "max_gap") > 1e-9,
          "not certified, failed_k = 1, max_gap %.1e > 1e-9", num(x, "max_gap"));
    CHECK(isfinite(at(ce, 0)) && cJSON_GetArraySize(ce) == 8 && nulls == 7,
          "mean_ce solved at k = 1 (%.6g), null at the 7 k after it (%d nulls)", at(ce, 0), nulls);
    cJSON_Delete(doc);
    char p[500], *csv = NULL;
    size_t len;
    NcError err;
    snprintf(p, sizeof p, "%s/explore.csv", out);
    int ok = nc_read_file(p, &csv, &len, &err) == NC_OK && strstr(csv, ",0,") && !strstr(csv, "nan");
    CHECK(ok, "explore.csv: the row says uncertified and prints no nan");
    free(csv);
}

static void test_bad_input(void) {
    char out[400];
    snprintf(out, sizeof out, "%s/bad", cli_dir);
    struct {
        const char *args, *needle;
        int code;
    } cases[] = {
        {"--families ''", "--families", 2},
        {"--families dirichlet:0", "alpha", 2},
        {"--families dirichlet:-1", "alpha", 2},
        {"--families zipf,dirichlet", "alpha", 2},
        {"--families gauss", "unknown family", 2},
        {"--classes 1..4", "at least 2", 2},
        {"--classes 5..3", "empty range", 2},
        {"--norm 0", "--norm", 2},
        {"--supports overlap:0", "--supports", 2},
        {"--loss hinge", "--loss", 2},
        {"--rho 0.5,0.6", "sum", 2},
        {"--rho 'uniform;'", "--rho", 2},
        {"--instances 0", "--instances", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = cli_run("theory explore --out %s --phase-map 0 %s", out, cases[i].args);
        CHECK(rc == cases[i].code && strstr(cli_err, cases[i].needle) && lines(cli_err) == 1 && access(out, F_OK) != 0,
              "%s: exit %d, one line, nothing written: %s", cases[i].args, rc, cli_err);
    }
    int rc = cli_run("theory explore --phase-map 0");
    CHECK(rc == 2 && strstr(cli_err, "--out"), "no --out: exit 2: %s", cli_err);
    const char *sup = cli_file("notstochastic.json", "[[0.7, 0.2], [0.4, 0.4]]");
    rc = cli_run("theory explore --out %s --phase-map 0 --support %s", out, sup);
    CHECK(rc == 1 && strstr(cli_err, "notstochastic.json") && strstr(cli_err, "row 1") && lines(cli_err) == 1 &&
              access(out, F_OK) != 0,
          "a support that is not row-stochastic: exit 1, nothing written: %s", cli_err);
    const char *file = cli_file("plain.txt", "not a directory\n");
    rc = cli_run("theory explore --out %s/sub --instances 2 --classes 3 --k 1,2 --phase-map 0", file);
    CHECK(rc == 1 && strstr(cli_err, "plain.txt") && lines(cli_err) == 1, "--out under a file: exit 1: %s", cli_err);
    /* an output directory whose explore.json is a directory: the run's files are refused, none half-written */
    char dir[300], sub[340];
    snprintf(dir, sizeof dir, "%s/blocked", cli_dir);
    mkdir(dir, 0755);
    snprintf(sub, sizeof sub, "%s/explore.json", dir);
    mkdir(sub, 0755);
    rc = cli_run("theory explore --out %s --instances 2 --classes 3 --k 1,2 --phase-map 0", dir);
    CHECK(rc == 1 && strstr(cli_err, "explore.json") && lines(cli_err) == 1 && !exists(dir, "explore.csv") &&
              !exists(dir, "explore.html"),
          "explore.json cannot be written: exit 1, no csv or html: %s", cli_err);
}

int main(void) {
    cli_setup("cli_explore");
    test_bad_input();
    test_uniform();
    test_known_rise();
    test_counterexamples_and_resume();
    test_more_instances();
    test_stops_uncertified();
    return check_done();
}
