#!/usr/bin/env bash
# End-to-end tests of data provenance and the survey-workflow traps (issue 12
# items 4-7): simulate's default seed is not the demo's; checkpoints record
# what they were trained on and eval/predict warn when scoring it; eval --meta
# matches rows to stamps by index and checks labels; simulate refuses a
# non-empty --out (--force clears its own files); a 3-plane cutout is not
# three 1-channel samples; best.safetensors says which split chose it.
# usage: test_provenance.sh PATH/TO/deepsky
set -u
DS=${1:?usage: test_provenance.sh DEEPSKY}
. "$(dirname "$0")/lib.sh"

meta() { # meta CKPT KEY: a checkpoint's metadata string
  $PY - "$1" "$2" <<'PYEOF'
import json, struct, sys
f = open(sys.argv[1], 'rb'); n = struct.unpack('<Q', f.read(8))[0]
print(json.loads(f.read(n))['__metadata__'].get(sys.argv[2], ''))
PYEOF
}

printf '[net]\ninput=1,20,20\nclasses=2\n[dense]\nunits=2\n[train]\nepochs=2\nbatch=50\n' >"$T/lin.cfg"

# --- item 4: disjoint default seeds, provenance recorded, overlap warned ---
expect_ok "simulate with the default seed" "$DS" simulate --out "$T/def" --n 200 --size 20 --cutouts
expect_ok "simulate the training stamps (seed 1, the demo's)" "$DS" simulate --out "$T/tr" --n 300 --size 20 --seed 1 --cutouts
$PY -c "
import numpy as np; a = np.load('$T/def/x.npy'); b = np.load('$T/tr/x.npy')
assert a.shape[0] == 200 and not (a == b[:200]).all(axis=(1, 2, 3)).any()" \
  && ok "none of simulate's default stamps is one of seed 1's" || bad "the default seed gives the demo's training stamps"
$PY -c "
import json; p = json.load(open('$T/def/provenance.json'))
e = {f['file']: f for f in p['files']}
assert e['x.npy']['sim'] == {'seed': 4242, 'size': 20, 'channels': 1, 'first': 0, 'end': 200}, e
assert e['difference.fits']['sim']['seed'] == 4242 and len(e['x.npy']['fnv1a64']) == 16" \
  && ok "provenance.json records seed 4242, stamps 0-199 and the file hashes" || bad "provenance.json"
grep -aq "SIMSEED = *4242" "$T/def/cutouts/bogus/000000.fits" && grep -aq "SIMINDEX= *0 " "$T/def/cutouts/bogus/000000.fits" \
  && ok "each cutout carries SIMSEED and SIMINDEX" || bad "cutout header"

expect_ok "train on seed 1 with a validation split" "$DS" train "$T/lin.cfg" --data "npy:$T/tr/x.npy,$T/tr/y.npy" --val-split 0.2 --out "$T/run" --quiet
grep -Eq "best: epoch [12], validation accuracy" "$T/out" && ok "train says best was chosen on validation data" || bad "train's best line"
meta "$T/run/best.safetensors" data >"$T/data.json"
$PY -c "
import json; p = json.load(open('$T/data.json'))
assert p['sim'] == [{'seed': 1, 'size': 20, 'first': 0, 'end': 300}], p
assert len(p['files']) == 1 and p['files'][0]['path'].endswith('tr/x.npy') and p['files'][0]['samples'] == 300" \
  && ok "the checkpoint's 'data' metadata: seed 1, stamps 0-299, x.npy by hash" || bad "checkpoint data provenance: $(cat "$T/data.json")"
meta "$T/run/best.safetensors" best | grep -q '"split": "validation"' && ok "the 'best' metadata names the validation split" || bad "best metadata"

expect_ok "simulate 400 stamps of seed 1" "$DS" simulate --out "$T/ov" --n 400 --size 20 --seed 1 --cutouts
expect_ok "eval on them (exit 0)" "$DS" eval "$T/run/best.safetensors" --data "npy:$T/ov/x.npy,$T/ov/y.npy"
grep -q "deepsky: warning: 300 of the 400 samples of npy:$T/ov/x.npy.* training data (simulate --seed 1 --size 20 stamps 0-299)" "$T/out" \
  && ok "eval warns: 300 of the 400 stamps are training stamps" || bad "eval overlap warning"
