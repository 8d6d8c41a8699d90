#!/usr/bin/env bash
# The wide & deep table of docs/asteroids.md (issue 13 item 7): on identical
# stamps — training seed 1 (21,753, the demo's and the CNN row's), hold-out
# seed 2000003 (5,438, never used to choose anything) — the image-only CNN
# (models/realbogus.cfg) and wide & deep (models/alerts-wide-deep.cfg: the
# same CNN joined with the alert metadata of meta.csv, plus a linear part).
# Each is scored on the hold-out set by `deepsky eval --meta` (error, AUC,
# MDR at 1 % FPR, rejection per bogus kind).
#   bash experiments/asteroids/run_wide_deep.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build}
DS="$B/deepsky"
R=runs/alerts
for s in train:1:21753 holdout:2000003:5438; do
  IFS=: read -r name seed n <<<"$s"
  [ -s "$R/$name/meta.csv" ] || "$DS" simulate --out "$R/$name" --n "$n" --size 45 --seed "$seed" --force >/dev/null
done
T="$R/train" H="$R/holdout"
t0=$(date +%s)
"$DS" train models/realbogus.cfg --data "npy:$T/x.npy,$T/y.npy" --out "$R/image" --quiet >"$R/image.train.log"
t1=$(date +%s)
"$DS" train models/alerts-wide-deep.cfg --data "npy:$T/x.npy,$T/y.npy" --data "meta=csv:$T/meta.csv,id=index" \
  --out "$R/wide_deep" --quiet >"$R/wide_deep.train.log"
t2=$(date +%s)
"$DS" eval "$R/image/best.safetensors" --data "npy:$H/x.npy,$H/y.npy" --meta "$H/labels.csv" >"$R/image.eval"
"$DS" eval "$R/wide_deep/best.safetensors" --data "npy:$H/x.npy,$H/y.npy" --data "meta=csv:$H/meta.csv,id=index" \
  --meta "$H/labels.csv" >"$R/wide_deep.eval"
echo "training: image-only $((t1 - t0)) s, wide & deep $((t2 - t1)) s"
for m in image wide_deep; do echo "== $m"; cat "$R/$m.eval"; done
