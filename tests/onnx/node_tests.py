"""node_tests.py DEEPSKY [TABLE.md]: ONNX's backend node tests (Debian's
libonnx-testdata, /usr/share/libonnx-testdata/data/node) for the operators
deepsky imports. Each test's extra graph inputs (weights, in these tests)
become initializers (raw_data) from test_data_set_0, then
`deepsky import model.onnx --run input_0.npy --output y.npy` runs it and y
must match output_0.pb (rtol 1e-3, atol 1e-4). Prints the table
(operator, tests, passed) and every failure's reason; exit 0."""
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = "/usr/share/libonnx-testdata/data/node"
OPS = ["Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "InstanceNormalization", "Relu", "Sigmoid",
       "Tanh", "Softplus", "LeakyRelu", "Elu", "MaxPool", "AveragePool", "GlobalAveragePool", "Add", "Concat",
       "Flatten", "Reshape", "Softmax", "Dropout", "Identity"]


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def one(ds, d, tmp):
    model = onnx.load(os.path.join(d, "model.onnx"))
    ops = {n.op_type for n in model.graph.node}
    ins = sorted(glob.glob(os.path.join(d, "test_data_set_0", "input_*.pb")))
    outs = sorted(glob.glob(os.path.join(d, "test_data_set_0", "output_*.pb")))
    if not ins or not outs:
        return None, "no test data"
    # inputs after the first: constants (the weights of these tests)
    for k, p in enumerate(ins[1:], 1):
        name = model.graph.input[k].name
        model.graph.initializer.append(numpy_helper.from_array(load_pb(p), name))
    mp, xp, yp = (os.path.join(tmp, n) for n in ("m.onnx", "x.npy", "y.npy"))
    onnx.save(model, mp)
    x = load_pb(ins[0])
    if x.dtype != np.float32:
        return False, f"input dtype {x.dtype}"
    np.save(xp, x)
    r = subprocess.run([ds, "import", mp, "--run", xp, "--output", yp], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return False, r.stderr.strip().replace("deepsky: import: ", "")[:200]
    y, want = np.load(yp), load_pb(outs[-1])
    if y.size != want.size:
        return False, f"output {y.shape}, expected {want.shape}"
    if not np.allclose(y.reshape(want.shape), want, rtol=1e-3, atol=1e-4):
        return False, f"max error {abs(y.reshape(want.shape) - want).max():.3g}"
    return True, ""


def main():
    ds = sys.argv[1]
    rows = {op: [0, 0] for op in OPS}
    fails = []
    with tempfile.TemporaryDirectory() as tmp:
        for d in sorted(glob.glob(os.path.join(ROOT, "test_*"))):
            model = onnx.load(os.path.join(d, "model.onnx"))
            ops = [n.op_type for n in model.graph.node]
            if len(ops) != 1 or ops[0] not in rows:
                continue
            try:
                ok, why = one(ds, d, tmp)
            except Exception as e:  # test data that is not one tensor (sequences, optionals)
                ok, why = False, f"test data not readable here: {e}"[:120]
            if ok is None:
                continue
            rows[ops[0]][0] += 1
            rows[ops[0]][1] += ok
            if not ok:
                fails.append(f"{os.path.basename(d)}: {why}")
    lines = ["| operator | tests | passed |", "|---|---|---|"]
    for op in OPS:
        lines.append(f"| {op} | {rows[op][0]} | {rows[op][1]} |")
    t = sum(r[0] for r in rows.values()), sum(r[1] for r in rows.values())
    lines.append(f"| **all** | {t[0]} | {t[1]} |")
    print("\n".join(lines))
    print("\nfailures:")
    print("\n".join(fails))
    if len(sys.argv) > 2:
        open(sys.argv[2], "w").write("\n".join(lines) + "\n")
    print(f"PASSED {t[1]} OF {t[0]}")


if __name__ == "__main__":
    main()
