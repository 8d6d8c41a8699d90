#!/usr/bin/env bash
# End-to-end tests of sharded data sets (docs/data.md): simulate --shards
# writes the stamps of an unsharded simulate, data specs read the set
# (shards:DIR, DIR, DIR/index.json), training and evaluation run on it, and
# bad sets (index key, missing or truncated shard, too large for memory)
# exit non-zero naming the file.
# usage: test_shards.sh PATH/TO/deepsky
set -u
DS=${1:?usage: test_shards.sh DEEPSKY}
. "$(dirname "$0")/lib.sh"

expect_ok "simulate --shards" "$DS" simulate --out "$T/set" --n 600 --size 16 --shards 250 --seed 5
grep -q "in 3 shards of up to 250" "$T/out" && ok "simulate --shards reports its shards" || bad "simulate --shards summary"
[ -s "$T/set/index.json" ] && [ -s "$T/set/shard-000002.x.npy" ] && [ ! -e "$T/set/shard-000003.x.npy" ] &&
  ok "simulate --shards wrote index.json and 3 shards" || bad "simulate --shards files"
expect_ok "simulate, unsharded" "$DS" simulate --out "$T/flat" --n 600 --size 16 --seed 5
if $PY - "$T" >"$T/out" 2>&1 <<'PYEOF'
import sys, json, numpy as np
t = sys.argv[1]
ix = json.load(open(f"{t}/set/index.json"))
x = np.concatenate([np.load(f"{t}/set/{s['x']}") for s in ix["shards"]])
y = np.concatenate([np.load(f"{t}/set/{s['y']}") for s in ix["shards"]])
fx, fy = np.load(f"{t}/flat/x.npy"), np.load(f"{t}/flat/y.npy")
assert ix["samples"] == 600 and ix["sample"] == [1, 16, 16] and ix["class_names"] == ["bogus", "real"], ix
assert (x == fx).all() and (y == fy).all(), "stamps differ"
assert ix["class_counts"] == [int((fy == 0).sum()), int((fy == 1).sum())], ix["class_counts"]
m = fx.astype(np.float64)
assert abs(ix["mean"][0] - m.mean()) <= 1e-9 * abs(m.mean()) + 1e-9, (ix["mean"], m.mean())
assert abs(ix["std"][0] - m.std()) <= 1e-9 * m.std(), (ix["std"], m.std())
PYEOF
then ok "sharded stamps, labels, class counts, mean and std = the unsharded simulate's"; else bad "shards vs unsharded"; fi

cat > "$T/soft.cfg" <<'CFG'
[net]
input = 1,16,16
classes = 2

[dense]
name = fc
units = 2
init = zeros

[train]
optimizer = sgd
lr = 0.01
batch = 32
epochs = 2
seed = 3
CFG
expect_ok "train --data DIR (a sharded set)" "$DS" train "$T/soft.cfg" --data "$T/set" --val "shards:$T/set" --out "$T/run" --quiet
expect_ok "train again, same seed, 2 loader threads" "$DS" train "$T/soft.cfg" --data "$T/set" --out "$T/run2" --loader-threads 2 --shuffle-window 100
grep -q "data wait" "$T/out" && ok "the epoch line reports the loader's wait" || bad "no data wait on the epoch line"
expect_ok "train, a window of 100 samples, 1 thread" "$DS" train "$T/soft.cfg" --data "$T/set" --out "$T/run4" --shuffle-window 100 --quiet
cmp -s "$T/run2/last.safetensors" "$T/run4/last.safetensors" && ok "the streamed order does not depend on the loader threads" ||
  bad "1 and 2 loader threads trained differently"
expect_ok "train on the unsharded set" "$DS" train "$T/soft.cfg" --data "npy:$T/flat/x.npy,$T/flat/y.npy" --out "$T/run3" --quiet
expect_ok "eval on DIR/index.json" "$DS" eval "$T/run/best.safetensors" --data "$T/set/index.json"
grep -Eq "accuracy" "$T/out" && ok "eval reports accuracy on the sharded set" || bad "eval output"
expect_ok "train a third time, as the first" "$DS" train "$T/soft.cfg" --data "$T/set" --out "$T/run5" --quiet
if cmp -s "$T/run5/last.safetensors" "$T/run/last.safetensors" || $PY - "$T" >"$T/out" 2>&1 <<'PYEOF'
import sys, json, struct, numpy as np
def tensors(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32)
            for k, v in h.items() if k != "__metadata__" and v["dtype"] == "F32" and k.startswith("fc.")}
a, b = tensors(sys.argv[1] + "/run/last.safetensors"), tensors(sys.argv[1] + "/run5/last.safetensors")
assert a.keys() == b.keys() and a and all((a[k] == b[k]).all() for k in a), "weights differ"
PYEOF
then ok "same seed, same weights on a sharded set"; else bad "same seed, same weights"; fi

