#!/usr/bin/env python3
"""Break each op family's backward once and check that both the gradient check
and the PyTorch parity test catch it. Not part of the CI suite (it rebuilds the
library ~20 times); run it by hand: /usr/bin/python3 tests/mutation.py
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build-mutation")

# family: (file, exact text in the backward, its broken replacement)
MUTANTS = {
    "matmul": ("src/ops/linear.c", "ds_gemm(false, true, m, k, p, 1,", "ds_gemm(false, true, m, k, p, 0.5f,"),
    "linear": ("src/ops/linear.c", "db[j] += dy[(size_t)r * o + j];", "db[j] += 2 * dy[(size_t)r * o + j];"),
    "add/sub/mul": ("src/ops/elementwise.c", "kind == BIN_SUB ? -d : d;", "kind == BIN_SUB ? d : d;"),
    "relu": ("src/ops/elementwise.c", "dx[i] += x[i] > 0 ? dy[i] : 0;", "dx[i] += x[i] > -0.5f ? dy[i] : 0;"),
    "leaky_relu": ("src/ops/elementwise.c", "dx[i] += x[i] > 0 ? dy[i] : s * dy[i];", "dx[i] += x[i] > 0 ? dy[i] : 0.5f * s * dy[i];"),
    "elu": ("src/ops/elementwise.c", "dy[i] * (y[i] + a);", "dy[i] * y[i];"),
    "sigmoid": ("src/ops/elementwise.c", "dy[i] * y[i] * (1.0f - y[i]);", "dy[i] * y[i];"),
    "tanh": ("src/ops/elementwise.c", "dy[i] * (1.0f - y[i] * y[i]);", "dy[i] * (1.0f - y[i]);"),
    "softplus": ("src/ops/elementwise.c", "dy[i] / (1.0f + expf(-x[i]));", "dy[i] / (1.0f + expf(x[i]));"),
    "softmax": ("src/ops/elementwise.c", "(float)(y[p] * (dy[p] - s));", "(float)(y[p] * dy[p]);"),
    "log_softmax": ("src/ops/elementwise.c", "(float)(dy[p] - expf(y[p]) * s)", "(float)(dy[p] - y[p] * s)"),
    "conv2d": ("src/ops/conv.c", "ds_gemm(false, true, ocg, kk, cols, 1, dym", "ds_gemm(false, true, ocg, kk, cols, 0.9f, dym"),
    "conv_transpose2d": ("src/ops/conv.c", "ds_gemm(false, false, xg, cols, kk, 1, w", "ds_gemm(false, false, xg, cols, kk, 0.9f, w"),
    "maxpool2d": ("src/ops/pool.c", "dx[a[o]] += dy[o];", "dx[a[o] / 2] += dy[o];"),
    "avgpool2d": ("src/ops/pool.c", "d = backward ? n->grad[o] * inv : 0;", "d = backward ? n->grad[o] : 0;"),
    "global_avgpool": ("src/ops/pool.c", "float d = n->grad[p] / (float)hw,", "float d = n->grad[p],"),
    "batchnorm": ("src/ops/norm.c", "(dy[off + i] - a - (x[off + i] - mu)", "(dy[off + i] - (x[off + i] - mu)"),
    "dropout": ("src/ops/norm.c", "dx[i] += dy[i] * mask[i];", "dx[i] += dy[i];"),
    "concat": ("src/ops/shape.c", "dst[k] += src[k];", "dst[k] += 0.5f * src[k];"),
    "reshape/flatten": ("src/ops/shape.c", "dx[i] += n->grad[i];", "dx[i] -= n->grad[i];"),
    "softmax_cross_entropy": ("src/ops/loss.c", "(p[r * c + j] - (j == y));", "(p[r * c + j] - 0.9f * (j == y));"),
    "bce_with_logits": ("src/ops/loss.c", "(1.0f / (1.0f + expf(-z[i])) - t[i]);", "(1.0f / (1.0f + expf(-z[i])));"),
    "mse": ("src/ops/loss.c", "float k = 2.0f * n->grad[0] / (float)e;", "float k = n->grad[0] / (float)e;"),
}


def run(cmd, env=None):
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def main():
    run(["cmake", "-S", ".", "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release",
         "-DCMAKE_C_FLAGS=-Wno-unused-variable -Wno-unused-parameter"])  # a mutant may leave a name unused
    env = dict(os.environ, DS_LIB=os.path.join(BUILD, "libdeepsky.so"), OPENBLAS_NUM_THREADS="1")
    caught = 0
    for family, (path, good, bad) in MUTANTS.items():
        full = os.path.join(ROOT, path)
        src = open(full).read()
        assert src.count(good) == 1, f"{family}: pattern not found exactly once in {path}"
        try:
            open(full, "w").write(src.replace(good, bad))
            rc, out = run(["cmake", "--build", BUILD, "-j2", "--target", "test_gradcheck", "deepsky"])
            assert rc == 0, out[-2000:]
            g_rc, g_out = run([os.path.join(BUILD, "test_gradcheck")])
            p_rc, p_out = run(["/usr/bin/python3", "tests/parity/test_ops.py"], env)
        finally:
            open(full, "w").write(src)
        g_fail = g_out.count("gradcheck ") - g_out.count("ok   ")
        g_line = [l for l in g_out.splitlines() if "passed," in l][-1:]
        p_line = [l for l in p_out.splitlines() if "passed," in l][-1:]
        both = g_rc != 0 and p_rc != 0
        caught += both
        print(f"{'caught' if both else 'MISSED'} {family:22s} gradcheck: {g_line} parity: {p_line}")
    run(["cmake", "--build", BUILD, "-j2"])
    print(f"mutation: {caught} passed, {len(MUTANTS) - caught} failed")
    return 0 if caught == len(MUTANTS) else 1


if __name__ == "__main__":
    sys.exit(main())
