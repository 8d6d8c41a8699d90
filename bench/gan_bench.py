#!/usr/bin/env python3
"""Issue 15's GAN benchmark: deepsky's DCGAN (models/dcgan-fashion.cfg) and
the same network in PyTorch (bench/gan_torch.py), the same epochs and seeds,
alternating run by run (deepsky s1, torch s1, deepsky s2, ...); each run's
10,000 samples scored by `deepsky fid` against the 10,000 Fashion-MNIST test
images on one deepsky classifier's features; a markdown table of FID (per
seed, mean ± std over seeds) and training images/s (per seed, and the
deepsky/PyTorch ratio as the median of the per-seed ratios).

  nice /usr/bin/python3 bench/gan_bench.py --epochs 5 --md bench/GAN.md
  /usr/bin/python3 bench/gan_bench.py --dry-run          # the commands only

PyTorch runs as in bench/run.py: OPENBLAS_NUM_THREADS=1, 2 torch threads.
A run's images/s is the median over its epochs of the epoch's real images
per wall-clock second (metrics.csv of either side). Speed wants an idle
machine: on 2 cores shared with other work PyTorch's 2 OpenMP threads spin
at their barriers (one epoch took 178 s at load ~3, over 17 min at load ~6).
"""
import argparse
import csv
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from run import cpu_name  # noqa: E402

SAMPLE_SEED = 1234
TRAIN_IMAGES = 60000


def commands(a, fw, seed):
    """The commands of one run, and its directory."""
    out = os.path.join(a.work, f"{fw}-s{seed}")
    limit = ["--limit", str(a.limit)] if a.limit else []
    if fw == "deepsky":
        cmds = [[a.deepsky, "gan", "models/dcgan-fashion.cfg", "--data", "fashion-mnist", "--epochs", str(a.epochs),
                 "--seed", str(seed), "--out", out] + limit,
                [a.deepsky, "sample", os.path.join(out, "last.safetensors"), "--n", str(a.n_samples),
                 "--seed", str(SAMPLE_SEED), "--out", os.path.join(out, "samples.npy")]]
    else:
        cmds = [["/usr/bin/python3", "bench/gan_torch.py", "--epochs", str(a.epochs), "--seed", str(seed),
                 "--threads", str(a.threads), "--n-samples", str(a.n_samples), "--sample-seed", str(SAMPLE_SEED),
                 "--out", out] + limit]
    if not a.no_fid:
        cmds.append([a.deepsky, "fid", "--classifier", a.classifier, "--real", a.real,
                     "--fake", os.path.join(out, "samples.npy"), "--json", os.path.join(out, "fid.json")])
    return cmds, out


def env_for(cmd):
    env = dict(os.environ)
    if cmd[0].endswith("python3"):
        env["OPENBLAS_NUM_THREADS"] = "1"  # PyTorch's fastest setup here (bench/RESULTS.md)
    return env


