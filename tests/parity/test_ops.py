"""Op parity with PyTorch: every deepsky op's forward and backward against
torch / torch.nn.functional on the same random inputs, with the same random
upstream gradient, comparing the output and the gradient of every input and
parameter (relative error ≤ 1e-4; the reference is computed in float64)."""
import ctypes as C
import traceback

import numpy as np
import torch
import torch.nn.functional as F

import ds

torch.set_num_threads(2)
REF = torch.float64  # the oracle's precision (torch.float32 passes too)
TOL = 1e-4
rng = np.random.default_rng(0)
report = ds.Report("op parity")
worst = [0.0, ""]
ZEROS = ds.Init(ds.INIT["zeros"], 0, 0)


def randn(*s, scale=1.0):
    return (scale * rng.standard_normal(s)).astype(np.float32)


def uniform(lo, hi, *s):
    return rng.uniform(lo, hi, s).astype(np.float32)


def check(what, got, want, tol=TOL):
    """Report rel_err(got, want); a missing gradient or a shape mismatch fails."""
    want = want.detach().numpy() if torch.is_tensor(want) else np.asarray(want)
    if got is None:
        err, what = float("inf"), what + " (no gradient)"
    elif got.shape != want.shape and not (got.size == want.size == 1):
        err, what = float("inf"), f"{what} (shape {got.shape}, torch {want.shape})"
    else:
        err = ds.rel_err(got, want)
    if err > worst[0]:
        worst[:] = [err, what]
    report.check(what, err, tol)


def fail(what, e):
    traceback.print_exc()
    report.check(f"{what}: {e}", float("inf"))


# Node kinds in a case's spec: X input with requires_grad, P parameter,
# C input without gradient (labels, targets), B buffer (running statistics).
def case(name, spec, build, ref, train=True):
    """spec: {name: (kind, float32 array)}; build(g, nodes) -> deepsky output;
    ref(tensors) -> torch output. Checks the output, every buffer after the
    forward, and the gradient of every X and P node: for a random dout, or for
    a scalar output both the default seed (1.0) and a random scalar seed."""
    g = ds.lib.ds_graph_new(1)
    try:
        nodes = {}
        for k, (kind, a) in spec.items():
            s = ds.shape(*a.shape)
            if kind == "P":
                n = ds.lib.ds_param(g, k.encode(), s, ZEROS)
            elif kind == "B":
                n = ds.lib.ds_buffer(g, k.encode(), s, ZEROS)
            else:
                n = ds.lib.ds_input(g, k.encode(), s)
                if n and kind == "X":
                    ds.lib.ds_node_set_requires_grad(n, 1)
            nodes[k] = ds.check(n)
        out = ds.check(build(g, nodes))
        ds.ok(ds.lib.ds_graph_compile(g))
        ds.lib.ds_graph_set_training(g, int(train))
        for k, (_, a) in spec.items():
            ds.value(nodes[k])[...] = a
        ds.ok(ds.lib.ds_graph_forward(g))

        t = {k: torch.tensor(a, dtype=REF, requires_grad=kind in "XP")
             for k, (kind, a) in spec.items()}
        ty = ref(t)
        y = ds.value(out).copy()
        check(f"{name}: forward", y, ty)
        for k, (kind, _) in spec.items():
            if kind == "B":
                check(f"{name}: {k} after forward", ds.value(nodes[k]), t[k])

        wrt = [k for k, (kind, _) in spec.items() if kind in "XP"]
        douts = [None, np.array([rng.uniform(0.5, 2)], np.float32)] if y.size == 1 \
            else [randn(*y.shape)]
        for dout in douts:
            ds.lib.ds_graph_zero_grad(g)
            ds.ok(ds.lib.ds_graph_backward(g, out, None if dout is None else ds.fptr(dout)))
            seed = torch.ones_like(ty) if dout is None else torch.tensor(dout, dtype=REF).reshape(ty.shape)
            grads = torch.autograd.grad(ty, [t[k] for k in wrt], seed, retain_graph=True)
            tag = "" if y.size > 1 else " (seed 1)" if dout is None else f" (seed {dout[0]:.3g})"
            for k, gr in zip(wrt, grads):
                check(f"{name}: d{k}{tag}", ds.grad(nodes[k]), gr)
    except Exception as e:  # a NULL builder, a failed compile/forward/backward
        fail(name, e)
    finally:
        ds.lib.ds_graph_free(g)


