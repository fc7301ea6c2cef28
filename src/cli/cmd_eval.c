// cmd_eval.c -- `ncelab eval`: mean classifier, linear probe and kNN on the backbone features and the head.
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "ncelab/ckpt.h"
#include "ncelab/eval.h"
#include "ncelab/jsonio.h"
#include "ncelab/net.h"
#include "ncelab/train.h"
#include "ncelab/utf8.h"

#include <omp.h>

int cmd_eval(int argc, char **argv) {
    Opt o[] = {
        {"checkpoint", 1, "FILE  a checkpoint written by ncelab train (required)", NULL},
        {"data", 1, "SPEC  dataset (default: the one the checkpoint was trained on)", NULL},
        {"json", 1, "FILE  write {\"features\":{...},\"head\":{...}}", NULL},
        {"embeddings", 1, "STEM  write STEM_{train,test}_{features,head,labels}.npy", NULL},
        {"knn-k", 1, "K  neighbours of the kNN classifier (default 200)", NULL},
        {"knn-t", 1, "T  temperature of its weights exp(cos / T) (default 0.1)", NULL},
        {"batch", 1, "B  images per forward pass (default 256)", NULL},
        ARGS_THREADS,
        ARGS_THREADS_FORCE,
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
    int threads = args_threads(o, no);
    if (threads > 0) omp_set_num_threads(threads);
    const char *spec = args_get(o, no, "data");
    EvalReport r;
    Comm *comm = cli_comm();
    if (train_eval_checkpoint(ck, spec, &ec, (int)batch, args_get(o, no, "embeddings"), comm, &r, &err)) cli_die(&err);
    if (comm->rank) return 0;  /* rank 0 prints and writes */
    TrainConfig tc;
    if (!spec && ckpt_read_config(ck, &tc, &err) == NC_OK) spec = tc.data;
    const EvalMetrics *mf = &r.features, *mh = &r.head;
    printf("%s on %s (%d train, %d test images; embedded in %.1f s, evaluated in %.1f s)\n", ck, spec, r.ntrain, r.ntest,
           r.embed_seconds, r.metric_seconds);
    printf("%-9s %9s %9s %9s %9s %9s\n", "layer", "mean_acc", "linear", "knn", "simplex", "within/btw");
    printf("%-9s %9.4f %9.4f %9.4f %9.4f %9.4f\n", "features", mf->mean_acc, mf->linear_acc, mf->knn_acc, mf->simplex_deviation, mf->within_class_ratio);
    printf("%-9s %9.4f %9.4f %9.4f %9.4f %9.4f\n", "head", mh->mean_acc, mh->linear_acc, mh->knn_acc, mh->simplex_deviation, mh->within_class_ratio);
    printf("(kNN: k = %d, T = %g, cosine; linear probe: softmax regression, L2 chosen on 10%% of train)\n", ec.knn_k, ec.knn_t);
    const char *jp = args_get(o, no, "json");
    if (jp) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddItemToObject(doc, "features", eval_metrics_json(mf));
        cJSON_AddItemToObject(doc, "head", eval_metrics_json(mh));
        cJSON_AddItemToObject(doc, "checkpoint", utf8_json_string(ck));
        cJSON_AddItemToObject(doc, "data", utf8_json_string(spec));
        cJSON_AddNumberToObject(doc, "knn_k", ec.knn_k);
        cJSON_AddNumberToObject(doc, "knn_t", ec.knn_t);
        cJSON_AddNumberToObject(doc, "train_images", r.ntrain);
        cJSON_AddNumberToObject(doc, "test_images", r.ntest);
        if (json_save(jp, doc, &err)) cli_die(&err);
        cJSON_Delete(doc);
    }
    return 0;
}
