#!/usr/bin/env bash
# End-to-end tests of issue 12 items 9, 12 and 14 through the command line:
# non-finite weights, norms, data and outputs never hang (each run under
# `timeout 20`) and are errors naming where; sizes in headers and flags are
# checked before allocating (peak memory measured with /usr/bin/time); the
# parsers refuse what the reference readers refuse.
# usage: test_readers.sh PATH/TO/deepsky
set -u
DS=${1:?usage: test_readers.sh DEEPSKY}
. "$(dirname "$0")/lib.sh"
TO="timeout 20"

# expect_small NAME MB CMD...: fails or not, but within 20 s and with a peak RSS under MB megabytes
expect_small() {
  local name=$1 mb=$2; shift 2
  /usr/bin/time -f "%M" -o "$T/rss" timeout 20 "$@" >"$T/out" 2>&1
  local rc=$? kb; kb=$(tail -1 "$T/rss" | tr -dc 0-9)
  if [ "$rc" -eq 124 ]; then bad "$name: timed out"
  elif [ -z "$kb" ] || [ "$kb" -gt $((mb * 1024)) ]; then bad "$name: peak RSS ${kb:-?} KB over $mb MB"
  else ok "$name (peak RSS $((kb / 1024)) MB)"; fi
}

# --- two classes of 1x8x8 stamps (two classes: the ROC code runs) ---
$PY - "$T" <<'PYEOF'
import sys, numpy as np
t = sys.argv[1]
rng = np.random.default_rng(1)
def make(n):
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 0.3, (n, 1, 8, 8)).astype(np.float32)
    for i, c in enumerate(y):
        if c: x[i, 0, 3, :] += 2
        else: x[i, 0, :, 3] += 2
    return x, y.astype(np.float32)
x, y = make(400); np.save(f"{t}/x.npy", x); np.save(f"{t}/y.npy", y)
x, y = make(40); np.save(f"{t}/vx.npy", x); np.save(f"{t}/vy.npy", y)
x[3, 0, 1, 5] = 3e38; np.save(f"{t}/hugex.npy", x)   # finite, but (x - mean) / std overflows
PYEOF
cat > "$T/two.cfg" <<'CFG'
[net]
input=1,8,8
classes=2

[conv]
filters=4
size=3
pad=1
activation=relu

[dense]
units=2

[train]
lr=0.01
batch=32
epochs=1
seed=3
CFG
DATA="npy:$T/x.npy,$T/y.npy"
VAL="npy:$T/vx.npy,$T/vy.npy"
HUGE="npy:$T/hugex.npy,$T/vy.npy"
expect_ok "train a small two-class model" $TO "$DS" train "$T/two.cfg" --data "$DATA" --val "$VAL" --out "$T/run" --quiet
CK="$T/run/best.safetensors"

