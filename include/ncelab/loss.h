// loss.h -- contrastive losses with exactly k negatives per anchor: InfoNCE and binary NCE.
#ifndef NCELAB_LOSS_H
#define NCELAB_LOSS_H

#include <stdint.h>

#include "ncelab/core.h"

/* contrast_loss: z (2B, D) normalised embeddings, rows 0..B-1 the anchors and B..2B-1 their
   positives; neg (B, k) row indices of each anchor's negatives: r < 2B names a batch row,
   r >= 2B names row r - 2B of queue (Q, D) (embeddings of earlier batches, no gradient).
   With s = z_i . z_r / T for the positive and each negative:
     infonce: loss_i = log(exp(s_pos) + sum_j exp(s_j)) - s_pos
     nce:     loss_i = softplus(log k - s_pos) + sum_j softplus(s_j - log k)
   *loss = mean over anchors; dz (2B, D, may be NULL) is overwritten with d loss / d z.
   NC_EUSAGE naming the anchor and the index when an index is out of range or names the anchor
   itself or its positive; k >= 1, T > 0. */
int contrast_loss(NcLoss type, const float *z, int B, int D, const int32_t *neg, int k,
                  const float *queue, int Q, float T, float *loss, float *dz, NcError *err);

/* ContrastWork: the loss's scratch, the coefficients (anchors, k + 1) and the score matrix
   (anchors, 2B + Q), sized once so that a training step allocates nothing. */
typedef struct {
    double *coef;
    float *scores;
    size_t n_coef, n_scores;
} ContrastWork;

/* contrast_work_init: scratch for up to `anchors` anchors, k negatives, `rows` = 2B + Q rows. */
void contrast_work_init(ContrastWork *w, int anchors, int k, int rows);
void contrast_work_free(ContrastWork *w);

/* contrast_loss_part: the part of contrast_loss that anchors a0..a1-1 contribute, for a batch
   whose anchors are shared out (data-parallel ranks): *loss = sum over those anchors of loss_i / B,
   and dz (2B, D, may be NULL) is overwritten with its gradient, which reaches every row that those
   anchors use. The parts of ranks covering [0, B) sum to contrast_loss's loss and dz. w (may be
   NULL: allocated for the call) is scratch made by contrast_work_init for at least a1 - a0
   anchors, k and 2B + Q rows; NC_EUSAGE when it is smaller. */
int contrast_loss_part(NcLoss type, const float *z, int B, int D, const int32_t *neg, int k, const float *queue,
                       int Q, float T, int a0, int a1, double *loss, float *dz, ContrastWork *w, NcError *err);

/* contrast_loss_part_ref: the same with plain loops (a dot product per score), the reference the
   GEMM path is tested against; contrast_loss_part takes the GEMM path (all scores of the anchors
   against the batch and the queue in one sgemm, the gradients in two more) from
   CONTRAST_GEMM_MIN_K negatives on. */
enum { CONTRAST_GEMM_MIN_K = 64 };
int contrast_loss_part_ref(NcLoss type, const float *z, int B, int D, const int32_t *neg, int k, const float *queue,
                           int Q, float T, int a0, int a1, double *loss, float *dz, NcError *err);

/* contrast_random_negatives: for each anchor i, k rows drawn uniformly without replacement
   from the 2B - 2 rows other than i and B + i (k <= 2B - 2), keyed by (seed, step, anchor).
   scratch holds 2B ints. */
void contrast_random_negatives(int32_t *neg, int B, int k, uint64_t seed, uint32_t step, int32_t *scratch);

#endif
