#!/usr/bin/env bash
# End-to-end tests of the Python package (python/deepsky, docs/python.md),
# the build's copy beside libdeepsky.so: predict parity with `deepsky
# predict` and `eval` on one checkpoint (NPY and FITS inputs, class names),
# parameters as arrays equal to the checkpoint's safetensors (and zero-copy),
# training through the package from arrays, and bad inputs as exceptions.
# usage: test_python.sh PATH/TO/deepsky
set -u
DS=${1:?usage: test_python.sh DEEPSKY}
. "$(dirname "$0")/lib.sh"
BUILD=$(cd "$(dirname "$DS")" && pwd)
export PYTHONPATH="$BUILD/python" DEEPSKY_CLI="$DS" PYTHONDONTWRITEBYTECODE=1
unset DEEPSKY_LIB
[ -f "$BUILD/python/deepsky/__init__.py" ] || { echo "python: no package in $BUILD/python (build the python_package target)"; exit 1; }

# --- data: the CLI tests' 1x8x8 stamps, as NPY and as FITS class folders ---
$PY - "$T" "$(dirname "$0")" <<'PYEOF'
import os, sys, numpy as np
t = sys.argv[1]
sys.path.insert(0, sys.argv[2])
import stamps
rng = np.random.default_rng(1)
x, y = stamps.make(rng, 600, 0.3, 2); np.save(f"{t}/x.npy", x); np.save(f"{t}/y.npy", y)
x, y = stamps.make(rng, 200, 0.6, 2); np.save(f"{t}/vx.npy", x); np.save(f"{t}/vy.npy", y)
def fits(path, img):  # a float32 FITS image by hand (astropy is only the doc example's reader)
    cards = ["SIMPLE  =                    T", "BITPIX  =                  -32", "NAXIS   =                    2",
             "NAXIS1  = %20d" % img.shape[1], "NAXIS2  = %20d" % img.shape[0], "END"]
    head = "".join(c.ljust(80) for c in cards).ljust(2880).encode()
    data = img.astype(">f4").tobytes()
    open(path, "wb").write(head + data + b"\0" * (-len(data) % 2880))
names = ["row", "column", "diagonal"]
for split, (xs, ys) in {"fits": stamps.make(rng, 300, 0.3, 2), "vfits": (x[:60], y[:60])}.items():
    for c in names: os.makedirs(f"{t}/{split}/{c}", exist_ok=True)
    for i in range(len(ys)): fits(f"{t}/{split}/{names[int(ys[i])]}/{i:04d}.fits", xs[i, 0])
PYEOF

cat > "$T/tiny.cfg" <<'CFG'
[net]
input=1,8,8
classes=3

[conv]
filters=4
size=3
pad=1
activation=relu

[batchnorm]

[maxpool]
size=2

[dense]
units=3

[train]
optimizer=adam
lr=0.02
batch=32
epochs=3
seed=3
CFG

expect_ok "import deepsky (the build's package and library)" $PY -c "
import deepsky, sys
assert deepsky.lib_path == '$BUILD/libdeepsky.so', deepsky.lib_path
assert deepsky.__file__.startswith('$BUILD/python/'), deepsky.__file__"

# --- one checkpoint with class names (FITS class folders), trained by the CLI ---
expect_ok "CLI trains on FITS class folders" "$DS" train "$T/tiny.cfg" --data "fits:$T/fits" --val "fits:$T/vfits" --out "$T/run" --quiet
CK=$T/run/best.safetensors
expect_ok "deepsky predict NPY --format npy" "$DS" predict "$CK" "$T/vx.npy" --format npy --output "$T/cli_p.npy"
expect_ok "deepsky predict FITS folder --format json" "$DS" predict "$CK" "$T/vfits" --format json --top 3 --output "$T/cli_fits.json"
expect_ok "deepsky eval FITS" "$DS" eval "$CK" --data "fits:$T/vfits" --json
cp "$T/out" "$T/eval.json"

expect_ok "predict parity with the CLI (NPY), class names, eval accuracy" $PY - "$T" <<'PYEOF'
import json, sys, numpy as np, deepsky
t = sys.argv[1]
m = deepsky.Model.load(f"{t}/run/best.safetensors")
assert m.classes == ["column", "diagonal", "row"], m.classes  # the class folders, sorted
assert m.input_shape == (1, 8, 8) and m.num_classes == 3, (m.input_shape, m.num_classes)
x = np.load(f"{t}/vx.npy")
p, q = m.predict(x), np.load(f"{t}/cli_p.npy")
err = float(np.abs(p - q).max())
assert p.shape == q.shape and err <= 1e-6, (p.shape, q.shape, err)
assert np.allclose(p.sum(1), 1, atol=1e-5)
assert np.array_equal(m.predict(x[0]), p[:1])          # one sample of input_shape
assert np.array_equal(m.predict(x.astype(np.float64)), p)  # converted to float32
# the same inputs, another batch size: the same probabilities
assert float(np.abs(deepsky.Model.load(f"{t}/run/best.safetensors", batch=7).predict(x) - p).max()) <= 1e-6
print("max |python - cli| =", err)
PYEOF

