// embed.c -- embeddings of a whole split in evaluation mode, and .npy files for numpy.
#include "ncelab/eval.h"
#include "ncelab/loader.h"
#include "ncelab/progress.h"

#include <stdlib.h>
#include <string.h>

int eval_embed(Net *net, const DataSplit *s, const float *mean, const float *std, int batch,
               float *features, float *head, NcError *err) {
    NetExec *x;
    int rc = nnx_create(&x, net, batch, NN_BACKEND_DNNL, err);
    if (rc) return rc;
    AugConfig norm;
    aug_preset_none(&norm);
    for (int ch = 0; ch < 3; ch++) { norm.mean[ch] = mean[ch]; norm.std[ch] = std[ch]; }
    int F = nnx_feature_dim(x), D = nnx_embed_dim(x);
    size_t img = (size_t)s->c * s->h * s->w;
    float *in = nc_calloc((size_t)batch * img, sizeof(float));
    Progress bar;
    progress_start(&bar, "eval: embedding", s->n);
    for (int i0 = 0; i0 < s->n && rc == NC_OK; i0 += batch) {
        int m = s->n - i0 < batch ? s->n - i0 : batch;  /* the last chunk is padded with zeros: */
        if (m < batch) memset(in, 0, sizeof(float) * batch * img);  /* eval mode keeps rows apart */
        if ((rc = loader_eval_images(s, i0, m, &norm, in, err))) break;
        if ((rc = nnx_forward(x, in, 0, err))) break;
        memcpy(features + (size_t)i0 * F, nnx_features(x), sizeof(float) * m * F);
        memcpy(head + (size_t)i0 * D, nnx_embeddings(x), sizeof(float) * m * D);
        progress_update(&bar, i0 + m);
    }
    progress_end(&bar);
    free(in);
    nnx_free(x);
    return rc;
}

/* .npy version 1.0: magic, version, header length (u16 LE), a Python dict literal padded with
   spaces to a multiple of 64 bytes ending in a newline, then the raw little-endian data. */
static int npy_write(const char *path, const char *descr, const int *shape, int ndim, const void *data,
                     size_t nbytes, NcError *err) {
    char dict[256], shp[96] = "";
    for (int i = 0; i < ndim; i++) {
        char t[32];
        snprintf(t, sizeof t, "%d%s", shape[i], ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
        strncat(shp, t, sizeof shp - strlen(shp) - 1);
    }
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shp);
    int total = 10 + n + 1, pad = (64 - total % 64) % 64;
    size_t hl = (size_t)n + pad + 1, len = 10 + hl + nbytes;
    char *buf = nc_malloc(len);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)(hl & 0xff);
    buf[9] = (char)(hl >> 8);
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', (size_t)pad);
    buf[10 + n + pad] = '\n';
    memcpy(buf + 10 + hl, data, nbytes);
    int rc = nc_write_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

int npy_write_f32(const char *path, const float *a, int rows, int cols, NcError *err) {
    int shape[2] = {rows, cols};
    return npy_write(path, "<f4", shape, 2, a, sizeof(float) * (size_t)rows * cols, err);
}

int npy_write_i32(const char *path, const int32_t *a, int n, NcError *err) {
    int shape[1] = {n};
    return npy_write(path, "<i4", shape, 1, a, sizeof(int32_t) * (size_t)n, err);
}
