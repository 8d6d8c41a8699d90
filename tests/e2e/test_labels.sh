#!/bin/bash
# test_labels.sh — issue 12 items 1-3 end to end: class names kept in the
# checkpoint and labels numbered by name in every later file; scikit-learn's
# tables (tests/data/sklearn) read as shipped (digits .csv.gz without a
# header, wine and breast cancer with their n_samples,n_features,names line);
# header/skip/label options; zero-variance features. Usage: test_labels.sh DEEPSKY
set -u
DS=$1
. "$(dirname "$0")/lib.sh"
SK=$(cd "$(dirname "$0")/../data/sklearn" && pwd)

# held-out splits, made the same way every run: each table in its shipped layout, and a wine copy with
# string labels class_0..2 whose test file lacks class_0 (the renumbering trap)
"$PY" - "$SK" "$T" <<'PY' || { echo "FAIL python split"; exit 1; }
import sys, csv, gzip, numpy as np
sk, t = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(12)
def split(rows, frac):
    idx = rng.permutation(len(rows)); k = int(len(rows) * frac)
    return [rows[i] for i in sorted(idx[k:])], [rows[i] for i in sorted(idx[:k])]
def sklearn_file(path, first, rows):  # scikit-learn's layout: "n_samples,n_features,names..." then rows
    with open(path, "w") as f:
        f.write(",".join([str(len(rows)), str(len(rows[0]) - 1)] + first[2:]) + "\n")
        f.writelines(",".join(r) + "\n" for r in rows)
for name in ("wine_data", "breast_cancer"):
    lines = list(csv.reader(open(f"{sk}/{name}.csv")))
    tr, te = split(lines[1:], 0.3)
    sklearn_file(f"{t}/{name}_train.csv", lines[0], tr)
    sklearn_file(f"{t}/{name}_test.csv", lines[0], te)
    if name == "wine_data":
        hdr = [f"f{i}" for i in range(13)] + ["class"]
        def named(path, rows):
            with open(path, "w") as f:
                f.write(",".join(hdr) + "\n")
                f.writelines(",".join(r[:-1] + ["class_" + r[-1]]) + "\n" for r in rows)
        named(f"{t}/wine_train.csv", tr)
        named(f"{t}/wine_test_no0.csv", [r for r in te if r[-1] != "0"])
        named(f"{t}/wine_test_odd.csv", te[:3] + [te[3][:-1] + ["9"]])
        with open(f"{t}/wine_nolabel.csv", "w") as f:  # features only, no header: predict's input
            f.writelines(",".join(r[:-1]) + "\n" for r in te[:5])
digits = [l.decode().strip().split(",") for l in gzip.open(f"{sk}/digits.csv.gz")]
tr, te = split(digits, 0.3)
for part, rows in (("train", tr), ("test", te)):
    with gzip.open(f"{t}/digits_{part}.csv.gz", "wt") as f:
        f.writelines(",".join(r) + "\n" for r in rows)
# a feature that is always 0 in training and 1 at test time (item 2)
x = rng.normal(size=(400, 4)).astype(np.float32); y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
x[:, 3] = 0
np.save(f"{t}/zv_x.npy", x); np.save(f"{t}/zv_y.npy", y)
xt = rng.normal(size=(200, 4)).astype(np.float32); yt = (xt[:, 0] + xt[:, 1] > 0).astype(np.float32)
xt[:, 3] = 1
np.save(f"{t}/zv_xt.npy", xt); np.save(f"{t}/zv_yt.npy", yt)
PY

mlp() { # mlp FILE FEATURES CLASSES HIDDEN EPOCHS LR
  printf '[net]\ninput = %s\nclasses = %s\n\n[dense]\nname = fc1\nunits = %s\nactivation = relu\n\n[dense]\nname = fc2\nunits = %s\n\n[train]\noptimizer = adam\nlr = %s\nbatch = 16\nepochs = %s\nseed = 3\n' \
    "$2" "$3" "$4" "$3" "$6" "$5" >"$1"
}
mlp "$T/wine.cfg" 13 3 16 40 0.01
mlp "$T/bc.cfg" 30 2 16 40 0.01
mlp "$T/digits.cfg" 64 10 64 30 0.003
mlp "$T/zv.cfg" 4 2 16 20 0.01

