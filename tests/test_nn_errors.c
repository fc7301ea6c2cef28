// test_nn_errors.c -- bad input to the engine: unknown model, empty batch, input too small, a bad
// negatives matrix, and a NaN in the forward pass named by its layer, on both backends.
#include "check.h"
#include "ncelab/loss.h"
#include "ncelab/net.h"

#include <stdlib.h>
#include <string.h>

int main(void) {
    NcError err = {0};
    Net net;
    CHECK(net_create(&net, "vgg16", 3, 32, 32, &err) == NC_EUSAGE && strstr(err.msg, "vgg16"), "unknown model: %s", err.msg);
    CHECK(net_create(&net, "convnet", 3, 6, 32, &err) == NC_EUSAGE && strstr(err.msg, "too small"), "6x32 input: %s", err.msg);
    CHECK(net_create(&net, "resnet18", 1, 32, 32, &err) == NC_EUSAGE && strstr(err.msg, "3-channel"), "gray resnet18: %s", err.msg);
    CHECK(net_create(&net, "convnet", 2, 32, 32, &err) == NC_EUSAGE, "2 channels: %s", err.msg);
    CHECK(net_create(&net, "convnet", 3, 8, 8, &err) == NC_OK, "convnet takes 8x8");
    NetExec *x;
    CHECK(nnx_create(&x, &net, 0, NN_BACKEND_DNNL, &err) == NC_EUSAGE && strstr(err.msg, "--batch"), "batch 0: %s", err.msg);
    net_free(&net);
    for (int be = 0; be < 2; be++) {
        net_create(&net, "convnet", 3, 16, 16, &err);
        net_init_random(&net, 3);
        nnx_create(&x, &net, 4, be, &err);
        float *in = calloc(4 * 3 * 16 * 16, sizeof(float));
        for (int i = 0; i < 4 * 3 * 16 * 16; i++) in[i] = (float)((i % 17) - 8) / 8.0f;
        CHECK(nnx_forward(x, in, 1, &err) == NC_OK, "%s: a clean forward", be ? "oneDNN" : "reference");
        net.params[net_param(&net, "conv2.weight")->offset + 5] = NAN;
        int rc = nnx_forward(x, in, 1, &err);
        CHECK(rc == NC_ENUM && strstr(err.msg, "conv2"), "%s: a NaN weight in conv2 is caught: %s", be ? "oneDNN" : "reference", err.msg);
        rc = nnx_forward(x, in, 0, &err);
        CHECK(rc == NC_ENUM && strstr(err.msg, "conv2") && strstr(err.msg, "evaluation"),
              "%s: and in evaluation: %s", be ? "oneDNN" : "reference", err.msg);
        float dz[4 * 128];
        memset(dz, 0, sizeof dz);
        CHECK(nnx_backward(x, dz, &err) == NC_EUSAGE, "backward after a failed forward is refused: %s", err.msg);
        nnx_free(x);
        net_free(&net);
        free(in);
    }
    return check_done();
}
