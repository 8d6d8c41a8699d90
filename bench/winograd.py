#!/usr/bin/env python3
"""Winograd vs the direct convolution, side by side (docs/design.md).

  bench/winograd.py [ROUNDS] [BUILD]      (default 5 rounds, build/)

For every 3x3 stride-1 layer of models/resnet-small.cfg (batch 128) and
models/realbogus.cfg (batch 64), and LeNet's 5x5 conv2 (batch 64), runs
BUILD/conv_algos once per DS_CONV_ALGO (ocv = the direct kernel, winograd2,
winograd4) per round, in turn, and prints the medians of the forward and dx
times and their ratios to ocv (for a 5x5 kernel winograd2 is F(2x2,5x5) and
winograd4 leaves it to ocv). Then BUILD/ds_bench's ResNet-small and LeNet
training steps and LeNet inference (batch 1000 images/s, batch 1 median ms)
with DS_CONV_ALGO=ocv, unset (the default rule) and auto (timed per layer),
alternating, medians and ratios. The DCGAN discriminator's convolutions are
4x4 stride 2: no Winograd there."""
import json
import os
import statistics as st
import subprocess
import sys

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
BUILD = sys.argv[2] if len(sys.argv) > 2 else "build"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = [  # name, N C H W K kernel pad
    ("resnet stem 1->16 28x28", (128, 1, 28, 28, 16, 3, 1)),
    ("resnet 16->16 28x28", (128, 16, 28, 28, 16, 3, 1)),
    ("resnet 32->32 14x14", (128, 32, 14, 14, 32, 3, 1)),
    ("resnet 64->64 7x7", (128, 64, 7, 7, 64, 3, 1)),
    ("realbogus 1->16 45x45", (64, 1, 45, 45, 16, 3, 1)),
    ("realbogus 16->32 22x22", (64, 16, 22, 22, 32, 3, 1)),
    ("realbogus 32->64 11x11", (64, 32, 11, 11, 64, 3, 1)),
    ("lenet conv2 32->64 14x14 5x5", (64, 32, 14, 14, 64, 5, 2)),
]
ALGOS = ["ocv", "winograd2", "winograd4"]


def run(cmd, algo):
    env = dict(os.environ)
    env.pop("DS_CONV_ALGO", None)
    if algo:
        env["DS_CONV_ALGO"] = algo
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    print(f"{'layer':32} {'algo':10} {'fwd ms':>8} {'ratio':>6} {'dx ms':>8} {'ratio':>6}")
    for name, args in LAYERS:
        res = {a: [] for a in ALGOS}
        for _ in range(ROUNDS):
            for a in ALGOS:
                res[a].append(run([f"{BUILD}/conv_algos", *map(str, args), "10"], a))
        med = {a: (st.median(r["forward_ms"] for r in res[a]), st.median(r["dx_ms"] for r in res[a])) for a in ALGOS}
        for a in ALGOS:
            f, d = med[a]
            print(f"{name:32} {a:10} {f:8.3f} {med['ocv'][0] / f:6.2f} {d:8.3f} {med['ocv'][1] / d:6.2f}")
    for w in ("resnet128", "lenet64", "infer1000", "infer1"):
        steps = {a: [] for a in ("ocv", None, "auto")}
        key = "median_ms" if w == "infer1" else "images_per_s"
        for _ in range(ROUNDS):
            for a in steps:
                steps[a].append(run([f"{BUILD}/ds_bench", w, "models"], a)[key])
        base = st.median(steps["ocv"])
        for a, v in steps.items():
            print(f"{w:10} {a or 'default':8} {st.median(v):9.3f} {key}  ratio to ocv {st.median(v) / base:5.2f}")


if __name__ == "__main__":
    main()