X = lambda a: ("X", a)
P = lambda a: ("P", a)
Cn = lambda a: ("C", a)
B = lambda a: ("B", a)
L = ds.lib


# ---- matmul, linear, broadcasting arithmetic --------------------------------

def test_dense():
    case("matmul [7,13]x[13,5]", {"a": X(randn(7, 13)), "b": X(randn(13, 5))},
         lambda g, n: L.ds_matmul(g, n["a"], n["b"]), lambda t: t["a"] @ t["b"])
    case("matmul [33,64]x[64,47] (param b)", {"a": X(randn(33, 64)), "b": P(randn(47, 64).T.copy())},
         lambda g, n: L.ds_matmul(g, n["a"], n["b"]), lambda t: t["a"] @ t["b"])
    case("linear x[3,2,3,2] W[4,12] b[4]",
         {"x": X(randn(3, 2, 3, 2)), "w": P(randn(4, 12)), "b": P(randn(4))},
         lambda g, n: L.ds_linear(g, n["x"], n["w"], n["b"]),
         lambda t: F.linear(t["x"].flatten(1), t["w"], t["b"]))
    case("linear x[9,20] W[7,20] no bias", {"x": X(randn(9, 20)), "w": P(randn(7, 20))},
         lambda g, n: L.ds_linear(g, n["x"], n["w"], None), lambda t: F.linear(t["x"], t["w"]))
    # the thin products (dot products, no packing) and the packed GEMM around their borders
    for rows, k, o in ((1, 3136, 128), (64, 785, 10), (5, 40, 33), (8, 37, 17), (16, 100, 16)):
        case(f"linear x[{rows},{k}] W[{o},{k}] b[{o}]",
             {"x": X(randn(rows, k)), "w": P(randn(o, k)), "b": P(randn(o))},
             lambda g, n: L.ds_linear(g, n["x"], n["w"], n["b"]),
             lambda t: F.linear(t["x"], t["w"], t["b"]))


def test_arith():
    ops = {"add": (L.ds_add, torch.add), "sub": (L.ds_sub, torch.sub), "mul": (L.ds_mul, torch.mul)}
    pairs = [((2, 3, 4), (2, 3, 4)), ((2, 3, 4, 5), (3, 1, 1)), ((3, 1, 1), (2, 3, 4, 5)),
             ((4, 1), (1, 5)), ((1, 5), (4, 1)), ((2, 3, 5), (5,)), ((5,), (2, 3, 5))]
    for op, (dsf, tf) in ops.items():
        for sa, sb in pairs:
            case(f"{op} {list(sa)} {list(sb)}", {"a": X(randn(*sa)), "b": X(randn(*sb))},
                 lambda g, n, f=dsf: f(g, n["a"], n["b"]), lambda t, f=tf: f(t["a"], t["b"]))


# ---- convolutions ------------------------------------------------------------

def conv_case(name, xs, ws, bias, transposed=False, **o):
    spec = {"x": X(randn(*xs)), "w": P(randn(*ws))}
    if bias:
        oc = ws[1] * o.get("groups", 1) if transposed else ws[0]
        spec["b"] = P(randn(oc))
    opt = ds.conv_opt(**o)
    dsf = L.ds_conv_transpose2d if transposed else L.ds_conv2d
    kw = dict(stride=o.get("stride", 1), padding=o.get("pad", 0), dilation=o.get("dilation", 1),
              groups=o.get("groups", 1))
    if transposed:
        kw["output_padding"] = o.get("output_padding", 0)
    tf = F.conv_transpose2d if transposed else F.conv2d
    case(name, spec, lambda g, n: dsf(g, n["x"], n["w"], n.get("b"), opt),
         lambda t: tf(t["x"], t["w"], t.get("b"), **kw))


