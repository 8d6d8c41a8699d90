#!/bin/bash
# test_scaling.sh DEEPSKY — docs/scaling.md's tools: bench/allreduce_bench.c
# (built here with mpicc, 2 ranks, small sizes: the sums are right, the fit is
# positive, the JSON complete) and bench/scaling_model.py on a made-up
# measured.json (efficiency 1 at N = 1, never above 1, falls with N when the
# compute is fixed, overlap never worse than none with one bucket, the SVG is
# well-formed). The allreduce part is skipped without mpicc/mpirun.
set -u
DS=$1
. "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)

# --- the model (no MPI needed) ---
cat > "$T/measured.json" <<'EOF'
{"models": {"lenet": {"params": 454922, "fwd_flop": 22.21e6, "batch": 64, "node_t0_s": 0.002, "node_ts_s": 0.0005},
 "resnet_small": {"params": 174970, "fwd_flop": 40.73e6, "batch": 128, "node_t0_s": 0.003, "node_ts_s": 0.001}},
 "measured_2rank_efficiency": 0.8}
EOF
expect_ok "scaling_model.py on a made-up measurement" $PY "$SRC/bench/scaling_model.py" --measured "$T/measured.json" \
  --allreduce "$T/none.json" --svg "$T/e.svg" --json "$T/model.json"
$PY - "$T/model.json" "$T/e.svg" >"$T/out" 2>&1 <<'EOF' && ok "model: E(1) = 1, E <= 1, E falls with N, overlap of one bucket = none; SVG parses" || bad "model checks"
import json, sys, xml.etree.ElementTree as ET
m = json.load(open(sys.argv[1]))
ET.parse(sys.argv[2])
curves = {(c["mode"], c["model"], c["network"], c["overlap"]): c["efficiency"] for c in m["curves"]}
for k, e in curves.items():
    v = [e[n] for n in sorted(e, key=int)]
    assert abs(v[0] - 1) < 1e-9, (k, v)
    assert all(x <= 1 + 1e-9 for x in v), (k, v)
    if k[0] == "weak" or k[3] is False:  # fixed compute per rank, or no overlap: more ranks never help
        assert all(a >= b - 1e-9 for a, b in zip(v, v[1:])), (k, v)
# resnet-small's 0.70 MB is one DDP bucket: reduced after backward, as without overlap
for mode in ("weak", "strong"):
    assert curves[(mode, "resnet_small", "10GbE", True)] == curves[(mode, "resnet_small", "10GbE", False)]
# a ResNet-50-sized model overlaps: better than one blocking reduction
a, b = curves[("weak", "resnet50_gpu", "10GbE", True)], curves[("weak", "resnet50_gpu", "10GbE", False)]
assert a["64"] > b["64"] + 0.05, (a, b)
# the Horovod anchor lies between the two bounds of the model
h = m["horovod_r101_128"]
assert h["false"] < 0.90 < h["true"], h
EOF
expect_fail "scaling_model.py without a measurement" "run bench/scaling.py first" $PY "$SRC/bench/scaling_model.py" \
  --measured "$T/missing.json" --svg "$T/x.svg" --json "$T/x.json"

# --- the allreduce benchmark ---
if command -v mpicc >/dev/null && command -v mpirun >/dev/null; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  export OMPI_MCA_btl=self,vader OMPI_MCA_btl_base_warn_component_unused=0
  expect_ok "allreduce_bench builds with -Wall -Wextra -Werror" mpicc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
    -o "$T/ar" "$SRC/bench/allreduce_bench.c" -lm
  expect_ok "allreduce_bench on 2 ranks, 4 B .. 1 MiB" timeout 120 mpirun --oversubscribe -np 2 "$T/ar" --max 1048576 \
    --target 0.01 --bucket 262144 --json "$T/ar.json"
  grep -q "sums correct" "$T/out" && ok "allreduce_bench: the sums are right" || bad "allreduce_bench sums"
  $PY - "$T/ar.json" >"$T/out" 2>&1 <<'EOF' && ok "allreduce_bench JSON: 19 sizes, alpha > 0, beta > 0, 4 buckets" || bad "allreduce_bench JSON"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ranks"] == 2 and d["sums_correct"], d
assert [s["bytes"] for s in d["sizes"]] == [4 << i for i in range(19)], d["sizes"]
assert all(s["median_s"] > 0 and s["reps"] >= 5 for s in d["sizes"])
assert d["alpha_s"] > 0 and d["beta_s_per_byte"] > 0, d
assert d["buckets"]["n"] == 4 and d["buckets"]["iallreduce_s"] > 0, d["buckets"]
EOF
  expect_fail "allreduce_bench refuses --max below --min" "need 4 <= --min <= --max" timeout 60 mpirun --oversubscribe -np 2 \
    "$T/ar" --min 64 --max 8
else
  echo "no mpicc/mpirun: allreduce_bench not tested"
fi

finish scaling
