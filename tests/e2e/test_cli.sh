#!/usr/bin/env bash
# End-to-end tests of the deepsky command line: every subcommand, resume after
# SIGKILL, NumPy reading a checkpoint, and one test per bad-input class.
# usage: test_cli.sh PATH/TO/deepsky
set -u
DS=${1:?usage: test_cli.sh DEEPSKY}
. "$(dirname "$0")/lib.sh"

# --- data: 3 classes of 1x8x8 stamps (a bright row, column or diagonal) ---
$PY - "$T" "$(dirname "$0")" <<'PYEOF'
import sys, numpy as np
t = sys.argv[1]
sys.path.insert(0, sys.argv[2])
import stamps
rng = np.random.default_rng(0)
make = lambda n: stamps.make(rng, n, 0.3, 2)
x, y = make(1200); np.save(f"{t}/x.npy", x); np.save(f"{t}/y.npy", y)
x, y = make(300); np.save(f"{t}/vx.npy", x); np.save(f"{t}/vy.npy", y)
x[5, 0, 3, 3] = np.nan; np.save(f"{t}/nanx.npy", x)
np.save(f"{t}/x4.npy", np.zeros((10, 1, 4, 4), np.float32)); np.save(f"{t}/y4.npy", np.zeros(10, np.float32))
np.save(f"{t}/y9.npy", (np.arange(1200) % 9).astype(np.float32))
import struct, zlib
def png(path, img):  # 8-bit grayscale PNG, by hand
    raw = b"".join(b"\0" + bytes(row) for row in img)
    chunk = lambda k, d: struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", len(img[0]), len(img), 8, 0, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
png(f"{t}/row.png", [[255 if r == 3 else 0 for c in range(8)] for r in range(8)])
open(f"{t}/trunc.npy", "wb").write(open(f"{t}/x.npy", "rb").read()[:5000])
PYEOF

cat > "$T/tiny.cfg" <<'CFG'
# a small CNN for 8x8 stamps
[net]
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

[dropout]
p=0.2

[dense]
units=3

[train]
optimizer=adam
lr=0.01
batch=32
epochs=3
seed=7
CFG

DATA="npy:$T/x.npy,$T/y.npy"
VAL="npy:$T/vx.npy,$T/vy.npy"

# --- every subcommand ---
expect_ok "help" "$DS" --help
expect_ok "train --help" "$DS" train --help
expect_ok "info model file" "$DS" info "$T/tiny.cfg"
grep -q "conv" "$T/out" && grep -qE "total: [0-9]+ parameters" "$T/out" && ok "info shows layers and totals" || bad "info table"
expect_ok "train" "$DS" train "$T/tiny.cfg" --data "$DATA" --val "$VAL" --out "$T/run" --quiet
grep -q "epoch 3/3" "$T/out" && ok "train prints epochs (plain lines off a terminal)" || bad "train epoch lines"
for f in last.safetensors best.safetensors metrics.csv loss.png accuracy.png confusion.png report.html; do
  [ -s "$T/run/$f" ] && ok "train wrote $f" || bad "train wrote $f"