expect_ok "eval on the cutout folder of seed 1" "$DS" eval "$T/run/best.safetensors" --data "fits:$T/ov/cutouts"
grep -q "warning: 300 of the 400 samples" "$T/out" && ok "eval on cutouts warns by SIMINDEX" || bad "eval cutouts warning"
expect_ok "predict the cutouts of seed 1" "$DS" predict "$T/run/best.safetensors" "$T/ov/cutouts"
grep -q "warning: 300 of the 400 samples" "$T/out" && ok "predict warns too" || bad "predict warning"
expect_ok "eval on the default seed's stamps" "$DS" eval "$T/run/best.safetensors" --data "npy:$T/def/x.npy,$T/def/y.npy"
grep -q "warning" "$T/out" && bad "a warning on held-out stamps" || ok "no warning on held-out (default-seed) stamps"
mkdir -p "$T/copy" && cp "$T/tr/x.npy" "$T/copy/stamps.npy"
expect_ok "predict a renamed copy of the training array" "$DS" predict "$T/run/best.safetensors" "$T/copy/stamps.npy"
grep -q "warning: 300 of the 300 samples .*the same bytes as .*tr/x.npy" "$T/out" && ok "a copy is recognised by its hash" || bad "hash overlap"

# --- item 5: eval --meta on a cutout folder, rows matched by index, labels checked ---
expect_ok "eval --meta on the NPY array" "$DS" eval "$T/run/best.safetensors" --data "npy:$T/def/x.npy,$T/def/y.npy" --meta "$T/def/labels.csv" --json
cp "$T/out" "$T/npy.json"
expect_ok "eval --meta on the cutout folder (bogus/ then real/)" "$DS" eval "$T/run/best.safetensors" --data "fits:$T/def/cutouts" --meta "$T/def/labels.csv" --json
$PY -c "
import json; a = json.load(open('$T/npy.json')); b = json.load(open('$T/out'))
assert a['per_kind'] == b['per_kind'] and a['recall_per_snr'] == b['recall_per_snr'], (a['per_kind'], b['per_kind'])" \
  && ok "the folder's per-kind table equals the array's: rows matched by SIMINDEX" || bad "per-kind tables differ"
cut -d, -f2- "$T/def/labels.csv" >"$T/noindex.csv"
expect_fail "rows without an index against a folder in another order" "noindex\.csv:[0-9]+: label 1, but the sample it is matched to .* is labelled 0" \
  "$DS" eval "$T/run/best.safetensors" --data "fits:$T/def/cutouts" --meta "$T/noindex.csv"
sed '3s/^\([^,]*\),\([^,]*\),\([^,]*\),[^,]*,/\1,\2,\3,2s.07,/' "$T/def/labels.csv" >"$T/badsnr.csv"
expect_fail "a non-numeric snr" "badsnr\.csv:3: 'snr' is not a number: '2s\.07'" \
  "$DS" eval "$T/run/best.safetensors" --data "npy:$T/def/x.npy,$T/def/y.npy" --meta "$T/badsnr.csv"
{ cat "$T/def/labels.csv"; sed -n 7p "$T/def/labels.csv"; } >"$T/dup.csv"
expect_fail "an index twice" "dup\.csv:202: index 5 again \(first on line 7\)" \
  "$DS" eval "$T/run/best.safetensors" --data "fits:$T/def/cutouts" --meta "$T/dup.csv"
awk -F, 'NR == 1 || $2 == 1' "$T/def/labels.csv" >"$T/realonly.csv"
expect_fail "a CSV missing the folder's stamps" "realonly\.csv: no row with index" \
  "$DS" eval "$T/run/best.safetensors" --data "fits:$T/def/cutouts" --meta "$T/realonly.csv"

# --- item 6: stale cutouts, 3-plane cutouts ---
touch "$T/def/notes.txt"
expect_fail "simulate into a non-empty folder" "def is not empty .*--force" "$DS" simulate --out "$T/def" --n 50 --size 20 --cutouts
[ "$(find "$T/def/cutouts" -name '*.fits' | wc -l)" -eq 200 ] && ok "nothing was touched" || bad "refused simulate changed files"
expect_ok "simulate --force" "$DS" simulate --out "$T/def" --n 50 --size 20 --cutouts --force
[ "$(find "$T/def/cutouts" -name '*.fits' | wc -l)" -eq 50 ] && [ -e "$T/def/notes.txt" ] \
  && ok "--force left 50 cutouts, no stale ones, and the user's file" || bad "--force: $(find "$T/def/cutouts" -name '*.fits' | wc -l) cutouts"
