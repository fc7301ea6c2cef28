// test_cli_sweep.c -- ncelab sweep end to end on synthetic data: the results.json contract, the
// summary's mean and std against the runs, CSV and SVG files, a sweep killed mid-way and
// resumed giving the results of an uninterrupted one, refusals, and report.html rendered by
// headless Chromium into a screenshot that is not blank.
#define _DEFAULT_SOURCE
#include "check.h"
#include "cli_util.h"
#include "ncelab/jsonio.h"

#include <limits.h>
#include <png.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SWEEP "sweep --data synth:4:16:300 --k 1,4 --batch 16 --threads 2 --seed 5"

static cJSON *load(const char *dir, const char *name) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    cJSON *doc = NULL;
    NcError e;
    json_load(p, &doc, &e);
    return doc;
}

static double num(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p++) n++;
    return n;
}

static char *slurp(const char *dir, const char *name, size_t *n) {
    char p[600], *buf = NULL;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    NcError e;
    size_t m = 0;
    if (nc_read_file(p, &buf, &m, &e)) return NULL;
    if (n) *n = m;
    return buf;
}

/* The fraction of pixels that differ from the page background (the top-left pixel), and the
   number of distinct colours among the first 4096 seen. */
static int screenshot_ink(const char *path, double *ink, int *colours) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&im, path)) return 0;
    im.format = PNG_FORMAT_RGB;
    png_bytep buf = malloc(PNG_IMAGE_SIZE(im));
    if (!buf || !png_image_finish_read(&im, NULL, buf, 0, NULL)) { free(buf); return 0; }
    size_t np = (size_t)im.width * im.height, diff = 0;
    static uint32_t seen[4096];
    int ns = 0;
    for (size_t i = 0; i < np; i++) {
        uint32_t c = (uint32_t)buf[3 * i] << 16 | (uint32_t)buf[3 * i + 1] << 8 | buf[3 * i + 2];
        if (memcmp(buf + 3 * i, buf, 3) != 0) diff++;
        int known = 0;
        for (int j = 0; j < ns && !known; j++) known = seen[j] == c;
        if (!known && ns < 4096) seen[ns++] = c;
    }
    *ink = (double)diff / (double)np;
    *colours = ns;
    free(buf);
    return 1;
}

