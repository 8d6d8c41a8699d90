"""spec_models.py DIR: small ONNX models in the forms `deepsky export` writes
for several inputs, embeddings, a [tree] head and a GAN generator's output
transform (docs/onnx.md), built with onnx.helper, with their inputs and the
reference outputs computed by PyTorch's functional ops (float32):
  two.onnx     stamp [N,1,8,8] and meta [N,5], each with Sub/Div; Softmax
  embed.onnx   z [N,4] and c [N,1]: Cast, Gather, Flatten, Concat; Softmax
  tree.onnx    x [N,6] -> 7 logits -> the tree tail -> probabilities [N,5]
  gen.onnx     z [N,8] -> Gemm, Reshape, ConvTranspose, Tanh -> generated,
               then Mul, Add -> sample [N,1,6,6]
  gen_asinh.onnx  the same with Mul, Add, Sinh, Mul
and the bad ones: mid_mul.onnx (a Mul by a scalar between two layers),
tree_bad.onnx (tree/paths with two columns swapped), tree_slice.onnx (a
Slice that does not match the tree), raw_and_norm.onnx (an input read both
normalised and not). Writes NAME-*.npy (inputs) and NAME-ref.npy."""
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

D = sys.argv[1]
r = np.random.default_rng(7)
N = 6


def f32(*shape, scale=1.0):
    return (r.standard_normal(shape) * scale).astype(np.float32)


