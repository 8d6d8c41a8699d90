#!/bin/sh
# Issue 14's robustness table on the demo's real/bogus stamps
# (docs/robustness.md): the demo's CNN, and the same trained with FGSM and
# with PGD adversarial training, attacked with FGSM and PGD-20 (the first
# 2,000 test stamps) at eps 1, 3
# and 10 times the stamps' median noise sigma (25 e-) on the demo's test
# stamps (seed 1000004: held out from training).
#   sh experiments/robustness_stamps.sh [DEEPSKY] [DEMO_DIR] [OUT]
set -eu
DS=${1:-build/deepsky}
DEMO=${2:-runs/demo}
OUT=${3:-runs/robustness}
mkdir -p "$OUT"
[ -f "$DEMO/best.safetensors" ] || "$DS" demo --out "$DEMO" > "$OUT/demo.log"
[ -d "$OUT/realbogus-clean" ] || { mkdir -p "$OUT/realbogus-clean"; cp "$DEMO/best.safetensors" "$OUT/realbogus-clean/"; }
TRAIN=npy:$DEMO/train_x.npy,$DEMO/train_y.npy
TEST=npy:$DEMO/test_x.npy,$DEMO/test_y.npy
for m in clean fgsm pgd pgd1; do
  cfg=models/realbogus-$m.cfg; [ $m = pgd1 ] && cfg=experiments/realbogus-pgd-1sigma.cfg # PGD at 1 sigma
  [ -f "$OUT/realbogus-$m/best.safetensors" ] ||
    "$DS" train $cfg --data "$TRAIN" --val-split 0.1 --out "$OUT/realbogus-$m" --quiet > "$OUT/realbogus-$m.log"
  for a in fgsm pgd; do
    "$DS" attack "$OUT/realbogus-$m/best.safetensors" --data "$TEST" --method $a --eps 25,75,250 --steps 20 --max 2000 \
      --out "$OUT/realbogus-$m-$a" > "$OUT/realbogus-$m-$a.log"
  done
done
