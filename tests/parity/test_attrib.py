"""Attribution and attack parity (issue 14, point 5): a small CNN (conv with
batch norm, relu, max pooling, dense, dropout) trained by `deepsky train` on
a synthetic three-class image set, its checkpoint loaded into PyTorch (the
safetensors file read with NumPy, the normalisation from its "norm"
metadata put in front), and in eval mode:

  (a) saliency: deepsky explain's saliency.npy and ds_input_grad (ctypes)
      against autograd's d logit[class] / d x on the raw input;
  (b) integrated gradients (zero baseline, the midpoint rule of
      src/train/explain.c) against the same sum in PyTorch;
  (c) FGSM: `deepsky attack`'s adversarial accuracy at several eps against
      a PyTorch FGSM (same eps in raw units, same clipping), within 0.5
      points, and the adversarial images themselves;
  (d) PGD without random start (deterministic) within 0.5 points, and PGD
      with random starts at fixed seeds (deepsky's and torch's own random
      numbers: the mean over seeds) within 0.5 points;
  (e) PGD at eps 0 is exactly the clean accuracy, which is PyTorch's.

Also ds_input_grad of the loss and ds_attacker_run through ctypes against
autograd and the PyTorch FGSM on the same rows, also at a batch below the
compiled one; the CLI runs use the default batch (256), so the 2000 test
images end in a smaller batch too.
"""
import csv
import ctypes as C
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import ds

torch.set_num_threads(2)
HERE = os.path.dirname(os.path.abspath(__file__))
CLI = os.environ.get("DS_CLI") or os.path.join(HERE, "..", "..", "build", "deepsky")
H = W = 16
CLASSES = 3
N_TRAIN, N_TEST, N_MAP = 900, 2000, 48
POINTS = 0.5  # accuracy tolerance, in percentage points

MODEL = """
[net]
input = 1,16,16
classes = 3
normalize = standard

[conv]
name = conv1
filters = 8
size = 3
pad = 1
batch_normalize = 1
activation = relu

[maxpool]
size = 2

[conv]
name = conv2
filters = 12
size = 3
pad = 1
activation = relu

[maxpool]
size = 2

[dense]
name = fc1
units = 32
activation = relu

[dropout]
p = 0.3

[dense]
name = fc2
units = 3

[train]
optimizer = adam
lr = 0.005
batch = 32
epochs = 2
seed = 3
"""


