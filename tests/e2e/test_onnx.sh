#!/usr/bin/env bash
# End-to-end tests of ONNX export (docs/onnx.md): every zoo model that has
# one (not the GAN files) is trained one epoch on random data, exported,
# checked with onnx.checker and run by tests/e2e/onnx_eval.py (PyTorch ops);
# its probabilities must match `deepsky predict` on the same inputs. Then
# the refusals and bad inputs. Skipped (77) without ONNX support or
# Debian's python3-onnx.
# usage: test_onnx.sh PATH/TO/deepsky
set -u
DS=${1:?usage: test_onnx.sh DEEPSKY}
HERE=$(cd "$(dirname "$0")" && pwd)
MODELS=$HERE/../../models
. "$HERE/lib.sh"

if "$DS" export "$T/none.safetensors" --onnx "$T/none.onnx" 2>&1 | grep -q "without ONNX"; then
  echo "test_onnx: deepsky built without ONNX (protobuf-c): skipped"; exit 77
fi
$PY -c "import onnx, torch" 2>/dev/null || { echo "test_onnx: no python3-onnx/torch: skipped"; exit 77; }

# data of a model's input shape: 32 random samples, labels 0..classes-1 (or names)
mkdata() { # CFG NAME
  local inp cls
  inp=$(grep -m1 '^input' "$1" | sed 's/.*= *//;s/[ #].*//')
  cls=$(grep -m1 '^classes' "$1" | sed 's/.*= *//;s/[ #].*//')
  $PY - "$T/$2" "$inp" "$cls" <<'PYEOF'
import sys, numpy as np
p, inp, cls = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = np.random.default_rng(0)
s = tuple(int(v) for v in inp.split(","))
np.save(p + "-x.npy", (r.random((32,) + s, dtype=np.float32) * 3 + 1).astype(np.float32))
y = r.integers(0, cls, 32)
with open(p + "-y.csv", "w") as f:
    f.write("label\n" + "".join(f"class_{v}\n" for v in y))
PYEOF
}

# close: PROBS_A PROBS_B -> max |a - b| <= 1e-5
close() { $PY -c "
import numpy as np, sys
a, b = np.load('$1'), np.load('$2')
d = abs(a - b).max() if a.shape == b.shape else float('inf')
print(f'max |deepsky - onnx| = {d:.2e}'); sys.exit(0 if d <= 1e-5 else 1)"; }

for m in lenet alexnet-small dbn inception-small mlp realbogus resnet-small softmax alerts-meta; do
  cfg=$MODELS/$m.cfg
  mkdata "$cfg" "$m"
  if ! "$DS" train "$cfg" --data "npy:$T/$m-x.npy,$T/$m-y.csv" --epochs 1 --batch 16 --out "$T/r-$m" --quiet >"$T/out" 2>&1; then
    bad "$m: train"; continue
  fi
  expect_ok "$m: export" "$DS" export "$T/r-$m/last.safetensors" --onnx "$T/$m.onnx"
  "$DS" predict "$T/r-$m/last.safetensors" "$T/$m-x.npy" --format npy --output "$T/$m-p.npy" >/dev/null 2>&1
  if $PY "$HERE/onnx_eval.py" "$T/$m.onnx" "$T/$m-x.npy" "$T/$m-q.npy" >"$T/out" 2>&1 &&
     grep -q '"class_0"' "$T/out" && close "$T/$m-p.npy" "$T/$m-q.npy" >>"$T/out"; then
    ok "$m: onnx.checker, class names, $(tail -1 "$T/out")"
  else bad "$m: onnx run"; fi
  # round trip: deepsky import of the exported file predicts the same
  if "$DS" import "$T/$m.onnx" --out "$T/i-$m" >"$T/out" 2>&1 &&
     "$DS" predict "$T/i-$m/model.safetensors" "$T/$m-x.npy" --format npy --output "$T/$m-i.npy" >>"$T/out" 2>&1 &&
     close "$T/$m-p.npy" "$T/$m-i.npy" >>"$T/out"; then
    ok "$m: re-imported, $(tail -1 "$T/out")"
  else bad "$m: re-import"; fi
done
"$DS" predict "$T/i-lenet/model.safetensors" "$T/lenet-x.npy" --top 1 >"$T/out" 2>&1
grep -q "class_" "$T/out" && ok "re-imported lenet keeps the class names" || bad "class names after import"

# the graph is what the docs say: Sub/Div in front, no Dropout, Softmax last
$PY -c "
import onnx
m = onnx.load('$T/lenet.onnx'); ops = [n.op_type for n in m.graph.node]
assert ops[:2] == ['Sub', 'Div'] and 'Dropout' not in ops and ops[-1] == 'Softmax', ops
assert [o.name for o in m.graph.output] == ['logits', 'probabilities']
assert all(t.raw_data for t in m.graph.initializer)" && ok "lenet graph: Sub/Div, no Dropout, Softmax, raw_data" || bad "lenet graph"

# refusals and bad inputs
expect_fail "usage: no --onnx" "needs --onnx" "$DS" export "$T/r-lenet/last.safetensors"
expect_fail "usage: no checkpoint" "needs a checkpoint" "$DS" export --onnx "$T/x.onnx"
expect_fail "missing checkpoint" "nothere\.safetensors" "$DS" export "$T/nothere.safetensors" --onnx "$T/x.onnx"
head -c 3000 "$T/r-lenet/last.safetensors" >"$T/trunc.safetensors"
expect_fail "truncated checkpoint" "trunc\.safetensors" "$DS" export "$T/trunc.safetensors" --onnx "$T/x.onnx"
[ -e "$T/x.onnx" ] && bad "a failed export left x.onnx" || ok "a failed export writes nothing"
mkdata "$MODELS/lenet-hier.cfg" hier
"$DS" train "$MODELS/lenet-hier.cfg" --data "npy:$T/hier-x.npy,$T/hier-y.csv" --epochs 1 --batch 16 --out "$T/r-hier" --quiet >/dev/null 2>&1
expect_fail "hierarchical head refused" "\[tree\] head has no ONNX export" "$DS" export "$T/r-hier/last.safetensors" --onnx "$T/h.onnx"
expect_fail "unwritable output" "nodir" "$DS" export "$T/r-lenet/last.safetensors" --onnx "$T/nodir/m.onnx"

# import: bad files and unsupported operators name the node and operator
expect_fail "import: missing file" "nothere\.onnx" "$DS" import "$T/nothere.onnx" --out "$T/i0"
head -c 1000 "$T/lenet.onnx" >"$T/trunc.onnx"
expect_fail "import: truncated file" "trunc\.onnx.*(not an ONNX|tensor)" "$DS" import "$T/trunc.onnx" --out "$T/i1"
[ -e "$T/i1/model.safetensors" ] && bad "a failed import wrote a checkpoint" || ok "a failed import writes no checkpoint"
expect_fail "import: usage" "needs --out" "$DS" import "$T/lenet.onnx"
if [ -d /usr/share/libonnx-testdata/data/node/test_abs ]; then
  expect_fail "import: unsupported operator" "node 'y' \(Abs\): operator Abs has no deepsky layer" \
    "$DS" import /usr/share/libonnx-testdata/data/node/test_abs/model.onnx --out "$T/i2"
fi

finish test_onnx