# accuracy NAME MIN CKPT SPEC: eval's accuracy ≥ MIN
accuracy() {
  local name=$1 min=$2; shift 2
  if "$DS" eval "$@" >"$T/out" 2>&1; then
    local a; a=$(awk '/^accuracy/ {print $2}' "$T/out")
    if awk -v a="$a" -v m="$min" 'BEGIN {exit !(a >= m)}'; then ok "$name: accuracy $a >= $min"
    else bad "$name: accuracy $a < $min"; fi
  else bad "$name (exit $?)"; fi
}

# 1. wine with string labels: a test file without class_0 is scored through the training names
expect_ok "train wine (string labels)" "$DS" train "$T/wine.cfg" --data "$T/wine_train.csv" --out "$T/wine" --quiet
accuracy "wine, test file without class_0" 0.85 "$T/wine/last.safetensors" --data "$T/wine_test_no0.csv"
grep -q "class_0 *0 *0 *0" "$T/out" && grep -Eq "^ *class_1 +[0-9]" "$T/out" && ok "eval's confusion matrix uses the names (class_0 row empty)" || bad "eval's names"
"$PY" - "$T/wine/last.safetensors" <<'PY' && ok "the checkpoint keeps the class names" || bad "checkpoint classes metadata"
import sys, json, struct
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]
assert json.loads(json.loads(b[8:8 + n])["__metadata__"]["classes"]) == ["class_0", "class_1", "class_2"]
PY
expect_fail "an unknown label is an error naming the file and sample" "wine_test_odd\.csv: sample 3 \(from 0\) has label 'class_9'" \
  "$DS" eval "$T/wine/last.safetensors" --data "$T/wine_test_odd.csv"
expect_fail "--test with an unknown label too" "wine_test_odd\.csv: sample 3 .*class_9" \
  "$DS" train "$T/wine.cfg" --data "$T/wine_train.csv" --test "$T/wine_test_odd.csv" --out "$T/wine2" --epochs 1 --quiet
expect_ok "train --val with a file lacking class_0" "$DS" train "$T/wine.cfg" --data "$T/wine_train.csv" --val "$T/wine_test_no0.csv" --out "$T/wine3" --quiet
v=$(awk '/^epoch/ {a = $0} END {print a}' "$T/out" | sed 's/.*val_acc \([0-9.]*\).*/\1/')
awk -v a="$v" 'BEGIN {exit !(a >= 0.85)}' && ok "--val scored through the training names: val_acc $v" || bad "--val accuracy $v"
expect_ok "predict on a headerless CSV without a label column (label=none)" \
  "$DS" predict "$T/wine/last.safetensors" --data "csv:$T/wine_nolabel.csv,label=none" --top 2
[ "$(grep -c $'\tclass_[0-2] [0-9.]*\tclass_[0-2] ' "$T/out")" -eq 5 ] && ok "predict prints the class names (5 rows)" || bad "predict names"
expect_ok "predict --format json" "$DS" predict "$T/wine/last.safetensors" --data "$T/wine_test_no0.csv" --format json
"$PY" -c "import json, sys; r = json.load(open('$T/out')); assert all(t['top'][0]['class'].startswith('class_') for t in r) and len(r) > 10" \
  && ok "predict's JSON names the classes" || bad "predict JSON names"

