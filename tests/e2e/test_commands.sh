#!/bin/bash
# test_commands.sh — the subcommand registry: every command's --help (both
# spellings) prints its own usage, the usage names what docs/cli.md
# documents, and the repeated-option check follows each command's list of
# repeatable options (sources given as NAME=SPEC) and no other.
# usage: test_commands.sh PATH/TO/deepsky
set -u
DS=${1:?usage: test_commands.sh DEEPSKY}
. "$(dirname "$0")/lib.sh"

expect_rc() {
  local name=$1 want=$2 re=$3; shift 3
  "$@" >"$T/out" 2>&1
  local rc=$?
  if [ $rc -ne "$want" ]; then bad "$name: exit $rc, expected $want"
  elif ! grep -Eq -- "$re" "$T/out"; then bad "$name: message lacks /$re/"
  else ok "$name: exit $rc: $(grep -E -m1 -- "$re" "$T/out" | cut -c1-120)"; fi
}
# has NAME REGEX CMD...: exit 0 and REGEX in the output
has() { expect_rc "$@"; }

"$DS" --help >"$T/help" 2>&1
for c in demo train pretrain eval predict simulate info; do
  if grep -Eq "^  $c +[a-z]" "$T/help"; then ok "--help lists $c"; else bad "--help lists $c"; fi
  "$DS" "$c" --help >"$T/a" 2>&1; "$DS" help "$c" >"$T/b" 2>&1
  if grep -q "^usage: deepsky $c " "$T/a" && cmp -s "$T/a" "$T/b"; then ok "$c --help = help $c"
  else bad "$c --help = help $c"; fi
done

has "train: --data NAME=SPEC" 0 "--data NAME=SPEC" "$DS" train --help
has "train: monitor chooses best" 0 "\[train\] monitor" "$DS" train --help
has "train: patience" 0 "\[train\] patience" "$DS" train --help
has "eval: --data NAME=SPEC" 0 "--data NAME=SPEC" "$DS" eval --help
has "eval: --tree" 0 "--tree MODEL.cfg" "$DS" eval --help
has "eval: --report" 0 "--report DIR" "$DS" eval --help
has "predict: --data NAME=SPEC" 0 "--data NAME=SPEC" "$DS" predict --help

# repeatable: sources (each NAME=SPEC) pass the check and reach the command
expect_rc "train: --data twice reaches train" 1 "cannot open|No such" \
  "$DS" train "$T/none.cfg" --data a --data b=c --val x --val y=z --test p --test q=r
expect_rc "eval: --data twice reaches eval" 1 "cannot open|No such" "$DS" eval "$T/none.safetensors" --data a --data b=c
expect_rc "predict: --data twice reaches predict" 1 "cannot open|No such" \
  "$DS" predict "$T/none.safetensors" --data a --data b=c
# any other repeated option is a usage error, before the command runs
expect_rc "train: --out twice" 2 "train: --out is given twice" "$DS" train "$T/none.cfg" --out a --out b
expect_rc "eval: --meta twice" 2 "eval: --meta is given twice" "$DS" eval x --data a --meta m --meta n
expect_rc "eval: --test is not eval's" 2 "eval: --test is given twice" "$DS" eval x --test a --test b
expect_rc "pretrain: --data twice" 2 "pretrain: --data is given twice" "$DS" pretrain m.cfg --data a --data b
expect_rc "simulate: --n twice" 2 "simulate: --n is given twice" "$DS" simulate --out "$T/s" --n 1 --n 2
expect_rc "info: --tensor twice" 2 "info: --tensor is given twice" "$DS" info x --tensor a --tensor b
expect_rc "demo: --seed twice" 2 "demo: --seed is given twice" "$DS" demo --seed 1 --seed 2

finish commands