done
[ "$(grep -vc '^#' "$T/run/metrics.csv")" -eq 4 ] && ok "metrics.csv has a header and 3 rows (after its # provenance lines)" || bad "metrics.csv rows"
expect_ok "info checkpoint" "$DS" info "$T/run/best.safetensors"
expect_ok "eval" "$DS" eval "$T/run/best.safetensors" --data "$VAL"
acc=$(awk '/^accuracy/ {print $2}' "$T/out")
$PY -c "import sys; sys.exit(0 if float('$acc') > 0.8 else 1)" && ok "eval accuracy $acc > 0.8" || bad "eval accuracy $acc"
grep -q "confusion matrix" "$T/out" && grep -q "precision" "$T/out" && ok "eval prints per-class metrics and confusion" || bad "eval report"
expect_ok "eval --json" "$DS" eval "$T/run/best.safetensors" --data "$VAL" --json
$PY -c "import json; d=json.load(open('$T/out')); assert abs(d['accuracy']-$acc) < 1e-4 and len(d['confusion'])==3" && ok "eval JSON parses and agrees" || bad "eval JSON"
expect_ok "predict text" "$DS" predict "$T/run/best.safetensors" --data "$VAL" --top 2
[ "$(wc -l <"$T/out")" -eq 300 ] && ok "predict: one line per sample" || bad "predict lines"
expect_ok "predict npy" "$DS" predict "$T/run/best.safetensors" "$T/vx.npy" --format npy --output "$T/p.npy"
$PY -c "
import numpy as np; p=np.load('$T/p.npy'); y=np.load('$T/vy.npy')
assert p.shape==(300,3) and abs(p.sum(1)-1).max()<1e-4
assert abs((p.argmax(1)==y).mean() - $acc) < 1e-4" && ok "predict NPY: probabilities agree with eval" || bad "predict NPY"
expect_ok "predict a PNG file" "$DS" predict "$T/run/best.safetensors" "$T/row.png" --top 3
grep -Eq "row\.png\[0\]	[^ ]+ [0-9.]+	[^ ]+ [0-9.]+	[^ ]+ [0-9.]+" "$T/out" && ok "predict PNG prints the top 3" || bad "predict PNG output"
expect_ok "predict json" "$DS" predict "$T/run/best.safetensors" "$T/vx.npy" --format json
$PY -c "import json; d=json.load(open('$T/out')); assert len(d)==300 and len(d[0]['probabilities'])==3" && ok "predict JSON parses" || bad "predict JSON"

# --- on a terminal: a live progress bar (script(1) provides the pty) ---
if command -v script >/dev/null; then
  script -qec "$DS train '$T/tiny.cfg' --data '$DATA' --epochs 1 --out '$T/tty'" /dev/null >"$T/out" 2>&1
  if grep -q $'\r' "$T/out" && grep -q "ETA" "$T/out" && grep -q "img/s" "$T/out"; then ok "progress bar on a terminal"
  else bad "progress bar on a terminal"; fi
fi

