// test_cli_theory.c -- the shipped binary end to end: theory, theory eval, demo, bench, errors.
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "cli_util.h"
#include "ncelab/jsonio.h"

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void test_basics(void) {
    CHECK(cli_run("--version") == 0 && strstr(cli_out, "ncelab " NCELAB_VERSION), "--version: %s", cli_out);
    CHECK(cli_run("--help") == 0 && strstr(cli_out, "theory") && strstr(cli_out, "demo"), "--help lists commands");
    CHECK(cli_run("theory --help") == 0 && strstr(cli_out, "--support"), "theory --help lists options");
    CHECK(cli_run("frobnicate") == 2 && strstr(cli_err, "frobnicate"), "unknown command: exit 2: %s", cli_err);
}

/* The JSON contract of `theory` and the regular simplex through the binary. */
static void test_theory_json(void) {
    char path[400];
    snprintf(path, sizeof path, "%s/t.json", cli_dir);
    int rc = cli_run("theory --classes 6 --k 1,16,1e6 --norm 1.5 --json %s --svg %s/t.svg", path, cli_dir);
    CHECK(rc == 0 && strstr(cli_out, "1000000"), "theory runs (exit %d) and prints a table", rc);
    cJSON *doc;
    NcError err;
    CHECK(json_load(path, &doc, &err) == NC_OK, "theory JSON parses");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(doc, "results");
    CHECK(cJSON_GetArraySize(res) == 3 && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(doc, "model")),
          "model and 3 results");
    const char *keys[] = {"k", "nce_loss", "gram", "norms", "certificate", "simplex_deviation", "collision_prob",
                          "saunshi_bound", "downstream"};
    const char *ckeys[] = {"gap", "min_eig", "kkt_residual", "optimal"};
    const char *dkeys[] = {"mean_ce", "mean_ce_balanced", "mean_acc", "avg_binary_ce", "kplus1_ce"};
    double closed = log1p(5 * exp(-2.25 * 6 / 5.0)), worst = 0, dev = 0;
    int have = 1, optimal = 1;
    const cJSON *r;
    cJSON_ArrayForEach(r, res) {
        for (size_t i = 0; i < 9; i++) have &= cJSON_GetObjectItemCaseSensitive(r, keys[i]) != NULL;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(r, "certificate"), *d = cJSON_GetObjectItemCaseSensitive(r, "downstream");
        for (size_t i = 0; i < 4; i++) have &= cJSON_GetObjectItemCaseSensitive(c, ckeys[i]) != NULL;
        for (size_t i = 0; i < 5; i++) have &= cJSON_GetObjectItemCaseSensitive(d, dkeys[i]) != NULL;
        optimal &= cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "optimal"));
        worst = fmax(worst, rel_err(num(d, "mean_ce"), closed, 1e-300));
        dev = fmax(dev, num(r, "simplex_deviation"));
        have &= cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "gram")) == 6;
    }
    CHECK(have, "every contract field is present");
    CHECK(optimal && dev <= 1e-6 && worst <= 1e-8, "certified simplex (dev %.1e), mean_ce vs closed form: %.1e", dev, worst);
    double tau16 = num(cJSON_GetArrayItem(res, 1), "collision_prob");
    CHECK(rel_err(tau16, 1 - pow(5.0 / 6, 16), 1e-300) < 1e-12, "tau_16 = 1 - (5/6)^16: %.12f", tau16);

    /* theory eval at the optimum: same loss, certified; at a perturbed G: not optimal */
    const cJSON *gram = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(res, 1), "gram");
    char *gtext = cJSON_PrintUnformatted(gram);
    const char *gfile = cli_file("g.json", gtext);
    char epath[400];
    snprintf(epath, sizeof epath, "%s/e.json", cli_dir);
    rc = cli_run("theory eval --gram %s --k 16 --norm 1.5 --json %s", gfile, epath);
    cJSON *ev;
    CHECK(rc == 0 && json_load(epath, &ev, &err) == NC_OK, "theory eval runs (exit %d)", rc);
    double l0 = num(cJSON_GetArrayItem(res, 1), "nce_loss"), l1 = num(ev, "nce_loss");
    CHECK(rel_err(l1, l0, 1e-300) < 1e-13 && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ev, "grad")) == 6 &&
              cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ev, "certificate"), "optimal")),
          "eval at the optimum: loss %.15f = %.15f, optimal", l1, l0);
    cJSON_Delete(ev);
    /* shrink the Gram matrix by 10%: feasible, not optimal */
    cJSON *row;
    cJSON_ArrayForEach(row, (cJSON *)gram) {
        cJSON *v;
        cJSON_ArrayForEach(v, row) cJSON_SetNumberValue(v, 0.9 * v->valuedouble);
    }
    free(gtext);
    gtext = cJSON_PrintUnformatted(gram);
    gfile = cli_file("g2.json", gtext);
    rc = cli_run("theory eval --gram %s --k 16 --norm 1.5 --json %s", gfile, epath);
    CHECK(rc == 0 && json_load(epath, &ev, &err) == NC_OK &&
              cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ev, "certificate"), "optimal")),
          "eval at 0.9 G: optimal false");
    cJSON_Delete(ev);
    free(gtext);
    cJSON_Delete(doc);
    char svgp[400], buf[64] = {0};
    snprintf(svgp, sizeof svgp, "%s/t.svg", cli_dir);
    FILE *f = fopen(svgp, "r");
    if (f) { if (!fread(buf, 1, 5, f)) buf[0] = 0; fclose(f); }
    CHECK(strncmp(buf, "<?xml", 5) == 0, "--svg writes an SVG document");
}

