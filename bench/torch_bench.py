#!/usr/bin/env python3
"""The PyTorch side of the benchmarks: the same workloads, models, optimizer,
batch and preloaded, normalised Fashion-MNIST as bench/ds_bench.c; one JSON
line. Run through bench/run.py (OPENBLAS_NUM_THREADS=1, 2 torch threads).

  torch_bench.py WORKLOAD [BATCHES]
"""
import json
import resource
import sys
import time

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


def peak_rss_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


if __name__ == "__main__":
    main()
