#!/usr/bin/env bash
# End-to-end tests of the reports people read: the progress line (fits the
# terminal, silent off one), eval --report (log-scale ROC, recall against
# S/N, the worst mistakes listed as the grid shows them, the provenance block).
# usage: test_report.sh PATH/TO/deepsky
set -u
DS=${1:?usage: test_report.sh DEEPSKY}
. "$(dirname "$0")/lib.sh"

# --- progress: a 40-column terminal, faked (stderr is a file here) ---
DS_PROGRESS_FORCE=1 COLUMNS=40 "$DS" simulate --out "$T/sim" --n 6000 --size 20 --seed 3 >"$T/so" 2>"$T/se"
rc=$?
[ $rc -eq 0 ] && ok "simulate with a forced progress line" || bad "simulate exit $rc"
$PY - "$T/se" 40 <<'PYEOF' && ok "every progress frame fits in 39 of 40 columns, ends at 100 % on its own line" || bad "progress frames: $(head -c 400 "$T/se" | tr '\r\033' '|^')"
import sys, re
raw = open(sys.argv[1], "rb").read().decode()
width = int(sys.argv[2])
frames = [re.sub(r"\x1b\[K", "", f) for f in re.split(r"[\r\n]", raw)]
frames = [f for f in frames if f]
assert frames, "no frames"
assert max(len(f) for f in frames) <= width - 1, max(frames, key=len)
assert all(f.startswith("simulating") for f in frames), frames[:3]
assert "100%" in frames[-1], frames[-1]
assert raw.endswith("\n")
PYEOF
DS_PROGRESS_FORCE=1 COLUMNS=120 "$DS" simulate --out "$T/sim" --n 6000 --size 20 --seed 3 --force >/dev/null 2>"$T/se2"
grep -q "stamps/s" "$T/se2" && grep -q "ETA" "$T/se2" && ok "a wide terminal shows the rate and the ETA" || bad "no rate/ETA in a 120-column line"
n=$(tr '\r' '\n' <"$T/se2" | grep -c simulating)
[ "$n" -ge 2 ] && ok "the line was redrawn ($n frames)" || bad "$n frames"
"$DS" simulate --out "$T/sim" --n 500 --size 20 --seed 3 --force >/dev/null 2>"$T/se3"
[ ! -s "$T/se3" ] && ok "no progress line when stderr is not a terminal" || bad "stderr not empty: $(head -c 200 "$T/se3")"

# --- eval --report ---
"$DS" simulate --out "$T/tr" --n 2000 --size 20 --seed 5 >/dev/null 2>&1
"$DS" simulate --out "$T/te" --n 1500 --size 20 --seed 6 >/dev/null 2>&1
printf '[net]\ninput=1,20,20\nclasses=2\n[instancenorm]\n[dense]\nunits=2\n[train]\nepochs=2\nbatch=50\n' >"$T/m.cfg"
expect_ok "train a small real/bogus model" "$DS" train "$T/m.cfg" --data "npy:$T/tr/x.npy,$T/tr/y.csv" --out "$T/run" --quiet
expect_ok "eval --report" "$DS" eval "$T/run/best.safetensors" --data "npy:$T/te/x.npy,$T/te/y.csv" --meta "$T/te/labels.csv" --report "$T/rep"
cp "$T/out" "$T/evalout"
for f in report.html roc.png recall_snr.png mistakes.png confusion.png reliability.png; do
  [ -s "$T/rep/$f" ] && ok "eval --report wrote $f" || bad "no $f"
done
"$DS" predict "$T/run/best.safetensors" --data "npy:$T/te/x.npy,$T/te/y.csv" --format npy --output "$T/p.npy" >/dev/null 2>&1
$PY - "$T/evalout" "$T/te/labels.csv" "$T/p.npy" <<'PYEOF' && ok "the worst-mistakes list: real mistakes, most confident first, kinds and scores as the data says" || bad "worst-mistakes list"
import sys, csv, numpy as np
lines = open(sys.argv[1]).read().split("\n")
i = next(k for k, l in enumerate(lines) if l.startswith("worst mistakes ("))
rows = []
for l in lines[i + 2:]:
    f = l.split()
    if len(f) != 6 or not f[0].isdigit(): break
    rows.append(f)
assert 1 <= len(rows) <= 16, len(rows)
assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1))
meta = list(csv.DictReader(open(sys.argv[2])))
p = np.load(sys.argv[3])
wrong = []
for rank, sample, true, pred, kind, score in rows:
    s = int(sample); lab = int(meta[s]["label"])
    assert true == ("real" if lab else "bogus") and pred != true, (sample, true, pred)
    assert kind == meta[s]["kind"], (kind, meta[s]["kind"])
    assert abs(float(score) - p[s, 1]) < 1e-3, (score, p[s, 1])
    assert int(np.argmax(p[s])) != lab
    wrong.append(1 - p[s, lab])
assert all(a >= b - 1e-6 for a, b in zip(wrong, wrong[1:])), wrong
PYEOF
h="$T/rep/report.html"
grep -q "<h2>Provenance</h2>" "$h" && grep -q "<th>command</th><td><code>deepsky eval $T/run/best.safetensors" "$h" &&
  grep -q "<th>version</th>" "$h" && grep -Eq "<th>date</th><td><code>20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z" "$h" &&
  ok "report.html has the provenance block (command, version, UTC date)" || bad "provenance block"
fnv=$($PY -c "
import sys
h = 0xcbf29ce484222325
for b in open(sys.argv[1], 'rb').read(): h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
print('%016x' % h)" "$T/run/best.safetensors")
grep -q "fnv1a64 $fnv" "$h" && ok "the provenance names the checkpoint by its FNV-1a hash" || bad "checkpoint hash $fnv not in the report"
grep -q "data_provenance" "$h" && grep -q "&quot;seed&quot;: 6" "$h" && ok "the data's provenance (simulator seed 6) is in the report" || bad "data provenance"
grep -q "mistakes.png" "$h" && grep -q "roc.png" "$h" && ok "the report shows the ROC curve and the mistakes grid" || bad "report figures"
expect_fail "eval --report without a value" "--report" "$DS" eval "$T/run/best.safetensors" --data "npy:$T/te/x.npy,$T/te/y.csv" --report
: >"$T/afile"
expect_fail "eval --report into a file" "afile" "$DS" eval "$T/run/best.safetensors" --data "npy:$T/te/x.npy,$T/te/y.csv" --report "$T/afile/sub"
finish report
