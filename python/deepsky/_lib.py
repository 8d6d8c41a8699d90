"""Finding and loading libdeepsky.so through ctypes, and its C prototypes."""
import ctypes
import os

MAX_DIMS = 6  # DS_MAX_DIMS in include/deepsky.h

_here = os.path.dirname(os.path.abspath(__file__))


class DeepskyError(RuntimeError):
    """A libdeepsky call or a deepsky command failed; the message is the library's."""


def _candidates():
    env = os.environ.get("DEEPSKY_LIB")
    if env:
        yield env
        return
    # the copy the build makes: <build>/python/deepsky next to <build>/libdeepsky.so
    yield os.path.join(_here, "..", "..", "libdeepsky.so")
    # the source tree's python/deepsky with the README's build/ beside it
    yield os.path.join(_here, "..", "..", "build", "libdeepsky.so")


def _load():
    tried = []
    for path in _candidates():
        path = os.path.normpath(path)
        if os.path.exists(path):
            return ctypes.CDLL(path), path
        tried.append(path)
    raise ImportError("deepsky: libdeepsky.so not found (tried %s); build it (README) or set DEEPSKY_LIB"
                      % ", ".join(tried))


lib, lib_path = _load()

_P = ctypes.c_void_p
_I = ctypes.c_int
_IP = ctypes.POINTER(ctypes.c_int)
_FP = ctypes.POINTER(ctypes.c_float)

for name, res, args in [
    ("ds_last_error", ctypes.c_char_p, []),
    ("ds_predictor_open", _P, [ctypes.c_char_p, _I]),
    ("ds_predictor_free", None, [_P]),
    ("ds_predictor_classes", _I, [_P]),
    ("ds_predictor_class_name", ctypes.c_char_p, [_P, _I]),
    ("ds_predictor_input_shape", _I, [_P, _IP]),
    ("ds_predictor_predict", _I, [_P, _FP, _I, _FP]),
    ("ds_predictor_num_params", _I, [_P]),
    ("ds_predictor_param", ctypes.c_char_p, [_P, _I, _IP, _IP, ctypes.POINTER(_FP)]),
]:
    f = getattr(lib, name)
    f.restype, f.argtypes = res, args


def error(context=None):
    """A DeepskyError with ds_last_error()'s message."""
    msg = (lib.ds_last_error() or b"").decode("utf-8", "replace") or "unknown error"
    return DeepskyError("%s: %s" % (context, msg) if context else msg)
