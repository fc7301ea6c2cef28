// explore_json.c -- an exploration's records and settings as JSON, and records read back.
#define _POSIX_C_SOURCE 200809L
#include "ncelab/explore.h"
#include "ncelab/jsonio.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static cJSON *metric_object(const double *v, int n) {
    cJSON *o = cJSON_CreateObject();
    for (int m = 0; m < n; m++) cJSON_AddItemToObject(o, explore_metric_name[m], json_number(v[m]));
    return o;
}

cJSON *explore_record_json(const ExploreRecord *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", (double)r->index);
    cJSON_AddStringToObject(o, "command", r->command);
    cJSON_AddStringToObject(o, "family", r->family);
    cJSON_AddNumberToObject(o, "classes", r->N);
    cJSON_AddNumberToObject(o, "points", r->M);
    cJSON_AddStringToObject(o, "rho_spec", r->rho_spec);
    cJSON_AddItemToObject(o, "rho", json_number_array(r->rho, r->N));
    cJSON_AddNumberToObject(o, "R", r->R);
    cJSON_AddStringToObject(o, "loss", nc_loss_name(r->loss));
    char sup[32];
    if (r->shared > 0) snprintf(sup, sizeof sup, "overlap:%d", r->shared);
    else snprintf(sup, sizeof sup, r->shared < 0 ? "file" : "disjoint");
    cJSON_AddStringToObject(o, "support", sup);
    if (r->support_file) {
        cJSON_AddStringToObject(o, "support_file", r->support_file);
        cJSON_AddItemToObject(o, "support_matrix", json_matrix(r->P, r->N, r->M));
    }
    double *kd = nc_malloc(sizeof(double) * (r->nk ? r->nk : 1));
    for (int i = 0; i < r->nk; i++) kd[i] = (double)r->k[i];
    cJSON_AddItemToObject(o, "k", json_number_array(kd, r->nk));
    free(kd);
    cJSON *cu = cJSON_AddObjectToObject(o, "curves"), *sp = cJSON_AddObjectToObject(o, "spread");
    for (int m = 0; m < EXPLORE_METRICS; m++) {
        cJSON_AddItemToObject(cu, explore_metric_name[m], json_number_array(r->curve[m], r->nk));
        cJSON_AddItemToObject(sp, explore_metric_name[m], json_number_array(r->spread[m], r->nk));
    }
    cJSON_AddItemToObject(o, "max_gap", json_number(r->max_gap));
    cJSON_AddBoolToObject(o, "unique", r->unique);
    cJSON_AddBoolToObject(o, "certified", r->certified);
    if (r->failed_k) cJSON_AddNumberToObject(o, "failed_k", (double)r->failed_k);
    else cJSON_AddNullToObject(o, "failed_k");
    cJSON_AddItemToObject(o, "rise", metric_object(r->rise, EXPLORE_JUDGED));
    cJSON_AddItemToObject(o, "rise_relative", metric_object(r->rise_rel, EXPLORE_JUDGED));
    cJSON *rk = cJSON_AddObjectToObject(o, "rise_k"), *mono = cJSON_AddObjectToObject(o, "monotone");
    cJSON *sig = cJSON_AddObjectToObject(o, "change_significant");
    for (int m = 0; m < EXPLORE_JUDGED; m++) {
        if (r->rise[m] > 0) {
            double ft[2] = {(double)r->rise_from[m], (double)r->rise_to[m]};
            cJSON_AddItemToObject(rk, explore_metric_name[m], json_number_array(ft, 2));
        } else {
            cJSON_AddNullToObject(rk, explore_metric_name[m]);
        }
        cJSON_AddBoolToObject(mono, explore_metric_name[m], r->certified && r->rise[m] == 0);
        cJSON_AddBoolToObject(sig, explore_metric_name[m], r->change_significant[m]);
    }
    cJSON_AddItemToObject(o, "change", metric_object(r->change, EXPLORE_JUDGED));
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    return o;
}

static int get_num(const cJSON *o, const char *key, double *v) {
    return json_get_number(cJSON_GetObjectItemCaseSensitive(o, key), v);
}

static int get_array(const cJSON *a, int n, double *v) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return 0;
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) if (!json_get_number(x, &v[i++])) return 0;
    return 1;
}

