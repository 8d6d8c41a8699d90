#!/usr/bin/env bash
# End-to-end tests of the program layer: a model with two inputs (stamp +
# metadata columns) trains, evaluates and predicts from the CLI on
# `deepsky simulate` output; its bad bindings (row counts, ids, a missing
# column, a wrong shape, a missing source) are clear errors; [output] heads
# with weights, class_weight, sampler=balanced, monitor and patience.
set -u
DS=$1
. "$(dirname "$0")/lib.sh"

"$DS" simulate --out "$T/s" --n 300 --size 16 --seed 7 >/dev/null 2>&1 || { bad "simulate"; finish program; exit 1; }
# the numeric columns of labels.csv (kind is text) as the metadata table
cut -d, -f1,2,4- "$T/s/labels.csv" >"$T/meta.csv"
STAMPS="npy:$T/s/x.npy,$T/s/y.npy"
cat >"$T/wd.cfg" <<'CFG'
[input]
name = stamp
shape = 1,16,16
[input]
name = meta
columns = snr, fwhm, sky
[net]
classes = 2
[conv]
from = stamp
filters = 8
size = 3
pad = 1
activation = relu
[global_avgpool]
[flatten]
name = feat
[concat]
from = feat, meta
[dense]
units = 2
[train]
epochs = 2
batch = 32
CFG
expect_ok "two inputs: train" "$DS" train "$T/wd.cfg" --data "$STAMPS" --data "meta=csv:$T/meta.csv" --val-split 0.2 --out "$T/w" --quiet
grep -q '"norm.meta"' "$T/w/best.safetensors" && ok "the metadata's normalisation is in the checkpoint" ||
  bad "no norm.meta in the checkpoint"
expect_ok "two inputs: eval" "$DS" eval "$T/w/best.safetensors" --data "$STAMPS" --data "meta=csv:$T/meta.csv"
acc=$(grep '^accuracy' "$T/out" | awk '{print $2}')
expect_ok "two inputs: predict" "$DS" predict "$T/w/best.safetensors" --data "npy:$T/s/x.npy" --data "meta=csv:$T/meta.csv"
[ "$(grep -c . "$T/out")" -ge 300 ] && ok "predict scored every sample" || bad "predict: $(grep -c . "$T/out") lines"
# eval reproduces train's own validation pass (each input normalised once, as in training: eval
# once standardised the stamps twice, which a model without [instancenorm] does not survive)
expect_ok "two inputs: train with --val" "$DS" train "$T/wd.cfg" --data "$STAMPS" --data "meta=csv:$T/meta.csv" \
  --val "$STAMPS" --val "meta=csv:$T/meta.csv" --out "$T/wv" --quiet
vacc=$(grep "^2," "$T/wv/metrics.csv" | cut -d, -f5)
"$DS" eval "$T/wv/last.safetensors" --data "$STAMPS" --data "meta=csv:$T/meta.csv" >"$T/out" 2>&1
eacc=$(grep '^accuracy' "$T/out" | awk '{print $2}')
[ -n "$vacc" ] && [ "$(printf %.4f "$vacc")" = "$eacc" ] && ok "eval's accuracy equals train's validation accuracy ($eacc)" ||
  bad "eval $eacc, train's validation $vacc"
# rows in another order, matched by id: the same scores
(head -1 "$T/meta.csv"; tail -n +2 "$T/meta.csv" | sort -t, -k1,1nr) >"$T/shuf.csv"
expect_ok "rows matched by id=index" "$DS" eval "$T/w/best.safetensors" --data "$STAMPS" --data "meta=csv:$T/shuf.csv,id=index"
acc2=$(grep '^accuracy' "$T/out" | awk '{print $2}')
[ -n "$acc" ] && [ "$acc" = "$acc2" ] && ok "shuffled rows by id give the same accuracy ($acc)" ||
  bad "accuracy $acc in order, $acc2 by id"
"$DS" eval "$T/w/best.safetensors" --data "$STAMPS" --data "meta=csv:$T/shuf.csv" >"$T/out" 2>&1
acc3=$(grep '^accuracy' "$T/out" | awk '{print $2}')
[ "$acc3" != "$acc" ] && ok "(rows out of order without id= pair the wrong samples: $acc3; that is why id= exists)" ||
  ok "(shuffled rows without id= happen to score the same)"

