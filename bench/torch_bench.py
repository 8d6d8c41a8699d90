#!/usr/bin/env python3
"""The PyTorch side of the benchmarks: the same workloads, models, optimizer,
batch and preloaded, normalised Fashion-MNIST as bench/ds_bench.c; one JSON
line. Run through bench/run.py (OPENBLAS_NUM_THREADS=1, 2 torch threads).

  torch_bench.py WORKLOAD [BATCHES]

Issue 14's fgsm_train and pgd10_eval are the same computations as ds_bench's:
FGSM / PGD on the input in eval mode (autograd on the input alone), eps in
[0, 1] pixel units; pgd10_eval loads the weights and normalisation of the
checkpoint $DS_BENCH_CKPT that ds_bench reads.

Issue 18's wide_deep (models/alerts-wide-deep.cfg on `deepsky simulate`'s
stamps and meta.csv: torch_bench.py wide_deep DIR) and mpi2 (LeNet, 2
processes x 1 thread, torch.distributed gloo, DistributedDataParallel,
global batch 64: torch_bench.py mpi2 IMAGES) train one epoch, as bench/run.py
runs deepsky's `train` on the same data; the DCGAN epoch is bench/gan_torch.py.
"""
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from fashion_torch import idx, models  # noqa: E402


class Block(nn.Module):
    """conv3x3-bn-relu, conv3x3-bn, + shortcut (1x1 conv-bn when downsampling), relu."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        return F.relu(h + (self.proj(x) if self.proj is not None else x))


def resnet_small():
    """models/resnet-small.cfg: stem, 3 stages x 2 blocks (16, 32, 64), GAP, dense."""
    layers = [nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


WORKLOADS = {  # name: (model, batch, train, default batches)
    "softmax": ("softmax", 64, True, 900), "mlp": ("mlp", 64, True, 300),
    "lenet64": ("lenet", 64, True, 60), "lenet256": ("lenet", 256, True, 15),
    "resnet128": ("resnet", 128, True, 8), "infer1000": ("lenet", 1000, False, 10),
    "infer1": ("lenet", 1, False, 300),
}


def main():
    w = sys.argv[1]
    torch.set_num_threads(2)
    torch.manual_seed(int(sys.argv[2]) if w == "rbm" and len(sys.argv) > 2 else 1)
    if w == "conv":  # LeNet's conv2 forward at batch 64, like ds_bench conv
        reps = int(sys.argv[2]) if len(sys.argv) > 2 else 50
        conv = nn.Conv2d(32, 64, 5, padding=2)
        x = torch.rand(64, 32, 14, 14)
        with torch.no_grad():
            conv(x)
            t0 = time.perf_counter()
            for _ in range(reps):
                conv(x)
            secs = time.perf_counter() - t0
        flop = 2 * 64 * 32 * 25 * 14 * 14 * 64 * reps
        a, b = torch.rand(64, 800), torch.rand(800, 64 * 196)  # the same product as one GEMM
        a @ b
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        gemm = 2 * 64 * 800 * 64 * 196 * reps / (time.perf_counter() - t0)
        print(json.dumps({"workload": w, "gflops": round(flop / secs / 1e9, 2),
                          "sgemm_gflops": round(gemm / 1e9, 2), "peak_rss_mb": peak_rss_mb()}))
        return
    if w == "rbm":
        rbm_epoch()
        return
    if w == "pgd10_eval":
        pgd10_eval(int(sys.argv[2]) if len(sys.argv) > 2 else 10)
        return
    if w == "fgsm_train":
        fgsm_train(int(sys.argv[2]) if len(sys.argv) > 2 else 60)
        return
    if w == "wide_deep":
        wide_deep(sys.argv[2])
        return
    if w == "mpi2":
        mpi2(int(sys.argv[2]) if len(sys.argv) > 2 else 12800)
        return
    name, bs, train, default = WORKLOADS[w]
    batches = int(sys.argv[2]) if len(sys.argv) > 2 else default
    x = torch.from_numpy(idx("train-images-idx3-ubyte.gz").astype("float32")[:, None] / 255)
    y = torch.from_numpy(idx("train-labels-idx1-ubyte.gz").astype("int64"))
    x = (x - x.mean()) / x.std()
    model = resnet_small() if name == "resnet" else models(name)
    if name == "resnet":
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train(train)
    per_epoch, warm, lat = len(x) // bs, 3, []
    t0 = 0
    for b in range(warm + batches):
        first = (b % per_epoch) * bs
        xb, yb = x[first:first + bs], y[first:first + bs]
        if b == warm:
            t0 = time.perf_counter()
        t = time.perf_counter()
        if train:
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
        else:
            with torch.no_grad():
                model(xb)
        if b >= warm:
            lat.append(time.perf_counter() - t)
    secs = time.perf_counter() - t0
    lat.sort()
    print(json.dumps({"workload": w, "images_per_s": round(batches * bs / secs, 1),
                      "median_ms": round(1e3 * lat[len(lat) // 2], 4), "peak_rss_mb": peak_rss_mb()}))


def rbm_epoch():
    """Issue 5's reference RBM: 784 -> 500 Bernoulli units, CD-1, batch 100,
    rate 0.05, pixels binarised at 0.5, one epoch of Fashion-MNIST in order,
    W ~ N(0, 0.01^2), no momentum or weight decay; the reconstruction from
    the sampled hidden state (as bench/ds_bench.c)."""
    x = torch.from_numpy((idx("train-images-idx3-ubyte.gz").reshape(-1, 784) >= 128).astype("float32"))
    nv, nh, bs, lr = 784, 500, 100, 0.05
    w = torch.randn(nh, nv) * 0.01
    b, c = torch.zeros(nv), torch.zeros(nh)
    err, t0 = 0.0, time.perf_counter()
    with torch.no_grad():
        for first in range(0, len(x) - bs + 1, bs):
            v0 = x[first:first + bs]
            q0 = torch.sigmoid(v0 @ w.t() + c)
            h0 = torch.bernoulli(q0)
            v1 = torch.sigmoid(h0 @ w + b)
            q1 = torch.sigmoid(v1 @ w.t() + c)
            w += lr * (q0.t() @ v0 - q1.t() @ v1) / bs
            b += lr * (v0 - v1).mean(0)
            c += lr * (q0 - q1).mean(0)
            err += float(((v0 - v1) ** 2).sum()) / bs
    secs = time.perf_counter() - t0
    print(json.dumps({"workload": "rbm", "epoch_s": round(secs, 3), "recon_error": round(err / (len(x) // bs), 3),
                      "peak_rss_mb": peak_rss_mb()}))


def load_safetensors(path):
    """{name: float32 array} and the metadata of a safetensors file (an
    8-byte little-endian header length, a JSON header, the raw data)."""
    with open(path, "rb") as f:
        blob = f.read()
    n = int.from_bytes(blob[:8], "little")
    head = json.loads(blob[8:8 + n])
    meta = head.pop("__metadata__", {})
    data = {k: np.frombuffer(blob, np.float32, count=int(np.prod(v["shape"])), offset=8 + n + v["data_offsets"][0])
            .reshape(v["shape"]) for k, v in head.items() if v["dtype"] == "F32"}
    return data, meta


def lenet_from_checkpoint(path):
    """models("lenet") with a deepsky checkpoint's weights, and its normalisation (mean, std)."""
    sd, meta = load_safetensors(path)
    model = models("lenet")
    for i, name in ((0, "conv1"), (3, "conv2"), (7, "fc1"), (10, "fc2")):
        model[i].weight.data.copy_(torch.from_numpy(sd[name + ".weight"].copy()))
        model[i].bias.data.copy_(torch.from_numpy(sd[name + ".bias"].copy()))
    norm = json.loads(meta["norm"])
    return model, float(norm["mean"][0]), float(norm["std"][0])