def test_conv():
    conv_case("conv2d 3x3 stride 2 pad 1", (2, 3, 7, 6), (4, 3, 3, 3), True, stride=2, pad=1)
    conv_case("conv2d 3x2 kernel stride (2,1) pad (1,0)", (2, 3, 7, 6), (5, 3, 3, 2), True,
              stride=(2, 1), pad=(1, 0))
    conv_case("conv2d dilation 2 pad 2", (2, 2, 9, 8), (3, 2, 3, 3), True, dilation=2, pad=2)
    conv_case("conv2d groups 2 dil (2,1) stride (1,2) no bias", (2, 4, 8, 7), (6, 2, 3, 3), False,
              stride=(1, 2), pad=(2, 1), dilation=(2, 1), groups=2)
    conv_case("conv2d depthwise groups 3", (2, 3, 6, 5), (6, 1, 3, 3), True, pad=1, groups=3)
    conv_case("conv2d 1x1", (3, 5, 4, 5), (7, 5, 1, 1), True)
    conv_case("conv2d 1x1 no bias stride 2", (2, 4, 5, 5), (3, 4, 1, 1), False, stride=2)
    conv_case("conv2d 5x5 pad 2 odd sizes", (3, 3, 11, 9), (5, 3, 5, 5), True, pad=2)
    # sizes that cross the GEMM's k and n blocks and run on every thread
    conv_case("conv2d LeNet conv2 32->64 5x5 pad 2", (9, 32, 14, 14), (64, 32, 5, 5), True, pad=2)
    conv_case("conv2d groups 2 pad 1 stride 1", (2, 4, 6, 6), (4, 2, 3, 3), True, pad=1, groups=2)
    conv_case("conv2d 16->16 3x3 pad 1 (streamed dW)", (9, 16, 12, 11), (16, 16, 3, 3), False, pad=1)
    conv_case("conv2d groups 2 dilation 2 pad 2 (streamed dW)", (3, 8, 9, 10), (8, 4, 3, 3), True, pad=2,
              dilation=2, groups=2)
    conv_case("conv2d 1->32 5x5 pad 2 28x28 (streamed dW, no dx)", (5, 1, 28, 28), (32, 1, 5, 5), True, pad=2)
    conv_case("conv2d 1x1 pad 1 (pad wider than the kernel)", (2, 3, 4, 4), (2, 3, 1, 1), True, pad=1)
    conv_case("conv2d 3x3 stride 2 pad 1, 16->32 ch", (5, 16, 15, 15), (32, 16, 3, 3), True, stride=2, pad=1)
    # output channels in vector lanes (AVX-512 stride 1): 5 and 3 vectors, rows
    # that split into uneven tiles, groups with dilation, 1x1, two readers of x
    conv_case("conv2d 48->80 3x3 pad 1, 29 wide (ocv 2+3 and 3 vectors)", (2, 48, 5, 29), (80, 48, 3, 3), True,
              pad=1)
    conv_case("conv2d groups 2 of 16 dilation 2 pad 2 (ocv)", (2, 32, 9, 10), (32, 16, 3, 3), True, pad=2,
              dilation=2, groups=2)
    conv_case("conv2d 1x1 32->16 (ocv)", (3, 32, 4, 5), (16, 32, 1, 1), False)
    conv_case("conv2d groups 2 of 16, dilation (2, 1), 5 wide (dwv)", (2, 32, 9, 8), (32, 16, 3, 5), True,
              pad=(2, 2), dilation=(2, 1), groups=2)
    conv_case("conv2d 3->16 5x5 pad 2 (dwv, 1 vector, 5 rows a block)", (3, 3, 9, 8), (16, 3, 5, 5), True, pad=2)
    # strided dx by phases: phases no tap reaches (1x1), stride 3 with dilation
    # and odd sizes, groups with stride (2, 1), and a dx that accumulates
    conv_case("conv2d 1x1 stride 2, 16->32 (phases without taps)", (2, 16, 7, 8), (32, 16, 1, 1), False, stride=2)
    conv_case("conv2d 5x5 stride 3 pad 2 dilation (1, 2), 32->16, odd sizes (phases)", (2, 32, 11, 13),
              (16, 32, 5, 5), True, stride=3, pad=2, dilation=(1, 2))
    conv_case("conv2d groups 2 of 16, stride 2, 11x13 (ocv every other pixel)", (2, 32, 11, 13), (32, 16, 3, 3),
              True, stride=2, pad=1, groups=2)
    conv_case("conv2d groups 2 of 16, stride (2, 1) (phases)", (2, 32, 9, 8), (32, 16, 3, 3), True, stride=(2, 1),
              pad=1, groups=2)
    spec = {"x": X(randn(2, 16, 8, 9)), "w": P(randn(16, 16, 3, 3)), "v": P(randn(16, 16, 3, 3))}
    case("two stride-2 convs read one input (phase dx accumulates)", spec,
         lambda g, n: L.ds_add(g, L.ds_conv2d(g, n["x"], n["w"], None, ds.conv_opt(pad=1, stride=2)),
                               L.ds_conv2d(g, n["x"], n["v"], None, ds.conv_opt(pad=1, stride=2))),
         lambda t: F.conv2d(t["x"], t["w"], None, padding=1, stride=2) + F.conv2d(t["x"], t["v"], None, padding=1,
                                                                                  stride=2))
    spec = {"x": X(randn(3, 16, 6, 7)), "w": P(randn(16, 16, 3, 3)), "v": P(randn(16, 16, 3, 3)),
            "b": P(randn(16))}
    case("two stride-1 convs read one input (dx accumulates)", spec,
         lambda g, n: L.ds_add(g, L.ds_conv2d(g, n["x"], n["w"], n["b"], ds.conv_opt(pad=1)),
                               L.ds_conv2d(g, n["x"], n["v"], None, ds.conv_opt(pad=1))),
         lambda t: F.conv2d(t["x"], t["w"], t["b"], padding=1) + F.conv2d(t["x"], t["v"], None, padding=1))
    conv_case("conv_transpose2d stride 2 pad 1 outpad 1", (2, 4, 4, 3), (4, 3, 3, 3), True,
              transposed=True, stride=2, pad=1, output_padding=1)
    conv_case("conv_transpose2d groups 2 4x3 stride (2,1) no bias", (2, 4, 3, 5), (4, 2, 4, 3), False,
              transposed=True, stride=(2, 1), groups=2)
    conv_case("conv_transpose2d dilation 2 stride 2 pad (1,2) outpad (1,0)", (2, 3, 5, 4), (3, 2, 3, 2),
              True, transposed=True, stride=2, pad=(1, 2), dilation=2, output_padding=(1, 0))
    conv_case("conv_transpose2d groups 3 stride 3 outpad 2", (1, 6, 3, 4), (6, 1, 2, 3), True,
              transposed=True, stride=3, output_padding=2, groups=3)
    conv_case("conv_transpose2d 1x1", (2, 5, 3, 4), (5, 4, 1, 1), True, transposed=True)
    # the DCGAN's 4x4 stride-2 layers (AVX-512: transposed forward and strided dx by phases, transposed dx by
    # the ocv tile, dW of both by dwv 4 wide), with groups and output padding
    conv_case("conv_transpose2d 64->32 4x4 stride 2 pad 1 (DCGAN g_up1)", (3, 64, 7, 7), (64, 32, 4, 4), False,
              transposed=True, stride=2, pad=1)
    conv_case("conv2d 32->64 4x4 stride 2 pad 1 (DCGAN d_conv2)", (3, 32, 14, 14), (64, 32, 4, 4), False,
              stride=2, pad=1)
    conv_case("conv_transpose2d groups 2 of 16->32 4x4 stride 2 pad 1 outpad 1 (phases)", (2, 32, 5, 6),
              (32, 32, 4, 4), True, transposed=True, stride=2, pad=1, output_padding=1, groups=2)


