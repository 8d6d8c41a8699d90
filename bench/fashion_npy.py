#!/usr/bin/python3
"""fashion_npy.py — Fashion-MNIST's IDX files as NPY: float32 [N, 1, 28, 28]
pixels in [0, 1] (byte / 255, as deepsky's fashion-mnist spec reads them)
and float32 labels [N].

    /usr/bin/python3 bench/fashion_npy.py OUT_DIR [--dir IDX_DIR]

writes OUT_DIR/{train,test}_x.npy and {train,test}_y.npy. IDX_DIR defaults
to $DS_FASHION_MNIST or /usr/share/datasets/fashion-mnist.
"""
import argparse
import gzip
import os
import struct

import numpy as np


def read_idx(path):
    with gzip.open(path, "rb") as f:
        zero, kind, ndim = struct.unpack(">HBB", f.read(4))
        if zero != 0 or kind != 0x08:
            raise SystemExit(f"{path}: not an IDX file of unsigned bytes")
        dims = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        data = np.frombuffer(f.read(), dtype=np.uint8)
    if data.size != int(np.prod(dims)):
        raise SystemExit(f"{path}: {data.size} bytes for shape {dims}")
    return data.reshape(dims)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--dir", default=os.environ.get("DS_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = read_idx(os.path.join(a.dir, f"{prefix}-images-idx3-ubyte.gz"))
        y = read_idx(os.path.join(a.dir, f"{prefix}-labels-idx1-ubyte.gz"))
        x = (x.astype(np.float32) / 255)[:, None, :, :]
        np.save(os.path.join(a.out, f"{split}_x.npy"), x)
        np.save(os.path.join(a.out, f"{split}_y.npy"), y.astype(np.float32))
        print(f"{split}: {x.shape[0]} images -> {a.out}/{split}_x.npy, {split}_y.npy")


if __name__ == "__main__":
    main()
