#!/usr/bin/python3
"""torch_protocol.py -- the PyTorch reference of `ncelab train` + `ncelab eval` on Fashion-MNIST.

Mirrors, with the same settings, what

    ncelab train --data fmnist --k K --epochs E --lr 0.3 --batch 256 --temp 0.5 --threads T --seed 0 --out DIR
    ncelab eval --checkpoint DIR/ckpt.safetensors --threads T --json DIR/eval.json

do, so that accuracies and wall time can be compared (bench/protocol.sh runs both):

* data: the Fashion-MNIST IDX files of /usr/share/datasets/fashion-mnist, pixels / 255 normalised
  with the mean and std of the training split (one channel); --train-limit N keeps a seeded
  random subset of N training images, used for training and as the train split of evaluation
  (as ncelab does; the subset itself is not ncelab's);
* model: `convnet` of docs/nn_spec.md for 1 channel (imported from tests/ref/make_fixtures.py),
  PyTorch's default initialisation after torch.manual_seed(seed);
* training: per epoch a random permutation, floor(n / B) steps of B anchors; the positive of an
  anchor is a uniformly random other image of its class (no augmentation: "class positives");
  2B images a step (anchors, then positives); k negatives per anchor drawn uniformly without
  replacement from the other 2B - 2 rows (same-class negatives allowed) and InfoNCE with
  temperature T on the normalised head (sample_negatives and infonce of bench/torch_step.py);
  SGD with momentum 0.9 and decoupled weight decay on all parameters,
  p <- p (1 - lr_t wd) - lr_t v, lr_t = lr 0.5 (1 + cos(pi t / total)), no warm-up;
* evaluation (BN running statistics) of the backbone features (128) and the normalised head:
  mean classifier on unit rows, weighted kNN (200 neighbours, weights exp(cos / 0.1)), a linear
  probe (softmax regression, L-BFGS, L2 chosen on a held-out 10% of train), and the geometry of
  the class means (simplex deviation, within / between class scatter).

    /usr/bin/python3 bench/torch_protocol.py --k 16 --epochs 1 --threads 2 --json out/torch_k16.json
    /usr/bin/python3 bench/torch_protocol.py --k 1 --train-limit 2000 --threads 1     # a quick check
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ next to torch_step.py or make_fixtures.py

import numpy as np
import torch
import torch.nn.functional as F

from torch_step import infonce, load_models, check_batch_k, sample_negatives, save_json

DATA = "/usr/share/datasets/fashion-mnist"
KNN_K, KNN_T = 200, 0.1
PROBE_GRID = (1e-2, 1e-3, 1e-4, 1e-5)


# ---------------------------------------------------------------- data

def read_idx(path):
    """An IDX file (gzipped): big-endian header of magic, then one int32 per dimension."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(tuple(int(d) for d in dims))


def load_fmnist(train_limit, seed):
    """(x_train, y_train, x_test, y_test): float32 (n, 1, 28, 28) normalised with the train split's
    mean and std, int64 labels."""
    xtr = read_idx(os.path.join(DATA, "train-images-idx3-ubyte.gz"))
    ytr = read_idx(os.path.join(DATA, "train-labels-idx1-ubyte.gz"))
    xte = read_idx(os.path.join(DATA, "t10k-images-idx3-ubyte.gz"))
    yte = read_idx(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz"))
    if train_limit and train_limit < len(xtr):
        keep = np.sort(np.random.default_rng(seed).choice(len(xtr), train_limit, replace=False))
        xtr, ytr = xtr[keep], ytr[keep]
    p = xtr.astype(np.float64) / 255.0
    mean, std = p.mean(), p.std()
    std = std if std > 1e-6 else 1.0

    def prep(x):
        return torch.from_numpy(((x.astype(np.float32) / 255.0 - mean) / std).astype(np.float32)[:, None])
    return prep(xtr), torch.from_numpy(ytr.astype(np.int64)), prep(xte), torch.from_numpy(yte.astype(np.int64))


# ---------------------------------------------------------------- training

def class_positives(anchors, labels, members, pos_in_class, rng):
    """For each anchor, a uniformly random other image of its class."""
    out = np.empty_like(anchors)
    for i, a in enumerate(anchors):
        m = members[labels[a]]
        j = rng.integers(len(m) - 1)      # another member: skip a's own position
        if j >= pos_in_class[a]:
            j += 1
        out[i] = m[j]
    return out


def train(model, x, y, a):
    n, B = len(x), a.batch
    labels = y.numpy()
    members = [np.flatnonzero(labels == c) for c in range(int(labels.max()) + 1)]
    pos_in_class = np.empty(n, dtype=np.int64)
    for m in members:
        if len(m) == 1:
            sys.exit("torch_protocol: a class has a single training image, so it has no positive")
        pos_in_class[m] = np.arange(len(m))
    spe = n // B
    total = spe * a.epochs
    rng = np.random.default_rng(a.seed)
    gen = torch.Generator().manual_seed(a.seed + 1)
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=a.lr, momentum=0.9, dampening=0, nesterov=False, weight_decay=0)
    model.train()
    t = 0
    loss_mean = float("nan")
    for ep in range(a.epochs):
        t0 = time.perf_counter()
        perm = rng.permutation(n)
        lsum = 0.0
        for st in range(spe):
            anchors = perm[st * B:(st + 1) * B]
            pos = class_positives(anchors, labels, members, pos_in_class, rng)
            xb = x[torch.from_numpy(np.concatenate([anchors, pos]))]
            neg = sample_negatives(B, a.k, gen)
            opt.zero_grad(set_to_none=True)
            _, z = model(xb)
            loss = infonce(z, neg, a.temp)
            loss.backward()
            lr_t = a.lr * 0.5 * (1.0 + math.cos(math.pi * t / total))
            with torch.no_grad():
                for p in params:
                    p.mul_(1.0 - lr_t * a.wd)      # decoupled decay, every parameter
            for g in opt.param_groups:
                g["lr"] = lr_t
            opt.step()
            lsum += loss.item()
            t += 1
        secs = time.perf_counter() - t0
        loss_mean = lsum / spe
        print("epoch %3d  loss %.4f  lr %.4g  %.0f images/s  (%.1f s)"
              % (ep + 1, loss_mean, lr_t, spe * 2 * B / secs, secs), flush=True)
    return loss_mean


