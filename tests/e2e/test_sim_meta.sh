#!/usr/bin/env bash
# End-to-end tests of simulate's alert metadata (meta.csv; issue 13 item 7):
# the same seed gives the same bytes, another seed others; one row per stamp
# in labels.csv's order under a header that starts index,band; no NaN; it is
# in provenance.json, --force replaces it, cutout headers carry it; the
# metadata-only MLP (models/alerts-meta.cfg) trains and evaluates on it.
# usage: test_sim_meta.sh PATH/TO/deepsky
set -u
DS=${1:?usage: test_sim_meta.sh DEEPSKY}
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

expect_ok "simulate a" "$DS" simulate --out "$T/a" --n 300 --seed 5
expect_ok "simulate b (same seed)" "$DS" simulate --out "$T/b" --n 300 --seed 5
expect_ok "simulate c (other seed)" "$DS" simulate --out "$T/c" --n 300 --seed 6
if cmp -s "$T/a/meta.csv" "$T/b/meta.csv"; then ok "same seed: identical meta.csv"; else bad "same seed: meta.csv differs"; fi
if cmp -s "$T/a/meta.csv" "$T/c/meta.csv"; then bad "other seed: identical meta.csv"; else ok "other seed: other meta.csv"; fi
if head -1 "$T/a/meta.csv" | grep -q '^index,band,xpos,'; then ok "header starts index,band"; else bad "header: $(head -1 "$T/a/meta.csv")"; fi
rows=$(($(wc -l <"$T/a/meta.csv") - 1))
[ "$rows" -eq 300 ] && ok "300 rows" || bad "$rows rows, expected 300"
if diff <(cut -d, -f1 "$T/a/meta.csv") <(cut -d, -f1 "$T/a/labels.csv") >/dev/null; then ok "index column as labels.csv's"
else bad "index column differs from labels.csv's"; fi
if grep -qiE 'nan|inf' "$T/a/meta.csv"; then bad "meta.csv holds nan/inf"; else ok "no nan/inf in meta.csv"; fi
if grep -q '"file": "meta.csv"' "$T/a/provenance.json"; then ok "meta.csv in provenance.json"; else bad "meta.csv not in provenance.json"; fi
# every row has as many fields as the header
if awk -F, 'NR==1{n=NF} NF!=n{exit 1}' "$T/a/meta.csv"; then ok "every row as wide as the header"; else bad "ragged meta.csv"; fi
# --force: a new, smaller set replaces the old meta.csv
expect_ok "simulate --force, fewer stamps" "$DS" simulate --out "$T/a" --n 50 --seed 5 --force
rows=$(($(wc -l <"$T/a/meta.csv") - 1))
[ "$rows" -eq 50 ] && ok "--force: 50 rows" || bad "--force: $rows rows, expected 50"
if cmp -s <(head -51 "$T/b/meta.csv") "$T/a/meta.csv"; then ok "stamp i's row does not depend on --n"; else bad "rows depend on --n"; fi
# the cutouts carry the metadata in their headers
expect_ok "simulate --cutouts" "$DS" simulate --out "$T/d" --n 20 --seed 5 --cutouts --channels 3
f=$(ls "$T"/d/cutouts/*/*.fits | head -1)
if grep -aq "MAGPSF  =" "$f" && grep -aq "NDETHIST=" "$f" && grep -aq "BAND    = 'g\|BAND    = 'r\|BAND    = 'i" "$f"; then
  ok "cutout header holds MAGPSF, NDETHIST, BAND"; else bad "cutout header lacks the metadata"; fi
if cmp -s <(head -21 "$T/b/meta.csv") "$T/d/meta.csv"; then ok "same metadata with three channels"; else bad "metadata depends on --channels"; fi
# the metadata-only MLP on it
expect_ok "meta_table.py" $PY "$ROOT/experiments/asteroids/meta_table.py" "$T/b" "$T/b.csv"
expect_ok "train models/alerts-meta.cfg" "$DS" train "$ROOT/models/alerts-meta.cfg" --data "csv:$T/b.csv,label=label" --out "$T/mlp" --quiet
expect_ok "eval --meta labels.csv" "$DS" eval "$T/mlp/best.safetensors" --data "csv:$T/b.csv,label=label" --meta "$T/b/labels.csv"
grep -q "bogus rejected, per kind" "$T/out" && ok "eval prints rejection per kind" || bad "eval lacks the per-kind table"
finish sim_meta
