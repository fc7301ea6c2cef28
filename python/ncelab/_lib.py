"""_lib.py -- libncelab.so through ctypes: finding it, its functions' signatures, its errors."""
import ctypes
import os

_LIB = None
_MSG_LEN = 1024


def _path():
    env = os.environ.get("NCELAB_LIBRARY")
    if env:
        return env
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "libncelab.so")


def lib():
    """The loaded library (once), its functions typed. NCELAB_LIBRARY overrides its path."""
    global _LIB
    if _LIB is not None:
        return _LIB
    path = _path()
    try:
        L = ctypes.CDLL(path)
    except OSError as e:
        raise ImportError(
            "ncelab: cannot load the C library %s (%s); install the package with `pip install ./python` "
            "from the repository, or set NCELAB_LIBRARY to a libncelab.so built with cmake -DNCELAB_SHARED=ON" % (path, e)
        ) from None
    c_int, c_double, c_char_p, c_void_p, c_size_t = ctypes.c_int, ctypes.c_double, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t
    dbl_p = ctypes.POINTER(ctypes.c_double)
    L.ncelab_version.restype = c_char_p
    L.ncelab_version.argtypes = []
    L.ncelab_free.restype = None
    L.ncelab_free.argtypes = [c_void_p]
    L.ncelab_theory_solve.restype = c_int
    L.ncelab_theory_solve.argtypes = [c_int, c_char_p, dbl_p, c_int, c_char_p, c_double, c_int, c_char_p, c_char_p,
                                      c_int, ctypes.c_uint64, ctypes.POINTER(c_void_p), c_char_p, c_size_t]
    L.ncelab_theory_loss.restype = c_int
    L.ncelab_theory_loss.argtypes = [c_int, c_char_p, dbl_p, c_int, c_char_p, c_double, c_char_p, ctypes.c_int64,
                                     dbl_p, c_int, dbl_p, dbl_p, c_char_p, c_size_t]
    _LIB = L
    return L


def message_buffer():
    return ctypes.create_string_buffer(_MSG_LEN)


def check(rc, msg):
    """Raises the library's error as a Python exception: ValueError for a bad value or file
    (codes 1 and 2), RuntimeError for a numerical failure (3)."""
    if rc == 0:
        return
    text = msg.value.decode("utf-8", "replace") or "ncelab: error %d" % rc
    if rc in (1, 2):
        raise ValueError(text)
    raise RuntimeError(text)
