#!/usr/bin/env bash
# End-to-end tests of `deepsky fid` on a small model trained here: samples
# equal to the real images give FID 0 and a positive real-vs-real floor;
# blurred samples are farther than the floor; --fake-labels gives the
# accuracy (that of eval on the same data) and per-class lists; --train
# finds copies of training images (distance 0) and not real test images;
# flattened [N, C*H*W] samples are read as [N, C, H, W]; --layer picks a
# layer; a wrong shape, NaN samples, bad labels and an unknown layer are
# clear errors (exit 1 or 2), and --json is not written then.
set -u
DS=$1
. "$(dirname "$0")/lib.sh"

$PY - "$T" <<'EOF' || { bad "make data"; finish fid; exit 1; }
import sys, numpy as np
t = sys.argv[1]
r = np.random.default_rng(5)
def make(n):
    y = r.integers(0, 3, n)
    x = r.uniform(0, 0.3, (n, 1, 12, 12)).astype(np.float32)
    for i in range(n):  # a bright bar whose place says the class
        x[i, 0, 2 + 3 * y[i]:4 + 3 * y[i], 2:10] += 0.6
    return np.clip(x, 0, 1).astype(np.float32), y.astype(np.float32)
x, y = make(600)
xt, yt = make(300)
np.save(f"{t}/x.npy", x); np.save(f"{t}/y.npy", y)
np.save(f"{t}/xt.npy", xt); np.save(f"{t}/yt.npy", yt)
np.save(f"{t}/flat.npy", xt.reshape(len(xt), -1))
blur = xt.copy()  # a 3x3 box blur plus noise: worse samples
p = np.pad(blur[:, 0], ((0, 0), (1, 1), (1, 1)), mode="edge")
blur[:, 0] = sum(p[:, i:i + 12, j:j + 12] for i in range(3) for j in range(3)) / 9
np.save(f"{t}/blur.npy", (blur + r.normal(0, 0.1, blur.shape)).astype(np.float32))
copies = x[:200].copy()  # training images as "samples"
np.save(f"{t}/copies.npy", copies)
np.save(f"{t}/bad_shape.npy", np.zeros((10, 1, 8, 8), np.float32))
nan = xt[:50].copy(); nan[17, 0, 3, 4] = np.nan
np.save(f"{t}/nan.npy", nan)
np.save(f"{t}/bad_labels.npy", np.full(300, 7, np.float32))
np.save(f"{t}/short_labels.npy", yt[:10])
np.save(f"{t}/tanh.npy", 2 * xt - 1)  # a generator's [-1, 1] output, not mapped back to the data's units
EOF
cat >"$T/m.cfg" <<'CFG'
[net]
input = 1,12,12
classes = 3
[conv]
name = conv1
filters = 6
size = 3
pad = 1
batch_normalize = 1
activation = relu
[maxpool]
size = 2
[dense]
name = fc1
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
expect_ok "train a small model" "$DS" train "$T/m.cfg" --data "npy:$T/x.npy,$T/y.npy" --out "$T/r" --quiet
CK=$T/r/last.safetensors

expect_ok "fid: fake = real" "$DS" fid --classifier "$CK" --real "$T/xt.npy" --fake "$T/xt.npy" --json "$T/same.json"
grep -q "layer dropout1 (16 values)" "$T/out" && ok "default layer: the one before the last dense (dropout1, 16 values)" \
  || bad "default layer"
expect_ok "fid: blurred samples, labels, copy check" "$DS" fid --classifier "$CK" --real "$T/xt.npy" --fake "$T/blur.npy" \
  --fake-labels "$T/yt.npy" --train "$T/x.npy" --json "$T/blur.json"
expect_ok "fid: training images as samples" "$DS" fid --classifier "$CK" --real "$T/xt.npy" --fake "$T/copies.npy" \
  --train "$T/x.npy" --nn-max 150 --json "$T/copies.json"
expect_ok "fid: flattened samples [N, 144]" "$DS" fid --classifier "$CK" --real "$T/xt.npy" --fake "$T/flat.npy" --json "$T/flat.json"
expect_ok "fid: --layer fc1" "$DS" fid --classifier "$CK" --real "$T/xt.npy" --fake "$T/blur.npy" --layer fc1 --json "$T/fc1.json"
expect_ok "eval for the accuracy" "$DS" eval "$CK" --data "npy:$T/xt.npy,$T/yt.npy"
grep -E '^accuracy' "$T/out" | awk '{print $2}' >"$T/eval_acc"
expect_ok "fid: labels of the real images themselves" "$DS" fid --classifier "$CK" --real "$T/xt.npy" --fake "$T/xt.npy" \
  --fake-labels "$T/yt.npy" --json "$T/acc.json"

