#!/bin/bash
# test_mpi.sh DEEPSKY — data-parallel training under Open MPI (docs/scaling.md):
# mpirun -np 2 on Fashion-MNIST equals one process at the same global batch
# (bit for bit against micro_batches = 2, the same sums; the plain run's
# distance is printed), batch norm with and without sync_bn, --resume with
# another number of ranks, and failures that stop every rank with a message.
# Skipped (77) when deepsky was built without MPI or mpirun is missing.
set -u
DS=$1
. "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
"$DS" --version | grep -q "^MPI: none" && { echo "built without MPI: skipped"; exit 77; }
command -v mpirun >/dev/null || { echo "no mpirun: skipped"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# loopback only, shared memory between the two ranks; quiet about a missing InfiniBand
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_base_warn_component_unused=0
MPI="timeout 600 mpirun --oversubscribe -np"
diff_ck() { $PY "$SRC/tests/e2e/ckpt_diff.py" "$@" | tail -1; }
same() { # NAME A B [--keys all]: bit-identical tensors
  local r; r=$(diff_ck "$2" "$3" ${4:+--keys all})
  case $r in *identical=1*) ok "$1 ($r)" ;; *) bad "$1 ($r)" ;; esac
}

# --- the issue's command: LeNet on Fashion-MNIST, 1 epoch (938 steps) ---
# micro_batches = 2 computes each global batch of 64 as 2 x 32 and sums the
# gradients in order: the sums the 2 ranks make
cp "$SRC/models/lenet.cfg" "$T/lenet.cfg"
(cat "$SRC/models/lenet.cfg"; echo "micro_batches = 2") >"$T/lenet-mb2.cfg"
[ -n "${MPI_QUICK:-}" ] || {
expect_ok "mpirun -np 2 deepsky train models/lenet.cfg --data fashion-mnist" \
  $MPI 2 "$DS" train "$T/lenet.cfg" --data fashion-mnist --epochs 1 --out "$T/mpi2" --quiet
grep -q "data-parallel: 2 ranks" "$T/out" && grep -q "test accuracy" "$T/out" && ok "2 ranks: banner and rank 0's test line" || bad "2 ranks banner"
[ "$(grep -c "^epoch 1/1" "$T/out")" = 1 ] && ok "only rank 0 prints" || bad "only rank 0 prints"
acc=$(sed -n 's/^test accuracy: \([0-9.]*\).*/\1/p' "$T/out")
$PY -c "import sys; sys.exit(0 if float('$acc') > 0.80 else 1)" && ok "2 ranks: test accuracy $acc after 1 epoch" || bad "2 ranks accuracy $acc"
expect_ok "1 process, micro_batches = 2" env DS_NUM_THREADS=2 "$DS" train "$T/lenet-mb2.cfg" --data fashion-mnist --epochs 1 --out "$T/one-mb2" --quiet
same "2 ranks = 1 process at the same global batch, bit for bit (weights, buffers, Adam moments)" \
  "$T/mpi2/last.safetensors" "$T/one-mb2/last.safetensors" all
expect_ok "1 process, plain" env DS_NUM_THREADS=2 "$DS" train "$T/lenet.cfg" --data fashion-mnist --epochs 1 --out "$T/one" --quiet
echo "     plain single process against 2 ranks (other summation order): $(diff_ck "$T/mpi2/last.safetensors" "$T/one/last.safetensors")"
}

# --- a subset for the rest: 6,400 images, 100 steps per epoch ---
$PY "$SRC/bench/fashion_npy.py" "$T/fm" >/dev/null
$PY -c "
import numpy as np
x = np.load('$T/fm/train_x.npy'); y = np.load('$T/fm/train_y.npy')
np.save('$T/x.npy', x[:6400]); np.save('$T/y.npy', y[:6400])
np.save('$T/x2.npy', x[6400:12800]); np.save('$T/y2.npy', y[6400:12800])"
D="npy:$T/x.npy,$T/y.npy"

# --resume with another number of ranks: 2 ranks sum what 1 process in 2
# micro-batches sums (--micro-batches 2); a constant rate (lenet.cfg's cosine
# spans --epochs, which differ here). Reference: 2 epochs in 1 process.
grep -v "^schedule" "$T/lenet.cfg" >"$T/lenet-const.cfg"
expect_ok "reference: 2 epochs, 1 process" "$DS" train "$T/lenet-const.cfg" --data "$D" --epochs 2 --micro-batches 2 --out "$T/ref" --quiet
expect_ok "epoch 1 on 2 ranks" $MPI 2 "$DS" train "$T/lenet-const.cfg" --data "$D" --epochs 1 --out "$T/r21" --quiet
expect_ok "epoch 2 resumed on 1 process" "$DS" train --resume "$T/r21/last.safetensors" --data "$D" --epochs 2 --micro-batches 2 --quiet
same "2 ranks then 1 process = 1 process throughout" "$T/ref/last.safetensors" "$T/r21/last.safetensors" all
expect_ok "epoch 1 on 1 process" "$DS" train "$T/lenet-const.cfg" --data "$D" --epochs 1 --micro-batches 2 --out "$T/r12" --quiet
expect_ok "epoch 2 resumed on 2 ranks" $MPI 2 "$DS" train --resume "$T/r12/last.safetensors" --data "$D" --epochs 2 --quiet
same "1 process then 2 ranks = 1 process throughout" "$T/ref/last.safetensors" "$T/r12/last.safetensors" all
grep -q "^2," "$T/r12/metrics.csv" && ok "metrics.csv has epoch 2 after the 2-rank resume" || bad "metrics.csv after resume"

