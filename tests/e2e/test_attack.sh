#!/usr/bin/env bash
# End-to-end tests of `deepsky attack` and adversarial training: FGSM and
# PGD on a small trained model write their table, curve, grid and NPY; PGD
# at eps 0 gives exactly the clean accuracy; adversarial examples stay in
# the eps ball and the clipping range; [train] adversarial=fgsm|pgd trains;
# bad options, a wrong input shape, data without labels and a checkpoint
# without a classifying head are clear errors.
set -u
DS=$1
. "$(dirname "$0")/lib.sh"

$PY - "$T" <<'EOF' || { bad "make data"; finish attack; exit 1; }
import sys, numpy as np
t = sys.argv[1]
r = np.random.default_rng(3)
n = 400
y = r.integers(0, 3, n)
x = r.uniform(0, 0.3, (n, 1, 12, 12)).astype(np.float32)
for i in range(n):  # a bright bar whose place says the class
    x[i, 0, 2 + 3 * y[i]:4 + 3 * y[i], 2:10] += 0.6
np.save(f"{t}/x.npy", np.clip(x, 0, 1)); np.save(f"{t}/y.npy", y.astype(np.float32))
np.save(f"{t}/x_bad.npy", np.zeros((10, 1, 8, 8), np.float32))
EOF
cat >"$T/m.cfg" <<'CFG'
[net]
input = 1,12,12
classes = 3
[conv]
filters = 6
size = 3
pad = 1
batch_normalize = 1
activation = relu
[maxpool]
size = 2
[dense]
units = 16
activation = relu
[dropout]
p = 0.3
[dense]
units = 3
[train]
optimizer = adam
lr = 0.01
batch = 32
epochs = 3
CFG
D="npy:$T/x.npy,$T/y.npy"
expect_ok "train a small model" "$DS" train "$T/m.cfg" --data "$D" --out "$T/r" --quiet
CK=$T/r/last.safetensors

expect_ok "fgsm" "$DS" attack "$CK" --data "$D" --method fgsm --eps 0,0.05,0.2 --clip 0,1 --out "$T/a1"
for f in attack.csv robustness.png examples.png adversarial_eps0.npy adversarial_eps0.05.npy adversarial_eps0.2.npy; do
  [ -s "$T/a1/$f" ] && ok "fgsm wrote $f" || bad "fgsm wrote $f"
done
expect_ok "pgd (random start, 2 restarts)" "$DS" attack "$CK" --data "$D" --method pgd --eps 0,0.3 --steps 5 \
  --restarts 2 --clip 0,1 --out "$T/a2"
expect_ok "pgd l2" "$DS" attack "$CK" --data "$D" --method pgd --norm l2 --eps 0.5 --steps 5 --clip none --out "$T/a3"
$PY - "$T" <<'EOF' >"$T/out" 2>&1 && ok "eps 0 equals clean exactly; the balls and the clipping hold; accuracy falls with eps" || bad "attack results"
import sys, csv, numpy as np
t = sys.argv[1]
x = np.load(f"{t}/x.npy")
for d in ("a1", "a2"):
    rows = list(csv.DictReader(open(f"{t}/{d}/attack.csv")))
    r0 = rows[0]
    assert all(f"adversarial_recall_{k}" in r0 for k in range(3)), r0.keys()
    assert r0["adversarial_recall_1"] == r0["clean_recall_1"], r0
    assert float(r0["eps"]) == 0 and r0["adversarial_accuracy"] == r0["clean_accuracy"], (d, r0)
    assert float(rows[-1]["adversarial_accuracy"]) < float(r0["clean_accuracy"]), (d, rows)
    assert np.array_equal(np.load(f"{t}/{d}/adversarial_eps0.npy"), x), d
xa = np.load(f"{t}/a1/adversarial_eps0.2.npy")
assert np.abs(xa - x).max() <= 0.2 + 1e-6 and xa.min() >= 0 and xa.max() <= 1
xa = np.load(f"{t}/a2/adversarial_eps0.3.npy")
assert np.abs(xa - x).max() <= 0.3 + 1e-6 and xa.min() >= 0 and xa.max() <= 1
xa = np.load(f"{t}/a3/adversarial_eps0.5.npy")
n2 = np.sqrt(((xa - x) ** 2).reshape(len(x), -1).sum(1))
assert n2.max() <= 0.5 * (1 + 1e-5), n2.max()
EOF
"$DS" attack "$CK" --data "$D" --method pgd --eps 0.1 --steps 3 --max 50 --seed 5 >"$T/p1" 2>&1
"$DS" attack "$CK" --data "$D" --method pgd --eps 0.1 --steps 3 --max 50 --seed 5 --batch 7 >"$T/p2" 2>&1
grep -q "(50 samples)" "$T/p1" && ok "--max" || bad "--max"

