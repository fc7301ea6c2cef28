"""checkpoint.py -- ncelab checkpoints (safetensors) read with numpy alone: tensors and metadata.

The layout is docs/checkpoint.md: an 8-byte little-endian header length N, N bytes of JSON
naming every tensor's dtype, shape and byte range, then the data; "__metadata__" holds strings.
"""
import json
import os
import struct

import numpy as np

_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
    "I8": "i1", "U8": "u1", "BOOL": "?",
}
_MAX_HEADER = 100 * 1000 * 1000

# tensors that serve --resume only; everything else is the encoder
_TRAINING_STATE = ("optim.", "queue.", "key.")


def _bad(path, what):
    return ValueError("%s: %s" % (path, what))


def read_safetensors(path):
    """(tensors, metadata) of a safetensors file: name -> read-only numpy array (BF16 widened to
    float32), and the metadata's strings. ValueError naming the file for anything malformed."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise _bad(path, "%d bytes: too short for a safetensors file (8-byte header length first)" % len(raw))
    (n,) = struct.unpack("<Q", raw[:8])
    if n > _MAX_HEADER or 8 + n > len(raw):
        raise _bad(path, "header length %d does not fit the file's %d bytes (not a safetensors file?)" % (n, len(raw)))
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise _bad(path, "the header is not UTF-8 JSON (%s)" % e) from None
    if not isinstance(header, dict):
        raise _bad(path, "the header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise _bad(path, "__metadata__ must map names to strings")
    data = memoryview(raw)[8 + n:]
    tensors = {}
    for name, t in header.items():
        try:
            dtype = np.dtype(_DTYPES[t["dtype"]])
            shape = tuple(int(s) for s in t["shape"])
            begin, end = (int(o) for o in t["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise _bad(path, "tensor %s: a dtype of %s, a shape and data_offsets expected, found %r"
                       % (name, "/".join(_DTYPES), t)) from None
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if min(shape, default=0) < 0 or not 0 <= begin <= end <= len(data) or end - begin != count * dtype.itemsize:
            raise _bad(path, "tensor %s: %s %s does not fit bytes [%d, %d) of a %d-byte buffer"
                       % (name, t["dtype"], list(shape), begin, end, len(data)))
        a = np.frombuffer(data, dtype=dtype, count=count, offset=begin).reshape(shape)
        if t["dtype"] == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = a
    return tensors, meta


def _json(meta, key, path):
    s = meta.get(key)
    if s is None:
        return None
    try:
        return json.loads(s)
    except ValueError:
        raise _bad(path, "metadata %s is not JSON: %.80s" % (key, s)) from None


def _int(meta, key, path):
    s = meta.get(key)
    if s is None:
        return None
    try:
        return int(s)
    except ValueError:
        raise _bad(path, "metadata %s is not an integer: %.80s" % (key, s)) from None


class Checkpoint:
    """A checkpoint written by `ncelab train` (docs/checkpoint.md).

    tensors      name -> numpy array (read-only): parameters under their PyTorch names, batch-norm
                 running statistics, and the training state (optim.*, queue.*, key.*)
    metadata     the raw metadata strings
    model        "convnet" or "resnet18"
    input_shape  (C, H, W) of one image
    mean, std    float32 arrays of C numbers: the network's input is (pixel / 255 - mean) / std
    class_names  the dataset's classes in label order
    feature_dim, head_dim, data, version, config (dict), epoch, step
    Anything a checkpoint of an older ncelab does not record is None.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.tensors, self.metadata = read_safetensors(self.path)
        meta, p = self.metadata, self.path
        self.config = _json(meta, "config", p)
        if not isinstance(self.config, dict):
            raise _bad(p, "not an ncelab checkpoint (no config in the metadata)")
        self.model = meta.get("model", self.config.get("model"))
        self.data = meta.get("data", self.config.get("data"))
        self.version = meta.get("version")
        self.epoch = _int(meta, "epoch", p)
        self.step = _int(meta, "step", p)
        self.feature_dim = _int(meta, "feature_dim", p)
        self.head_dim = _int(meta, "head_dim", p)
        shape = _json(meta, "input_shape", p)
        if shape is not None and (not isinstance(shape, list) or len(shape) != 3 or
                                  not all(isinstance(s, int) and s > 0 for s in shape)):
            raise _bad(p, "metadata input_shape: [C, H, W] of positive integers expected, found %s" % meta["input_shape"])
        self.input_shape = tuple(shape) if shape is not None else None
        names = _json(meta, "class_names", p)
        if names is not None and (not isinstance(names, list) or not all(isinstance(s, str) for s in names)):
            raise _bad(p, "metadata class_names: a JSON array of strings expected")
        self.class_names = names
        self.mean = self.std = None
        norm = _json(meta, "normalization", p)
        if norm is not None:
            C = self.input_shape[0] if self.input_shape else None
            try:
                mean = np.asarray(norm["mean"], dtype=np.float32)
                std = np.asarray(norm["std"], dtype=np.float32)
            except (KeyError, TypeError, ValueError):
                mean = std = None
            if (mean is None or mean.ndim != 1 or mean.shape != std.shape or (C and mean.shape[0] != C) or
                    not np.all(np.isfinite(mean)) or not np.all(std > 0)):
                raise _bad(p, "metadata normalization: {\"mean\": [...], \"std\": [...]} of C finite numbers "
                           "(std > 0) expected, found %.80s" % meta["normalization"])
            self.mean, self.std = mean, std

    def encoder_state(self):
        """The encoder's tensors alone (parameters and batch-norm statistics): name -> array."""
        return {k: v for k, v in self.tensors.items() if not k.startswith(_TRAINING_STATE)}

    def __repr__(self):
        return "Checkpoint(%r, model=%r, input_shape=%r, classes=%s, epoch=%r)" % (
            self.path, self.model, self.input_shape,
            len(self.class_names) if self.class_names is not None else None, self.epoch)


def load_checkpoint(path):
    """The checkpoint at path as numpy arrays and metadata (no torch needed). ValueError naming
    the file when it is not an ncelab checkpoint or is malformed; OSError when unreadable."""
    return Checkpoint(path)