$PY - "$T" <<'EOF' >"$T/out" 2>&1 && ok "the JSON: FID 0 for equal sets, blur above the floor, accuracy = eval's, copies found" || bad "fid results"
import json, sys
t = sys.argv[1]
same, blur, cop, flat, fc1, acc = (json.load(open(f"{t}/{n}.json")) for n in ("same", "blur", "copies", "flat", "fc1", "acc"))
assert same["fid"] < 1e-6, same
assert same["fid_real_real"] > 0 and same["n_real"] == 300 and same["n_fake"] == 300 and same["n_half"] == 150, same
assert len(same["fid_real_real_splits"]) == 5 and same["dim"] == 16 and same["layer"] == "dropout1", same
assert blur["fid"] > same["fid_real_real"], (blur["fid"], same["fid_real_real"])
assert 0 <= blur["accuracy"] <= 1 and len(blur["per_class_accuracy"]) == 3 and sum(blur["requested"]) == 300, blur
assert abs(sum(blur["predicted_share"]) - 1) < 1e-9 and sum(map(sum, blur["confusion"])) == 300, blur
assert blur["nn_n_fake"] == 300 and blur["nn_n_real"] == 300 and blur["n_train"] == 600, blur
assert blur["nn_median_real"] > 0 and blur["near_copies"] <= 300, blur
eval_acc = float(open(f"{t}/eval_acc").read())
assert abs(acc["accuracy"] - eval_acc) < 1e-4, (acc["accuracy"], eval_acc)
assert cop["nn_median_fake"] == 0 and cop["nn_min_fake"] == 0 and cop["near_copies"] == 150, cop
assert cop["nn_n_fake"] == 150 and cop["nn_ratio"] == 0, cop
assert abs(flat["fid"]) < 1e-6, flat
assert fc1["layer"] == "fc1" and fc1["dim"] == 16 and fc1["fid"] > 0, fc1
assert same["accuracy"] is None and same["nn_median_fake"] is None and same["near_copies"] is None, same
for k in ("fid", "fid_real_real", "n_real", "n_fake", "accuracy", "per_class_accuracy", "nn_median_fake",
          "nn_median_real", "near_copies"):
    assert k in blur, k
print("ok")
EOF

"$DS" fid --classifier "$CK" --real "$T/xt.npy" --fake "$T/tanh.npy" >"$T/out" 2>&1
grep -q "warning: .*tanh.npy's values span .* are the samples in the data's units" "$T/out" \
  && ok "samples in [-1, 1] against [0, 1] data: a warning" || bad "no warning for samples in [-1, 1]"
"$DS" fid --classifier "$CK" --real "$T/xt.npy" --fake "$T/blur.npy" >"$T/out" 2>&1
grep -q "warning" "$T/out" && bad "a range warning for samples in the data's units" || ok "no range warning for blurred samples"

rm -f "$T/bad.json"
expect_fail "wrong sample shape" "bad_shape.npy: samples are \[1, 8, 8\] but the model's \[net\] input is \[1, 12, 12\]" \
  "$DS" fid --classifier "$CK" --real "$T/xt.npy" --fake "$T/bad_shape.npy" --json "$T/bad.json"
"$DS" fid --classifier "$CK" --real "$T/xt.npy" --fake "$T/bad_shape.npy" >/dev/null 2>&1
[ $? -eq 1 ] && ok "wrong shape: exit 1" || bad "wrong shape: exit 1"
expect_fail "NaN in a sample" "nan.npy.*sample 17" "$DS" fid --classifier "$CK" --real "$T/xt.npy" --fake "$T/nan.npy" --json "$T/bad.json"
expect_fail "labels out of range" "label 7 of sample 0" "$DS" fid --classifier "$CK" --real "$T/xt.npy" --fake "$T/xt.npy" \
  --fake-labels "$T/bad_labels.npy" --json "$T/bad.json"
expect_fail "labels of another length" "300 samples but .*short_labels.npy has 10" "$DS" fid --classifier "$CK" \
  --real "$T/xt.npy" --fake "$T/xt.npy" --fake-labels "$T/short_labels.npy"
expect_fail "unknown layer" "no layer 'fc9'; its layers are: conv1, maxpool1, fc1, dropout1" "$DS" fid --classifier "$CK" \
  --real "$T/xt.npy" --fake "$T/xt.npy" --layer fc9
expect_fail "training images of another shape" "bad_shape.npy: samples are" "$DS" fid --classifier "$CK" --real "$T/xt.npy" \
  --fake "$T/xt.npy" --train "$T/bad_shape.npy" --json "$T/bad.json"
expect_fail "missing --fake" "usage: deepsky fid" "$DS" fid --classifier "$CK" --real "$T/xt.npy"
expect_fail "a missing file" "nope.npy" "$DS" fid --classifier "$CK" --real "$T/xt.npy" --fake "$T/nope.npy"
[ ! -e "$T/bad.json" ] && ok "no --json after an error" || bad "a --json was written after an error"

finish fid
