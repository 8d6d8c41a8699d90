#!/usr/bin/env bash
# ONNX import against other producers (docs/onnx.md): ONNX's own backend
# node tests for the operators deepsky has (Debian's libonnx-testdata) must
# pass at least as often as docs/onnx.md says, and LeNet, a ResNet and an
# Inception block exported by torch.onnx.export must give PyTorch's outputs.
# Skipped (77) without ONNX support, python3-onnx or the test data.
# usage: test_onnx_import.sh PATH/TO/deepsky
set -u
DS=${1:?usage: test_onnx_import.sh DEEPSKY}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

if "$DS" import "$T/none.onnx" --out "$T/none" 2>&1 | grep -q "without ONNX"; then
  echo "test_onnx_import: deepsky built without ONNX (protobuf-c): skipped"; exit 77
fi
$PY -c "import onnx, torch" 2>/dev/null || { echo "test_onnx_import: no python3-onnx/torch: skipped"; exit 77; }

if [ -d /usr/share/libonnx-testdata/data/node ]; then
  $PY "$HERE/../onnx/node_tests.py" "$DS" >"$T/out" 2>&1
  n=$(sed -n 's/^PASSED \([0-9]*\) OF.*/\1/p' "$T/out")
  # the number docs/onnx.md reports
  [ "${n:-0}" -ge 60 ] && ok "ONNX node tests: $(tail -1 "$T/out")" || bad "ONNX node tests: ${n:-?} passed, docs/onnx.md says 60"
else
  echo "skip: no libonnx-testdata"
fi
if $PY "$HERE/../onnx/torch_models.py" "$DS" "$T" >"$T/out" 2>&1; then
  ok "PyTorch-exported models: $(grep -c 'max |' "$T/out") match ($(grep 'max |' "$T/out" | tr '\n' ';'))"
else bad "PyTorch-exported models"; fi

finish test_onnx_import
