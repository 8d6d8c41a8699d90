#!/usr/bin/env bash
# Training on a data set larger than memory (issue 16, docs/data.md):
# simulate an 8.7 GB sharded set of 360,000 45x45x3 stamps, then stream one
# epoch through it twice with the same seed, recording time, the loader's
# wait, the peak resident set and whether the final weights are equal.
#   experiments/stream/run.sh [BUILD]   (BUILD: the build folder, default build)
# Writes runs/stream/ (git-ignored): data/, *.log and *.time (GNU time -v).
set -eu
cd "$(dirname "$0")/../.."
B=${1:-build}
R=runs/stream
N=${STREAM_N:-360000}
mkdir -p "$R"
need=$((N * 3 * 45 * 45 * 4 / 1000000000 + 2))
free=$(df -BG --output=avail "$R" | tail -1 | tr -dc 0-9)
[ "$free" -gt "$need" ] || { echo "need ${need} GB free under $R, have ${free} GB" >&2; exit 1; }
tv() { /usr/bin/time -v "$@"; }
rss() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }
wall() { sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$1"; }

if [ ! -s "$R/data/index.json" ]; then
  tv nice "$B/deepsky" simulate --out "$R/data" --n "$N" --channels 3 --shards 4096 --seed 16 --force \
    >"$R/sim.log" 2>"$R/sim.time"
fi
echo "set: $(du -sb "$R/data" | cut -f1) bytes on disk, $(grep -c '"x"' "$R/data/index.json") shards"
[ -f "$R/sim.time" ] && echo "simulate: $(wall "$R/sim.time") wall, peak RSS $(rss "$R/sim.time") kB"

# the library alone: ds_loader_new_shards + ds_train_epoch
cc -O2 -Iinclude experiments/stream/stream_epoch.c -L"$B" -ldeepsky -Wl,-rpath,"$PWD/$B" -lm -o "$B/stream_epoch"
for k in 1 2; do
  tv nice "$B/stream_epoch" "$R/data" 64 16 2 >"$R/epoch$k.log" 2>"$R/epoch$k.time"
  echo "stream_epoch run $k: $(grep -E '^epoch' "$R/epoch$k.log"); $(grep waited "$R/epoch$k.log");" \
       "peak RSS $(rss "$R/epoch$k.time") kB; $(grep hash "$R/epoch$k.log")"
done
[ "$(grep hash "$R/epoch1.log")" = "$(grep hash "$R/epoch2.log")" ] && echo "stream_epoch: weights equal" ||
  echo "stream_epoch: WEIGHTS DIFFER"

# the CLI: deepsky train streams a sharded --data
if [ -z "${STREAM_SKIP_TRAIN:-}" ]; then
  for k in 1 2; do
    rm -rf "$R/train$k"
    tv nice "$B/deepsky" train experiments/stream/softmax-stamps.cfg --data "$R/data" --out "$R/train$k" --loader-threads 2 \
      >"$R/train$k.log" 2>"$R/train$k.time" || { echo "train run $k failed: $(tail -3 "$R/train$k.log")"; exit 1; }
    echo "deepsky train run $k: $(wall "$R/train$k.time") wall, peak RSS $(rss "$R/train$k.time") kB"
  done
  /usr/bin/python3 - "$R" <<'PY'
import sys, json, struct, numpy as np
def tensors(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
a, b = (tensors(f"{sys.argv[1]}/train{k}/last.safetensors") for k in (1, 2))
print("deepsky train: weights", "equal" if a == b else "DIFFER", f"({len(a)} tensors)")
PY
fi

# a convolutional network (models/realbogus.cfg on triplets) on 20,000 stamps read from disk (cold
# page cache): its steps are slower than the loader, so the data wait should be ~0
if [ -z "${STREAM_SKIP_CNN:-}" ]; then
  [ -s "$R/small/index.json" ] ||
    "$B/deepsky" simulate --out "$R/small" --n 20000 --channels 3 --shards 4096 --seed 17 --force >/dev/null
  /usr/bin/python3 experiments/stream/evict.py "$R/small"
  rm -rf "$R/cnn"
  tv "$B/deepsky" train experiments/stream/realbogus3.cfg --data "$R/small" --out "$R/cnn" >"$R/cnn.log" 2>"$R/cnn.time"
  echo "CNN: $(grep -E '^epoch' "$R/cnn.log"); peak RSS $(rss "$R/cnn.time") kB"
fi
