#!/usr/bin/python3
"""scaling_model.py — modelled efficiency of data-parallel training on N ranks
(docs/scaling.md): step time = compute + the exposed part of a ring allreduce
of the gradients, for weak scaling (per-rank batch fixed, as Horovod reports)
and strong scaling (global batch fixed, as deepsky's [train] batch means).

    /usr/bin/python3 bench/scaling_model.py [--measured build/scaling/measured.json]
        [--allreduce build/scaling/allreduce_tcp.json] [--svg docs/images/scaling-efficiency.svg]
        [--json build/scaling/model.json] [--speedup K]

Inputs are measured by bench/scaling.py (compute per step on this machine) and
build/allreduce_bench (α, β on loopback); the networks' α and bandwidth are
assumptions, stated in NETWORKS. Prints markdown tables; writes an SVG plot
(drawn here: no matplotlib on the machine, and an SVG is diffable text).

Model, per step, for N ranks:
  ring allreduce of n bytes:  c(n) = 2(N−1)·α + 2(N−1)/N · n / bandwidth   (0 at N = 1)
  compute of b samples:       t(b) = t0 + ts·b   (t0: the per-step cost that does not shrink
                              with b — optimizer update, per-layer overheads)
  no overlap (one blocking allreduce after backward, what deepsky does):
                              T = t(b) + c(bytes)
  overlap (PyTorch DDP: gradients in buckets, the first 1 MiB then 25 MiB each, in
  backward order; a bucket is reduced once backward has produced it, buckets one
  after another on the network; backward = 2/3 of compute and yields gradient bytes
  at an even rate):           T = t(b) + max(0, end of the last bucket's reduction − backward)
  weak:   b = b0 per rank,    E(N) = t(b0) / T
  strong: b = B / N,          E(N) = t(B) / (N·T)
"""
import argparse
import json
import math
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NS = [1, 2, 4, 8, 16, 32, 64]
BUCKET_FIRST, BUCKET = 1 << 20, 25 << 20  # torch/csrc/distributed/c10d/reducer.hpp's defaults
BACKWARD = 2 / 3  # share of a step's compute that is backward (forward ≈ 1/3: dW and dX each cost about a forward)

# Networks: α per message (one ring step) and the bandwidth a TCP stream reaches; assumptions:
# - 10 GbE: 1.1 GB/s of the 1.25 GB/s line rate (TCP/IP headers, ~90 %); α 20 µs: MPI over kernel TCP
#   through one switch is typically 10–30 µs for small messages; our measured loopback TCP floor
#   (no NIC, no wire) is the software part of it.
# - 100 GbE: 5 GB/s, not 12.5: one kernel TCP stream per peer rarely passes ~40 Gb/s (the copies and
#   checksums of the stack are CPU-bound; our loopback TCP reaches ~2 GB/s on this VM's cores);
#   RDMA (RoCE through UCX) would reach the line rate; α 10 µs.
# - 25 Gb/s RoCE (the Horovod anchor only): 2.9 GB/s, α 5 µs (RDMA, no kernel stack).
NETWORKS = {
    "10GbE": {"alpha": 20e-6, "bw": 1.1e9, "label": "10 GbE TCP"},
    "100GbE": {"alpha": 10e-6, "bw": 5e9, "label": "100 GbE TCP"},
}
ROCE25 = {"alpha": 5e-6, "bw": 2.9e9, "label": "25 Gb/s RoCE"}

RESNET50_PARAMS = 25.6e6
RESNET50_FWD_FLOP = 8.2e9    # 4.1 G multiply-adds per 224x224 image, 2 FLOP each (deepsky counts 2)
RESNET101_PARAMS = 44.5e6
RESNET101_FWD_FLOP = 15.6e9  # 7.8 G multiply-adds
# Horovod's benchmarks page: ResNet-101, batch 64 per GPU, 16 Pascal GPUs: "total images/sec: 1656.82"
HOROVOD_R101_PER_GPU = 1656.82 / 16
HOROVOD = (128, 0.90)  # Horovod's README: ~90 % for ResNet-101 and Inception V3 on 128 GPUs (weak)


def allreduce(n, N, net):
    if N == 1:
        return 0.0
    return 2 * (N - 1) * net["alpha"] + 2 * (N - 1) / N * n / net["bw"]


def buckets(nbytes):
    out, left, cap = [], nbytes, BUCKET_FIRST
    while left > 0:
        out.append(min(cap, left))
        left -= out[-1]
        cap = BUCKET
    return out


