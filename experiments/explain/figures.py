"""figures.py — the pictures of docs/explain.md from what run.sh measured:
each method's |map| beside its input (Fashion-MNIST; real and bogus stamps
with their footprints) and the cascading randomisation of one image.
numpy only (no matplotlib here): PNGs written with zlib.
  /usr/bin/python3 experiments/explain/figures.py RUNS_DIR OUT_DIR"""
import struct
import sys
import zlib

import numpy as np

METHODS = ["saliency", "gradxinput", "smoothgrad", "integrated-gradients", "gradcam", "guided-backprop", "deconvnet"]


def png(path, rgb):
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def grey(img):
    lo, hi = np.percentile(img, 1), np.percentile(img, 99.5)
    v = np.clip((img - lo) / (hi - lo + 1e-12), 0, 1)
    return np.stack([v, v, v], -1)


def hot(m):
    """|m| scaled to its 99.5th percentile, black-red-yellow-white"""
    a = np.abs(m)
    v = np.clip(a / (np.percentile(a, 99.5) + 1e-12), 0, 1)
    return np.stack([np.clip(3 * v, 0, 1), np.clip(3 * v - 1, 0, 1), np.clip(3 * v - 2, 0, 1)], -1)


def outline(rgb, mask):
    """the footprint's edge in cyan over a tile"""
    m = mask > 0.5
    e = m & ~(np.roll(m, 1, 0) & np.roll(m, -1, 0) & np.roll(m, 1, 1) & np.roll(m, -1, 1))
    out = rgb.copy()
    out[e] = [0, 1, 1]
    return out


def montage(tiles, scale, gap=2):
    """tiles: rows of [h, w, 3] floats in [0, 1] -> uint8 image, each tile scaled up by nearest neighbour"""
    rows = []
    for r in tiles:
        cells = []
        for t in r:
            t = np.kron(t, np.ones((scale, scale, 1)))
            cells += [t, np.ones((t.shape[0], gap, 3))]
        rows += [np.concatenate(cells[:-1], 1), np.ones((gap, sum(c.shape[1] for c in cells[:-1]), 3))]
    return (255 * np.concatenate(rows[:-1], 0)).astype(np.uint8)


def main(runs, out):
    # Fashion-MNIST: the trained model's maps of the first images (sanity_maps.npy stage 0)
    m = np.load(f"{runs}/fmnist-sanity/sanity_maps.npy")  # [stages, methods, keep, H, W]
    x = np.load(f"{runs}/fmnist-sanity/sanity_inputs.npy")[:, 0]
    rows = [[grey(x[i])] + [hot(m[0, j, i]) for j in range(m.shape[1])] for i in range(6)]
    png(f"{out}/explain-fmnist.png", montage(rows, 2))
    # the cascade for two images: rows methods, columns stages
    for i, name in [(0, "a"), (1, "b")]:
        rows = [[grey(x[i])] + [hot(m[s, j, i]) for s in range(m.shape[0])] for j in range(m.shape[1])]
        png(f"{out}/explain-cascade-{name}.png", montage(rows, 2))
    # stamps: real and bogus, input with its footprint, then each method
    d = f"{runs}/stamps-pointing"
    xs = np.load(f"{runs}/stamps/x.npy")[:, 0]
    y = np.load(f"{runs}/stamps/y.npy")
    fp = np.load(f"{runs}/stamps/footprint.npy")
    kinds = [l.split(",")[2] for l in open(f"{runs}/stamps/labels.csv").read().split("\n")[1:] if l]
    maps = [np.load(f"{d}/maps_{k}.npy") for k in METHODS]
    n = maps[0].shape[0]
    real = [i for i in range(n) if y[i] == 1][:4]
    seen, bogus = set(), []
    for i in range(n):  # one of each bogus kind, up to 6
        if y[i] == 0 and kinds[i] not in seen and len(bogus) < 6:
            seen.add(kinds[i]), bogus.append(i)
    for name, idx in [("real", real), ("bogus", bogus)]:
        rows = [[outline(grey(xs[i]), fp[i])] + [outline(hot(mm[i]), fp[i]) for mm in maps] for i in idx]
        png(f"{out}/explain-stamps-{name}.png", montage(rows, 2))
    print("bogus kinds shown:", ", ".join(kinds[i] for i in bogus), "; stamps", real, bogus)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
