#!/usr/bin/python3
"""scaling.py — the measured half of docs/scaling.md: MPI_Allreduce timing on
loopback, and LeNet training throughput on this machine as 1 process x 1
thread (a), 1 process x 2 threads (b) and 2 MPI ranks x 1 thread at the same
global batch (c); per-step compute time of LeNet and resnet-small for the
model; then bench/scaling_model.py draws the modelled curves.

    /usr/bin/python3 bench/scaling.py [--rounds 3] [--images 12800] [--no-wait] [--skip-allreduce]

Needs build/deepsky (Release) and build/allreduce_bench (built here with mpicc
when missing). Jobs run alternating (a, b, c, ..., a, b, c, ...) and each
figure is the median of --rounds runs; images/s is the training images of the
epoch over the epoch's seconds in metrics.csv (rank 0's, for c). The machine
is shared: it waits until no other /work/notes/busy.* file exists and the
1-minute load is below 0.7 (--no-wait: don't), holds /work/notes/busy.scaling
while it runs, and records the load before every run.
Writes build/scaling/{allreduce_sm,allreduce_tcp,measured}.json and prints tables.
"""
import argparse
import csv
import glob
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import fashion_npy  # noqa: E402  (read_idx)

OUT = os.path.join(ROOT, "build", "scaling")
DS = os.path.join(ROOT, "build", "deepsky")
AR = os.path.join(ROOT, "build", "allreduce_bench")
NOTES = "/work/notes"
BUSY = os.path.join(NOTES, "busy.scaling")
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2"]
# per-model figures the model needs (from `deepsky info`)
MODELS = {"lenet": {"cfg": "models/lenet.cfg", "params": 454922, "fwd_flop": 22.21e6, "batch": 64},
          "resnet_small": {"cfg": "models/resnet-small.cfg", "params": 174970, "fwd_flop": 40.73e6, "batch": 128}}


def load1():
    return float(open("/proc/loadavg").read().split()[0])


def cpu_model():
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    f = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return f"{f.get('Model name', '?').strip()}, {f.get('CPU(s)', '?').strip()} CPUs"


def others_busy():
    return [p for p in glob.glob(os.path.join(NOTES, "busy.*")) if p != BUSY]


def wait_quiet(load_max, need_load):
    t0 = time.time()
    while True:
        b = others_busy()
        if not b and (not need_load or load1() < load_max):
            return
        if time.time() - t0 > 3 * 3600:
            raise SystemExit("scaling.py: the machine did not become quiet in 3 hours")
        print(f"waiting: busy {[os.path.basename(p) for p in b]}, load {load1():.2f}", flush=True)
        time.sleep(30)


def ensure_allreduce_bench():
    src = os.path.join(ROOT, "bench", "allreduce_bench.c")
    if not os.path.exists(AR) or os.path.getmtime(AR) < os.path.getmtime(src):
        subprocess.run(["mpicc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-o", AR, src, "-lm"],
                       check=True)