# ---- pooling ---------------------------------------------------------------

def test_pool():
    windows = [((2, 3, 7, 7), 3, 2, 1), ((2, 2, 6, 5), 2, 0, 0), ((2, 3, 7, 6), (3, 2), (1, 2), (1, 0)),
               ((1, 2, 9, 8), (2, 4), (3, 2), (1, 2))]
    for xs, k, s, p in windows:
        opt = ds.pool_opt(k, s, p)
        ts = s or k
        what = f"{list(xs)} k {k} s {s} p {p}"
        case(f"max_pool2d {what}", {"x": X(randn(*xs))}, lambda g, n, o=opt: L.ds_maxpool2d(g, n["x"], o),
             lambda t, k=k, ts=ts, p=p: F.max_pool2d(t["x"], k, ts, p))
        case(f"avg_pool2d {what}", {"x": X(randn(*xs))}, lambda g, n, o=opt: L.ds_avgpool2d(g, n["x"], o),
             lambda t, k=k, ts=ts, p=p: F.avg_pool2d(t["x"], k, ts, p, ceil_mode=False,
                                                     count_include_pad=True))
    # the vectorised 2x2/2 path: LeNet's sizes, a row wider than one vector,
    # odd widths, and ties (rounded values: the first maximum wins, as in torch)
    opt = ds.pool_opt(2, 0, 0)
    for xs in ((3, 4, 28, 28), (2, 3, 14, 14), (2, 2, 9, 35), (2, 2, 7, 9)):
        case(f"max_pool2d 2x2 {list(xs)}", {"x": X(randn(*xs))}, lambda g, n: L.ds_maxpool2d(g, n["x"], opt),
             lambda t: F.max_pool2d(t["x"], 2))
    case("max_pool2d 2x2 with ties", {"x": X(np.round(randn(2, 3, 10, 12)))},
         lambda g, n: L.ds_maxpool2d(g, n["x"], opt), lambda t: F.max_pool2d(t["x"], 2))
    case("global_avgpool [3,4,5,7]", {"x": X(randn(3, 4, 5, 7))}, lambda g, n: L.ds_global_avgpool(g, n["x"]),
         lambda t: F.adaptive_avg_pool2d(t["x"], 1))