def images_per_s(path, images):
    """Median over epochs of images/s from a metrics.csv (an images_per_s
    column, else images / the seconds column)."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    vals = []
    for r in rows:
        if r.get("images_per_s"):
            vals.append(float(r["images_per_s"]))
        elif r.get("seconds"):
            vals.append(images / float(r["seconds"]))
    if not vals:
        raise SystemExit(f"gan_bench: {path}: no images_per_s or seconds column")
    return statistics.median(vals)


def read_fid(path):
    with open(path) as f:
        j = json.load(f)
    for k in ("fid", "frechet_distance", "distance"):
        if isinstance(j.get(k), (int, float)):
            return float(j[k])
    raise SystemExit(f"gan_bench: {path}: no 'fid' number in {sorted(j)}")


def real_images(a):
    """The 10,000 test images as float32 [N, 1, 28, 28] in [0, 1], made once
    when --real does not exist (or give bench/fashion_npy.py's file)."""
    if os.path.exists(a.real):
        return
    os.makedirs(os.path.dirname(os.path.abspath(a.real)), exist_ok=True)
    import numpy as np  # bench/fashion_npy.py's conversion (x / 255), with the benchmarks' IDX reader
    import fashion_torch
    x = fashion_torch.idx("t10k-images-idx3-ubyte.gz").astype(np.float32)[:, None] / 255
    np.save(a.real, x)


def mean_std(v):
    if not v:
        return "-"
    return f"{statistics.mean(v):.2f} ± {statistics.stdev(v):.2f}" if len(v) > 1 else f"{v[0]:.2f}"


def table(a, res, load0, wall):
    fws = a.frameworks
    head = [f"machine: {cpu_name()}, {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M')}; "
            f"models/dcgan-fashion.cfg, {a.epochs} epoch(s), batch 128, Adam 2e-4 (0.5, 0.999), "
            f"{a.limit or TRAIN_IMAGES} training images; FID of {a.n_samples} samples (z seed {SAMPLE_SEED}) "
            f"against the 10000 test images on the features of {a.classifier}; PyTorch: "
            f"OPENBLAS_NUM_THREADS=1, {a.threads} threads; runs alternating. Load average {load0:.2f} at the "
            f"start, {os.getloadavg()[0]:.2f} at the end; {wall / 60:.1f} min in all.", ""]
    cols = ["seed"] + [f"FID {fw}" for fw in fws] + [f"images/s {fw}" for fw in fws]
    both = len(fws) == 2
    if both:
        cols.append("speed deepsky / PyTorch")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    ratios = []
    for s in a.seeds:
        r = res[s]
        row = [str(s)] + [f"{r[fw]['fid']:.2f}" if r[fw]["fid"] is not None else "-" for fw in fws]
        row += [f"{r[fw]['ips']:.1f}" for fw in fws]
        if both:
            ratios.append(r["deepsky"]["ips"] / r["torch"]["ips"])
            row.append(f"{ratios[-1]:.2f}x")
        lines.append("| " + " | ".join(row) + " |")
    fids = {fw: [res[s][fw]["fid"] for s in a.seeds if res[s][fw]["fid"] is not None] for fw in fws}
    ips = {fw: [res[s][fw]["ips"] for s in a.seeds] for fw in fws}
    row = ["mean ± std"] + [mean_std(fids[fw]) for fw in fws] + [mean_std(ips[fw]) for fw in fws]
    if both:
        row.append(f"median {statistics.median(ratios):.2f}x")
    lines.append("| " + " | ".join(row) + " |")
    cmd = "/usr/bin/python3 bench/gan_bench.py " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    return "\n".join(head + lines + ["", f"Command: `nice {cmd}`", ""])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deepsky", default="build/deepsky")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--limit", type=int, default=0, help="the first N training images on both sides (0: all)")
    ap.add_argument("--classifier", default="runs/rob/lenet-clean/best.safetensors")
    ap.add_argument("--real", default="build/gan-bench/test.npy", help="the real images' NPY (made if missing)")
    ap.add_argument("--work", default="build/gan-bench", help="the runs' directories")
    ap.add_argument("--threads", type=int, default=2, help="PyTorch's threads")
    ap.add_argument("--n-samples", type=int, default=10000, help="samples a run makes for its FID")
    ap.add_argument("--frameworks", default="deepsky,torch", help="deepsky,torch or one of them")
    ap.add_argument("--no-fid", action="store_true", help="skip deepsky fid (speed only)")
    ap.add_argument("--md", help="write the table here too")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    a = ap.parse_args()
    a.frameworks = [f for f in a.frameworks.split(",") if f]
    if not a.frameworks or any(f not in ("deepsky", "torch") for f in a.frameworks):
        ap.error("--frameworks: deepsky, torch or deepsky,torch")
    if a.epochs < 1 or a.limit < 0 or a.n_samples < 2 or not a.seeds:
        ap.error("--epochs >= 1, --limit >= 0, --n-samples >= 2, one seed at least")
    if a.md:
        a.md = os.path.abspath(a.md)  # from where it was run; the rest is relative to the repository
    os.chdir(ROOT)
    images = a.limit or TRAIN_IMAGES
    if a.dry_run:
        if not a.no_fid:
            print(f"# the real images: {a.real} (the 10k test images, float32 [N, 1, 28, 28] in [0, 1]), made if missing")
        for s in a.seeds:
            for fw in a.frameworks:
                cmds, _ = commands(a, fw, s)
                for c in cmds:
                    print(("OPENBLAS_NUM_THREADS=1 " if c[0].endswith("python3") else "") + " ".join(shlex.quote(x) for x in c))
        return
    if not a.no_fid:
        if not os.path.exists(a.classifier):
            sys.exit(f"gan_bench: the classifier {a.classifier} does not exist (--classifier)")
        real_images(a)
    load0, t0 = os.getloadavg()[0], time.time()
    res = {}
    for s in a.seeds:
        res[s] = {}
        for fw in a.frameworks:  # alternate, so both see the same machine state
            cmds, out = commands(a, fw, s)
            os.makedirs(out, exist_ok=True)
            for c in cmds:
                print("+ " + " ".join(shlex.quote(x) for x in c), flush=True)
                r = subprocess.run(c, env=env_for(c))
                if r.returncode != 0:
                    sys.exit(f"gan_bench: exit status {r.returncode}: {' '.join(c)}")
            res[s][fw] = {"ips": images_per_s(os.path.join(out, "metrics.csv"), images),
                          "fid": None if a.no_fid else read_fid(os.path.join(out, "fid.json"))}
            print(f"gan_bench: {fw} seed {s}: {res[s][fw]}", flush=True)
    text = table(a, res, load0, time.time() - t0)
    print(text)
    if a.md:
        with open(a.md, "w") as f:
            f.write("# GAN benchmark: deepsky vs PyTorch DCGAN on Fashion-MNIST\n\n" + text)


if __name__ == "__main__":
    main()
