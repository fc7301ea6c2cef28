// conv2d.c -- reference 2-D convolution (any kernel, stride, padding, optional bias), NCHW loops.
#include "ncelab/layers.h"

#include <stddef.h>

void conv2d_forward(float *out, const float *inp, const float *w, const float *b, const ConvShape *s) {
    int H = s->h, W = s->w, OH = s->oh, OW = s->ow, K = s->k, S = s->stride, P = s->pad;
    #pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < s->n; n++)
        for (int oc = 0; oc < s->cout; oc++) {
            float *o = out + ((size_t)n * s->cout + oc) * OH * OW;
            float bias = b ? b[oc] : 0.0f;
            for (int i = 0; i < OH * OW; i++) o[i] = bias;
            for (int ic = 0; ic < s->cin; ic++) {
                const float *x = inp + ((size_t)n * s->cin + ic) * H * W;
                const float *wk = w + ((size_t)oc * s->cin + ic) * K * K;
                for (int kh = 0; kh < K; kh++)
                    for (int kw = 0; kw < K; kw++) {
                        float wv = wk[kh * K + kw];
                        for (int oh = 0; oh < OH; oh++) {
                            int ih = oh * S - P + kh;
                            if (ih < 0 || ih >= H) continue;
                            for (int ow = 0; ow < OW; ow++) {
                                int iw = ow * S - P + kw;
                                if (iw >= 0 && iw < W) o[oh * OW + ow] += wv * x[ih * W + iw];
                            }
                        }
                    }
            }
        }
}

// Forward was out[oc][oh][ow] = sum w[oc][ic][kh][kw] inp[ic][oh S - P + kh][ow S - P + kw], so
// dinp[ic][ih][iw] gathers w * dout over the outputs that read it, and dw sums dout * inp.
void conv2d_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                     const float *w, const ConvShape *s) {
    int H = s->h, W = s->w, OH = s->oh, OW = s->ow, K = s->k, S = s->stride, P = s->pad;
    if (dinp) {
        #pragma omp parallel for collapse(2) schedule(static)
        for (int n = 0; n < s->n; n++)
            for (int ic = 0; ic < s->cin; ic++) {
                float *dx = dinp + ((size_t)n * s->cin + ic) * H * W;
                for (int oc = 0; oc < s->cout; oc++) {
                    const float *go = dout + ((size_t)n * s->cout + oc) * OH * OW;
                    const float *wk = w + ((size_t)oc * s->cin + ic) * K * K;
                    for (int kh = 0; kh < K; kh++)
                        for (int kw = 0; kw < K; kw++) {
                            float wv = wk[kh * K + kw];
                            for (int oh = 0; oh < OH; oh++) {
                                int ih = oh * S - P + kh;
                                if (ih < 0 || ih >= H) continue;
                                for (int ow = 0; ow < OW; ow++) {
                                    int iw = ow * S - P + kw;
                                    if (iw >= 0 && iw < W) dx[ih * W + iw] += wv * go[oh * OW + ow];
                                }
                            }
                        }
                }
            }
    }
    #pragma omp parallel for schedule(static)
    for (int oc = 0; oc < s->cout; oc++) {
        for (int n = 0; n < s->n; n++) {
            const float *go = dout + ((size_t)n * s->cout + oc) * OH * OW;
            if (db) {
                float acc = 0.0f;
                for (int i = 0; i < OH * OW; i++) acc += go[i];
                db[oc] += acc;
            }
            for (int ic = 0; ic < s->cin; ic++) {
                const float *x = inp + ((size_t)n * s->cin + ic) * H * W;
                float *gw = dw + ((size_t)oc * s->cin + ic) * K * K;
                for (int kh = 0; kh < K; kh++)
                    for (int kw = 0; kw < K; kw++) {
                        float acc = 0.0f;
                        for (int oh = 0; oh < OH; oh++) {
                            int ih = oh * S - P + kh;
                            if (ih < 0 || ih >= H) continue;
                            for (int ow = 0; ow < OW; ow++) {
                                int iw = ow * S - P + kw;
                                if (iw >= 0 && iw < W) acc += go[oh * OW + ow] * x[ih * W + iw];
                            }
                        }
                        gw[kh * K + kw] += acc;
                    }
            }
        }
    }
}