/* Overlapping supports from a file; NCE loss. */
static void test_support_and_nce(void) {
    const char *sup = cli_file("sup.json", "{\"support\": [[0.5, 0.5, 0, 0], [0, 0.2, 0.8, 0], [0, 0, 0.3, 0.7]]}");
    int rc = cli_run("theory --support %s --rho 0.5,0.3,0.2 --k 4 --json %s/s.json", sup, cli_dir);
    CHECK(rc == 0 && strstr(cli_out, "M = 4") && strstr(cli_out, "yes"), "theory with --support: certified (exit %d)", rc);
    rc = cli_run("theory --classes 4 --loss nce --k 1,64");
    CHECK(rc == 0 && strstr(cli_out, "loss = nce"), "theory --loss nce (exit %d)", rc);
}

/* Bad input: exit 2 for options, 1 for files, one line naming the culprit (and the bad item). */
static void test_errors(void) {
    struct { const char *args; int code; const char *needle, *item; } cases[] = {
        {"theory --classes 3 --k 1,,2", 2, "--k", "item 2 of '1,,2' is empty"},
        {"theory --classes 3 --k 4,", 2, "--k", "item 2 of '4,'"},
        {"theory --classes 3 --k 0x10", 2, "--k", "'0x10'"},
        {"theory --classes 3 --k ' 4'", 2, "--k", "' 4'"},
        {"theory --classes 3 --k 4x", 2, "--k", "'4x'"},
        {"theory --classes 3 --k 1,4x,8", 2, "--k", "'4x'"},
        {"theory --classes 3 --k 1..64x", 2, "--k", "'1..64x'"},
        {"theory --classes 3x", 2, "--classes", "'3x'"},
        {"theory --classes ' 3'", 2, "--classes", "' 3'"},
        {"theory --classes 3 --norm 1x", 2, "--norm", "'1x'"},
        {"theory --classes 3 --norm 0x1p0", 2, "--norm", "'0x1p0'"},
        {"theory --classes 3 --norm inf", 2, "--norm", "'inf'"},
        {"theory --classes 3 --dim 2.5", 2, "--dim", "'2.5'"},
        {"theory --classes 3 --restarts 1e", 2, "--restarts", "'1e'"},
        {"theory --classes 3 --seed 0x7", 2, "--seed", "'0x7'"},
        {"theory --classes 2 --rho 0.5,,0.5", 2, "--rho", "probability 2 of '0.5,,0.5' is empty"},
        {"theory --classes 2 --rho 0.5,0.5,", 2, "--rho", "is empty"},
        {"theory --classes 2 --rho ' 0.5,0.5'", 2, "--rho", "' 0.5'"},
        {"theory --classes 2 --rho 0x1p-1,0.5", 2, "--rho", "'0x1p-1'"},
        {"theory --classes 3 --rho zipf:1x", 2, "zipf", "'1x'"},
        {"theory eval --gram g.json --k 0x10", 2, "--k", "'0x10'"},
        {"bench --model convnet --batch 4x", 2, "--batch", "'4x'"},
        {"train --data synth:2 --k 4 --lr 0.1x --out /nonexistent", 2, "--lr", "'0.1x'"},
        {"train --data synth:2 --k ' 4' --out /nonexistent", 2, "--k", "' 4'"},
        {"train --data synth:2x --k 4 --out /nonexistent", 2, "synth N", "'2x'"},
        {"sweep --data synth:2 --k 1,,4 --out /nonexistent", 2, "--k", "item 2"},
        {"data info synth:2 --resize 8,8x", 2, "--resize", "'8x'"},
        {"data info synth:2 --imbalance zipf:1,", 2, "--imbalance", "'zipf:1,'"},
        {"theory --classes 3 --rho 0.5,0.3,0.1", 2, "--rho", NULL},
        {"theory --classes 3 --rho 0.5,0.6,-0.1", 2, "--rho", NULL},
        {"theory --classes 3 --rho zipf:x", 2, "zipf", NULL},
        {"theory --classes 3 --rho 0.5,0.5", 2, "--rho", NULL},
        {"theory --classes 3 --k 0", 2, "--k", NULL},
        {"theory --classes 3 --k -4", 2, "--k", NULL},
        {"theory --classes 3 --k 1..0", 2, "--k", NULL},
        {"theory --classes 3 --norm 0", 2, "--norm", NULL},
        {"theory --classes 3 --norm -1", 2, "--norm", NULL},
        {"theory --classes 3 --norm nan", 2, "--norm", NULL},
        {"theory --classes 1", 2, "--classes", NULL},
        {"theory --classes 3 --dim 5", 2, "--dim", NULL},
        {"theory --classes 3 --loss foo", 2, "--loss", NULL},
        {"theory --classes 3 --frob 2", 2, "--frob", NULL},
        {"theory --classes", 2, "--classes", NULL},
        {"theory", 2, "--classes", NULL},
        {"theory --support /nonexistent/s.json", 1, "/nonexistent/s.json", NULL},
        {"theory eval --gram /nonexistent/g.json --k 2", 1, "/nonexistent/g.json", NULL},
        {"theory eval --k 2", 2, "--gram", NULL},
        {"theory eval --gram /dev/zero --k 2", 1, "/dev/zero: not a regular file", NULL},
        {"theory --support /dev/zero", 1, "/dev/zero: not a regular file", NULL},
        {"bench --model vgg16 --steps 1", 2, "--model", NULL},
        {"bench --model convnet --batch 0", 2, "--batch", NULL},
        {"bench --model convnet --batch 4 --k 0", 2, "--k", NULL},
        {"bench --model convnet --batch 1", 2, "--batch", NULL},
        {"bench --model convnet --batch 4 --k 1000001", 2, "--k", NULL},
        {"bench --model convnet --batch 4 --seconds 0", 2, "--seconds", NULL},
        {"bench --model convnet --batch 4 --seconds 1s", 2, "--seconds", "'1s'"},
        {"bench --model convnet --batch 4 --seconds 3601", 2, "--seconds", NULL},
        {"bench", 2, "bench", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = cli_run("%s", cases[i].args);
        int lines = 0;
        for (const char *p = cli_err; *p; p++) lines += *p == '\n';
        CHECK(rc == cases[i].code && strstr(cli_err, cases[i].needle) && lines == 1 &&
                  (!cases[i].item || strstr(cli_err, cases[i].item)),
              "`ncelab %s` -> exit %d (want %d): %.*s", cases[i].args, rc, cases[i].code,
              (int)strcspn(cli_err, "\n"), cli_err);
    }
    struct { const char *name, *text, *args, *needle; } files[] = {
        {"bad1.json", "[[0.5, 0.5], [0.2, 0.7]]", "theory --support %s", "row 2 sums"},
        {"bad2.json", "[[0.5, 0.5], [0.2]]", "theory --support %s", "row 2 has 1"},
        {"bad3.json", "[[0.5, 0.5], [1.0, \"x\"]]", "theory --support %s", "row 2, entry 2"},
        {"bad4.json", "[[0.5, 0.5], [1.0, 0.0", "theory --support %s", "malformed JSON"},
        {"bad5.json", "[[1, 0, 0], [1, 0, 0]]", "theory --support %s", "point 2"},
        {"g1.json", "[[1, 0.5], [0.4, 1]]", "theory eval --gram %s --k 3", "not symmetric"},
        {"g2.json", "[[1, 2], [2, 1]]", "theory eval --gram %s --k 3", "positive semidefinite"},
        {"g3.json", "[[1, 0, 0], [0, 1]]", "theory eval --gram %s --k 3", "not square"},
        {"g4.json", "[[4, 0], [0, 1]]", "theory eval --gram %s --k 3", "R^2"},
        {"g5.json", "[[1, 0], [0, 1]]", "theory eval --gram %s --k 3 --support %s/sup.json", "model has 4 points"},
        {"g6.json", "{\"a\": 1}", "theory eval --gram %s --k 3", "square matrix"},
        {"g7.json", "[[1, 0], [0, 1]] xyz", "theory eval --gram %s --k 3", "trailing text after the JSON document"},
        {"g8.json", "[[1, 0], [0, \"1\"]]", "theory eval --gram %s --k 3", "entry (2,2) is not a number"},
        {"bad6.json", "[[1, 0], [0, 1]]\n{}", "theory --support %s", "line 2 (byte 17)"},
        {"bad7.json", "{\"support\": [[1, 0], [0, 1]]}}", "theory --support %s", "trailing text"},
        {"g9.json", "[[1, 0, 0], [], []]", "theory eval --gram %s --k 3", "19 bytes cannot hold 3 rows of 3"},
        {"g10.json", "[[1, 0, 0], [0, 1, 0]]", "theory eval --gram %s --k 3", "row 1 has 3 entries, expected 2"},
        {"bad8.json", "{\"support\": [[0.5, 0.5], [1], [1]]}", "theory --support %s", "row 2 has 1 entries, row 1 has 2"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *p = cli_file(files[i].name, files[i].text);
        int rc = cli_run(files[i].args, p, cli_dir);
        CHECK(rc == 1 && strstr(cli_err, files[i].needle) && strstr(cli_err, files[i].name),
              "%s (%s) -> exit %d: %.*s", files[i].name, files[i].text, rc, (int)strcspn(cli_err, "\n"), cli_err);
    }
    /* sizes are checked before the matrix is allocated (100001 x 100001 doubles would be 80 GB) */
    size_t n = 100001;
    char *big = malloc(4 * n + 8), *q = big;
    *q++ = '[';
    for (size_t i = 0; i < n; i++) { *q++ = '0'; *q++ = i + 1 < n ? ',' : ']'; }
    *q = '\0';
    int rc = cli_run("theory eval --gram %s --k 3", cli_file("huge_gram.json", big));
    CHECK(rc == 1 && strstr(cli_err, "100001 rows is more than the 2000 allowed"), "a Gram file of 100001 rows is refused: %.*s",
          (int)strcspn(cli_err, "\n"), cli_err);
    q = big + 1;
    for (size_t i = 0; i < n; i++) { memcpy(q, "[1]", 3); q[3] = i + 1 < n ? ',' : ']'; q += 4; }
    *q = '\0';
    rc = cli_run("theory --support %s --k 3", cli_file("huge_support.json", big));
    CHECK(rc == 1 && strstr(cli_err, "100001 rows is more than the 2000 allowed"), "a support file of 100001 rows is refused: %.*s",
          (int)strcspn(cli_err, "\n"), cli_err);
    free(big);
    /* whitespace after the document is not trailing text */
    const char *ws = cli_file("ws.json", "{\"support\": [[1, 0], [0, 1]]}\n \t\r\n\n");
    rc = cli_run("theory --support %s --k 1,2", ws);
    CHECK(rc == 0, "a support file ending in blank lines is read (exit %d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    ws = cli_file("gws.json", "[[1, 0], [0, 1]]\n\n");
    rc = cli_run("theory eval --gram %s --k 3", ws);
    CHECK(rc == 0, "a Gram file ending in blank lines is read (exit %d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    /* an output that cannot be written fails with exit 1 and leaves nothing behind */
    rc = cli_run("theory --classes 3 --k 2 --json /proc/ncelab-no/such/dir/x.json");
    CHECK(rc == 1 && strstr(cli_err, "x.json"), "unwritable --json -> exit %d: %s", rc, cli_err);
}

static void test_demo_and_bench(void) {
    int rc = cli_run("demo --theory-only --out %s/out", cli_dir);
    CHECK(rc == 0 && strstr(cli_out, "4096") && !strstr(cli_out, "NOT"), "demo runs, all certified (exit %d)", rc);
    cJSON *doc;
    NcError err;
    char p[400];
    snprintf(p, sizeof p, "%s/out/theory_zipf1.json", cli_dir);
    CHECK(json_load(p, &doc, &err) == NC_OK && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "results")) == 13,
          "demo wrote theory_zipf1.json with 13 values of k");
    cJSON_Delete(doc);
    snprintf(p, sizeof p, "%s/b.json", cli_dir);
    rc = cli_run("bench --theory --repeats 1 --json %s", p);
    CHECK(rc == 0 && json_load(p, &doc, &err) == NC_OK, "bench --theory runs and writes JSON (exit %d)", rc);
    const cJSON *th = cJSON_GetObjectItemCaseSensitive(doc, "theory");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(th, "sweeps_certified")) &&
              cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(th, "overlap_certified")) && num(th, "eval_n100_k1e6_ms") > 0,
          "bench: every timed solve is certified");
    cJSON_Delete(doc);
    /* the training step with k beyond the batch: negatives from a queue of k, the loss's share */
    rc = cli_run("bench --model convnet --batch 4 --k 70 --steps 2 --threads 1 --json %s", p);
    CHECK(rc == 0 && json_load(p, &doc, &err) == NC_OK && strstr(cli_out, "from a queue of 70"),
          "bench --model with k = 70 > 2B - 2 runs from a queue (exit %d)", rc);
    CHECK(num(doc, "queue") == 70 && num(doc, "loss_ms") > 0 && num(doc, "loss_share") > 0 && num(doc, "loss_share") < 1,
          "bench --model: queue %g, loss %.3f ms, share %.3f of the step", num(doc, "queue"), num(doc, "loss_ms"),
          num(doc, "loss_share"));
    cJSON_Delete(doc);
    /* --seconds: timed steps past --steps until the window has passed, every one in steps_ms */
    rc = cli_run("bench --model convnet --batch 4 --k 6 --steps 2 --seconds 0.5 --threads 1 --json %s", p);
    CHECK(rc == 0 && json_load(p, &doc, &err) == NC_OK, "bench --seconds 0.5 runs (exit %d)", rc);
    const cJSON *sm = cJSON_GetObjectItemCaseSensitive(doc, "steps_ms");
    double sum = 0, lo = 1e300, hi = 0;
    for (int j = 0; j < cJSON_GetArraySize(sm); j++) {
        double v = cJSON_GetArrayItem(sm, j)->valuedouble;
        sum += v; lo = v < lo ? v : lo; hi = v > hi ? v : hi;
    }
    char want[64];
    snprintf(want, sizeof want, "(median of %d)", (int)num(doc, "steps"));
    CHECK(num(doc, "steps") > 2 && cJSON_GetArraySize(sm) == (int)num(doc, "steps") && num(doc, "seconds") == 0.5 &&
              sum >= 400 && lo == num(doc, "ms_min") && hi == num(doc, "ms_max") && strstr(cli_out, want),
          "bench --seconds 0.5: %g steps, %d timed, %.0f ms of steps, min %.2f max %.2f", num(doc, "steps"),
          cJSON_GetArraySize(sm), sum, lo, hi);
    cJSON_Delete(doc);
}

int main(void) {
    cli_setup("cli_theory");
    test_basics();
    test_theory_json();
    test_support_and_nce();
    test_errors();
    test_demo_and_bench();
    return check_done();
}