# adversarial training through the trainer
cp "$T/m.cfg" "$T/fgsm.cfg"
printf 'adversarial = fgsm\nadversarial_eps = 0.1\n' >>"$T/fgsm.cfg"
expect_ok "train adversarial=fgsm" "$DS" train "$T/fgsm.cfg" --data "$D" --out "$T/rf" --quiet
grep -q "adversarial training: FGSM" "$T/out" && ok "fgsm training says what it does" || bad "fgsm training line"
cp "$T/m.cfg" "$T/pgd.cfg"
printf 'adversarial = pgd\nadversarial_eps = 0.1\nadversarial_steps = 3\nadversarial_clip = 0,1\n' >>"$T/pgd.cfg"
expect_ok "train adversarial=pgd" "$DS" train "$T/pgd.cfg" --data "$D" --out "$T/rp" --quiet
grep -q "PGD-3 (Linf) eps 0.1" "$T/out" && ok "pgd training says what it does" || bad "pgd training line"
expect_ok "resume an adversarial run" "$DS" train --resume "$T/rp/last.safetensors" --data "$D" --epochs 4 --out "$T/rp" --quiet
printf 'adversarial = pgd\n' >"$T/tail"; cat "$T/m.cfg" "$T/tail" >"$T/noeps.cfg"
expect_fail "adversarial without eps" "noeps.cfg:.*adversarial_eps" "$DS" train "$T/noeps.cfg" --data "$D" --out "$T/x"

# errors
expect_fail "eps < 0" "negative" "$DS" attack "$CK" --data "$D" --method fgsm --eps -0.1
expect_fail "eps not a number" "not a number" "$DS" attack "$CK" --data "$D" --method fgsm --eps 0.1,abc
expect_fail "unknown method" "not fgsm or pgd" "$DS" attack "$CK" --data "$D" --method cw --eps 0.1
expect_fail "no method" "usage" "$DS" attack "$CK" --data "$D" --eps 0.1
expect_fail "bad clip" "clip" "$DS" attack "$CK" --data "$D" --method fgsm --eps 0.1 --clip 1,0
expect_fail "wrong input shape" "1x8x8|\[1, 8, 8\]|8.8" "$DS" attack "$CK" --data "npy:$T/x_bad.npy" --method fgsm --eps 0.1
expect_fail "no labels" "no labels" "$DS" attack "$CK" --data "npy:$T/x.npy" --method fgsm --eps 0.1
expect_fail "missing checkpoint" "nope.safetensors" "$DS" attack "$T/nope.safetensors" --data "$D" --method fgsm --eps 0.1
expect_fail "unknown option" "unknown option" "$DS" attack "$CK" --data "$D" --method fgsm --eps 0.1 --bogus
# a checkpoint whose model has no classifying head (regression only)
$PY - "$T" <<'EOF'
import sys, json, struct
t = sys.argv[1]
model = "[input]\nname = x\nshape = 1,12,12\n[net]\nclasses = 3\n[dense]\nname = out\nfrom = x\nunits = 2\n[output]\nname = v_out\nfrom = out\nloss = mse\ntarget = v\n"
h = json.dumps({"__metadata__": {"format": "deepsky-1", "model": model}}).encode()
h += b" " * (-len(h) % 8)
open(f"{t}/reg.safetensors", "wb").write(struct.pack("<Q", len(h)) + h)
EOF
expect_fail "checkpoint without a classifier" "classif" "$DS" attack "$T/reg.safetensors" --data "$D" --method fgsm --eps 0.1
expect_fail "explain: checkpoint without a classifier" "classif" "$DS" explain "$T/reg.safetensors" --data "$D" --method saliency --out "$T/e"
expect_ok "attack --help" "$DS" attack --help
grep -q -- "--restarts" "$T/out" && grep -q -- "--clip" "$T/out" && ok "help lists the options" || bad "help lists the options"
finish attack