expect_ok "FITS files read in Python score as deepsky predict scores them" $PY - "$T" <<'PYEOF'
import json, os, sys, numpy as np, deepsky
t = sys.argv[1]
m = deepsky.Model.load(f"{t}/run/best.safetensors")
def read_fits(path):  # BITPIX -32, 2 axes: what the test wrote
    b = open(path, "rb").read()
    return np.frombuffer(b[2880:2880 + 8 * 8 * 4], ">f4").reshape(1, 8, 8).astype(np.float32)
cli = json.load(open(f"{t}/cli_fits.json"))
ev = json.load(open(f"{t}/eval.json"))
files, truth = [], []
for c in sorted(os.listdir(f"{t}/vfits")):
    for f in sorted(os.listdir(f"{t}/vfits/{c}")): files.append(f"{t}/vfits/{c}/{f}"); truth.append(c)
p = m.predict(np.stack([read_fits(f) for f in files]))
acc = float(np.mean([m.classes[k] == c for k, c in zip(p.argmax(1), truth)]))
assert abs(acc - ev["accuracy"]) < 1e-6, (acc, ev["accuracy"])
assert sorted(r["source"] for r in cli) == sorted(files), "deepsky predict scored other files"
err = 0.0
for r in cli:  # every file's probabilities (printed to 6 decimals) and top class
    i = files.index(r["source"])
    err = max(err, float(np.abs(np.array(r["probabilities"]) - p[i]).max()))
    assert r["top"][0]["class"] == m.classes[p[i].argmax()], (r, p[i])
assert err <= 1e-6, err
print("accuracy", acc, "=", ev["accuracy"], "(deepsky eval); max |python - cli| over", len(cli), "files:", err)
PYEOF

expect_ok "parameters() equal the checkpoint's safetensors and share the model's memory" $PY - "$T" "$(dirname "$0")" <<'PYEOF'
import sys, numpy as np, deepsky
t = sys.argv[1]
sys.path.insert(0, sys.argv[2])
import ckpt_diff
ck = {k: v for k, v in ckpt_diff.load(f"{t}/run/best.safetensors").items() if not k.startswith("optim")}
m = deepsky.Model.load(f"{t}/run/best.safetensors")
ps = m.parameters()
assert set(ps) == set(ck), (sorted(ps), sorted(ck))
for k, v in ps.items():
    assert v.dtype == np.float32 and v.shape == ck[k].shape and np.array_equal(v, ck[k]), k
x = np.load(f"{t}/vx.npy")[:20]
before = m.predict(x)
w = next(v for k, v in ps.items() if v.ndim == 4)   # the conv weights, in place
w *= 0
after = m.predict(x)
assert not np.allclose(before, after), "writing a parameter's array changed nothing"
del m  # the arrays keep the model alive
assert np.all(w == 0) and len(ps) == len(ck)
print(len(ps), "tensors:", ", ".join(f"{k}{list(v.shape)}" for k, v in ps.items()))
PYEOF

expect_ok "deepsky.train from arrays (the CLI's options) gives a model that learned" $PY - "$T" <<'PYEOF'
import sys, numpy as np, deepsky
t = sys.argv[1]
x, y, vx, vy = (np.load(f"{t}/{n}.npy") for n in ("x", "y", "vx", "vy"))
m = deepsky.train(f"{t}/tiny.cfg", data=(x, y), val=f"npy:{t}/vx.npy,{t}/vy.npy", out=f"{t}/pyrun", epochs=4, seed=5)
assert m.classes == ["0", "1", "2"], m.classes
acc = float((m.predict(vx).argmax(1) == vy).mean())
assert acc > 0.8, acc
import os
assert all(os.path.getsize(f"{t}/pyrun/{f}") for f in ("best.safetensors", "last.safetensors", "metrics.csv"))
print("val accuracy", acc)
PYEOF

