#!/usr/bin/env bash
# The whole test suite: installs missing packages, then builds and runs every
# test four times — a Release build for this machine and one for AVX2
# without AVX-512 (unit, gradient checks, PyTorch parity, CLI), and two
# AddressSanitizer + UndefinedBehaviorSanitizer builds, Debug and optimised
# for this machine (unit tests and op parity) — then the fuzz smoke (every
# libFuzzer harness of tests/fuzz for FUZZ_SECONDS, 30, two at a time;
# each harness counts as one test) and ends with one summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test || exit 1
jobs=$(nproc)
total_pass=0 total_fail=0 status=0

run_suite() { # name, build dir, cmake args...
  local name=$1 dir=$2
  shift 2
  echo "== $name =="
  if ! cmake -S . -B "$dir" "$@" >"$dir/cmake.log" 2>&1 || ! cmake --build "$dir" -j"$jobs" >"$dir/build.log" 2>&1; then
    cat "$dir/cmake.log" "$dir/build.log" 2>/dev/null | tail -40
    echo "$name: build failed"
    total_fail=$((total_fail + 1)) status=1
    return
  fi
  (cd "$dir" && ctest --output-on-failure -j"$jobs") | tee "$dir/ctest.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  local line
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of" "$dir/ctest.log" | tail -1)
  local failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  local out_of=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
  local skipped=$(grep -c "\*\*\*Skipped" "$dir/ctest.log")
  [ -n "$line" ] || { failed=1 out_of=1 skipped=0 status=1; }
  total_pass=$((total_pass + out_of - failed - skipped))
  total_fail=$((total_fail + failed))
}

mkdir -p build build-avx2 build-asan build-asan-native
run_suite "release build (with MPI)" build -DCMAKE_BUILD_TYPE=Release -DDS_MPI=ON
# the AVX2 build is also the build without MPI (DS_MPI=OFF: as on a machine
# without Open MPI; the demo runs in its e2e_cli, and e2e_mpi checks that
# mpirun -np 2 gets a clear error); the Release build has MPI (DS_MPI=ON)
run_suite "release build for AVX2 without AVX-512 (x86-64-v3), without MPI" build-avx2 -DCMAKE_BUILD_TYPE=Release -DDS_MARCH=x86-64-v3 -DDS_MPI=OFF
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_suite "sanitizer build (ASan + UBSan)" build-asan -DCMAKE_BUILD_TYPE=Debug -DDS_SANITIZE=ON -DDS_MPI=OFF
# the same on this machine's vector kernels (AVX-512 where it has them)
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_suite "sanitizer build, optimised for this machine" build-asan-native -DCMAKE_BUILD_TYPE=Release -DDS_SANITIZE=ON -DDS_MPI=OFF
# the fuzz smoke: every parser under libFuzzer with ASan + UBSan (scripts/fuzz.sh)
echo "== fuzz smoke (${FUZZ_SECONDS:-30} s per harness) =="
FUZZ_JOBS=${FUZZ_JOBS:-2} bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}" | { mkdir -p build-fuzz; tee build-fuzz/smoke.log; }
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
line=$(grep -E "^[0-9]+ passed, [0-9]+ failed$" build-fuzz/smoke.log | tail -1)
if [ -n "$line" ]; then
  total_pass=$((total_pass + $(cut -d' ' -f1 <<<"$line")))
  total_fail=$((total_fail + $(cut -d' ' -f3 <<<"$line")))
else
  total_fail=$((total_fail + 1)) status=1
fi
echo "$total_pass passed, $total_fail failed"
exit $status