static int get_metrics(const cJSON *o, const char *key, int n, double *v) {
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(o, key);
    for (int m = 0; m < n; m++)
        if (!get_num(obj, explore_metric_name[m], &v[m])) return 0;
    return 1;
}

int explore_record_parse(const cJSON *o, ExploreRecord *r, NcError *err) {
    memset(r, 0, sizeof *r);
    double idx, N, M, R, nkd;
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(o, "command"), *fam = cJSON_GetObjectItemCaseSensitive(o, "family");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(o, "rho_spec"), *loss = cJSON_GetObjectItemCaseSensitive(o, "loss");
    const cJSON *sup = cJSON_GetObjectItemCaseSensitive(o, "support"), *ka = cJSON_GetObjectItemCaseSensitive(o, "k");
    if (!json_get_int(cJSON_GetObjectItemCaseSensitive(o, "index"), 0, 1e15, &idx) ||
        !json_get_int(cJSON_GetObjectItemCaseSensitive(o, "classes"), 2, THEORY_MAX_POINTS, &N) ||
        !json_get_int(cJSON_GetObjectItemCaseSensitive(o, "points"), N, THEORY_MAX_POINTS, &M) || !get_num(o, "R", &R) ||
        !cJSON_IsString(cmd) || !cJSON_IsString(fam) || !cJSON_IsString(spec) || !cJSON_IsString(loss) ||
        !cJSON_IsString(sup) || !cJSON_IsArray(ka))
        return nc_fail(err, NC_EFILE, "a record lacks index, classes, points, R, command, family, rho_spec, loss, support or k");
    r->index = (long)idx;
    r->N = (int)N;
    r->M = (int)M;
    r->R = R;
    snprintf(r->family, sizeof r->family, "%s", fam->valuestring);
    r->command = nc_strdup(cmd->valuestring);
    r->rho_spec = nc_strdup(spec->valuestring);
    r->loss = strcmp(loss->valuestring, "nce") == 0 ? NC_LOSS_NCE : NC_LOSS_INFONCE;
    r->shared = strncmp(sup->valuestring, "overlap:", 8) == 0 ? atoi(sup->valuestring + 8)
                : strcmp(sup->valuestring, "file") == 0 ? -1 : 0;
    r->rho = nc_malloc(sizeof(double) * r->N);
    int ok = get_array(cJSON_GetObjectItemCaseSensitive(o, "rho"), r->N, r->rho);
    if (r->shared != 0) {
        const cJSON *sf = cJSON_GetObjectItemCaseSensitive(o, "support_file");
        const cJSON *sm = cJSON_GetObjectItemCaseSensitive(o, "support_matrix");
        r->P = nc_malloc(sizeof(double) * r->N * r->M);
        ok &= cJSON_IsString(sf) && cJSON_IsArray(sm) && cJSON_GetArraySize(sm) == r->N;
        int c = 0;
        const cJSON *row;
        if (ok) cJSON_ArrayForEach(row, sm) ok &= get_array(row, r->M, r->P + (size_t)r->M * c++);
        if (ok) r->support_file = nc_strdup(sf->valuestring);
    }
    nkd = cJSON_GetArraySize(ka);
    r->nk = (int)nkd;
    r->k = nc_malloc(sizeof(long) * (r->nk ? r->nk : 1));
    double *kd = nc_malloc(sizeof(double) * (r->nk ? r->nk : 1));
    ok &= r->nk > 0 && get_array(ka, r->nk, kd);
    for (int i = 0; ok && i < r->nk; i++) r->k[i] = (long)kd[i];
    free(kd);
    const cJSON *cu = cJSON_GetObjectItemCaseSensitive(o, "curves"), *sp = cJSON_GetObjectItemCaseSensitive(o, "spread");
    for (int m = 0; m < EXPLORE_METRICS; m++) {
        r->curve[m] = nc_malloc(sizeof(double) * (r->nk ? r->nk : 1));
        r->spread[m] = nc_malloc(sizeof(double) * (r->nk ? r->nk : 1));
        ok &= get_array(cJSON_GetObjectItemCaseSensitive(cu, explore_metric_name[m]), r->nk, r->curve[m]) &&
              get_array(cJSON_GetObjectItemCaseSensitive(sp, explore_metric_name[m]), r->nk, r->spread[m]);
    }
    ok &= get_num(o, "max_gap", &r->max_gap) && get_num(o, "seconds", &r->seconds);
    ok &= get_metrics(o, "rise", EXPLORE_JUDGED, r->rise) && get_metrics(o, "rise_relative", EXPLORE_JUDGED, r->rise_rel) &&
          get_metrics(o, "change", EXPLORE_JUDGED, r->change);
    const cJSON *rk = cJSON_GetObjectItemCaseSensitive(o, "rise_k"), *sig = cJSON_GetObjectItemCaseSensitive(o, "change_significant");
    for (int m = 0; ok && m < EXPLORE_JUDGED; m++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(rk, explore_metric_name[m]);
        double ft[2] = {0, 0};
        if (!cJSON_IsNull(a)) ok &= get_array(a, 2, ft);
        r->rise_from[m] = (long)ft[0];
        r->rise_to[m] = (long)ft[1];
        r->change_significant[m] = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sig, explore_metric_name[m]));
    }
    r->unique = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "unique"));
    r->certified = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "certified"));
    double fk = 0;  /* null or absent (a journal written before the sweep stopped early): none */
    const cJSON *fko = cJSON_GetObjectItemCaseSensitive(o, "failed_k");
    if (fko && !cJSON_IsNull(fko)) ok &= json_get_int(fko, 1, 1e15, &fk);
    r->failed_k = (long)fk;
    if (!ok) {
        explore_record_free(r);
        return nc_fail(err, NC_EFILE, "record %ld: malformed rho, support, k, curves or certificate", (long)idx);
    }
    return NC_OK;
}

