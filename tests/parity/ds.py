"""ds.py — a thin ctypes view of libdeepsky for the parity tests.

Loads the shared library named by $DS_LIB (set by ctest) or build/libdeepsky.so,
declares the C signatures, and adds NumPy views of node values and gradients.
"""
import ctypes as C
import os
import sys

import numpy as np

MAX_DIMS = 6


class Shape(C.Structure):
    _fields_ = [("ndim", C.c_int), ("d", C.c_int * MAX_DIMS)]


class Init(C.Structure):
    _fields_ = [("kind", C.c_int), ("a", C.c_float), ("b", C.c_float)]


class ConvOpt(C.Structure):
    _fields_ = [("stride", C.c_int * 2), ("pad", C.c_int * 2), ("dilation", C.c_int * 2),
                ("groups", C.c_int), ("output_padding", C.c_int * 2)]


class PoolOpt(C.Structure):
    _fields_ = [("kernel", C.c_int * 2), ("stride", C.c_int * 2), ("pad", C.c_int * 2)]


class Schedule(C.Structure):
    _fields_ = [("kind", C.c_int), ("step_size", C.c_int), ("gamma", C.c_float),
                ("t_max", C.c_int), ("eta_min", C.c_float), ("warmup_steps", C.c_int),
                ("warmup_start", C.c_float)]


class OptimCfg(C.Structure):
    _fields_ = [("kind", C.c_int), ("lr", C.c_float), ("momentum", C.c_float),
                ("weight_decay", C.c_float), ("nesterov", C.c_int), ("beta1", C.c_float),
                ("beta2", C.c_float), ("eps", C.c_float), ("alpha", C.c_float),
                ("clip_norm", C.c_float), ("schedule", Schedule)]


# init kinds, optimizer kinds, schedules (as in deepsky.h)
INIT = dict(default=0, zeros=1, ones=2, constant=3, uniform=4, normal=5, xavier_uniform=6,
            xavier_normal=7, he_uniform=8, he_normal=9)
SGD, ADAM, ADAMW, RMSPROP = range(4)
SCHED_CONSTANT, SCHED_STEP, SCHED_COSINE = range(3)

P = C.c_void_p
F = C.c_float
I = C.c_int
FP = C.POINTER(C.c_float)

_SIGS = {
    "ds_last_error": (C.c_char_p, []),
    "ds_graph_new": (P, [C.c_uint64]),
    "ds_graph_free": (None, [P]),
    "ds_input": (P, [P, C.c_char_p, Shape]),
    "ds_param": (P, [P, C.c_char_p, Shape, Init]),
    "ds_buffer": (P, [P, C.c_char_p, Shape, Init]),
    "ds_node_set_requires_grad": (None, [P, I]),
    "ds_graph_compile": (I, [P]),
    "ds_graph_set_batch": (I, [P, I]),
    "ds_graph_set_training": (None, [P, I]),
    "ds_graph_forward": (I, [P]),
    "ds_graph_backward": (I, [P, P, FP]),
    "ds_graph_zero_grad": (None, [P]),
    "ds_graph_find": (P, [P, C.c_char_p]),
    "ds_node_shape": (Shape, [P]),
    "ds_node_numel": (C.c_size_t, [P]),
    "ds_node_value": (FP, [P]),
    "ds_node_grad": (FP, [P]),
    "ds_matmul": (P, [P, P, P]),
    "ds_linear": (P, [P, P, P, P]),
    "ds_add": (P, [P, P, P]),
    "ds_sub": (P, [P, P, P]),
    "ds_mul": (P, [P, P, P]),
    "ds_conv2d": (P, [P, P, P, P, ConvOpt]),
    "ds_conv_transpose2d": (P, [P, P, P, P, ConvOpt]),
    "ds_maxpool2d": (P, [P, P, PoolOpt]),
    "ds_avgpool2d": (P, [P, P, PoolOpt]),
    "ds_global_avgpool": (P, [P, P]),
    "ds_relu": (P, [P, P]),
    "ds_leaky_relu": (P, [P, P, F]),
    "ds_elu": (P, [P, P, F]),
    "ds_sigmoid": (P, [P, P]),
    "ds_tanh": (P, [P, P]),
    "ds_softplus": (P, [P, P]),
    "ds_softmax": (P, [P, P]),
    "ds_log_softmax": (P, [P, P]),
    "ds_dropout": (P, [P, P, F]),
    "ds_batchnorm": (P, [P, P, P, P, P, P, F, F]),
    "ds_instancenorm": (P, [P, P, F]),
    "ds_concat": (P, [P, I, C.POINTER(P)]),
    "ds_reshape": (P, [P, P, Shape]),
    "ds_flatten": (P, [P, P]),
    "ds_softmax_cross_entropy": (P, [P, P, P, FP]),
    "ds_bce_with_logits": (P, [P, P, P]),
    "ds_mse": (P, [P, P, P]),
    "ds_embedding": (P, [P, P, P]),
    "ds_weighted_sum": (P, [P, I, C.POINTER(P), FP]),
    "ds_optim_new": (P, [P, C.POINTER(OptimCfg)]),
    "ds_optim_free": (None, [P]),
    "ds_optim_step": (I, [P]),
    "ds_optim_lr": (F, [P]),
    "ds_schedule_lr": (F, [C.POINTER(Schedule), F, C.c_long]),
    "ds_grad_norm": (F, [P]),
}


