// test_cli_explore_mpi.c -- `mpirun -np 2 ncelab theory explore`: the same explore.json as one process, over rounds, resumed, refused.
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "cli_util.h"
#include "ncelab/jsonio.h"

/* a small random set (N = 3..4, every family, overlapping supports too), a phase map and two
   sweeps of shrinking per counterexample: a few seconds on one core */
#define SET "theory explore --seed 5 --classes 3..4 --supports disjoint,overlap:1 --phase-map 5 --shrink-evals 2 --threads 1"

/* drops what differs between two runs of the same instances: times, rates, the resumed count */
static void strip_run_fields(cJSON *o) {
    static const char *run_fields[] = {"seconds", "instances_per_second", "rate", "resumed"};
    for (size_t i = 0; i < sizeof run_fields / sizeof run_fields[0]; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(o, run_fields[i]);
    cJSON *c;
    cJSON_ArrayForEach(c, o) if (cJSON_IsObject(c) || cJSON_IsArray(c)) strip_run_fields(c);
}

/* dir/explore.json with dir written as DIR (the support files' paths and the commands name it) */
static cJSON *load(const char *dir) {
    char p[400], *text;
    size_t len;
    snprintf(p, sizeof p, "%s/explore.json", dir);
    NcError err;
    if (nc_read_file(p, &text, &len, &err) != NC_OK) { printf("      %s\n", err.msg); return NULL; }
    NcBuf b = {0};
    size_t dl = strlen(dir);
    for (char *s = text; *s;) {
        char *hit = strstr(s, dir);
        if (!hit) { nc_buf_printf(&b, "%s", s); break; }
        nc_buf_printf(&b, "%.*sDIR", (int)(hit - s), s);
        s = hit + dl;
    }
    free(text);
    cJSON *doc = cJSON_Parse(b.s);
    nc_buf_free(&b);
    if (doc) strip_run_fields(doc);
    else printf("      %s: not JSON\n", p);
    return doc;
}

/* 1 when a and b are the same apart from run fields; names the first differing instance */
static int same_result(const cJSON *a, const cJSON *b, char *why, size_t cap) {
    snprintf(why, cap, "identical");
    if (!a || !b) { snprintf(why, cap, "a file is missing"); return 0; }
    const cJSON *ia = cJSON_GetObjectItemCaseSensitive(a, "instances"), *ib = cJSON_GetObjectItemCaseSensitive(b, "instances");
    if (cJSON_GetArraySize(ia) != cJSON_GetArraySize(ib)) { snprintf(why, cap, "instance counts differ"); return 0; }
    for (int i = 0; i < cJSON_GetArraySize(ia); i++)
        if (!cJSON_Compare(cJSON_GetArrayItem(ia, i), cJSON_GetArrayItem(ib, i), 1)) {
            snprintf(why, cap, "instance %d differs", i);
            return 0;
        }
    const char *parts[] = {"config", "summary"};
    for (int i = 0; i < 2; i++)
        if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(a, parts[i]), cJSON_GetObjectItemCaseSensitive(b, parts[i]), 1)) {
            snprintf(why, cap, "%s differs", parts[i]);
            return 0;
        }
    return 1;
}

static int count_lines(const char *dir) {
    char p[400];
    snprintf(p, sizeof p, "%s/explore.jsonl", dir);
    FILE *f = fopen(p, "r");
    int n = 0, ch;
    while (f && (ch = fgetc(f)) != EOF) n += ch == '\n';
    if (f) fclose(f);
    return n;
}

int main(void) {
    if (!getenv("NCELAB_MPIEXEC")) {
        printf("note: NCELAB_MPIEXEC is not set (ncelab built without MPI, or no mpirun): the checks run as test_cli_explore_mpi_np2\n");
        return 0;
    }
    cli_setup("cli_explore_mpi");
    char one[400], two[400], res[400], why[200];
    snprintf(one, sizeof one, "%s/one", cli_dir);
    snprintf(two, sizeof two, "%s/two", cli_dir);
    snprintf(res, sizeof res, "%s/resumed", cli_dir);

    /* 1. two ranks, in rounds of 0.3 s (several exchanges), against one process */
    int rc = cli_run(SET " --instances 20 --out %s", one);
    CHECK(rc == 0, "one process explores 20 instances and the phase map (exit %d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    rc = cli_mpi_run(2, "", SET " --instances 20 --round-seconds 0.3 --out %s", two);
    CHECK(rc == 0 && strstr(cli_out, "instances/s on 2 ranks x 1 thread"),
          "mpirun -np 2: runs and prints instances/s on 2 ranks (exit %d): %.*s", rc, (int)strcspn(cli_err, "\n"), cli_err);
    const char *first = strstr(cli_out, "wrote ");
    CHECK(first && !strstr(first + 1, "wrote "), "the first rank alone prints the report");
    cJSON *a = load(one), *b = load(two);
    int ok = same_result(a, b, why, sizeof why);
    CHECK(ok, "2 ranks: explore.json equals one process's apart from times (%s)", why);
    CHECK(count_lines(one) == count_lines(two) && count_lines(one) == 1 + 26,
          "both journals hold the settings and one line per instance: %d and %d lines", count_lines(one), count_lines(two));
    cJSON_Delete(b);

    /* 2. resume on 2 ranks from a journal that one process started with fewer instances */
    rc = cli_run(SET " --instances 8 --out %s", res);
    CHECK(rc == 0, "one process explores 8 instances (exit %d)", rc);
    rc = cli_mpi_run(2, "", SET " --instances 20 --round-seconds 0.3 --out %s", res);
    CHECK(rc == 0 && strstr(cli_out, "(8 read back from"), "2 ranks resume: 8 instances read back (exit %d): %.80s", rc, cli_out);
    b = load(res);
    ok = same_result(a, b, why, sizeof why);
    CHECK(ok, "resumed on 2 ranks: explore.json equals one uninterrupted process's apart from times (%s)", why);
    cJSON_Delete(b);
    cJSON_Delete(a);

    /* 3. a journal of other settings is refused on every rank, and left as it was */
    int before = count_lines(res);
    rc = cli_mpi_run(2, "", SET " --instances 20 --norm 2 --out %s", res);
    CHECK(rc == 2 && strstr(cli_err, "written with other settings") && count_lines(res) == before,
          "2 ranks, other settings: exit 2 naming the journal, nothing written (exit %d): %.*s", rc,
          (int)strcspn(cli_err, "\n"), cli_err);
    return check_done();
}
