#!/usr/bin/env bash
# The benchmark harness's own logic (issue 18), no timings: ds_bench peak's
# JSON on every ISA path, bench/run.py's FLOP counts from `deepsky info`, its
# choice of OpenBLAS kernel (OPENBLAS_CORETYPE) with the probes mocked, and
# its refusal of an unknown workload.
# usage: test_bench.sh PATH/TO/deepsky   (ds_bench next to it)
set -u
DS=${1:?usage: test_bench.sh DEEPSKY}
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH=$(dirname "$DS")/ds_bench
[ -x "$BENCH" ] || { echo "no ds_bench next to $DS: skipped"; exit 77; }

for isa in "" avx2 scalar; do
  if DS_NUM_THREADS=1 DS_BENCH_ISA=$isa "$BENCH" peak 1 >"$T/peak.json" 2>"$T/out" &&
     $PY - "$T/peak.json" "$isa" <<'PYEOF' >>"$T/out" 2>&1
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
want = {"": ("avx512", "avx2", "scalar"), "avx2": ("avx2", "scalar"), "scalar": ("scalar",)}[sys.argv[2]]
assert r["workload"] == "peak" and r["threads"] == 1 and r["gflops"] > 0 and r["isa"] in want, r
PYEOF
  then ok "ds_bench peak (DS_BENCH_ISA=${isa:-unset}): $(cat "$T/peak.json")"; else bad "ds_bench peak ${isa:-unset}"; fi
done
expect_fail "ds_bench: unknown workload" "unknown workload 'nope'" "$BENCH" nope
expect_fail "run.py: unknown workload" "unknown workload nope" $PY "$ROOT/bench/run.py" 1 nope

expect_ok "run.py: FLOPs per image from deepsky info" $PY - "$ROOT" "$DS" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1] + "/bench")
import run
run.ROOT, run.DEEPSKY = sys.argv[1], sys.argv[2]
f = run.flops_per_unit()
lenet = run.info_flops("models/lenet.cfg")["total"]
assert abs(lenet - 22.21e6) < 0.01e6, lenet  # conv1 1.6 M + conv2 20.1 M + fc1 0.8 M + the rest
assert f["lenet64"] == 3 * lenet and f["infer1"] == lenet and f["pgd10_eval"] == 21 * lenet
g = run.info_flops("models/dcgan-fashion.cfg")
assert set(g) == {"generator", "discriminator"} and f["dcgan_epoch"] == 3 * g["generator"] + 9 * g["discriminator"]
assert f["rbm"] == 600 * 5 * 2 * 100 * 784 * 500
assert abs(run.gflops("infer1", {"median_ms": 1.0}, f) - lenet / 1e6) < 1e-9
print("ok", f)
PYEOF

expect_ok "run.py: OPENBLAS_CORETYPE chosen by the CPU's flags, checked by name and sgemm" $PY - "$ROOT" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1] + "/bench")
import run
lib = ["/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so"]
def probe(reply):
    return lambda env: dict(libs=lib, core=reply(env.get("OPENBLAS_CORETYPE")), sgemm_gflops=
                            {"SkylakeX": 70.0, "Haswell": 50.0}.get(env.get("OPENBLAS_CORETYPE"), 15.0))
run.cpu_flags = lambda: {"avx512f", "avx2", "fma"}
run.blas_probe = probe(lambda c: c or "Prescott")  # the forced kernel reports its name
env = {}
b = run.choose_blas(env)
assert env["OPENBLAS_CORETYPE"] == "SkylakeX" and b["detected"]["core"] == "Prescott" and b["used"]["core"] == "SkylakeX"
run.blas_probe = probe(lambda c: "Haswell" if c == "Haswell" else "Prescott")  # SkylakeX ignored: the next best
env = {}
run.choose_blas(env)
assert env["OPENBLAS_CORETYPE"] == "Haswell", env
run.blas_probe = probe(lambda c: "Prescott")  # nothing works: as detected, and said so
env = {}
b = run.choose_blas(env)
assert "OPENBLAS_CORETYPE" not in env and "no better kernel" in b["why"], b
run.blas_probe = probe(lambda c: "SkylakeX")  # already the best: left alone
env = {}
b = run.choose_blas(env)
assert "OPENBLAS_CORETYPE" not in env and b["why"] == "as detected"
env = {"OPENBLAS_CORETYPE": "Haswell"}  # the user's choice (run.py's env is a copy of the environment) is kept
b = run.choose_blas(env)
assert env["OPENBLAS_CORETYPE"] == "Haswell" and "kept" in b["why"], b
print("ok")
PYEOF

finish bench