int main(void) {
    cli_setup("cli_sweep");
    char a[400], b[400], p[600];
    snprintf(a, sizeof a, "%s/a", cli_dir);
    snprintf(b, sizeof b, "%s/b", cli_dir);

    /* an uninterrupted sweep: 2 values of k x 2 seeds */
    int rc = cli_run(SWEEP " --seeds 2 --epochs 2 --out %s", a);
    CHECK(rc == 0, "sweep of 2 k x 2 seeds (exit %d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    CHECK(strstr(cli_out, "mean clf") && strstr(cli_out, "report.html"), "a summary table on the terminal");
    cJSON *res = load(a, "results.json");
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(res, "runs"), *sum = cJSON_GetObjectItemCaseSensitive(res, "summary");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(res, "config"), *th = cJSON_GetObjectItemCaseSensitive(res, "theory");
    CHECK(cJSON_IsArray(runs) && cJSON_GetArraySize(runs) == 4, "results.json: 4 runs");
    CHECK(cJSON_IsObject(cfg) && num(cfg, "seeds") == 2 && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cfg, "ks")) == 2,
          "results.json: the configuration with ks and seeds");
    int fields = 1;
    const cJSON *r;
    cJSON_ArrayForEach(r, runs) {
        const char *need[] = {"k", "seed", "final_loss", "train_seconds", "collision_rate"};
        for (int i = 0; i < 5; i++) fields &= isfinite(num(r, need[i]));
        for (int l = 0; l < 2; l++) {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(r, l ? "head" : "features");
            const char *mn[] = {"mean_acc", "linear_acc", "knn_acc", "simplex_deviation", "within_class_ratio"};
            for (int i = 0; i < 5; i++) fields &= isfinite(num(m, mn[i]));
            fields &= num(m, "mean_acc") > 0.5;  /* 4 well-separated classes */
        }
    }
    CHECK(fields, "every run has k, seed, final_loss, train_seconds, collision_rate and both layers' metrics (accuracy > 0.5)");
    CHECK(num(cJSON_GetArrayItem(runs, 0), "k") == 1 && num(cJSON_GetArrayItem(runs, 1), "seed") == 6 &&
              num(cJSON_GetArrayItem(runs, 3), "k") == 4, "runs in order: k = 1 seeds 5, 6, then k = 4");
    /* the summary's mean and std against the runs */
    double worst = 0;
    int nsum = cJSON_GetArraySize(sum);
    cJSON_ArrayForEach(r, sum) {
        double k = num(r, "k");
        const char *layer = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "layer"));
        double v[2];
        int n = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, runs) if (num(x, "k") == k && n < 2 && layer)
            v[n++] = num(cJSON_GetObjectItemCaseSensitive(x, layer), "within_class_ratio");
        double mean = (v[0] + v[1]) / 2, sd = fabs(v[0] - v[1]) / sqrt(2.0);
        worst = fmax(worst, fmax(fabs(mean - num(r, "within_class_ratio_mean")), fabs(sd - num(r, "within_class_ratio_std"))));
        if (n != 2) worst = INFINITY;
    }
    CHECK(nsum == 4 && worst < 1e-9 * fmax(1.0, worst), "summary: mean and sample std per k and layer match the runs (worst %.1e)", worst);
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(th, "results");
    double tau4 = num(cJSON_GetArrayItem(tr, 1), "collision_prob");
    CHECK(cJSON_GetArraySize(tr) == 2 && num(th, "classes") == 4 && fabs(tau4 - (1 - pow(0.75, 4))) < 1e-12 &&
              cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(tr, 1), "optimal")) &&
              num(cJSON_GetArrayItem(tr, 1), "simplex_deviation") < 1e-6,
          "theory for the data's prior: tau_4 = 1 - 0.75^4, a certified regular simplex (tau_4 = %.6f)", tau4);
    /* CSV and SVG */
    char *csv = slurp(a, "results.csv", NULL), *scsv = slurp(a, "summary.csv", NULL);
    CHECK(csv && count(csv, "\n") == 5 && strncmp(csv, "k,seed,epochs,final_loss", 24) == 0, "results.csv: a header and 4 runs");
    CHECK(scsv && count(scsv, "\n") == 5 && strstr(scsv, "mean_acc_mean,mean_acc_std"), "summary.csv: a header and 2 k x 2 layers");
    free(csv);
    free(scsv);
    const char *svgs[] = {"accuracy_head.svg", "accuracy_features.svg", "collision.svg", "collision_rate.svg",
                          "simplex.svg", "theory.svg"};
    int svg_ok = 1;
    for (int i = 0; i < 6; i++) {
        char *s = slurp(a, svgs[i], NULL);
        svg_ok &= s && strstr(s, "<svg") && strstr(s, "</svg>") && count(s, "<path") + count(s, "<polyline") + count(s, "<line") > 3;
        svg_ok &= s && strstr(s, "class=\"legend-box\"") != NULL;
        free(s);
    }
    CHECK(svg_ok, "6 SVG plots with lines and a legend in them");
    char *tsvg = slurp(a, "theory.svg", NULL), *rsvg = slurp(a, "collision_rate.svg", NULL);
    CHECK(tsvg && strstr(tsvg, "log scale") && strstr(tsvg, "Saunshi"), "theory.svg: a log loss axis, with the Saunshi bound");
    CHECK(rsvg && strstr(rsvg, "collision_rate (measured)") && strstr(rsvg, "\xce\xa3 \xcf\x81_c\xc2\xb2"),
          "collision_rate.svg: the measured rate per negative against sum rho_c^2");
    free(tsvg);
    free(rsvg);
    char *html = slurp(a, "report.html", NULL);
    CHECK(html && count(html, "<svg") == 6 && count(html, "<figcaption>") == 6 && !strstr(html, "src=") &&
              !strstr(html, "<link") && strstr(html, "</html>"),
          "report.html: self-contained, the 6 plots inline, each with its caption");
    CHECK(html && strstr(html, "rises with k by construction") && strstr(html, "higher is better"),
          "report.html: the captions say which way is better, and that the (k+1)-way CE rises by construction");
    CHECK(html && strstr(html, "The theory's answer") && strstr(html, "The experiments' answer") && strstr(html, "oneDNN"),
          "report.html: both answers, and the versions");
    /* the verdict: results.json's outcome, the same class on the page's box, the rule under it */
    const cJSON *vo = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "verdict"), "outcome");
    char want[64] = "";
    if (cJSON_IsString(vo)) snprintf(want, sizeof want, "class=\"verdict %s\"", vo->valuestring);
    CHECK(want[0] && html && strstr(html, want) && strstr(html, "Rule: more negatives hurt when"),
          "report.html: the verdict box is coloured by results.json's outcome (%s) and states its rule", want);
    free(html);

    /* a second call skips every finished run and writes the same results */
    size_t n1, n2;
    char *before = slurp(a, "results.csv", &n1);
    rc = cli_run(SWEEP " --seeds 2 --epochs 2 --out %s", a);
    char *after = slurp(a, "results.csv", &n2);
    CHECK(rc == 0 && count(cli_out, "finished earlier") == 4 && !strstr(cli_out, "epoch   1"),
          "a second call skips the 4 finished runs (exit %d)", rc);
    CHECK(before && after && n1 == n2 && memcmp(before, after, n1) == 0, "... and writes the same results.csv");
    free(before);
    free(after);
    /* --config results.json is the same sweep (its k list, seeds, epochs, ...): all 4 runs found
       finished; an option given beside it overrides it, and makes another configuration */
    snprintf(p, sizeof p, "%s/results.json", a);
    rc = cli_run("sweep --config %s --out %s", p, a);
    CHECK(rc == 0 && count(cli_out, "finished earlier") == 4, "sweep --config results.json repeats the sweep: its 4 runs are "
          "found finished (exit %d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    rc = cli_run("sweep --config %s --temp 0.2 --out %s", p, a);
    CHECK(rc == 2 && strstr(cli_err, "another configuration"), "... and --temp beside it overrides it (exit %d)", rc);

    /* killed during its second run, then called again: the same results as the uninterrupted sweep */
    char cmd[4096];
    const char *bin = getenv("NCELAB_BIN");
    snprintf(p, sizeof p, "%s/runs/k4_seed5/ckpt.safetensors", b);
    snprintf(cmd, sizeof cmd, "%s " SWEEP " --seeds 1 --epochs 3 --out %s >/dev/null 2>&1 & echo $! > %s/pid",
             bin ? bin : "./ncelab", b, cli_dir);
    CHECK(system(cmd) == 0, "started a sweep in the background");
    struct stat st;
    int waited = 0;
    while (stat(p, &st) != 0 && waited < 12000) { struct timespec ts = {0, 50000000}; nanosleep(&ts, NULL); waited++; }
    snprintf(cmd, sizeof cmd, "kill -9 $(cat %s/pid) 2>/dev/null; sleep 0.2", cli_dir);
    int killed = system(cmd) == 0;
    snprintf(p, sizeof p, "%s/runs/k4_seed5/result.json", b);
    CHECK(!killed || access(p, F_OK) != 0, "killed while its second run trained");
    rc = cli_run(SWEEP " --seeds 1 --epochs 3 --out %s", b);
    /* (on a loaded machine the kill may come after the second run's last epoch: then it is only evaluated) */
    CHECK(rc == 0 && strstr(cli_out, "k = 1, seed 5: finished earlier") &&
              (!killed || strstr(cli_out, "resuming at epoch") || strstr(cli_out, "trained earlier; evaluating")),
          "called again: the first run is skipped, the second continued (exit %d)", rc);
    char c2[400];
    snprintf(c2, sizeof c2, "%s/c", cli_dir);
    rc = cli_run(SWEEP " --seeds 1 --epochs 3 --out %s", c2);
    /* stopped deterministically in the first run's second epoch (a NaN loss injected at step 100
       of 75 a epoch), then called again: that run resumes at epoch 2 and ends as uninterrupted */
    char d2[400];
    snprintf(d2, sizeof d2, "%s/d", cli_dir);
    setenv("NCELAB_FAULT_NAN_STEP", "100", 1);
    rc = cli_run(SWEEP " --seeds 1 --epochs 3 --out %s", d2);
    unsetenv("NCELAB_FAULT_NAN_STEP");
    CHECK(rc == 3 && strstr(cli_err, "epoch 2, step 25"), "a sweep stopped by a NaN loss in epoch 2 of its first run (exit %d)", rc);
    rc = cli_run(SWEEP " --seeds 1 --epochs 3 --out %s", d2);
    CHECK(rc == 0 && strstr(cli_out, "k = 1, seed 5: resuming at epoch 2 of 3"), "called again, that run resumes at epoch 2 (exit %d)", rc);
    cJSON *rd = load(d2, "results.json"), *rc2 = load(c2, "results.json");
    double dd = 0;
    for (int i = 0; i < 2; i++) {
        const cJSON *xd = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(rd, "runs"), i);
        const cJSON *xc = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(rc2, "runs"), i);
        dd = fmax(dd, xd && xc ? fabs(num(xd, "final_loss") - num(xc, "final_loss")) : INFINITY);
        dd = fmax(dd, xd && xc ? fabs(num(cJSON_GetObjectItemCaseSensitive(xd, "head"), "linear_acc") -
                                      num(cJSON_GetObjectItemCaseSensitive(xc, "head"), "linear_acc")) : INFINITY);
    }
    CHECK(dd == 0.0, "... and both runs' losses and accuracies equal the uninterrupted sweep's (max diff %.1e)", dd);
    cJSON_Delete(rd);
    cJSON_Delete(rc2);
    cJSON *rb = load(b, "results.json"), *rcj = load(c2, "results.json");
    const cJSON *xb = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(rb, "runs"), 1);
    const cJSON *xc = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(rcj, "runs"), 1);
    double d = 0;
    for (int l = 0; l < 2; l++) {
        const char *mn[] = {"mean_acc", "linear_acc", "knn_acc", "simplex_deviation", "within_class_ratio"};
        for (int i = 0; i < 5; i++)
            d = fmax(d, fabs(num(cJSON_GetObjectItemCaseSensitive(xb, l ? "head" : "features"), mn[i]) -
                             num(cJSON_GetObjectItemCaseSensitive(xc, l ? "head" : "features"), mn[i])));
    }
    d = fmax(d, fabs(num(xb, "final_loss") - num(xc, "final_loss")));
    CHECK(rc == 0 && xb && xc && d == 0.0, "the resumed run's loss and metrics equal an uninterrupted sweep's (max diff %.1e)", d);
    cJSON_Delete(rb);
    cJSON_Delete(rcj);

    /* refusals */
    before = slurp(a, "results.json", &n1);
    rc = cli_run(SWEEP " --seeds 2 --epochs 2 --temp 0.2 --out %s", a);
    after = slurp(a, "results.json", &n2);
    CHECK(rc == 2 && strstr(cli_err, "another configuration"), "runs of another configuration are refused (exit %d): %.*s", rc,
          (int)strcspn(cli_err, "\n"), cli_err);
    CHECK(before && after && n1 == n2 && memcmp(before, after, n1) == 0, "... and results.json is untouched");
    free(before);
    free(after);
    rc = cli_run("sweep --data synth:4:16:300 --k 0,4 --out %s/z", cli_dir);
    CHECK(rc == 2 && strstr(cli_err, "--k"), "--k 0,4: exit 2 naming --k (%d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    rc = cli_run("sweep --data synth:4:16:300 --k 1,64 --batch 16 --queue 32 --out %s/z", cli_dir);
    CHECK(rc == 2 && strstr(cli_err, "k = 64") && !strstr(cli_out, "training"),
          "k beyond the queue's 32 slots: refused before any training (exit %d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    rc = cli_run("sweep --data synth:4:16:300 --k 1,4 --seeds 0 --out %s/z", cli_dir);
    CHECK(rc == 2 && strstr(cli_err, "--seeds"), "--seeds 0: exit 2 (%d)", rc);
    rc = cli_run("sweep --data synth:4:16:300 --k 1 --queue-lr 0 --out %s/z", cli_dir);
    CHECK(rc == 2 && strstr(cli_err, "--queue-lr"), "--queue-lr 0: exit 2 (%d)", rc);
    rc = cli_run("sweep --data synth:4:16:300 --k 1 --out /proc/ncelab-cannot");
    CHECK(rc == 1 && strstr(cli_err, "/proc/ncelab-cannot"), "an unwritable --out fails first, naming it (exit %d)", rc);
    rc = cli_run("sweep --data synth:4:16:300 --out %s/z", cli_dir);
    CHECK(rc == 2 && strstr(cli_err, "--k"), "--k is required (exit %d)", rc);

    /* the demo: the theory, then the empirical sweep k = 1..1024, the last beyond the batch (here
       on small synthetic data) */
    rc = cli_run("demo --data synth:10:16:60 --out %s/demo", cli_dir);
    snprintf(p, sizeof p, "%s/demo/report.html", cli_dir);
    CHECK(rc == 0 && strstr(cli_out, "4096") && strstr(cli_out, "   256 |") && strstr(cli_out, "  1024 |") &&
              strstr(cli_out, "queue of 1024") && access(p, R_OK) == 0,
          "demo: the theory table, the sweep's table for k = 1..1024 (from a queue) and DIR/report.html (exit %d): %.*s",
          rc, (int)strcspn(cli_err, "\n"), cli_err);
    cJSON *dj = NULL;
    snprintf(p, sizeof p, "%s/demo/sweep/results.json", cli_dir);
    NcError derr;
    json_load(p, &dj, &derr);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(dj, "runs")) == 6 &&
              num(cJSON_GetObjectItemCaseSensitive(dj, "config"), "queue") == 1024,
          "demo: 6 runs in sweep/results.json, with a queue of 1024");
    cJSON *r1024 = NULL, *r256 = NULL;
    snprintf(p, sizeof p, "%s/demo/sweep/runs/k1024_seed0/result.json", cli_dir);
    json_load(p, &r1024, &derr);
    snprintf(p, sizeof p, "%s/demo/sweep/runs/k256_seed0/result.json", cli_dir);
    json_load(p, &r256, &derr);
    double lr_q = num(cJSON_GetObjectItemCaseSensitive(r1024, "config"), "lr"),
           lr_b = num(cJSON_GetObjectItemCaseSensitive(r256, "config"), "lr");
    CHECK(num(cJSON_GetObjectItemCaseSensitive(dj, "config"), "queue_lr") == 0.03 && lr_q == 0.03 && lr_b == 0.3,
          "demo: the queued run (k = 1024, MoCo's step) trains at its queue_lr 0.03 (%g), the batch's at 0.3 (%g)", lr_q,
          lr_b);
    cJSON_Delete(r1024);
    cJSON_Delete(r256);
    cJSON_Delete(dj);

    /* headless Chromium renders the page; the screenshot is not blank */
    char abs_dir[PATH_MAX], cmd2[3 * PATH_MAX + 400];
    if (!realpath(cli_dir, abs_dir)) snprintf(abs_dir, sizeof abs_dir, "%s", cli_dir);
    snprintf(cmd2, sizeof cmd2, "timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars "
             "--window-size=1200,1600 --screenshot=%s/shot.png file://%s/a/report.html >%s/chromium.log 2>&1",
             abs_dir, abs_dir, abs_dir);
    int crc = system(cmd2);
    char shot[PATH_MAX + 16];
    snprintf(shot, sizeof shot, "%s/shot.png", abs_dir);
    double ink = 0;
    int colours = 0;
    int ok = crc == 0 && screenshot_ink(shot, &ink, &colours);
    CHECK(ok && ink > 0.02 && colours > 20,
          "headless Chromium screenshot of report.html: %.1f%% of the pixels inked, %d colours (exit %d; see %s/chromium.log)",
          100 * ink, colours, crc, cli_dir);
    cJSON_Delete(res);
    return check_done();
}
