#!/usr/bin/env python3
"""Sample grids for docs/gan.md through libdeepsky's ds_png_grid: NPY images
(the data's units) as the GAN's networks see them (the checkpoint's scale:
linear or asinh, then lo..hi to [-1, 1]), one grey scale for every tile.

  /usr/bin/python3 experiments/gan/grids.py CKPT IN.npy OUT.png [--n 64] [--cols 8] [--labels Y.npy --class C]
"""
import argparse
import ctypes as C
import json
import os
import struct

import numpy as np


def gan_scale(ckpt):
    b = open(ckpt, "rb").read(8)
    n = struct.unpack("<Q", b)[0]
    meta = json.loads(open(ckpt, "rb").read(8 + n)[8:])["__metadata__"]
    return json.loads(meta["gan"])["scale"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("npy")
    ap.add_argument("png")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--cols", type=int, default=8)
    ap.add_argument("--labels")
    ap.add_argument("--cls", "--class", type=int, dest="cls")
    ap.add_argument("--lib", default=os.environ.get("DS_LIB", "build/libdeepsky.so"))
    a = ap.parse_args()
    x = np.load(a.npy).astype(np.float64)
    if a.labels is not None:
        x = x[np.load(a.labels) == a.cls]
    x = x[: a.n, 0]
    s = gan_scale(a.ckpt)
    t = np.arcsinh(x / s["softening"]) if s["transform"] == "asinh" else x
    v = np.clip(2 * (t - s["lo"]) / (s["hi"] - s["lo"]) - 1, -1, 1).astype(np.float32)
    v[:, 0, 0], v[:, -1, -1] = -1, 1  # the scale is fixed to [-1, 1], not the tiles' range
    lib = C.CDLL(a.lib)
    lib.ds_png_grid.argtypes = [C.c_char_p, C.POINTER(C.c_float), C.c_int, C.c_int, C.c_int, C.c_int, C.c_int]
    v = np.ascontiguousarray(v)
    rc = lib.ds_png_grid(a.png.encode(), v.ctypes.data_as(C.POINTER(C.c_float)), len(v), v.shape[1], v.shape[2],
                         a.cols, 0)
    if rc:
        raise SystemExit("ds_png_grid failed")
    print("wrote", a.png, len(v), "tiles")


if __name__ == "__main__":
    main()