def exposed(nbytes, N, net, backward, overlap):
    """seconds of the allreduce that the step waits for after its compute"""
    if N == 1:
        return 0.0
    if not overlap:
        return allreduce(nbytes, N, net)
    end, done = 0.0, 0
    for b in buckets(nbytes):
        done += b
        ready = backward * done / nbytes
        end = max(end, ready) + allreduce(b, N, net)
    return max(0.0, end - backward)


def compute(m, b):
    return m["t0"] + m["ts"] * b


def efficiency(m, N, net, overlap, mode, speedup=1.0):
    """E(N) for model m; speedup divides compute (a node K times faster than measured)"""
    b = m["b0"] if mode == "weak" else m["B"] / N
    tc = compute(m, b) / speedup
    T = tc + exposed(m["bytes"], N, net, BACKWARD * tc, overlap)
    if mode == "weak":
        return (compute(m, m["b0"]) / speedup) / T
    return (compute(m, m["B"]) / speedup) / (N * T)


def models(meas):
    """the modelled networks from measured.json's per-step fits (node = this 2-core machine)"""
    out = []
    for key, label, color in (("lenet", "LeNet (0.45 M params)", "#1f77b4"),
                              ("resnet_small", "resnet-small (0.17 M)", "#2ca02c")):
        f = meas["models"][key]
        out.append({"key": key, "label": label, "color": color, "bytes": 4 * f["params"],
                    "t0": max(0.0, f["node_t0_s"]), "ts": f["node_ts_s"], "b0": f["batch"], "B": 512})
    # ResNet-50-sized on a node like this one: resnet-small's measured FLOP rate and per-parameter step cost
    rs = next(m for m in out if m["key"] == "resnet_small")
    f = meas["models"]["resnet_small"]
    out.append({"key": "resnet50_cpu", "label": "ResNet-50-sized (25.6 M), CPU node (extrapolated)",
                "color": "#ff7f0e", "bytes": 4 * RESNET50_PARAMS,
                "t0": rs["t0"] * RESNET50_PARAMS / f["params"],
                "ts": rs["ts"] * RESNET50_FWD_FLOP / f["fwd_flop"], "b0": 64, "B": 512})
    # on a Pascal GPU: Horovod's measured ResNet-101 rate scaled by the FLOP ratio (assumed), no fixed cost
    gpu_rate = HOROVOD_R101_PER_GPU * RESNET101_FWD_FLOP / RESNET50_FWD_FLOP
    out.append({"key": "resnet50_gpu", "label": f"ResNet-50-sized, Pascal GPU ({gpu_rate:.0f} img/s, assumed)",
                "color": "#d62728", "bytes": 4 * RESNET50_PARAMS, "t0": 0.0, "ts": 1 / gpu_rate, "b0": 64, "B": 512})
    return out


def horovod_anchor():
    m = {"bytes": 4 * RESNET101_PARAMS, "t0": 0.0, "ts": 1 / HOROVOD_R101_PER_GPU, "b0": 64, "B": 64}
    return {ov: efficiency(m, HOROVOD[0], ROCE25, ov, "weak") for ov in (False, True)}


# ---------------------------------------------------------------- SVG