# ---- activations -------------------------------------------------------------

def test_activations():
    big = randn(3, 4, 5, 6, scale=3.0)
    big.flat[:6] = [25, -25, 20.5, 30, 19.5, -30]  # softplus' x > 20 branch and far tails
    acts = [("relu", lambda g, x: L.ds_relu(g, x), F.relu),
            ("leaky_relu 0.1", lambda g, x: L.ds_leaky_relu(g, x, 0.1), lambda x: F.leaky_relu(x, 0.1)),
            ("elu 1.0", lambda g, x: L.ds_elu(g, x, 1.0), lambda x: F.elu(x, 1.0)),
            ("elu 0.5", lambda g, x: L.ds_elu(g, x, 0.5), lambda x: F.elu(x, 0.5)),
            ("sigmoid", lambda g, x: L.ds_sigmoid(g, x), torch.sigmoid),
            ("tanh", lambda g, x: L.ds_tanh(g, x), torch.tanh),
            ("softplus", lambda g, x: L.ds_softplus(g, x), F.softplus)]
    for name, dsf, tf in acts:
        case(f"{name} [3,4,5,6]", {"x": X(big)}, lambda g, n, f=dsf: f(g, n["x"]), lambda t, f=tf: f(t["x"]))
    for shape in [(6, 10), (3, 5, 4, 3)]:
        x = randn(*shape, scale=3.0)
        case(f"softmax {list(shape)} dim 1", {"x": X(x)}, lambda g, n: L.ds_softmax(g, n["x"]),
             lambda t: F.softmax(t["x"], 1))
        case(f"log_softmax {list(shape)} dim 1", {"x": X(x)}, lambda g, n: L.ds_log_softmax(g, n["x"]),
             lambda t: F.log_softmax(t["x"], 1))


# ---- dropout -----------------------------------------------------------------

def test_dropout():
    x = randn(4, 5, 6)
    case("dropout 0.3 eval = identity", {"x": X(x)}, lambda g, n: L.ds_dropout(g, n["x"], 0.3),
         lambda t: t["x"] * 1, train=False)
    case("dropout 0 train = identity", {"x": X(x)}, lambda g, n: L.ds_dropout(g, n["x"], 0.0),
         lambda t: t["x"] * 1)
    for p in (0.3, 0.75):
        name = f"dropout {p} train [200,500]"
        g = ds.lib.ds_graph_new(5)
        try:
            xn = ds.check(L.ds_input(g, b"x", ds.shape(200, 500)))
            L.ds_node_set_requires_grad(xn, 1)
            out = ds.check(L.ds_dropout(g, xn, p))
            ds.ok(L.ds_graph_compile(g))
            x = uniform(0.5, 1.5, 200, 500) * rng.choice(np.float32([-1, 1]), (200, 500))
            ds.value(xn)[...] = x
            ds.ok(L.ds_graph_forward(g))
            y = ds.value(out).astype(np.float64)
            scaled = x.astype(np.float64) / (1 - p)
            # each output is either 0 or x/(1-p): compare with the nearer of the two
            nearest = np.where(np.abs(y) < np.abs(y - scaled), 0.0, scaled)
            check(f"{name}: y vs nearest of {{0, x/(1-p)}}", y, nearest)
            dout = randn(200, 500)
            L.ds_graph_zero_grad(g)
            ds.ok(L.ds_graph_backward(g, out, ds.fptr(dout)))
            check(f"{name}: dx = dout*y/x", ds.grad(xn), dout * (y / x))
            kept = float(np.mean(y != 0))
            report.check(f"{name}: kept fraction {kept:.4f} vs {1 - p}", abs(kept - (1 - p)), 0.01)
        except Exception as e:
            fail(name, e)
        finally:
            L.ds_graph_free(g)


