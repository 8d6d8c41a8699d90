#!/bin/sh
# Issue 14's robustness table on Fashion-MNIST (docs/robustness.md): LeNet
# trained clean, with FGSM and with PGD adversarial training, each attacked
# with FGSM (all 10,000 test images) and PGD-20 (the first 2,000: 20 steps
# of 2,000 images cost as much as 4 epochs of training) at eps 0.05, 0.1, 0.2.
# Steps already done (a checkpoint, an attack.csv) are kept.
#   sh experiments/robustness_fashion.sh [DEEPSKY] [OUT]
set -eu
DS=${1:-build/deepsky}
OUT=${2:-runs/robustness}
mkdir -p "$OUT"
while pgrep -f "deepsky.* attack .*$OUT/lenet-clean" > /dev/null; do sleep 10; done # an earlier run's attack
for m in clean fgsm pgd; do
  cfg=models/lenet.cfg; [ $m = clean ] || cfg=models/lenet-$m.cfg
  [ -f "$OUT/lenet-$m/best.safetensors" ] ||
    "$DS" train $cfg --data fashion-mnist --val-split 0.1 --out "$OUT/lenet-$m" --quiet > "$OUT/lenet-$m.log"
  [ -f "$OUT/lenet-$m-fgsm/attack.csv" ] ||
    "$DS" attack "$OUT/lenet-$m/best.safetensors" --data fashion-mnist:test --method fgsm --eps 0.05,0.1,0.2 \
      --out "$OUT/lenet-$m-fgsm" > "$OUT/lenet-$m-fgsm.log"
  [ -f "$OUT/lenet-$m-pgd2k/attack.csv" ] ||
    "$DS" attack "$OUT/lenet-$m/best.safetensors" --data fashion-mnist:test --method pgd --eps 0.05,0.1,0.2 \
      --steps 20 --max 2000 --out "$OUT/lenet-$m-pgd2k" > "$OUT/lenet-$m-pgd2k.log"
done
