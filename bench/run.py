#!/usr/bin/env python3
"""Side-by-side benchmark: each workload in deepsky (build/ds_bench or
build/deepsky) and in PyTorch (bench/torch_bench.py, bench/gan_torch.py),
alternating, REPS times, in one run; prints a table of medians with the
ratio, each side's GFLOP/s and its share of the machine's measured fp32 FMA
peak, and, when every workload ran (or with --md), writes bench/RESULTS.md.

  /usr/bin/python3 bench/run.py [REPS] [WORKLOAD...] [--md PATH]

Before the workloads (docs: bench/RESULTS.md's header):
- PyTorch's BLAS: libblas.so.3 as the torch process resolved it, OpenBLAS's
  core name (openblas_get_corename) and torch.__config__'s BLAS line. When
  the core is below what the CPU's flags support (Debian's OpenBLAS 0.3.21
  takes this Xeon for a Prescott: SSE3), PyTorch runs with
  OPENBLAS_CORETYPE set to the best kernel the flags allow that reports its
  name and is not slower in an sgemm check; an OPENBLAS_CORETYPE already in
  the environment is kept.
- libgomp's wait policy for PyTorch's OpenMP threads: the default (spin,
  then sleep) or OMP_WAIT_POLICY=PASSIVE, whichever trains LeNet faster
  here (on a shared, loaded machine spinning threads lose their slices);
  an OMP_WAIT_POLICY in the environment is kept.
- the FMA peak: `ds_bench peak` (AVX-512 FMA chains on deepsky's threads),
  at the start and at the end; the higher is the peak.

FLOPs per image are `deepsky info`'s forward count per sample (2 per
multiply-add; 1 to 3 per element of the other ops), the same for both sides:
training 3x forward, fgsm_train 8x (the attack's forward and input gradient,
then clean and adversarial training passes), pgd10_eval 21x (10 forward and
input-gradient steps, one judging forward), dcgan_epoch 3 G + 9 D per real
image (D forward and backward on the real and the fake batch and again in
G's step, G forward and backward), rbm 5 GEMMs of 100x784x500 per batch.

pgd10_eval attacks a LeNet trained for one epoch by build/deepsky (made once,
build/bench-lenet/last.safetensors), whose weights both sides load;
wide_deep trains on 4,096 stamps of `deepsky simulate --seed 1` (made once,
build/bench-data/alerts4096), without augmentation on both sides.
"""
import csv
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
DS, DEEPSKY = os.path.join(BUILD, "ds_bench"), os.path.join(BUILD, "deepsky")
DATA = os.path.join(BUILD, "bench-data")
ALL = ["softmax", "mlp", "lenet64", "lenet256", "resnet128", "infer1000", "infer1", "conv", "rbm",
       "fgsm_train", "pgd10_eval", "dcgan_epoch", "wide_deep", "mpi2"]
# bounded sizes (a 3-run comparison of everything in ~15 minutes): fgsm_train batches of 64, pgd10_eval
# batches of 1000 test images (2,000; `ds_bench pgd10_eval models 10` and `torch_bench.py pgd10_eval 10`
# attack all 10,000), the DCGAN's first 6,400 training images (50 batches of 128), wide & deep 4,096 stamps
# (64 batches of 64), mpi2 the first 12,800 training images (200 global batches of 64)
BATCHES = {"fgsm_train": 60, "pgd10_eval": 2}
GAN_IMAGES, WD_STAMPS, MPI_IMAGES = 6400, 4096, 12800
CKPT = os.path.join(BUILD, "bench-lenet", "last.safetensors")
WHAT = {"softmax": "softmax regression training, batch 64", "mlp": "MLP training, batch 64",
        "lenet64": "LeNet training, batch 64", "lenet256": "LeNet training, batch 256",
        "resnet128": "ResNet-small training, batch 128", "infer1000": "LeNet inference, batch 1000",
        "infer1": "LeNet inference, batch 1 latency", "conv": "conv forward (LeNet conv2, batch 64)",
        "rbm": "RBM 784->500 CD-1 epoch", "fgsm_train": "FGSM adversarial training (LeNet, batch 64)",
        "pgd10_eval": "PGD-10 evaluation (LeNet, batch 1000)",
        "dcgan_epoch": f"DCGAN epoch ({GAN_IMAGES} images, batch 128)",
        "wide_deep": f"wide & deep epoch ({WD_STAMPS} stamps, batch 64)",
        "mpi2": f"2-rank epoch (LeNet, {MPI_IMAGES} images, global batch 64)"}
