#!/usr/bin/python3
"""torch_step.py -- the PyTorch baseline of the training step that `ncelab bench` times.

One step: forward of 2B random images of 3 x 32 x 32 (rows 0..B-1 anchors, B..2B-1 positives),
L2-normalised embeddings, InfoNCE with exactly k negatives per anchor drawn uniformly without
replacement from the other 2B-2 rows (a fresh B x k index matrix every step), T = 0.5, backward,
torch.optim.SGD(lr 0.1, momentum 0.9) step. The models are those of docs/nn_spec.md (imported
from tests/ref/make_fixtures.py, PyTorch's default initialisation).

    /usr/bin/python3 bench/torch_step.py --model convnet --batch 256 --k 255 --threads 2 --json out.json

The "tuned" configuration is --layout channels_last run with
GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967295:glibc.malloc.hugetlb=1
in the environment (set by the caller; recorded in the JSON as "glibc_tunables"). --compile runs
the model through torch.compile (PyTorch 2 and later; the warm-up steps include the compilation,
whose seconds are recorded as "compile_seconds").
"""
import argparse
import importlib.util
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def load_models():
    path = os.path.join(HERE, "..", "tests", "ref", "make_fixtures.py")
    spec = importlib.util.spec_from_file_location("make_fixtures", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def check_batch_k(ap, batch, k):
    """Exits through argparse unless batch >= 2 and 1 <= k <= 2 batch - 2."""
    if batch < 2:
        ap.error("--batch: need at least 2, got %d" % batch)
    if not 1 <= k <= 2 * batch - 2:
        ap.error("--k: %d negatives is not in [1, %d], the other images of a batch of %d" % (k, 2 * batch - 2, batch))


def save_json(path, obj):
    """Writes obj as indented JSON to a temporary name, then renames it."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def sample_negatives(B, k, gen):
    """B x k indices into the 2B rows: for anchor i, k distinct rows other than i and B+i, uniform
    without replacement (top-k of i.i.d. uniform scores with the two forbidden rows at -inf)."""
    scores = torch.rand(B, 2 * B, generator=gen)
    rows = torch.arange(B)
    scores[rows, rows] = float("-inf")
    scores[rows, rows + B] = float("-inf")
    return scores.topk(k, dim=1).indices


def infonce(z, neg, T):
    """Mean over anchors of log(exp(s_pos) + sum_j exp(s_j)) - s_pos. The scores come from one
    (B, 2B) similarity matmul and a gather: gathering the (B, k, D) negative embeddings instead
    costs 30x more here (its backward is a serial index_put), which would flatter ncelab."""
    B = neg.shape[0]
    s = z[:B] @ z.t() / T                                          # (B, 2B)
    rows = torch.arange(B)
    s_pos = s[rows, rows + B]                                      # (B,)
    s_neg = s.gather(1, neg)                                       # (B, k)
    return (torch.logsumexp(torch.cat([s_pos[:, None], s_neg], 1), 1) - s_pos).mean()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=("convnet", "resnet18"), default="convnet")
    ap.add_argument("--batch", type=int, default=256, help="B anchors (2B images per step)")
    ap.add_argument("--k", type=int, default=255, help="negatives per anchor, at most 2B-2")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10, help="timed steps (after 3 warm-up steps)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=0.0,
                    help="go on timing steps past --steps until this many seconds have passed (as ncelab bench)")
    ap.add_argument("--layout", choices=("nchw", "channels_last"), default="nchw")
    ap.add_argument("--temp", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (PyTorch >= 2)")
    ap.add_argument("--json", metavar="FILE", help="write the result as JSON")
    a = ap.parse_args()
    if a.compile and not hasattr(torch, "compile"):
        ap.error("--compile: torch %s has no torch.compile (PyTorch 2 or later)" % torch.__version__)
    check_batch_k(ap, a.batch, a.k)
    if a.threads < 1 or a.steps < 1 or a.warmup < 0:
        ap.error("--threads and --steps must be at least 1, --warmup at least 0")
    if not 0 <= a.seconds <= 3600:
        ap.error("--seconds: expected a time in seconds in [0, 3600]")

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    m = load_models()
    model = m.ConvNet(3) if a.model == "convnet" else m.ResNet18(3)
    model.train()
    x = torch.randn(2 * a.batch, 3, 32, 32)
    if a.layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    run = torch.compile(model) if a.compile else model
    gen = torch.Generator().manual_seed(a.seed + 1)

    def step():
        neg = sample_negatives(a.batch, a.k, gen)
        opt.zero_grad(set_to_none=True)
        _, z = run(x)
        loss = infonce(z, neg, a.temp)
        loss.backward()
        opt.step()
        return loss.item()

    t_warm = time.perf_counter()
    for _ in range(max(a.warmup, 1 if a.compile else 0)):
        step()
    t_warm = time.perf_counter() - t_warm
    times, losses = [], []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while len(times) < a.steps or (time.perf_counter() - wall0 < a.seconds and len(times) < 100000):
        t0 = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - t0)
    cpu_util = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    med = statistics.median(times)
    res = {
        "model": a.model, "batch": a.batch, "k": a.k, "threads": a.threads,
        "imgs_per_sec": 2 * a.batch / med, "ms_per_step": 1000 * med,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "layout": a.layout, "torch_version": torch.__version__,
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES"),
        "steps": len(times), "seconds": a.seconds, "warmup": a.warmup, "ms_min": 1000 * min(times), "ms_max": 1000 * max(times),
        "cpu_util": cpu_util, "final_loss": losses[-1], "engine": "pytorch",
        "compile": a.compile, "compile_seconds": t_warm if a.compile else 0.0,
        "steps_ms": [1000 * t for t in times],
    }
    print("pytorch %s %s batch %d (%d images) k %d threads %d %s%s%s: %.1f images/s, %.1f ms/step "
          "(median of %d; min %.1f, max %.1f), peak RSS %.0f MB, %.2f cores busy"
          % (torch.__version__, a.model, a.batch, 2 * a.batch, a.k, a.threads, a.layout,
             " +tunables" if res["glibc_tunables"] else "", " compiled" if a.compile else "",
             res["imgs_per_sec"], res["ms_per_step"],
             len(times), res["ms_min"], res["ms_max"], res["peak_rss_mb"], cpu_util))
    if a.json:
        save_json(a.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
