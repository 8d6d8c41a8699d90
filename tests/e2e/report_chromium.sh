#!/usr/bin/env bash
# Opens a complete training report (written by test_report) in headless
# Chromium and checks that the page renders with its plots: the DOM has the
# three images and the metrics table, and the screenshot shows the plots'
# colours. A copy of the page whose PNGs are gone must fail that check.
# usage: report_chromium.sh PATH/TO/test_report (or its build directory)
# Exits 77 (skipped) when Chromium is not installed.
set -u
TR=${1:?usage: report_chromium.sh TEST_REPORT|BUILD_DIR}
[ -d "$TR" ] && TR=$TR/test_report
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$CHROMIUM" ]; then
  echo "report_chromium: chromium not installed, skipped"
  exit 77
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() {
  fail=$((fail + 1))
  echo "FAIL $1"
  [ -f "$T/log" ] && sed 's/^/     | /' "$T/log" | tail -15
}

# chrome MODE PAGE OUT: --dump-dom or --screenshot of file://PAGE into OUT
chrome() {
  local flags=(--headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars
               --user-data-dir="$T/profile" --window-size=1200,3000)
  if [ "$1" = dom ]; then
    timeout 120 "$CHROMIUM" "${flags[@]}" --dump-dom "file://$2" >"$3" 2>"$T/log"
  else
    timeout 120 "$CHROMIUM" "${flags[@]}" --screenshot="$3" "file://$2" >"$T/log" 2>&1
  fi
}

R=$T/run
mkdir -p "$R"
if DS_REPORT_DIR=$R "$TR" >"$T/log" 2>&1 && [ -f "$R/report.html" ] && [ -f "$R/loss.png" ] &&
   [ -f "$R/accuracy.png" ] && [ -f "$R/confusion.png" ] && [ -f "$R/metrics.csv" ]; then
  ok "test_report wrote a report: $(cd "$R" && echo *)"
else
  bad "test_report did not write a complete report into $R"
fi

if chrome dom "$R/report.html" "$T/dom.html" && [ -s "$T/dom.html" ]; then
  imgs=$(grep -o '<img [^>]*src="[a-z]*\.png"' "$T/dom.html" | wc -l)
  rows=$(grep -o '<tr>' "$T/dom.html" | wc -l)
  if [ "$imgs" -eq 3 ] && [ "$rows" -ge 16 ] &&
     grep -q '&lt;demo&gt; &amp; co</h1>' "$T/dom.html"; then
    ok "DOM: $imgs images, $rows table rows, escaped title"
  else
    bad "DOM: $imgs images (want 3), $rows table rows (want 16), escaped title?"
  fi
else
  bad "chromium --dump-dom failed (exit $?)"
fi

if chrome shot "$R/report.html" "$T/shot.png" && [ -s "$T/shot.png" ]; then
  ok "screenshot taken ($(stat -c %s "$T/shot.png") bytes)"
  if "$TR" --check-screenshot "$T/shot.png" >"$T/log" 2>&1; then ok "$(head -1 "$T/log")"
  else bad "the screenshot does not show the plots"; fi
else
  bad "chromium --screenshot failed"
fi

# negative control: the same page without its PNGs must fail the check
mkdir -p "$T/bare"
cp "$R/report.html" "$R/metrics.csv" "$T/bare/" 2>/dev/null
if chrome shot "$T/bare/report.html" "$T/bare.png" && [ -s "$T/bare.png" ] &&
   ! "$TR" --check-screenshot "$T/bare.png" >"$T/log" 2>&1; then
  ok "without its PNGs the page fails the check: $(grep -m1 "^screenshot" "$T/log")"
else
  bad "the screenshot check does not notice missing images"
fi

echo "report_chromium: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
