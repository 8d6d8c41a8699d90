# lib.sh — what the end-to-end test scripts share: a scratch folder $T,
# counters and the expect_ok/expect_fail checks. Source it after setting DS.
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -f "$T/out" ] && sed 's/^/     | /' "$T/out" | tail -15; }

# expect_ok NAME CMD...: exit 0
expect_ok() {
  local name=$1; shift
  if "$@" >"$T/out" 2>&1; then ok "$name"; else bad "$name (exit $?)"; fi
}
# expect_fail NAME REGEX CMD...: non-zero exit (not a crash) and REGEX in the output
expect_fail() {
  local name=$1 re=$2; shift 2
  "$@" >"$T/out" 2>&1
  local rc=$?
  if [ $rc -eq 0 ]; then bad "$name: exit 0, expected failure"
  elif [ $rc -ge 128 ]; then bad "$name: crashed (signal $((rc - 128)))"
  elif ! grep -Eq -- "$re" "$T/out"; then bad "$name: message lacks /$re/"
  else ok "$name: $(grep -E -m1 -- "$re" "$T/out" | cut -c1-150)"; fi
}

# finish: print the summary line and exit non-zero if anything failed
finish() { echo "${1:-e2e}: $pass passed, $fail failed"; [ $fail -eq 0 ]; }
