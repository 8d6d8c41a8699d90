#!/usr/bin/env bash
# End-to-end tests of `deepsky gan` and `deepsky sample`: a small DCGAN and a
# conditional GAN train and leave their checkpoint, metrics, sample grids,
# interpolation and report; an interrupted-and-resumed run ends bit for bit
# where the uninterrupted one does; samples come back in the data's units as
# NPY and FITS; bad models, data and options are clear errors.
set -u
DS=$1
. "$(dirname "$0")/lib.sh"

$PY - "$T" <<'EOF' || { bad "make data"; finish gan; exit 1; }
import sys, numpy as np
t = sys.argv[1]
r = np.random.default_rng(5)
n = 192
y = r.integers(0, 2, n)
x = r.normal(0, 1, (n, 1, 12, 12)).astype(np.float32)
for i in range(n):  # class 1: a bright square in the middle
    if y[i]:
        x[i, 0, 4:8, 4:8] += 40
np.save(f"{t}/x.npy", x); np.save(f"{t}/y.npy", y.astype(np.float32))
np.save(f"{t}/y_bad.npy", (y * 3).astype(np.float32))
np.save(f"{t}/x_small.npy", np.zeros((20, 1, 8, 8), np.float32))
EOF

net() { # the networks for 12x12 samples; $1: conditional inputs or none
cat <<CFG
[generator]
$( [ "$1" = c ] && printf '[input]\nname = z\nshape = 8\n[input]\nname = c\nshape = 1\n[embedding]\nname = ge\nfrom = c\ncategories = 2\nunits = 2\n[concat]\nfrom = z, ge\n' || printf 'input = 8\n' )
[dense]
name = g_fc
units = 144
batch_normalize = 1
activation = relu
init = dcgan
[reshape]
shape = 16,3,3
[deconv]
name = g_up
filters = 8
size = 4
stride = 2
pad = 1
batch_normalize = 1
activation = relu
[deconv]
name = g_out
filters = 1
size = 4
stride = 2
pad = 1
bias = 0
activation = tanh
[discriminator]
$( [ "$1" = c ] && printf '[input]\nname = x\nshape = 1,12,12\n[input]\nname = c\nshape = 1\n[embedding]\nname = de\nfrom = c\ncategories = 2\nunits = 144\n[reshape]\nname = dp\nshape = 1,12,12\n[concat]\nfrom = x, dp\n' || printf 'input = 1,12,12\n' )
[conv]
name = d_conv
filters = 8
size = 4
stride = 2
pad = 1
activation = leaky_relu
alpha = 0.2
[flatten]
[dense]
name = d_out
units = 1
CFG
}
{ printf '[gan]\nlatent = 8\ntransform = asinh\ninstance_noise = 0.1\nlabel_smoothing = 0.1\ngrid = 16\n[train]\noptimizer = adam\nlr = 0.0002\nbeta1 = 0.5\nbatch = 32\nepochs = 2\nseed = 4\n'; net u; } >"$T/dcgan.cfg"
{ printf '[gan]\nlatent = 8\nconditional = 1\nclasses = 2\ntransform = asinh\n[train]\nbatch = 32\nepochs = 2\n'; net c; } >"$T/cgan.cfg"
D="npy:$T/x.npy,$T/y.npy"

expect_ok "dcgan trains" "$DS" gan "$T/dcgan.cfg" --data "$D" --out "$T/a" --quiet
for f in last.safetensors metrics.csv samples.png samples_epoch2.png progress.png interpolation.png loss.png d_output.png report.html; do
  [ -s "$T/a/$f" ] && ok "dcgan wrote $f" || bad "dcgan wrote $f"
done
if [ "$(head -1 "$T/a/metrics.csv")" = "epoch,loss_d,loss_g,d_real,d_fake,d_fake_after,seconds,images_per_s" ] &&
   [ "$(grep -c '^[12],' "$T/a/metrics.csv")" = 2 ]; then ok "metrics.csv: a row per epoch"; else bad "metrics.csv"; fi

expect_ok "info on a GAN file" "$DS" info "$T/cgan.cfg"
grep -q "^\[generator\]" "$T/out" && grep -q "^discriminator: [0-9]* parameters" "$T/out" && ok "info: both networks" || bad "info: both networks"
expect_ok "info on a GAN checkpoint" "$DS" info "$T/a/last.safetensors"
grep -q "trained 2 epochs" "$T/out" && ok "info: the checkpoint's epochs" || bad "info: the checkpoint's epochs"
# interrupted after epoch 1, resumed: the same weights as the straight run
expect_ok "1 epoch" "$DS" gan "$T/dcgan.cfg" --data "$D" --out "$T/b" --epochs 1 --quiet
expect_ok "resume to 2" "$DS" gan --resume "$T/b/last.safetensors" --data "$D" --epochs 2 --quiet
$PY - "$T/a/last.safetensors" "$T/b/last.safetensors" >"$T/out" 2>&1 <<'EOF' && ok "resume is bit-identical" || bad "resume is bit-identical"
import sys, json, struct
def tensors(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]] for k, v in h.items() if k != '__metadata__'}, h['__metadata__']
a, ma = tensors(sys.argv[1]); b, mb = tensors(sys.argv[2])
assert a.keys() == b.keys() and all(a[k] == b[k] for k in a), [k for k in a if a[k] != b.get(k)][:5]
assert any(k.startswith('generator.') for k in a) and any(k.startswith('discriminator.optim') or k.startswith('optim.') for k in a)
assert ma['gan'] == mb['gan']
print(len(a), 'tensors equal')
EOF
expect_fail "resume on other data" "160 samples, but the run being resumed trained on 192" \
  "$DS" gan --resume "$T/b/last.safetensors" --data "$D" --limit 160 --epochs 3