# --- a checkpoint read with NumPy alone matches what deepsky prints ---
key=$($PY -c "
import json,struct; b=open('$T/run/best.safetensors','rb').read(); n=struct.unpack('<Q',b[:8])[0]; h=json.loads(b[8:8+n])
print(sorted(k for k in h if k.endswith('.weight'))[0])")
expect_ok "info --tensor" "$DS" info "$T/run/best.safetensors" --tensor "$key"
$PY - "$T/run/best.safetensors" "$key" "$T/out" <<'PYEOF' && ok "NumPy alone reads '$key' equal to deepsky's print" || bad "NumPy checkpoint read"
import json, struct, sys
import numpy as np
path, key, printed = sys.argv[1:]
b = open(path, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
s, e = h[key]["data_offsets"]
a = np.frombuffer(b[8 + n + s:8 + n + e], "<f4").reshape(h[key]["shape"])
lines = open(printed).read().split("\n")
vals = np.array([float(v) for l in lines[1:] for v in l.split()], np.float32)
assert lines[0].startswith(key) and vals.size == a.size, (lines[0], vals.size, a.shape)
assert np.array_equal(vals, a.ravel()), np.abs(vals - a.ravel()).max()
assert "[net]" in h["__metadata__"]["model"]
PYEOF

# --- resume after SIGKILL: bit-identical to an uninterrupted run ---
# (40 epochs: long enough that the kill lands mid-run however fast training gets)
"$DS" train "$T/tiny.cfg" --data "$DATA" --epochs 40 --out "$T/full" --quiet >/dev/null 2>&1
"$DS" train "$T/tiny.cfg" --data "$DATA" --epochs 40 --out "$T/killed" --quiet >"$T/kill.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [ -f "$T/killed/metrics.csv" ] && [ "$(grep -vc '^#' "$T/killed/metrics.csv")" -ge 2 ] && break
  sleep 0.05
done
sleep 0.1
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
rows=$(($(grep -vc '^#' "$T/killed/metrics.csv") - 1)) # "# key: value" lines are the provenance, not rows
if [ "$rows" -lt 40 ]; then ok "SIGKILL landed after epoch $rows of 40"; else bad "run finished before the kill"; fi
expect_ok "resume (settings come from the checkpoint)" "$DS" train --resume "$T/killed/last.safetensors" --data "$DATA" --quiet
if cmp -s "$T/full/last.safetensors" "$T/killed/last.safetensors"; then ok "resumed run is bit-identical to the uninterrupted one"
else bad "resumed weights differ"; fi

# --- bad input: non-zero exit and a message naming the problem ---
expect_fail "missing model file" "no-such\.cfg" "$DS" train "$T/no-such.cfg" --data "$DATA"
expect_fail "missing data file" "nothere\.npy" "$DS" train "$T/tiny.cfg" --data "npy:$T/nothere.npy,$T/y.npy" --out "$T/r1"
expect_fail "truncated NPY" "trunc\.npy.*(truncated|short|expected)" "$DS" train "$T/tiny.cfg" --data "npy:$T/trunc.npy,$T/y.npy" --out "$T/r2"
head -c 3000 "$T/run/best.safetensors" >"$T/cut.safetensors"
expect_fail "truncated checkpoint" "cut\.safetensors" "$DS" eval "$T/cut.safetensors" --data "$VAL"
sed 's/^filters=8/filterz=8/' "$T/tiny.cfg" >"$T/unknown_key.cfg"
expect_fail "unknown key" "unknown_key\.cfg:7:.*filterz" "$DS" train "$T/unknown_key.cfg" --data "$DATA"
sed 's/^size=3/size=three/' "$T/tiny.cfg" >"$T/bad_value.cfg"
expect_fail "bad value" "bad_value\.cfg:8:.*size" "$DS" train "$T/bad_value.cfg" --data "$DATA"
expect_fail "bad CLI value" "--epochs" "$DS" train "$T/tiny.cfg" --data "$DATA" --epochs zero
expect_fail "shape mismatch (data vs model)" "\[1, 4, 4\].*\[1, 8, 8\]" "$DS" train "$T/tiny.cfg" --data "npy:$T/x4.npy,$T/y4.npy" --out "$T/r3"
sed 's/^input=1,8,8/input=1,1,1/' "$T/tiny.cfg" >"$T/tiny_shape.cfg"
expect_fail "shape mismatch (in the model)" "tiny_shape\.cfg:[0-9]+:.*maxpool" "$DS" info "$T/tiny_shape.cfg"
expect_fail "NaN in data" "sample 5.*NaN|NaN.*sample 5" "$DS" train "$T/tiny.cfg" --data "npy:$T/nanx.npy,$T/vy.npy" --out "$T/r4"
expect_fail "unlabelled training data" "no labels" "$DS" train "$T/tiny.cfg" --data "$T/x.npy" --out "$T/r5"
expect_fail "more classes than the model" "classes" "$DS" train "$T/tiny.cfg" --data "npy:$T/x.npy,$T/y9.npy" --out "$T/r6"
expect_fail "unknown command" "unknown command" "$DS" fly
expect_fail "unknown option" "--frobnicate" "$DS" eval "$T/run/best.safetensors" --frobnicate
cp "$T/run/last.safetensors" "$T/keep.safetensors"
# [train] lr is bounded as --lr (1e30 is refused), so the divergence comes from unnormalised data near 3e38
sed 's/^classes=3/classes=3\nnormalize=none/' "$T/tiny.cfg" >"$T/explode.cfg"
$PY -c "import numpy as np, sys; np.save(sys.argv[2], (np.load(sys.argv[1]) * 1e38).astype(np.float32))" "$T/x.npy" "$T/hugex.npy"
cp -r "$T/run" "$T/nanrun"
expect_fail "NaN loss stops training" "loss is (NaN|infinite)|gradient norm is not finite" "$DS" train "$T/explode.cfg" --data "npy:$T/hugex.npy,$T/y.npy" --out "$T/nanrun" --quiet
cmp -s "$T/nanrun/last.safetensors" "$T/keep.safetensors" && ok "the last good checkpoint stays intact after a NaN loss" || bad "checkpoint changed by the NaN run"

# --- pretrain: a Deep Belief Network's [rbm] layers, then train --init ---
$PY - "$T" <<'PYEOF'
import sys, numpy as np
t = sys.argv[1]
x = np.load(f"{t}/x.npy"); np.save(f"{t}/bx.npy", (x > 1).astype(np.float32))  # binary stamps
PYEOF
cat > "$T/dbn.cfg" <<'CFG'
[net]
input=1,8,8
classes=3
normalize=none

[rbm]
name=r1
units=20

[rbm]
name=r2
units=12

[dense]
units=3

[pretrain]
epochs=2
batch=50
lr=0.1

[train]
optimizer=sgd
lr=0.1
momentum=0.9
batch=50
epochs=2
seed=3
CFG
BDATA="npy:$T/bx.npy,$T/y.npy"
expect_ok "pretrain --help" "$DS" pretrain --help
mkdir -p "$T/dbn" && echo stale >"$T/dbn/pretrained.safetensors.tmp.Ab12Cd" && echo mine >"$T/dbn/notes.tmp.txt"
expect_ok "pretrain a stack of two RBMs" "$DS" pretrain "$T/dbn.cfg" --data "$BDATA" --out "$T/dbn"
[ ! -e "$T/dbn/pretrained.safetensors.tmp.Ab12Cd" ] && [ -e "$T/dbn/notes.tmp.txt" ] &&
  ok "pretrain removes its own stale temporary file, nothing else" || bad "pretrain left its stale temporary file"
grep -q "r2 epoch 2/2" "$T/out" && ok "pretrain trains each [rbm] in turn" || bad "pretrain log"
for f in pretrained.safetensors pretrain.csv r1_weights.png r1_samples.png; do
  [ -s "$T/dbn/$f" ] && ok "pretrain wrote $f" || bad "pretrain did not write $f"
done
$PY - "$T/dbn/r1_weights.png" <<'PYEOF' && ok "weights PNG: 20 tiles of 8x8 in a grid" || bad "weights PNG size"
import struct, sys
d = open(sys.argv[1], "rb").read()
w, h = struct.unpack(">II", d[16:24])
assert d[:8] == b"\x89PNG\r\n\x1a\n" and (w, h) == (5 * 9 + 1, 4 * 9 + 1), (w, h)
PYEOF
expect_ok "pretrain with held-out data" "$DS" pretrain "$T/dbn.cfg" --data "$BDATA" --val-split 0.2 --out "$T/dbnv"
grep -Eq "r2 epoch 2/2 .*held-out .*gap .*exact log-likelihood -?[0-9]" "$T/out" && ok "pretrain prints the free-energy gap and, for 12 hidden units, the exact log-likelihood" || bad "pretrain monitors"
expect_ok "train --init from the pretrained weights" "$DS" train "$T/dbn.cfg" --init "$T/dbn/pretrained.safetensors" --data "$BDATA" --out "$T/dbnft" --quiet
grep -q "weights from" "$T/out" && ok "train reports the initial weights" || bad "train --init log"
expect_ok "eval the fine-tuned DBN" "$DS" eval "$T/dbnft/best.safetensors" --data "$BDATA"
sed 's/^normalize=none/normalize=standard/' "$T/dbn.cfg" >"$T/dbn_std.cfg"
expect_fail "Bernoulli RBM on standardised data" "Bernoulli.*normalize=none" "$DS" pretrain "$T/dbn_std.cfg" --data "$BDATA" --out "$T/r7"
sed -e 's/^normalize=none/normalize=standard/' -e 's/^units=20/units=20\nvisible=gaussian/' -e 's/^lr=0.1$/lr=0.01/' "$T/dbn.cfg" >"$T/dbn_gauss.cfg"
expect_ok "pretrain Gaussian visible units on standardised real values" "$DS" pretrain "$T/dbn_gauss.cfg" --data "$DATA" --out "$T/dbng"
grep -q "gaussian visible" "$T/out" && ok "the first RBM is Gaussian-Bernoulli" || bad "gaussian rbm log"
sed -e 's/^normalize=none/normalize=standard/' -e 's/^\[rbm\]$/[instancenorm]\n\n[rbm]/' -e 's/^units=20/units=20\nvisible=gaussian/' -e 's/^lr=0.1$/lr=0.01/' "$T/dbn.cfg" | awk '!(/^\[instancenorm\]$/ && seen++)' >"$T/dbn_in.cfg"
expect_ok "pretrain an [rbm] after [instancenorm]" "$DS" pretrain "$T/dbn_in.cfg" --data "$DATA" --out "$T/dbni"
grep -q "learns from 'instancenorm1'" "$T/out" && ok "the first RBM learns from the instance-normed stamps" || bad "pretrain after instancenorm"
expect_fail "pretrain without [rbm] layers" "no \[rbm\] layers" "$DS" pretrain "$T/tiny.cfg" --data "$DATA" --out "$T/r8"
expect_fail "--init and --resume together" "--init.*--resume|--resume.*--init" "$DS" train "$T/dbn.cfg" --init "$T/dbn/pretrained.safetensors" --resume "$T/dbn/pretrained.safetensors" --data "$BDATA"
expect_fail "--init from another model's checkpoint" "r1|rbm|missing|shape" "$DS" train "$T/dbn.cfg" --init "$T/run/best.safetensors" --data "$BDATA" --out "$T/r9"
sed 's/^units=20/units=0/' "$T/dbn.cfg" >"$T/dbn_bad.cfg"
expect_fail "bad [rbm] units" "dbn_bad\.cfg:[0-9]+:.*units" "$DS" pretrain "$T/dbn_bad.cfg" --data "$BDATA"
sed 's/^lr=0.1$/lr=-1/' "$T/dbn.cfg" >"$T/dbn_badlr.cfg"
expect_fail "bad [pretrain] lr" "dbn_badlr\.cfg:[0-9]+:.*\[pretrain\].*lr" "$DS" pretrain "$T/dbn_badlr.cfg" --data "$BDATA"
sed 's/^units=12/units=12\nlr=0.02\nepochs=3/' "$T/dbn.cfg" >"$T/dbn_own.cfg"
expect_ok "an [rbm] with its own lr and epochs" "$DS" pretrain "$T/dbn_own.cfg" --data "$BDATA" --out "$T/dbno"
grep -q "'r1'.*2 epochs at rate 0.1$" "$T/out" && grep -q "'r2'.*3 epochs at rate 0.02$" "$T/out" && grep -q "r2 epoch 3/3" "$T/out" && ok "each [rbm] trains at its own rate, else [pretrain]'s" || bad "per-RBM lr and epochs"
sed 's/^units=12/units=12\nlr=0/' "$T/dbn.cfg" >"$T/dbn_badown.cfg"
expect_fail "bad [rbm] lr" "dbn_badown\.cfg:[0-9]+:.*\[rbm\].*lr" "$DS" pretrain "$T/dbn_badown.cfg" --data "$BDATA"

# --- simulate: survey stamps ---
expect_ok "simulate stamps" "$DS" simulate --out "$T/sim" --n 300 --size 30 --channels 3 --seed 4
grep -Eq "300 stamps of 30x30 .*real.*bogus" "$T/out" && ok "simulate reports the classes" || bad "simulate summary"
expect_ok "simulate again with the same seed" "$DS" simulate --out "$T/sim2" --n 300 --size 30 --channels 3 --seed 4
cmp -s "$T/sim/x.npy" "$T/sim2/x.npy" && cmp -s "$T/sim/labels.csv" "$T/sim2/labels.csv" && ok "the same seed gives the same stamps" || bad "simulate is not deterministic"
$PY - "$T/sim" <<'PYEOF' && ok "simulated arrays and CSV agree (shape, labels, kinds)" || bad "simulated files"
import sys, csv, numpy as np
d = sys.argv[1]
x, y = np.load(f"{d}/x.npy"), np.load(f"{d}/y.npy")
rows = list(csv.DictReader(open(f"{d}/labels.csv")))
assert x.shape == (300, 3, 30, 30) and x.dtype == np.float32 and np.isfinite(x).all()
assert len(rows) == 300 and all(int(r["label"]) == int(v) for r, v in zip(rows, y))
assert all((r["kind"] == "real") == (r["label"] == "1") for r in rows)
assert np.allclose(x[:, 2], x[:, 0] - x[:, 1], atol=1e-3)  # difference = science - reference
PYEOF
for f in science.fits reference.fits difference.fits; do [ -s "$T/sim/$f" ] && ok "simulate wrote $f" || bad "simulate did not write $f"; done
printf '[net]\ninput=1,30,30\nclasses=2\n[dense]\nunits=2\n[train]\nepochs=1\nbatch=50\n' >"$T/lin30.cfg"
expect_ok "train on the simulated FITS cube" "$DS" train "$T/lin30.cfg" --data "fits:$T/sim/difference.fits,labels=$T/sim/y.npy" --out "$T/fitsrun" --quiet
grep -q "300 samples" "$T/out" && ok "the FITS cube holds the 300 stamps" || bad "FITS cube count"
# one FITS cutout per stamp: header keywords, a 3-channel model reads the triplets, predict on a file and a folder
expect_ok "simulate --cutouts" "$DS" simulate --out "$T/cut" --n 120 --size 30 --channels 3 --seed 5 --cutouts
[ "$(find "$T/cut/cutouts" -name '*.fits' | wc -l)" -eq 120 ] && ok "simulate wrote 120 cutouts" || bad "cutout count"
$PY - "$T/cut" <<'PYEOF' && ok "cutout headers hold class, kind, S/N and the pixels match x.npy" || bad "cutout headers"
import sys, glob, csv, numpy as np
d = sys.argv[1]
x = np.load(f"{d}/x.npy"); rows = list(csv.DictReader(open(f"{d}/labels.csv")))
f = sorted(glob.glob(f"{d}/cutouts/real/*.fits"))[0]
raw = open(f, "rb").read()
hdr = {}
for i in range(0, 2880 * 4, 80):
    card = raw[i:i + 80].decode()
    if card.startswith("END"): break
    if card[8:10] == "= ": hdr[card[:8].strip()] = card[10:].split("/")[0].strip().strip("'").strip()
n = int(hdr["SIMINDEX"]); r = rows[n]
assert hdr["CLASS"] == "real" and hdr["LABEL"] == "1" and hdr["NAXIS3"] == "3" and r["label"] == "1"
assert abs(float(hdr["SNR"]) - float(r["snr"])) < 1e-3 * float(r["snr"]) and hdr["PLANE3"] == "difference"
start = (len(raw) - 3 * 30 * 30 * 4) // 2880 * 2880
pix = np.frombuffer(raw[start:start + 3 * 900 * 4], ">f4").reshape(3, 30, 30)
assert np.array_equal(pix, x[n])
PYEOF
printf '[net]\ninput=3,30,30\nclasses=2\n[instancenorm]\n[conv]\nfilters=4\nsize=3\nactivation=relu\n[global_avgpool]\n[dense]\nunits=2\n[train]\nepochs=1\nbatch=40\n' >"$T/tri.cfg"
expect_ok "train a 3-channel model on the cutout folder" "$DS" train "$T/tri.cfg" --data "$T/cut/cutouts" --val-split 0.25 --out "$T/trirun" --quiet
grep -q "90 samples, 30 validation" "$T/out" && ok "the folder's 3-plane cutouts are 120 samples of 3 channels" || bad "cutouts as samples"
one=$(find "$T/cut/cutouts/real" -name '*.fits' | sort | head -1)
expect_ok "predict one FITS cutout" "$DS" predict "$T/trirun/best.safetensors" "$one" --top 2
[ "$(grep -vc '^deepsky: warning' "$T/out")" -eq 1 ] && grep -q "$(basename "$one")\[0\]" "$T/out" && ok "one cutout, one prediction" || bad "predict on a cutout"
grep -q "^deepsky: warning: 1 of the 1 samples .* training data" "$T/out" && ok "predicting a training cutout warns" || bad "no training-data warning"
expect_ok "predict a folder of FITS cutouts" "$DS" predict "$T/trirun/best.safetensors" "$T/cut/cutouts" --format json --output "$T/pred.json"
$PY -c "
import json; d = json.load(open('$T/pred.json'))
assert len(d) == 120 and all(r['source'].endswith('.fits') and r['index'] == 0 for r in d)
assert [r['source'] for r in d] == sorted(r['source'] for r in d)" && ok "predict on the folder: one record per file, named" || bad "predict on a folder"
expect_ok "eval on the cutout folder" "$DS" eval "$T/trirun/best.safetensors" --data "fits:$T/cut/cutouts" --json
$PY -c "
import json; m = json.loads(''.join(l for l in open('$T/out') if not l.startswith('deepsky: warning')))
assert m['samples'] == 120 and len(m['reliability']) == 10 and 0 <= m['ece'] <= 1
assert sum(b['count'] for b in m['reliability']) == 120" && ok "eval JSON has the reliability bins and ECE" || bad "eval reliability"
expect_fail "3-plane cutouts as one channel each" "one cutout of 3 planes \(science, reference, difference: PLANE1..PLANE3\)" "$DS" eval "$T/trirun/best.safetensors" --data "fits:$T/cut/cutouts,channels=1"
expect_fail "a 3-plane cutout as 2-channel samples" "one cutout of 3 planes .* samples of 2 channels" "$DS" predict "$T/trirun/best.safetensors" --data "fits:$one,channels=2"
expect_ok "eval with per-stamp metadata" "$DS" eval "$T/trirun/best.safetensors" --data "npy:$T/cut/x.npy,$T/cut/y.npy" --meta "$T/cut/labels.csv"
grep -q "bogus rejected, per kind" "$T/out" && grep -Eq "cosmic_ray +[0-9]+ of +[0-9]+" "$T/out" && grep -q "real asteroids found, per S/N" "$T/out" && ok "eval --meta breaks rejection down by kind and recall by S/N" || bad "eval --meta text"
expect_ok "eval --meta --json" "$DS" eval "$T/trirun/best.safetensors" --data "npy:$T/cut/x.npy,$T/cut/y.npy" --meta "$T/cut/labels.csv" --json
$PY -c "
import json, csv; m = json.loads(''.join(l for l in open('$T/out') if not l.startswith('deepsky: warning'))); rows = list(csv.DictReader(open('$T/cut/labels.csv')))
assert sum(k['count'] for k in m['per_kind']) == 120 and len(m['recall_per_snr']) == 5
assert sum(b['count'] for b in m['recall_per_snr']) == sum(r['label'] == '1' for r in rows)" && ok "eval --meta JSON counts every stamp" || bad "eval --meta JSON"
head -50 "$T/cut/labels.csv" >"$T/short.csv"
expect_fail "eval --meta with too few rows" "short\.csv: no row with index 49, the simulator index of sample 49" "$DS" eval "$T/trirun/best.safetensors" --data "npy:$T/cut/x.npy,$T/cut/y.npy" --meta "$T/short.csv"
printf 'a,b\n1,2\n' >"$T/nokind.csv"
expect_fail "eval --meta without kind or snr" "nokind\.csv: no 'kind' or 'snr' column" "$DS" eval "$T/trirun/best.safetensors" --data "npy:$T/cut/x.npy,$T/cut/y.npy" --meta "$T/nokind.csv"
expect_fail "eval --meta for three classes" "two classes" "$DS" eval "$T/run/best.safetensors" --data "$VAL" --meta "$T/cut/labels.csv"
[ -s "$T/trirun/reliability.png" ] && grep -q reliability.png "$T/trirun/report.html" && ok "train writes the reliability diagram into its report" || bad "no reliability.png"
expect_fail "simulate: two channels" "--channels" "$DS" simulate --out "$T/sim3" --channels 2
expect_fail "simulate: tiny stamps" "--size" "$DS" simulate --out "$T/sim3" --size 4
expect_fail "simulate: no --out" "--out" "$DS" simulate --n 5

# --- demo: the main job, small ---
expect_ok "demo end to end (400 stamps, 1 epoch)" "$DS" demo --out "$T/demo" --n 400 --epochs 1
grep -q "missed-detection rate at 1% FPR" "$T/out" && grep -q "bogus rejected, per kind" "$T/out" && grep -q "per S/N" "$T/out" && ok "demo prints the survey metrics" || bad "demo metrics"
grep -q "expected calibration error" "$T/out" && grep -q "confusion matrix" "$T/out" && ok "demo prints calibration and the confusion matrix" || bad "demo calibration"
for f in report.html roc.png reliability.png confusion.png recall_snr.png stamps_real.png stamps_bogus.png best.safetensors; do
  [ -s "$T/demo/$f" ] && ok "demo wrote $f" || bad "demo did not write $f"
done
"$DS" predict "$T/demo/best.safetensors" "$T/demo/test_x.npy" 2>/dev/null | head -3 | grep -Eq "	(bogus|real) " &&
  ok "the demo's checkpoint keeps the class names (predict prints bogus/real)" || bad "demo checkpoint without class names"
grep -q "roc.png" "$T/demo/report.html" && ok "the report shows the ROC curve" || bad "report lacks roc.png"
expect_fail "demo: too few stamps" "--n" "$DS" demo --out "$T/demo2" --n 10

echo "cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