# ---------------------------------------------------------------- evaluation

@torch.no_grad()
def embed(model, x, batch=256):
    """(features, head) of every image, BN with its running statistics."""
    model.eval()
    fs, hs = [], []
    for i in range(0, len(x), batch):
        h = model.features(x[i:i + batch])
        fs.append(h)
        hs.append(F.normalize(model.head(h), dim=1, eps=1e-12))
    return torch.cat(fs), torch.cat(hs)


def unit_rows(x):
    n = x.norm(dim=1, keepdim=True)
    return torch.where(n > 0, x / n.clamp_min(1e-30), torch.zeros_like(x))


def mean_classifier(xtr, ytr, xte, yte, nc):
    a, b = unit_rows(xtr), unit_rows(xte)
    mu = torch.zeros(nc, a.shape[1], dtype=torch.float64).index_add_(0, ytr, a.double())
    cnt = torch.bincount(ytr, minlength=nc)
    mu /= cnt.clamp_min(1)[:, None]
    s = b.double() @ mu.t()
    s[:, cnt == 0] = float("-inf")
    return (s.argmax(1) == yte).double().mean().item()


def knn(xtr, ytr, xte, yte, nc, k=KNN_K, T=KNN_T, chunk=256):
    a, b = unit_rows(xtr), unit_rows(xte)
    k = min(k, len(a))
    right = 0
    for i in range(0, len(b), chunk):
        sim = b[i:i + chunk] @ a.t()                               # (chunk, n_train)
        v, idx = sim.topk(k, dim=1)
        votes = torch.zeros(len(v), nc, dtype=torch.float64)
        votes.scatter_add_(1, ytr[idx], torch.exp(v.double() / T))
        right += (votes.argmax(1) == yte[i:i + chunk]).sum().item()
    return right / len(b)


def probe_fit(W, b, x, y, l2, iters):
    """Softmax regression from (W, b): mean cross-entropy + l2/2 |W|^2, L-BFGS."""
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=iters, history_size=10, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ W.t() + b, y) + 0.5 * l2 * (W * W).sum()
        loss.backward()
        return loss
    opt.step(closure)


def probe_acc(W, b, x, y):
    with torch.no_grad():
        return ((x @ W.t() + b).argmax(1) == y).double().mean().item()


def linear_probe(xtr, ytr, xte, yte, nc, seed):
    """Standardised features; L2 from the grid by the accuracy on a held-out 10% of train (each fit
    warm-started from the previous), then a refit on all of train. Returns (test accuracy, l2)."""
    mu, sd = xtr.double().mean(0), xtr.double().std(0, unbiased=False) + 1e-8
    a, t = ((xtr.double() - mu) / sd).float(), ((xte.double() - mu) / sd).float()   # float32, as ncelab's GEMMs
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(a)))
    a, ya = a[perm], ytr[perm]
    nval = len(a) // 10
    nfit = len(a) - nval
    W = torch.zeros(nc, a.shape[1], requires_grad=True)
    b = torch.zeros(nc, requires_grad=True)
    best, best_l2, best_w = -1.0, PROBE_GRID[0], None
    for l2 in PROBE_GRID:
        probe_fit(W, b, a[:nfit], ya[:nfit], l2, 100)
        acc = probe_acc(W, b, a[nfit:], ya[nfit:])
        if acc > best:
            best, best_l2, best_w = acc, l2, (W.detach().clone(), b.detach().clone())
    with torch.no_grad():
        W.copy_(best_w[0])
        b.copy_(best_w[1])
    probe_fit(W, b, a, ya, best_l2, 150)
    return probe_acc(W, b, t, yte), best_l2