head -101 "$T/meta.csv" >"$T/short.csv"
expect_fail "row counts differ" "short.csv has 100 rows but .* has 300 samples.*input 'meta'" \
  "$DS" train "$T/wd.cfg" --data "$STAMPS" --data "meta=csv:$T/short.csv" --out "$T/x" --quiet
expect_fail "an id without its row" "short.csv,id=index: no row with index = " \
  "$DS" train "$T/wd.cfg" --data "$STAMPS" --data "meta=csv:$T/short.csv,id=index" --out "$T/x" --quiet
(cat "$T/meta.csv"; tail -1 "$T/meta.csv") >"$T/dup.csv"
expect_fail "an id twice" "id [0-9]+ appears twice" \
  "$DS" train "$T/wd.cfg" --data "$STAMPS" --data "meta=csv:$T/dup.csv,id=index" --out "$T/x" --quiet
cut -d, -f1-6,8- "$T/meta.csv" >"$T/nosky.csv"
expect_fail "a missing column" "nosky.csv: no column 'sky' \(the model's input 'meta'" \
  "$DS" train "$T/wd.cfg" --data "$STAMPS" --data "meta=csv:$T/nosky.csv" --out "$T/x" --quiet
expect_fail "eval: a missing column" "no column 'sky'" \
  "$DS" eval "$T/w/best.safetensors" --data "$STAMPS" --data "meta=csv:$T/nosky.csv"
sed 's/columns = snr, fwhm, sky/shape = 4/' "$T/wd.cfg" >"$T/shape.cfg"
cut -d, -f3-5 "$T/meta.csv" >"$T/three.csv"
expect_fail "a wrong shape" "three.csv: samples are \[3\] but the model's input 'meta' is \[4\]" \
  "$DS" train "$T/shape.cfg" --data "$STAMPS" --data "meta=csv:$T/three.csv" --out "$T/x" --quiet
sed 's/1,16,16/1,8,8/' "$T/wd.cfg" >"$T/small.cfg"
expect_fail "a wrong stamp shape" "samples are \[1, 16, 16\] but the model's input stamp is \[1, 8, 8\]" \
  "$DS" train "$T/small.cfg" --data "$STAMPS" --data "meta=csv:$T/meta.csv" --out "$T/x" --quiet
expect_fail "no source for an input" "no data for the model's input 'meta': give --data meta=SPEC" \
  "$DS" train "$T/wd.cfg" --data "$STAMPS" --out "$T/x" --quiet
expect_fail "a source for no input" "the model has no input or target 'metta'" \
  "$DS" train "$T/wd.cfg" --data "$STAMPS" --data "metta=csv:$T/meta.csv" --out "$T/x" --quiet
expect_fail "an input given twice" "is given twice for input meta" \
  "$DS" train "$T/wd.cfg" --data "$STAMPS" --data "meta=csv:$T/meta.csv" --data "meta=csv:$T/meta.csv" --out "$T/x" --quiet
sed 's/from = feat, meta/from = feat, metta/' "$T/wd.cfg" >"$T/from.cfg"
expect_fail "from= names an unknown input" "from.cfg:[0-9]+: \[concat\] 'concat1' from: unknown layer 'metta'" \
  "$DS" info "$T/from.cfg"

# two heads: the class, and a regression of the S/N from the same features (target = a data field)
cat >"$T/heads.cfg" <<'CFG'
[net]
input = 1,16,16
classes = 2
[conv]
filters = 8
size = 3
pad = 1
activation = relu
[global_avgpool]
[flatten]
name = feat
[dense]
name = cls
units = 2
[dense]
name = snr_head
from = feat
units = 1
[output]
name = realbogus
from = cls
[output]
name = snr
from = snr_head
loss = mse
weight = 0.01
target = snr
[train]
epochs = 2
CFG
cut -d, -f4 "$T/s/labels.csv" >"$T/snr.csv"
expect_ok "two heads train" "$DS" train "$T/heads.cfg" --data "$STAMPS" --data "snr=csv:$T/snr.csv" --out "$T/h" --quiet
grep -v "^#" "$T/h/metrics.csv" | head -1 | grep -q "train_loss_realbogus,train_loss_snr" && ok "metrics.csv has a loss per head" ||
  bad "metrics.csv header: $(grep -v "^#" "$T/h/metrics.csv" | head -1)"