# ---- batch norm --------------------------------------------------------------

def test_batchnorm():
    for shape in [(8, 4), (4, 3, 5, 6), (5, 3, 7, 7), (3, 2, 14, 14)]:  # planes with vector tails
        c = shape[1]
        for train in (True, False):
            spec = {"x": X(randn(*shape, scale=2.0) + 1.5), "gamma": P(uniform(0.5, 2, c)),
                    "beta": P(randn(c)), "rm": B(randn(c)), "rv": B(uniform(0.5, 2, c))}
            case(f"batchnorm {'train' if train else 'eval'} {list(shape)}", spec,
                 lambda g, n: L.ds_batchnorm(g, n["x"], n["gamma"], n["beta"], n["rm"], n["rv"], 0.1, 1e-5),
                 lambda t, tr=train: F.batch_norm(t["x"], t["rm"], t["rv"], t["gamma"], t["beta"],
                                                  training=tr, momentum=0.1, eps=1e-5),
                 train=train)
    for shape in [(3, 2, 5, 6), (2, 3, 7, 7), (2, 1, 45, 45)]:
        spec = {"x": X(randn(*shape, scale=3.0) + 2.0)}
        case(f"instancenorm {list(shape)}", spec, lambda g, n: L.ds_instancenorm(g, n["x"], 1e-5),
             lambda t: F.instance_norm(t["x"], eps=1e-5))
    # statistics in one pass about a shift: values far from 0 with a small spread
    spec = {"x": X(randn(6, 3, 7, 7) + 300.0), "gamma": P(uniform(0.5, 2, 3)), "beta": P(randn(3)),
            "rm": B(randn(3)), "rv": B(uniform(0.5, 2, 3))}
    case("batchnorm train, mean 300, sd 1", spec,
         lambda g, n: L.ds_batchnorm(g, n["x"], n["gamma"], n["beta"], n["rm"], n["rv"], 0.1, 1e-5),
         lambda t: F.batch_norm(t["x"], t["rm"], t["rv"], t["gamma"], t["beta"], training=True, momentum=0.1,
                                eps=1e-5))

    # a relu that is its producer's only reader is fused into it (the graph
    # compiler does this): conv, batch norm and dense followed by relu
    spec = {"x": X(randn(2, 3, 7, 6)), "w": P(randn(4, 3, 3, 3)), "b": P(randn(4))}
    case("fused conv2d + relu", spec,
         lambda g, n: L.ds_relu(g, L.ds_conv2d(g, n["x"], n["w"], n["b"], ds.conv_opt(pad=1))),
         lambda t: F.relu(F.conv2d(t["x"], t["w"], t["b"], padding=1)))
    spec16 = {"x": X(randn(2, 8, 7, 6)), "w": P(randn(16, 8, 3, 3)), "b": P(randn(16))}
    case("fused conv2d + relu, 16 channels (ocv)", spec16,
         lambda g, n: L.ds_relu(g, L.ds_conv2d(g, n["x"], n["w"], n["b"], ds.conv_opt(pad=1))),
         lambda t: F.relu(F.conv2d(t["x"], t["w"], t["b"], padding=1)))
    case("fused conv2d stride 2 + relu", spec,
         lambda g, n: L.ds_relu(g, L.ds_conv2d(g, n["x"], n["w"], n["b"], ds.conv_opt(pad=1, stride=2))),
         lambda t: F.relu(F.conv2d(t["x"], t["w"], t["b"], padding=1, stride=2)))
    spec = {"x": X(randn(4, 3, 5, 6)), "gamma": P(uniform(0.5, 2, 3)), "beta": P(randn(3)),
            "rm": B(randn(3)), "rv": B(uniform(0.5, 2, 3))}
    case("fused batchnorm + relu", spec,
         lambda g, n: L.ds_relu(g, L.ds_batchnorm(g, n["x"], n["gamma"], n["beta"], n["rm"], n["rv"], 0.1, 1e-5)),
         lambda t: F.relu(F.batch_norm(t["x"], t["rm"], t["rv"], t["gamma"], t["beta"], training=True,
                                       momentum=0.1, eps=1e-5)))
    spec = {"a": X(randn(2, 3, 4, 5)), "b": X(randn(2, 3, 4, 5))}
    case("fused add + relu (a residual block's end)", spec,
         lambda g, n: L.ds_relu(g, L.ds_add(g, n["a"], n["b"])), lambda t: F.relu(t["a"] + t["b"]))
    # a batch norm read only by a same-shape add is applied by the add
    # (src/ops/bn_add.h), either input, with and without the relu; a
    # shortcut that is a batch norm too (only one is fused)
    def bn(g, n, x, k=""):
        return L.ds_batchnorm(g, n[x], n["gamma" + k], n["beta" + k], n["rm" + k], n["rv" + k], 0.1, 1e-5)

    def tbn(t, x, k=""):
        return F.batch_norm(t[x], t["rm" + k], t["rv" + k], t["gamma" + k], t["beta" + k], training=True,
                            momentum=0.1, eps=1e-5)
    spec = {"x": X(randn(4, 3, 5, 6)), "s": X(randn(4, 3, 5, 6)), "gamma": P(uniform(0.5, 2, 3)),
            "beta": P(randn(3)), "rm": B(randn(3)), "rv": B(uniform(0.5, 2, 3))}
    spec2 = dict(spec, gamma2=P(uniform(0.5, 2, 3)), beta2=P(randn(3)), rm2=B(randn(3)), rv2=B(uniform(0.5, 2, 3)))
    case("fused batchnorm + add + relu", spec, lambda g, n: L.ds_relu(g, L.ds_add(g, bn(g, n, "x"), n["s"])),
         lambda t: F.relu(tbn(t, "x") + t["s"]))
    case("fused add(shortcut, batchnorm) + relu", spec,
         lambda g, n: L.ds_relu(g, L.ds_add(g, n["s"], bn(g, n, "x"))), lambda t: F.relu(t["s"] + tbn(t, "x")))
    case("fused batchnorm + add", spec, lambda g, n: L.ds_add(g, bn(g, n, "x"), n["s"]),
         lambda t: tbn(t, "x") + t["s"])
    case("fused batchnorm + add(batchnorm) + relu", spec2,
         lambda g, n: L.ds_relu(g, L.ds_add(g, bn(g, n, "x"), bn(g, n, "s", "2"))),
         lambda t: F.relu(tbn(t, "x") + tbn(t, "s", "2")))
    case("fused batchnorm + add + relu, shortcut read twice", spec,
         lambda g, n: L.ds_add(g, L.ds_relu(g, L.ds_add(g, bn(g, n, "x"), n["s"])), n["s"]),
         lambda t: F.relu(tbn(t, "x") + t["s"]) + t["s"])
    spec = {"a": X(randn(2, 3, 4, 5)), "b": X(randn(3, 1, 1))}
    case("fused mul (broadcast) + relu", spec,
         lambda g, n: L.ds_relu(g, L.ds_mul(g, n["a"], n["b"])), lambda t: F.relu(t["a"] * t["b"]))
    spec = {"x": X(randn(9, 20)), "w": P(randn(12, 20)), "b": P(randn(12))}
    case("fused linear + relu", spec, lambda g, n: L.ds_relu(g, L.ds_linear(g, n["x"], n["w"], n["b"])),
         lambda t: F.relu(F.linear(t["x"], t["w"], t["b"])))