cJSON *explore_config_json(const ExploreConfig *c) {
    cJSON *o = cJSON_CreateObject();
    char b[64];
    snprintf(b, sizeof b, "%d..%d", c->nmin, c->nmax);
    cJSON_AddStringToObject(o, "classes", b);
    cJSON *f = cJSON_AddArrayToObject(o, "families");
    for (int i = 0; i < c->nfam; i++) {  /* as given: "dirichlet:0.3", "zipf", or "rho:" and a --rho text */
        static const char *kn[] = {"uniform", "dirichlet", "zipf", "heavy", "rho", "triangle"};
        const ExploreFamily *x = &c->fam[i];
        NcBuf s = {0};
        if (x->kind == EXF_SPEC) nc_buf_printf(&s, "rho:%s", x->spec);
        else if (x->a >= 0) nc_buf_printf(&s, "%s:%.17g", kn[x->kind], x->a);
        else nc_buf_printf(&s, "%s", kn[x->kind]);
        cJSON_AddItemToArray(f, cJSON_CreateString(s.s));
        nc_buf_free(&s);
    }
    cJSON_AddItemToObject(o, "norm", json_number_array(c->R, c->nR));
    cJSON *l = cJSON_AddArrayToObject(o, "loss");
    for (int i = 0; i < c->nloss; i++) cJSON_AddItemToArray(l, cJSON_CreateString(nc_loss_name(c->loss[i])));
    cJSON *s = cJSON_AddArrayToObject(o, "supports");
    for (int i = 0; i < c->nsup; i++) {
        if (c->shared[i] > 0) snprintf(b, sizeof b, "overlap:%d", c->shared[i]);
        else snprintf(b, sizeof b, c->shared[i] < 0 ? "file" : "disjoint");
        cJSON_AddItemToArray(s, cJSON_CreateString(b));
    }
    if (c->support_path) cJSON_AddStringToObject(o, "support_file", c->support_path);
    cJSON_AddNumberToObject(o, "seed", (double)c->seed);
    double *kd = nc_malloc(sizeof(double) * c->nk);
    for (int i = 0; i < c->nk; i++) kd[i] = (double)c->ks[i];
    cJSON_AddItemToObject(o, "k", json_number_array(kd, c->nk));
    free(kd);
    cJSON_AddNumberToObject(o, "restarts", c->restarts);
    cJSON_AddNumberToObject(o, "phase_map", c->phase_steps);
    return o;
}