# --- resume: 1 epoch, then --resume to 2, equals 2 epochs at once (the loader's generator is in the checkpoint) ---
(cat "$T/soft.cfg"; echo "augment = dihedral") >"$T/soft-aug.cfg"
expect_ok "2 epochs streamed, augmented" "$DS" train "$T/soft-aug.cfg" --data "$T/set" --out "$T/e2" --quiet
expect_ok "1 epoch streamed" "$DS" train "$T/soft-aug.cfg" --data "$T/set" --out "$T/e1" --epochs 1 --quiet
expect_ok "--resume to 2 epochs" "$DS" train --resume "$T/e1/last.safetensors" --data "$T/set" --epochs 2 --quiet
r=$($PY "$(dirname "$0")/ckpt_diff.py" "$T/e1/last.safetensors" "$T/e2/last.safetensors" | tail -1)
case $r in *identical=1*) ok "resumed = uninterrupted, streamed ($r)" ;; *) bad "resumed differs ($r)" ;; esac

# --- 2 MPI ranks streaming the set: each reads its rows of one global order, and the weights are one
# process's with micro_batches = 2 (the same sums; docs/scaling.md), bit for bit (augmentation too) ---
if command -v mpirun >/dev/null && ! "$DS" --version | grep -q "^MPI: none"; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  export OMPI_MCA_btl=self,vader OMPI_MCA_btl_base_warn_component_unused=0
  (cat "$T/soft.cfg"; echo "augment = dihedral"; echo "allreduce = ordered") >"$T/soft-mpi.cfg"
  expect_ok "1 process, 2 micro-batches, streamed" "$DS" train "$T/soft-mpi.cfg" --data "$T/set" --out "$T/mb2" --micro-batches 2 --quiet
  expect_ok "mpirun -np 2, streamed" timeout 120 mpirun --oversubscribe -np 2 "$DS" train "$T/soft-mpi.cfg" --data "$T/set" --out "$T/np2" --quiet
  r=$($PY "$(dirname "$0")/ckpt_diff.py" "$T/mb2/last.safetensors" "$T/np2/last.safetensors" | tail -1)
  case $r in *identical=1*) ok "2 ranks streaming = 1 process ($r)" ;; *) bad "2 ranks streaming differ ($r)" ;; esac
else
  echo "skip MPI checks: no mpirun or a build without MPI"
fi

# --- bad sets ---
cp -r "$T/set" "$T/bad"
sed -i 's/"version": 1,/"version": 1, "colour": 3,/' "$T/bad/index.json"
expect_fail "unknown index key" "index.json: unknown key 'colour'" "$DS" train "$T/soft.cfg" --data "$T/bad" --out "$T/r" --quiet
cp "$T/set/index.json" "$T/bad/index.json"
rm "$T/bad/shard-000001.y.npy"
expect_fail "missing shard" "shard-000001.y.npy: cannot open" "$DS" eval "$T/run/best.safetensors" --data "shards:$T/bad"
cp "$T/set/shard-000001.y.npy" "$T/bad/"
head -c 5000 "$T/set/shard-000002.x.npy" > "$T/bad/shard-000002.x.npy"
expect_fail "truncated shard" "shard-000002.x.npy: truncated" "$DS" train "$T/soft.cfg" --data "$T/bad" --out "$T/r" --quiet
expect_fail "no index" "index.json" "$DS" eval "$T/run/best.safetensors" --data "shards:$T/flat"
DS_SHARDS_LOAD_LIMIT=1000 expect_fail "too large to load whole" "GB in memory.*stream" "$DS" eval "$T/run/best.safetensors" --data "shards:$T/set"
expect_fail "--shards with --cutouts" "--shards" "$DS" simulate --out "$T/x" --n 10 --shards 5 --cutouts
expect_fail "--shards 0" "--shards" "$DS" simulate --out "$T/x" --n 10 --shards 0
expect_fail "simulate --shards into a full folder" "not empty" "$DS" simulate --out "$T/set" --n 10 --size 16 --shards 5
expect_ok "simulate --shards --force replaces the set" "$DS" simulate --out "$T/set" --n 10 --size 16 --shards 5 --force
[ ! -e "$T/set/shard-000002.x.npy" ] && grep -q '"samples": 10' "$T/set/index.json" &&
  ok "--force removed the old shards" || bad "--force left old shards"

# the shuffle window is part of the order: a resume keeps it, and refuses another
expect_fail "--resume with another --shuffle-window" "shuffled within 100 samples" "$DS" train --resume "$T/run4/last.safetensors" --data "$T/set" --epochs 3 --shuffle-window 50 --quiet
meta_window=$($PY -c "
import json, sys
b = open('$T/run4/last.safetensors', 'rb').read(); n = int.from_bytes(b[:8], 'little')
print(json.loads(b[8:8 + n])['__metadata__'].get('stream_window'))")
[ "$meta_window" = 100 ] && ok "the checkpoint records the shuffle window (100)" || bad "stream_window metadata: $meta_window"
expect_fail "loader options with data in memory" "for streamed data" "$DS" train "$T/soft.cfg" --data "npy:$T/flat/x.npy,$T/flat/y.npy" --prefetch 2 --out "$T/x2" --quiet

finish shards