def _load():
    path = os.environ.get("DS_LIB") or os.path.join(
        os.path.dirname(__file__), "..", "..", "build", "libdeepsky.so")
    lib = C.CDLL(path)
    for name, (res, args) in _SIGS.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    return lib


lib = _load()


def error():
    return lib.ds_last_error().decode()


def shape(*dims):
    s = Shape()
    s.ndim = len(dims)
    for i, d in enumerate(dims):
        s.d[i] = d
    return s


def conv_opt(stride=1, pad=0, dilation=1, groups=1, output_padding=0):
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
    o = ConvOpt()
    o.stride[:] = pair(stride)
    o.pad[:] = pair(pad)
    o.dilation[:] = pair(dilation)
    o.groups = groups
    o.output_padding[:] = pair(output_padding)
    return o


def pool_opt(kernel, stride=0, pad=0):
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
    o = PoolOpt()
    o.kernel[:] = pair(kernel)
    o.stride[:] = pair(stride)
    o.pad[:] = pair(pad)
    return o


def check(node):
    """Raise with ds_last_error() when a builder returned NULL."""
    if not node:
        raise RuntimeError(error())
    return node


def ok(status):
    if status != 0:
        raise RuntimeError(error())


def node_shape(node):
    s = lib.ds_node_shape(node)
    return tuple(s.d[i] for i in range(s.ndim))


def value(node):
    """NumPy view (no copy) of a node's value buffer."""
    return np.ctypeslib.as_array(lib.ds_node_value(node), shape=node_shape(node))


def grad(node):
    """NumPy view of a node's gradient buffer, or None."""
    p = lib.ds_node_grad(node)
    if not p:
        return None
    return np.ctypeslib.as_array(p, shape=node_shape(node))


def fptr(a):
    """float* into a C-contiguous float32 NumPy array (keep `a` alive)."""
    assert a.dtype == np.float32 and a.flags.c_contiguous
    return a.ctypes.data_as(FP)


def rel_err(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(1e-6, float(np.max(np.abs(b)))))


class Report:
    """Tally for a parity script; ends with the line CI reads."""

    def __init__(self, suite):
        self.suite, self.passed, self.failed = suite, 0, 0

    def check(self, what, err, tol=1e-4):
        good = err <= tol
        self.passed += good
        self.failed += not good
        print(f"{'ok  ' if good else 'FAIL'} {what}: rel err {err:.2e} (tol {tol:g})")

    def finish(self):
        print(f"{self.suite}: {self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed or not self.passed else 0)