expect_ok "nothing left to do" "$DS" gan --resume "$T/a/last.safetensors" --data "$D" --quiet

expect_ok "sample npy" "$DS" sample "$T/a/last.safetensors" --n 40 --out "$T/s.npy" --grid "$T/s.png"
expect_ok "sample fits" "$DS" sample "$T/a/last.safetensors" --n 5 --out "$T/s.fits"
$PY - "$T" >"$T/out" 2>&1 <<'EOF' && ok "samples: shape and the data's units" || bad "samples: shape and the data's units"
import sys, numpy as np
t = sys.argv[1]
s = np.load(f"{t}/s.npy"); x = np.load(f"{t}/x.npy")
assert s.shape == (40, 1, 12, 12) and s.dtype == np.float32, s.shape
assert np.isfinite(s).all()
# asinh inverted: within the data's range, not [-1, 1]
assert s.min() >= x.min() - 1e-3 and s.max() <= x.max() + 1e-3, (s.min(), s.max(), x.min(), x.max())
assert open(f"{t}/s.fits", 'rb').read(30).startswith(b'SIMPLE  =')
EOF
expect_ok "cgan trains" "$DS" gan "$T/cgan.cfg" --data "$D" --out "$T/c" --quiet
expect_ok "cgan sample --class 1" "$DS" sample "$T/c/last.safetensors" --n 10 --class 1 --out "$T/c1.npy" --classes-out "$T/c1_y.npy"
$PY -c "import numpy as np,sys; y=np.load(sys.argv[1]); assert (y==1).all() and y.shape==(10,)" "$T/c1_y.npy" && ok "classes-out" || bad "classes-out"

# bad inputs
sed 's/^input = 1,12,12/input = 1,10,10/' "$T/dcgan.cfg" >"$T/mismatch.cfg"
expect_fail "generator/discriminator shape mismatch" "generator's output is \[32, 1, 12, 12\].*discriminator's input 'x' is \[32, 1, 10, 10\]" \
  "$DS" gan "$T/mismatch.cfg" --data "npy:$T/x_small.npy" --out "$T/m"
expect_fail "data shape" "samples are \[1, 8, 8\]; the discriminator's input is \[1, 12, 12\]" \
  "$DS" gan "$T/dcgan.cfg" --data "npy:$T/x_small.npy" --out "$T/m"
expect_fail "class out of range" "sample [0-9]+ has class 3; the conditional GAN has classes 0..1" \
  "$DS" gan "$T/cgan.cfg" --data "npy:$T/x.npy,$T/y_bad.npy" --out "$T/m"
sed 's/^latent = 8/latent = 9/' "$T/dcgan.cfg" >"$T/latent.cfg"
expect_fail "latent mismatch" "dcgan|latent.cfg:[0-9]+: \[generator\]: its first input is \[8\] but \[gan\] latent=9" \
  "$DS" gan "$T/latent.cfg" --data "$D" --out "$T/m"
printf '[gan]\nlatent = 8\nbogus = 1\n' >"$T/badkey.cfg"
expect_fail "unknown [gan] key" "badkey.cfg:3: \[gan\] bogus: unknown key" "$DS" gan "$T/badkey.cfg" --data "$D"
expect_fail "no data" "--data SPEC is required" "$DS" gan "$T/dcgan.cfg"
expect_fail "missing file" "nope.npy" "$DS" gan "$T/dcgan.cfg" --data "npy:$T/nope.npy"
expect_fail "sample: not a checkpoint" "not a checkpoint" "$DS" sample "$T/a/report.html" --n 2 --out "$T/z.npy"
expect_fail "sample: --class on an unconditional GAN" "unconditional" "$DS" sample "$T/a/last.safetensors" --n 2 --class 1 --out "$T/z.npy"
expect_fail "sample: class out of range" "classes 0..1" "$DS" sample "$T/c/last.safetensors" --n 2 --class 2 --out "$T/z.npy"
expect_fail "sample: output type" "name it .npy or .fits" "$DS" sample "$T/a/last.safetensors" --n 2 --out "$T/z.png"
head -c 300 "$T/a/last.safetensors" >"$T/trunc.safetensors"
expect_fail "sample: truncated checkpoint" "trunc.safetensors" "$DS" sample "$T/trunc.safetensors" --n 2 --out "$T/z.npy"
expect_fail "train refuses a GAN file" "GAN|gan" "$DS" train "$T/dcgan.cfg" --data "$D"
finish gan
