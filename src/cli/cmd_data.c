// cmd_data.c -- `ncelab data info SPEC` (counts, shapes, channel statistics) and `ncelab data convert SPEC FILE`.
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "ncelab/data.h"
#include "ncelab/jsonio.h"
#include "ncelab/utf8.h"

#define DATA_SPECS                                                                                   \
    "SPEC is one of: fmnist[:DIR]  mnist:DIR  cifar10:DIR  cifar100:DIR[:coarse]  folder:DIR\n"      \
    "                packed:FILE  synth:N[:SIZE[:PER_CLASS]]\n"                                      \
    "cifar10:DIR and cifar100:DIR read the binary release (cifar-10-batches-bin, cifar-100-binary)\n"  \
    "or the python one (torchvision's cifar-10-batches-py, cifar-100-python); folder:DIR holds\n"      \
    "train/<class>/ and test/<class>/ (or val/<class>/) with .jpg, .jpeg or .png images"

/* Fills DataOpts from --resize H,W, --imbalance zipf:S and --seed S; exits 2 on a bad value. */
static void opts_from_options(DataOpts *d, const Opt *o, int no) {
    NcError err = {0};
    memset(d, 0, sizeof *d);
    const char *rs = args_get(o, no, "resize"), *im = args_get(o, no, "imbalance"), *sd = args_get(o, no, "seed");
    if (rs) {
        const char *comma = strchr(rs, ',');
        char h[32], w[32];
        long vh, vw;
        if (!comma || (size_t)(comma - rs) >= sizeof h || strlen(comma + 1) >= sizeof w) {
            nc_fail(&err, NC_EUSAGE, "--resize: expected H,W (two integers in [1, 4096]), got '%s'", rs);
            cli_die(&err);
        }
        memcpy(h, rs, (size_t)(comma - rs));
        h[comma - rs] = '\0';
        strcpy(w, comma + 1);
        if (nc_parse_long(h, "--resize", 1, 4096, &vh, &err) || nc_parse_long(w, "--resize", 1, 4096, &vw, &err))
            cli_die(&err);
        d->resize_h = (int)vh;
        d->resize_w = (int)vw;
    }
    if (im) {
        double s;
        if (strncmp(im, "zipf:", 5) != 0 || nc_parse_double(im + 5, "--imbalance", &s, NULL) || !(s > 0) || s > 20) {
            nc_fail(&err, NC_EUSAGE, "--imbalance: expected zipf:S with 0 < S <= 20, got '%s'", im);
            cli_die(&err);
        }
        d->imbalance_zipf = s;
    }
    if (sd) {
        long v;
        if (nc_parse_long(sd, "--seed", 0, 9007199254740992L, &v, &err)) cli_die(&err);
        d->seed = (uint64_t)v;
    }
}

static void load(const char *spec, const Opt *o, int no, Dataset *ds, double *seconds) {
    DataOpts d;
    NcError err = {0};
    opts_from_options(&d, o, no);
    double t0 = nc_now();
    if (data_load(spec, &d, ds, &err)) cli_die(&err);
    *seconds = nc_now() - t0;
}

static void print_channels(const double *v, int c) {
    char buf[64] = "";
    size_t at = 0;
    for (int ch = 0; ch < c && ch < 4; ch++) at += (size_t)snprintf(buf + at, sizeof buf - at, "%s%.4f", ch ? " " : "", v[ch]);
    printf("  %-22s", buf);
}

static cJSON *split_json(const DataSplit *s, const DataStats *st, int k) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", s->n);
    int shape[3] = {s->h, s->w, s->c};
    cJSON_AddItemToObject(o, "shape", cJSON_CreateIntArray(shape, 3));
    cJSON_AddItemToObject(o, "per_class", cJSON_CreateIntArray(st->per_class, k));
    int c = s->c < 4 ? s->c : 4;
    cJSON_AddItemToObject(o, "mean", json_number_array(st->mean, c));
    cJSON_AddItemToObject(o, "std", json_number_array(st->std, c));
    return o;
}