expect_fail "a head's target needs data" "no data for the model's target 'snr'" \
  "$DS" train "$T/heads.cfg" --data "$STAMPS" --out "$T/x" --quiet
expect_ok "eval needs no regression target" "$DS" eval "$T/h/best.safetensors" --data "$STAMPS"
grep -q "snr .*mse .*(no data for target 'snr'" "$T/out" && ok "eval: a head without its target is not scored" ||
  bad "eval: heads table: $(grep -A3 '^heads' "$T/out")"
expect_ok "eval scores every head" "$DS" eval "$T/h/best.safetensors" --data "$STAMPS" --data "snr=csv:$T/snr.csv"
last=$(grep "^2," "$T/h/metrics.csv" | cut -d, -f9)
grep -Eq "^  snr +mse +[0-9.]+$" "$T/out" && ok "eval: the mse head's loss ($(grep -E '^  snr' "$T/out" | awk '{print $3}'); last training epoch $last)" ||
  bad "eval: heads table: $(grep -A3 '^heads' "$T/out")"

# class balance and early stopping
sed 's/^epochs = 2$/epochs = 30\nclass_weight = auto\nsampler = balanced\nmonitor = val_loss\npatience = 2\nlr = 0.05/' \
  "$T/wd.cfg" >"$T/bal.cfg"
expect_ok "class_weight, balanced sampler, monitor, patience" "$DS" train "$T/bal.cfg" --data "$STAMPS" \
  --data "meta=csv:$T/meta.csv" --val-split 0.3 --out "$T/b"
rows=$(grep -c "^[0-9]" "$T/b/metrics.csv")
grep -q "early stopping" "$T/out" && [ "$rows" -lt 30 ] && ok "early stopping after $rows epochs" ||
  bad "no early stop ($rows epochs)"
expect_ok "info on best" "$DS" info "$T/b/best.safetensors"
grep -q "validation log_loss" "$T/out" && ok "best was chosen on the validation log_loss" || bad "best: $(grep -i best "$T/out")"
printf '[net]\ninput=1,16,16\nclasses=2\n[dense]\nunits=2\n[train]\nclass_weight=1,2,3\n' >"$T/cw.cfg"
expect_fail "class_weight of the wrong length" "class_weight has 3 weights for 2 classes" \
  "$DS" train "$T/cw.cfg" --data "$STAMPS" --out "$T/x" --quiet
printf '[net]\ninput=1,16,16\nclasses=2\n[dense]\nunits=2\n[train]\nclass_weight=1,-2\n' >"$T/cw2.cfg"
expect_fail "a negative class weight" "cw2.cfg:7: \[train\] class_weight: '-2' is not a weight > 0" "$DS" info "$T/cw2.cfg"

# a categorical column through an [embedding]: simulate's meta.csv 'band' (text g/r/i)
cat >"$T/emb.cfg" <<'CFG'
[input]
name = stamp
shape = 1,16,16
[input]
name = band
columns = band
categories = g, r, i
[net]
classes = 2
[conv]
from = stamp
filters = 4
size = 3
activation = relu
[global_avgpool]
[flatten]
name = feat
[embedding]
name = band_vec
from = band
units = 2
[concat]
from = feat, band_vec
[dense]
units = 2
[train]
epochs = 1
CFG
expect_ok "categorical input: train" "$DS" train "$T/emb.cfg" --data "$STAMPS" --data "band=csv:$T/s/meta.csv,id=index" --out "$T/e" --quiet
expect_ok "categorical input: eval" "$DS" eval "$T/e/best.safetensors" --data "$STAMPS" --data "band=csv:$T/s/meta.csv,id=index"
sed 's/categories = g, r, i/categories = g, r/' "$T/emb.cfg" >"$T/emb2.cfg"
expect_fail "an unknown category" "meta.csv:[0-9]+:[0-9]+: 'i' in column 'band' is not one of its categories \(g,r\)" \
  "$DS" train "$T/emb2.cfg" --data "$STAMPS" --data "band=csv:$T/s/meta.csv,id=index" --out "$T/x" --quiet
