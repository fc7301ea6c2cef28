"""test_checkpoint.py -- checkpoints written by the ncelab binary, read back in Python: the
metadata describes the encoder, and load_encoder's embeddings equal `ncelab eval --embeddings`."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ncelab
from conftest import make_folder, run, st_save, to_input

TOL = 1e-5
CLASSES = ["ant", "bee", "çicada"]  # a non-ASCII name: class_names are UTF-8


def pixel_stats(x):
    """per-channel mean and std of pixel / 255 over uint8 images (n, H, W, C), as ncelab computes them"""
    v = x.reshape(-1, x.shape[-1]).astype(np.float64)
    m = v.sum(0) / len(v)
    return (m / 255).astype(np.float32), (np.sqrt((v * v).sum(0) / len(v) - m * m) / 255).astype(np.float32)


class Run:
    """a dataset, a model trained on it by the binary, and eval's embeddings of both splits"""

    def __init__(self, binary, root, channels=3, model="convnet", size=16, extra=()):
        self.data = make_folder(os.path.join(root, "data"), CLASSES, 16, 5, size=size, channels=channels)
        self.spec = "folder:" + os.path.join(root, "data")
        out = os.path.join(root, "run")
        run(binary, "train", "--data", self.spec, "--model", model, "--k", 4, "--batch", 8, "--threads", 2,
            "--seed", 1, "--out", out, *extra)
        self.ckpt = os.path.join(out, "ckpt.safetensors")
        self.emb = os.path.join(root, "emb")
        run(binary, "eval", "--checkpoint", self.ckpt, "--embeddings", self.emb, "--threads", 2)

    def npy(self, split, layer, stem=None):
        return np.load("%s_%s_%s.npy" % (stem or self.emb, split, layer))


def max_diff(encoder, x, feats, head):
    import torch

    with torch.no_grad():
        f, h = encoder(to_input(x))
    assert f.shape == feats.shape and h.shape == head.shape
    return float(np.abs(f.numpy() - feats).max()), float(np.abs(h.numpy() - head).max())


@pytest.fixture
def torch():
    """load_encoder's tests need PyTorch (optional: the rest of the package does not)"""
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def rgb(ncelab_bin, tmp_path_factory):
    return Run(ncelab_bin, str(tmp_path_factory.mktemp("rgb")))


def test_metadata_describes_the_encoder(rgb):
    ck = ncelab.load_checkpoint(rgb.ckpt)
    assert ck.model == "convnet" and ck.input_shape == (3, 16, 16)
    assert ck.feature_dim == 128 and ck.head_dim == 128
    assert ck.class_names == sorted(CLASSES)
    assert ck.data == rgb.spec and ck.config["data"] == rgb.spec and ck.config["k"] == 4
    assert ck.version == ncelab.__version__ == ncelab.library_version()
    assert ck.epoch == 1 and ck.step == 6  # 48 images, 8 anchors a step
    mean, std = pixel_stats(rgb.data["train"][0])
    assert ck.mean.dtype == np.float32 and ck.mean.shape == (3,)
    np.testing.assert_allclose(ck.mean, mean, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ck.std, std, rtol=0, atol=1e-6)
    enc = ck.encoder_state()
    assert "conv1.weight" in enc and enc["conv1.weight"].shape == (32, 3, 3, 3) and enc["conv1.weight"].dtype == np.float32
    assert "bn3.running_var" in enc and not any(k.startswith(("optim.", "queue.")) for k in enc)
    assert ck.tensors["optim.step"].dtype == np.int64 and int(ck.tensors["optim.step"][0]) == 6


def test_convnet_embeddings_equal_eval(torch, rgb):
    enc = ncelab.load_encoder(rgb.ckpt)
    assert not enc.training
    for split in ("train", "test"):
        x, y = rgb.data[split]
        np.testing.assert_array_equal(rgb.npy(split, "labels"), y)
        df, dh = max_diff(enc, x, rgb.npy(split, "features"), rgb.npy(split, "head"))
        print("convnet rgb %s: features max |diff| %.2e, head %.2e" % (split, df, dh))
        assert df <= TOL and dh <= TOL


def test_gray_convnet_embeddings_equal_eval(torch, ncelab_bin, tmp_path):
    r = Run(ncelab_bin, str(tmp_path), channels=1)
    ck = ncelab.load_checkpoint(r.ckpt)
    assert ck.input_shape == (1, 16, 16) and ck.mean.shape == (1,)
    enc = ncelab.load_encoder(r.ckpt)
    x, _ = r.data["test"]
    df, dh = max_diff(enc, x, r.npy("test", "features"), r.npy("test", "head"))
    print("convnet gray test: features max |diff| %.2e, head %.2e" % (df, dh))
    assert df <= TOL and dh <= TOL


