#!/usr/bin/python3
"""make_cifar_pickles.py -- tiny CIFAR-10 / CIFAR-100 python releases, as Python 2 and Python 3 pickle them.

Writes tests/fixtures/cifar_py/: the same small dataset as the binary-format records that
tests/test_data.c writes (the pixel rule `pix` and the labels below are repeated there), in the
layout of torchvision's cifar-10-batches-py and cifar-100-python directories:

  c10_py2/, c100_py2/   Python 2's cPickle at protocol 2, the form of the files CIFAR ships:
                        keys, strings and the pixel buffer are byte strings (SHORT_BINSTRING /
                        BINSTRING), the array goes through numpy.core.multiarray._reconstruct
                        and numpy.dtype. Python 2 cannot be run here, so `Py2Pickler` writes that
                        byte stream by hand, following cPickle's rules (see its docstring); the
                        result is checked by loading it with Python 3's pickle (encoding='bytes').
  c10_pP/, c100_pP/     Python 3's pickle.dumps at protocol P = 2, 3, 4, 5. Protocols 2 and 4
                        have bytes keys and values (what pickle.load(f, encoding='bytes') gives),
                        3 and 5 str ones (encoding='latin1', as torchvision loads them).
  fortran/test_batch_p2, fortran/test_batch_p5
                        CIFAR-10's test batch with its array in Fortran (column-major) order.

Run with Debian's Python (it has numpy):  /usr/bin/python3 tests/ref/make_cifar_pickles.py
Two runs write the same bytes.
"""
import os
import pickle
import pickletools
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "cifar_py")


def pix(f, r):
    """Image r of file f as CIFAR stores it: 3072 bytes, the R, G and B planes of 32 x 32 (CHW).
    The same rule as cifar_pix() in tests/test_data.c."""
    ch, y, x = np.meshgrid(np.arange(3), np.arange(32), np.arange(32), indexing="ij")
    return ((r * 7 + ch * 50 + y * 3 + x * 5 + f * 11) % 256).astype(np.uint8).reshape(3072)


def rows(f, n):
    return np.stack([pix(f, r) for r in range(n)])


# CIFAR-10: data_batch_1..5 hold 1, 2, 1, 1, 1 images (file index f = 0..4), test_batch 2 (f = 7).
C10_COUNTS = [1, 2, 1, 1, 1]
C10_NAMES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "lorry"]


def c10_label(f, r):
    return (r * 3 + f) % 10


# CIFAR-100: train holds 3 images (f = 1), test 2 (f = 2); (coarse, fine) labels.
C100_TRAIN = [(19, 99), (0, 0), (7, 42)]
C100_TEST = [(11, 55), (4, 98)]
C100_FINE = ["apple", "aquarium_fish"] + ["fine%d" % i for i in range(2, 99)] + ["worm"]
C100_COARSE = ["aquatic_mammals", "fish"] + ["coarse%d" % i for i in range(2, 19)] + ["vehicles_2"]


def c10_batches():
    """(file name, [(key, value), ...]) in the key order of CIFAR's own files."""
    out = []
    for f, n in enumerate(C10_COUNTS):
        out.append(("data_batch_%d" % (f + 1), [
            ("batch_label", b"training batch %d of 5" % (f + 1)),
            ("labels", [c10_label(f, r) for r in range(n)]),
            ("data", rows(f, n)),
            ("filenames", [b"img_%d_%d.png" % (f, r) for r in range(n)]),
        ]))
    out.append(("test_batch", [
        ("batch_label", b"testing batch 1 of 1"),
        ("labels", [9 - r for r in range(2)]),
        ("data", rows(7, 2)),
        ("filenames", [b"test_%d.png" % r for r in range(2)]),
    ]))
    out.append(("batches.meta", [
        ("num_cases_per_batch", 10000),
        ("label_names", [s.encode() for s in C10_NAMES]),
        ("num_vis", 3072),
    ]))
    return out


def c100_batches():
    out = []
    for name, f, labs, what in (("train", 1, C100_TRAIN, b"training"), ("test", 2, C100_TEST, b"testing")):
        out.append((name, [
            ("filenames", [b"%s_%d.png" % (name.encode(), r) for r in range(len(labs))]),
            ("batch_label", what + b" batch 1 of 1"),
            ("fine_labels", [fine for coarse, fine in labs]),
            ("coarse_labels", [coarse for coarse, fine in labs]),
            ("data", rows(f, len(labs))),
        ]))
    out.append(("meta", [
        ("fine_label_names", [s.encode() for s in C100_FINE]),
        ("coarse_label_names", [s.encode() for s in C100_COARSE]),
    ]))
    return out


