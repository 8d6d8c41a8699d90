#!/bin/sh
# experiments/gan/augment.sh — does a conditional GAN's "real" stamps help the
# real/bogus CNN? (issue 15 item 5; the table in docs/asteroids.md)
#
# Data: the demo's simulated stamps (deepsky demo writes runs/rob/demo/
# {train,test}_{x,y}.npy). The training file is split by position: the first
# 19578 stamps train, the last 2175 validate (choose the best epoch); the
# 5438 test stamps are touched only for the final numbers. The GAN is trained
# on the 19578 training stamps alone, so nothing of validation or test leaks.
#
# Variants, each the same CNN (models/realbogus.cfg), epochs and seed:
#   none      no augmentation (experiments/gan/realbogus-noaug.cfg)
#   dihedral  the 8 symmetries of the square (models/realbogus.cfg, the zoo's)
#   gan       no augmentation, plus GEN real stamps from the conditional GAN
#   gan+dihedral  both
# usage: sh experiments/gan/augment.sh DEEPSKY OUT [EPOCHS] [GEN]
set -eu
DS=${1:?deepsky binary}
OUT=${2:?output folder}
EPOCHS=${3:-10}
GEN=${4:-5000}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DEMO=${DEMO:-$SRC/runs/rob/demo}
PY=/usr/bin/python3
mkdir -p "$OUT"
cd "$OUT"
$PY - "$DEMO" <<'PYEOF'
import sys, numpy as np
d = sys.argv[1]
x = np.load(d + '/train_x.npy'); y = np.load(d + '/train_y.npy')
n = 19578
np.save('train_x.npy', x[:n]); np.save('train_y.npy', y[:n])
np.save('val_x.npy', x[n:]); np.save('val_y.npy', y[n:])
print('train', n, 'real', int(y[:n].sum()), '| val', len(y) - n, 'real', int(y[n:].sum()))
PYEOF
# the conditional GAN, on the training stamps only
[ -f cgan/last.safetensors ] || "$DS" gan "$SRC/models/cgan-stamps.cfg" --data npy:train_x.npy,train_y.npy --out cgan --quiet
"$DS" sample cgan/last.safetensors --n "$GEN" --class 1 --seed 7 --out gen_real.npy
$PY - "$GEN" <<'PYEOF'
import sys, numpy as np
g = np.load('gen_real.npy'); x = np.load('train_x.npy'); y = np.load('train_y.npy')
np.save('aug_x.npy', np.concatenate([x, g]).astype(np.float32))
np.save('aug_y.npy', np.concatenate([y, np.ones(len(g), np.float32)]))
print('gan set', len(x) + len(g), 'real', int(y.sum()) + len(g))
PYEOF
T="--val npy:val_x.npy,val_y.npy --test npy:$DEMO/test_x.npy,$DEMO/test_y.npy --epochs $EPOCHS --seed 1 --quiet"
run() { # name model data
    [ -f "$1/best.safetensors" ] || "$DS" train "$2" --data "$3" $T --out "$1" > "$1.log" 2>&1 || { cat "$1.log"; exit 1; }
}
run none "$SRC/experiments/gan/realbogus-noaug.cfg" npy:train_x.npy,train_y.npy
run dihedral "$SRC/models/realbogus.cfg" npy:train_x.npy,train_y.npy
run gan "$SRC/experiments/gan/realbogus-noaug.cfg" npy:aug_x.npy,aug_y.npy
run gan_dihedral "$SRC/models/realbogus.cfg" npy:aug_x.npy,aug_y.npy
for v in none dihedral gan gan_dihedral; do
    "$DS" eval "$v/best.safetensors" --data "npy:$DEMO/test_x.npy,$DEMO/test_y.npy" --json > "$v.json" 2>"$v.eval.err" || true
done
echo done
