#!/usr/bin/env python3
"""theory_curve.py -- the theory's answer for a dataset's class prior, plotted with matplotlib.

The class prior rho is the training split's class frequencies, as `ncelab data info` counts them
(with --imbalance as training would apply it), or a trained checkpoint's dataset. For each k the
NCE-optimal representation of the latent-class model with that prior is solved and certified
(ncelab.theory.solve); the plot shows its downstream losses next to Saunshi et al.'s bound, and
the collision probability tau_k.

    python3 theory_curve.py --data fmnist --imbalance zipf:1 --out fmnist_zipf1.png
    python3 theory_curve.py --checkpoint runs/k64/ckpt.safetensors --k 1..1024
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile

import numpy as np

import ncelab
from ncelab import theory


def class_prior(binary, spec, imbalance=None, seed=0):
    """(class names, rho): the training split's class frequencies (`ncelab data info --json`)"""
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = [binary, "data", "info", spec, "--json", f.name, "--seed", str(seed)]
        if imbalance:
            cmd += ["--imbalance", imbalance]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        info = json.load(open(f.name))
    counts = np.array(info["train"]["per_class"], dtype=np.float64)
    return info["class_names"], counts / counts.sum()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="dataset SPEC (fmnist, cifar10:DIR, folder:DIR, ...)")
    ap.add_argument("--imbalance", help="zipf:S, as ncelab train --imbalance")
    ap.add_argument("--checkpoint", help="take the dataset and imbalance a checkpoint was trained with")
    ap.add_argument("--k", default="1..4096", help="LIST of k (default 1..4096)")
    ap.add_argument("--norm", type=float, default=2.0, help="norm bound R, R^2 = 1 / temperature (default 2: T = 0.25)")
    ap.add_argument("--ncelab", default=shutil.which("ncelab") or "build/ncelab", help="the ncelab binary")
    ap.add_argument("--out", default="theory_curve.png", help="the figure (PNG, SVG or PDF)")
    a = ap.parse_args()
    spec, imbalance, seed = a.data, a.imbalance, 0
    if a.checkpoint:
        cfg = ncelab.load_checkpoint(a.checkpoint).config
        spec, imbalance, seed = cfg["data"], cfg.get("imbalance") or None, cfg.get("seed", 0)
    if not spec:
        ap.error("give --data SPEC or --checkpoint FILE")
    names, rho = class_prior(a.ncelab, spec, imbalance, seed)
    print("%s%s: %d classes, prior %s" % (spec, " " + imbalance if imbalance else "", len(rho), np.round(rho, 4)))

    recs = theory.solve(rho, a.k, R=a.norm)
    k = np.array([r["k"] for r in recs])
    col = lambda f: np.array([np.nan if f(r) is None else f(r) for r in recs], dtype=np.float64)
    for r in recs:
        print("k %6d  loss %.5f  gap %.1e  mean_ce %.5f  acc %.4f  tau_k %.4f" % (
            r["k"], r["nce_loss"], r["certificate"]["gap"], r["downstream"]["mean_ce"],
            r["downstream"]["mean_acc"], r["collision_prob"]))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax.plot(k, col(lambda r: r["downstream"]["mean_ce"]), "o-", label="mean classifier CE (rho-weighted)")
    ax.plot(k, col(lambda r: r["downstream"]["mean_ce_balanced"]), "s-", label="mean classifier CE (balanced)")
    ax.plot(k, col(lambda r: r["downstream"]["kplus1_ce"]), "^-", label="(k+1)-way task CE")
    bound = col(lambda r: r["saunshi_bound"])
    top = 10 * np.nanmax(col(lambda r: r["downstream"]["kplus1_ce"]))
    ax.plot(k, np.where(bound < top, bound, np.nan), "k--", label="Saunshi et al. bound")
    ax.set(xscale="log", yscale="log", xlabel="negatives k", ylabel="downstream loss (nats)",
           title="the NCE-optimal representation")
    ax.set_xscale("log", base=2)
    ax.legend(fontsize=8)
    ax2.plot(k, col(lambda r: r["collision_prob"]), "o-", label="collision probability tau_k")
    ax2.plot(k, col(lambda r: r["downstream"]["mean_acc"]), "s-", label="mean classifier accuracy")
    ax2.set(xlabel="negatives k", ylim=(0, 1.02), title="%s%s, R = %g" % (spec, " " + imbalance if imbalance else "", a.norm))
    ax2.set_xscale("log", base=2)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.out, dpi=120)
    print("wrote", a.out)


if __name__ == "__main__":
    sys.exit(main())
