// test_loss_gemm.c -- the GEMM path of the contrastive loss (k >= CONTRAST_GEMM_MIN_K) against the
// plain loops (contrast_loss_part_ref, itself checked against finite differences and PyTorch):
// InfoNCE and NCE, negatives from the batch and from a queue, whole batches and ranks' parts.
// The random negatives drawn on the threads against the same draws anchor by anchor.
#include "check.h"
#include "loss_util.h"
#include "ncelab/loss.h"
#include "ncelab/rng.h"

#include <stdlib.h>
#include <string.h>

/* contrast_random_negatives at the bench's shape (anchors spread over the threads) against a
   partial Fisher-Yates anchor by anchor on the documented streams (seed, step, anchor): the same
   negatives, k distinct rows per anchor, never the anchor or its positive. */
static void check_random_negatives(void) {
    enum { B = 256, k = 255 };
    int32_t *neg = malloc(sizeof(int32_t) * B * k), scratch[2 * B], pool[2 * B];
    contrast_random_negatives(neg, B, k, 1, 7, scratch);
    int same = 1, valid = 1;
    for (int i = 0; i < B; i++) {
        Rng r;
        rng_init(&r, 1, 7, (uint32_t)i, 0x4e4547u);
        int m = 0;
        unsigned char seen[2 * B] = {0};
        for (int j = 0; j < 2 * B; j++)
            if (j != i && j != B + i) pool[m++] = j;
        for (int j = 0; j < k; j++) {
            int t = j + (int)rng_below(&r, (uint64_t)(m - j)), tmp = pool[j];
            pool[j] = pool[t];
            pool[t] = tmp;
            int32_t v = neg[(size_t)i * k + j];
            same &= v == pool[j];
            valid &= v >= 0 && v < 2 * B && v != i && v != B + i && !seen[v];
            if (v >= 0 && v < 2 * B) seen[v] = 1;
        }
    }
    CHECK(same, "random negatives (B %d, k %d) on the threads: the draws of each anchor's own stream", B, k);
    CHECK(valid, "random negatives: %d distinct rows per anchor, never the anchor or its positive", k);
    free(neg);
}

int main(void) {
    check_random_negatives();
    enum { B = 48, D = 32, Q = 300 };
    static float z[2 * B * D], q[Q * D], g1[2 * B * D], g2[2 * B * D];
    unit_rows(z, 2 * B, D, 1);
    unit_rows(q, Q, D, 2);
    for (int withq = 0; withq < 2; withq++)
        for (int type = 0; type < 2; type++) {
            int k = withq ? 250 : 2 * B - 2;  /* >= CONTRAST_GEMM_MIN_K either way */
            int32_t *neg = malloc(sizeof(int32_t) * B * k), scratch[2 * B];
            if (withq) {  /* k distinct queue slots per anchor */
                Rng r;
                rng_init(&r, 9, 0, 0, 0);
                int32_t *slots = malloc(sizeof(int32_t) * Q);
                for (int i = 0; i < B; i++) {
                    for (int j = 0; j < Q; j++) slots[j] = j;
                    for (int j = 0; j < k; j++) {
                        int t = j + (int)rng_below(&r, (uint64_t)(Q - j)), tmp = slots[j];
                        slots[j] = slots[t];
                        slots[t] = tmp;
                        neg[i * k + j] = 2 * B + slots[j];
                    }
                }
                free(slots);
            } else {
                contrast_random_negatives(neg, B, k, 3, 0, scratch);
            }
            int parts[3][2] = {{0, B}, {0, B / 3}, {B / 3, B}};  /* the whole batch, and two ranks' anchors */
            for (int p = 0; p < 3; p++) {
                double l1, l2;
                NcError err = {0};
                int rc = contrast_loss_part(type, z, B, D, neg, k, withq ? q : NULL, Q, 0.2f, parts[p][0], parts[p][1], &l1, g1, NULL, &err);
                rc |= contrast_loss_part_ref(type, z, B, D, neg, k, withq ? q : NULL, Q, 0.2f, parts[p][0], parts[p][1], &l2, g2, &err);
                double worst = 0, gmax = 0;
                for (int i = 0; i < 2 * B * D; i++) {
                    worst = fmax(worst, fabs(g1[i] - g2[i]));
                    gmax = fmax(gmax, fabs(g2[i]));
                }
                CHECK(rc == 0 && fabs(l1 - l2) <= 1e-6 * fabs(l2) && worst <= 1e-5 * gmax,
                      "%s, k %d from the %s, anchors [%d, %d): GEMM against plain loops: loss %.3g relative, gradient worst %.2g "
                      "(largest %.3g)", type ? "nce" : "infonce", k, withq ? "queue" : "batch", parts[p][0], parts[p][1],
                      fabs(l1 - l2) / fabs(l2), worst, gmax);
            }
            free(neg);
        }
    return check_done();
}
