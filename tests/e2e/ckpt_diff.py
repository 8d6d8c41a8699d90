#!/usr/bin/python3
"""ckpt_diff.py A.safetensors B.safetensors [--keys weights|all] — how far
two checkpoints' tensors are apart: per tensor and overall the largest
|a − b| / max|a| (relative to the tensor's scale), and whether every tensor
is bit-identical. Prints one line per differing tensor and a summary line
"max_rel=<x> identical=<0|1> tensors=<n>". Optimizer moments (optim.*) and
metadata are skipped unless --keys all."""
import json
import sys

import numpy as np


def load(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = int.from_bytes(blob[:8], "little")
    head = json.loads(blob[8:8 + n])
    head.pop("__metadata__", None)
    out = {}
    for k, v in head.items():
        lo, hi = v["data_offsets"]
        dt = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "U8": np.uint8}.get(v["dtype"])
        if dt is None:
            continue
        out[k] = np.frombuffer(blob[8 + n + lo:8 + n + hi], dt).reshape(v["shape"])
    return out


def main():
    a, b = load(sys.argv[1]), load(sys.argv[2])
    every = "--keys" in sys.argv and sys.argv[sys.argv.index("--keys") + 1] == "all"
    keys = sorted(k for k in a if every or not k.startswith("optim"))
    if set(k for k in a if every or not k.startswith("optim")) != set(k for k in b if every or not k.startswith("optim")):
        print("different tensor names:", sorted(set(a) ^ set(b)))
        print("max_rel=inf identical=0 tensors=0")
        return 1
    worst, same = 0.0, True
    for k in keys:
        x, y = a[k].astype(np.float64), b[k].astype(np.float64)
        if x.shape != y.shape:
            print(f"{k}: shapes {x.shape} and {y.shape}")
            worst, same = float("inf"), False
            continue
        if a[k].tobytes() != b[k].tobytes():
            same = False
            scale = max(np.abs(x).max(), 1e-30)
            rel = float(np.abs(x - y).max() / scale)
            worst = max(worst, rel)
            print(f"{k}: max |a-b|/max|a| = {rel:.3g}")
    print(f"max_rel={worst:.3g} identical={int(same)} tensors={len(keys)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
