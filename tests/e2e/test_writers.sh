#!/usr/bin/env bash
# End-to-end tests of how deepsky writes its outputs and ends: exit codes
# (2 usage, 1 failure, 130 SIGINT), standard output to a full device, the
# fault tests (kill -9 after every rename and before every fsync, SIGINT
# inside a write, a full disk, a read-only output folder, NaN data, a
# divergent learning rate), predict's per-file errors with valid JSON, and a
# --out too long for PATH_MAX.
# usage: test_writers.sh PATH/TO/deepsky
set -u
DS=${1:?usage: test_writers.sh DEEPSKY}
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

# expect_rc NAME RC REGEX CMD...: exit status RC exactly and REGEX in the output
expect_rc() {
  local name=$1 want=$2 re=$3; shift 3
  "$@" >"$T/out" 2>&1
  local rc=$?
  if [ $rc -ne "$want" ]; then bad "$name: exit $rc, expected $want"
  elif ! grep -Eq -- "$re" "$T/out"; then bad "$name: message lacks /$re/"
  else ok "$name: exit $rc: $(grep -E -m1 -- "$re" "$T/out" | cut -c1-120)"; fi
}
# no_temps NAME DIR: no temporary file (NAME.tmp.XXXXXX or NAME.tmp) left in DIR
no_temps() {
  local left
  left=$(find "$2" -name '*.tmp*' 2>/dev/null | head -3)
  if [ -z "$left" ]; then ok "$1: no temporary file left"; else bad "$1: left $left"; fi
}
# same_tensors A B: the two checkpoints hold the same tensors, byte for byte
same_tensors() {
  $PY - "$1" "$2" <<'PYEOF'
import json, struct, sys
def tensors(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); d = b[8 + n:]
    meta = h.pop("__metadata__", {})
    return {k: d[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in h.items()}, meta
a, ma = tensors(sys.argv[1]); b, mb = tensors(sys.argv[2])
bad = [k for k in a if a[k] != b.get(k)] + [k for k in b if k not in a]
state = lambda m: {k: v for k, v in m.items() if k not in ("provenance",)}
if bad or state(ma) != state(mb):
    print("differ:", bad[:5], {k: (ma.get(k), mb.get(k)) for k in set(ma) | set(mb) if ma.get(k) != mb.get(k)})
    sys.exit(1)
PYEOF
}

# --- data: 3 classes of 1x8x8 stamps (a bright row, column or diagonal) ---
$PY - "$T" "$(dirname "$0")" <<'PYEOF'
import sys, numpy as np
t = sys.argv[1]
sys.path.insert(0, sys.argv[2])
import stamps
rng = np.random.default_rng(1)
make = lambda n: stamps.make(rng, n, 0.6, 1)
x, y = make(600); np.save(f"{t}/x.npy", x); np.save(f"{t}/y.npy", y)
x, y = make(200); np.save(f"{t}/vx.npy", x); np.save(f"{t}/vy.npy", y)
x[7, 0, 2, 2] = np.nan; np.save(f"{t}/nanx.npy", x)
x, y = make(20000); np.save(f"{t}/bigx.npy", x); np.save(f"{t}/bigy.npy", y)
PYEOF
cat > "$T/tiny.cfg" <<'CFG'
[net]
input=1,8,8
classes=3
[conv]
filters=4
size=3
pad=1
activation=relu
[maxpool]
size=2
[dense]
units=8
activation=relu
[dropout]
p=0.2
[dense]
units=3
[train]
optimizer=adam
lr=0.003
batch=50
epochs=3
seed=3
CFG
DATA="npy:$T/x.npy,$T/y.npy"
VAL="npy:$T/vx.npy,$T/vy.npy"
TRAIN=("$DS" train "$T/tiny.cfg" --data "$DATA" --val "$VAL" --quiet)

# --- exit codes: 2 for usage errors, 1 for failures ---
expect_rc "unknown option" 2 "unknown option '--bogus'" "$DS" train "$T/tiny.cfg" --data "$DATA" --bogus
expect_rc "missing value (last option)" 2 "--out needs a value" "${TRAIN[@]}" --out
expect_rc "missing value (eval --data)" 2 "--data needs a value" "$DS" eval x.safetensors --data
expect_rc "bad value" 2 "--epochs needs an integer" "${TRAIN[@]}" --epochs many
expect_rc "bad value (float)" 2 "--lr needs a number" "${TRAIN[@]}" --lr -1
expect_rc "missing argument" 2 "usage" "$DS" eval
expect_rc "unknown command" 2 "unknown command" "$DS" trian
expect_rc "predict --format without a value" 2 "--format needs a value" "$DS" predict x.safetensors in.npy --format
expect_rc "repeated --format: each one counts" 2 "--format is given twice" \
  "$DS" predict x.safetensors in.npy --format bogus --format json
expect_rc "repeated --data" 2 "--data is given twice" "$DS" eval x.safetensors --data a --data b
expect_rc "a failure is 1" 1 "cannot open" "$DS" eval "$T/none.safetensors" --data "$DATA"
expect_rc "simulate --channels 2" 2 "--channels" "$DS" simulate --out "$T/s" --channels 2

# --- the uninterrupted reference run ---
expect_ok "reference run" "${TRAIN[@]}" --out "$T/ref"
bests=$(grep -v '^#' "$T/ref/metrics.csv" | grep -c .) # the "# key: value" provenance lines are not rows
[ "$bests" -eq 4 ] && ok "reference metrics.csv: header + 3 epochs" || bad "reference metrics.csv has $bests lines"

# --- --resume keeps the earlier rows of metrics.csv whole (lr, seconds) ---
expect_ok "2 epochs" "${TRAIN[@]}" --out "$T/res" --epochs 2
grep -v '^#' "$T/res/metrics.csv" | head -3 >"$T/rows12"
expect_ok "resume to 3" "$DS" train --resume "$T/res/last.safetensors" --data "$DATA" --val "$VAL" --epochs 3 --quiet
if [ "$(grep -v '^#' "$T/res/metrics.csv" | head -3)" = "$(cat "$T/rows12")" ] && ! grep -q ',,$' "$T/res/metrics.csv"; then
  ok "metrics.csv after --resume: epochs 1-2 kept with lr and seconds"
else bad "metrics.csv after --resume: $(cat "$T/res/metrics.csv")"; fi

# --- kill -9 at every write: after each rename, and before each fsync (a
# complete temporary file not yet renamed); then --resume must reach the
# uninterrupted run's best and last, and leave no temporary file ---
if cc -shared -fPIC -O2 -o "$T/shim.so" "$HERE/kill_shim.c" -ldl 2>"$T/cc.err"; then
  : >"$T/renames"
  DS_SHIM_LOG="$T/renames" LD_PRELOAD="$T/shim.so" "${TRAIN[@]}" --out "$T/count" >/dev/null 2>&1
  n_ren=$(grep -c . "$T/renames")
  grep -q best "$T/renames" && ok "the shim sees $n_ren renames" || bad "the shim saw no checkpoint rename"
  # epochs whose best was renamed just before a kill: the case that left best stale for good
  bad_kills=0
  for kind in AFTER_RENAME BEFORE_FSYNC; do
    for ((k = 1; k <= n_ren + 2; k++)); do
      d="$T/k_${kind}_$k"
      { env "DS_SHIM_$kind=$k" LD_PRELOAD="$T/shim.so" "${TRAIN[@]}" --out "$d" >"$T/out" 2>&1; } 2>/dev/null
      rc=$?
      if [ $rc -ne 137 ]; then
        [ $k -gt "$n_ren" ] && [ $rc -eq 0 ] && continue # past the last write: the run ended
        [ "$kind" = BEFORE_FSYNC ] && [ $rc -eq 0 ] && continue # fewer fsyncs than renames+2
        bad "kill $kind #$k: exit $rc, expected 137"; bad_kills=$((bad_kills + 1)); continue
      fi
      if [ -f "$d/last.safetensors" ]; then
        "$DS" train --resume "$d/last.safetensors" --data "$DATA" --val "$VAL" --quiet >"$T/out" 2>&1
      else
        "${TRAIN[@]}" --out "$d" >"$T/out" 2>&1
      fi
      rc=$?
      if [ $rc -ne 0 ]; then bad "kill $kind #$k: resume exit $rc"; bad_kills=$((bad_kills + 1)); continue; fi
      for f in best last; do
        if ! same_tensors "$T/ref/$f.safetensors" "$d/$f.safetensors" >"$T/out" 2>&1; then
          bad "kill $kind #$k: $f.safetensors differs from the uninterrupted run's"; bad_kills=$((bad_kills + 1))
        fi
      done
      cmp -s <(grep -v '^#' "$T/ref/metrics.csv" | cut -d, -f1-5) <(grep -v '^#' "$d/metrics.csv" | cut -d, -f1-5) ||
        { bad "kill $kind #$k: metrics.csv differs"; bad_kills=$((bad_kills + 1)); }
      left=$(find "$d" -name '*.tmp*' | head -1)
      [ -z "$left" ] || { bad "kill $kind #$k: $left left after the resume"; bad_kills=$((bad_kills + 1)); }
    done
  done
  [ $bad_kills -eq 0 ] && ok "kill -9 after each of $n_ren renames and before each fsync: --resume reaches the same best, last and metrics.csv; no temporary file left"

  # SIGINT inside a checkpoint write: the write completes, exit 130, resume hint
  d="$T/int_in_write"
  fs=$(grep -n best "$T/renames" | head -1 | cut -d: -f1)
  DS_SHIM_BEFORE_FSYNC=$((fs + 1)):2 LD_PRELOAD="$T/shim.so" "${TRAIN[@]}" --out "$d" >"$T/out" 2>&1
  rc=$?
  if [ $rc -eq 130 ] && grep -q "resume with" "$T/out" && "$DS" info "$d/last.safetensors" >/dev/null 2>&1; then
    ok "SIGINT during a checkpoint write: exit 130, the checkpoint whole, $(grep -m1 -o 'deepsky train --resume.*' "$T/out" | cut -c1-60)"
  else bad "SIGINT during a checkpoint write: exit $rc"; fi
  no_temps "SIGINT during a checkpoint write" "$d"

  # SIGINT inside a write of simulate / predict --output: the temporary file is removed, the old file stays
  expect_ok "simulate" "$DS" simulate --out "$T/sim" --n 300 --size 16
  cp "$T/sim/x.npy" "$T/x_before.npy"
  DS_SHIM_BEFORE_FSYNC=1:2 LD_PRELOAD="$T/shim.so" "$DS" simulate --out "$T/sim" --n 300 --size 16 --seed 9 --force >"$T/out" 2>&1
  rc=$?
  # --force removes simulate's old set first (a set of files cannot be renamed at once, so an
  # interrupted run leaves no mix of old and new files); the file being written is never half there
  if [ $rc -eq 130 ] && [ ! -e "$T/sim/x.npy" ] && [ ! -e "$T/sim/labels.csv" ]; then
    ok "SIGINT while simulate --force writes x.npy: exit 130, no half file and no old file beside new ones"
  else bad "SIGINT while simulate writes: exit $rc"; fi
  no_temps "SIGINT while simulate writes" "$T/sim"
  { DS_SHIM_BEFORE_FSYNC=1 LD_PRELOAD="$T/shim.so" "$DS" simulate --out "$T/sim" --n 300 --size 16 --seed 9 --force >/dev/null 2>&1; } 2>/dev/null
  [ -n "$(find "$T/sim" -name '*.tmp.*')" ] && ok "kill -9 in simulate's write leaves its temporary file" ||
    bad "kill -9 in simulate: no temporary file (the shim did not fire?)"
  expect_ok "simulate again" "$DS" simulate --out "$T/sim" --n 300 --size 16 --force
  no_temps "the next simulate removes the stale temporary file" "$T/sim"
else
  echo "skip kill tests: no C compiler ($(head -1 "$T/cc.err"))"
fi

# --- SIGINT to a running train: exit 130 and the --resume command ---
"$DS" train "$T/tiny.cfg" --data "npy:$T/bigx.npy,$T/bigy.npy" --epochs 100000 --out "$T/intr" --quiet >"$T/intr.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -f "$T/intr/last.safetensors" ] && break; sleep 0.1; done
sleep 0.3
kill -INT $pid
wait $pid
rc=$?
hint=$(grep -o 'deepsky train --resume [^ ]*/last.safetensors --data [^ ]*' "$T/intr.log")
if [ $rc -eq 130 ] && [ -n "$hint" ]; then ok "kill -INT train: exit 130; hint: ${hint:0:70}"
else bad "kill -INT train: exit $rc, hint '$hint'"; sed 's/^/     | /' "$T/intr.log" | tail -5; fi
ep=$(grep -o 'interrupted after epoch [0-9]*' "$T/intr.log" | grep -o '[0-9]*$')
expect_ok "the hinted --resume continues" "$DS" train --resume "$T/intr/last.safetensors" \
  --data "npy:$T/bigx.npy,$T/bigy.npy" --epochs $((ep + 1)) --quiet
no_temps "after SIGINT" "$T/intr"

# --- standard output to a full device: exit 1 with a message ---
if [ -c /dev/full ]; then
  expect_rc "eval > /dev/full" 1 "standard output.*No space" sh -c "'$DS' eval '$T/ref/best.safetensors' --data '$VAL' >/dev/full"
  expect_rc "eval --json > /dev/full" 1 "standard output" sh -c "'$DS' eval '$T/ref/best.safetensors' --data '$VAL' --json >/dev/full"
  expect_rc "predict --format json > /dev/full" 1 "standard output" \
    sh -c "'$DS' predict '$T/ref/best.safetensors' '$T/vx.npy' --format json >/dev/full"
  expect_rc "info > /dev/full" 1 "standard output" sh -c "'$DS' info '$T/ref/best.safetensors' >/dev/full"
  expect_rc "--help > /dev/full" 1 "standard output" sh -c "'$DS' --help >/dev/full"
  expect_rc "predict --format npy --output /dev/full" 1 "/dev/full.*No space" \
    "$DS" predict "$T/ref/best.safetensors" "$T/vx.npy" --format npy --output /dev/full
  [ -c /dev/full ] && ok "/dev/full is still a character device" || bad "/dev/full was removed"
  expect_ok "predict --format npy --output /dev/null" "$DS" predict "$T/ref/best.safetensors" "$T/vx.npy" \
    --format npy --output /dev/null
  [ -c /dev/null ] && ok "/dev/null is still a character device" || bad "/dev/null was replaced"
fi

# --- a full disk and a read-only output folder (root ignores permissions:
# a tiny and a read-only tmpfs, where mount is allowed) ---
M="$T/mnt"
mkdir -p "$M"
if mount -t tmpfs -o size=64k tmpfs "$M" 2>/dev/null; then
  expect_rc "train on a full disk" 1 "No space left on device" "${TRAIN[@]}" --out "$M/run"
  no_temps "full disk" "$M"
  for f in "$M"/run/*.safetensors; do
    [ -f "$f" ] || continue
    "$DS" info "$f" >/dev/null 2>&1 && ok "full disk: $(basename "$f") is whole" || bad "full disk: $f is damaged"
  done
  rm -rf "$M/run"
  "$DS" predict "$T/ref/best.safetensors" "$T/vx.npy" --format json --output "$M/p.json" >/dev/null 2>&1
  cp "$M/p.json" "$T/p_before.json"
  head -c 60000 /dev/zero >"$M/filler" 2>/dev/null
  expect_rc "predict --output on a full disk" 1 "No space" "$DS" predict "$T/ref/best.safetensors" "$T/x.npy" \
    --format json --output "$M/p.json"
  cmp -s "$M/p.json" "$T/p_before.json" && ok "full disk: the previous p.json is intact" || bad "full disk: p.json changed"
  no_temps "predict on a full disk" "$M"
  umount "$M"
  # read-only: a finished run, then the folder remounted read-only
  mount -t tmpfs -o size=4m tmpfs "$M"
  "${TRAIN[@]}" --out "$M/run" --epochs 2 >/dev/null 2>&1
  cp "$M/run/last.safetensors" "$T/ro_last"
  mount -o remount,ro "$M"
  expect_rc "resume into a read-only folder" 1 "Read-only file system" \
    "$DS" train --resume "$M/run/last.safetensors" --data "$DATA" --val "$VAL" --epochs 3 --quiet
  cmp -s "$M/run/last.safetensors" "$T/ro_last" && ok "read-only: last.safetensors untouched" || bad "read-only: changed"
  expect_rc "train into a new folder on a read-only disk" 1 "cannot create folder.*Read-only" "${TRAIN[@]}" --out "$M/new"
  expect_rc "simulate on a read-only disk" 1 "Read-only" "$DS" simulate --out "$M/run" --n 50 --size 16 --force
  umount "$M"
else
  echo "skip full-disk and read-only tests: mount -t tmpfs not allowed here"
fi

# --- NaN data and a divergent learning rate ---
expect_rc "NaN training data" 1 "sample 7.*NaN|NaN.*sample 7" "$DS" train "$T/tiny.cfg" --data "npy:$T/nanx.npy,$T/vy.npy" --out "$T/nan"
[ ! -e "$T/nan/last.safetensors" ] && ok "NaN training data: no checkpoint written" || bad "NaN data: a checkpoint was written"
expect_rc "NaN data to predict" 1 "NaN" "$DS" predict "$T/ref/best.safetensors" "$T/nanx.npy"
sed 's/optimizer=adam/optimizer=sgd/' "$T/tiny.cfg" >"$T/sgd.cfg"
expect_ok "2 good epochs (SGD)" "$DS" train "$T/sgd.cfg" --data "$DATA" --epochs 2 --out "$T/div" --quiet
cp "$T/div/last.safetensors" "$T/div_last"
expect_rc "divergent learning rate (SGD, --lr 1e6)" 1 "loss is (NaN|infinite); stopping" \
  "$DS" train --resume "$T/div/last.safetensors" --data "$DATA" --epochs 4 --lr 1e6 --quiet
cmp -s "$T/div/last.safetensors" "$T/div_last" && ok "divergence: last.safetensors is the last good one" ||
  bad "divergence: last.safetensors changed"
no_temps "divergence" "$T/div"

# --- predict on a folder: a bad file is reported, the rest scored, JSON valid ---
expect_ok "simulate cutouts" "$DS" simulate --out "$T/cut" --n 40 --size 8 --cutouts
"${TRAIN[@]}" --out "$T/cutrun" --epochs 1 >/dev/null 2>&1
cat > "$T/cut.cfg" <<'CFG'
[net]
input=1,8,8
classes=2
[dense]
units=2
[train]
epochs=1
batch=10
CFG
expect_ok "a model for the cutouts" "$DS" train "$T/cut.cfg" --data "fits:$T/cut/cutouts" --out "$T/cutm" --quiet
first=$(ls "$T/cut/cutouts/real" | head -1)
head -c 2880 "$T/cut/cutouts/real/$first" >"$T/cut/cutouts/real/0000bad.fits"
n_files=$(find "$T/cut/cutouts" -name '*.fits' | wc -l)
expect_rc "predict a folder with a bad file" 1 "0000bad.fits" "$DS" predict "$T/cutm/best.safetensors" "$T/cut/cutouts" \
  --format json --output "$T/pred.json"
if $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); e=[r for r in d if "error" in r]; assert len(d)==int(sys.argv[2]) and len(e)==1 and "0000bad" in e[0]["source"], (len(d), e)' \
  "$T/pred.json" "$n_files" 2>"$T/out"; then ok "predict JSON: valid, $((n_files - 1)) scored and 1 error record"
else bad "predict JSON: $(tail -1 "$T/out")"; fi
"$DS" predict "$T/cutm/best.safetensors" "$T/cut/cutouts" --format json --strict >"$T/strict.json" 2>"$T/out"
rc=$?
if [ $rc -eq 1 ] && $PY -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/strict.json" && grep -q "strict" "$T/out"; then
  ok "predict --strict: exit 1 at the first bad file, JSON on stdout still valid"
else bad "predict --strict: exit $rc"; fi
cp "$T/pred.json" "$T/pred_before.json"
expect_rc "predict --strict --output" 1 "strict" "$DS" predict "$T/cutm/best.safetensors" "$T/cut/cutouts" \
  --format json --strict --output "$T/pred.json"
cmp -s "$T/pred.json" "$T/pred_before.json" && ok "predict --strict: --output not replaced by a partial result" ||
  bad "predict --strict: --output changed"
rm "$T/cut/cutouts/real/0000bad.fits"
expect_ok "predict a good folder: exit 0" "$DS" predict "$T/cutm/best.safetensors" "$T/cut/cutouts" --format json
mkdir -p "$T/nofits/a"
expect_rc "predict a folder without FITS files" 1 "nofits" "$DS" predict "$T/cutm/best.safetensors" "$T/nofits"

# --- a --out longer than PATH_MAX allows is refused, not cut ---
# (folders of 200 characters up to 4,080 in all: the old code cut it at 4,063 and wrote there)
long="$T"
while [ ${#long} -lt 3880 ]; do long="$long/$(printf 'd%.0s' $(seq 200))"; done
long="$long/$(printf 'e%.0s' $(seq $((4079 - ${#long}))))"
expect_rc "--out of ${#long} characters" 2 "--out: the folder name has" "${TRAIN[@]}" --out "$long"
expect_rc "simulate --out of ${#long} characters" 2 "--out: the folder name has" "$DS" simulate --out "$long"
[ -z "$(find "$T" -name 'eeee*')" ] && ok "nothing written under a cut name" || bad "a cut --out was written"
expect_rc "pretrain --out too long" 2 "--out: the folder name has" "$DS" pretrain "$T/tiny.cfg" --data "$DATA" --out "$long"

finish writers