UNIT = {"images_per_s": "images/s", "median_ms": "ms (median)", "epoch_s": "s", "gflops": "GFLOP/s"}
LOAD = []  # the 1-minute load average when the runs began (the machine is shared)
MD = os.path.join(ROOT, "bench", "RESULTS.md")
EARLIER = "## Earlier runs: against a crippled baseline"


def metric(w):
    return "gflops" if w == "conv" else "median_ms" if w == "infer1" else "epoch_s" if w == "rbm" else "images_per_s"


def run(cmd, env):
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed ({out.returncode}): {(out.stderr or out.stdout).strip()[-600:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_rss(cmd, env):
    """Runs a command to the end; the peak RSS (MB) of its largest process (wait4 counts descendants)."""
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed ({p.returncode}): {out.strip()[-600:]}")
    return ru.ru_maxrss / 1024


def epoch_row(path):
    """The last row of a metrics.csv (comment lines skipped) as a dict."""
    rows = list(csv.reader(ln for ln in open(path) if not ln.startswith("#")))
    return dict(zip(rows[0], rows[-1]))


def cpu_flags():
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_name():
    name, flags = platform.processor(), cpu_flags()
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            name = line.split(":", 1)[1].strip()
            break
    isa = "AVX-512" if "avx512f" in flags else "AVX2+FMA" if "avx2" in flags else "SSE"
    return f"{name} ({isa})"


# ---- PyTorch's BLAS and kernel ------------------------------------------------------------------

PROBE = r"""
import ctypes, json, os, time, torch
torch.set_num_threads(1)
a, b = torch.rand(512, 512), torch.rand(512, 512)
a @ b
t0, n = time.perf_counter(), 0
while time.perf_counter() - t0 < 0.5:
    a @ b
    n += 1
gflops = 2 * 512 ** 3 * n / (time.perf_counter() - t0) / 1e9
libs = sorted({l.split()[-1] for l in open('/proc/self/maps') if 'blas' in l and '.so' in l})
core = config = ''
for p in libs:
    try:
        lib = ctypes.CDLL(p)
        lib.openblas_get_corename.restype = lib.openblas_get_config.restype = ctypes.c_char_p
        core, config = lib.openblas_get_corename().decode(), lib.openblas_get_config().decode()
        break
    except (OSError, AttributeError):
        pass
import re
show = torch.__config__.show()
info = re.findall(r'(?:BLAS_INFO|LAPACK_INFO)=[^,\s]+', show) + re.findall(r'CPU capability usage: \S+', show)
print(json.dumps({'libs': [os.path.realpath(p) for p in libs], 'core': core, 'config': config,
                  'torch_config': ', '.join(info), 'sgemm_gflops': round(gflops, 1),
                  'torch': torch.__version__}))
"""

AVX512_CORES = {"skylakex", "cooperlake", "sapphirerapids"}
AVX2_CORES = {"haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"}


def torch_blas(env):
    """The BLAS libraries a torch process has loaded (libblas.so.3 resolved), after a matmul."""
    return " ".join(blas_probe(env)["libs"])


def blas_probe(env):
    return json.loads(subprocess.run(["/usr/bin/python3", "-c", PROBE], env=env, capture_output=True, text=True,
                                     check=True).stdout.strip().splitlines()[-1])


def choose_blas(env):
    """PyTorch's BLAS as found, and the OPENBLAS_CORETYPE it runs with (env, a copy of the
    environment, is updated; one already there is kept)."""
    det = blas_probe(env)
    blas = {"detected": det, "used": det, "why": "as detected"}
    if not any("openblas" in p for p in det["libs"]):
        return blas
    if env.get("OPENBLAS_CORETYPE"):
        blas["why"] = f"OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']} set in the environment: kept"
        return blas
    flags, core = cpu_flags(), det["core"].lower()
    want = (["SkylakeX"] if "avx512f" in flags else []) + (["Haswell"] if {"avx2", "fma"} <= flags else [])
    if not want or (want[0] == "SkylakeX" and core in AVX512_CORES) or (want[0] == "Haswell" and core in AVX2_CORES):
        return blas
    for c in want:
        try:
            got = blas_probe(dict(env, OPENBLAS_CORETYPE=c))
        except subprocess.CalledProcessError:
            continue
        if got["core"].lower() == c.lower() and got["sgemm_gflops"] >= 0.9 * det["sgemm_gflops"]:
            env["OPENBLAS_CORETYPE"] = c
            blas.update(used=got, why=f"OPENBLAS_CORETYPE={c} (the CPU has {'avx512f' if c == 'SkylakeX' else 'avx2, fma'})")
            return blas
    blas["why"] = f"no better kernel worked ({', '.join(want)} tried)"
    return blas


def choose_wait_policy(env):
    """libgomp's default or PASSIVE for PyTorch's threads: the faster LeNet step (2 runs each, alternating)."""
    if env.get("OMP_WAIT_POLICY"):
        return f"OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']} set in the environment: kept"
    got = {"default": [], "PASSIVE": []}
    for _ in range(2):
        for k in got:
            e = dict(env, OMP_WAIT_POLICY="PASSIVE") if k == "PASSIVE" else env
            got[k].append(run(["/usr/bin/python3", "bench/torch_bench.py", "lenet64", "20"], e)["images_per_s"])
    d, p = statistics.median(got["default"]), statistics.median(got["PASSIVE"])
    if p > d:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return (f"OMP_WAIT_POLICY={'PASSIVE' if p > d else 'unset (libgomp default)'}: LeNet bs 64 {d:.0f} img/s "
            f"with libgomp's default, {p:.0f} with PASSIVE (medians of 2)")


def fma_peak():
    return run([DS, "peak"], dict(os.environ))


# ---- FLOPs ---------------------------------------------------------------------------------------

def info_flops(cfg):
    """{name: forward FLOPs per sample} from `deepsky info` (name 'total', or generator/discriminator)."""
    out = subprocess.run([DEEPSKY, "info", cfg], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    scale = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    return {m.group(1): float(m.group(2)) * scale[m.group(3)]
            for m in re.finditer(r"^(\w+): .*?([\d.]+) ?([KMGT]?) FLOPs per sample", out, re.M)}


def flops_per_unit():
    """FLOPs of one image (one epoch for rbm, none for conv: it reports GFLOP/s itself)."""
    f = {m: info_flops(f"models/{m}.cfg")["total"] for m in ("softmax", "mlp", "lenet", "resnet-small")}
    gan = info_flops("models/dcgan-fashion.cfg")
    wd = info_flops("models/alerts-wide-deep.cfg")["total"]
    lenet = f["lenet"]
    return {"softmax": 3 * f["softmax"], "mlp": 3 * f["mlp"], "lenet64": 3 * lenet, "lenet256": 3 * lenet,
            "resnet128": 3 * f["resnet-small"], "infer1000": lenet, "infer1": lenet,
            "rbm": 600 * 5 * 2 * 100 * 784 * 500, "fgsm_train": 8 * lenet, "pgd10_eval": 21 * lenet,
            "dcgan_epoch": 3 * gan["generator"] + 9 * gan["discriminator"], "wide_deep": 3 * wd, "mpi2": 3 * lenet}


def gflops(w, r, fl):
    if w == "conv":
        return r["gflops"]
    if w == "infer1":
        return fl[w] / (r["median_ms"] / 1e3) / 1e9
    if w == "rbm":
        return fl[w] / r["epoch_s"] / 1e9
    return fl[w] * r["images_per_s"] / 1e9


# ---- the workloads that run through the CLI ------------------------------------------------------

def checkpoint():
    """The trained LeNet that pgd10_eval attacks on both sides (an attack on
    random weights would measure nothing): one epoch, made once."""
    if not os.path.exists(CKPT):
        subprocess.run([DEEPSKY, "train", "models/lenet.cfg", "--data", "fashion-mnist:train", "--epochs", "1",
                        "--out", os.path.dirname(CKPT), "--quiet"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def alerts():
    """wide_deep's stamps and a copy of its model file without augmentation (made once)."""
    d = os.path.join(DATA, f"alerts{WD_STAMPS}")
    if not os.path.exists(os.path.join(d, "meta.csv")):
        subprocess.run([DEEPSKY, "simulate", "--out", d, "--n", str(WD_STAMPS), "--seed", "1"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    cfg = os.path.join(DATA, "alerts-wide-deep-noaug.cfg")
    with open(cfg, "w") as f:
        f.writelines(ln for ln in open(os.path.join(ROOT, "models", "alerts-wide-deep.cfg"))
                     if not ln.startswith("augment"))
    return d, cfg


def fmnist_npy(n):
    """The first n Fashion-MNIST training images as NPY (x in [0, 1], y), for mpi2's deepsky side."""
    d = os.path.join(DATA, f"fmnist{n}")
    x, y = os.path.join(d, "x.npy"), os.path.join(d, "y.npy")
    if not os.path.exists(y):
        import numpy as np
        sys.path.insert(0, os.path.join(ROOT, "bench"))
        import fashion_npy
        src = os.environ.get("DS_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")
        os.makedirs(d, exist_ok=True)
        np.save(x, (fashion_npy.read_idx(os.path.join(src, "train-images-idx3-ubyte.gz"))[:n]
                    .astype(np.float32) / 255)[:, None])
        np.save(y, fashion_npy.read_idx(os.path.join(src, "train-labels-idx1-ubyte.gz"))[:n].astype(np.float32))
    return x, y


def ds_side(w, rep):
    env = dict(os.environ)
    if w in ("dcgan_epoch", "wide_deep", "mpi2"):
        out = os.path.join(DATA, "runs", f"ds-{w}")
        shutil.rmtree(out, ignore_errors=True)
        if w == "dcgan_epoch":
            cmd = [DEEPSKY, "gan", "models/dcgan-fashion.cfg", "--data", "fashion-mnist", "--epochs", "1",
                   "--limit", str(GAN_IMAGES), "--seed", str(rep + 1), "--out", out, "--quiet"]
        elif w == "wide_deep":
            d, cfg = alerts()
            cmd = [DEEPSKY, "train", cfg, "--data", f"npy:{d}/x.npy,{d}/y.npy", "--data",
                   f"meta=csv:{d}/meta.csv,id=index", "--epochs", "1", "--seed", str(rep + 1), "--out", out, "--quiet"]
        else:
            x, y = fmnist_npy(MPI_IMAGES)
            cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", "-x", "DS_NUM_THREADS=1", DEEPSKY,
                   "train", "models/lenet.cfg", "--data", f"npy:{x},{y}", "--epochs", "1", "--batch", "64",
                   "--seed", str(rep + 1), "--out", out, "--quiet"]
        rss = run_rss(cmd, env)
        row = epoch_row(os.path.join(out, "metrics.csv"))
        if w == "dcgan_epoch":
            ips = float(row["images_per_s"])
        else:
            ips = (WD_STAMPS if w == "wide_deep" else MPI_IMAGES) / float(row["seconds"])
        return {"images_per_s": ips, "peak_rss_mb": rss}
    arg = [str(rep + 1)] if w == "rbm" else [str(BATCHES[w])] if w in BATCHES else []
    if w == "pgd10_eval":
        env["DS_BENCH_CKPT"] = CKPT
    return run([DS, w, "models"] + arg, env)


def torch_side(w, rep, env):
    if w == "dcgan_epoch":
        out = os.path.join(DATA, "runs", "torch-dcgan")
        rss = run_rss(["/usr/bin/python3", "bench/gan_torch.py", "--epochs", "1", "--limit", str(GAN_IMAGES),
                       "--seed", str(rep + 1), "--threads", "2", "--n-samples", "0", "--out", out], env)
        return {"images_per_s": float(epoch_row(os.path.join(out, "metrics.csv"))["images_per_s"]), "peak_rss_mb": rss}
    arg = ([str(rep + 1)] if w == "rbm" else [str(BATCHES[w])] if w in BATCHES else
           [alerts()[0]] if w == "wide_deep" else [str(MPI_IMAGES)] if w == "mpi2" else [])
    e = dict(env, DS_BENCH_CKPT=CKPT) if w == "pgd10_eval" else env
    return run(["/usr/bin/python3", "bench/torch_bench.py", w] + arg, e)


# ---- the tables ----------------------------------------------------------------------------------

# the issue's "done when" (issue 18): workload -> least deepsky advantage; lenet64 also by share of peak
TARGETS = {"softmax": 3.0, "resnet128": 1.5, "rbm": 3.0, "infer1": 2.0}
RBM_ERR = {}  # side -> reconstruction errors, one per seed


def x(v, want, lower=False):
    """A ratio to 2 digits; to 4 where 2 would round it onto a target it misses (lower: the target is a most)."""
    miss = v > want if lower else v < want
    return f"{v:.4f}x" if miss and round(v, 2) == round(want, 2) else f"{v:.2f}x"


def targets(rows, peak):
    out = ["", "| target (issue 18) | measured | |", "|---|---|---|"]
    for r in rows:
        w, ratio = r["w"], r["ratio"]
        if w == "lenet64":
            share = r["ds_gf"] / peak
            ok = share >= 0.85 or ratio >= 1.5
            out.append(f"| lenet64: LeNet training >= 85 % of the FMA peak or >= 1.5x PyTorch | {100 * share:.0f} % "
                       f"of peak, {x(ratio, 1.5)} | {'met' if ok else '**not met**'} |")
            continue
        want = TARGETS.get(w, 1.5)
        what = (f"{w}: latency <= {1 / want:.2f}x PyTorch's" if w == "infer1" else
                f"{w}: one epoch >= {want:g}x faster than PyTorch" if w == "rbm" else f"{w}: >= {want:g}x PyTorch")
        got = x(1 / ratio, 1 / want, lower=True) if w == "infer1" else x(ratio, want)
        out.append(f"| {what} | {got} | {'met' if ratio >= want else '**not met**'} |")
    by = {r["w"]: r for r in rows}
    if "lenet64" in by:
        q = by["lenet64"]["rss_ds"] / by["lenet64"]["rss_t"]
        out.append(f"| lenet64 (issue 4): peak RSS <= 0.5x PyTorch's | {q:.2f}x | {'met' if q <= 0.5 else '**not met**'} |")
    if RBM_ERR:
        ea, eb = statistics.mean(RBM_ERR["ds"]), statistics.mean(RBM_ERR["torch"])
        out.append(f"| rbm (issue 5): reconstruction error <= PyTorch's (mean over seeds 1..{len(RBM_ERR['ds'])}) "
                   f"| {ea:.3f} vs {eb:.3f} | {'met' if ea <= eb else '**not met**'} |")
    return "\n".join(out) + "\n"


DECISIONS = """
How the kernels were chosen (docs/design.md has the details):
- im2col + OpenBLAS: Debian 12's OpenBLAS ran its Prescott (SSE3) kernel on
  this Xeon unless told otherwise (OPENBLAS_CORETYPE), so deepsky has its own
  blocked SGEMM; im2col around it is the first row. The sgemm row is
  OpenBLAS with the kernel PyTorch used (the header).
- Implicit im2col (GEMM panels packed straight from the image) and the
  shifted products (pixels in the vector lanes, read in place under masks)
  are the two direct forms with the pixels in the lanes.
- ocv puts 16 output channels in each vector lane group and broadcasts the
  input pixels from a padded copy (the default for 5x5 layers).
- oneDNN was not linked: PyTorch's row above is oneDNN's AVX-512 direct
  convolution on the same machine, the figure to beat.
"""


def kernels(reps, env_t):
    """LeNet's conv2 forward (batch 64) by each of deepsky's convolution
    algorithms, PyTorch's (oneDNN) and one OpenBLAS sgemm of the same size,
    alternating: the numbers behind the choice of kernels."""
    algos = [("im2col + own sgemm", "im2col"), ("implicit im2col (packs from the image)", "implicit"),
             ("shifted products (pixels in the lanes, masked loads)", "shifted"),
             ("default: the fastest that applies (ocv: output channels in the lanes)", "")]
    got = {name: [] for name, _ in algos}
    torch_conv, blas = [], []
    for _ in range(reps):
        for name, algo in algos:
            env = dict(os.environ)
            if algo:
                env["DS_CONV_ALGO"] = algo
            got[name].append(run([DS, "conv", "models"], env)["gflops"])
        t = run(["/usr/bin/python3", "bench/torch_bench.py", "conv"], env_t)
        torch_conv.append(t["gflops"])
        blas.append(t["sgemm_gflops"])
    rows = ["| convolution forward, 32->64 ch, 5x5, 14x14, batch 64 | GFLOP/s (median) |", "|---|---|"]
    for name, _ in algos:
        rows.append(f"| deepsky: {name} | {statistics.median(got[name]):.1f} |")
    rows.append(f"| PyTorch (oneDNN) | {statistics.median(torch_conv):.1f} |")
    rows.append(f"| OpenBLAS sgemm, the same product as one GEMM (PyTorch's kernel, 1 thread) | "
                f"{statistics.median(blas):.1f} |")
    return "\n".join(rows) + "\n" + DECISIONS


def fmt(v):
    return f"{v:,.0f}" if v >= 1000 else f"{v:.3g}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def blas_line(p):
    return f"{' '.join(os.path.basename(x) for x in p['libs']) or 'unknown'}, core {p['core'] or 'n/a'} " \
           f"(sgemm 512^3, 1 thread: {p['sgemm_gflops']} GFLOP/s)"


def write_md(path, text):
    """The new run at the top; everything earlier kept below one heading that says what it was
    measured against (a rerun keeps that part as it is)."""
    src = path if os.path.exists(path) else MD
    old = open(src).read() if os.path.exists(src) else ""
    if EARLIER in old:
        keep = old[old.index(EARLIER):]
    else:
        body = old.split("\n", 1)[1] if old.startswith("# ") else old
        body = re.sub(r"^## ", "### ", body.strip("\n"), flags=re.M)
        keep = (f"{EARLIER}\n\nThe PyTorch figures below were measured before issue 18, with PyTorch on Debian's "
                "OpenBLAS 0.3.21 running its Prescott (SSE3) kernel (`openblas_get_corename()`: it does not "
                "recognise this VM's CPU and falls back to Prescott) and libgomp's default wait policy: a crippled "
                "baseline, whose dense layers and sgemm ran several times below this CPU's ability, so the ratios "
                "there overstate deepsky's lead. deepsky-only figures (issue 16's scaling) are unaffected.\n\n"
                "### Issue 4 onwards (the main table of the time)\n\n" + body + "\n") if body else ""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("# Benchmarks: deepsky vs PyTorch, side by side\n\n" + text + ("\n" + keep if keep else ""))
    os.replace(tmp, path)


def main():
    args, md = sys.argv[1:], None
    if "--md" in args:
        i = args.index("--md")
        md = os.path.abspath(args[i + 1])
        del args[i:i + 2]
    reps = int(args[0]) if args else 3
    work, full = args[1:] or ALL, not args[1:]
    bad = [w for w in work if w not in ALL]
    if bad:
        sys.exit(f"bench: unknown workload {', '.join(bad)} (one of {', '.join(ALL)})")
    subprocess.run(["bash", "scripts/deps.sh", "--bench"], cwd=ROOT, check=True)  # OpenBLAS for PyTorch
    env_t = dict(os.environ, OPENBLAS_NUM_THREADS="1")  # PyTorch's fastest setup here
    LOAD.append(os.getloadavg()[0])
    t_start = time.time()
    blas = choose_blas(env_t)
    if not any("openblas" in p for p in blas["detected"]["libs"]):
        sys.exit(f"bench: PyTorch would run on {blas['detected']['libs'] or 'an unknown BLAS'}, not OpenBLAS: an "
                 "unfair baseline (install libopenblas0-pthread: bash scripts/deps.sh --bench)")
    print(f"PyTorch {blas['used']['torch']}: BLAS detected {blas_line(blas['detected'])}; used "
          f"{blas_line(blas['used'])}: {blas['why']}; torch config: {blas['detected']['torch_config']}", flush=True)
    wait = choose_wait_policy(env_t)
    print(wait, flush=True)
    peaks = [fma_peak()]
    print(f"FMA peak: {peaks[0]['gflops']} GFLOP/s ({peaks[0]['isa']}, {peaks[0]['threads']} threads)", flush=True)
    fl = flops_per_unit()
    if "pgd10_eval" in work:
        checkpoint()
    if "mpi2" in work and "libmpi" not in subprocess.run(["ldd", DEEPSKY], capture_output=True, text=True).stdout:
        print("bench: build/deepsky is not linked with MPI: mpi2 is skipped", flush=True)
        work = [w for w in work if w != "mpi2"]
    rows, notes = [], []
    for w in work:
        a, b, t_w = [], [], time.time()
        for rep in range(reps):  # alternate, so both see the same machine state
            a.append(ds_side(w, rep))
            b.append(torch_side(w, rep, env_t))
        key = metric(w)
        da, tb = statistics.median(r[key] for r in a), statistics.median(r[key] for r in b)
        ratio = tb / da if key in ("median_ms", "epoch_s") else da / tb
        row = {"w": w, "key": key, "ds": da, "t": tb, "ratio": ratio,
               "ds_gf": statistics.median(gflops(w, r, fl) for r in a),
               "t_gf": statistics.median(gflops(w, r, fl) for r in b),
               "rss_ds": statistics.median(r["peak_rss_mb"] for r in a),
               "rss_t": statistics.median(r["peak_rss_mb"] for r in b)}
        rows.append(row)
        print(f"{w}: deepsky {fmt(da)} PyTorch {fmt(tb)} {UNIT[key]}: {ratio:.2f}x "
              f"({time.time() - t_w:.0f} s)", flush=True)
        if w == "rbm":
            RBM_ERR["ds"] = [r["recon_error"] for r in a]
            RBM_ERR["torch"] = [r["recon_error"] for r in b]
        if w == "fgsm_train":
            notes.append(f"fgsm_train: mean step loss 0.5 L(x) + 0.5 L(x_adv) {statistics.median(r['loss'] for r in a):.3f}"
                         f" (deepsky) / {statistics.median(r['loss'] for r in b):.3f} (PyTorch), each its own "
                         f"initialisation; {BATCHES[w]} batches")
        if w == "pgd10_eval":
            notes.append(f"pgd10_eval: adversarial accuracy {statistics.median(r['adv_accuracy'] for r in a):.4f} "
                         f"(deepsky) / {statistics.median(r['adv_accuracy'] for r in b):.4f} (PyTorch) on "
                         f"{a[0]['images']} test images, the same checkpoint")
    ktext = kernels(reps, env_t) if "conv" in work else ""
    peaks.append(fma_peak())
    peak = max(p["gflops"] for p in peaks)
    minutes = (time.time() - t_start) / 60
    used = blas["used"]
    head = [f"- machine: {cpu_name()}, {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M %Z')}; medians of "
            f"{reps} alternating runs ({minutes:.1f} min); load average (1 min) {LOAD[0]:.2f} at the start, "
            f"{os.getloadavg()[0]:.2f} at the end",
            f"- fp32 FMA peak: {peak:.0f} GFLOP/s (`build/ds_bench peak`: {peaks[0]['isa']} FMA chains on "
            f"{peaks[0]['threads']} threads, best of 5; {peaks[0]['gflops']:.0f} at the start, "
            f"{peaks[1]['gflops']:.0f} at the end)",
            f"- PyTorch {used['torch']}, 2 threads (torch.set_num_threads(2)), OPENBLAS_NUM_THREADS=1; BLAS: "
            f"{blas_line(blas['detected'])} as detected; used: core {used['core'] or 'n/a'} "
            f"({used['sgemm_gflops']} GFLOP/s): {blas['why']}; torch.__config__: {blas['detected']['torch_config']}",
            f"- PyTorch's OpenMP threads: {wait}",
            "- deepsky: 2 threads (its pool's default: the CPUs online); mpi2: 2 ranks x 1 thread on both sides",
            "- GFLOP/s: analytic FLOPs per image (`deepsky info`'s forward count, 2 per multiply-add; training 3x; "
            "bench/run.py's docstring has the rest) times the measured rate, the same count for both sides"]
    table = ["| workload | metric | deepsky | PyTorch | ratio | deepsky GFLOP/s (% of peak) | "
             "PyTorch GFLOP/s (% of peak) | RSS deepsky / PyTorch MB |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {WHAT[r['w']]} (`{r['w']}`) | {UNIT[r['key']]} | {fmt(r['ds'])} | {fmt(r['t'])} | "
                     f"{r['ratio']:.2f}x | {r['ds_gf']:.1f} ({100 * r['ds_gf'] / peak:.0f} %) | "
                     f"{r['t_gf']:.1f} ({100 * r['t_gf'] / peak:.0f} %) | {r['rss_ds']:.0f} / {r['rss_t']:.0f} |")
    text = ("\n".join(head) + "\n\n" + "\n".join(table) + "\n\nratio: deepsky's advantage (its rate over "
            "PyTorch's; for latency and epoch time PyTorch's time over deepsky's).\n"
            + "".join(f"- {n}\n" for n in notes) + targets(rows, peak) + ("\n" + ktext if ktext else ""))
    cmd = "/usr/bin/python3 bench/run.py " + " ".join(sys.argv[1:])
    text += f"\nCommand: `nice {cmd}`\n"
    print(text)
    if md or full:
        write_md(md or MD, text)


if __name__ == "__main__":
    main()
