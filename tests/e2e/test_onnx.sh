#!/usr/bin/env bash
# End-to-end tests of ONNX export (docs/onnx.md): every zoo model is
# trained one epoch on random data (the GANs one epoch of deepsky gan), exported,
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

# close: A B [rel] -> max |a - b| <= 1e-5 (rel: relative to max(1, |a|): samples in data units)
close() { $PY -c "
import numpy as np, sys
a, b = np.load('$1'), np.load('$2')
rel = '${3:-}' == 'rel'
d = abs(a - b).max() if a.shape == b.shape else float('inf')
r = (abs(a - b) / np.maximum(1, abs(a))).max() if a.shape == b.shape else float('inf')
print(f'max |deepsky - onnx| = {d:.2e}' + (f' (relative {r:.2e})' if rel else '')); sys.exit(0 if (r if rel else d) <= 1e-5 else 1)"; }

for m in lenet lenet-fgsm lenet-pgd alexnet-small dbn inception-small mlp realbogus realbogus-fgsm realbogus-pgd resnet-small softmax alerts-meta; do
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
# a hierarchical [tree] head: Slice/LogSoftmax per node, MatMul with the path matrix, Exp
mkdata "$MODELS/lenet-hier.cfg" hier
"$DS" train "$MODELS/lenet-hier.cfg" --data "npy:$T/hier-x.npy,$T/hier-y.csv" --epochs 1 --batch 16 --out "$T/r-hier" --quiet >/dev/null 2>&1
expect_ok "lenet-hier: export" "$DS" export "$T/r-hier/last.safetensors" --onnx "$T/hier.onnx"
"$DS" predict "$T/r-hier/last.safetensors" "$T/hier-x.npy" --format npy --output "$T/hier-p.npy" >/dev/null 2>&1
if $PY "$HERE/onnx_eval.py" "$T/hier.onnx" "$T/hier-x.npy" "$T/hier-q.npy" >"$T/out" 2>&1 &&
   $PY -c "import onnx; m = onnx.load('$T/hier.onnx'); assert 'deepsky.tree' in {p.key for p in m.metadata_props}" &&
   close "$T/hier-p.npy" "$T/hier-q.npy" >>"$T/out"; then
  ok "lenet-hier: onnx.checker, the tree in the metadata, $(tail -1 "$T/out")"
else bad "lenet-hier: onnx run"; fi
roundtrip() { # NAME ONNX PREDICT-ARGS... : deepsky import, then predict on the import = the original's probabilities $T/NAME-p.npy
  local n=$1 f=$2; shift 2
  if "$DS" import "$f" --out "$T/i-$n" >"$T/out" 2>&1 &&
     "$DS" predict "$T/i-$n/model.safetensors" "$@" --format npy --output "$T/$n-i.npy" >>"$T/out" 2>&1 &&
     close "$T/$n-p.npy" "$T/$n-i.npy" >>"$T/out"; then
    ok "$n: re-imported, $(tail -1 "$T/out")"
  else bad "$n: re-import"; fi
}
roundtrip hier "$T/hier.onnx" "$T/hier-x.npy"

# two inputs (wide & deep: a stamp and 33 metadata columns), each with its normalisation
"$DS" simulate --out "$T/sim" --n 48 --size 45 --seed 5 >/dev/null 2>&1
WD=(--data "npy:$T/sim/x.npy,$T/sim/y.npy" --data "meta=csv:$T/sim/meta.csv,id=index")
"$DS" train "$MODELS/alerts-wide-deep.cfg" "${WD[@]}" --epochs 1 --batch 16 --out "$T/r-wd" --quiet >/dev/null 2>&1
expect_ok "alerts-wide-deep: export" "$DS" export "$T/r-wd/last.safetensors" --onnx "$T/wd.onnx"
"$DS" predict "$T/r-wd/last.safetensors" "${WD[@]}" --format npy --output "$T/wd-p.npy" >/dev/null 2>&1
$PY - "$T/wd.onnx" "$T/sim/meta.csv" "$T/wd-meta.npy" <<'PYEOF' >"$T/out" 2>&1
import csv, sys, numpy as np, onnx
m = onnx.load(sys.argv[1])
meta = {p.key: p.value for p in m.metadata_props}
assert [i.name for i in m.graph.input] == ["stamp", "meta"], m.graph.input
cols = [c.strip() for c in meta["deepsky.columns.meta"].split(",")]
rows = list(csv.DictReader(open(sys.argv[2])))
np.save(sys.argv[3], np.array([[float(r[c]) for c in cols] for r in rows], np.float32))
assert {"norm.mean", "norm.std", "norm.meta.mean", "norm.meta.std"} <= {t.name for t in m.graph.initializer}
PYEOF
if [ $? -eq 0 ] && $PY "$HERE/onnx_eval.py" "$T/wd.onnx" "stamp=$T/sim/x.npy,meta=$T/wd-meta.npy" "$T/wd-q.npy" >>"$T/out" 2>&1 &&
   close "$T/wd-p.npy" "$T/wd-q.npy" >>"$T/out"; then
  ok "alerts-wide-deep: two inputs, columns in the metadata, $(tail -1 "$T/out")"
else bad "alerts-wide-deep: onnx run"; fi
roundtrip wd "$T/wd.onnx" "${WD[@]}"

# GANs: the generator (z [and c] to data units) against deepsky sample on the same z; the discriminator runs
$PY -c "
import numpy as np; r = np.random.default_rng(1)
np.save('$T/g-x.npy', r.random((48, 1, 28, 28), dtype=np.float32)); np.save('$T/g-y.npy', r.integers(0, 10, 48).astype(np.float32))
np.save('$T/z.npy', r.standard_normal((8, 100)).astype(np.float32)); np.save('$T/c3.npy', np.full((8, 1), 3, np.float32))
np.save('$T/c1.npy', np.full((8, 1), 1, np.float32))"
for gs in dcgan-fashion:g:3 cgan-fashion:g:3 dcgan-stamps:sim:1 cgan-stamps:sim:1; do # model, data (asinh for stamps), class
  IFS=: read -r g data c <<<"$gs"
  gdata="npy:$T/g-x.npy,$T/g-y.npy"
  [ "$data" = sim ] && gdata="npy:$T/sim/x.npy,$T/sim/y.npy"
  "$DS" gan "$MODELS/$g.cfg" --data "$gdata" --epochs 1 --batch 16 --out "$T/r-$g" --quiet >/dev/null 2>&1
  expect_ok "$g: export the generator" "$DS" export "$T/r-$g/last.safetensors" --onnx "$T/$g-g.onnx"
  expect_ok "$g: export the discriminator" "$DS" export "$T/r-$g/last.safetensors" --onnx "$T/$g-d.onnx" --net discriminator
  cls=() feed="z=$T/z.npy" dfeed="x=$T/$g-p.npy"
  case $g in cgan-*) cls=(--class "$c") feed="$feed,c=$T/c$c.npy" dfeed="$dfeed,c=$T/c$c.npy" ;; esac
  "$DS" sample "$T/r-$g/last.safetensors" --z "$T/z.npy" "${cls[@]}" --out "$T/$g-p.npy" >/dev/null 2>&1
  if $PY "$HERE/onnx_eval.py" "$T/$g-g.onnx" "$feed" "$T/$g-q.npy" >"$T/out" 2>&1 && close "$T/$g-p.npy" "$T/$g-q.npy" rel >>"$T/out"; then
    ok "$g: generator's 'sample' = deepsky sample --z, $(tail -1 "$T/out")"
  else bad "$g: generator onnx run"; fi
  if $PY "$HERE/onnx_eval.py" "$T/$g-d.onnx" "$dfeed" "$T/$g-dq.npy" >"$T/out" 2>&1 &&
     $PY -c "import numpy as np; p = np.load('$T/$g-dq.npy'); assert p.shape == (8, 1) and ((p > 0) & (p < 1)).all()" >>"$T/out" 2>&1; then
    ok "$g: discriminator onnx.checker, probability [8, 1]"
  else bad "$g: discriminator onnx run"; fi
  # round trips: the generator's import (its scale as the output transform) = deepsky sample; the discriminator's = the ONNX run
  if "$DS" import "$T/$g-g.onnx" --out "$T/i-$g-g" --run "$feed" --output "$T/$g-gi.npy" >"$T/out" 2>&1 &&
     close "$T/$g-p.npy" "$T/$g-gi.npy" rel >>"$T/out"; then
    ok "$g: generator re-imported, $(tail -1 "$T/out")"
  else bad "$g: generator re-import"; fi
  if "$DS" import "$T/$g-d.onnx" --out "$T/i-$g-d" --run "$dfeed" --output "$T/$g-di.npy" >"$T/out" 2>&1 &&
       close "$T/$g-dq.npy" "$T/$g-di.npy" >>"$T/out"; then
    ok "$g: discriminator re-imported, $(tail -1 "$T/out")"
  else bad "$g: discriminator re-import"; fi
done
expect_fail "predict refuses an imported generator (its output transform)" "output transform.*import MODEL.onnx --run" \
  "$DS" predict "$T/i-dcgan-fashion-g/model.safetensors" "$T/dcgan-fashion-p.npy"
expect_fail "predict refuses an imported asinh discriminator (its input transform)" "input transform" \
  "$DS" predict "$T/i-dcgan-stamps-d/model.safetensors" "$T/sim/x.npy"
expect_fail "export --net on a classifier" "only a GAN" "$DS" export "$T/r-lenet/last.safetensors" --onnx "$T/x.onnx" --net generator
expect_fail "export --net unknown" "generator and a discriminator" "$DS" export "$T/r-dcgan-fashion/last.safetensors" --onnx "$T/x.onnx" --net critic
expect_fail "sample --z of the wrong width" "latent has 100" "$DS" sample "$T/r-dcgan-fashion/last.safetensors" --z "$T/wd-meta.npy" --out "$T/x.npy"
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
