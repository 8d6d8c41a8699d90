#!/usr/bin/env bash
# ONNX import of the forms deepsky export writes beyond one input and a
# softmax (docs/onnx.md "Import"): two inputs with their own Sub/Div, an
# embedding (Cast, Gather), the [tree] tail, a generator's output transform
# (Mul, Add / Sinh after the last layer). tests/onnx/spec_models.py builds
# them with onnx.helper and computes PyTorch's outputs; `deepsky import
# --run` and `deepsky predict` of the imported checkpoint must agree to
# 1e-5. Then the refusals. Skipped (77) without ONNX support or python3-onnx.
# usage: test_onnx_import2.sh PATH/TO/deepsky
set -u
DS=${1:?usage: test_onnx_import2.sh DEEPSKY}
HERE=$(cd "$(dirname "$0")" && pwd)
case $DS in /*) ;; */*) DS=$PWD/$DS ;; esac # the tests run in $T
. "$HERE/lib.sh"

if "$DS" import "$T/none.onnx" --out "$T/none" 2>&1 | grep -q "without ONNX"; then
  echo "test_onnx_import2: deepsky built without ONNX (protobuf-c): skipped"; exit 77
fi
$PY -c "import onnx, torch" 2>/dev/null || { echo "test_onnx_import2: no python3-onnx/torch: skipped"; exit 77; }
$PY "$HERE/../onnx/spec_models.py" "$T" >"$T/out" 2>&1 || { bad "spec_models.py"; finish test_onnx_import2; exit 1; }