static int data_info(int argc, char **argv) {
    Opt o[] = {
        {"json", 1, "FILE  write {\"name\",\"source\",\"num_classes\",\"class_names\",\"train\",\"test\"} as JSON", NULL},
        {"resize", 1, "H,W  resize every image to H x W (bilinear)", NULL},
        {"imbalance", 1, "zipf:S  keep round(n_max * c^-S) training images of class c = 1..N", NULL},
        {"seed", 1, "S  seed of synth and of the imbalance subsample (default 0)", NULL},
    };
    int no = sizeof o / sizeof o[0], npos, help;
    const char *pos[1];
    NcError err = {0};
    if (args_parse(argc, argv, 3, o, no, pos, 1, &npos, &help, &err)) cli_die(&err);
    if (help) {
        args_usage(stdout, "data info SPEC [--json FILE] [--resize H,W] [--imbalance zipf:S] [--seed S]",
                   "Reads a dataset and prints, for the train and test splits, the number of images in all and\n"
                   "per class, the image shape and the per-channel mean and std of pixel/255.\n" DATA_SPECS,
                   o, no);
        return 0;
    }
    if (npos < 1) { nc_fail(&err, NC_EUSAGE, "data info: SPEC required (see --help)"); cli_die(&err); }
    Dataset ds;
    double secs;
    load(pos[0], o, no, &ds, &secs);
    DataStats st[2];
    const DataSplit *sp[2] = {&ds.train, &ds.test};
    const char *sname[2] = {"train", "test"};
    for (int s = 0; s < 2; s++) data_stats(&ds, sp[s], &st[s]);
    printf("%s%s%s: %d classes  (loaded in %.2f s)\n\n", ds.name, ds.source[0] ? " " : "", ds.source, ds.num_classes, secs);
    printf("split    images  shape          %-22s  %-22s\n", "mean", "std");
    for (int s = 0; s < 2; s++) {
        char shape[48];
        snprintf(shape, sizeof shape, "%d x %d x %d", sp[s]->h, sp[s]->w, sp[s]->c);
        printf("%-6s %8d  %-13s", sname[s], sp[s]->n, shape);
        print_channels(st[s].mean, sp[s]->c);
        print_channels(st[s].std, sp[s]->c);
        printf("\n");
    }
    printf("\n  class  %-24s %8s %8s\n", "name", "train", "test");
    for (int k = 0; k < ds.num_classes; k++)
        printf("  %5d  %-24s %8d %8d\n", k, ds.class_names[k], st[0].per_class[k], st[1].per_class[k]);
    const char *jpath = args_get(o, no, "json");
    if (jpath) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddItemToObject(doc, "name", utf8_json_string(ds.name));
        cJSON_AddItemToObject(doc, "source", utf8_json_string(ds.source));
        cJSON_AddNumberToObject(doc, "num_classes", ds.num_classes);
        cJSON *names = cJSON_AddArrayToObject(doc, "class_names");
        for (int k = 0; k < ds.num_classes; k++) cJSON_AddItemToArray(names, utf8_json_string(ds.class_names[k]));
        for (int s = 0; s < 2; s++) cJSON_AddItemToObject(doc, sname[s], split_json(sp[s], &st[s], ds.num_classes));
        if (json_save(jpath, doc, &err)) cli_die(&err);
        cJSON_Delete(doc);
    }
    for (int s = 0; s < 2; s++) free(st[s].per_class);
    data_free(&ds);
    return 0;
}

static int data_convert_cmd(int argc, char **argv) {
    Opt o[] = {
        {"resize", 1, "H,W  resize every image to H x W (bilinear) before packing", NULL},
        {"imbalance", 1, "zipf:S  keep round(n_max * c^-S) training images of class c = 1..N", NULL},
        {"seed", 1, "S  seed of synth and of the imbalance subsample (default 0)", NULL},
    };
    int no = sizeof o / sizeof o[0], npos, help;
    const char *pos[2];
    NcError err = {0};
    if (args_parse(argc, argv, 3, o, no, pos, 2, &npos, &help, &err)) cli_die(&err);
    if (help) {
        args_usage(stdout, "data convert SPEC FILE [--resize H,W] [--imbalance zipf:S] [--seed S]",
                   "Reads a dataset and writes it to one packed file (checked by CRC-32) that\n"
                   "`--data packed:FILE` loads with one read.\n" DATA_SPECS,
                   o, no);
        return 0;
    }
    if (npos < 2) { nc_fail(&err, NC_EUSAGE, "data convert: SPEC and FILE required (see --help)"); cli_die(&err); }
    Dataset ds;
    double secs;
    load(pos[0], o, no, &ds, &secs);
    double t0 = nc_now();
    if (data_convert(&ds, pos[1], &err)) cli_die(&err);
    printf("wrote %s: %s, %d classes, %d train + %d test images of %d x %d x %d  (read %.2f s, write %.2f s)\n", pos[1],
           ds.name, ds.num_classes, ds.train.n, ds.test.n, ds.train.h, ds.train.w, ds.train.c, secs, nc_now() - t0);
    data_free(&ds);
    return 0;
}

int cmd_data(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[2], "info") == 0) return data_info(argc, argv);
    if (argc > 2 && strcmp(argv[2], "convert") == 0) return data_convert_cmd(argc, argv);
    FILE *f = argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) ? stdout : stderr;
    if (f == stderr && argc > 2) fprintf(stderr, "ncelab: data %s: unknown subcommand (info or convert)\n", argv[2]);
    fprintf(f, "usage: ncelab data info SPEC [--json FILE] [--resize H,W] [--imbalance zipf:S] [--seed S]\n"
               "       ncelab data convert SPEC FILE [--resize H,W] [--imbalance zipf:S] [--seed S]\n\n"
               "Dataset information and conversion to the packed format (ncelab data info --help).\n" DATA_SPECS "\n");
    return f == stdout ? 0 : 2;
}