# ---- shape ops ---------------------------------------------------------------

def test_shape():
    def concat(g, n):
        arr = (C.c_void_p * 3)(n["a"], n["b"], n["c"])
        return L.ds_concat(g, 3, arr)
    for rest in [(), (4, 5)]:
        case(f"concat dim 1 of 3 inputs [2,(3|1|2){''.join(f',{d}' for d in rest)}]",
             {"a": X(randn(2, 3, *rest)), "b": X(randn(2, 1, *rest)), "c": P(randn(2, 2, *rest))},
             concat, lambda t: torch.cat([t["a"], t["b"], t["c"]], 1))
    x = randn(2, 3, 4, 5)
    case("reshape [2,3,4,5] -> (0,-1,5)", {"x": X(x)}, lambda g, n: L.ds_reshape(g, n["x"], ds.shape(0, -1, 5)),
         lambda t: t["x"].reshape(2, -1, 5))
    case("reshape [2,3,4,5] -> (4,0,-1)", {"x": X(x)}, lambda g, n: L.ds_reshape(g, n["x"], ds.shape(4, 0, -1)),
         lambda t: t["x"].reshape(4, 3, -1))
    case("reshape [2,3,4,5] -> (-1,)", {"x": X(x)}, lambda g, n: L.ds_reshape(g, n["x"], ds.shape(-1)),
         lambda t: t["x"].reshape(-1))
    case("flatten [2,3,4,5]", {"x": X(x)}, lambda g, n: L.ds_flatten(g, n["x"]), lambda t: t["x"].flatten(1))


# ---- losses ----------------------------------------------------------------

def test_losses():
    n_, c = 9, 6
    labels = rng.integers(0, c, n_).astype(np.float32)
    weights = uniform(0.2, 3, c)
    for w in (None, weights):
        case(f"cross_entropy [{n_},{c}] {'class weights' if w is not None else 'unweighted'}",
             {"z": X(randn(n_, c, scale=2.0)), "y": Cn(labels)},
             lambda g, n, w=w: L.ds_softmax_cross_entropy(g, n["z"], n["y"], None if w is None else ds.fptr(w)),
             lambda t, w=w: F.cross_entropy(t["z"], t["y"].long(),
                                            weight=None if w is None else torch.tensor(w, dtype=REF)))
    case("bce_with_logits [5,7] (d logits, d targets)", {"z": X(randn(5, 7, scale=3.0)), "t": X(uniform(0, 1, 5, 7))},
         lambda g, n: L.ds_bce_with_logits(g, n["z"], n["t"]),
         lambda t: F.binary_cross_entropy_with_logits(t["z"], t["t"]))
    case("mse [4,3,5] (d pred, d target)", {"p": X(randn(4, 3, 5)), "t": X(randn(4, 3, 5))},
         lambda g, n: L.ds_mse(g, n["p"], n["t"]), lambda t: F.mse_loss(t["p"], t["t"]))
    # the total of several heads' losses, Σ w_k·loss_k
    w3 = np.array([1.0, 0.25, 3.0], np.float32)

    def wsum(g, n):
        parts = (ds.P * 3)(L.ds_mse(g, n["a"], n["t"]), L.ds_mse(g, n["b"], n["t"]), L.ds_mse(g, n["a"], n["b"]))
        return L.ds_weighted_sum(g, 3, parts, ds.fptr(w3))
    case("weighted_sum of 3 losses (weights 1, 0.25, 3)", {"a": X(randn(4, 3)), "b": X(randn(4, 3)), "t": X(randn(4, 3))},
         wsum, lambda t: 1.0 * F.mse_loss(t["a"], t["t"]) + 0.25 * F.mse_loss(t["b"], t["t"]) + 3.0 * F.mse_loss(t["a"], t["b"]))


def test_embedding():
    idx = np.array([2, 0, 2, 4, 1, 2], np.float32)  # repeats: their rows' gradients add up
    case("embedding [6] from a [5,3] table (d table)", {"i": Cn(idx), "w": P(randn(5, 3))},
         lambda g, n: L.ds_embedding(g, n["i"], n["w"]),
         lambda t: F.embedding(t["i"].long(), t["w"]))


if __name__ == "__main__":
    for test in [test_dense, test_arith, test_conv, test_pool, test_activations, test_dropout,
                 test_batchnorm, test_shape, test_losses, test_embedding]:
        test()
    print(f"max rel err {worst[0]:.2e} ({worst[1]})")
    report.finish()