expect_ok "bad inputs raise with the library's message" $PY - "$T" <<'PYEOF'
import sys, numpy as np, deepsky
t = sys.argv[1]
def raises(exc, pattern, f, *a, **k):
    try: f(*a, **k)
    except exc as e:
        assert pattern in str(e), (pattern, str(e)); print("ok:", type(e).__name__, str(e)[:120]); return
    raise AssertionError("no %s for %s" % (exc.__name__, pattern))
raises(deepsky.DeepskyError, "no-such", deepsky.Model.load, f"{t}/no-such.safetensors")
blob = open(f"{t}/run/best.safetensors", "rb").read()
open(f"{t}/trunc.safetensors", "wb").write(blob[: len(blob) // 2])
raises(deepsky.DeepskyError, "trunc.safetensors", deepsky.Model.load, f"{t}/trunc.safetensors")
open(f"{t}/junk.safetensors", "wb").write(b"\xff" * 64)
raises(deepsky.DeepskyError, "junk.safetensors", deepsky.Model.load, f"{t}/junk.safetensors")
raises(deepsky.DeepskyError, "batch", deepsky.Model.load, f"{t}/run/best.safetensors", batch=0)
m = deepsky.Model.load(f"{t}/run/best.safetensors")
raises(ValueError, "(1, 8, 8)", m.predict, np.zeros((4, 1, 4, 4)))
x = np.load(f"{t}/vx.npy")[:5].copy(); x[2, 0, 3, 3] = np.nan
raises(deepsky.DeepskyError, "sample 2", m.predict, x)
assert m.predict(np.zeros((0, 1, 8, 8))).shape == (0, 3)
m.close()
raises(deepsky.DeepskyError, "closed", m.predict, x)
raises(deepsky.DeepskyError, "no-such.cfg", deepsky.train, f"{t}/no-such.cfg", data=f"npy:{t}/x.npy,{t}/y.npy", out=f"{t}/bad")
raises(deepsky.DeepskyError, "deepsky:", deepsky.train, f"{t}/tiny.cfg", data=f"npy:{t}/no-x.npy,{t}/y.npy", out=f"{t}/bad")
PYEOF

expect_ok "deepsky.run, explain and attack pass options as the CLI's" $PY - "$T" <<'PYEOF'
import json, os, sys, deepsky
t = sys.argv[1]
ev = json.loads(deepsky.run("eval", f"{t}/run/best.safetensors", data=f"fits:{t}/vfits", json=True))
assert ev["accuracy"] == json.load(open(f"{t}/eval.json"))["accuracy"]
deepsky.explain(f"{t}/run/best.safetensors", data=f"npy:{t}/vx.npy,{t}/vy.npy", method="saliency", max=4, out=f"{t}/ex")
assert os.listdir(f"{t}/ex"), "explain wrote nothing"
out = deepsky.attack(f"{t}/run/best.safetensors", data=f"npy:{t}/vx.npy,{t}/vy.npy", method="fgsm", eps="0.1", max=20)
assert "0.1" in out, out
PYEOF

# --- docs/python.md's notebook example, on cutouts the simulator writes and a model trained on them ---
if $PY -c "import astropy" 2>/dev/null; then
  "$DS" simulate --out "$T/sim" --n 200 --size 21 --real-fraction 0.5 --cutouts >/dev/null 2>&1
  sed "s/^input=1,8,8/input=1,21,21/; s/^classes=3/classes=2/; s/^units=3/units=2/; s/^\[conv\]/[instancenorm]\n\n[conv]/" "$T/tiny.cfg" > "$T/rb.cfg"
  expect_ok "train on simulated cutouts" "$DS" train "$T/rb.cfg" --data "fits:$T/sim/cutouts" --epochs 6 --out "$T/rb" --quiet
  awk '/^<!-- tests\/e2e\/test_python.sh runs this block/ {on=1; next} on && /^```python/ {blk=1; next} blk && /^```/ {exit} blk' \
    "$(dirname "$0")/../../docs/python.md" | sed "s|runs/demo/best.safetensors|$T/rb/best.safetensors|; s|runs/sim/cutouts|$T/sim/cutouts|" > "$T/example.py"
  [ -s "$T/example.py" ] && ok "docs/python.md has the example block" || bad "docs/python.md example block not found"
  expect_ok "docs/python.md's FITS example runs" $PY "$T/example.py"
  grep -q "scored 200 stamps" "$T/out" && grep -q "p(real) = " "$T/out" && ok "the example scored every cutout: $(tail -1 "$T/out")" || bad "example output"
else
  echo "skip docs/python.md's FITS example: no astropy (apt-get install python3-astropy; scripts/deps.sh --test)"
fi

finish python
