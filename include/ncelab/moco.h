// moco.h -- negatives from a queue, as MoCo trains with them: a key encoder that follows the
// trained (query) network by a momentum average, and the symmetric loss of each view against the
// other view's key.
#ifndef NCELAB_MOCO_H
#define NCELAB_MOCO_H

#include "ncelab/loss.h"
#include "ncelab/net.h"

/* moco_loss_part: the loss of a step whose k negatives per anchor all come from the queue, for
   anchors a0..a1-1 of a global batch of B (n = a1 - a0 of them on this rank).
     q  (2n, D) the query network's embeddings of this rank's rows: anchors, then their positives;
     kz (2n, D) the key network's embeddings of the same rows (constants: no gradient);
     neg (B, k) indices >= 2B naming queue rows (contrast_loss's convention).
   Each view is an anchor, with the other view's key as its positive and the queue's rows as its
   negatives, and the two halves are averaged:
     loss_i = (L(q_i, kz_{n+i}) + L(q_{n+i}, kz_i)) / 2,  *loss = sum over the n anchors of loss_i / B.
   dq (2n, D) is overwritten with d loss / d q. zl and dzl are (2B, D) scratch, zl zeroed once by
   the caller (rows of other ranks stay zero); w as for contrast_loss_part, for n anchors, k and
   2B + Q rows. NC_EUSAGE when a negative is not a queue row. */
int moco_loss_part(NcLoss type, const float *q, const float *kz, int B, int D, const int32_t *neg, int k,
                   const float *queue, int Q, float T, int a0, int a1, double *loss, float *dq, float *zl, float *dzl,
                   ContrastWork *w, NcError *err);

/* moco_momentum_update: key's parameters <- m key + (1 - m) query (the batch-norm running
   statistics are the key network's own, from its training-mode forwards). */
void moco_momentum_update(Net *key, const Net *query, float m);

/* moco_copy: key <- query, parameters and running statistics (the start of training). */
void moco_copy(Net *key, const Net *query);

#endif
