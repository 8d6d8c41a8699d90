"""Attribution parity: `deepsky explain`'s saliency, integrated gradients
(midpoint rule), Grad-CAM, guided backprop and deconvnet maps against
PyTorch autograd on the same checkpoint (its weights read from the
safetensors file, its normalisation from the metadata), element-wise.
The model has a batch norm and a dropout, so eval mode is checked too.
The deepsky binary is the one beside $DS_LIB (build/deepsky)."""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(2)
LIB = os.environ.get("DS_LIB") or os.path.join(os.path.dirname(__file__), "..", "..", "build", "libdeepsky.so")
DS = os.path.join(os.path.dirname(os.path.abspath(LIB)), "deepsky")
TOL = 1e-4  # max |a - b| / max |b|, float32 sums in another order

MODEL = """[net]
input = 1,12,12
classes = 3
[conv]
name = conv1
filters = 4
size = 3
pad = 1
activation = relu
[batchnorm]
name = bn1
[maxpool]
size = 2
[conv]
name = conv2
filters = 6
size = 3
pad = 1
activation = relu
[dropout]
p = 0.5
[flatten]
[dense]
name = fc
units = 3
[train]
epochs = 2
batch = 16
lr = 0.003
"""


def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    w = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        w[k] = torch.tensor(np.frombuffer(b[8 + n + s:8 + n + e], dtype=np.float32).reshape(v["shape"]).copy())
    return w, json.loads(h["__metadata__"]["norm"])


class Relu(torch.autograd.Function):
    """relu with the backward rule of guided backprop or the deconvnet"""
    rule = "standard"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if Relu.rule == "guided":
            return g * (x > 0) * (g > 0)
        if Relu.rule == "deconvnet":
            return g * (g > 0)
        return g * (x > 0)


def net(w, norm, x, keep=None):
    z = (x - norm["mean"][0]) / norm["std"][0]
    a = Relu.apply(F.conv2d(z, w["conv1.weight"], w["conv1.bias"], padding=1))
    a = F.batch_norm(a, w["bn1.running_mean"], w["bn1.running_var"], w["bn1.weight"], w["bn1.bias"], False, 0.1, 1e-5)
    a = F.max_pool2d(a, 2)
    A = Relu.apply(F.conv2d(a, w["conv2.weight"], w["conv2.bias"], padding=1))
    if keep is not None:
        A.retain_grad()
        keep.append(A)
    return A.flatten(1) @ w["fc.weight"].T + w["fc.bias"]


def grad(w, norm, x, cls, rule="standard"):
    Relu.rule = rule
    x = x.clone().requires_grad_()
    net(w, norm, x).gather(1, cls[:, None]).sum().backward()
    Relu.rule = "standard"
    return x.grad


def compare(what, got, want, failures):
    err = float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))
    ok = err < TOL and np.abs(want).max() > 0
    print(f"{'ok  ' if ok else 'FAIL'} {what}: max |deepsky - torch| / max |torch| = {err:.2e} (scale {np.abs(want).max():.3g})")
    if not ok:
        failures.append(what)


def main():
    if not os.path.exists(DS):
        print(f"skip: no deepsky binary at {DS}")
        return 0
    failures = []
    with tempfile.TemporaryDirectory() as t:
        rng = np.random.default_rng(5)
        n = 96
        y = np.arange(n) % 3
        x = rng.normal(0.3, 0.1, (n, 1, 12, 12)).astype(np.float32)
        for i, c in enumerate(y):
            o = [1, 4, 7][c]
            x[i, 0, o:o + 4, o:o + 4] += 0.5
        np.save(f"{t}/x.npy", x)
        np.save(f"{t}/y.npy", y.astype(np.int64))
        open(f"{t}/m.cfg", "w").write(MODEL)
        data = f"npy:{t}/x.npy,{t}/y.npy"
        run = lambda *a: subprocess.run([DS, *a], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        run("train", f"{t}/m.cfg", "--data", data, "--out", f"{t}/m", "--quiet")
        ck = f"{t}/m/last.safetensors"
        k, steps = 20, 32
        run("explain", ck, "--data", data, "--max", str(k), "--out", f"{t}/e", "--steps", str(steps), "--batch", "16",
            "--method", "saliency,integrated-gradients,gradcam,guided-backprop,deconvnet")
        w, norm = load(ck)
        xs = torch.tensor(x[:k])
        cls = torch.tensor(np.load(f"{t}/e/classes.npy")).long()
        with torch.no_grad():
            pred = net(w, norm, xs).argmax(1)
        if not (pred == cls).all():
            failures.append("the predicted classes")
            print("FAIL the predicted classes differ")
        compare("saliency", np.load(f"{t}/e/saliency.npy"), grad(w, norm, xs, cls).numpy(), failures)
        total = torch.zeros_like(xs)
        for s in range(steps):
            total += grad(w, norm, (s + 0.5) / steps * xs, cls)
        compare("integrated-gradients", np.load(f"{t}/e/integrated-gradients.npy"), (xs * total / steps).numpy(),
                failures)
        compare("guided-backprop", np.load(f"{t}/e/guided-backprop.npy"), grad(w, norm, xs, cls, "guided").numpy(),
                failures)
        compare("deconvnet", np.load(f"{t}/e/deconvnet.npy"), grad(w, norm, xs, cls, "deconvnet").numpy(), failures)
        keep = []
        xg = xs.clone().requires_grad_()
        net(w, norm, xg, keep).gather(1, cls[:, None]).sum().backward()
        A = keep[0]
        cam = F.relu((A.grad.mean((2, 3), keepdim=True) * A).sum(1, keepdim=True))
        cam = F.interpolate(cam, size=(12, 12), mode="bilinear", align_corners=False)[:, 0].detach().numpy()
        compare("gradcam (conv2)", np.load(f"{t}/e/gradcam.npy"), cam, failures)
    print(f"explain parity: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