printf '[input]\nname = b\ncolumns = band, snr\ncategories = g, r\n[net]\nclasses = 2\n[dense]\nunits = 2\n' >"$T/emb3.cfg"
expect_fail "categories on two columns" "emb3.cfg:4: \[input\] 'b' categories: a categorical input reads one column" "$DS" info "$T/emb3.cfg"

# a hierarchical head from the CLI: wine's three classes as "ab? then a or b", or class 2
WINE="csv:$(dirname "$0")/../data/sklearn/wine_data.csv"
printf '[net]\ninput = 13\nclasses = 3\n[tree]\nroot = ab, 2\nab = 0, 1\n[dense]\nunits = 16\nactivation = relu\n[dense]\nunits = 4\n[train]\nepochs = 30\nlr = 0.01\n' >"$T/hw.cfg"
expect_ok "hierarchical: train" "$DS" train "$T/hw.cfg" --data "$WINE" --val-split 0.3 --out "$T/hw" --quiet
expect_ok "hierarchical: eval" "$DS" eval "$T/hw/best.safetensors" --data "$WINE"
grep -q "^level 2, 3 groups (class_0, class_1, class_2): accuracy" "$T/out" && grep -q "mistakes inside their parent" "$T/out" &&
  ok "eval prints accuracy per level of the tree" || bad "no per-level table"
expect_ok "hierarchical: predict" "$DS" predict "$T/hw/best.safetensors" --data "$WINE"
head -1 "$T/out" | grep -Eq "ab\? [01]\.[0-9]{2} > class_[01] [01]\.[0-9]{2}|	class_2 [01]\.[0-9]{2}$" &&
  ok "predict prints the path of questions: $(head -1 "$T/out" | cut -f3)" || bad "predict: $(head -1 "$T/out")"
printf '[net]\ninput = 13\nclasses = 3\n[tree]\nroot = ab, 2\nab = 0, 1\n[dense]\nunits = 3\n' >"$T/hw3.cfg"
expect_fail "hierarchical: wrong width" "the model needs \[[0-9]+, 4\] \(the \[tree\]'s 4 logits" "$DS" train "$T/hw3.cfg" --data "$WINE" --out "$T/x" --quiet
printf '[net]\ninput = 13\nclasses = 3\n[dense]\nunits = 3\n[train]\nepochs = 5\n' >"$T/flat.cfg"
"$DS" train "$T/flat.cfg" --data "$WINE" --out "$T/flat" --quiet >/dev/null 2>&1
expect_ok "a flat model on a tree (eval --tree)" "$DS" eval "$T/flat/best.safetensors" --data "$WINE" --tree "$T/hw.cfg"
grep -q "^level 1, 2 groups (class_2, ab)" "$T/out" && ok "eval --tree: the flat model's accuracy per level" || bad "eval --tree: no level table"
expect_fail "eval --tree with other classes" "its classes differ" "$DS" eval "$T/b/best.safetensors" --data "$STAMPS" \
  --data "meta=csv:$T/meta.csv" --tree "$T/hw.cfg"

# parameter groups through train: a frozen layer is bit-identical after 1 and after 3 epochs, the rest moves
cat >"$T/frz.cfg" <<'CFG'
[net]
input = 1,16,16
classes = 2
[conv]
name = c1
filters = 4
size = 3
activation = relu
[global_avgpool]
[flatten]
[dense]
name = fc
units = 2
[group]
params = c1
freeze = 1
[train]
no_decay = bias, norm
optimizer = adamw
weight_decay = 0.1
CFG
"$DS" train "$T/frz.cfg" --data "$STAMPS" --epochs 1 --out "$T/f1" --quiet >/dev/null 2>&1
"$DS" train "$T/frz.cfg" --data "$STAMPS" --epochs 3 --out "$T/f3" --quiet >/dev/null 2>&1
cat >"$T/st.py" <<'PY'
import json, struct, sys
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]] for k, v in h.items() if k != '__metadata__'}
a, b = load(sys.argv[1]), load(sys.argv[2])
print(' '.join(k for k in ('c1.weight', 'c1.bias', 'fc.weight', 'fc.bias') if a[k] == b[k]))
PY
same=$($PY "$T/st.py" "$T/f1/last.safetensors" "$T/f3/last.safetensors")
[ "$same" = "c1.weight c1.bias" ] && ok "[group] freeze=1 through train: c1 bit-identical, fc trained" ||
  bad "frozen group: identical tensors: '$same'"

finish program