def test_resnet18_train_limit_embeddings_equal_eval(torch, ncelab_bin, tmp_path):
    # --train-limit: the normalisation is the subset's, not the whole training split's
    r = Run(ncelab_bin, str(tmp_path), model="resnet18", size=8, extra=("--train-limit", 20))
    ck = ncelab.load_checkpoint(r.ckpt)
    assert ck.model == "resnet18" and ck.feature_dim == 512 and ck.head_dim == 128
    full_mean, _ = pixel_stats(r.data["train"][0])
    assert np.abs(ck.mean - full_mean).max() > 1e-4
    assert len(r.npy("train", "labels")) == 20
    enc = ncelab.load_encoder(r.ckpt)
    x, _ = r.data["test"]
    df, dh = max_diff(enc, x, r.npy("test", "features"), r.npy("test", "head"))
    print("resnet18 test (train limit 20): features max |diff| %.2e, head %.2e" % (df, dh))
    assert df <= TOL and dh <= TOL


def rewrite(src, dst, drop=(), **meta):
    ck = ncelab.load_checkpoint(src)
    m = {k: v for k, v in ck.metadata.items() if k not in drop}
    m.update(meta)
    st_save(dst, ck.tensors, m)


def test_eval_uses_the_stored_normalisation(torch, rgb, ncelab_bin, tmp_path):
    odd = str(tmp_path / "odd.safetensors")
    rewrite(rgb.ckpt, odd, normalization=json.dumps({"mean": [0.25, 0.5, 0.75], "std": [0.5, 0.25, 0.125]}))
    run(ncelab_bin, "eval", "--checkpoint", odd, "--embeddings", tmp_path / "odd", "--threads", 2)
    enc = ncelab.load_encoder(odd)
    x, _ = rgb.data["test"]
    feats, head = rgb.npy("test", "features", tmp_path / "odd"), rgb.npy("test", "head", tmp_path / "odd")
    assert np.abs(head - rgb.npy("test", "head")).max() > 1e-3  # another normalisation, other embeddings
    df, dh = max_diff(enc, x, feats, head)
    assert df <= TOL and dh <= TOL


def test_older_checkpoint_without_description(torch, rgb, ncelab_bin, tmp_path):
    old = str(tmp_path / "old.safetensors")
    rewrite(rgb.ckpt, old, drop=("model", "input_shape", "feature_dim", "head_dim", "data", "normalization",
                                 "class_names"))
    ck = ncelab.load_checkpoint(old)
    assert ck.model == "convnet" and ck.data == rgb.spec  # from the configuration
    assert ck.mean is None and ck.input_shape is None and ck.class_names is None and ck.head_dim is None
    with pytest.raises(ValueError, match="no input normalisation"):
        ncelab.load_encoder(old)
    # eval recomputes the training split's statistics for such a checkpoint: the same numbers
    run(ncelab_bin, "eval", "--checkpoint", old, "--embeddings", tmp_path / "old", "--threads", 2)
    mean, std = pixel_stats(rgb.data["train"][0])
    enc = ncelab.load_encoder(old, mean=mean, std=std)
    x, _ = rgb.data["test"]
    df, dh = max_diff(enc, x, rgb.npy("test", "features", tmp_path / "old"), rgb.npy("test", "head", tmp_path / "old"))
    assert df <= TOL and dh <= TOL


def test_bad_files(torch, rgb, tmp_path):
    raw = open(rgb.ckpt, "rb").read()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="cut.safetensors: tensor .* does not fit"):
        ncelab.load_checkpoint(cut)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="junk.safetensors: header length"):
        ncelab.load_checkpoint(junk)
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"\x01\x00")
    with pytest.raises(ValueError, match="too short"):
        ncelab.load_checkpoint(short)
    ck = ncelab.load_checkpoint(rgb.ckpt)
    part = str(tmp_path / "part.safetensors")
    st_save(part, {k: v for k, v in ck.tensors.items() if k != "bn2.running_var"}, ck.metadata)
    with pytest.raises(ValueError, match="part.safetensors: no tensor bn2.running_var"):
        ncelab.load_encoder(part)
    bad = str(tmp_path / "bad.safetensors")
    rewrite(rgb.ckpt, bad, normalization='{"mean": [0.5], "std": [0.2]}')
    with pytest.raises(ValueError, match="bad.safetensors: metadata normalization"):
        ncelab.load_checkpoint(bad)
    plain = str(tmp_path / "plain.safetensors")
    st_save(plain, {"x": np.zeros(3, np.float32)}, {})
    with pytest.raises(ValueError, match="not an ncelab checkpoint"):
        ncelab.load_checkpoint(plain)


def test_load_checkpoint_needs_no_torch(rgb):
    code = ("import sys; sys.modules['torch'] = None; import ncelab; ck = ncelab.load_checkpoint(%r); "
            "assert ck.tensors['head.2.weight'].shape == (128, 128) and len(ck.mean) == 3; print('ok')" % rgb.ckpt)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr
