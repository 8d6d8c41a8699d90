"""GAN step parity (issue 15): ds_gan_step on a tiny generator/discriminator
pair against the same step in PyTorch (float64), from the same weights, the
same real batch and the same z. One step is a discriminator step (real
target 1, or 1 - label_smoothing; fake target 0; the generator frozen: its
output detached) and then a generator step on the same fake batch through
the updated discriminator (the discriminator frozen), as PyTorch's DCGAN
example. With SGD at lr 0.1 and no momentum each weight moves by -0.1 x its
gradient, so comparing the weights before and after checks both networks'
gradients; also the step's losses and D(x), D(G(z)) before and after the
discriminator's update, and the generator's batch-norm running statistics.
Two steps in a row per case (the second from the updated weights), cases:
the non-saturating loss, the minimax loss, one-sided label smoothing 0.1.

Assumed of ds_gan_step (include/deepsky.h): loss_d is the sum of the two
means BCE(D(x), real target) + BCE(D(G(z)), 0) (the DCGAN example's errD);
loss_g the generator's loss it minimises: BCE(D(G(z)), 1) (non-saturating)
or mean log(1 - D(G(z))) (minimax); the stats of a lone step are that
step's values; the generator runs forward once per step.

Fails when the library has no ds_gan_new."""
import ctypes as C
import sys

import numpy as np
import torch
import torch.nn.functional as F

import ds

torch.set_num_threads(2)
B, LATENT, LR = 4, 4, 0.1


class GanStats(C.Structure):
    _fields_ = [("loss_d", C.c_double), ("loss_g", C.c_double), ("d_real", C.c_double),
                ("d_fake", C.c_double), ("d_fake_after", C.c_double), ("samples", C.c_int),
                ("g_steps", C.c_int), ("d_steps", C.c_int), ("seconds", C.c_double)]


class ProgramHead(C.Structure):
    """The first member of ds_program (its graph); the rest is not read here."""
    _fields_ = [("g", C.c_void_p)]


P, FP = C.c_void_p, C.POINTER(C.c_float)
SIGS = {
    "ds_gan_model_parse": (P, [C.c_char_p, C.c_char_p]),
    "ds_gan_model_free": (None, [P]),
    "ds_gan_new": (P, [P, C.c_int, C.c_uint64]),
    "ds_gan_free": (None, [P]),
    "ds_gan_program": (C.POINTER(ProgramHead), [P, C.c_int]),
    "ds_gan_step": (C.c_int, [P, FP, FP, C.c_int, FP, FP, C.POINTER(GanStats)]),
    "ds_graph_num_params": (C.c_int, [P]),
    "ds_graph_param": (P, [P, C.c_int]),
    "ds_node_name": (C.c_char_p, [P]),
}


def bind():
    for name, (res, args) in SIGS.items():
        fn = getattr(ds.lib, name)
        fn.restype, fn.argtypes = res, args


MODEL = """
[gan]
latent = 4
loss = {loss}
d_steps = 1
{smoothing}
transform = linear

[train]
optimizer = sgd
lr = 0.1
batch = 4
epochs = 1
seed = 1

[generator]
input = 4

[dense]
name = g_fc
units = 18
batch_normalize = 1
activation = relu

[reshape]
shape = 2,3,3

[deconv]
name = g_out
filters = 1
size = 3
stride = 1
pad = 1
activation = tanh

[discriminator]
input = 1,3,3

[conv]
name = d_conv
filters = 2
size = 3
pad = 1
activation = leaky_relu
alpha = 0.2

[flatten]

[dense]
name = d_out
units = 1
"""

# the two networks' parameters and buffers (name -> shape), PyTorch's layouts
G_PARAMS = {"g_fc.weight": (18, 4), "g_fc.bn.weight": (18,), "g_fc.bn.bias": (18,),
            "g_out.weight": (2, 1, 3, 3), "g_out.bias": (1,)}
G_BUFFERS = {"g_fc.bn.running_mean": (18,), "g_fc.bn.running_var": (18,)}
D_PARAMS = {"d_conv.weight": (2, 1, 3, 3), "d_conv.bias": (2,), "d_out.weight": (1, 18), "d_out.bias": (1,)}


def init_weights(rng):
    w = {}
    for k, s in {**G_PARAMS, **D_PARAMS}.items():
        w[k] = rng.uniform(-0.6, 0.6, s).astype(np.float32)
    w["g_fc.bn.weight"] = rng.uniform(0.5, 1.5, 18).astype(np.float32)
    w["g_fc.bn.running_mean"] = rng.uniform(-0.2, 0.2, 18).astype(np.float32)
    w["g_fc.bn.running_var"] = rng.uniform(0.5, 2.0, 18).astype(np.float32)
    return w


def gen(t, z):
    h = z @ t["g_fc.weight"].T
    h = F.batch_norm(h, t["g_fc.bn.running_mean"], t["g_fc.bn.running_var"], t["g_fc.bn.weight"],
                     t["g_fc.bn.bias"], training=True, momentum=0.1, eps=1e-5)
    h = F.relu(h).view(-1, 2, 3, 3)
    return torch.tanh(F.conv_transpose2d(h, t["g_out.weight"], t["g_out.bias"], stride=1, padding=1))


def disc(t, x):
    h = F.leaky_relu(F.conv2d(x.view(-1, 1, 3, 3), t["d_conv.weight"], t["d_conv.bias"], padding=1), 0.2)
    return F.linear(h.flatten(1), t["d_out.weight"], t["d_out.bias"]).view(-1)


def torch_step(t, x, z, loss, smoothing):
    """One iteration in float64, updating t in place; the step's stats."""
    x, z = torch.from_numpy(x).double(), torch.from_numpy(z).double()
    gp, dp = [t[k] for k in G_PARAMS], [t[k] for k in D_PARAMS]
    for p in gp + dp:
        p.grad = None
    fake = gen(t, z)
    out_real, out_fake = disc(t, x), disc(t, fake.detach())
    err_d = (F.binary_cross_entropy_with_logits(out_real, torch.full((B,), 1.0 - smoothing, dtype=torch.float64))
             + F.binary_cross_entropy_with_logits(out_fake, torch.zeros(B, dtype=torch.float64)))
    err_d.backward()
    with torch.no_grad():
        for p in dp:
            p -= LR * p.grad
    for p in gp + dp:
        p.grad = None
    out_g = disc(t, fake)
    if loss == "minimax":  # log(1 - D(G(z))), minimised
        err_g = -F.binary_cross_entropy_with_logits(out_g, torch.zeros(B, dtype=torch.float64))
    else:  # -log D(G(z))
        err_g = F.binary_cross_entropy_with_logits(out_g, torch.ones(B, dtype=torch.float64))
    err_g.backward()
    with torch.no_grad():
        for p in gp:
            p -= LR * p.grad
    sig = lambda o: torch.sigmoid(o).mean().item()
    return dict(loss_d=err_d.item(), loss_g=err_g.item(), d_real=sig(out_real), d_fake=sig(out_fake),
                d_fake_after=sig(out_g))


def graph_nodes(prog):
    """name -> node of a program's parameters and buffers."""
    g = prog.contents.g
    out = {}
    for i in range(ds.lib.ds_graph_num_params(g)):
        n = ds.lib.ds_graph_param(g, i)
        out[ds.lib.ds_node_name(n).decode()] = n
    return out


def run_case(report, name, loss, smoothing, seed):
    text = MODEL.format(loss=loss, smoothing=f"label_smoothing = {smoothing}" if smoothing else "")
    m = ds.lib.ds_gan_model_parse(text.encode(), f"{name}.cfg".encode())
    if not m:
        report.check(f"{name}: ds_gan_model_parse: {ds.error()}", float("inf"), 0)
        return
    gan = ds.lib.ds_gan_new(m, B, 7)
    if not gan:
        report.check(f"{name}: ds_gan_new: {ds.error()}", float("inf"), 0)
        ds.lib.ds_gan_model_free(m)
        return
    nodes = {**graph_nodes(ds.lib.ds_gan_program(gan, 0)), **graph_nodes(ds.lib.ds_gan_program(gan, 1))}
    want = {**G_PARAMS, **G_BUFFERS, **D_PARAMS}
    if set(nodes) != set(want):
        report.check(f"{name}: parameter names {sorted(nodes)} (want {sorted(want)})", float("inf"), 0)
        return
    rng = np.random.default_rng(seed)
    w0 = init_weights(rng)
    for k, v in w0.items():
        if ds.node_shape(nodes[k]) != v.shape:
            report.check(f"{name}: {k} shape {ds.node_shape(nodes[k])} (want {v.shape})", float("inf"), 0)
            return
        ds.value(nodes[k])[...] = v
    t = {k: torch.from_numpy(v.astype(np.float64)).requires_grad_(k in G_PARAMS or k in D_PARAMS)
         for k, v in w0.items()}
    worst = 0.0
    for step in (1, 2):
        x = rng.uniform(-1, 1, (B, 9)).astype(np.float32)
        z = rng.standard_normal((B, LATENT)).astype(np.float32)
        before = {k: ds.value(n).astype(np.float64) for k, n in nodes.items()}
        ref_before = {k: v.detach().numpy().copy() for k, v in t.items()}
        st = GanStats()
        rc = ds.lib.ds_gan_step(gan, ds.fptr(x), None, B, ds.fptr(z), None, C.byref(st))
        if rc != 0:
            report.check(f"{name} step {step}: ds_gan_step: {ds.error()}", float("inf"), 0)
            break
        ref = torch_step(t, x, z, loss, smoothing)
        for k in ref:
            err = abs(getattr(st, k) - ref[k]) / max(abs(ref[k]), 1e-6)
            report.check(f"{name} step {step}: {k} {getattr(st, k):.6f} (torch {ref[k]:.6f})", err, 1e-5)
            worst = max(worst, err)
        for k in want:
            got, exp = ds.value(nodes[k]).astype(np.float64), t[k].detach().numpy()
            if k in G_BUFFERS:
                err = ds.rel_err(got, exp)
                hint = "" if err <= 1e-5 else " (does the generator run forward twice a step?)"
                report.check(f"{name} step {step}: {k} after the step{hint}", err, 1e-5)
                continue
            net = "discriminator (its step)" if k in D_PARAMS else "generator (through the updated D)"
            err = ds.rel_err((before[k] - got) / LR, (ref_before[k] - exp) / LR)
            report.check(f"{name} step {step}: {net} gradient {k}", err, 1e-4)
            worst = max(worst, err, ds.rel_err(got, exp))
            report.check(f"{name} step {step}: {k} after the step", ds.rel_err(got, exp), 1e-5)
        if st.g_steps not in (0, 1) or st.d_steps not in (0, 1) or st.samples not in (0, B):
            report.check(f"{name} step {step}: stats counters samples {st.samples} g_steps {st.g_steps} "
                         f"d_steps {st.d_steps} (want {B}, 1, 1)", float("inf"), 0)
    print(f"     {name}: max rel err {worst:.2e}")
    ds.lib.ds_gan_free(gan)
    ds.lib.ds_gan_model_free(m)


def main():
    if not hasattr(ds.lib, "ds_gan_new"):
        print("FAIL the library has no ds_gan_new (GAN training, issue 15)")
        sys.exit(1)
    bind()
    report = ds.Report("gan")
    run_case(report, "nonsaturating", "nonsaturating", 0.0, 1)
    run_case(report, "minimax", "minimax", 0.0, 2)
    run_case(report, "label smoothing 0.1", "nonsaturating", 0.1, 3)
    report.finish()


if __name__ == "__main__":
    main()