expect_ok "simulate 3-plane cutouts" "$DS" simulate --out "$T/c3" --n 20 --size 20 --channels 3 --cutouts
expect_fail "a 3-plane cutout for a 1-channel model" "one cutout of 3 planes \(science, reference, difference: PLANE1\.\.PLANE3\)" \
  "$DS" predict "$T/run/best.safetensors" "$T/c3/cutouts"
expect_fail "eval of 3-plane cutouts with a 1-channel model" "3 planes" "$DS" eval "$T/run/best.safetensors" --data "fits:$T/c3/cutouts"

# --- item 7: best without validation data ---
expect_ok "train without validation data" "$DS" train "$T/lin.cfg" --data "npy:$T/tr/x.npy,$T/tr/y.npy" --out "$T/noval" --quiet
grep -q "best: the last epoch (2; no validation data" "$T/out" && ok "train says best is the last epoch, chosen on nothing" || bad "train's best without validation"
expect_ok "info on it" "$DS" info "$T/noval/best.safetensors"
grep -q "best: the last epoch (2; no validation data to choose on, training accuracy" "$T/out" && ! grep -q "validation accuracy" "$T/out" \
  && ok "info does not call a training number validation" || bad "info best"
cmp -s <(meta "$T/noval/best.safetensors" best) <(meta "$T/noval/last.safetensors" best) && ok "best and last record the same epoch" || bad "best vs last"
expect_ok "info on the validated run" "$DS" info "$T/run/last.safetensors"
grep -Eq "best: epoch [12], validation accuracy" "$T/out" && ok "info names the validation split" || bad "info validation"

# --- the demo: a validation split from its training stamps ---
expect_ok "a small demo" "$DS" demo --out "$T/demo" --n 400 --epochs 1
grep -q "360 samples, 40 validation" "$T/out" && grep -q "best: epoch 1, validation accuracy" "$T/out" \
  && ok "the demo trains on 360 stamps and chooses best on 40 held out" || bad "demo validation split"
meta "$T/demo/best.safetensors" data | grep -q '"seed": 1, "size": 45, "first": 0, "end": 400' && ok "the demo's checkpoint records seed 1, stamps 0-399" || bad "demo data provenance"

# train warns when --val or --test data is training data too (the same stamps; a sharded training set through its index's "sim")
expect_ok "simulate 300 stamps, seed 5" "$DS" simulate --out "$T/u5" --n 300 --size 20 --seed 5
expect_ok "simulate 300 stamps, seed 6" "$DS" simulate --out "$T/u6" --n 300 --size 20 --seed 6
expect_ok "simulate 600 stamps of seed 5 as shards" "$DS" simulate --out "$T/s5" --n 600 --size 20 --seed 5 --shards 200
cat >"$T/tiny20.cfg" <<'CFG'
[net]
input = 1,20,20
classes = 2
[dense]
units = 2
[train]
epochs = 1
batch = 50
CFG
"$DS" train "$T/tiny20.cfg" --data "$T/s5" --val "npy:$T/u5/x.npy,$T/u5/y.npy" --test "npy:$T/u6/x.npy,$T/u6/y.npy" --out "$T/ov" --quiet >"$T/out" 2>&1
grep -q "warning: 300 of the 300 samples of the validation data .* are training data too (simulate --seed 5 --size 20 stamps 0-599)" "$T/out" \
  && ok "train: validation stamps inside the streamed training set are flagged" || bad "train overlap warning (validation)"
grep -q "samples of the test data" "$T/out" && bad "train: other stamps flagged as overlap" || ok "train: the test stamps of another seed are not flagged"
"$DS" train "$T/tiny20.cfg" --data "npy:$T/u6/x.npy,$T/u6/y.npy" --test "npy:$T/u6/x.npy,$T/u6/y.npy" --out "$T/ov2" --quiet >"$T/out" 2>&1
grep -q "300 of the 300 samples of the test data" "$T/out" && ok "train: --test the same file as --data is flagged" || bad "train overlap warning (test)"
"$DS" train "$T/tiny20.cfg" --data "npy:$T/u6/x.npy,$T/u6/y.npy" --val-split 0.2 --out "$T/ov3" --quiet >"$T/out" 2>&1
grep -q "training data too" "$T/out" && bad "--val-split flagged as overlap" || ok "train: --val-split is not an overlap"

finish provenance
