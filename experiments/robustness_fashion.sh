#!/bin/sh
# Issue 14's robustness table on Fashion-MNIST (docs/robustness.md): LeNet
# trained clean, with FGSM and with PGD adversarial training, each attacked
# with FGSM and PGD-20 at eps 0.05, 0.1, 0.2 on the 10,000 test images.
#   sh experiments/robustness_fashion.sh [DEEPSKY] [OUT]
set -eu
DS=${1:-build/deepsky}
OUT=${2:-runs/robustness}
mkdir -p "$OUT"
for m in clean fgsm pgd; do
  cfg=models/lenet.cfg; [ $m = clean ] || cfg=models/lenet-$m.cfg
  [ -f "$OUT/lenet-$m/best.safetensors" ] ||
    "$DS" train $cfg --data fashion-mnist --val-split 0.1 --out "$OUT/lenet-$m" --quiet > "$OUT/lenet-$m.log"
  for a in fgsm pgd; do
    "$DS" attack "$OUT/lenet-$m/best.safetensors" --data fashion-mnist:test --method $a --eps 0.05,0.1,0.2 \
      --steps 20 --out "$OUT/lenet-$m-$a" > "$OUT/lenet-$m-$a.log"
  done
done