# st_edit SRC DST MODE: a copy of a checkpoint, changed as MODE says (python, json + struct only)
st_edit() {
  $PY - "$@" <<'PYEOF'
import sys, json, struct
src, dst, mode = sys.argv[1:4]
b = open(src, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h, data = json.loads(b[8:8 + n]), bytearray(b[8 + n:])
names = [k for k in h if k != "__metadata__"]
first = min(names, key=lambda k: h[k]["data_offsets"][0])
last = max(names, key=lambda k: h[k]["data_offsets"][1])
def floats(name, v):
    s, e = h[name]["data_offsets"]
    data[s:e] = struct.pack("<f", v) * ((e - s) // 4)
text = None
if mode == "nan": floats(first, float("nan"))
elif mode == "huge":
    for k in names:
        if k.endswith(".weight"): floats(k, 3e38)
elif mode == "tinystd":
    nm = json.loads(h["__metadata__"]["norm"]); nm["std"] = [1e-38] * nm["channels"]
    h["__metadata__"]["norm"] = json.dumps(nm)
elif mode == "zerostd":
    nm = json.loads(h["__metadata__"]["norm"]); nm["std"][0] = 0.0
    h["__metadata__"]["norm"] = json.dumps(nm)
elif mode == "trailing": data += b"\0" * 16
elif mode == "hole":
    for k in names:
        s, e = h[k]["data_offsets"]
        if s >= h[last]["data_offsets"][0]: h[k]["data_offsets"] = [s + 8, e + 8]
    data[h[last]["data_offsets"][0] - 8:h[last]["data_offsets"][0] - 8] = b"\0" * 8
elif mode == "overlap":
    s, e = h[last]["data_offsets"]; h[last]["data_offsets"] = [s - 4, e - 4]; data = data[:-4]
elif mode == "dupmeta":
    t = json.dumps(h, separators=(",", ":"))
    text = '{"__metadata__":{"format":"pt"},' + t[1:]
elif mode == "nuldtype":
    h[first]["dtype"] = "F32\u0000x"
elif mode == "badutf8":
    t = json.dumps(h, separators=(",", ":"), ensure_ascii=False)
    text = t.replace('"' + first + '"', '"' + first + '\udcff"', 1)
    raw = text.encode("utf-8", "surrogateescape")
    open(dst, "wb").write(struct.pack("<Q", len(raw)) + raw + bytes(data)); sys.exit(0)
raw = (text if text is not None else json.dumps(h, separators=(",", ":"))).encode()
raw += b" " * (-len(raw) % 8)
open(dst, "wb").write(struct.pack("<Q", len(raw)) + raw + bytes(data))
PYEOF
}

# --- item 9: no NaN/Inf reaches the metrics, nothing hangs ---
st_edit "$CK" "$T/nan.safetensors" nan
expect_fail "a NaN weight is refused when loading, naming the tensor" "tensor '[^']+' element 0 is NaN" $TO "$DS" eval "$T/nan.safetensors" --data "$VAL"
expect_fail "predict refuses it too" "element 0 is NaN" $TO "$DS" predict "$T/nan.safetensors" --data "$VAL"
st_edit "$CK" "$T/huge.safetensors" huge
expect_fail "eval: non-finite model outputs are refused, naming the sample" "sample 0: the model's output for class [01] is (NaN|\+Inf|-Inf)" $TO "$DS" eval "$T/huge.safetensors" --data "$VAL"
expect_fail "predict: the same" "sample 0: the model's output" $TO "$DS" predict "$T/huge.safetensors" --data "$VAL"
st_edit "$CK" "$T/tinystd.safetensors" tinystd
expect_fail "a 1e-38 std in the norm metadata: an error, not a hang" "beyond float range|model's output" $TO "$DS" eval "$T/tinystd.safetensors" --data "$VAL"
st_edit "$CK" "$T/zerostd.safetensors" zerostd
expect_fail "a zero std in the norm metadata is refused" "metadata 'norm' std\[0\] is 0" $TO "$DS" eval "$T/zerostd.safetensors" --data "$VAL"
expect_fail "one 3e38 pixel in eval data: an error naming it" "sample 3, element 13: 3e\+38 normalises to" $TO "$DS" eval "$CK" --data "$HUGE"
expect_fail "train --val with a 3e38 pixel stops before the first epoch, no hang" "validation|sample 3, element 13" $TO "$DS" train "$T/two.cfg" --data "$DATA" --val "$HUGE" --out "$T/run_huge" --quiet
[ ! -e "$T/run_huge/last.safetensors" ] && ok "no checkpoint from the refused run" || bad "a checkpoint was written"

# --- item 12: sizes trusted before checks ---
expect_small "train --batch 1000000 on 40 samples" 300 "$DS" train "$T/two.cfg" --data "$VAL" --batch 1000000 --out "$T/run_b" --quiet
grep -q "note: batch 1000000 is more than the 40 samples of training; using 40" "$T/out" && grep -q "batch 40" "$T/out" && ok "the batch is capped at the data size, with a note" || bad "no batch note"
expect_small "eval --batch 1000000 on 40 samples" 300 "$DS" eval "$CK" --data "$VAL" --batch 1000000
grep -q "note: batch 1000000 is more than the 40 samples" "$T/out" && grep -q "^accuracy" "$T/out" && ok "eval capped and scored" || bad "eval batch cap"
sed 's/^filters=4/filters=65536/' "$T/two.cfg" >"$T/wide.cfg"
expect_small "info of a filters=65536 model plans without allocating" 100 "$DS" info "$T/wide.cfg"
grep -Eq "training memory at batch 32 .*: [0-9.]+ [GT]B" "$T/out" && ok "info prints the training memory" || bad "info memory line"
expect_fail "a model over the memory limit is refused with the numbers" "needs [0-9.]+ GB of memory at batch 32.*DS_MEMORY_LIMIT is 1e-05 GB" env DS_MEMORY_LIMIT=10K $TO "$DS" train "$T/two.cfg" --data "$DATA" --out "$T/run_m" --quiet
sed 's/^input=1,8,8/input=1,256,256/; s/^filters=4/filters=65536/; s/^\[dense\]/[maxpool]\nsize=16\n\n[dense]/' "$T/two.cfg" >"$T/huge.cfg"
sed 's/^filters=4/filters=65536/; s/^input=1,8,8/input=1,256,256/' "$T/two.cfg" >"$T/wrap.cfg"
expect_fail "a dense layer of 2^32 inputs is refused, not wrapped to 0" "4294967296 input features per sample" "$DS" info "$T/wrap.cfg"
expect_small "a model needing terabytes is refused before allocating" 100 "$DS" train "$T/huge.cfg" --data "$DATA" --out "$T/run_h" --quiet
grep -Eq "the graph needs [0-9]+ GB of memory at batch 32 .* but this machine has [0-9.]+ GB" "$T/out" && ok "the refusal gives both numbers" || bad "terabyte model message"
$PY - "$T" <<'PYEOF'
import sys, struct, gzip, numpy as np
t = sys.argv[1]
# an NPY header claiming 2^31 - 1 floats over 16 bytes of data
h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2147483647, 1), }"
h += " " * (-(len(h) + 11) % 64) + "\n"
open(f"{t}/claim.npy", "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + b"\0" * 16)
# NPY with text after the header dict
h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), } junk"
h += " " * (-(len(h) + 11) % 64) + "\n"
open(f"{t}/junk.npy", "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + b"\0" * 16)
# FITS: a 4x8x8 cube, the same saying NAXIS3 = 1000000, and gzip'd copies
def fits(arr, naxis3=None):
    cards = [("SIMPLE", "T"), ("BITPIX", -32), ("NAXIS", 3), ("NAXIS1", 8), ("NAXIS2", 8), ("NAXIS3", naxis3 or arr.shape[0])]
    hd = "".join(f"{k:<8}= {v:>20}".ljust(80) for k, v in cards) + "END".ljust(80)
    hd = hd.ljust(2880)
    d = arr.astype(">f4").tobytes(); d += b"\0" * (-len(d) % 2880)
    return hd.encode() + d
x = np.load(f"{t}/vx.npy")[:4, 0]
open(f"{t}/cube.fits", "wb").write(fits(x))
open(f"{t}/cube.fits.gz", "wb").write(gzip.compress(fits(x)))
open(f"{t}/claim.fits", "wb").write(fits(x, 1000000))
open(f"{t}/claim.fits.gz", "wb").write(gzip.compress(fits(x, 1000000)))
# class folders of .fits.gz files
import os
y = np.load(f"{t}/vy.npy"); xs = np.load(f"{t}/vx.npy")
for i in range(40):
    d = f"{t}/gz/{'real' if y[i] else 'bogus'}"; os.makedirs(d, exist_ok=True)
    open(f"{d}/s{i:02d}.fits.gz", "wb").write(gzip.compress(fits(xs[i:i + 1, 0])))
# IDX (gzip) labels: trailing garbage, a flipped byte under a stored block, a huge claim
lab = bytes([0, 0, 8, 1]) + struct.pack(">I", 40) + bytes(int(v) for v in y)
img = bytes([0, 0, 8, 3]) + struct.pack(">III", 40, 8, 8) + bytes(np.clip(xs[:, 0] * 50 + 100, 0, 255).astype(np.uint8).tobytes())
open(f"{t}/img.gz", "wb").write(gzip.compress(img))
open(f"{t}/lab.gz", "wb").write(gzip.compress(lab))
open(f"{t}/lab_trail.gz", "wb").write(gzip.compress(lab) + b"garbage")
big = lab + bytes(40000)  # payload past the data, longer than zlib's buffer
z = bytearray(gzip.compress(big, compresslevel=0))
z[len(z) - 8 - 40000 - 5] ^= 0xff   # a label byte inside the stored block
open(f"{t}/lab_crc.gz", "wb").write(bytes(z))
open(f"{t}/lab_claim.gz", "wb").write(gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", 1 << 30)))
PYEOF
expect_small "an NPY claiming 2^31 floats is refused before allocating" 100 "$DS" eval "$CK" --data "npy:$T/claim.npy,$T/vy.npy"
grep -q "truncated: expected 8589934588 bytes of data, got 16" "$T/out" && ok "the NPY message gives both sizes" || bad "NPY claim message"
for f in claim.fits claim.fits.gz; do
  expect_small "$f (NAXIS3 = 1000000 on a small file) is refused before allocating" 100 "$DS" predict "$CK" "$T/$f"
  grep -q "declares 8×8×1000000×1 pixels" "$T/out" && ok "$f: the message names the declared size" || bad "$f message"
done
expect_small "a gzip IDX claiming 2^30 bytes is refused before allocating" 100 "$DS" eval "$CK" --data "idx:$T/img.gz,$T/lab_claim.gz"
grep -q "more than a [0-9]*-byte gzip file can hold" "$T/out" && ok "the IDX claim message" || bad "IDX claim message"

# --- item 14: lax parsing ---
for m in trailing:"bytes after the last tensor" hole:"belong to no tensor" overlap:"overlap tensor" \
         dupmeta:"'__metadata__' is repeated" nuldtype:"dtype with a NUL" badutf8:"invalid UTF-8"; do
  st_edit "$CK" "$T/${m%%:*}.safetensors" "${m%%:*}"
  expect_fail "safetensors: ${m%%:*} refused" "${m#*:}" $TO "$DS" eval "$T/${m%%:*}.safetensors" --data "$VAL"
done
expect_fail "a model file given as a checkpoint says so" "two.cfg is a text file, not a checkpoint \(this is a model file" "$DS" eval "$T/two.cfg" --data "$VAL"
expect_fail "NPY with text after the header dict" "other text after the dict" "$DS" eval "$CK" --data "npy:$T/junk.npy"
expect_ok "a gzip IDX pair reads" "$DS" eval "$CK" --data "idx:$T/img.gz,$T/lab.gz"
expect_fail "gzip IDX with bytes after the stream" "bytes after the end of the gzip stream" "$DS" eval "$CK" --data "idx:$T/img.gz,$T/lab_trail.gz"
expect_fail "gzip IDX with a flipped byte and trailing payload: the CRC is checked" "incorrect data check" "$DS" eval "$CK" --data "idx:$T/img.gz,$T/lab_crc.gz"
sed 's/^lr=0.01/lr=1e30/' "$T/two.cfg" >"$T/lr.cfg"
expect_fail "[train] lr = 1e30 is refused as --lr 1e30 is, with file:line" "lr\.cfg:[0-9]+: \[train\] lr: 1e30 is out of range" "$DS" train "$T/lr.cfg" --data "$DATA" --out "$T/run_lr"
expect_fail "--lr 1e30 (the same bound)" "--lr" "$DS" train "$T/two.cfg" --data "$DATA" --lr 1e30 --out "$T/run_lr"
expect_ok "a bare .fits.gz path is read as FITS" "$DS" predict "$CK" "$T/cube.fits.gz"
[ "$(wc -l <"$T/out")" -eq 4 ] && ok "4 predictions from the gzip'd cube" || bad "fits.gz predictions"
expect_ok "class folders of .fits.gz files" "$DS" eval "$CK" --data "$T/gz"
grep -q "^samples   40" "$T/out" && ok "all 40 gzip'd cutouts read" || bad "fits.gz folder count"

finish readers
