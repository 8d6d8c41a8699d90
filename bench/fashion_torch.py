#!/usr/bin/env python3
"""The PyTorch baseline for the three Fashion-MNIST examples: the same models,
optimizer, batch (64), epochs (5) and input scaling (/255) as examples/*.c.

  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/fashion_torch.py [softmax|mlp|lenet] [epochs] [seed]
"""
import gzip
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DIR = os.environ.get("DS_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")


def idx(name):
    with gzip.open(os.path.join(DIR, name)) as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def models(kind):
    if kind == "softmax":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                             nn.Linear(256, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(3136, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "lenet"
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    torch.set_num_threads(2)
    torch.manual_seed(seed)
    xtr = torch.from_numpy(idx("train-images-idx3-ubyte.gz").astype(np.float32)[:, None] / 255)
    ytr = torch.from_numpy(idx("train-labels-idx1-ubyte.gz").astype(np.int64))
    xte = torch.from_numpy(idx("t10k-images-idx3-ubyte.gz").astype(np.float32)[:, None] / 255)
    yte = torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))
    model = models(kind)
    if kind == "softmax":
        nn.init.zeros_(model[1].weight)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for e in range(1, epochs + 1):
        model.train()
        t0 = time.time()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            F.cross_entropy(model(xtr[b]), ytr[b]).backward()
            opt.step()
        secs = time.time() - t0
        model.eval()
        with torch.no_grad():
            acc = sum((model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item()
                      for i in range(0, len(xte), 1000)) / len(xte)
        print(f"torch {kind} epoch {e}: test acc {acc:.4f} | {secs:.1f} s ({len(xtr) / secs:.0f} img/s)", flush=True)
    print(f"torch {kind} test accuracy: {acc:.4f}")


if __name__ == "__main__":
    main()
