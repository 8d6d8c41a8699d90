#!/usr/bin/env python3
"""The PyTorch side of issue 15's GAN benchmark: models/dcgan-fashion.cfg's
DCGAN, layer for layer, trained as PyTorch's DCGAN example trains it.

  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/gan_torch.py --epochs 1 --seed 1 --out runs/torch-s1

Generator: z (100) -> Linear(100, 3136, no bias) -> BatchNorm1d -> ReLU ->
view 64x7x7 -> ConvTranspose2d(64, 32, 4, 2, 1, no bias) -> BatchNorm2d ->
ReLU -> ConvTranspose2d(32, 1, 4, 2, 1, no bias) -> tanh. Discriminator:
Conv2d(1, 32, 4, 2, 1, no bias) -> LeakyReLU 0.2 -> Conv2d(32, 64, 4, 2, 1,
no bias) -> BatchNorm2d -> LeakyReLU 0.2 -> flatten -> Linear(3136, 1, no
bias). Weights N(0, 0.02) (the cfg's init = dcgan); batch norm's weight 1 and
bias 0 (deepsky's batch-norm init; the PyTorch example draws the weight from
N(1, 0.02) instead), eps 1e-5, momentum 0.1. Adam 2e-4, betas (0.5, 0.999),
batch 128, BCE with logits, the non-saturating generator loss, pixels x/255
mapped to 2x - 1 (the cfg's transform = linear on data in [0, 1]).

Each iteration, as the PyTorch DCGAN example: a discriminator step on a real
batch (target 1) and on a fake batch from fresh z (target 0, fake.detach()),
then a generator step on the same fake batch (target 1). The data are
shuffled every epoch and the last short batch is kept (as deepsky's loader
does; 60000 = 468 x 128 + 96), its fake batch as large as the real one.

Writes OUT/samples.npy ([n, 1, 28, 28] float32 in [0, 1], from a fixed z
drawn with --sample-seed, eval mode), OUT/samples.png (the first 64 as an 8x8
grid) and OUT/metrics.csv (epoch, loss_d, loss_g, d_x, d_g_z1, d_g_z2 as the
example prints them, means over the epoch's batches; seconds, images_per_s:
real images per second of the whole epoch's wall time).
"""
import argparse
import csv
import ctypes
import os
import struct
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_torch  # noqa: E402
from run import torch_blas  # noqa: E402

LATENT = 100


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.g_fc = nn.Linear(LATENT, 64 * 7 * 7, bias=False)
        self.g_fc_bn = nn.BatchNorm1d(64 * 7 * 7)
        self.g_up1 = nn.ConvTranspose2d(64, 32, 4, 2, 1, bias=False)
        self.g_up1_bn = nn.BatchNorm2d(32)
        self.g_out = nn.ConvTranspose2d(32, 1, 4, 2, 1, bias=False)

    def forward(self, z):
        h = F.relu(self.g_fc_bn(self.g_fc(z))).view(-1, 64, 7, 7)
        h = F.relu(self.g_up1_bn(self.g_up1(h)))
        return torch.tanh(self.g_out(h))


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.d_conv1 = nn.Conv2d(1, 32, 4, 2, 1, bias=False)
        self.d_conv2 = nn.Conv2d(32, 64, 4, 2, 1, bias=False)
        self.d_conv2_bn = nn.BatchNorm2d(64)
        self.d_out = nn.Linear(64 * 7 * 7, 1, bias=False)

    def forward(self, x):
        h = F.leaky_relu(self.d_conv1(x), 0.2)
        h = F.leaky_relu(self.d_conv2_bn(self.d_conv2(h)), 0.2)
        return self.d_out(h.flatten(1)).view(-1)


