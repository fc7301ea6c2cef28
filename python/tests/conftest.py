"""conftest.py -- what the tests share: the ncelab binary, image folders written as PNG files,
a safetensors writer, and running the binary."""
import json
import os
import struct
import subprocess
import zlib

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def ncelab_bin():
    """The ncelab binary: $NCELAB_BIN (ctest sets it), else build/ncelab of the repository."""
    path = os.environ.get("NCELAB_BIN") or os.path.join(ROOT, "build", "ncelab")
    if not os.access(path, os.X_OK):
        pytest.skip("no ncelab binary at %s (build it, or set NCELAB_BIN)" % path)
    return path


def run(binary, *args):
    """Runs `ncelab ARGS` and returns its stdout; a failure shows its stderr."""
    p = subprocess.run([binary, *map(str, args)], capture_output=True, text=True)
    assert p.returncode == 0, "ncelab %s: exit %d\n%s" % (" ".join(map(str, args)), p.returncode, p.stderr)
    return p.stdout


def write_png(path, img):
    """img: (H, W) or (H, W, 3) uint8, written as an 8-bit gray or RGB PNG."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    h, w = img.shape[:2]
    color = 2 if img.ndim == 3 else 0
    rows = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def make_folder(root, classes, n_train, n_test, size=16, channels=3, seed=0):
    """An image folder root/{train,test}/<class>/NNN.png of latent-class images (a template per
    class plus noise). Returns the pixels and labels of each split in the order ncelab reads them
    (classes sorted by name, files sorted): {"train": (x uint8 (n, H, W, C), y), "test": ...}."""
    rng = np.random.default_rng(seed)
    templates = rng.uniform(40, 215, size=(len(classes), size, size, channels))
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        xs, ys = [], []
        for label, name in enumerate(sorted(classes)):
            d = os.path.join(root, split, name)
            os.makedirs(d, exist_ok=True)
            for i in range(n):
                img = np.clip(templates[label] + rng.normal(0, 30, templates[label].shape), 0, 255).astype(np.uint8)
                write_png(os.path.join(d, "%03d.png" % i), img if channels == 3 else img[:, :, 0])
                xs.append(img)
                ys.append(label)
        out[split] = (np.stack(xs), np.array(ys, dtype=np.int32))
    return out


def to_input(x):
    """uint8 (n, H, W, C) -> float32 (n, C, H, W) in [0, 1], as torchvision's ToTensor."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).float().div(255)


def st_save(path, tensors, metadata):
    """A safetensors file of numpy arrays (F32, I32, I64) and metadata strings."""
    names = {np.dtype("<f4"): "F32", np.dtype("<i4"): "I32", np.dtype("<i8"): "I64"}
    header, blobs, off = {}, [], 0
    for k, a in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        header[k] = {"dtype": names[np.dtype(a.dtype).newbyteorder("<")], "shape": list(a.shape),
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