# close A B -> max |a - b| <= 1e-5 (same number of values, B's shape)
close() { $PY -c "
import numpy as np, sys
a, b = np.load('$1'), np.load('$2')
d = abs(a.reshape(b.shape) - b).max() if a.size == b.size else float('inf')
print(f'{a.shape} max |deepsky - torch| = {d:.2e}'); sys.exit(0 if d <= 1e-5 else 1)"; }
# meta KEY CKPT: the checkpoint's metadata string
meta() { $PY -c "
import json, struct, sys
f = open('$2', 'rb'); n = struct.unpack('<Q', f.read(8))[0]
print(json.loads(f.read(n))['__metadata__'].get('$1', ''))"; }
# check NAME CMD...: CMD runs and writes $T/NAME-got.npy close to $T/NAME-ref.npy
check() {
  local name=$1; shift
  if "$@" >"$T/out" 2>&1 && close "$T/$name-got.npy" "$T/$name-ref.npy" >>"$T/out"; then ok "$name: $(tail -1 "$T/out")"
  else bad "$name"; fi
}
cd "$T" || exit 1

# two inputs, each with its norm: [input] sections, norm and norm.meta, the columns
expect_ok "two inputs: import" "$DS" import two.onnx --out i-two
grep -q "^columns = a, b, c, d, e" i-two/model.cfg && [ "$(grep -c '^\[input\]' i-two/model.cfg)" = 2 ] &&
  meta norm.meta i-two/model.safetensors | grep -q '"channels":5' && meta norm i-two/model.safetensors | grep -q '"std":\[3\]' &&
  ok "two inputs: [input] sections, columns, norm and norm.meta" || bad "two inputs: model.cfg / metadata"
cp two-ref.npy run2-ref.npy
check run2 "$DS" import two.onnx --run stamp=two-stamp.npy,meta=two-meta.npy --output run2-got.npy
check two "$DS" predict i-two/model.safetensors two-stamp.npy --data meta=csv:two-meta.csv --format npy --output two-got.npy
expect_fail "two inputs: --run one file" "2 inputs: give each as NAME=FILE" "$DS" import two.onnx --run two-stamp.npy --output x.npy
expect_fail "two inputs: --run a missing one" "no file for input 'meta'" "$DS" import two.onnx --run stamp=two-stamp.npy --output x.npy

# an embedding
expect_ok "embedding: import" "$DS" import embed.onnx --out i-embed
grep -q "^\[embedding\]" i-embed/model.cfg && grep -q "^categories = 5" i-embed/model.cfg && ok "embedding: an [embedding] of 5" ||
  bad "embedding: model.cfg"
cp embed-ref.npy run-embed-ref.npy
check run-embed "$DS" import embed.onnx --run z=embed-z.npy,c=embed-c.npy --output run-embed-got.npy
check embed "$DS" predict i-embed/model.safetensors embed-z.npy --data c=npy:embed-c.npy --format npy --output embed-got.npy

# the [tree] head: the [tree] section, classes = the leaves; predict gives the tree's probabilities
expect_ok "tree: import" "$DS" import tree.onnx --out i-tree
grep -q "^left = 1, 2" i-tree/model.cfg && grep -q "^classes = 5" i-tree/model.cfg && ok "tree: [tree] written, classes = 5" ||
  bad "tree: model.cfg"
cp tree-ref.npy run-tree-ref.npy
check run-tree "$DS" import tree.onnx --run tree-x.npy --output run-tree-got.npy
check tree "$DS" predict i-tree/model.safetensors tree-x.npy --format npy --output tree-got.npy
expect_fail "tree: wrong tree/paths refused" "node 'tree/MatMul': tree/paths\[.*the tree in metadata deepsky.tree gives" \
  "$DS" import tree_bad.onnx --out i-bad
expect_fail "tree: a Slice not the tree's refused" "Slice 1 takes logits 3\.\.6, tree node 'left' has 3\.\.5" \
  "$DS" import tree_slice.onnx --out i-bad
[ -e i-bad/model.cfg ] && bad "a refused import wrote model.cfg" || ok "a refused import writes nothing"

# a generator's output transform, applied by --run and kept as metadata
check gen "$DS" import gen.onnx --out i-gen --run gen-z.npy --output gen-got.npy
check gen_asinh "$DS" import gen_asinh.onnx --run gen-z.npy --output gen_asinh-got.npy
grep -q "^classes = 36" i-gen/model.cfg && [ "$(meta output_transform i-gen/model.safetensors)" = '[["mul",0.5],["add",0.5]]' ] &&
  ok "generator: classes 36, output_transform $(meta output_transform i-gen/model.safetensors)" || bad "generator: model.cfg / metadata"

# refusals name the node and operator
expect_fail "a Mul by a constant mid-network refused" "node 'mid/Mul' \(Mul\): an elementwise op on a constant is supported only in the chain after the last layer" \
  "$DS" import mid_mul.onnx --out i-bad
expect_fail "an input read raw and normalised refused" "input 'x' is read both before and after its normalisation" \
  "$DS" import raw_and_norm.onnx --out i-bad

# real exports (deepsky export of GANs trained one epoch on random data): the
# generator's import --run = deepsky sample --z (relative to max(1, |x|): data
# units), the discriminator's = tests/e2e/onnx_eval.py
MODELS=$HERE/../../models
$PY -c "
import numpy as np; r = np.random.default_rng(1)
np.save('g-x.npy', r.random((32, 1, 28, 28), dtype=np.float32)); np.save('g-y.npy', r.integers(0, 10, 32).astype(np.float32))
np.save('z.npy', r.standard_normal((8, 100)).astype(np.float32)); np.save('c1.npy', np.full((8, 1), 1, np.float32))"
"$DS" simulate --out sim --n 32 --size 45 --seed 5 >/dev/null 2>&1
relclose() { $PY -c "
import numpy as np, sys
a, b = np.load('$1'), np.load('$2')
r = (abs(a - b) / np.maximum(1, abs(a))).max() if a.shape == b.shape else float('inf')
print(f'{a.shape} max relative |deepsky - import| = {r:.2e}'); sys.exit(0 if r <= 1e-5 else 1)"; }
for g in dcgan-fashion cgan-stamps; do
  data="npy:g-x.npy,g-y.npy" feed=z=z.npy cls=()
  case $g in *stamps) data="npy:sim/x.npy,sim/y.npy" feed=z=z.npy,c=c1.npy cls=(--class 1) ;; esac
  if "$DS" gan "$MODELS/$g.cfg" --data "$data" --epochs 1 --batch 16 --out "r-$g" --quiet >"$T/out" 2>&1 &&
     "$DS" export "r-$g/last.safetensors" --onnx "$g-g.onnx" >>"$T/out" 2>&1 &&
     "$DS" export "r-$g/last.safetensors" --onnx "$g-d.onnx" --net discriminator >>"$T/out" 2>&1 &&
     "$DS" sample "r-$g/last.safetensors" --z z.npy "${cls[@]}" --out "$g-p.npy" >>"$T/out" 2>&1 &&
     "$DS" import "$g-g.onnx" --out "i-$g" --run "$feed" --output "$g-i.npy" >>"$T/out" 2>&1 && relclose "$g-p.npy" "$g-i.npy" >>"$T/out"; then
    ok "$g: the generator's import --run = deepsky sample --z, $(tail -1 "$T/out"), output_transform $(meta output_transform "i-$g/model.safetensors")"
  else bad "$g: generator round trip"; fi
done
feed="x=dcgan-fashion-p.npy"
if $PY "$HERE/onnx_eval.py" dcgan-fashion-d.onnx "$feed" d-q.npy >"$T/out" 2>&1 &&
   "$DS" import dcgan-fashion-d.onnx --out i-d --run "$feed" --output d-i.npy >>"$T/out" 2>&1 && cp d-q.npy d-ref.npy &&
   close d-i.npy d-ref.npy >>"$T/out"; then ok "dcgan-fashion: the discriminator's import = the ONNX run, $(tail -1 "$T/out")"
else bad "dcgan-fashion: discriminator import"; fi
# asinh's Div + Asinh in front of a discriminator: the input transform (import --run applies it; predict refuses)
feed="x=cgan-stamps-p.npy,c=c1.npy"
if $PY "$HERE/onnx_eval.py" cgan-stamps-d.onnx "$feed" sd-q.npy >"$T/out" 2>&1 &&
   "$DS" import cgan-stamps-d.onnx --out i-sd --run "$feed" --output sd-i.npy >>"$T/out" 2>&1 &&
   close sd-i.npy sd-q.npy >>"$T/out"; then ok "cgan-stamps: the asinh discriminator's import = the ONNX run, $(tail -1 "$T/out"), input_transform $(meta input_transform i-sd/model.safetensors)"
else bad "cgan-stamps: asinh discriminator import"; fi

finish test_onnx_import2
