// cmd_eval.c -- `ncelab eval`: mean classifier, linear probe and kNN on the backbone features and the head.
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "ncelab/eval.h"
#include "ncelab/jsonio.h"
#include "ncelab/net.h"
#include "ncelab/train.h"

#include <omp.h>

static cJSON *metrics_json(const EvalMetrics *m) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "mean_acc", json_number(m->mean_acc));
    cJSON_AddItemToObject(o, "linear_acc", json_number(m->linear_acc));
    cJSON_AddItemToObject(o, "knn_acc", json_number(m->knn_acc));
    cJSON_AddItemToObject(o, "simplex_deviation", json_number(m->simplex_deviation));
    cJSON_AddItemToObject(o, "within_class_ratio", json_number(m->within_class_ratio));
    cJSON_AddItemToObject(o, "probe_l2", json_number(m->probe_l2));
    return o;
}

int cmd_eval(int argc, char **argv) {
    Opt o[] = {
        {"checkpoint", 1, "FILE  a checkpoint written by ncelab train (required)", NULL},
        {"data", 1, "SPEC  dataset (default: the one the checkpoint was trained on)", NULL},
        {"json", 1, "FILE  write {\"features\":{...},\"head\":{...}}", NULL},
        {"embeddings", 1, "STEM  write STEM_{train,test}_{features,head,labels}.npy", NULL},
        {"knn-k", 1, "K  neighbours of the kNN classifier (default 200)", NULL},
        {"knn-t", 1, "T  temperature of its weights exp(cos / T) (default 0.1)", NULL},
        {"batch", 1, "B  images per forward pass (default 256)", NULL},
        {"threads", 1, "T  threads (default: all cores)", NULL},
    };
    int no = sizeof o / sizeof o[0], npos, help;
    const char *pos[1];
    NcError err = {0};
    if (args_parse(argc, argv, 2, o, no, pos, 0, &npos, &help, &err)) cli_die(&err);
    if (help) {
        args_usage(stdout, "eval --checkpoint FILE [--data SPEC] [--json FILE] [--embeddings STEM]",
                   "Embeds the train and test splits with a trained encoder and evaluates two layers: the\n"
                   "backbone features and the normalised head output (the f of the theory): the mean\n"
                   "classifier, a linear probe, weighted kNN, and the geometry of the class means.", o, no);
        return 0;
    }
    const char *ck = args_get(o, no, "checkpoint");
    if (!ck) { nc_fail(&err, NC_EUSAGE, "--checkpoint: required"); cli_die(&err); }
    EvalConfig ec;
    eval_config_default(&ec);
    long v;
    double dv;
    if (args_get(o, no, "knn-k")) { if (nc_parse_long(args_get(o, no, "knn-k"), "--knn-k", 1, 1024, &v, &err)) cli_die(&err); ec.knn_k = (int)v; }
    if (args_get(o, no, "knn-t")) {
        if (nc_parse_double(args_get(o, no, "knn-t"), "--knn-t", &dv, &err)) cli_die(&err);
        if (!(dv > 0)) { nc_fail(&err, NC_EUSAGE, "--knn-t: must be positive, got %g", dv); cli_die(&err); }
        ec.knn_t = dv;
    }
    long batch = 256;
    if (args_get(o, no, "batch") && nc_parse_long(args_get(o, no, "batch"), "--batch", 1, 65536, &batch, &err)) cli_die(&err);
    if (args_get(o, no, "threads")) {
        if (nc_parse_long(args_get(o, no, "threads"), "--threads", 1, 1024, &v, &err)) cli_die(&err);
        omp_set_num_threads((int)v);
    }
    TrainConfig tc;
    if (train_checkpoint_config(ck, &tc, &err)) cli_die(&err);
    const char *spec = args_get(o, no, "data") ? args_get(o, no, "data") : tc.data;
    DataOpts dopt = {0};
    dopt.seed = tc.seed;
    if (tc.imbalance[0]) dopt.imbalance_zipf = atof(tc.imbalance + 5);
    Dataset ds;
    if (data_load(spec, &dopt, &ds, &err)) cli_die(&err);
    Net net;
    if (net_create(&net, tc.model, ds.train.c, ds.train.h, ds.train.w, &err)) cli_die(&err);
    if (train_checkpoint_weights(ck, &net, &err)) cli_die(&err);
    DataStats st;
    data_stats(&ds, &ds.train, &st);
    float mean[3], sd[3];
    for (int ch = 0; ch < 3; ch++) {
        int c = ch < ds.train.c ? ch : 0;
        mean[ch] = (float)st.mean[c];
        sd[ch] = (float)(st.std[c] > 1e-6 ? st.std[c] : 1.0);
    }
    free(st.per_class);
    int F = net.vals[net.features].c, D = net.vals[net.embeddings].c;
    int ntr = ds.train.n, nte = ds.test.n;
    float *ftr = nc_malloc(sizeof(float) * (size_t)ntr * F), *htr = nc_malloc(sizeof(float) * (size_t)ntr * D);
    float *fte = nc_malloc(sizeof(float) * (size_t)nte * F), *hte = nc_malloc(sizeof(float) * (size_t)nte * D);
    double t0 = nc_now();
    if (eval_embed(&net, &ds.train, mean, sd, (int)batch, ftr, htr, &err) ||
        eval_embed(&net, &ds.test, mean, sd, (int)batch, fte, hte, &err)) cli_die(&err);
    double t_embed = nc_now() - t0;
    EvalMetrics mf, mh;
    if (eval_metrics(ftr, ds.train.labels, ntr, fte, ds.test.labels, nte, F, ds.num_classes, &ec, &mf, &err) ||
        eval_metrics(htr, ds.train.labels, ntr, hte, ds.test.labels, nte, D, ds.num_classes, &ec, &mh, &err)) cli_die(&err);
    printf("%s on %s (%d train, %d test images; embedded in %.1f s, evaluated in %.1f s)\n", ck, spec, ntr, nte, t_embed,
           nc_now() - t0 - t_embed);
    printf("%-9s %9s %9s %9s %9s %9s\n", "layer", "mean_acc", "linear", "knn", "simplex", "within/btw");
    printf("%-9s %9.4f %9.4f %9.4f %9.4f %9.4f\n", "features", mf.mean_acc, mf.linear_acc, mf.knn_acc, mf.simplex_deviation, mf.within_class_ratio);
    printf("%-9s %9.4f %9.4f %9.4f %9.4f %9.4f\n", "head", mh.mean_acc, mh.linear_acc, mh.knn_acc, mh.simplex_deviation, mh.within_class_ratio);
    printf("(kNN: k = %d, T = %g, cosine; linear probe: softmax regression, L2 chosen on 10%% of train)\n", ec.knn_k, ec.knn_t);
    const char *jp = args_get(o, no, "json");
    if (jp) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddItemToObject(doc, "features", metrics_json(&mf));
        cJSON_AddItemToObject(doc, "head", metrics_json(&mh));
        cJSON_AddStringToObject(doc, "checkpoint", ck);
        cJSON_AddStringToObject(doc, "data", spec);
        cJSON_AddNumberToObject(doc, "knn_k", ec.knn_k);
        cJSON_AddNumberToObject(doc, "knn_t", ec.knn_t);
        if (json_save(jp, doc, &err)) cli_die(&err);
        cJSON_Delete(doc);
    }
    const char *stem = args_get(o, no, "embeddings");
    if (stem) {
        char p[1024];
        size_t L = strlen(stem);
        char base[900];
        snprintf(base, sizeof base, "%.*s", (int)(L > 4 && strcmp(stem + L - 4, ".npy") == 0 ? L - 4 : L), stem);
        struct { const char *suf; const float *a; int n, d; } arr[4] = {
            {"train_features", ftr, ntr, F}, {"train_head", htr, ntr, D}, {"test_features", fte, nte, F}, {"test_head", hte, nte, D}};
        for (int i = 0; i < 4; i++) {
            snprintf(p, sizeof p, "%s_%s.npy", base, arr[i].suf);
            if (npy_write_f32(p, arr[i].a, arr[i].n, arr[i].d, &err)) cli_die(&err);
        }
        snprintf(p, sizeof p, "%s_train_labels.npy", base);
        if (npy_write_i32(p, ds.train.labels, ntr, &err)) cli_die(&err);
        snprintf(p, sizeof p, "%s_test_labels.npy", base);
        if (npy_write_i32(p, ds.test.labels, nte, &err)) cli_die(&err);
    }
    free(ftr); free(htr); free(fte); free(hte);
    net_free(&net);
    data_free(&ds);
    return 0;
}