def pgd10_eval(batches):
    """PGD-10 on `batches` batches of 1000 test images, as ds_bench: L-inf eps
    0.1 in [0, 1] pixels, step 2.5 eps / 10, no random start, clipped to
    [0, 1], eval mode, the normalisation in front, no parameter gradients;
    then one forward to judge, as deepsky's attacker."""
    ckpt = os.environ.get("DS_BENCH_CKPT") or "build/bench-lenet/last.safetensors"
    model, m, s = lenet_from_checkpoint(ckpt)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.from_numpy(idx("t10k-images-idx3-ubyte.gz").astype("float32")[:, None] / 255)
    y = torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz").astype("int64"))
    bs, eps, steps, warm = 1000, 0.1, 10, 1
    step = 2.5 * eps / steps
    batches = min(batches, len(x) // bs)
    right, t0 = 0, 0
    for b in range(warm + batches):
        first = (b if b < warm else b - warm) * bs
        if b == warm:
            t0 = time.perf_counter()
        x0, yb = x[first:first + bs], y[first:first + bs]
        xa = x0.clone()
        for _ in range(steps):
            xa.requires_grad_(True)
            g, = torch.autograd.grad(F.cross_entropy(model((xa - m) / s), yb), xa)
            xa = xa.detach() + step * g.sign()
            xa = torch.min(torch.max(xa, x0 - eps), x0 + eps).clamp_(0, 1)
        with torch.no_grad():
            ok = int((model((xa - m) / s).argmax(1) == yb).sum())
        if b >= warm:
            right += ok
    secs = time.perf_counter() - t0
    print(json.dumps({"workload": "pgd10_eval", "images_per_s": round(batches * bs / secs, 1),
                      "adv_accuracy": round(right / (batches * bs), 4), "images": batches * bs,
                      "peak_rss_mb": peak_rss_mb()}))


def fgsm_train(batches):
    """Goodfellow et al.'s step, as ds_bench fgsm_train: x_adv = clip(x + 0.1
    sign(grad_x L)) in [0, 1] pixels, made in eval mode (the gradient of the
    input alone), then in training mode loss 0.5 L(x) + 0.5 L(x_adv), Adam. The data are normalised, so eps and the range are mapped through it."""
    x = torch.from_numpy(idx("train-images-idx3-ubyte.gz").astype("float32")[:, None] / 255)
    y = torch.from_numpy(idx("train-labels-idx1-ubyte.gz").astype("int64"))
    m, s = float(x.mean()), float(x.std())
    x = (x - m) / s
    eps, lo, hi, alpha, bs, warm = 0.1 / s, (0 - m) / s, (1 - m) / s, 0.5, 64, 3
    model = models("lenet")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    per_epoch, lat, loss_sum, t0 = len(x) // bs, [], 0.0, 0
    for b in range(warm + batches):
        first = (b % per_epoch) * bs
        xb, yb = x[first:first + bs], y[first:first + bs]
        if b == warm:
            t0 = time.perf_counter()
        t = time.perf_counter()
        model.eval()
        xg = xb.clone().requires_grad_(True)
        g, = torch.autograd.grad(F.cross_entropy(model(xg), yb), xg)
        xadv = (xb + eps * g.sign()).clamp_(lo, hi)
        model.train()
        opt.zero_grad()
        loss = alpha * F.cross_entropy(model(xb), yb) + (1 - alpha) * F.cross_entropy(model(xadv), yb)
        loss.backward()
        opt.step()
        if b >= warm:
            lat.append(time.perf_counter() - t)
            loss_sum += float(loss)
    secs = time.perf_counter() - t0
    lat.sort()
    print(json.dumps({"workload": "fgsm_train", "images_per_s": round(batches * bs / secs, 1),
                      "median_ms": round(1e3 * lat[len(lat) // 2], 4), "peak_rss_mb": peak_rss_mb(),
                      "loss": round(loss_sum / batches, 4)}))


META = ("xpos ypos mindtoedge airmass seeing sky diffmaglim isdiffpos snr magpsf sigmapsf magap magdiff fwhm "
        "fwhm_ratio aimage bimage elong nneg nbad sumrat nr_match distnr magnr sgscore1 sharpnr chinr ss_match "
        "ssdistnr ssmagnr ss_rate ncovhist ndethist").split()  # models/alerts-wide-deep.cfg's columns


class WideDeep(nn.Module):
    """models/alerts-wide-deep.cfg: instance norm, 3 x (conv3x3-bn-relu, maxpool 2 after the first two),
    GAP -> 64; metadata 33 -> 64 -> 32; concat -> 64 -> dropout 0.3 -> 2; plus wide 33 -> 2."""

    def __init__(self):
        super().__init__()

        def cbr(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
        self.image = nn.Sequential(nn.InstanceNorm2d(1), *cbr(1, 16), nn.MaxPool2d(2), *cbr(16, 32), nn.MaxPool2d(2),
                                   *cbr(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.meta = nn.Sequential(nn.Linear(len(META), 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU())
        self.deep = nn.Sequential(nn.Linear(96, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 2))
        self.wide = nn.Linear(len(META), 2)

    def forward(self, stamp, meta):
        return self.deep(torch.cat([self.image(stamp), self.meta(meta)], 1)) + self.wide(meta)


def wide_deep(d):
    """One epoch of WideDeep on `deepsky simulate`'s DIR (x.npy, y.npy, meta.csv), batch 64, Adam 0.002,
    shuffled, no augmentation (as bench/run.py's deepsky side), the metadata standardised."""
    x = torch.from_numpy(np.load(os.path.join(d, "x.npy")).astype(np.float32))
    y = torch.from_numpy(np.load(os.path.join(d, "y.npy")).astype(np.int64).reshape(-1))
    with open(os.path.join(d, "meta.csv")) as f:
        head = f.readline().strip().split(",")
    cols = [head.index(c) for c in META]
    m = np.genfromtxt(os.path.join(d, "meta.csv"), delimiter=",", skip_header=1, usecols=cols, dtype=np.float64)
    m = torch.from_numpy(((m - m.mean(0)) / np.where(m.std(0) > 0, m.std(0), 1)).astype(np.float32))
    model = WideDeep()
    opt = torch.optim.Adam(model.parameters(), lr=0.002)
    model.train()
    bs, n = 64, len(x)
    t0 = time.perf_counter()
    perm = torch.randperm(n)
    for first in range(0, n - bs + 1, bs):
        i = perm[first:first + bs]
        opt.zero_grad()
        F.cross_entropy(model(x[i], m[i]), y[i]).backward()
        opt.step()
    secs = time.perf_counter() - t0
    print(json.dumps({"workload": "wide_deep", "images_per_s": round((n // bs) * bs / secs, 1),
                      "epoch_s": round(secs, 3), "peak_rss_mb": peak_rss_mb()}))


def mpi2_rank(rank, n, port, q):
    """One rank of mpi2: gloo, 1 thread, DDP LeNet, its half of each global batch of 64."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    x = torch.from_numpy(idx("train-images-idx3-ubyte.gz")[:n].astype("float32")[:, None] / 255)
    y = torch.from_numpy(idx("train-labels-idx1-ubyte.gz")[:n].astype("int64"))
    x = (x - x.mean()) / x.std()
    torch.manual_seed(1)
    model = DistributedDataParallel(models("lenet"))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sampler = torch.utils.data.distributed.DistributedSampler(range(n), num_replicas=2, rank=rank, shuffle=True, seed=1)
    mine = torch.tensor(list(sampler))
    bs = 32
    dist.barrier()
    t0 = time.perf_counter()
    for first in range(0, len(mine) - bs + 1, bs):
        i = mine[first:first + bs]
        opt.zero_grad()
        F.cross_entropy(model(x[i]), y[i]).backward()
        opt.step()
    dist.barrier()
    secs = time.perf_counter() - t0
    q.put((rank, secs, (len(mine) // bs) * bs * 2, peak_rss_mb()))
    dist.destroy_process_group()


def mpi2(n):
    """mpi2: 2 processes x 1 thread, one epoch of the first n training images; the epoch's wall time
    from the first barrier to the last; RSS: the larger rank's."""
    import socket
    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=mpi2_rank, args=(r, n, port, q)) for r in range(2)]
    for p in procs:
        p.start()
    got = [q.get() for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode:
            sys.exit(f"torch_bench mpi2: a rank exited with {p.exitcode}")
    secs = max(g[1] for g in got)
    print(json.dumps({"workload": "mpi2", "images_per_s": round(got[0][2] / secs, 1), "epoch_s": round(secs, 3),
                      "peak_rss_mb": max(g[3] for g in got)}))


def peak_rss_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


if __name__ == "__main__":
    main()
