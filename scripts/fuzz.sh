#!/usr/bin/env bash
# The libFuzzer harnesses of tests/fuzz (docs/reliability.md), built with
# clang under ASan + UBSan in build-fuzz/.
#
#   scripts/fuzz.sh [SECONDS]          smoke: every harness for SECONDS (30)
#   scripts/fuzz.sh --campaign [FILE]  every harness to 1,000,000 runs or one
#                                      hour; a markdown table to FILE or stdout
#
# Each harness first replays tests/fuzz/regress/<harness>/ (every input
# found so far must now pass), then fuzzes from its seeds
# (tests/fuzz/corpus/<harness>/, read only) and a working corpus in
# build-fuzz/corpus/<harness>/ that grows from run to run. A harness fails
# on any crash, sanitizer report, leak, timeout (> 10 s for one input) or
# memory use over 2 GB (-rss_limit_mb, -malloc_limit_mb); the input is
# kept in build-fuzz/artifacts/<harness>/. Environment: FUZZ_JOBS harnesses
# at a time (1), FUZZ_ONLY="fuzz_npy fuzz_csv" to run some, FUZZ_TABLE=FILE
# to write the markdown table after a smoke too, FUZZ_SEED=N the smoke's
# random seed (1; 0 draws one).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=30 campaign=0 table=
if [ "${1:-}" = "--campaign" ]; then
  campaign=1 table=${2:-}
elif [ -n "${1:-}" ]; then
  [[ $1 =~ ^[0-9]+$ ]] || { echo "usage: scripts/fuzz.sh [SECONDS] | --campaign [FILE]" >&2; exit 2; }
  secs=$1
fi
jobs=${FUZZ_JOBS:-1}
build=$root/build-fuzz

command -v clang >/dev/null || { echo "fuzz: clang is missing (scripts/deps.sh --test installs it)" >&2; exit 1; }
mkdir -p "$build"
if ! { cmake -S tests/fuzz -B "$build" -DCMAKE_C_COMPILER=clang >"$build/cmake.log" 2>&1 &&
       cmake --build "$build" -j"$(nproc)" >"$build/build.log" 2>&1; }; then
  tail -40 "$build/cmake.log" "$build/build.log"
  echo "fuzz: build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

# the longest input worth trying, per format
max_len() {
  case $1 in
    fuzz_spec) echo 256 ;;
    fuzz_fits | fuzz_checkpoint) echo 16384 ;;
    fuzz_model | fuzz_image | fuzz_json) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

limits=(-rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export DS_NUM_THREADS=1
# the harnesses' input files: a folder of this run's own, removed at the end
# (a harness that crashed could not remove its files itself)
shm=/dev/shm
[ -w "$shm" ] || shm=${TMPDIR:-/tmp}
export TMPDIR=$(mktemp -d "$shm/ds-fuzz.XXXXXX")
trap 'rm -rf "$TMPDIR"' EXIT

# run_one NAME: replay, then fuzz; writes $build/logs/NAME.{log,result}
run_one() {
  local h=$1 bin=$build/$1 log=$build/logs/$1.log res=$build/logs/$1.result
  local art=$build/artifacts/$1/ work=$build/corpus/$1 seeds=$root/tests/fuzz/corpus/$1
  local reg=$root/tests/fuzz/regress/$1 dict=$root/tests/fuzz/$1.dict status=ok note=
  mkdir -p "$art" "$work" "$seeds"
  : >"$log"
  local inputs=()
  [ -d "$reg" ] && mapfile -t inputs < <(find "$reg" -type f ! -name '*.md' | sort)
  if [ ${#inputs[@]} -gt 0 ]; then
    if ! "$bin" "${limits[@]}" -artifact_prefix="$art" "${inputs[@]}" >>"$log" 2>&1; then
      status=fail note="a regress/ input fails"
    fi
  fi
  # the smoke starts from a fixed random seed (FUZZ_SEED, default 1), so every
  # CI run retries the same mutations first and a red CI means a regression,
  # not a new find by chance; the campaign draws a fresh seed
  local run=(-max_total_time="$secs" -seed="${FUZZ_SEED:-1}")
  [ $campaign = 1 ] && run=(-runs=1000000 -max_total_time=3600)
  local dargs=()
  [ -f "$dict" ] && dargs=(-dict="$dict")
  local t0=$(date +%s)
  if [ $status = ok ]; then
    "$bin" "$work" "$seeds" "${run[@]}" "${limits[@]}" -max_len="$(max_len "$h")" "${dargs[@]}" \
      -artifact_prefix="$art" -print_final_stats=1 -close_fd_mask=1 >>"$log" 2>&1 || status=fail
  fi
  local t1=$(date +%s)
  local execs cov ft finding
  execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$')
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
  finding=$(grep -oE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-zA-Z-]+|runtime error: .*|ALARM: working on the last Unit for [0-9]+ seconds|out-of-memory \(malloc\([0-9]+\)\)' "$log" | head -1)
  [ $status = fail ] && [ -z "$note" ] && note=${finding:-"exit status non-zero"}
  [ $status = fail ] && [ -n "$finding" ] && [ "$note" != "$finding" ] && note="$note: $finding"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$h" "$status" "${execs:-0}" "$((t1 - t0))" "${cov:-?}" "${ft:-?}" "$note" >"$res"
}

mkdir -p "$build/logs"
harnesses=()
for b in "$build"/fuzz_*; do
  [ -x "$b" ] && [ -f "$b" ] || continue
  n=$(basename "$b")
  if [ -n "${FUZZ_ONLY:-}" ] && [[ " $FUZZ_ONLY " != *" $n "* ]]; then continue; fi
  harnesses+=("$n")
done
[ ${#harnesses[@]} -gt 0 ] || { echo "fuzz: no harness built"; echo "0 passed, 1 failed"; exit 1; }

running=0
for h in "${harnesses[@]}"; do
  rm -f "$build/logs/$h.result"
  run_one "$h" &
  running=$((running + 1))
  if [ $running -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait

pass=0 fail=0 rows=
for h in "${harnesses[@]}"; do
  r=$build/logs/$h.result
  [ -f "$r" ] || printf '%s\tfail\t0\t0\t?\t?\tno result\n' "$h" >"$r"
  IFS=$'\t' read -r name status execs t cov ft note <"$r"
  if [ "$status" = ok ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
  printf '%-18s %-4s %10s execs %5ss  cov %-6s ft %-7s %s\n' "$name" "$status" "$execs" "$t" "$cov" "$ft" \
    "${note:+$note (log: build-fuzz/logs/$name.log, input: build-fuzz/artifacts/$name/)}"
  rows+="| $name | $execs | $t | $cov / $ft | ${note:-none} |"$'\n'
done
table=${table:-${FUZZ_TABLE:-}}
if [ $campaign = 1 ] || [ -n "$table" ]; then
  md="| harness | executions | seconds | coverage (cov / ft) | findings |"$'\n'"|---|---:|---:|---:|---|"$'\n'"$rows"
  if [ -n "$table" ]; then printf '%s' "$md" >"$table"; else printf '\n%s' "$md"; fi
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
