#!/usr/bin/env bash
# The metadata-only rows of the wide & deep table (issue 13 item 7;
# docs/asteroids.md): the random forest and the MLP models/alerts-meta.cfg
# on simulate's meta.csv alone, trained on the image CNN's training stamps
# (seed 1, 21,753) and scored on its hold-out set (seed 2000003, 5,438).
#   bash experiments/asteroids/run_meta.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build}
DS="$B/deepsky"
R=runs/meta
[ -s "$R/train/meta.csv" ] || "$DS" simulate --out "$R/train" --n 21753 --seed 1 --force >/dev/null
[ -s "$R/holdout/meta.csv" ] || "$DS" simulate --out "$R/holdout" --n 5438 --seed 2000003 --force >/dev/null
for s in train holdout; do /usr/bin/python3 experiments/asteroids/meta_table.py "$R/$s" "$R/$s/meta_table.csv"; done
"$B/meta_forest" "$R/train/meta_table.csv" "$R/holdout/meta_table.csv" "$R/holdout/labels.csv" 200 1 | tee "$R/forest.log"
"$DS" train models/alerts-meta.cfg --data "csv:$R/train/meta_table.csv,label=label" --out "$R/mlp" --quiet
"$DS" eval "$R/mlp/best.safetensors" --data "csv:$R/holdout/meta_table.csv,label=label" --meta "$R/holdout/labels.csv" | tee "$R/mlp.log"
