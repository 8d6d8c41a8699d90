#!/usr/bin/env bash
# Installs (with apt, as root) whatever of deepsky's build and test packages
# is missing. Quiet when everything is already there.
set -euo pipefail
# python3 and NumPy: `import deepsky` (python/deepsky, registered by the build; docs/python.md)
pkgs=(build-essential cmake pkg-config zlib1g-dev libstb-dev libcfitsio-dev dataset-fashion-mnist python3 python3-numpy)
if [ "${1:-}" = "--bench" ]; then
  # the PyTorch baseline: Debian's torch calls whatever libblas.so.3 is installed, and without
  # OpenBLAS that is the netlib reference BLAS, 15x slower in dense layers (an unfair baseline)
  pkgs+=(python3 python3-numpy python3-torch libopenblas0-pthread)
fi
if [ "${1:-}" = "--test" ]; then
  # clang, libFuzzer's runtime (libclang_rt.fuzzer) and llvm-symbolizer for the fuzz smoke
  pkgs+=(python3 python3-numpy python3-torch chromium clang libclang-rt-14-dev llvm)
  # data-parallel training (optional in a build): Open MPI, for tests/e2e/test_mpi.sh
  pkgs+=(libopenmpi-dev openmpi-bin)
  # the inference server (optional in a build): libmicrohttpd, for tests/e2e/test_serve.sh
  pkgs+=(libmicrohttpd-dev)
fi
if [ "${1:-}" = "--test" ]; then
  # the Python package's FITS cutouts (tests/e2e/test_python.sh, docs/python.md): astropy
  pkgs+=(python3-astropy)
fi
if [ "${1:-}" = "--test" ]; then
  # ONNX export/import (optional in a build): protobuf-c; onnx.checker and ONNX's node tests
  pkgs+=(protobuf-c-compiler libprotobuf-c-dev python3-onnx libonnx-testdata)
fi
if [ "${1:-}" = "--bench" ]; then
  # bench/run.py's mpi2 workload: deepsky's 2-rank epoch under mpirun (PyTorch's side: gloo, in python3-torch)
  pkgs+=(libopenmpi-dev openmpi-bin)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