def allreduce(tag, extra):
    path = os.path.join(OUT, f"allreduce_{tag}.json")
    cmd = MPIRUN + extra + [AR, "--json", path]
    print("$ " + " ".join(cmd).replace(ROOT + "/", ""), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    print(r.stdout + r.stderr, flush=True)
    if r.returncode != 0:
        raise SystemExit(f"allreduce_bench ({tag}) failed")
    d = json.load(open(path))
    d["command"] = " ".join(cmd).replace(ROOT + "/", "")
    d["table"] = r.stdout
    json.dump(d, open(path, "w"), indent=1)
    return d


def make_data(n):
    d = os.path.join(OUT, f"fmnist{n}")
    x, y = os.path.join(d, "x.npy"), os.path.join(d, "y.npy")
    if not os.path.exists(x):
        import numpy as np
        os.makedirs(d, exist_ok=True)
        idx = os.environ.get("DS_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")
        xi = fashion_npy.read_idx(os.path.join(idx, "train-images-idx3-ubyte.gz"))[:n]
        yi = fashion_npy.read_idx(os.path.join(idx, "train-labels-idx1-ubyte.gz"))[:n]
        np.save(x, (xi.astype(np.float32) / 255)[:, None, :, :])
        np.save(y, yi.astype(np.float32))
    return f"npy:{x},{y}"


def job_cmd(job, data, out):
    model, kind, batch = job
    train = [DS, "train", MODELS[model]["cfg"], "--data", data, "--epochs", "1", "--batch", str(batch),
             "--seed", "1", "--out", out, "--quiet"]
    env = dict(os.environ)
    if kind == "c":
        return MPIRUN + ["-x", "DS_NUM_THREADS=1"] + train, env
    env["DS_NUM_THREADS"] = "1" if kind == "a" else "2"
    return train, env


def run_job(job, data, n):
    out = os.path.join(OUT, "runs", "-".join(map(str, job)))
    cmd, env = job_cmd(job, data, out)
    la = load1()
    t0 = time.time()
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    if r.returncode != 0:
        return {"ok": False, "error": (r.stderr or r.stdout).strip().splitlines()[-1:], "load1": la}
    rows = [row for row in csv.reader(line for line in open(os.path.join(out, "metrics.csv")) if not line.startswith("#"))]
    secs = float(rows[-1][rows[0].index("seconds")])
    extra = [line for line in r.stdout.splitlines() if "reduce" in line.lower() or "rank" in line.lower()]
    return {"ok": True, "images_per_s": n / secs, "epoch_s": secs, "wall_s": wall, "load1": la,
            "command": " ".join(cmd).replace(ROOT + "/", ""), "notes": extra[-3:]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=12800, help="LeNet's training images (resnet-small: a quarter)")
    ap.add_argument("--no-wait", action="store_true")
    ap.add_argument("--skip-allreduce", action="store_true")
    ap.add_argument("--no-mpi-train", action="store_true", help="skip (c), the 2-rank training")
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    if not os.access(DS, os.X_OK):
        raise SystemExit("scaling.py: build/deepsky is missing (cmake --build build)")
    ensure_allreduce_bench()
    n_l, n_r = a.images, a.images // 4
    d_l, d_r = make_data(n_l), make_data(n_r)
    jobs = [("lenet", "a", 64), ("lenet", "b", 64), ("lenet", "c", 64), ("lenet", "b", 16),
            ("resnet_small", "a", 128), ("resnet_small", "b", 128), ("resnet_small", "b", 32)]
    # a deepsky without MPI under mpirun would train twice, side by side, and look like (c)
    with_mpi = "libmpi" in subprocess.run(["ldd", DS], capture_output=True, text=True).stdout
    if a.no_mpi_train or not with_mpi:
        if not with_mpi:
            print("build/deepsky is not linked with MPI: (c) is skipped", flush=True)
        jobs.remove(("lenet", "c", 64))
    if not a.no_wait:
        wait_quiet(0.7, True)
    meas = {"machine": cpu_model(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load1_at_start": load1(), "rounds": a.rounds, "images": {"lenet": n_l, "resnet_small": n_r}}
    open(BUSY, "w").write(f"scaling.py pid {os.getpid()}\n")
    try:
        if not a.skip_allreduce:
            meas["allreduce_sm"] = allreduce("sm", [])
            meas["allreduce_tcp"] = allreduce("tcp", ["--mca", "btl", "self,tcp"])
        res = {j: [] for j in jobs}
        for rnd in range(a.rounds):
            if not a.no_wait:
                wait_quiet(0.7, False)  # our own runs keep the load up: only others' busy files count now
            for j in jobs:
                if res[j] and not res[j][-1]["ok"]:
                    continue
                data, n = (d_l, n_l) if j[0] == "lenet" else (d_r, n_r)
                r = run_job(j, data, n)
                res[j].append(r)
                print(f"round {rnd + 1} {j}: " + (f"{r['images_per_s']:.0f} img/s (load {r['load1']:.2f})" if r["ok"]
                                                   else f"failed: {r['error']}"), flush=True)
    finally:
        os.remove(BUSY)
    meas["load1_at_end"] = load1()
    runs = {}
    for j, rs in res.items():
        ok = [r for r in rs if r["ok"]]
        runs["-".join(map(str, j))] = {"runs": rs, "median_images_per_s": statistics.median(r["images_per_s"] for r in ok)
                                       if ok else None}
    meas["runs"] = runs

    def ips(model, kind, b):
        return runs.get(f"{model}-{kind}-{b}", {}).get("median_images_per_s")

    # per-step compute of a node (this machine, 2 threads): t(b) = t0 + ts·b from two batch sizes
    meas["models"] = {}
    for model, (b1, b2) in (("lenet", (16, 64)), ("resnet_small", (32, 128))):
        t1, t2 = b1 / ips(model, "b", b1), b2 / ips(model, "b", b2)
        ts = (t2 - t1) / (b2 - b1)
        meas["models"][model] = dict(MODELS[model], node_t0_s=t1 - ts * b1, node_ts_s=ts,
                                     step_s={str(b1): t1, str(b2): t2},
                                     step_1thread_s={str(b2): b2 / ips(model, "a", b2)})
    a64, b64, c64 = ips("lenet", "a", 64), ips("lenet", "b", 64), ips("lenet", "c", 64)
    if c64:
        meas["measured_2rank_efficiency"] = c64 / (2 * a64)
    meas["measured_2thread_efficiency"] = b64 / (2 * a64)
    json.dump(meas, open(os.path.join(OUT, "measured.json"), "w"), indent=1)

    print(f"\nmachine: {meas['machine']}; load {meas['load1_at_start']:.2f} at start, {meas['load1_at_end']:.2f} at end; "
          f"medians of {a.rounds} alternating runs; {meas['date']}")
    print("| LeNet, Fashion-MNIST, 1 epoch of %d images, global batch 64 | images/s | vs (a) |" % n_l)
    print("|---|---:|---:|")
    for label, v in (("(a) 1 process x 1 thread", a64), ("(b) 1 process x 2 threads", b64),
                     ("(c) 2 MPI ranks x 1 thread", c64)):
        print(f"| {label} | {v:.0f} | {v / a64:.2f}x |" if v else f"| {label} | not run | |")
    for model, f in meas["models"].items():
        print(f"{model}: step on 2 threads {', '.join(f'b={b}: {1e3 * s:.1f} ms' for b, s in f['step_s'].items())}; "
              f"t(b) = {1e3 * f['node_t0_s']:.2f} ms + {1e3 * f['node_ts_s']:.4f} ms x b")
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "scaling_model.py")], check=True)


if __name__ == "__main__":
    main()