def svg_plot(ms, curves, measured_pt, path):
    W, H, PW, PH, L, T = 1180, 620, 470, 400, 70, 50
    xs = [0, 1, 2, 3, 4, 5, 6, 7]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="DejaVu Sans, Arial, sans-serif" font-size="13">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    dash = {"100GbE": "", "10GbE": "7,4"}
    for p, mode in enumerate(("weak", "strong")):
        x0 = L + p * (PW + 110)

        def X(n):
            return x0 + PW * math.log2(n) / 7

        def Y(e):
            return T + PH * (1.05 - e) / 1.05

        title = ("weak scaling: per-rank batch fixed (64; resnet-small 128)" if mode == "weak"
                 else "strong scaling: global batch fixed (512)")
        out.append(f'<text x="{x0 + PW / 2}" y="{T - 18}" text-anchor="middle" font-size="15">{title}</text>')
        out.append(f'<rect x="{x0}" y="{T}" width="{PW}" height="{PH}" fill="none" stroke="#444"/>')
        for e in (0, 0.2, 0.4, 0.6, 0.8, 1.0):
            out.append(f'<line x1="{x0}" x2="{x0 + PW}" y1="{Y(e):.1f}" y2="{Y(e):.1f}" stroke="#ddd"/>')
            out.append(f'<text x="{x0 - 8}" y="{Y(e) + 4:.1f}" text-anchor="end">{e:.1f}</text>')
        for k in xs:
            out.append(f'<line x1="{X(2 ** k):.1f}" x2="{X(2 ** k):.1f}" y1="{T}" y2="{T + PH}" stroke="#eee"/>')
            out.append(f'<text x="{X(2 ** k):.1f}" y="{T + PH + 18}" text-anchor="middle">{2 ** k}</text>')
        out.append(f'<text x="{x0 + PW / 2}" y="{T + PH + 40}" text-anchor="middle">ranks N (log2)</text>')
        out.append(f'<text x="{x0 - 45}" y="{T + PH / 2}" text-anchor="middle" '
                   f'transform="rotate(-90 {x0 - 45} {T + PH / 2})">efficiency</text>')
        for (mode_c, key, net, ov), pts in curves.items():
            if mode_c != mode:
                continue
            m = next(mm for mm in ms if mm["key"] == key)
            d = " ".join(f"{X(n):.1f},{Y(max(0, e)):.1f}" for n, e in pts)
            da = f' stroke-dasharray="{dash[net]}"' if dash[net] else ""
            out.append(f'<polyline points="{d}" fill="none" stroke="{m["color"]}" stroke-width="{2.2 if ov else 1.2}"'
                       f'{da} opacity="{1 if ov else 0.75}"/>')
            for n, e in pts:
                fill = m["color"] if ov else "white"
                out.append(f'<circle cx="{X(n):.1f}" cy="{Y(max(0, e)):.1f}" r="3" fill="{fill}" stroke="{m["color"]}"/>')
        if mode == "weak":
            hx, hy = X(HOROVOD[0]), Y(HOROVOD[1])
            out.append(f'<rect x="{hx - 5}" y="{hy - 5}" width="10" height="10" fill="black"/>')
            ty = Y(0.735)
            out.append(f'<line x1="{hx}" y1="{hy}" x2="{hx - 8}" y2="{ty - 10}" stroke="black"/>')
            out.append(f'<text x="{hx - 10}" y="{ty}" text-anchor="end" font-size="12">Horovod, ResNet-101,</text>')
            out.append(f'<text x="{hx - 10}" y="{ty + 14}" text-anchor="end" font-size="12">128 GPUs: 90 %</text>')
        if mode == "strong" and measured_pt:
            n, e, e2 = measured_pt
            mx, my = X(n), Y(e)
            out.append(f'<path d="M{mx - 7},{my} L{mx},{my - 7} L{mx + 7},{my} L{mx},{my + 7} Z" fill="black"/>')
            for i, line in enumerate(("measured on this 2-core VM: LeNet,", f"2 ranks x 1 thread vs 1 x 1: {e:.2f}",
                                      f"(1 process x 2 threads: {e2:.2f});", "the cores' own scaling, not the network")):
                out.append(f'<text x="{x0 + 12}" y="{Y(0.40) + 14 * i}" font-size="12">{line}</text>')
            out.append(f'<line x1="{mx}" y1="{my + 7}" x2="{mx - 20}" y2="{Y(0.40) - 14}" stroke="black"/>')
    # legend
    ly = T + PH + 62
    lx = L
    for i, m in enumerate(ms):
        x = lx + (i % 2) * 560
        y = ly + (i // 2) * 20
        out.append(f'<line x1="{x}" x2="{x + 30}" y1="{y - 4}" y2="{y - 4}" stroke="{m["color"]}" stroke-width="3"/>')
        out.append(f'<text x="{x + 38}" y="{y}">{m["label"]}</text>')
    y = ly + 2 * 20 + 6
    out.append(f'<line x1="{lx}" x2="{lx + 30}" y1="{y - 4}" y2="{y - 4}" stroke="#444" stroke-width="2"/>')
    out.append(f'<text x="{lx + 38}" y="{y}">100 GbE TCP</text>')
    out.append(f'<line x1="{lx + 160}" x2="{lx + 190}" y1="{y - 4}" y2="{y - 4}" stroke="#444" stroke-width="2" '
               'stroke-dasharray="7,4"/>')
    out.append(f'<text x="{lx + 198}" y="{y}">10 GbE TCP</text>')
    out.append(f'<circle cx="{lx + 320}" cy="{y - 4}" r="3.5" fill="#444"/>')
    out.append(f'<text x="{lx + 330}" y="{y}">thick, filled: overlapped with backward (DDP buckets)</text>')
    out.append(f'<circle cx="{lx + 700}" cy="{y - 4}" r="3.5" fill="white" stroke="#444"/>')
    out.append(f'<text x="{lx + 710}" y="{y}">thin, open: one blocking allreduce after backward</text>')
    out.append("</svg>")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--measured", default=os.path.join(ROOT, "build", "scaling", "measured.json"))
    ap.add_argument("--allreduce", default=os.path.join(ROOT, "build", "scaling", "allreduce_tcp.json"))
    ap.add_argument("--svg", default=os.path.join(ROOT, "docs", "images", "scaling-efficiency.svg"))
    ap.add_argument("--json", default=os.path.join(ROOT, "build", "scaling", "model.json"))
    ap.add_argument("--speedup", type=float, default=16.0,
                    help="the extra table: nodes this many times faster than this machine")
    a = ap.parse_args()
    if not os.path.exists(a.measured):
        raise SystemExit(f"scaling_model.py: no {a.measured}: run bench/scaling.py first (it measures compute per step)")
    meas = json.load(open(a.measured))
    nets = dict(NETWORKS)
    if os.path.exists(a.allreduce):
        ar = json.load(open(a.allreduce))
        # loopback TCP: α per ring step and the per-byte cost of large messages, both measured
        # loopback TCP: α per ring step and β of the fit (messages that stay in the caches), both measured
        nets["loopTCP"] = {"alpha": ar["alpha_step_s"], "bw": 1 / ar["beta_link_s_per_byte"],
                           "label": "loopback TCP (measured)"}
    ms = models(meas)
    curves, table = {}, []
    for mode in ("weak", "strong"):
        for m in ms:
            for net in nets:
                for ov in (False, True):
                    pts = [(n, efficiency(m, n, nets[net], ov, mode)) for n in NS + ([128] if mode == "weak" else [])]
                    if net in NETWORKS:
                        curves[(mode, m["key"], net, ov)] = pts
                    table.append({"mode": mode, "model": m["key"], "network": net, "overlap": ov,
                                  "efficiency": {str(n): round(e, 4) for n, e in pts}})
    pt = None
    mm = meas.get("measured_2rank_efficiency")
    if mm:
        pt = (2, mm, meas.get("measured_2thread_efficiency", float("nan")))
    os.makedirs(os.path.dirname(a.svg), exist_ok=True)
    svg_plot(ms, curves, pt, a.svg)
    hv = horovod_anchor()
    fast = []
    for m in ms[:3]:
        for net in NETWORKS:
            for ov in (False, True):
                fast.append({"model": m["key"], "network": net, "overlap": ov,
                             "efficiency": {str(n): round(efficiency(m, n, NETWORKS[net], ov, "weak", a.speedup), 4)
                                            for n in NS}})
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump({"networks": nets, "models": ms, "curves": table, "horovod_r101_128": hv,
                   "speedup": a.speedup, "fast_nodes_weak": fast}, f, indent=1)

    show = [8, 16, 64]
    print("| model | network | overlap | " + " | ".join(f"weak N={n}" for n in show) + " | "
          + " | ".join(f"strong N={n}" for n in show) + " |")
    print("|---|---|---|" + "---:|" * (2 * len(show)))
    lab = {m["key"]: m["label"] for m in ms}
    eff = {(r["mode"], r["model"], r["network"], r["overlap"]): r["efficiency"] for r in table}
    for m in ms:
        for net in nets:
            for ov in (False, True):
                cells = [f"{100 * eff[(mode, m['key'], net, ov)][str(n)]:.0f} %" for mode in ("weak", "strong") for n in show]
                print(f"| {lab[m['key']]} | {nets[net]['label']} | {'yes' if ov else 'no'} | " + " | ".join(cells) + " |")
    print()
    print(f"weak scaling on nodes {a.speedup:g}x faster than this machine (compute / {a.speedup:g}):")
    print("| model | network | overlap | " + " | ".join(f"N={n}" for n in NS) + " |")
    print("|---|---|---|" + "---:|" * len(NS))
    for r in fast:
        print(f"| {lab[r['model']]} | {NETWORKS[r['network']]['label']} | {'yes' if r['overlap'] else 'no'} | "
              + " | ".join(f"{100 * r['efficiency'][str(n)]:.0f} %" for n in NS) + " |")
    print()
    print(f"Horovod anchor: ResNet-101 ({RESNET101_PARAMS / 1e6:.1f} M params), {HOROVOD_R101_PER_GPU:.1f} img/s "
          f"per GPU at batch 64, 128 GPUs, {ROCE25['label']}: modelled {100 * hv[False]:.1f} % without overlap, "
          f"{100 * hv[True]:.1f} % with; Horovod reports ~90 %")
    for m in ms:
        print(f"{m['key']}: gradients {m['bytes'] / 1e6:.2f} MB in {len(buckets(m['bytes']))} DDP buckets; "
              f"compute t0 = {1e3 * m['t0']:.2f} ms + {1e3 * m['ts']:.4f} ms/sample "
              f"(step at b0 = {m['b0']}: {1e3 * compute(m, m['b0']):.1f} ms)")


if __name__ == "__main__":
    main()