def make_data(n, seed):
    """Three kinds of 16x16 images in [0, 1]: a horizontal bar, a vertical
    bar, a square blob, at random places, dimmed at random, in noise (a
    gradient that is not trivially zero anywhere, classes not perfectly
    separable, so the attacks have work to do)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.45, (n, 1, H, W)).astype(np.float32)
    y = rng.integers(0, CLASSES, n)
    for i in range(n):
        a, b = rng.integers(2, 13, 2)
        v = rng.uniform(0.35, 0.6)
        if y[i] == 0:
            x[i, 0, a, 2:14] += v
        elif y[i] == 1:
            x[i, 0, 2:14, b] += v
        else:
            x[i, 0, a - 2:a + 1, b - 2:b + 1] += v
    return np.clip(x, 0, 1).astype(np.float32), y.astype(np.int64)


def sh(*args):
    r = subprocess.run([CLI, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"deepsky {' '.join(args)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def load_safetensors(path):
    """{name: float32 array} and the metadata: an 8-byte little-endian header
    length, a JSON header, the raw data."""
    with open(path, "rb") as f:
        blob = f.read()
    n = int.from_bytes(blob[:8], "little")
    head = json.loads(blob[8:8 + n])
    meta = head.pop("__metadata__", {})
    out = {}
    for k, v in head.items():
        assert v["dtype"] == "F32", (k, v["dtype"])
        lo, hi = v["data_offsets"]
        out[k] = np.frombuffer(blob[8 + n + lo:8 + n + hi], np.float32).reshape(v["shape"]).copy()
    return out, meta


class Net(nn.Module):
    """MODEL in PyTorch, with the checkpoint's normalisation in front
    (computed in double, as ds_feed_normalized)."""

    def __init__(self, sd, norm):
        super().__init__()
        self.mean = torch.tensor(norm["mean"], dtype=torch.float64).view(1, -1, 1, 1)
        self.std = torch.tensor(norm["std"], dtype=torch.float64).view(1, -1, 1, 1)
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8, eps=1e-5)
        self.conv2 = nn.Conv2d(8, 12, 3, padding=1)
        self.fc1 = nn.Linear(12 * 4 * 4, 32)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(32, CLASSES)
        t = lambda k: torch.from_numpy(sd[k])
        with torch.no_grad():
            self.conv1.weight.copy_(t("conv1.weight"))
            self.bn1.weight.copy_(t("conv1.bn.weight"))
            self.bn1.bias.copy_(t("conv1.bn.bias"))
            self.bn1.running_mean.copy_(t("conv1.bn.running_mean"))
            self.bn1.running_var.copy_(t("conv1.bn.running_var"))
            for name in ("conv2", "fc1", "fc2"):  # dense weights [units, K], as nn.Linear
                getattr(self, name).weight.copy_(t(name + ".weight"))
                getattr(self, name).bias.copy_(t(name + ".bias"))

    def forward(self, x):
        x = ((x.double() - self.mean) / self.std).float()
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(self.drop(F.relu(self.fc1(x.flatten(1)))))


def saliency(net, x, cls):
    xt = torch.from_numpy(x).requires_grad_(True)
    out = net(xt)
    out.gather(1, torch.from_numpy(cls).view(-1, 1)).sum().backward()
    return xt.grad.numpy()


def integrated_gradients(net, x, cls, steps):
    """Zero baseline, the midpoint rule: (x - x') * mean of the gradients at
    x' + (k + 1/2)/steps (x - x'), k = 0..steps-1 (path points in double)."""
    acc = np.zeros(x.shape, np.float64)
    for k in range(steps):
        a = (k + 0.5) / steps
        acc += saliency(net, (a * x.astype(np.float64)).astype(np.float32), cls)
    return (x * acc / steps).astype(np.float32)


def accuracy(net, x, y):
    with torch.no_grad():
        return float((net(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def loss_grad(net, x, y):
    xt = x.clone().requires_grad_(True)
    F.cross_entropy(net(xt), y, reduction="sum").backward()
    return xt.grad


def fgsm(net, x, y, eps):
    x0, yt = torch.from_numpy(x), torch.from_numpy(y)
    return (x0 + eps * loss_grad(net, x0, yt).sign()).clamp(0, 1).numpy()


def pgd(net, x, y, eps, steps, step, random_start, gen=None):
    """Madry et al.'s L-inf PGD as src/train/attack.c: optional uniform start
    in the ball, then steps of sign(gradient), each projected back to the
    ball and to [0, 1]."""
    x0, yt = torch.from_numpy(x), torch.from_numpy(y)
    xa = x0.clone()
    if random_start:
        xa = (x0 + eps * (2 * torch.rand(x0.shape, generator=gen) - 1)).clamp(0, 1)
    for _ in range(steps):
        xa = xa + step * loss_grad(net, xa, yt).sign()
        xa = (x0 + (xa - x0).clamp(-eps, eps)).clamp(0, 1)
    return xa.numpy()


def attack_cli(ck, data, method, eps, extra=()):
    out = tempfile.mkdtemp(dir=T)
    sh("attack", ck, "--data", data, "--method", method, "--eps", ",".join(f"{e:g}" for e in eps),
       "--clip", "0,1", "--out", out, *extra)
    rows = {}
    with open(os.path.join(out, "attack.csv")) as f:  # then each class's recall, not compared here
        r = csv.DictReader(f)
        assert r.fieldnames[:4] == ["eps", "clean_accuracy", "adversarial_accuracy", "n"], r.fieldnames
        for row in r:
            rows[float(row["eps"])] = (float(row["clean_accuracy"]), float(row["adversarial_accuracy"]), int(row["n"]))
    return rows, out


# ---- the library through ctypes: ds_input_grad, ds_attacker_run ----

class Norm(C.Structure):
    _fields_ = [("channels", C.c_int), ("mean", ds.FP), ("std", ds.FP)]


class AttackCfg(C.Structure):
    _fields_ = [("method", C.c_int), ("l2", C.c_int), ("eps", C.c_float), ("steps", C.c_int),
                ("step_size", C.c_float), ("random_start", C.c_int), ("restarts", C.c_int),
                ("clip", C.c_int), ("lo", C.c_float), ("hi", C.c_float)]


class Rng(C.Structure):
    _fields_ = [("s", C.c_uint64 * 4)]


P = C.c_void_p
for name, res, args in [
        ("ds_checkpoint_open", P, [C.c_char_p]), ("ds_checkpoint_close", None, [P]),
        ("ds_checkpoint_model_text", C.c_char_p, [P]), ("ds_checkpoint_restore", C.c_int, [P, P, P]),
        ("ds_checkpoint_norm", C.c_int, [P, C.POINTER(Norm)]), ("ds_norm_free", None, [C.POINTER(Norm)]),
        ("ds_model_parse", P, [C.c_char_p, C.c_char_p]), ("ds_model_free", None, [P]),
        ("ds_model_build_program", C.c_int, [P, P, C.c_int, P, P]),
        ("ds_graph_set_param_grads", C.c_int, [P, C.c_int]),
        ("ds_input_grad", C.c_int, [P, C.POINTER(Norm), ds.FP, C.c_int, ds.FP, C.c_int, ds.FP]),
        ("ds_attacker_new", P, [P, C.POINTER(Norm), C.POINTER(AttackCfg)]), ("ds_attacker_free", None, [P]),
        ("ds_attacker_run", C.c_int, [P, ds.FP, ds.FP, C.c_int, C.POINTER(Rng), ds.FP, C.POINTER(C.c_int)]),
        ("ds_rng_seed", None, [C.POINTER(Rng), C.c_uint64])]:
    fn = getattr(ds.lib, name)
    fn.restype, fn.argtypes = res, args
GRAD_SCORE, GRAD_LOSS = 0, 1
ATTACK_FGSM, ATTACK_PGD = 0, 1


class Probe:
    """A checkpoint's program built for input gradients, as `deepsky
    attack` builds it: the input requires a gradient, no parameter does."""

    def __init__(self, path, batch):
        L = ds.lib
        self.ck = L.ds_checkpoint_open(path.encode())
        if not self.ck:
            raise RuntimeError(ds.error())
        self.m = L.ds_model_parse(L.ds_checkpoint_model_text(self.ck), path.encode())
        self.g = L.ds_graph_new(1)
        self.prog = C.create_string_buffer(1 << 16)  # a ds_program, opaque here
        ds.ok(L.ds_model_build_program(self.m, self.g, batch, None, self.prog))
        L.ds_node_set_requires_grad(ds.check(L.ds_graph_find(self.g, b"x")), 1)
        ds.ok(L.ds_graph_compile(self.g))
        ds.ok(L.ds_graph_set_param_grads(self.g, 0))
        ds.ok(L.ds_checkpoint_restore(self.ck, self.g, None))
        self.norm = Norm()
        ds.ok(L.ds_checkpoint_norm(self.ck, C.byref(self.norm)))
        L.ds_graph_set_training(self.g, 0)

    def input_grad(self, x, cls, of):
        x, c = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(cls, np.float32)
        g = np.empty_like(x)
        ds.ok(ds.lib.ds_input_grad(self.prog, C.byref(self.norm), ds.fptr(x), len(x), ds.fptr(c), of, ds.fptr(g)))
        return g

    def attack(self, x, y, cfg, seed=1):
        a = ds.lib.ds_attacker_new(self.prog, C.byref(self.norm), C.byref(cfg))
        if not a:
            raise RuntimeError(ds.error())
        x, yf = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.float32)
        xa, wrong = np.empty_like(x), (C.c_int * len(x))()
        rng = Rng()
        ds.lib.ds_rng_seed(C.byref(rng), seed)
        rc = ds.lib.ds_attacker_run(a, ds.fptr(x), ds.fptr(yf), len(x), C.byref(rng), ds.fptr(xa), wrong)
        ds.lib.ds_attacker_free(a)
        ds.ok(rc)
        return xa, np.array(wrong[:], bool)

    def close(self):
        ds.lib.ds_norm_free(C.byref(self.norm))
        ds.lib.ds_graph_free(self.g)
        ds.lib.ds_model_free(self.m)
        ds.lib.ds_checkpoint_close(self.ck)


def points(rep, what, a, b, tol=POINTS):
    d = 100 * abs(a - b)
    good = d <= tol
    rep.passed += good
    rep.failed += not good
    print(f"{'ok  ' if good else 'FAIL'} {what}: deepsky {100 * a:.2f} %, PyTorch {100 * b:.2f} % "
          f"(|diff| {d:.2f} points, tol {tol:g})")


def exact(rep, what, good, detail=""):
    rep.passed += bool(good)
    rep.failed += not good
    print(f"{'ok  ' if good else 'FAIL'} {what}{': ' + detail if detail else ''}")


def main():
    rep = ds.Report("attrib parity")
    xtr, ytr = make_data(N_TRAIN, 1)
    xte, yte = make_data(N_TEST, 2)
    for name, arr in (("xtr", xtr), ("ytr", ytr), ("xte", xte), ("yte", yte), ("xmap", xte[:N_MAP]),
                      ("ymap", yte[:N_MAP])):
        np.save(os.path.join(T, name + ".npy"), arr)
    cfg = os.path.join(T, "cnn.cfg")
    with open(cfg, "w") as f:
        f.write(MODEL)
    sh("train", cfg, "--data", f"npy:{T}/xtr.npy,{T}/ytr.npy", "--out", f"{T}/run", "--quiet")
    ck = f"{T}/run/last.safetensors"
    sd, meta = load_safetensors(ck)
    norm = json.loads(meta["norm"])
    net = Net(sd, norm).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    test = f"npy:{T}/xte.npy,{T}/yte.npy"
    xm, ym = xte[:N_MAP], yte[:N_MAP]

    # clean accuracy and (e): PGD at eps 0 is the clean accuracy exactly
    clean_t = accuracy(net, xte, yte)
    rows, _ = attack_cli(ck, test, "pgd", [0.0], ["--steps", "5"])
    clean_d, adv0, n = rows[0.0]
    exact(rep, "attack --eps 0 (PGD): adversarial accuracy == clean accuracy", adv0 == clean_d,
          f"{adv0:.6f} vs {clean_d:.6f}, n {n}")
    exact(rep, "clean accuracy: deepsky == PyTorch on the same checkpoint", abs(clean_d - clean_t) < 0.5 / N_TEST,
          f"{clean_d:.6f} vs {clean_t:.6f}")
    print(f"     (the CNN's clean test accuracy: {clean_t:.4f})")

    # (a), (b): the maps, through the library and through `deepsky explain`
    probe = Probe(ck, N_MAP)
    sal_t = saliency(net, xm, ym)
    rep.check("ds_input_grad(score) vs autograd d logit[y]/dx (raw input, eval mode)",
              ds.rel_err(probe.input_grad(xm, ym, GRAD_SCORE), sal_t), 1e-4)
    gl = loss_grad(net, torch.from_numpy(xm), torch.from_numpy(ym)).numpy()
    rep.check("ds_input_grad(loss) vs autograd d CE_row/dx", ds.rel_err(probe.input_grad(xm, ym, GRAD_LOSS), gl), 1e-4)
    # a batch below the compiled one (the last batch of a data set): the
    # sample size must come from the current batch, not the compiled one
    wide = Probe(ck, N_MAP + 16)
    rep.check(f"ds_input_grad(score), {N_MAP} rows on a graph compiled for {N_MAP + 16}",
              ds.rel_err(wide.input_grad(xm, ym, GRAD_SCORE), sal_t), 1e-4)
    xa_w, _ = wide.attack(xm[:5], ym[:5], AttackCfg(method=ATTACK_FGSM, eps=0.05, clip=1, lo=0, hi=1))
    exact(rep, "an attacker made after a smaller batch: FGSM on 5 rows is PyTorch's",
          np.mean(np.abs(xa_w - fgsm(net, xm[:5], ym[:5], 0.05)) > 1e-6) < 1e-3)
    wide.close()
    ig_t = integrated_gradients(net, xm, ym, 64)
    out = f"{T}/explain"
    sh("explain", ck, "--data", f"npy:{T}/xmap.npy,{T}/ymap.npy", "--method", "saliency,integrated-gradients",
       "--class", "label", "--steps", "64", "--baseline", "zero", "--batch", "20", "--out", out)  # 48 = 20 + 20 + 8
    cls = np.load(os.path.join(out, "classes.npy")).astype(np.int64).ravel()
    exact(rep, "explain --class label: classes.npy holds the labels", np.array_equal(cls, ym))
    sal_d = np.load(os.path.join(out, "saliency.npy"))
    ig_d = np.load(os.path.join(out, "integrated-gradients.npy"))
    exact(rep, "explain's arrays are [n, C, H, W] float32", sal_d.shape == xm.shape == ig_d.shape and
          sal_d.dtype == np.float32, f"{sal_d.shape} {sal_d.dtype}")
    rep.check("explain saliency.npy vs autograd (element-wise, relative to the max)", ds.rel_err(sal_d, sal_t),
              1e-4)
    # IG sums the gradient at 64 path points of every image: 3,072 forward
    # passes, where a ReLU input or a max-pool pair within float rounding of
    # a tie is expected a few times, and one flipped decision moves that
    # image's IG by ~1/64 of a gradient (~1e-3 of the max). So: each image
    # within 1e-4 but at most two, and those within 1e-2 (a broken batch or
    # path would miss on many images, as saliency at the image itself would)
    per = np.abs(ig_d - ig_t).reshape(N_MAP, -1).max(1) / max(np.abs(ig_t).max(), 1e-30)
    off = np.flatnonzero(per > 1e-4)
    exact(rep, "explain integrated-gradients.npy (64 steps, zero baseline) vs PyTorch, per image",
          len(off) <= 2 and (per.max() <= 1e-2), f"max rel err {per.max():.2e}; images over 1e-4 (a decision "
          f"flipped at a near-tie, at most 2 allowed, each <= 1e-2): {list(off)} {[f'{per[i]:.1e}' for i in off]}; "
          f"median {np.median(per):.1e}")
    # completeness, the same on both sides: sum of IG = F(x) - F(0)
    with torch.no_grad():
        f = lambda v: net(torch.from_numpy(v)).gather(1, torch.from_numpy(ym).view(-1, 1)).ravel().numpy()
        gap = f(xm) - f(np.zeros_like(xm))
    print(f"     (IG completeness, PyTorch's own: max |sum - (F(x) - F(0))| / max |F(x) - F(0)| = "
          f"{np.max(np.abs(ig_t.reshape(N_MAP, -1).sum(1) - gap)) / np.max(np.abs(gap)):.2e})")

    # (c): FGSM, library and CLI
    cfg_f = AttackCfg(method=ATTACK_FGSM, eps=0.05, clip=1, lo=0, hi=1)
    xa_d, wrong = probe.attack(xm, ym, cfg_f)
    xa_t = fgsm(net, xm, ym, 0.05)
    diff = np.abs(xa_d - xa_t)
    exact(rep, "ds_attacker_run FGSM eps 0.05: the adversarial images are PyTorch's",
          np.mean(diff > 1e-6) < 1e-3 and diff.max() <= 2 * 0.05 + 1e-6,
          f"{np.mean(diff > 1e-6):.1e} of the pixels differ")
    exact(rep, "ds_attacker_run FGSM: its verdicts are PyTorch's argmax on its images",
          np.array_equal(wrong, net(torch.from_numpy(xa_d)).argmax(1).numpy() != ym))
    probe.close()

    eps = [0.02, 0.05, 0.1]
    rows, out = attack_cli(ck, test, "fgsm", eps)
    for e in eps:
        points(rep, f"attack --method fgsm --eps {e:g}: adversarial accuracy", rows[e][1],
               accuracy(net, fgsm(net, xte, yte, e), yte))
    adv = np.load(os.path.join(out, "adversarial_eps0.05.npy"))
    ref = fgsm(net, xte, yte, 0.05)
    exact(rep, "attack's adversarial_eps0.05.npy is PyTorch's FGSM image set",
          adv.shape == xte.shape and np.mean(np.abs(adv - ref) > 1e-6) < 1e-3,
          f"{np.mean(np.abs(adv - ref) > 1e-6):.1e} of the pixels differ")

    # (d): PGD, deterministic (no random start), then random starts at fixed seeds
    steps = 10
    rows, _ = attack_cli(ck, test, "pgd", eps, ["--steps", str(steps), "--random-start", "0"])
    for e in eps:
        points(rep, f"attack --method pgd --eps {e:g} --steps {steps} --random-start 0", rows[e][1],
               accuracy(net, pgd(net, xte, yte, e, steps, 2.5 * e / steps, False), yte))
    e, seeds = 0.05, (1, 2, 3)
    ds_acc = [attack_cli(ck, test, "pgd", [e], ["--steps", str(steps), "--random-start", "1", "--seed", str(s)])[0][e][1]
              for s in seeds]
    th_acc = [accuracy(net, pgd(net, xte, yte, e, steps, 2.5 * e / steps, True, torch.Generator().manual_seed(s)), yte)
              for s in seeds]
    print(f"     (PGD random start, eps {e:g}, per seed: deepsky {ds_acc}, PyTorch {th_acc})")
    points(rep, f"attack --method pgd --eps {e:g} --random-start 1, mean over seeds {seeds}", np.mean(ds_acc),
           np.mean(th_acc))
    rep.finish()


if __name__ == "__main__":
    T = tempfile.mkdtemp(prefix="ds_attrib_")
    try:
        main()
    finally:
        shutil.rmtree(T, ignore_errors=True)