# three ranks: allreduce=ordered sums in rank order, as 3 micro-batches do
(grep -v "^schedule" "$T/lenet.cfg"; echo "allreduce = ordered") >"$T/lenet-ord.cfg"
expect_ok "3 ranks, allreduce = ordered, global batch 63" $MPI 3 "$DS" train "$T/lenet-ord.cfg" --data "$D" --batch 63 --epochs 1 --out "$T/o3" --quiet
expect_ok "1 process, 3 micro-batches" "$DS" train "$T/lenet-ord.cfg" --data "$D" --batch 63 --micro-batches 3 --epochs 1 --out "$T/o1" --quiet
same "3 ranks (ordered) = 1 process in 3 micro-batches" "$T/o3/last.safetensors" "$T/o1/last.safetensors" all

# --- batch norm: per-rank statistics (= micro-batches), and synchronised ---
cat >"$T/bn.cfg" <<'CFG'
[net]
input = 1,28,28
classes = 10
[conv]
name = c1
filters = 8
size = 3
stride = 2
batch_normalize = 1
activation = relu
[conv]
name = c2
filters = 16
size = 3
stride = 2
batch_normalize = 1
activation = relu
[global_avgpool]
[dense]
name = out
units = 10
[train]
optimizer = sgd
lr = 0.05
momentum = 0.9
batch = 64
epochs = 1
seed = 3
CFG
(cat "$T/bn.cfg"; echo "micro_batches = 2") >"$T/bn-mb2.cfg"
(cat "$T/bn.cfg"; echo "sync_bn = 1") >"$T/bn-sync.cfg"
expect_ok "batch norm on 2 ranks" $MPI 2 "$DS" train "$T/bn.cfg" --data "$D" --out "$T/bn2" --quiet
expect_ok "batch norm, 1 process, micro_batches 2" "$DS" train "$T/bn-mb2.cfg" --data "$D" --out "$T/bn1" --quiet
same "batch norm: 2 ranks = 1 process in 2 micro-batches (running statistics rank 0's)" "$T/bn2/last.safetensors" "$T/bn1/last.safetensors" all
# sync_bn: one step over 2 ranks is one step of one process at batch 64 (statistics of all 64 rows), up to rounding
$PY -c "
import numpy as np
np.save('$T/x1.npy', np.load('$T/x.npy')[:64]); np.save('$T/y1.npy', np.load('$T/y.npy')[:64])"
expect_ok "sync_bn, 2 ranks, 1 step" $MPI 2 "$DS" train "$T/bn-sync.cfg" --data "npy:$T/x1.npy,$T/y1.npy" --out "$T/s2" --quiet
expect_ok "1 process, 1 step" "$DS" train "$T/bn.cfg" --data "npy:$T/x1.npy,$T/y1.npy" --out "$T/s1" --quiet
r=$(diff_ck "$T/s2/last.safetensors" "$T/s1/last.safetensors")
$PY -c "import sys; v=float('$r'.split()[0].split('=')[1]); sys.exit(0 if v < 1e-5 else 1)" && ok "sync_bn: 2 ranks = 1 process at batch 64 after a step ($r)" || bad "sync_bn one step ($r)"

# --- failures stop every rank, with the failing rank's message ---
expect_fail "a global batch the ranks do not divide" "not divisible by 2 ranks" $MPI 2 "$DS" train "$T/lenet.cfg" --data "$D" --batch 63 --epochs 1 --out "$T/f1" --quiet
expect_fail "rank 1 cannot read its data: every rank stops" "rank 1 of 2: .*nothere" \
  $MPI 1 "$DS" train "$T/lenet.cfg" --data "$D" --epochs 1 --out "$T/f2" --quiet : \
  -np 1 "$DS" train "$T/lenet.cfg" --data "npy:$T/nothere.npy,$T/y.npy" --epochs 1 --out "$T/f2" --quiet
expect_fail "rank 1 has other data: refused before training" "ranks differ in their model, settings or training data" \
  $MPI 1 "$DS" train "$T/lenet.cfg" --data "$D" --epochs 1 --out "$T/f3" --quiet : \
  -np 1 "$DS" train "$T/lenet.cfg" --data "npy:$T/x2.npy,$T/y2.npy" --epochs 1 --out "$T/f3" --quiet
[ ! -e "$T/f3/last.safetensors" ] && ok "no checkpoint from the refused run" || bad "refused run wrote a checkpoint"
expect_fail "other commands refuse to run on several ranks" "does not run data-parallel" $MPI 2 "$DS" eval "$T/mpi2/last.safetensors" --data "$D"
finish mpi
