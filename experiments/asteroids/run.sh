#!/usr/bin/env bash
# The lecture's real/bogus table on simulated stamps (issue 6): the four DBN
# configurations (30x30 [900,900], 45x45 [1600], 45x45 [1600,1600],
# 50x50 [2500]), the random forest on hand-made features, the default CNN
# on difference images and a braai-like CNN on science/reference/difference
# triplets (the same stamps: the difference channel is identical), on sets
# of the course's size and balance (21,753 training stamps, 7.7 % real;
# 5,438 test stamps), with pretraining and fine-tuning wall times. Writes
# runs/asteroids/table.md.
#   bash experiments/asteroids/run.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build}
DS="$B/deepsky"
R=runs/asteroids
mkdir -p "$R"
now() { date +%s.%N; }
secs() { /usr/bin/python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.0f} s')" "$1" "$2"; }
pct() { /usr/bin/python3 -c "import sys; print(f'{100 * float(sys.argv[1]):.{sys.argv[2]}f} %')" "$1" "$2"; }
# training stamps as `deepsky demo`'s (seed 1), per size; the test stamps are a
# hold-out set (seed 2000003) that no setting was ever chosen on: the demo's
# test set (seed 1000004) served to compare settings while tuning
for S in 30 45 50; do
  [ -s "$R/sim$S/train/x.npy" ] || "$DS" simulate --out "$R/sim$S/train" --n 21753 --size "$S" --seed 1 >/dev/null
  [ -s "$R/sim$S/holdout/x.npy" ] || "$DS" simulate --out "$R/sim$S/holdout" --n 5438 --size "$S" --seed 2000003 >/dev/null
done
[ -s "$R/sim45c3/train/x.npy" ] || "$DS" simulate --out "$R/sim45c3/train" --n 21753 --size 45 --channels 3 --seed 1 >/dev/null
[ -s "$R/sim45c3/holdout/x.npy" ] || "$DS" simulate --out "$R/sim45c3/holdout" --n 5438 --size 45 --channels 3 --seed 2000003 >/dev/null
data() { echo "npy:$R/sim$1/$2/x.npy,$R/sim$1/$2/y.npy"; }
metrics() { # CKPT SIZE -> "error auc mdr"
  "$DS" eval "$1" --data "$(data "$2" holdout)" --json | /usr/bin/python3 -c '
import json, sys
m = json.load(sys.stdin)
print("%.2f %% | %.4f | %.1f %%" % (100 * (1 - m["accuracy"]), m["roc_auc"], 100 * m["mdr_at_fpr1"]))'
}
{
  echo "| method | stamps | test error | ROC AUC | MDR at 1 % FPR | pretraining | fine-tuning / training |"
  echo "|---|---|---|---|---|---|---|"
  for cfg in dbn30-900-900:30 dbn45-1600:45 dbn45-1600-1600:45 dbn50-2500:50; do
    name=${cfg%%:*} S=${cfg##*:}
    t0=$(now)
    "$DS" pretrain "experiments/asteroids/$name.cfg" --data "$(data "$S" train)" --out "$R/$name" >"$R/$name.pretrain.log"
    t1=$(now)
    "$DS" train "experiments/asteroids/$name.cfg" --init "$R/$name/pretrained.safetensors" --data "$(data "$S" train)" \
      --out "$R/$name" --quiet >"$R/$name.train.log"
    t2=$(now)
    echo "| DBN $name | ${S}x$S | $(metrics "$R/$name/best.safetensors" "$S") | $(secs "$t0" "$t1") | $(secs "$t1" "$t2") |"
  done
  t0=$(now)
  "$DS" train models/realbogus.cfg --data "$(data 45 train)" --out "$R/cnn" --quiet >"$R/cnn.train.log"
  t1=$(now)
  echo "| CNN models/realbogus.cfg | 45x45 | $(metrics "$R/cnn/best.safetensors" 45) | - | $(secs "$t0" "$t1") |"
  t0=$(now)
  "$DS" train experiments/asteroids/braai.cfg --data "$(data 45c3 train)" --out "$R/braai" --quiet >"$R/braai.train.log"
  t1=$(now)
  echo "| CNN braai-like, 3 channels | 45x45x3 | $(metrics "$R/braai/best.safetensors" 45c3) | - | $(secs "$t0" "$t1") |"
  "$B/realbogus_forest" 21753 200 1 2000003 >"$R/forest.log"
  err=$(sed -n 's/^test error *//p' "$R/forest.log") auc=$(sed -n 's/^ROC AUC *//p' "$R/forest.log")
  mdr=$(sed -n 's/^missed-detection rate at 1% FPR *//p' "$R/forest.log")
  tt=$(sed -n 's/.*training \([0-9.]*\) s.*/\1/p' "$R/forest.log")
  echo "| random forest, 16 features | 45x45 | $(pct "$err" 2) | $auc | $(pct "$mdr" 1) | - | ${tt} s |"
} | tee "$R/table.md"
