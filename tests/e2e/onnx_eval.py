"""onnx_eval.py MODEL.onnx X.npy|NAME=X.npy,NAME2=Y.npy OUT.npy [OUTPUT_NAME]: check MODEL with
onnx.checker, then run it on X with a small interpreter over PyTorch's
functional ops (Debian's onnx 1.12 has no onnx.reference) and save the
named output (default: the last graph output). Only the operators deepsky's
export writes; anything else raises naming node and operator."""
import sys
import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.nn.functional as F


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def pads2(p):
    # ONNX [top, left, bottom, right]; PyTorch wants symmetric ones here
    assert p[0] == p[2] and p[1] == p[3], "asymmetric pads"
    return (p[0], p[1])


def run(model, feeds):
    env = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feeds.items()}
    for t in model.graph.initializer:
        env[t.name] = torch.from_numpy(numpy_helper.to_array(t).copy())
    for n in model.graph.node:
        a = attrs(n)
        x = [env[i] if i else None for i in n.input]
        op = n.op_type
        if op == "Conv":
            y = F.conv2d(x[0], x[1], x[2] if len(x) > 2 else None, a.get("strides", [1, 1]),
                         pads2(a.get("pads", [0, 0, 0, 0])), a.get("dilations", [1, 1]), a.get("group", 1))
        elif op == "ConvTranspose":
            y = F.conv_transpose2d(x[0], x[1], x[2] if len(x) > 2 else None, a.get("strides", [1, 1]),
                                   pads2(a.get("pads", [0, 0, 0, 0])), a.get("output_padding", [0, 0]),
                                   a.get("group", 1), a.get("dilations", [1, 1]))
        elif op == "Gemm":
            b = x[1].t() if a.get("transB", 0) else x[1]
            A = x[0].t() if a.get("transA", 0) else x[0]
            y = a.get("alpha", 1.0) * A @ b
            if len(x) > 2 and x[2] is not None:
                y = y + a.get("beta", 1.0) * x[2]
        elif op == "MaxPool":
            y = F.max_pool2d(x[0], a["kernel_shape"], a.get("strides", a["kernel_shape"]), pads2(a.get("pads", [0] * 4)))
        elif op == "AveragePool":
            y = F.avg_pool2d(x[0], a["kernel_shape"], a.get("strides", a["kernel_shape"]), pads2(a.get("pads", [0] * 4)),
                             count_include_pad=bool(a.get("count_include_pad", 0)))
        elif op == "GlobalAveragePool":
            y = x[0].mean(dim=(2, 3), keepdim=True)
        elif op == "BatchNormalization":
            y = F.batch_norm(x[0], x[3], x[4], x[1], x[2], False, 0.0, a.get("epsilon", 1e-5))
        elif op == "InstanceNormalization":
            y = F.instance_norm(x[0], weight=x[1], bias=x[2], eps=a.get("epsilon", 1e-5))
        elif op == "Relu":
            y = F.relu(x[0])
        elif op == "LeakyRelu":
            y = F.leaky_relu(x[0], a.get("alpha", 0.01))
        elif op == "Elu":
            y = F.elu(x[0], a.get("alpha", 1.0))
        elif op == "Sigmoid":
            y = torch.sigmoid(x[0])
        elif op == "Tanh":
            y = torch.tanh(x[0])
        elif op == "Softplus":
            y = F.softplus(x[0])
        elif op == "Flatten":
            y = x[0].reshape(int(np.prod(x[0].shape[:a.get("axis", 1)])), -1)
        elif op == "Reshape":
            s = [x[0].shape[i] if d == 0 else int(d) for i, d in enumerate(x[1].tolist())]
            y = x[0].reshape(s)
        elif op == "Add":
            y = x[0] + x[1]
        elif op == "Sub":
            y = x[0] - x[1]
        elif op == "Div":
            y = x[0] / x[1]
        elif op == "Concat":
            y = torch.cat(x, dim=a["axis"])
        elif op == "Softmax":
            y = torch.softmax(x[0], dim=a.get("axis", -1))
        elif op == "Identity":
            y = x[0]
        elif op == "Mul":
            y = x[0] * x[1]
        elif op in ("Exp", "Sinh", "Asinh"):
            y = getattr(torch, op.lower())(x[0])
        elif op == "LogSoftmax":
            y = torch.log_softmax(x[0], dim=a.get("axis", -1))
        elif op == "MatMul":
            y = x[0] @ x[1]
        elif op == "Slice":
            st, en = int(x[1][0]), int(x[2][0])
            ax = int(x[3][0]) if len(x) > 3 else 0
            y = x[0].narrow(ax, st, min(en, x[0].shape[ax]) - st)
        elif op == "Cast":
            assert a["to"] == onnx.TensorProto.INT64, "Cast to other than int64"
            y = x[0].to(torch.int64)
        elif op == "Gather":
            y = torch.index_select(x[0], a.get("axis", 0), x[1].reshape(-1)).reshape(tuple(x[1].shape) + tuple(x[0].shape[1:]))
        else:
            raise SystemExit(f"node '{n.name}': operator {op} not in onnx_eval.py")
        env[n.output[0]] = y
    return env


def main():
    model = onnx.load(sys.argv[1])
    onnx.checker.check_model(model, full_check=True)
    feeds = {}
    for part in sys.argv[2].split(","):
        name, path = part.split("=", 1) if "=" in part else (model.graph.input[0].name, part)
        feeds[name] = np.load(path).astype(np.float32)
    with torch.no_grad():
        env = run(model, feeds)
    name = sys.argv[4] if len(sys.argv) > 4 else model.graph.output[-1].name
    np.save(sys.argv[3], env[name].numpy())
    meta = {p.key: p.value for p in model.metadata_props}
    print("checker ok; outputs", [o.name for o in model.graph.output], "classes", meta.get("classes"))


if __name__ == "__main__":
    main()
