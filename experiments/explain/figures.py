"""figures.py — the pictures of docs/explain.md from what run.sh measured:
each method's |map| beside its input (Fashion-MNIST; real and bogus stamps
with their footprints) and the cascading randomisation of two images.
numpy only (no matplotlib here): palette PNGs written with zlib.
  /usr/bin/python3 experiments/explain/figures.py RUNS_DIR OUT_DIR"""
import struct
import sys
import zlib

import numpy as np

METHODS = ["saliency", "gradxinput", "smoothgrad", "integrated-gradients", "gradcam", "guided-backprop", "deconvnet"]


def png(path, idx):
    """an 8-bit palette PNG of indices idx [h, w] into PALETTE (1 byte a pixel: the noisy
    stamps compress to a third of RGB)"""
    h, w = idx.shape
    raw = b"".join(b"\x00" + idx[y].astype(np.uint8).tobytes() for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
                + chunk(b"PLTE", PALETTE.astype(np.uint8).tobytes())
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


# 0..63 grey levels (inputs), 64..254 the hot ramp (maps), 255 cyan (footprint edges); white = grey 63
_g = np.linspace(0, 1, 64)
_h = np.linspace(0, 1, 191)
PALETTE = 255 * np.concatenate([np.stack([_g, _g, _g], 1),
                                np.stack([np.clip(3 * _h, 0, 1), np.clip(3 * _h - 1, 0, 1), np.clip(3 * _h - 2, 0, 1)], 1),
                                [[0, 1, 1]]])
WHITE, CYAN = 63, 255


def grey(img):
    lo, hi = np.percentile(img, 1), np.percentile(img, 99.5)
    return np.round(63 * np.clip((img - lo) / (hi - lo + 1e-12), 0, 1)).astype(int)


def stretch(img):
    """a stamp on an asinh stretch in units of its robust noise (1.4826 MAD): the
    faint trail and the saturated star both visible"""
    s = 1.4826 * np.median(np.abs(img - np.median(img))) + 1e-12
    return grey(np.arcsinh((img - np.median(img)) / s))


def hot(m):
    """|m| scaled to its 99.5th percentile"""
    a = np.abs(m)
    # 48 levels (every 4th of the ramp): enough for the eye, and the PNGs stay small
    return 64 + 4 * np.round(47 * np.clip(a / (np.percentile(a, 99.5) + 1e-12), 0, 1)).astype(int)


def outline(t, mask):
    """the footprint's edge in cyan over a tile"""
    m = mask > 0.5
    e = m & ~(np.roll(m, 1, 0) & np.roll(m, -1, 0) & np.roll(m, 1, 1) & np.roll(m, -1, 1))
    out = t.copy()
    out[e] = CYAN
    return out


def montage(tiles, scale, gap=2):
    """tiles: rows of [h, w] palette indices -> one image, each tile scaled up by nearest neighbour"""
    rows = []
    for r in tiles:
        cells = []
        for t in r:
            t = np.kron(t, np.ones((scale, scale), int))
            cells += [t, np.full((t.shape[0], gap), WHITE)]
        row = np.concatenate(cells[:-1], 1)
        rows += [row, np.full((gap, row.shape[1]), WHITE)]
    return np.concatenate(rows[:-1], 0)


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
        rows = [[outline(stretch(xs[i]), fp[i])] + [outline(hot(mm[i]), fp[i]) for mm in maps] for i in idx]
        png(f"{out}/explain-stamps-{name}.png", montage(rows, 2))
    print("bogus kinds shown:", ", ".join(kinds[i] for i in bogus), "; stamps", real, bogus)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
