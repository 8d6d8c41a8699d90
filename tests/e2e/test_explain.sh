#!/usr/bin/env bash
# End-to-end tests of `deepsky explain`: a tiny conv net trained here on
# synthetic 12x12 images; every method on a data spec (the arrays' shapes,
# classes.npy, the page) and on files (maps beside each input, or --out);
# --class, --layer, --steps, --baseline, --filters; a wide & deep model
# explained through its first input; the errors (a layer that does not
# exist, a layer that is not an image, an input of the wrong shape, a
# missing file, a bad method or class) and --help.
set -u
DS=$1
. "$(dirname "$0")/lib.sh"

# three classes: a bright square in the top-left, the centre or the bottom-right
cat >"$T/mk.py" <<'PY'
import sys, zlib, struct
import numpy as np
d = sys.argv[1]
rng = np.random.default_rng(3)
n = 150
y = np.arange(n) % 3
x = rng.normal(0.2, 0.05, (n, 1, 12, 12)).astype(np.float32)
for i, c in enumerate(y):
    o = [1, 4, 7][c]
    x[i, 0, o:o + 4, o:o + 4] += 0.7
x = np.clip(x, 0, 1)
np.save(f"{d}/x.npy", x)
np.save(f"{d}/y.npy", y.astype(np.int64))
np.save(f"{d}/one.npy", x[:1])
np.save(f"{d}/two.npy", x[1:3])
np.save(f"{d}/wrong.npy", x[:1, :, :10, :10].copy())
# a grey 8-bit PNG of sample 2
img = (x[2, 0] * 255).round().astype(np.uint8)
raw = b"".join(b"\0" + row.tobytes() for row in img)
def chunk(t, b): return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 12, 12, 8, 0, 0, 0, 0)) + \
      chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(f"{d}/img.png", "wb").write(png)
PY
$PY "$T/mk.py" "$T" || { bad "making the data"; finish explain; exit 1; }
DATA="npy:$T/x.npy,$T/y.npy"
cat >"$T/net.cfg" <<'CFG'
[net]
input = 1,12,12
classes = 3
[conv]
name = conv1
filters = 4
size = 3
pad = 1
activation = relu
[maxpool]
size = 2
[conv]
name = conv2
filters = 6
size = 3
pad = 1
activation = relu
[flatten]
[dense]
name = fc
units = 3
[train]
epochs = 4
batch = 16
lr = 0.01
CFG
expect_ok "train the model explained" "$DS" train "$T/net.cfg" --data "$DATA" --out "$T/m" --quiet
CK="$T/m/last.safetensors"

# every method on the data spec
expect_ok "--method all on --data" "$DS" explain "$CK" --data "$DATA" --method all --max 10 --out "$T/x" --steps 16 --samples 4
cat >"$T/shapes.py" <<'PY'
import sys, numpy as np
d = sys.argv[1]
ms = ["saliency", "gradxinput", "smoothgrad", "integrated-gradients", "guided-backprop", "deconvnet"]
for m in ms:
    a = np.load(f"{d}/{m}.npy")
    assert a.shape == (10, 1, 12, 12) and a.dtype == np.float32, (m, a.shape, a.dtype)
    assert np.isfinite(a).all() and np.abs(a).max() > 0, m
g = np.load(f"{d}/gradcam.npy")
assert g.shape == (10, 12, 12) and (g >= 0).all(), g.shape
c = np.load(f"{d}/classes.npy")
assert c.shape == (10,) and set(np.unique(c)) <= {0, 1, 2}, c
x = np.load(f"{d}/../x.npy")[:10]
s, gx = np.load(f"{d}/saliency.npy"), np.load(f"{d}/gradxinput.npy")
assert np.allclose(gx, x * s, atol=1e-6), "gradxinput is x * saliency"
print("shapes ok")
PY
$PY "$T/shapes.py" "$T/x" >"$T/out" 2>&1 && ok "arrays: [10, 1, 12, 12] (gradcam [10, 12, 12], >= 0), classes.npy, gradxinput = x * saliency" ||
  bad "arrays: $(tail -1 "$T/out")"
n=0
for m in saliency gradxinput smoothgrad integrated-gradients gradcam guided-backprop deconvnet; do
  [ -s "$T/x/$m.png" ] && n=$((n + 1))
