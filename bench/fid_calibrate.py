#!/usr/bin/python3
"""fid_calibrate.py — what domain-FID numbers mean: `deepsky fid` of the
Fashion-MNIST test set against the training set, against degraded copies of
itself (noise, blur) and against subsets missing classes (mode dropping),
with the LeNet checkpoint; and real-vs-real of the stamps CNN.

    /usr/bin/python3 bench/fid_calibrate.py DEEPSKY LENET_CKPT [--stamps DIR] [--work DIR]

DIR (the stamps) holds best.safetensors and {train,test}_x.npy. Prints a
Markdown table (docs/gan.md); the numbers are also kept as WORK/*.json.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_npy  # noqa: E402


def blur(x, k):
    """a k×k box blur of [N, 1, H, W] (edges repeated)"""
    h, w = x.shape[2:]
    p = np.pad(x[:, 0], ((0, 0), (k // 2, k // 2), (k // 2, k // 2)), mode="edge")
    out = sum(p[:, i:i + h, j:j + w] for i in range(k) for j in range(k)) / (k * k)
    return out[:, None].astype(np.float32)


def run(ds, ckpt, real, fake, out, extra=()):
    t0 = time.time()
    subprocess.run([ds, "fid", "--classifier", ckpt, "--real", real, "--fake", fake, "--json", out, *extra],
                   check=True, stdout=subprocess.DEVNULL)
    j = json.load(open(out))
    j["wall"] = time.time() - t0
    return j


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("deepsky")
    ap.add_argument("lenet")
    ap.add_argument("--stamps")
    ap.add_argument("--work")
    a = ap.parse_args()
    w = a.work or tempfile.mkdtemp(prefix="fidcal")
    os.makedirs(w, exist_ok=True)
    if not os.path.exists(f"{w}/test_x.npy"):
        sys.argv = ["fashion_npy.py", w]
        fashion_npy.main()
    test, ty = np.load(f"{w}/test_x.npy"), np.load(f"{w}/test_y.npy")
    train = np.load(f"{w}/train_x.npy")
    r = np.random.default_rng(0)
    variants = {
        "train (first 10k)": train[:10000],
        "test + N(0, 0.05²) noise": np.clip(test + r.normal(0, 0.05, test.shape), 0, 1),
        "test + N(0, 0.1²) noise": np.clip(test + r.normal(0, 0.1, test.shape), 0, 1),
        "test + N(0, 0.2²) noise": np.clip(test + r.normal(0, 0.2, test.shape), 0, 1),
        "test, 3×3 box blur": blur(test, 3),
        "test, 5×5 box blur": blur(test, 5),
        "test without class 0 (9k)": test[ty != 0],
        "test, classes 0–4 only (5k)": test[ty < 5],
        "test, class 0 only (1k)": test[ty == 0],
    }
    print("| fake (against the Fashion-MNIST test set, 10k) | n | FID | seconds |")
    print("|---|---|---|---|")
    floor = None
    for i, (name, x) in enumerate(variants.items()):
        p = f"{w}/v{i}.npy"
        np.save(p, x.astype(np.float32))
        j = run(a.deepsky, a.lenet, f"{w}/test_x.npy", p, f"{w}/v{i}.json")
        floor = floor or j
        print(f"| {name} | {j['n_fake']} | {j['fid']:.2f} | {j['wall']:.1f} |")
    print(f"| real vs real (two halves of test, mean ± std of {len(floor['fid_real_real_splits'])} splits) | "
          f"{floor['n_half']} | {floor['fid_real_real']:.2f} ± {floor['fid_real_real_std']:.2f} | |")
    if a.stamps:
        s = a.stamps
        ck = f"{s}/best.safetensors"
        x = {k: np.load(f"{s}/{k}_x.npy") for k in ("train", "test")}
        y = {k: np.load(f"{s}/{k}_y.npy") for k in ("train", "test")}
        for k in ("train", "test"):
            np.save(f"{w}/st_{k}_real.npy", x[k][y[k] == 1])
            np.save(f"{w}/st_{k}_bogus.npy", x[k][y[k] == 0])
        np.save(f"{w}/st_train_real_y.npy", np.ones(int((y["train"] == 1).sum()), np.float32))
        print(f"\n| stamps ({ck}): real | fake | n | FID | real vs real (halves of real) | seconds |")
        print("|---|---|---|---|---|---|")
        for real, fake, extra in ((f"{s}/test_x.npy", f"{s}/train_x.npy", []),
                                  (f"{w}/st_test_real.npy", f"{w}/st_train_real.npy",
                                   ["--fake-labels", f"{w}/st_train_real_y.npy"]),
                                  (f"{w}/st_test_real.npy", f"{w}/st_test_bogus.npy", [])):
            j = run(a.deepsky, ck, real, fake, f"{w}/stamps.json", extra)
            acc = f" (classified real: {j['accuracy']:.3f})" if "accuracy" in j else ""
            print(f"| {os.path.basename(real)} | {os.path.basename(fake)}{acc} | {j['n_real']} / {j['n_fake']} | "
                  f"{j['fid']:.4f} | {j['fid_real_real']:.4f} ± {j['fid_real_real_std']:.4f} | {j['wall']:.1f} |")

if __name__ == "__main__":
    main()
