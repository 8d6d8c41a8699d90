#!/usr/bin/env bash
# Hierarchical against flat on Fashion-MNIST (issue 13 item 5; docs/hierarchical.md):
# models/lenet-hier.cfg (LeNet with the natural tree: tops, footwear, trouser,
# dress, bag) and models/lenet.cfg (the flat LeNet), the same network and
# [train] recipe, trained on the 60,000 training images and evaluated on the
# 10,000 test images, the flat one measured on the same tree (eval --tree).
#   bash experiments/fashion/run_hier.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build}
DS="$B/deepsky"
R=runs/hier
mkdir -p "$R"
for m in lenet-hier lenet; do
  t0=$(date +%s)
  "$DS" train "models/$m.cfg" --data fashion-mnist --out "$R/$m" --quiet >"$R/$m.train.log"
  echo "$m: trained in $(($(date +%s) - t0)) s"
done
"$DS" eval "$R/lenet-hier/best.safetensors" --data fashion-mnist:test >"$R/lenet-hier.eval"
"$DS" eval "$R/lenet/best.safetensors" --data fashion-mnist:test --tree models/lenet-hier.cfg >"$R/lenet.eval"
"$DS" predict "$R/lenet-hier/best.safetensors" --data fashion-mnist:test >"$R/lenet-hier.predict.all"
head -5 "$R/lenet-hier.predict.all" >"$R/lenet-hier.predict"
for m in lenet-hier lenet; do echo "== $m"; grep -E "^accuracy|^macro|^level|^question|^mistakes" "$R/$m.eval"; done
cat "$R/lenet-hier.predict"