done
[ $n -eq 7 ] && ok "a PNG per method" || bad "$n of 7 method PNGs"
[ -s "$T/x/explain.png" ] && grep -q '<img src="explain.png"' "$T/x/explain.html" && grep -q "<td>9</td>" "$T/x/explain.html" &&
  ok "explain.html shows explain.png and a row per sample" || bad "explain.html"

# --class: label, an index; IG's baseline
expect_ok "--class label" "$DS" explain "$CK" --data "$DATA" --method saliency --class label --max 6 --out "$T/l"
$PY -c "import numpy as np,sys; c=np.load('$T/l/classes.npy'); y=np.load('$T/y.npy')[:6]; sys.exit(0 if (c==y).all() else 1)" &&
  ok "--class label explains the data's labels" || bad "--class label: classes.npy is not y"
expect_ok "--class 2 and --baseline mean" "$DS" explain "$CK" --data "$DATA" --method ig --class 2 --baseline mean --steps 8 --max 4 --out "$T/c"
$PY -c "import numpy as np,sys; c=np.load('$T/c/classes.npy'); sys.exit(0 if (c==2).all() else 1)" &&
  ok "--class 2: every row explained for class 2" || bad "--class 2: $(cat "$T/out")"
expect_ok "IG prints its completeness" "$DS" explain "$CK" --data "$DATA" --method integrated-gradients --max 20 --out "$T/g"
grep -Eq "completeness: the attributions sum to S\(x\) - S\(baseline\) within [0-9.]+ % \(64 steps\)" "$T/out" &&
  ok "$(grep -o 'completeness.*' "$T/out")" || bad "no completeness line: $(cat "$T/out")"
expect_ok "--baseline 0.2 --layer conv1" "$DS" explain "$CK" --data "$DATA" --method integrated-gradients,gradcam --baseline 0.2 \
  --layer conv1 --steps 8 --max 3 --out "$T/b"

# files: the maps beside each input (an NPY of 1 and of 2 samples, a PNG), or in --out
expect_ok "files beside their inputs" "$DS" explain "$CK" "$T/one.npy" "$T/two.npy" "$T/img.png" --method saliency,gradcam
[ -s "$T/one.saliency.npy" ] && [ -s "$T/one.saliency.png" ] && [ -s "$T/two.gradcam.png" ] && [ -s "$T/img.saliency.npy" ] &&
  [ -s "$T/one.explain.html" ] && ok "STEM.METHOD.{npy,png} beside each input, the page beside the first" ||
  bad "files beside the inputs: $(ls "$T")"
$PY -c "
import numpy as np
assert np.load('$T/two.saliency.npy').shape == (2, 1, 12, 12)
assert np.load('$T/img.gradcam.npy').shape == (1, 12, 12)" >"$T/out" 2>&1 && ok "a file's arrays hold its samples" ||
  bad "file arrays: $(tail -1 "$T/out")"
expect_ok "files into --out" "$DS" explain "$CK" "$T/one.npy" --method deconvnet --out "$T/o"
[ -s "$T/o/one.deconvnet.npy" ] && [ -s "$T/o/one.explain.html" ] && ok "--out DIR holds a file's maps" || bad "--out: $(ls "$T/o")"

# --filters: the first conv layer's weights, a deeper one's reconstructions, and the top patches
expect_ok "--filters conv1" "$DS" explain "$CK" --filters conv1 --data "$DATA" --top 4 --out "$T/f"
expect_ok "--filters conv2" "$DS" explain "$CK" --filters conv2 --data "$DATA" --out "$T/f"
[ -s "$T/f/filters_conv1.png" ] && [ -s "$T/f/patches_conv1.png" ] && [ -s "$T/f/filters_conv2.png" ] && [ -s "$T/f/patches_conv2.png" ] &&
  ok "filters_LAYER.png and patches_LAYER.png" || bad "--filters: $(ls "$T/f")"
grep -q "conv2: 6 filters x top 9 patches (8 x 8)" "$T/out" && ok "conv2's receptive field is 8 x 8 (3 + 2 x 2, a max pool between)" ||
  bad "conv2 patches: $(cat "$T/out")"

# errors
expect_fail "a layer that does not exist" "no layer 'conv9'; its conv layers are: conv1, conv2" \
  "$DS" explain "$CK" --data "$DATA" --method gradcam --layer conv9 --out "$T/e"
expect_fail "a layer that is not an image" "layer 'fc' is a dense layer.*conv1, conv2" \
  "$DS" explain "$CK" --data "$DATA" --method gradcam --layer fc --out "$T/e"
