#!/usr/bin/env bash
# End-to-end tests of issue 15's GAN benchmark scripts: bench/gan_bench.py's
# commands (--dry-run: alternating frameworks, the same epochs, seeds and
# --limit on both sides), bench/gan_torch.py on 256 images (its samples,
# grid and metrics.csv), the torch half of gan_bench for real (speed only,
# no FID), and bad options.
# usage: test_gan_bench.sh PATH/TO/deepsky
set -u
DS=${1:?usage: test_gan_bench.sh DEEPSKY}
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if ! $PY -c "import torch, numpy" 2>/dev/null; then echo "skip: no torch in $PY"; exit 77; fi
export OPENBLAS_NUM_THREADS=1

# --- the orchestration: commands in order ---
expect_ok "gan_bench --dry-run" $PY "$ROOT/bench/gan_bench.py" --dry-run --deepsky "$DS" --epochs 2 --limit 300 \
  --seeds 1 2 --work "$T/gb"
cp "$T/out" "$T/dry"
order=$(grep -Eo '^(OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/gan_torch.py|[^ ]+ gan )' "$T/dry" | \
  sed -E 's/.*gan_torch.py/torch/; s/.* gan $/deepsky/' | tr '\n' ' ')
if [ "$order" = "deepsky torch deepsky torch " ]; then ok "dry run alternates: $order"; else bad "dry run order: '$order'"; fi
if grep -q -- "$DS gan models/dcgan-fashion.cfg --data fashion-mnist --epochs 2 --seed 2 --out $T/gb/deepsky-s2 --limit 300" "$T/dry" &&
   grep -q -- "$DS sample $T/gb/deepsky-s2/last.safetensors --n 10000 --seed 1234 --out $T/gb/deepsky-s2/samples.npy" "$T/dry" &&
   grep -q -- "gan_torch.py --epochs 2 --seed 2 --threads 2 --n-samples 10000 --sample-seed 1234 --out $T/gb/torch-s2 --limit 300" "$T/dry" &&
   [ "$(grep -c -- "$DS fid --classifier runs/rob/lenet-clean/best.safetensors --real build/gan-bench/test.npy --fake $T/gb/.*/samples.npy --json $T/gb/.*/fid.json" "$T/dry")" = 4 ]
then ok "dry run: gan, sample, torch and fid commands"; else bad "dry run commands"; sed 's/^/     | /' "$T/dry"; fi

# --- the PyTorch DCGAN, one short epoch ---
expect_ok "gan_torch.py on 256 images" $PY "$ROOT/bench/gan_torch.py" --epochs 1 --limit 256 --n-samples 16 --out "$T/t"
if grep -q "OpenBLAS core: " "$T/out" && grep -Eq "epoch 1: .* images/s" "$T/out"; then ok "gan_torch prints the BLAS and images/s"
else bad "gan_torch's output"; fi
if $PY - "$T/t" <<'PYEOF'
import csv, sys, numpy as np
t = sys.argv[1]
s = np.load(f"{t}/samples.npy")
assert s.shape == (16, 1, 28, 28) and s.dtype == np.float32, (s.shape, s.dtype)
assert s.min() >= 0 and s.max() <= 1 and s.std() > 0, (s.min(), s.max())
rows = list(csv.DictReader(open(f"{t}/metrics.csv")))
assert [r["epoch"] for r in rows] == ["1"], rows
assert all(float(rows[0][k]) > 0 for k in ("loss_d", "loss_g", "d_x", "d_g_z1", "d_g_z2", "seconds", "images_per_s"))
assert open(f"{t}/samples.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
PYEOF
then ok "gan_torch: samples [16,1,28,28] in [0,1], metrics.csv, samples.png"; else bad "gan_torch's files"; fi

# --- gan_bench's torch half for real ---
expect_ok "gan_bench --frameworks torch --no-fid" $PY "$ROOT/bench/gan_bench.py" --frameworks torch --no-fid \
  --epochs 1 --limit 256 --n-samples 16 --seeds 1 2 --work "$T/gb" --md "$T/gb.md"
if grep -Eq '^\| 1 \| - \| [0-9.]+ \|$' "$T/gb.md" && grep -Eq '^\| 2 \| - \| [0-9.]+ \|$' "$T/gb.md" &&
   grep -Eq '^\| mean ± std \| - \| [0-9.]+ ± [0-9.]+ \|$' "$T/gb.md"
then ok "gan_bench table: two seeds, mean ± std"; else bad "gan_bench table"; sed 's/^/     | /' "$T/gb.md"; fi

# --- bad options ---
expect_fail "gan_torch --epochs 0" "must be >= 1" $PY "$ROOT/bench/gan_torch.py" --epochs 0 --out "$T/bad"
expect_fail "gan_bench --frameworks tf" "error: --frameworks: deepsky, torch" $PY "$ROOT/bench/gan_bench.py" --frameworks tf --dry-run
expect_fail "gan_bench without the classifier" "classifier .* does not exist" $PY "$ROOT/bench/gan_bench.py" \
  --classifier "$T/none.safetensors" --epochs 1 --work "$T/gb2"
finish gan_bench
