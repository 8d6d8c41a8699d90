#!/usr/bin/python3
"""Load test of `deepsky serve` on loopback (docs/serve.md): concurrent
clients POST one-sample NPY bodies over kept-alive connections while other
clients send malformed bodies; bounded by --requests and --seconds.
Prints requests/s, p50/p99 latency, errors, the server's RSS over the run,
the mean batch (samples per forward, from /health) and each bad case's
status and message. Exit 1 on any error, a bad case not answered 4xx, or
RSS growing more than --rss-growth MiB after the warm-up.

usage: bench/serve_load.py BUILD/deepsky [--clients 8] [--bad-clients 2]
       [--requests 4000] [--seconds 30] [--max-batch 32] [--samples 1]
"""
import argparse, os, signal, subprocess, sys, tempfile, threading, time
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import stamps
from serve_client import npy, fits, png, call
import http.client

CFG = """[net]
input=1,8,8
classes=3
[conv]
filters=8
size=3
pad=1
activation=relu
[maxpool]
size=2
[dense]
units=16
activation=relu
[dense]
units=3
[train]
optimizer=adam
lr=0.01
batch=32
epochs=2
seed=7
"""


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("deepsky")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--bad-clients", type=int, default=2)
    ap.add_argument("--requests", type=int, default=4000, help="good requests in all (the bound on count)")
    ap.add_argument("--seconds", type=float, default=30, help="the bound on time")
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--samples", type=int, default=1, help="samples per good request")
    ap.add_argument("--rss-growth", type=float, default=8, help="MiB allowed after the warm-up")
    a = ap.parse_args()
    t = tempfile.mkdtemp(prefix="serve_load.")
    rng = np.random.default_rng(0)
    x, y = stamps.make(rng, 600, 0.3, 2)
    np.save(f"{t}/x.npy", x)
    open(f"{t}/y.csv", "w").write("label\n" + "".join(["row\n", "column\n", "diagonal\n"][int(v)] for v in y))
    open(f"{t}/m.cfg", "w").write(CFG)
    subprocess.run([a.deepsky, "train", f"{t}/m.cfg", "--data", f"npy:{t}/x.npy,{t}/y.csv", "--out", f"{t}/run",
                    "--quiet"], check=True, stdout=subprocess.DEVNULL)
    srv = subprocess.Popen([a.deepsky, "serve", f"{t}/run/last.safetensors", "--port", "0", "--max-batch",
                            str(a.max_batch), "--max-body", "1", "--rate-limit", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = srv.stdout.readline()
    port = int(line.split("http://127.0.0.1:")[1].split()[0])
    vx, _ = stamps.make(rng, 256, 0.3, 2)
    bodies = [npy(vx[i:i + a.samples]) if a.samples > 1 else npy(vx[i]) for i in range(0, 256 - a.samples + 1)]
    img = np.zeros((8, 8)); img[3, :] = 255
    bad = [("empty body", b""), ("text", b"hello world"), ("truncated NPY", npy(vx[:4])[:200]),
           ("NPY of the wrong shape", npy(np.zeros((2, 1, 4, 4)))), ("NPY with a NaN", npy(np.full((1, 1, 8, 8), np.nan))),
           ("NPY header garbage", b"\x93NUMPY\x01\x00\x10\x00{'descr': 'zz'}\n" + b"\0" * 64),
           ("truncated FITS", fits(vx[0, 0])[:3000]), ("corrupt PNG", png(img)[:40]),
           ("body over --max-body", npy(np.zeros((5000, 1, 8, 8))))]

    lat, errors, lock = [], [], threading.Lock()
    left = [a.requests]
    stop_at = time.monotonic() + a.seconds
    bad_seen, bad_sent = {}, [0]

    def good_client(k):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i = k
        while time.monotonic() < stop_at:
            with lock:
                if left[0] <= 0:
                    break
                left[0] -= 1
            t0 = time.perf_counter()
            try:
                s, j = call(port, "POST", "/predict", bodies[i % len(bodies)], conn=conn)
                ok = s == 200 and len(j["scores"]) == a.samples
            except Exception as e:  # a dropped connection is an error too
                s, ok = repr(e), False
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            dt = time.perf_counter() - t0
            with lock:
                lat.append(dt)
                if not ok:
                    errors.append(s)
            i += a.clients

    running = [True]

    def bad_client(k):
        i = k
        while running[0]:
            name, body = bad[i % len(bad)]
            try:
                s, j = call(port, "POST", "/predict", body)
                msg = j.get("error") if isinstance(j, dict) else None
            except Exception as e:
                s, msg = repr(e), None
            with lock:
                bad_seen.setdefault(name, set()).add((s, msg))
                bad_sent[0] += 1
            i += 1

    rss = []

    def sampler():
        while running[0]:
            rss.append((time.monotonic(), rss_mib(srv.pid)))
            time.sleep(0.1)

    threads = [threading.Thread(target=good_client, args=(k,)) for k in range(a.clients)]
    extra = [threading.Thread(target=bad_client, args=(k,)) for k in range(a.bad_clients)]
    extra.append(threading.Thread(target=sampler))
    t0 = time.monotonic()
    for th in threads + extra:
        th.start()
    for th in threads:
        th.join()
    wall = time.monotonic() - t0
    running[0] = False
    for th in extra:
        th.join()
    _, health = call(port, "GET", "/health")
    srv.send_signal(signal.SIGTERM)
    rc = srv.wait(timeout=30)

    lat_ms = np.array(lat) * 1e3
    n = len(lat)
    warm = [r for tt, r in rss if tt - t0 > 0.1 * wall] or [r for _, r in rss]
    print(f"serve load: {a.clients} clients x one-sample NPY (+{a.bad_clients} sending bad bodies), "
          f"max batch {a.max_batch}, {os.cpu_count()} CPUs")
    print(f"requests  {n} in {wall:.2f} s: {n / wall:.0f} requests/s, errors {len(errors)}"
          + (f" ({errors[:3]})" if errors else ""))
    print(f"latency   p50 {np.percentile(lat_ms, 50):.2f} ms, p99 {np.percentile(lat_ms, 99):.2f} ms, "
          f"max {lat_ms.max():.2f} ms")
    print(f"batching  {health['samples']} samples in {health['forwards']} forwards: "
          f"{health['samples'] / max(1, health['forwards']):.2f} samples per forward")
    print(f"RSS       {len(rss)} samples: after warm-up {warm[0]:.1f} MiB -> end {warm[-1]:.1f} MiB, "
          f"max {max(r for _, r in rss):.1f} MiB")
    print("bad bodies (while the good clients ran):")
    bad_ok = True
    for name, _ in bad:
        seen = bad_seen.get(name, set())
        for s, msg in sorted(seen, key=str):
            print(f"  {name:24s} {s}  {msg}")
            bad_ok &= isinstance(s, int) and 400 <= s < 500 and bool(msg)
        bad_ok &= bool(seen)
    print(f"{bad_sent[0]} bad requests of {len(bad_seen)} kinds, each answered as above; SIGTERM: exit {rc}")
    growth = warm[-1] - warm[0]
    fine = not errors and bad_ok and rc == 0 and growth <= a.rss_growth
    print("PASS" if fine else f"FAIL (errors {len(errors)}, bad answered 4xx {bad_ok}, exit {rc}, RSS +{growth:.1f} MiB)")
    return 0 if fine else 1


if __name__ == "__main__":
    sys.exit(main())
