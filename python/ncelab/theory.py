"""theory.py -- the theory engine of the C library: the certified NCE-optimal representation of
the latent-class model for each k (`ncelab theory`) and the exact population loss at a Gram
matrix (`ncelab theory eval`). numpy in and out; the library's messages as ValueError."""
import ctypes
import json
import numbers
import os

import numpy as np

from ._lib import check, lib, message_buffer

__all__ = ["solve", "population_loss"]


def _model_args(rho, support, classes, n_hint=0):
    """(N, rho spec bytes, support pointer or None, M, support path bytes or None, keep-alive)"""
    path = None
    P = None
    M = 0
    if isinstance(support, (str, bytes, os.PathLike)):
        path = os.fsencode(support)
    elif support is not None:
        P = np.ascontiguousarray(support, dtype=np.float64)
        if P.ndim != 2:
            raise ValueError("support: an N x M matrix expected, got an array of shape %s" % (P.shape,))
        M = P.shape[1]
    if isinstance(rho, str):
        spec = rho
        N = classes if classes is not None else (P.shape[0] if P is not None else (0 if path else n_hint))
        if not N and not path:
            raise ValueError("rho: the SPEC %r needs the number of classes: pass classes=N (or a support)" % rho)
    else:
        r = np.asarray(rho, dtype=np.float64).reshape(-1)
        if r.size < 2:
            raise ValueError("rho: a prior over at least 2 classes expected, got %d numbers" % r.size)
        if classes is not None and classes != r.size:
            raise ValueError("rho: %d numbers but classes=%d" % (r.size, classes))
        spec = ",".join(repr(float(x)) for x in r)
        N = r.size
    if P is not None and P.shape[0] != N:
        raise ValueError("support: %d rows but rho has %d classes" % (P.shape[0], N))
    ptr = P.ctypes.data_as(ctypes.POINTER(ctypes.c_double)) if P is not None else None
    return int(N), spec.encode(), ptr, int(M), path, P


def _k_list(k):
    if isinstance(k, str):
        return k, False
    if isinstance(k, numbers.Integral):
        return str(int(k)), True
    ks = [int(x) for x in k]
    if not ks:
        raise ValueError("k: empty list")
    return ",".join(str(x) for x in ks), False


def _record(r, M):
    r = dict(r)
    r["gram"] = np.array([[np.nan if v is None else v for v in row] for row in r["gram"]], dtype=np.float64).reshape(M, M)
    r["norms"] = np.array([np.nan if v is None else v for v in r["norms"]], dtype=np.float64)
    return r


def solve(rho, k, R=1.0, support=None, loss="infonce", *, classes=None, dim=None, restarts=2, seed=1,
          with_model=False):
    """The NCE-optimal representation for each k, certified: `ncelab theory --json`'s records.

    rho      the class prior: an array of N probabilities (positive, summing to 1), or a SPEC
             string "uniform" / "zipf:S" / "p1,p2,..." with classes=N (or a support giving N)
    k        an int (one record is returned), or a sequence of ints or a LIST string such as
             "1..4096" (a list of records, in increasing k, duplicates dropped)
    R        the norm bound |f(x)| <= R (R^2 = 1 / temperature)
    support  None (non-overlapping classes: one point per class), an N x M row-stochastic array,
             or the path of a JSON support file (as --support)
    loss     "infonce" or "nce"; dim: the representation's dimension (None: M);
             restarts, seed: random starts per k besides the warm start, and their seed
    Each record is a dict with the CLI's fields: "k", "nce_loss", "gram" (M x M numpy array),
    "norms" (M), "certificate" {"gap","min_eig","kkt_residual","optimal"}, "simplex_deviation",
    "class_spread", "rank", "collision_prob", "saunshi_bound", "downstream" {"mean_ce",
    "mean_ce_balanced","mean_acc","avg_binary_ce","kplus1_ce"}, "unique", "downstream_range",
    "starts", "iterations", "seconds"; a value that is not finite (an infinite bound) is None.
    with_model=True returns (model, records), model the CLI's "model" object.
    Bad values raise ValueError with the library's message."""
    N, spec, P, M, path, keep = _model_args(rho, support, classes)
    klist, single = _k_list(k)
    out = ctypes.c_void_p()
    msg = message_buffer()
    L = lib()
    rc = L.ncelab_theory_solve(N, spec, P, M, path, float(R), int(dim or 0), loss.encode(), klist.encode(),
                               int(restarts), int(seed), ctypes.byref(out), msg, len(msg))
    del keep
    check(rc, msg)
    try:
        doc = json.loads(ctypes.string_at(out.value).decode("utf-8"))
    finally:
        L.ncelab_free(out)
    Mm = doc["model"]["points"]
    records = [_record(r, Mm) for r in doc["results"]]
    result = records[0] if single else records
    return (doc["model"], result) if with_model else result


def population_loss(G, rho, k, support=None, R=1.0, loss="infonce", *, classes=None):
    """The exact population loss L_k(G) of the Gram matrix G (M x M: symmetric, positive
    semidefinite, diagonal <= R^2) with k negatives (1..1e9), and its gradient dL/dG (M x M):
    `ncelab theory eval`. rho and support as in solve (a rho SPEC string without classes= takes
    N = M). Returns (loss, grad). ValueError with the library's message for a G that breaks the
    constraints, a bad prior or k."""
    G = np.ascontiguousarray(G, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] != G.shape[1] or G.shape[0] < 1:
        raise ValueError("G: a square M x M matrix expected, got an array of shape %s" % (G.shape,))
    if not isinstance(k, numbers.Integral):
        raise ValueError("k: an integer expected, got %r" % (k,))
    N, spec, P, M, path, keep = _model_args(rho, support, classes, n_hint=G.shape[0])
    Mg = G.shape[0]
    grad = np.zeros((Mg, Mg), dtype=np.float64)
    value = ctypes.c_double()
    msg = message_buffer()
    dp = ctypes.POINTER(ctypes.c_double)
    rc = lib().ncelab_theory_loss(N, spec, P, M, path, float(R), loss.encode(), int(k), G.ctypes.data_as(dp), Mg,
                                  ctypes.byref(value), grad.ctypes.data_as(dp), msg, len(msg))
    del keep
    check(rc, msg)
    return value.value, grad
