#!/bin/bash
# test_checks.sh — the checks of attribution maps end to end: simulate
# --footprint, explain --sanity (the cascading randomisation table) and
# explain --footprint (the pointing game) on a tiny stamp classifier.
set -u
DS=$1
. "$(dirname "$0")/lib.sh"


# stamps with their footprints
expect_ok "simulate --footprint" "$DS" simulate --out "$T/sim" --n 120 --size 16 --real-fraction 0.5 --footprint --seed 9
if $PY -c "
import numpy as np, sys
f = np.load('$T/sim/footprint.npy'); x = np.load('$T/sim/x.npy')
assert f.shape == (120, 16, 16) and f.dtype == np.float32, (f.shape, f.dtype)
assert x.shape == (120, 1, 16, 16)
assert set(np.unique(f)) <= {0.0, 1.0}
assert (f.reshape(120, -1).sum(1) > 0).all()   # every stamp has a source
" >"$T/out" 2>&1; then ok "footprint.npy is [n, S, S] float32 0/1, none empty"; else bad "footprint.npy shape and values"; fi
expect_ok "simulate --footprint again" "$DS" simulate --out "$T/sim2" --n 120 --size 16 --real-fraction 0.5 --footprint --seed 9
if cmp -s "$T/sim/footprint.npy" "$T/sim2/footprint.npy"; then ok "footprint: the same seed, the same file"
else bad "footprint: not deterministic"; fi
expect_ok "simulate --force replaces footprint.npy" "$DS" simulate --out "$T/sim2" --n 10 --size 16 --force
if [ ! -e "$T/sim2/footprint.npy" ]; then ok "--force removed the old footprint.npy"; else bad "stale footprint.npy kept"; fi

# a tiny classifier of them
cat >"$T/tiny.cfg" <<'CFG'
[net]
input = 1,16,16
classes = 2
[instancenorm]
[conv]
name = conv1
filters = 4
size = 3
pad = 1
activation = relu
[maxpool]
size = 2
[dense]
name = fc1
units = 8
activation = relu
[dense]
name = fc2
units = 2
[train]
optimizer = adam
lr = 0.01
batch = 32
epochs = 2
seed = 1
CFG
expect_ok "train the tiny model" "$DS" train "$T/tiny.cfg" --data "npy:$T/sim/x.npy,$T/sim/y.csv" --out "$T/run" --quiet
CK=$T/run/last.safetensors
DATA="npy:$T/sim/x.npy,$T/sim/y.csv"

# the sanity check: the trained row correlates 1 with itself, the randomised rows are named top down
"$DS" explain "$CK" --data "$DATA" --sanity --method saliency,gradcam --max 20 --out "$T/checks" >"$T/out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -Eq '^trained +1\.000 ± 0\.000 +1\.000' "$T/out" && grep -Eq '^fc2 ' "$T/out" &&
  grep -Eq '^fc2\+fc1 ' "$T/out" && grep -Eq '^fc2\+fc1\+conv1 ' "$T/out"; then ok "--sanity: trained row 1.000, stages fc2, fc2+fc1, fc2+fc1+conv1"
else bad "--sanity table (exit $rc)"; fi
if $PY -c "
import csv
rows = list(csv.DictReader(open('$T/checks/sanity.csv')))
assert len(rows) == 8, len(rows)
t = [r for r in rows if r['stage'] == 'trained']
assert all(abs(float(r['spearman_mean']) - 1) < 1e-9 for r in t), t
assert {r['method'] for r in rows} == {'saliency', 'gradcam'}
" >"$T/out" 2>&1; then ok "sanity.csv: 4 stages x 2 methods, trained = 1"; else bad "sanity.csv"; fi
# the checkpoint's weights are restored: the same command twice, the same table
"$DS" explain "$CK" --data "$DATA" --sanity --method saliency --max 10 >"$T/a" 2>&1
"$DS" explain "$CK" --data "$DATA" --sanity --method saliency --max 10 >"$T/b" 2>&1
if cmp -s "$T/a" "$T/b"; then ok "--sanity is deterministic"; else bad "--sanity differs between runs"; fi

# the pointing game
"$DS" explain "$CK" --data "$DATA" --footprint "$T/sim/footprint.npy" --method saliency,gradxinput --out "$T/checks" >"$T/out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -Eq '^saliency ' "$T/out" && grep -Eq '^uniform \(area share\)' "$T/out" &&
  grep -q 'real (' "$T/out"; then ok "--footprint: the pointing-game table"
else bad "--footprint table (exit $rc)"; fi
if $PY -c "
import csv, numpy as np
rows = list(csv.DictReader(open('$T/checks/pointing.csv')))
assert len(rows) == 4 and {r['class'] for r in rows} == {'bogus', 'real'}, rows
for r in rows: assert 0 <= float(r['share_mean']) <= 1 and 0 < float(r['uniform_mean']) < 1
m = np.load('$T/checks/maps_saliency.npy'); assert m.shape == (120, 16, 16), m.shape
" >"$T/out" 2>&1; then ok "pointing.csv and the maps"; else bad "pointing.csv"; fi

# the options are documented
"$DS" explain --help >"$T/out" 2>&1
if grep -q -- "--sanity " "$T/out" && grep -q -- "--footprint FILE" "$T/out"; then ok "explain --help: --sanity, --footprint"
else bad "explain --help lacks --sanity/--footprint"; fi

# errors
$PY -c "import numpy as np; np.save('$T/bad.npy', np.zeros((120, 15, 15), np.float32)); np.save('$T/few.npy', np.zeros((7, 16, 16), np.float32))"
expect_fail "--footprint of the wrong shape" "footprint .*bad.npy.*want an array \[120, 16, 16\]" \
  "$DS" explain "$CK" --data "$DATA" --footprint "$T/bad.npy"
expect_fail "--footprint with too few masks" "7 masks.*want an array \[120, 16, 16\]" \
  "$DS" explain "$CK" --data "$DATA" --footprint "$T/few.npy"
expect_fail "--footprint missing" "nothere.npy" "$DS" explain "$CK" --data "$DATA" --footprint "$T/nothere.npy"
expect_fail "--sanity with an unknown method" "unknown method 'sal'" "$DS" explain "$CK" --data "$DATA" --sanity --method sal
expect_fail "--sanity with an unknown layer" "--layer nope: no such layer.*conv1" \
  "$DS" explain "$CK" --data "$DATA" --sanity --method gradcam --layer nope
expect_fail "--sanity with a dense layer" "--layer fc1: a dense layer" \
  "$DS" explain "$CK" --data "$DATA" --sanity --method gradcam --layer fc1
expect_fail "--sanity and --footprint together" "separate runs" \
  "$DS" explain "$CK" --data "$DATA" --sanity --footprint "$T/sim/footprint.npy"
expect_fail "--sanity without --data" "--data SPEC is required" "$DS" explain "$CK" --sanity
$PY -c "import numpy as np; np.save('$T/x28.npy', np.zeros((5, 1, 28, 28), np.float32)); np.save('$T/y28.npy', np.zeros(5, np.float32))"
expect_fail "--sanity on data of the wrong shape" "samples are .*28.*16" \
  "$DS" explain "$CK" --data "npy:$T/x28.npy,$T/y28.npy" --sanity
finish checks