def init(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def inp(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N"] + list(shape))


def out(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N"] + list(shape))


def save(name, nodes, inputs, outputs, inits, meta=None):
    g = helper.make_graph(nodes, name, inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="spec_models.py")
    for k, v in (meta or {}).items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(m)
    onnx.save(m, f"{D}/{name}.onnx")


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def gemm(x, w, b):  # Gemm transB=1: x w^T + b
    return x @ w.T + b


# 1. two inputs with their own normalisation
stamp, meta = f32(N, 1, 8, 8, scale=3) + 2, f32(N, 5, scale=2) + 1
sm, ss = np.array([2.0], np.float32).reshape(1, 1, 1), np.array([3.0], np.float32).reshape(1, 1, 1)
mm, ms = f32(5), np.abs(f32(5)) + 0.5
cw, cb = f32(2, 1, 3, 3), f32(2)
w1, b1 = f32(4, 5), f32(4)
w2, b2 = f32(3, 132, scale=0.2), f32(3)
nodes = [
    helper.make_node("Sub", ["stamp", "norm.mean"], ["s1"], name="norm.stamp/Sub"),
    helper.make_node("Div", ["s1", "norm.std"], ["s2"], name="norm.stamp/Div"),
    helper.make_node("Sub", ["meta", "norm.meta.mean"], ["m1"], name="norm.meta/Sub"),
    helper.make_node("Div", ["m1", "norm.meta.std"], ["m2"], name="norm.meta/Div"),
    helper.make_node("Conv", ["s2", "conv.weight", "conv.bias"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["c"], ["cr"], name="conv/Relu"),
    helper.make_node("Flatten", ["cr"], ["cf"], name="flat"),
    helper.make_node("Gemm", ["m2", "fc1.weight", "fc1.bias"], ["h"], name="fc1", transB=1),
    helper.make_node("Relu", ["h"], ["hr"], name="fc1/Relu"),
    helper.make_node("Concat", ["cf", "hr"], ["j"], name="joined", axis=1),
    helper.make_node("Gemm", ["j", "fc2.weight", "fc2.bias"], ["logits"], name="fc2", transB=1),
    helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
]
save("two", nodes, [inp("stamp", [1, 8, 8]), inp("meta", [5])], [out("logits", [3]), out("probabilities", [3])],
     [init("norm.mean", sm), init("norm.std", ss), init("norm.meta.mean", mm), init("norm.meta.std", ms),
      init("conv.weight", cw), init("conv.bias", cb), init("fc1.weight", w1), init("fc1.bias", b1),
      init("fc2.weight", w2), init("fc2.bias", b2)], {"deepsky.columns.meta": "a, b, c, d, e"})
x1 = F.relu(F.conv2d((t(stamp) - t(sm)) / t(ss), t(cw), t(cb), padding=1)).flatten(1)
x2 = F.relu(gemm((t(meta) - t(mm)) / t(ms), t(w1), t(b1)))
ref = F.softmax(gemm(torch.cat([x1, x2], 1), t(w2), t(b2)), 1)
np.save(f"{D}/two-stamp.npy", stamp), np.save(f"{D}/two-meta.npy", meta), np.save(f"{D}/two-ref.npy", ref.numpy())
with open(f"{D}/two-meta.csv", "w") as f:
    f.write("a,b,c,d,e\n" + "".join(",".join(f"{v:.9g}" for v in row) + "\n" for row in meta))

# 2. an embedding of a class index, joined with z
z, c = f32(N, 4), r.integers(0, 5, (N, 1)).astype(np.float32)
table, w, b = f32(5, 3), f32(3, 7), f32(3)
nodes = [
    helper.make_node("Cast", ["c"], ["ci"], name="g_class/Cast", to=TensorProto.INT64),
    helper.make_node("Gather", ["g_class.weight", "ci"], ["e3"], name="g_class/Gather", axis=0),
    helper.make_node("Flatten", ["e3"], ["e"], name="g_class/Flatten", axis=1),
    helper.make_node("Concat", ["z", "e"], ["j"], name="concat", axis=1),
    helper.make_node("Gemm", ["j", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1),
    helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
]
save("embed", nodes, [inp("z", [4]), inp("c", [1])], [out("probabilities", [3])],
     [init("g_class.weight", table), init("fc.weight", w), init("fc.bias", b)])
ref = F.softmax(gemm(torch.cat([t(z), t(table)[t(c).long()[:, 0]]], 1), t(w), t(b)), 1)
np.save(f"{D}/embed-z.npy", z), np.save(f"{D}/embed-c.npy", c), np.save(f"{D}/embed-ref.npy", ref.numpy())

# 3. a [tree] head: root = left, 0, right; left = 1, 2; right = 3, 4 (7 logits, 5 classes)
TREE = "root = left, 0, right\nleft = 1, 2\nright = 3, 4"
ranges = [(0, 3), (3, 5), (5, 7)]
paths = np.zeros((7, 5), np.float32)
for cls, logits in {0: [1], 1: [0, 3], 2: [0, 4], 3: [2, 5], 4: [2, 6]}.items():
    paths[logits, cls] = 1
x, w, b = f32(N, 6), f32(7, 6), f32(7)


def tree_model(name, paths, ranges):
    nodes = [helper.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["fc"], name="fc", transB=1),
             helper.make_node("Identity", ["fc"], ["logits"], name="logits")]
    inits = [init("fc.weight", w), init("fc.bias", b), init("tree/paths", paths)]
    for j, (a, e) in enumerate(ranges):
        inits += [init(f"tree/{j}/starts", np.array([a], np.int64)), init(f"tree/{j}/ends", np.array([e], np.int64)),
                  init(f"tree/{j}/axes", np.array([1], np.int64))]
        nodes += [helper.make_node("Slice", ["logits", f"tree/{j}/starts", f"tree/{j}/ends", f"tree/{j}/axes"],
                                   [f"tree/{j}/s"], name=f"tree/{j}/Slice"),
                  helper.make_node("LogSoftmax", [f"tree/{j}/s"], [f"tree/{j}/l"], name=f"tree/{j}/LogSoftmax", axis=1)]
    nodes += [helper.make_node("Concat", [f"tree/{j}/l" for j in range(len(ranges))], ["tree/log_cond"],
                               name="tree/Concat", axis=1),
              helper.make_node("MatMul", ["tree/log_cond", "tree/paths"], ["tree/log_p"], name="tree/MatMul"),
              helper.make_node("Exp", ["tree/log_p"], ["probabilities"], name="tree/Exp")]
    save(name, nodes, [inp("x", [6])], [out("logits", [7]), out("probabilities", [5])], inits, {"deepsky.tree": TREE})


tree_model("tree", paths, ranges)
lg = gemm(t(x), t(w), t(b))
lc = torch.cat([F.log_softmax(lg[:, a:e], 1) for a, e in ranges], 1)
np.save(f"{D}/tree-x.npy", x), np.save(f"{D}/tree-ref.npy", torch.exp(lc @ t(paths)).numpy())
tree_model("tree_bad", paths[:, [0, 2, 1, 3, 4]], ranges)
tree_model("tree_slice", paths, [(0, 3), (3, 6), (6, 7)])

# 4. a generator: Gemm, Relu, Reshape, ConvTranspose, Tanh -> generated; the scale's inverse -> sample
z = f32(N, 8)
w, b = f32(18, 8), f32(18)
dw, db = f32(2, 1, 4, 4, scale=0.5), f32(1)


def gen_model(name, tail, mid=False):
    nodes = [helper.make_node("Gemm", ["z", "g_fc.weight", "g_fc.bias"], ["h"], name="g_fc", transB=1)]
    if mid:  # a Mul by a constant between two layers: no deepsky layer
        nodes += [helper.make_node("Mul", ["h", "gan/scale_a"], ["hm"], name="mid/Mul")]
    nodes += [helper.make_node("Relu", ["hm" if mid else "h"], ["hr"], name="g_fc/Relu"),
              helper.make_node("Reshape", ["hr", "shape"], ["h3"], name="reshape"),
              helper.make_node("ConvTranspose", ["h3", "g_out.weight", "g_out.bias"], ["d"], name="g_out",
                               kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1]),
              helper.make_node("Tanh", ["d"], ["dt"], name="g_out/Tanh"),
              helper.make_node("Identity", ["dt"], ["generated"], name="generated")]
    inits = [init("g_fc.weight", w), init("g_fc.bias", b), init("shape", np.array([0, 2, 3, 3], np.int64)),
             init("g_out.weight", dw), init("g_out.bias", db)]
    prev = "generated"
    for k, (op, v) in enumerate(tail):
        o = "sample" if k == len(tail) - 1 else f"gan/t{k}"
        if v is None:
            nodes.append(helper.make_node(op, [prev], [o], name=f"gan/{op}{k}"))
        else:
            inits.append(init(f"gan/c{k}", np.array(v, np.float32)))
            nodes.append(helper.make_node(op, [prev, f"gan/c{k}"], [o], name=f"gan/{op}{k}"))
        prev = o
    if mid:
        inits.append(init("gan/scale_a", np.array(0.5, np.float32)))
    save(name, nodes, [inp("z", [8])], [out("generated", [1, 6, 6]), out("sample", [1, 6, 6])], inits,
         {"deepsky.gan": "generator", "deepsky.scale": '{"transform":"linear","softening":1,"lo":0,"hi":1}'})
    g = torch.tanh(F.conv_transpose2d(F.relu(gemm(t(z), t(w), t(b))).reshape(-1, 2, 3, 3), t(dw), t(db), stride=2,
                                      padding=1))
    for op, v in tail:
        c = torch.tensor(v, dtype=torch.float32) if v is not None else None
        g = g * c if op == "Mul" else g + c if op == "Add" else g - c if op == "Sub" else g / c if op == "Div" \
            else torch.sinh(g)
    return g


np.save(f"{D}/gen-z.npy", z)
np.save(f"{D}/gen-ref.npy", gen_model("gen", [("Mul", 0.5), ("Add", 0.5)]).numpy())
np.save(f"{D}/gen_asinh-ref.npy", gen_model("gen_asinh", [("Mul", 1.7), ("Add", -0.2), ("Sinh", None),
                                                          ("Mul", 0.05)]).numpy())
gen_model("mid_mul", [("Mul", 0.5), ("Add", 0.5)], mid=True)

# an input read both raw and normalised
nodes = [helper.make_node("Sub", ["x", "norm.mean"], ["x1"], name="norm/Sub"),
         helper.make_node("Div", ["x1", "norm.std"], ["x2"], name="norm/Div"),
         helper.make_node("Concat", ["x", "x2"], ["j"], name="concat", axis=1),
         helper.make_node("Gemm", ["j", "fc.weight", "fc.bias"], ["y"], name="fc", transB=1)]
save("raw_and_norm", nodes, [inp("x", [3])], [out("y", [2])],
     [init("norm.mean", f32(3)), init("norm.std", np.ones(3, np.float32)), init("fc.weight", f32(2, 6)),
      init("fc.bias", f32(2))])
print("wrote", D)