expect_fail "--filters on a layer that does not exist" "no layer 'nope'" \
  "$DS" explain "$CK" --filters nope --data "$DATA" --out "$T/e"
expect_fail "an input of the wrong shape" "samples are \[1, 10, 10\] but the model's \[net\] input is \[1, 12, 12\]" \
  "$DS" explain "$CK" "$T/wrong.npy" --method saliency
expect_fail "a missing file" "deepsky: .*nothere.npy" "$DS" explain "$CK" "$T/nothere.npy" --method saliency
expect_fail "a missing checkpoint" "deepsky: .*nothere.safetensors" "$DS" explain "$T/nothere.safetensors" "$T/one.npy" --method saliency
expect_fail "a bad method" "unknown method 'sailency' \(one of saliency, .*deconvnet, all\)" \
  "$DS" explain "$CK" "$T/one.npy" --method saliency,sailency
"$DS" explain "$CK" "$T/one.npy" --method bogus >/dev/null 2>&1
[ $? -eq 2 ] && ok "a bad method is a usage error (exit 2)" || bad "a bad method: exit $?"
expect_fail "no --method" "--method is needed" "$DS" explain "$CK" "$T/one.npy"
expect_fail "a bad class" "--class shoe: not pred, label, a class index 0..2" "$DS" explain "$CK" "$T/one.npy" --method saliency --class shoe
expect_fail "a class out of range" "--class 3: not pred" "$DS" explain "$CK" "$T/one.npy" --method saliency --class 3
expect_fail "a bad baseline" "--baseline must be zero, mean or a number, got .median." "$DS" explain "$CK" "$T/one.npy" --method ig --baseline median
expect_fail "--filters without --data" "--filters needs --data" "$DS" explain "$CK" "$T/one.npy" --filters conv1
expect_fail "--filters with --method" "--filters and --method are separate runs" "$DS" explain "$CK" --data "$DATA" --filters conv1 --method saliency
expect_fail "an unknown option" "unknown option '--colour'" "$DS" explain "$CK" "$T/one.npy" --method saliency --colour red

# a wide & deep model: the stamp input explained, the metadata fed from --data NAME=SPEC
"$DS" simulate --out "$T/s" --n 120 --size 16 --seed 7 >/dev/null 2>&1 || bad "simulate"
cut -d, -f1,2,4- "$T/s/labels.csv" >"$T/meta.csv"
cat >"$T/wd.cfg" <<'CFG'
[input]
name = stamp
shape = 1,16,16
[input]
name = meta
columns = snr, fwhm, sky
[net]
classes = 2
[conv]
name = c1
from = stamp
filters = 4
size = 3
pad = 1
activation = relu
[global_avgpool]
[flatten]
name = feat
[concat]
from = feat, meta
[dense]
units = 2
[train]
epochs = 1
batch = 32
CFG
STAMPS="npy:$T/s/x.npy,$T/s/y.npy"
expect_ok "wide & deep: train" "$DS" train "$T/wd.cfg" --data "$STAMPS" --data "meta=csv:$T/meta.csv" --out "$T/w" --quiet
expect_ok "wide & deep: explain the stamps" "$DS" explain "$T/w/last.safetensors" --data "$STAMPS" --data "meta=csv:$T/meta.csv" \
  --method saliency,gradcam,integrated-gradients --steps 8 --max 5 --out "$T/wx"
$PY -c "import numpy as np; assert np.load('$T/wx/saliency.npy').shape == (5, 1, 16, 16)" 2>/dev/null &&
  ok "wide & deep: the first input's maps" || bad "wide & deep maps"
expect_fail "wide & deep: file inputs" "has 2 inputs; give its data with --data" \
  "$DS" explain "$T/w/last.safetensors" "$T/one.npy" --method saliency
expect_fail "wide & deep: the metadata missing" "meta" \
  "$DS" explain "$T/w/last.safetensors" --data "$STAMPS" --method saliency --out "$T/wx"

expect_ok "--help" "$DS" explain --help
for o in --method --class --layer --samples --noise --steps --baseline --max --batch --out --seed --filters --top --data; do
  grep -q -- "$o" "$T/out" || bad "--help does not document $o"
done
grep -q "explain" <("$DS" --help) && ok "deepsky --help lists explain" || bad "deepsky --help lacks explain"
finish explain