def geometry(xtr, ytr, nc):
    """(simplex deviation of the class means, within / between class scatter), raw embeddings."""
    x = xtr.double()
    cnt = torch.bincount(ytr, minlength=nc)
    mu = torch.zeros(nc, x.shape[1], dtype=torch.float64).index_add_(0, ytr, x) / cnt.clamp_min(1)[:, None]
    norms = mu.norm(dim=1)
    dev = 0.0
    for i in range(nc):
        for j in range(i + 1, nc):
            if norms[i] > 0 and norms[j] > 0:
                cos = (mu[i] @ mu[j]) / (norms[i] * norms[j])
                dev = max(dev, abs(cos.item() + 1.0 / (nc - 1)))
    within = ((x - mu[ytr]) ** 2).sum().item()
    between = (cnt[:, None] * (mu - x.mean(0)) ** 2).sum().item()
    return dev, (within / between if between > 0 else float("inf"))


def evaluate(xtr, ytr, xte, yte, nc, seed):
    dev, ratio = geometry(xtr, ytr, nc)
    lin, l2 = linear_probe(xtr, ytr, xte, yte, nc, seed)
    return {"mean_acc": mean_classifier(xtr, ytr, xte, yte, nc), "linear_acc": lin,
            "knn_acc": knn(xtr, ytr, xte, yte, nc), "simplex_deviation": dev,
            "within_class_ratio": ratio, "probe_l2": l2}


# ---------------------------------------------------------------- main

def main():
    wall0 = time.perf_counter()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--k", type=int, required=True, help="negatives per anchor, 1..2B-2")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256, help="B anchors (2B images per step)")
    ap.add_argument("--lr", type=float, default=0.3, help="peak learning rate of the cosine schedule")
    ap.add_argument("--temp", type=float, default=0.5)
    ap.add_argument("--wd", type=float, default=5e-4, help="decoupled weight decay")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--train-limit", type=int, default=0, metavar="N", help="a seeded subset of N training images")
    ap.add_argument("--json", metavar="FILE", help="write the result as JSON")
    a = ap.parse_args()
    check_batch_k(ap, a.batch, a.k)
    if a.epochs < 1 or a.threads < 1 or a.train_limit < 0 or not a.lr > 0 or not a.temp > 0 or a.wd < 0:
        ap.error("--epochs and --threads must be at least 1, --lr and --temp positive, --wd and --train-limit >= 0")

    torch.set_num_threads(a.threads)
    xtr, ytr, xte, yte = load_fmnist(a.train_limit, a.seed)
    if len(xtr) < a.batch:
        ap.error("--batch: %d anchors, but only %d training images" % (a.batch, len(xtr)))
    nc = int(ytr.max()) + 1
    torch.manual_seed(a.seed)
    model = load_models().ConvNet(1)
    print("pytorch convnet on fmnist (%d train, %d test images), k %d, batch %d, %d epochs, lr %g, T %g, %d threads"
          % (len(xtr), len(xte), a.k, a.batch, a.epochs, a.lr, a.temp, a.threads), flush=True)

    t0 = time.perf_counter()
    final_loss = train(model, xtr, ytr, a)
    t1 = time.perf_counter()
    ftr, htr = embed(model, xtr)
    fte, hte = embed(model, xte)
    t2 = time.perf_counter()
    res_f = evaluate(ftr, ytr, fte, yte, nc, a.seed)
    res_h = evaluate(htr, ytr, hte, yte, nc, a.seed)
    t3 = time.perf_counter()

    print("%-9s %9s %9s %9s %9s %9s" % ("layer", "mean_acc", "linear", "knn", "simplex", "within/btw"))
    for name, m in (("features", res_f), ("head", res_h)):
        print("%-9s %9.4f %9.4f %9.4f %9.4f %9.4f" % (name, m["mean_acc"], m["linear_acc"], m["knn_acc"],
                                                       m["simplex_deviation"], m["within_class_ratio"]))
    print("(kNN: k = %d, T = %g, cosine; linear probe: softmax regression, L2 chosen on 10%% of train)" % (KNN_K, KNN_T))
    wall = time.perf_counter() - wall0
    print("train %.1f s, eval %.1f s (embedded in %.1f s, evaluated in %.1f s), wall %.1f s"
          % (t1 - t0, t3 - t1, t2 - t1, t3 - t2, wall))
    res = {"k": a.k, "epochs": a.epochs, "batch": a.batch, "lr": a.lr, "temp": a.temp, "threads": a.threads,
           "train_seconds": t1 - t0, "eval_seconds": t3 - t1, "wall_seconds": wall,
           "features": res_f, "head": res_h,
           "wd": a.wd, "seed": a.seed, "train_images": len(xtr), "test_images": len(xte),
           "final_loss": final_loss, "torch_version": torch.__version__, "engine": "pytorch"}
    if a.json:
        save_json(a.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
