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
# Variants, each the same CNN (models/realbogus.cfg), epochs and seeds:
#   none          no augmentation (experiments/gan/realbogus-noaug.cfg)
#   dihedral      the 8 symmetries of the square (models/realbogus.cfg, the zoo's)
#   gan           no augmentation, plus GEN "real" stamps from models/cgan-stamps.cfg
#   gan_dihedral  both
#   gan_bal, gan_bal_dihedral  the same with the GAN trained with sampler = balanced
#                 (experiments/gan/cgan-stamps-balanced.cfg)
# Seed 1's runs are OUT/VARIANT, seed S's OUT/VARIANT_sS (SEEDS="1 2 3").
# usage: [SEEDS="1 2"] sh experiments/gan/augment.sh DEEPSKY OUT [EPOCHS] [GEN]
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
# the conditional GANs, on the training stamps only
[ -f cgan/last.safetensors ] || "$DS" gan "$SRC/models/cgan-stamps.cfg" --data npy:train_x.npy,train_y.npy --out cgan --quiet
[ -f cganb/last.safetensors ] || "$DS" gan "$SRC/experiments/gan/cgan-stamps-balanced.cfg" --data npy:train_x.npy,train_y.npy --out cganb --quiet
for g in cgan cganb; do
    [ -f "$g/gen_real.npy" ] || "$DS" sample $g/last.safetensors --n "$GEN" --class 1 --seed 7 --out $g/gen_real.npy
    [ -f "$g/aug_x.npy" ] || $PY - "$g" <<'PYEOF'
import sys, numpy as np
g = sys.argv[1]
s = np.load(g + '/gen_real.npy'); x = np.load('train_x.npy'); y = np.load('train_y.npy')
np.save(g + '/aug_x.npy', np.concatenate([x, s]).astype(np.float32))
np.save(g + '/aug_y.npy', np.concatenate([y, np.ones(len(s), np.float32)]))
print(g, 'set', len(x) + len(s), 'real', int(y.sum()) + len(s))
PYEOF
    # how the stamps CNN trained without them (dihedral, seed 1; made below) sees the GAN's classes
done
T="--val npy:val_x.npy,val_y.npy --test npy:$DEMO/test_x.npy,$DEMO/test_y.npy --epochs $EPOCHS --quiet"
run() { # name seed model data
    [ -f "$1/best.safetensors" ] || "$DS" train "$3" --data "$4" $T --seed "$2" --out "$1" > "$1.log" 2>&1 || { cat "$1.log"; exit 1; }
    [ -f "$1.json" ] || "$DS" eval "$1/best.safetensors" --data "npy:$DEMO/test_x.npy,$DEMO/test_y.npy" --json > "$1.json"
}
NOAUG=$SRC/experiments/gan/realbogus-noaug.cfg
ZOO=$SRC/models/realbogus.cfg
for s in ${SEEDS:-1}; do
    sfx=; [ "$s" = 1 ] || sfx=_s$s
    run none$sfx $s "$NOAUG" npy:train_x.npy,train_y.npy
    run dihedral$sfx $s "$ZOO" npy:train_x.npy,train_y.npy
    run gan$sfx $s "$NOAUG" npy:cgan/aug_x.npy,cgan/aug_y.npy
    run gan_dihedral$sfx $s "$ZOO" npy:cgan/aug_x.npy,cgan/aug_y.npy
    run gan_bal$sfx $s "$NOAUG" npy:cganb/aug_x.npy,cganb/aug_y.npy
    run gan_bal_dihedral$sfx $s "$ZOO" npy:cganb/aug_x.npy,cganb/aug_y.npy
done
# each GAN's samples as the seed-1 CNN without them sees them (class agreement, FID, copies)
for g in cgan cganb; do
    [ -f "$g/fid.json" ] && continue
    "$DS" sample $g/last.safetensors --n 4000 --by-class --seed 11 --out $g/samples.npy --classes-out $g/classes.npy
    "$DS" fid --classifier dihedral/best.safetensors --real "$DEMO/test_x.npy" --fake $g/samples.npy \
        --fake-labels $g/classes.npy --train train_x.npy --json $g/fid.json > $g/fid.txt
done
$PY "$SRC/experiments/gan/augment_table.py" .