# 2. scikit-learn's tables as shipped
expect_ok "train wine as shipped (its first line)" "$DS" train "$T/wine.cfg" --data "$T/wine_data_train.csv" --out "$T/wsk" --quiet
grep -q "on $T/wine_data_train.csv: 125 samples" "$T/out" && ok "all 125 rows read" || bad "wine row count: $(grep training "$T/out")"
accuracy "wine as shipped" 0.85 "$T/wsk/last.safetensors" --data "$T/wine_data_test.csv"
expect_ok "predict wine as shipped" "$DS" predict "$T/wsk/last.safetensors" --data "$T/wine_data_test.csv"
grep -q $'\tclass_' "$T/out" && ok "the first line's names are the class names" || bad "wine names"
expect_ok "train breast cancer as shipped" "$DS" train "$T/bc.cfg" --data "$T/breast_cancer_train.csv" --out "$T/bc" --quiet
accuracy "breast cancer as shipped" 0.93 "$T/bc/last.safetensors" --data "$T/breast_cancer_test.csv"
grep -Eq "^(malignant|benign) " "$T/out" && ok "eval's table names malignant/benign" || bad "breast cancer names"
expect_ok "train digits (.csv.gz, no header)" "$DS" train "$T/digits.cfg" --data "$T/digits_train.csv.gz" --out "$T/dg" --quiet
grep -q "1258 samples" "$T/out" && ok "digits: every row read (1258, none taken as a header)" || bad "digits rows: $(grep training "$T/out")"
accuracy "digits" 0.93 "$T/dg/last.safetensors" --data "$T/digits_test.csv.gz"
expect_ok "the whole digits file with a validation split" "$DS" train "$T/digits.cfg" --data "$SK/digits.csv.gz" --val-split 0.2 --epochs 2 --out "$T/dg2" --quiet
grep -q "1438 samples, 359 validation" "$T/out" && ok "1797 rows = 1438 + 359" || bad "digits split: $(grep training "$T/out")"
expect_ok "skip=1: wine with the first line skipped (numeric labels, no names)" "$DS" eval "$T/wsk/last.safetensors" --data "csv:$T/wine_data_test.csv,skip=1"
expect_ok "label by index (-1, the last column)" "$DS" eval "$T/dg/last.safetensors" --data "csv:$T/digits_test.csv.gz,label=-1,header=no"
expect_fail "label by name needs a header" "label=class: without a header row" \
  "$DS" eval "$T/dg/last.safetensors" --data "csv:$T/digits_test.csv.gz,label=class,header=no"
expect_ok "label by name" "$DS" eval "$T/wine/last.safetensors" --data "csv:$T/wine_test_no0.csv,label=class"

# 3. a feature constant in training: an unseen value does not explode the scores (item 2)
expect_ok "train with an always-0 feature" "$DS" train "$T/zv.cfg" --data "npy:$T/zv_x.npy,$T/zv_y.npy" --out "$T/zv" --quiet
accuracy "that feature is 1 at test time" 0.9 "$T/zv/last.safetensors" --data "npy:$T/zv_xt.npy,$T/zv_yt.npy"

# 4. simulate's bogus/real: by name from y.csv and from the cutout folders; numeric y.npy has no names
expect_ok "simulate" "$DS" simulate --out "$T/sim" --n 200 --size 21 --cutouts
printf '[net]\ninput = 1,21,21\nclasses = 2\n\n[dense]\nname = fc\nunits = 2\n\n[train]\noptimizer = adam\nlr = 0.001\nbatch = 32\nepochs = 1\n' >"$T/rb.cfg"
expect_ok "train on npy:x.npy,y.csv" "$DS" train "$T/rb.cfg" --data "npy:$T/sim/x.npy,$T/sim/y.csv" --out "$T/rb" --quiet
expect_ok "predict" "$DS" predict "$T/rb/last.safetensors" --data "npy:$T/sim/x.npy" --top 2
grep -q $'\t\(bogus\|real\) [0-9.]*\t\(bogus\|real\) ' "$T/out" && ok "predict says bogus/real (y.csv)" || bad "simulate names from y.csv"
expect_ok "train on the cutout folders" "$DS" train "$T/rb.cfg" --data "$T/sim/cutouts" --out "$T/rbf" --quiet
expect_ok "eval on the cutouts" "$DS" eval "$T/rbf/last.safetensors" --data "npy:$T/sim/x.npy,$T/sim/y.npy"
grep -Eq "^bogus +[0-9.]+ " "$T/out" && grep -Eq "^real +[0-9.]+ " "$T/out" && ok "numeric y.npy labels get the checkpoint's names" || bad "cutout names"
expect_ok "train on numeric y.npy" "$DS" train "$T/rb.cfg" --data "npy:$T/sim/x.npy,$T/sim/y.npy" --out "$T/rbn" --quiet
expect_ok "predict without names" "$DS" predict "$T/rbn/last.safetensors" --data "npy:$T/sim/x.npy"
grep -q $'\t[01] [0-9.]*$' "$T/out" && ok "a checkpoint without names prints indices (old checkpoints read as before)" || bad "no-names predict"
expect_ok "eval a folder through a checkpoint without names" "$DS" eval "$T/rbn/last.safetensors" --data "$T/sim/cutouts"

finish labels