class Py2Pickler:
    """The byte stream of Python 2's cPickle.dump(obj, f, 2) for CIFAR's objects, by hand.

    cPickle's rules, as its source (Modules/cPickle.c) has them: PROTO 2 first; memo indices
    start at 1 (put2 numbers an entry len(memo) + 1) and are written as BINPUT (LONG_BINPUT from
    256); a dict or list is EMPTY_DICT / EMPTY_LIST and always memoised, its items follow in
    batches of 1000 between MARK and SETITEMS / APPENDS (one item alone: SETITEM / APPEND);
    other objects are memoised only when something else holds them too (put() skips a reference
    count below 2): keys and one-character strings (interned or cached), globals, and the result
    of every REDUCE that has a state (put2), but not fresh tuples, list items, or the pixel
    string; ints are BININT1 / BININT2 / BININT; a str is SHORT_BINSTRING below 256 bytes, else
    BINSTRING; False is NEWFALSE; tuples of 1 to 3 items are TUPLE1..3, longer ones MARK ... TUPLE.

    numpy (1.x on Python 2) pickles an array as _reconstruct(ndarray, (0,), 'b') with the state
    (1, shape, dtype, is_fortran, raw bytes), and the dtype as dtype('u1', 0, 1) with the state
    (3, '|', None, None, None, -1, -1, 0).
    """

    def __init__(self):
        self.out = bytearray(b"\x80\x02")
        self.memo = 0

    def put(self):
        self.memo += 1
        self.out += b"q" + bytes([self.memo]) if self.memo < 256 else b"r" + struct.pack("<I", self.memo)

    def int(self, v):
        if 0 <= v < 256:
            self.out += b"K" + bytes([v])
        elif 0 <= v < 65536:
            self.out += b"M" + struct.pack("<H", v)
        else:
            self.out += b"J" + struct.pack("<i", v)

    def str(self, s, put):
        if len(s) < 256:
            self.out += b"U" + bytes([len(s)]) + s
        else:
            self.out += b"T" + struct.pack("<i", len(s)) + s
        if put:
            self.put()

    def glob(self, module, name):
        self.out += b"c" + module + b"\n" + name + b"\n"
        self.put()

    def batched(self, items, save_one, one, many):
        for i in range(0, len(items), 1000):
            batch = items[i:i + 1000]
            if len(batch) == 1:
                save_one(batch[0])
                self.out += one
            else:
                self.out += b"("
                for x in batch:
                    save_one(x)
                self.out += many

    def value(self, v):
        if isinstance(v, bytes):
            self.str(v, put=len(v) == 1)
        elif isinstance(v, int):
            self.int(v)
        elif isinstance(v, list):
            self.out += b"]"
            self.put()
            self.batched(v, self.value, b"a", b"e")
        elif isinstance(v, np.ndarray):
            self.array(v)
        else:
            raise TypeError(type(v))

    def array(self, a):
        assert a.dtype == np.uint8 and a.flags.c_contiguous
        self.glob(b"numpy.core.multiarray", b"_reconstruct")
        self.glob(b"numpy", b"ndarray")
        self.int(0)
        self.out += b"\x85"          # TUPLE1: (0,)
        self.str(b"b", put=True)
        self.out += b"\x87R"         # TUPLE3, REDUCE
        self.put()
        self.out += b"("             # the state: 5 items
        self.int(1)
        for d in a.shape:
            self.int(d)
        self.out += {1: b"\x85", 2: b"\x86", 3: b"\x87"}[a.ndim]
        self.glob(b"numpy", b"dtype")
        self.str(b"u1", put=False)
        self.int(0)
        self.int(1)
        self.out += b"\x87R"
        self.put()
        self.out += b"("
        self.int(3)
        self.str(b"|", put=True)
        self.out += b"NNN"
        self.out += b"J" + struct.pack("<i", -1)
        self.out += b"J" + struct.pack("<i", -1)
        self.int(0)
        self.out += b"tb"            # TUPLE, BUILD (the dtype)
        self.out += b"\x89"          # NEWFALSE: not Fortran order
        self.str(a.tobytes(), put=False)
        self.out += b"tb"            # TUPLE, BUILD (the array)

    def dump(self, pairs):
        self.out += b"}"
        self.put()

        def item(kv):
            self.str(kv[0].encode(), put=True)
            self.value(kv[1])
        self.batched(pairs, item, b"s", b"u")
        self.out += b"."
        return bytes(self.out)


def as_python(pairs, text):
    """The dict Python 3 would hold: bytes keys and strings, or str ones (decoded as latin1)."""
    def conv(v):
        if isinstance(v, bytes):
            return v.decode("latin1") if text else v
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v
    return {(k if text else k.encode()): conv(v) for k, v in pairs}


def same(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and (a == b).all()
    return type(a) == type(b) and a == b


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def main():
    total = 0
    for stem, batches in (("c10", c10_batches()), ("c100", c100_batches())):
        for name, pairs in batches:
            raw = Py2Pickler().dump(pairs)
            pickletools.dis(raw, out=open(os.devnull, "w"))  # a well-formed pickle: stack and memo consistent
            back = pickle.loads(raw, encoding="bytes")
            assert same(back, as_python(pairs, text=False)), name
            write(os.path.join(OUT, stem + "_py2", name), raw)
            total += len(raw)
            for proto in (2, 3, 4, 5):
                obj = as_python(pairs, text=proto in (3, 5))
                raw = pickle.dumps(obj, protocol=proto)
                assert same(pickle.loads(raw), obj)
                write(os.path.join(OUT, "%s_p%d" % (stem, proto), name), raw)
                total += len(raw)
    test = dict(c10_batches())["test_batch"]
    for proto in (2, 5):
        obj = as_python(test, text=False)
        obj[b"data"] = np.asfortranarray(obj[b"data"])
        raw = pickle.dumps(obj, protocol=proto)
        back = pickle.loads(raw)
        assert back[b"data"].flags.f_contiguous and not back[b"data"].flags.c_contiguous and same(back, obj)
        write(os.path.join(OUT, "fortran", "test_batch_p%d" % proto), raw)
        total += len(raw)
    print("wrote %s: %d bytes (numpy %s, Python %s)" % (os.path.normpath(OUT), total, np.__version__, sys.version.split()[0]))


if __name__ == "__main__":
    main()
