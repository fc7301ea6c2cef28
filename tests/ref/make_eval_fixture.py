#!/usr/bin/python3
"""make_eval_fixture.py -- the PyTorch reference of ncelab's downstream evaluation: writes
tests/fixtures/eval_small.safetensors, which tests/test_eval.c evaluates with eval_metrics.

The embeddings are a seeded Gaussian mixture (5 classes in 16 dimensions, 1500 train and 500 test
rows, unequal class sizes, centres close enough that no classifier is perfect), stored as
float32; the expected metrics come from the evaluation functions of bench/torch_protocol.py
(mean classifier, weighted kNN, linear probe, simplex deviation, within / between class ratio),
stored as metadata strings.

    /usr/bin/python3 tests/ref/make_eval_fixture.py
"""
import importlib.util
import json
import os
import sys

sys.dont_write_bytecode = True

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")


def module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(path))
    spec.loader.exec_module(mod)
    return mod


def main():
    torch.set_num_threads(1)
    fx = module(os.path.join(HERE, "make_fixtures.py"), "make_fixtures")
    tp = module(os.path.join(ROOT, "bench", "torch_protocol.py"), "torch_protocol")
    rng = np.random.default_rng(20221)
    nc, d = 5, 16
    centres = rng.normal(size=(nc, d)) * 0.6 + 0.6        # a common offset, as real embeddings have
    prior = np.array([0.35, 0.25, 0.2, 0.12, 0.08])
    ytr = rng.choice(nc, size=1500, p=prior).astype(np.int32)
    yte = rng.choice(nc, size=500).astype(np.int32)
    xtr = (centres[ytr] + rng.normal(size=(1500, d))).astype(np.float32)
    xte = (centres[yte] + rng.normal(size=(500, d))).astype(np.float32)
    m = tp.evaluate(torch.from_numpy(xtr), torch.from_numpy(ytr).long(), torch.from_numpy(xte),
                    torch.from_numpy(yte).long(), nc, 0)
    meta = {"classes": nc, "torch_version": torch.__version__, "numpy_version": np.__version__,
            "generator": "tests/ref/make_eval_fixture.py", "expected": json.dumps(m)}
    out = os.path.join(ROOT, "tests", "fixtures", "eval_small.safetensors")
    fx.st_save(out, [("xtr", xtr), ("ytr", ytr), ("xte", xte), ("yte", yte)], meta)
    print("wrote %s: %s" % (os.path.normpath(out), json.dumps(m)))


if __name__ == "__main__":
    main()