def dcgan_init(m):
    """init = dcgan: N(0, 0.02) weights; batch norm weight 1, bias 0 (deepsky's)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def blas_report():
    """torch's build lines on BLAS/LAPACK, the BLAS it has loaded, and OpenBLAS's core."""
    lines = [ln.strip() for ln in torch.__config__.show().splitlines() if "BLAS" in ln or "LAPACK" in ln]
    for ln in lines:
        print(f"torch config: {ln[:200]}")
    lib = torch_blas(dict(os.environ))
    core = ""
    try:
        f = ctypes.CDLL("libblas.so.3").openblas_get_corename
        f.restype = ctypes.c_char_p
        core = f().decode()
    except (OSError, AttributeError):  # not OpenBLAS, or no libblas.so.3
        pass
    print(f"torch BLAS: {lib or 'unknown'}; OpenBLAS core: {core or 'n/a'}; "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; "
          f"torch threads {torch.get_num_threads()}", flush=True)
    return lib, core


def png_grid(path, imgs, cols=8):
    """An 8-bit greyscale PNG of imgs [n, 1, h, w] in [0, 1], cols a row, 2-pixel gaps."""
    n, _, h, w = imgs.shape
    rows = (n + cols - 1) // cols
    g = np.zeros((rows * (h + 2) + 2, cols * (w + 2) + 2), np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        g[2 + r * (h + 2):2 + r * (h + 2) + h, 2 + c * (w + 2):2 + c * (w + 2) + w] = \
            np.clip(imgs[i, 0] * 255 + 0.5, 0, 255).astype(np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in g)

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", g.shape[1], g.shape[0], 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n-samples", type=int, default=10000)
    ap.add_argument("--sample-seed", type=int, default=1234, help="z of the samples (as deepsky sample --seed)")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--limit", type=int, default=0, help="the first N training images only (0: all)")
    ap.add_argument("--batch", type=int, default=128)
    a = ap.parse_args()
    if a.epochs < 1 or a.threads < 1 or a.n_samples < 0 or a.limit < 0 or a.batch < 1:
        ap.error("--epochs, --threads, --batch must be >= 1; --n-samples, --limit >= 0")
    torch.set_num_threads(a.threads)
    blas_report()
    fashion_torch.DIR = a.data
    x = fashion_torch.idx("train-images-idx3-ubyte.gz")
    if a.limit:
        x = x[:a.limit]
    x = torch.from_numpy(x.astype(np.float32)[:, None] / 255 * 2 - 1)
    os.makedirs(a.out, exist_ok=True)

    torch.manual_seed(a.seed)
    g, d = Generator(), Discriminator()
    g.apply(dcgan_init)
    d.apply(dcgan_init)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    rows = []
    for epoch in range(1, a.epochs + 1):
        g.train()
        d.train()
        sums, batches = np.zeros(5), 0
        t0 = time.perf_counter()
        perm = torch.randperm(len(x))
        for first in range(0, len(x), a.batch):  # the last short batch kept
            real = x[perm[first:first + a.batch]]
            b = len(real)
            ones, zeros = torch.ones(b), torch.zeros(b)
            # discriminator: real -> 1, fake (G frozen: detached) -> 0
            d.zero_grad()
            out_real = d(real)
            err_real = bce(out_real, ones)
            err_real.backward()
            fake = g(torch.randn(b, LATENT))
            out_fake = d(fake.detach())
            err_fake = bce(out_fake, zeros)
            err_fake.backward()
            opt_d.step()
            # generator: the same fake through the updated D, target 1 (non-saturating)
            g.zero_grad()
            out_g = d(fake)
            err_g = bce(out_g, ones)
            err_g.backward()
            opt_g.step()
            sums += [(err_real + err_fake).item(), err_g.item(), torch.sigmoid(out_real).mean().item(),
                     torch.sigmoid(out_fake).mean().item(), torch.sigmoid(out_g).mean().item()]
            batches += 1
        secs = time.perf_counter() - t0
        m = sums / batches
        rows.append([epoch, *(f"{v:.6f}" for v in m), f"{secs:.3f}", f"{len(x) / secs:.1f}"])
        print(f"torch dcgan epoch {epoch}: loss_d {m[0]:.4f} loss_g {m[1]:.4f} D(x) {m[2]:.4f} "
              f"D(G(z)) {m[3]:.4f} / {m[4]:.4f} | {secs:.1f} s ({len(x) / secs:.1f} images/s)", flush=True)
        with open(os.path.join(a.out, "metrics.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["epoch", "loss_d", "loss_g", "d_x", "d_g_z1", "d_g_z2", "seconds", "images_per_s"])
            w.writerows(rows)

    g.eval()
    z = torch.randn(a.n_samples, LATENT, generator=torch.Generator().manual_seed(a.sample_seed))
    with torch.no_grad():
        s = torch.cat([g(z[i:i + 1000]) for i in range(0, a.n_samples, 1000)]) if a.n_samples else \
            torch.zeros(0, 1, 28, 28)
    s = ((s + 1) / 2).numpy().astype(np.float32)  # back to data units [0, 1]
    tmp = os.path.join(a.out, "samples.npy.tmp")
    with open(tmp, "wb") as f:
        np.save(f, s)
    os.replace(tmp, os.path.join(a.out, "samples.npy"))
    if len(s):
        png_grid(os.path.join(a.out, "samples.png"), s[:64])
    print(f"torch dcgan: {len(s)} samples -> {os.path.join(a.out, 'samples.npy')}")


if __name__ == "__main__":
    main()
