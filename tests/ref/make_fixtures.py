#!/usr/bin/python3
"""make_fixtures.py -- the PyTorch reference for the C engine: writes tests/fixtures/*.safetensors.

Builds the models of docs/nn_spec.md (module and parameter names exactly as listed there),
initialises them with the spec's deterministic fixture initialisation, runs forward, the InfoNCE
and binary NCE losses with the spec's fixture negatives, backward, and a few optimiser steps, and
writes everything as float32 safetensors files (written by hand: no safetensors package).

    /usr/bin/python3 tests/ref/make_fixtures.py            # write the four fixtures, print losses
    /usr/bin/python3 tests/ref/make_fixtures.py --check    # re-read them with the reader below

Runs on one thread, in float32, deterministically (same bytes on every run on one machine).
"""
import argparse
import copy
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "fixtures"))

# ---------------------------------------------------------------- safetensors by hand

DT = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
      "I8": "i1", "U8": "u1", "BOOL": "?"}


def st_save(path, tensors, metadata):
    """tensors: list of (name, numpy array) in file order; dtype F32 or I32. metadata: str -> str.
    Layout: u64 LE header length, JSON header padded with spaces to 8 bytes, contiguous data."""
    hdr, blobs, off = {"__metadata__": {k: str(v) for k, v in metadata.items()}}, [], 0
    names = set()
    for name, a in tensors:
        assert name not in names, name
        names.add(name)
        if a.dtype == np.float32:
            dt = "F32"
        elif a.dtype == np.int32:
            dt = "I32"
        else:
            raise TypeError("%s: dtype %s" % (name, a.dtype))
        b = np.ascontiguousarray(a, dtype=DT[dt]).tobytes()
        hdr[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(hdr, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def st_load(path):
    """Reads a safetensors file following the layout; returns (dict name -> array, metadata)."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert 8 + n <= len(raw), "%s: header length %d past the end" % (path, n)
    hdr = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = hdr.pop("__metadata__", {})
    data = raw[8 + n:]
    out, end_prev = {}, 0
    for name, e in sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, e_ = e["data_offsets"]
        assert b == end_prev, "%s: %s starts at %d after %d" % (path, name, b, end_prev)
        a = np.frombuffer(data[b:e_], dtype=DT[e["dtype"]])
        assert a.size == int(np.prod(e["shape"], dtype=np.int64)), name
        out[name] = a.reshape(e["shape"])
        end_prev = e_
    assert end_prev == len(data), "%s: %d data bytes, tensors cover %d" % (path, len(data), end_prev)
    return out, meta


# ---------------------------------------------------------------- models (docs/nn_spec.md)

class ConvNet(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(128)
        self.head = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 128))

    def features(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2, 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2, 2)
        x = F.relu(self.bn3(self.conv3(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x):
        h = self.features(x)
        return h, F.normalize(self.head(h), dim=1, eps=1e-12)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, c=3):
        super().__init__()
        self.conv1 = nn.Conv2d(c, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, w in enumerate((64, 128, 256, 512)):
            stride = 1 if i == 0 else 2
            setattr(self, "layer%d" % (i + 1), nn.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w, 1)))
            cin = w
        self.head = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 128))

    def features(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))

    def forward(self, x):
        h = self.features(x)
        return h, F.normalize(self.head(h), dim=1, eps=1e-12)


def spec_names(model):
    """The parameter order of docs/nn_spec.md, written out independently of named_parameters()."""
    if model == "convnet":
        return ["conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias",
                "conv3.weight", "bn3.weight", "bn3.bias", "head.0.weight", "head.0.bias",
                "head.2.weight", "head.2.bias"]
    names = ["conv1.weight", "bn1.weight", "bn1.bias"]
    for L in range(1, 5):
        for b in range(2):
            p = "layer%d.%d." % (L, b)
            names += [p + "conv1.weight", p + "bn1.weight", p + "bn1.bias",
                      p + "conv2.weight", p + "bn2.weight", p + "bn2.bias"]
            if L >= 2 and b == 0:
                names += [p + "shortcut.0.weight", p + "shortcut.1.weight", p + "shortcut.1.bias"]
    return names + ["head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias"]


# ---------------------------------------------------------------- fixture initialisation

M32 = np.uint64(0xFFFFFFFF)


def fx_hash(x):
    """The spec's uint32 hash on a uint64 array holding uint32 values (products fit in 64 bits)."""
    x = x ^ (x >> np.uint64(16))
    x = (x * np.uint64(0x7FEB352D)) & M32
    x = x ^ (x >> np.uint64(15))
    x = (x * np.uint64(0x846CA68B)) & M32
    x = x ^ (x >> np.uint64(16))
    return x


def fx_u(t, n):
    """u(t, i) for i = 0..n-1, float64 in [0, 1)."""
    i = np.arange(n, dtype=np.uint64)
    x = (i * np.uint64(2654435761) + np.uint64((t * 40503 + 12345) & 0xFFFFFFFF)) & M32
    return fx_hash(x).astype(np.float64) / 4294967296.0


def fixture_init(model):
    """Sets every parameter (index t in named_parameters() order) by the spec's rule."""
    mods = dict(model.named_modules())
    with torch.no_grad():
        for t, (name, p) in enumerate(model.named_parameters()):
            owner = mods[name.rsplit(".", 1)[0]]
            u = fx_u(t, p.numel())
            if isinstance(owner, nn.BatchNorm2d):
                v = (1.0 + 0.1 * (2.0 * u - 1.0)) if name.endswith("weight") else 0.1 * (2.0 * u - 1.0)
            else:
                w = owner.weight
                fan_in = w.shape[1] * (w.shape[2] * w.shape[3] if w.dim() == 4 else 1)
                b = 1.0 / math.sqrt(fan_in)
                v = b * (2.0 * u - 1.0)
            p.copy_(torch.from_numpy(v.astype(np.float32).reshape(p.shape)))


def fixture_input(n, c, h, w):
    u = fx_u(1000, n * c * h * w)
    return torch.from_numpy((2.0 * u - 1.0).astype(np.float32).reshape(n, c, h, w))


def fixture_negatives(B, k):
    """For anchor i: the first k of (i+1, ..., i+2B-1) mod 2B that are neither i nor B+i."""
    neg = np.zeros((B, k), dtype=np.int32)
    for i in range(B):
        row = [r % (2 * B) for r in range(i + 1, i + 2 * B)]
        row = [r for r in row if r != i and r != B + i]
        assert len(row) >= k
        neg[i] = row[:k]
    return neg


# ---------------------------------------------------------------- losses

def infonce(z, neg, T):
    B = neg.shape[0]
    a, pos = z[:B], z[B:2 * B]
    s_pos = (a * pos).sum(1) / T                                   # (B,)
    s_neg = torch.einsum("bd,bkd->bk", a, z[neg]) / T              # (B, k)
    logits = torch.cat([s_pos[:, None], s_neg], 1)
    return (torch.logsumexp(logits, 1) - s_pos).mean()


def nce(z, neg, T):
    B, k = neg.shape
    a, pos = z[:B], z[B:2 * B]
    s_pos = (a * pos).sum(1) / T
    s_neg = torch.einsum("bd,bkd->bk", a, z[neg]) / T
    logk = math.log(k)
    return (F.softplus(logk - s_pos) + F.softplus(s_neg - logk).sum(1)).mean()


# ---------------------------------------------------------------- optimisers (docs/nn_spec.md)

def opt_sgd(params, nesterov, lr=0.1, mu=0.9, wd=5e-4):
    vs = [None] * len(params)

    def step():
        with torch.no_grad():
            for i, p in enumerate(params):
                g = p.grad
                p.mul_(1.0 - lr * wd)                       # decoupled decay
                vs[i] = g.clone() if vs[i] is None else vs[i].mul_(mu).add_(g)
                if nesterov:
                    p.sub_(lr * (g + mu * vs[i]))
                else:
                    p.sub_(lr * vs[i])
    return step


def opt_lars(params, lr=0.5, mu=0.9, wd=1e-4, eta=0.001):
    vs = [torch.zeros_like(p) for p in params]

    def step():
        with torch.no_grad():
            for p, v in zip(params, vs):
                g = p.grad
                if p.dim() == 1:                            # batch-norm weights/biases, biases
                    gg, trust = g, torch.ones((), dtype=p.dtype)
                else:
                    gg = g + wd * p
                    pn, gn = torch.linalg.vector_norm(p), torch.linalg.vector_norm(gg)
                    trust = eta * pn / gn if (pn > 0 and gn > 0) else torch.ones((), dtype=p.dtype)
                v.mul_(mu).add_(lr * trust * gg)
                p.sub_(v)
    return step


def opt_adamw(params):
    o = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    return o.step


def trajectory(model0, x, neg, T, kind, steps):
    """Loss before each of `steps` steps from the initial weights (batch norm in training mode)."""
    model = copy.deepcopy(model0)
    model.train()
    params = list(model.parameters())
    step = {"sgd": lambda: opt_sgd(params, False), "sgd_nesterov": lambda: opt_sgd(params, True),
            "adamw": lambda: opt_adamw(params), "lars": lambda: opt_lars(params)}[kind]()
    losses = []
    for _ in range(steps):
        for p in params:
            p.grad = None
        _, z = model(x)
        loss = infonce(z, neg, T)
        loss.backward()
        losses.append(loss.item())
        step()
    return np.array(losses, dtype=np.float32), model


# ---------------------------------------------------------------- fixtures

def f32(t):
    return t.detach().cpu().numpy().astype(np.float32).copy()


def one(v):
    return np.array([v], dtype=np.float32)


def build(name, C):
    model = ConvNet(C) if name == "convnet" else ResNet18(C)
    got = [n for n, _ in model.named_parameters()]
    assert got == spec_names(name), "parameter order differs from docs/nn_spec.md:\n%s" % got
    fixture_init(model)
    return model


def forward_backward(model, x, neg, T):
    """One training forward (updates the running statistics once), both losses, all gradients."""
    model.train()
    for p in model.parameters():
        p.grad = None
    h, z = model(x)
    z.retain_grad()
    loss = infonce(z, neg, T)
    with torch.no_grad():
        lnce = nce(z, neg, T)
    loss.backward()
    return h, z, loss, lnce


def meta(model, B, k, T, shape, extra=None):
    m = {"model": model, "B": B, "k": k, "T": T, "input_shape": ",".join(str(s) for s in shape),
         "torch_version": torch.__version__, "numpy_version": np.__version__, "dtype": "float32",
         "init": "fixture initialisation of docs/nn_spec.md", "generator": "tests/ref/make_fixtures.py"}
    m.update(extra or {})
    return m


def make_convnet(C, H, B, k, T, optim):
    model = build("convnet", C)
    init = copy.deepcopy(model)
    x = fixture_input(2 * B, C, H, H)
    neg_np = fixture_negatives(B, k)
    neg = torch.from_numpy(neg_np).long()
    out = [(n, f32(p)) for n, p in model.named_parameters()] if optim else []
    h, z, loss, lnce = forward_backward(model, x, neg, T)
    out += [("input", f32(x)), ("features", f32(h)), ("embeddings", f32(z)), ("negatives", neg_np),
            ("loss", one(loss.item())), ("nce_loss", one(lnce.item())), ("d_embeddings", f32(z.grad))]
    out += [("grad." + n, f32(p.grad)) for n, p in model.named_parameters()]
    print("convnet C=%d: InfoNCE %.7f  NCE %.7f" % (C, loss.item(), lnce.item()))
    if optim:
        out += [(n, f32(b)) for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var"))]
        model.eval()
        with torch.no_grad():
            _, ze = model(x)
        out.append(("eval_embeddings", f32(ze)))
        for kind in ("sgd", "sgd_nesterov", "adamw", "lars"):
            losses, m = trajectory(init, x, neg, T, kind, 5)
            print("  losses.%-13s %s" % (kind, " ".join("%.7f" % v for v in losses)))
            out.append(("losses." + kind, losses))
            if kind == "sgd":
                out.append(("weights_after.sgd.conv1.weight", f32(m.conv1.weight)))
            if kind == "lars":
                out.append(("weights_after.lars.head.2.weight", f32(m.head[2].weight)))
    extra = {"optimisers": "sgd lr 0.1 mu 0.9 wd 5e-4 decoupled; sgd_nesterov same; "
                           "adamw torch.optim.AdamW lr 1e-3 betas 0.9,0.999 eps 1e-8 wd 0.01; "
                           "lars lr 0.5 mu 0.9 wd 1e-4 eta 0.001; 5 steps, same batch"} if optim else {}
    return out, meta("convnet", B, k, T, tuple(x.shape), extra)


def make_resnet18(B, k, T, sgd_steps=3, nsample=1024, full_max=4096):
    model = build("resnet18", 3)
    init = copy.deepcopy(model)
    x = fixture_input(2 * B, 3, 32, 32)
    neg_np = fixture_negatives(B, k)
    neg = torch.from_numpy(neg_np).long()
    h, z, loss, lnce = forward_backward(model, x, neg, T)
    out = [("input", f32(x)), ("features", f32(h)), ("embeddings", f32(z)), ("negatives", neg_np),
           ("loss", one(loss.item())), ("nce_loss", one(lnce.item())), ("d_embeddings", f32(z.grad))]
    for n, p in model.named_parameters():
        g = f32(p.grad).reshape(-1)
        if g.size <= full_max:
            out.append(("grad." + n, g.reshape(p.shape)))
        else:
            idx = (np.arange(nsample, dtype=np.int64) * g.size) // nsample
            out.append(("gradsample." + n, g[idx].copy()))
            out.append(("gradnorm." + n, one(np.sqrt(np.sum(g.astype(np.float64) ** 2)))))
    losses, _ = trajectory(init, x, neg, T, "sgd", sgd_steps)
    out.append(("losses.sgd", losses))
    print("resnet18: InfoNCE %.7f  NCE %.7f" % (loss.item(), lnce.item()))
    print("  losses.sgd %s" % " ".join("%.7f" % v for v in losses))
    extra = {"gradsample": "for parameters with more than %d elements: gradsample.<name> = the %d elements "
                           "at flat indices floor(j * n / %d), gradnorm.<name> = L2 norm of the full gradient "
                           "(float64, stored as float32)" % (full_max, nsample, nsample),
             "optimisers": "sgd lr 0.1 mu 0.9 wd 5e-4 decoupled, %d steps, same batch" % sgd_steps}
    return out, meta("resnet18", B, k, T, tuple(x.shape), extra)


def queue_negatives(B, k, Q, step):
    """A queued step's negatives (k > 2B - 2: all from the queue, as ncelab's sampler draws them):
    for anchor i the queue slots (3i + step + j) mod Q, j = 0 .. k - 1, written as 2B + slot (the
    engine's convention)."""
    assert 2 * B - 2 < k <= Q
    neg = np.zeros((B, k), dtype=np.int32)
    for i in range(B):
        neg[i] = [2 * B + (3 * i + step + j) % Q for j in range(k)]
    return neg


def make_queue(C, H, B, k, Q, T, steps, m=0.9):
    """A queued run as ncelab's trainer does it (MoCo): the queue filled with the initial network's
    eval-mode embeddings of Q other images (no gradient); a key encoder, a copy of the initial
    network; then per step the query network's embeddings z and the key encoder's kz of the
    batch (training mode, no gradient), the symmetric loss of each view against the other view's
    key and the queue (queue rows and keys are constants), backward, SGD, the key encoder's
    momentum update key <- m key + (1 - m) query, and the positives' keys pushed into the FIFO
    ring at its head."""
    model = build("convnet", C)
    key = copy.deepcopy(model)
    imgs = fixture_input(2 * B + Q, C, H, H)
    x, xq = imgs[:2 * B].contiguous(), imgs[2 * B:].contiguous()
    model.eval()
    with torch.no_grad():
        _, q = model(xq)
    out = [("input", f32(x)), ("queue_input", f32(xq)), ("queue_init", f32(q))]
    queue, head = q.clone(), 0
    model.train()
    key.train()
    params = list(model.parameters())
    step = opt_sgd(params, False)
    losses = []
    for s in range(steps):
        neg_np = queue_negatives(B, k, Q, s)
        neg = torch.from_numpy(neg_np).long()
        for p in params:
            p.grad = None
        _, z = model(x)
        z.retain_grad()
        with torch.no_grad():
            _, kz = key(x)
        zz1 = torch.cat([z[:B], kz[B:], queue], 0)   # view 1 against view 2's key and the queue
        zz2 = torch.cat([z[B:], kz[:B], queue], 0)   # view 2 against view 1's key and the queue
        loss = 0.5 * (infonce(zz1, neg, T) + infonce(zz2, neg, T))
        if s == 0:
            with torch.no_grad():
                lnce = 0.5 * (nce(zz1, neg, T) + nce(zz2, neg, T))
        loss.backward()
        if s == 0:
            out += [("negatives", neg_np), ("embeddings", f32(z)), ("key_embeddings", f32(kz)),
                    ("loss", one(loss.item())), ("nce_loss", one(lnce.item())), ("d_embeddings", f32(z.grad))]
            out += [("grad." + n, f32(p.grad)) for n, p in model.named_parameters()]
        losses.append(loss.item())
        step()
        with torch.no_grad():
            for pk, pq in zip(key.parameters(), model.parameters()):
                pk.mul_(m).add_((1.0 - m) * pq)
            queue[head:head + B] = kz[B:2 * B]         # FIFO push of the positives' keys (B <= Q - head here)
        head = (head + B) % Q
    out += [("losses.sgd", np.array(losses, dtype=np.float32)), ("queue_after", f32(queue)),
            ("weights_after.sgd.conv1.weight", f32(model.conv1.weight)),
            ("key_after.conv1.weight", f32(key.conv1.weight)), ("key_after.bn1.running_mean", f32(key.bn1.running_mean))]
    print("convnet queued (Q %d, k %d > 2B - 2 = %d, key momentum %g): InfoNCE %.7f  NCE %.7f"
          % (Q, k, 2 * B - 2, m, losses[0], lnce.item()))
    print("  losses.sgd %s" % " ".join("%.7f" % v for v in losses))
    extra = {"Q": Q, "steps": steps, "key_momentum": m,
             "negatives": "queue_negatives(B, k, Q, step); the stored ones are step 0's",
             "loss": "(InfoNCE(view 1 vs view 2's key, queue) + InfoNCE(view 2 vs view 1's key, queue)) / 2",
             "optimisers": "sgd lr 0.1 mu 0.9 wd 5e-4 decoupled, %d steps, same batch, key momentum update "
                           "and queue push after each" % steps}
    return out, meta("convnet", B, k, T, tuple(x.shape), extra)


FILES = ("convnet_c3.safetensors", "convnet_c1.safetensors", "resnet18.safetensors", "convnet_queue.safetensors")


def write_all(only=None):
    os.makedirs(OUT, exist_ok=True)
    jobs = [("convnet_c3.safetensors", lambda: make_convnet(3, 32, 4, 3, 0.5, True)),
            ("convnet_c1.safetensors", lambda: make_convnet(1, 28, 4, 3, 0.5, False)),
            ("resnet18.safetensors", lambda: make_resnet18(2, 2, 0.5)),
            ("convnet_queue.safetensors", lambda: make_queue(1, 28, 4, 10, 12, 0.5, 4))]
    for fname, job in jobs:
        if only and fname not in only:
            continue
        tensors, m = job()
        path = os.path.join(OUT, fname)
        st_save(path, tensors, m)
        print("  wrote %s: %d tensors, %d bytes" % (os.path.relpath(path), len(tensors), os.path.getsize(path)))


def check_all():
    """Re-reads the fixtures and checks what can be checked without the C engine."""
    total, ok = 0, True
    for fname in FILES:
        path = os.path.join(OUT, fname)
        t, m = st_load(path)
        total += os.path.getsize(path)
        B, k, T = int(m["B"]), int(m["k"]), float(m["T"])
        model = build(m["model"], int(m["input_shape"].split(",")[1]))
        x = fixture_input(*[int(s) for s in m["input_shape"].split(",")])
        same_input = np.array_equal(t["input"], f32(x))
        if "Q" in m:
            same_neg = np.array_equal(t["negatives"], queue_negatives(B, k, int(m["Q"]), 0))
            x = fixture_input(x.shape[0] + int(m["Q"]), *x.shape[1:])[:x.shape[0]]
            same_input = np.array_equal(t["input"], f32(x))
            e, ke, qi = t["embeddings"], t["key_embeddings"], t["queue_init"]
            z = [torch.from_numpy(np.concatenate([e[:B], ke[B:], qi])), torch.from_numpy(np.concatenate([e[B:], ke[:B], qi]))]
        else:
            same_neg = np.array_equal(t["negatives"], fixture_negatives(B, k))
            z = [torch.from_numpy(t["embeddings"].copy())]
        neg = torch.from_numpy(t["negatives"].copy()).long()
        l_re = sum(infonce(zi, neg, T).item() for zi in z) / len(z)
        params_ok = all(np.array_equal(t[n], f32(p)) for n, p in model.named_parameters() if n in t)
        good = same_input and same_neg and params_ok and abs(l_re - t["loss"][0]) <= 1e-6 * max(1, abs(l_re))
        if "losses.sgd" in t:
            good = good and t["losses.sgd"][0] == t["loss"][0]
        ok &= good
        print("%s %s: %d tensors, %d bytes, model %s, B %d k %d T %g, loss %.7f (recomputed %.7f), torch %s"
              % ("OK  " if good else "FAIL", fname, len(t), os.path.getsize(path), m["model"], B, k, T,
                 t["loss"][0], l_re, m["torch_version"]))
    print("total %d bytes (%.2f MiB)" % (total, total / 2 ** 20))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="re-read the written fixtures and check them")
    ap.add_argument("--only", nargs="+", metavar="FILE", help="write only these fixtures (e.g. convnet_queue.safetensors)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)   # nothing is random; fixed in case a default initialiser ever runs
    if args.check:
        sys.exit(0 if check_all() else 1)
    write_all(args.only)
    sys.exit(0 if check_all() else 1)


if __name__ == "__main__":
    main()
