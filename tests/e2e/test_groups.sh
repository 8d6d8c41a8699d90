#!/usr/bin/env bash
# End-to-end tests of parameter groups in model files: `deepsky info` matches
# the [group] patterns against the network and lists the groups; bad keys,
# bad values and patterns that select nothing or twice are errors naming the
# file and the [group]'s line. (Training with groups: the trainer's tests.)
# usage: test_groups.sh PATH/TO/deepsky
set -u
DS=${1:?usage: test_groups.sh DEEPSKY}
. "$(dirname "$0")/lib.sh"

# model FILE [EXTRA SECTION TEXT]: a small conv net, then the extra text
model() {
  cat > "$1" <<CFG
[net]
input = 1,8,8
classes = 3
[conv]
name = conv1
filters = 4
size = 3
batch_normalize = 1
[maxpool]
[dense]
name = fc
units = 3
activation = linear
CFG
  printf '%b' "${2:-}" >> "$1"
}

# --- the three recipes of docs/model-file.md, together ---
model "$T/ok.cfg" '[group]\nparams = conv1\nfreeze = 1\n[group]\nparams = fc.weight\nlr = 1e-4\nweight_decay = 0.05\nschedule = step\nstep_size = 2\n[train]\nweight_decay = 0.01\nno_decay = bias, norm\n'
expect_ok "info with groups" "$DS" info "$T/ok.cfg"
grep -Eq "ok\.cfg:14: \[group\] +conv1 +3 params +44 values +frozen" "$T/out" && ok "frozen group listed (conv1 + its batch norm)" || bad "frozen group line"
grep -Eq "ok\.cfg:17: \[group\] +fc\.weight +1 params +108 values +lr 0\.0001  weight_decay 0\.05  schedule step" "$T/out" \
  && ok "group with its own lr, weight decay, schedule" || bad "second group line"
grep -Eq "default +\(the rest\) +1 params +3 values" "$T/out" && ok "default group holds fc.bias" || bad "default group line"
grep -q "no weight decay on biases and norms" "$T/out" && ok "no_decay shown" || bad "no_decay line"

# --- errors, each naming FILE:LINE ---
model "$T/e1.cfg" '[group]\nparams = conv1\nmomentum = 0.9\n'
expect_fail "unknown key in [group]" "e1\.cfg:16: \[group\] momentum: unknown key \(valid keys: params" "$DS" info "$T/e1.cfg"
model "$T/e2.cfg" '[group]\nlr = 0.1\n'
expect_fail "missing params=" "e2\.cfg:14: \[group\]: missing params=" "$DS" info "$T/e2.cfg"
model "$T/e3.cfg" '[group]\nparams = conv1\nfreeze = 1\nlr = 0.1\n'
expect_fail "lr on a frozen group" "e3\.cfg:17: \[group\] lr: does not apply to a frozen group" "$DS" info "$T/e3.cfg"
model "$T/e4.cfg" '[group]\nparams = conv1\nstep_size = 3\n'
expect_fail "schedule key without schedule=" "e4\.cfg:16: \[group\] step_size: needs schedule=" "$DS" info "$T/e4.cfg"
model "$T/e5.cfg" '[group]\nparams = conv1\nweight_decay = -1\n'
expect_fail "negative weight decay" "e5\.cfg:16: \[group\] weight_decay: -1 is out of range" "$DS" info "$T/e5.cfg"
model "$T/e6.cfg" '[train]\nno_decay = bias, gains\n'
expect_fail "bad no_decay item" "e6\.cfg:15: \[train\] no_decay: unknown item 'gains'" "$DS" info "$T/e6.cfg"
model "$T/e7.cfg" '[group]\nparams = conv2\n'
expect_fail "pattern that matches nothing" "e7\.cfg:14: \[group\] params: pattern 'conv2' matches no trainable parameter \(they are: conv1\.weight" "$DS" info "$T/e7.cfg"
model "$T/e8.cfg" '[group]\nparams = conv1\n[group]\nparams = *.bias\n'
expect_fail "parameter in two groups" "e8\.cfg:16: \[group\] params: parameter 'conv1\.bn\.bias' \(pattern '\*\.bias'\) is also in .*e8\.cfg:14: \[group\] \(pattern 'conv1'\)" "$DS" info "$T/e8.cfg"
model "$T/e9.cfg" '[group]\nparams = *\nfreeze = 1\n[groups]\n'
expect_fail "misspelt section" "e9\.cfg:17: \[groups\]: unknown section \(valid sections: net, input, output, tree, train, pretrain, group" "$DS" info "$T/e9.cfg"

finish groups
