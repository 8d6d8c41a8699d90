"""Hierarchical softmax parity with PyTorch: ds_hier_softmax_cross_entropy's
loss and its gradient against the same loss built from torch log_softmax over
each node's slice of the logits (float64), and ds_hier_probs against the
product of torch softmaxes on each class's path. Trees: Fashion-MNIST's
(models/lenet-hier.cfg) and random ones; weighted and unweighted; relative
error <= 1e-4."""
import ctypes as C

import numpy as np
import torch
import torch.nn.functional as F

import ds

torch.set_num_threads(2)
L = ds.lib
L.ds_class_tree_parse.restype = C.c_void_p
L.ds_class_tree_parse.argtypes = [C.c_char_p, C.c_int, C.c_char_p]
L.ds_class_tree_free.restype = None
L.ds_class_tree_free.argtypes = [C.c_void_p]
L.ds_hier_softmax_cross_entropy.restype = C.c_void_p
L.ds_hier_softmax_cross_entropy.argtypes = [C.c_void_p, C.c_void_p, C.c_void_p, C.c_void_p, ds.FP]
L.ds_hier_probs.restype = C.c_int
L.ds_hier_probs.argtypes = [C.c_void_p, ds.FP, ds.FP, ds.FP]

rng = np.random.default_rng(13)
report = ds.Report("hierarchical softmax parity")

FASHION = [("root", ["top", 1, 3, "footwear", 8]), ("top", ["shirt_like", 2, 4]),
           ("shirt_like", [0, 6]), ("footwear", [5, 7, 9])]


def random_tree(classes):
    """Nodes (name, children) in a shuffled file order: repeatedly group 2-4
    of the free items under a new node until one root remains."""
    free, nodes = list(range(classes)), []
    while len(free) > 1:
        k = int(min(len(free), rng.integers(2, 5)))
        pick = [free.pop(int(rng.integers(len(free)))) for _ in range(k)]
        name = f"n{len(nodes)}"
        nodes.append((name, pick))
        free.append(name)
    order = rng.permutation(len(nodes))
    return [nodes[i] for i in order]


def tree_text(nodes):
    return "[tree]\n" + "".join(f"{n} = {', '.join(map(str, ch))}\n" for n, ch in nodes)


def layout(nodes, classes):
    """Blocks (first logit, size) in file order, and each class's path as
    (node index, logit) steps from the root, computed here independently."""
    index = {n: k for k, (n, _) in enumerate(nodes)}
    first, off = [], 0
    for _, ch in nodes:
        first.append(off)
        off += len(ch)
    parent = {}  # child -> (node index, logit)
    for k, (_, ch) in enumerate(nodes):
        for j, c in enumerate(ch):
            parent[c] = (k, first[k] + j)
    paths = []
    for c in range(classes):
        steps, item = [], c
        while item in parent:
            k, logit = parent[item]
            steps.append((k, logit))
            item = nodes[k][0]
        paths.append(steps[::-1])
    return first, off, paths


def torch_loss(z, y, nodes, first, paths, w):
    """Σ wᵧ Σ_path −log_softmax(z[:, block])[step] / Σ wᵧ, one slice per node."""
    ls = [F.log_softmax(z[:, first[k]:first[k] + len(ch)], dim=1) for k, (_, ch) in enumerate(nodes)]
    per = torch.stack([sum(-ls[k][i, logit - first[k]] for k, logit in paths[yi]) for i, yi in enumerate(y)])
    wy = torch.tensor([w[yi] for yi in y], dtype=z.dtype)
    return (wy * per).sum() / wy.sum()


def case(what, nodes, classes, n, weighted):
    tree = L.ds_class_tree_parse(tree_text(nodes).encode(), classes, b"parity")
    if not tree:
        report.check(f"{what}: parse: {ds.error()}", float("inf"))
        return
    first, width, paths = layout(nodes, classes)
    z = (2.0 * rng.standard_normal((n, width))).astype(np.float32)
    y = rng.integers(0, classes, n)
    y[:classes] = rng.permutation(classes)[:n]  # every class when n allows
    w = rng.uniform(0.2, 3, classes).astype(np.float32) if weighted else np.ones(classes, np.float32)
    g = L.ds_graph_new(1)
    try:
        zn = ds.check(L.ds_input(g, b"z", ds.shape(n, width)))
        L.ds_node_set_requires_grad(zn, 1)
        yn = ds.check(L.ds_input(g, b"y", ds.shape(n)))
        loss = ds.check(L.ds_hier_softmax_cross_entropy(g, zn, yn, tree, ds.fptr(w) if weighted else None))
        ds.ok(L.ds_graph_compile(g))
        ds.value(zn)[...] = z
        ds.value(yn)[...] = y.astype(np.float32)
        ds.ok(L.ds_graph_forward(g))
        tz = torch.tensor(z, dtype=torch.float64, requires_grad=True)
        tl = torch_loss(tz, list(y), nodes, first, paths, w)
        report.check(f"{what}: loss", ds.rel_err(ds.value(loss), tl.detach().numpy()))
        for seed in (None, float(rng.uniform(0.5, 2))):
            L.ds_graph_zero_grad(g)
            dout = None if seed is None else np.array([seed], np.float32)
            ds.ok(L.ds_graph_backward(g, loss, None if dout is None else ds.fptr(dout)))
            (gz,) = torch.autograd.grad(tl, [tz], torch.tensor(1.0 if seed is None else seed, dtype=torch.float64),
                                        retain_graph=True)
            tag = "seed 1" if seed is None else f"seed {seed:.3g}"
            report.check(f"{what}: dz ({tag})", ds.rel_err(ds.grad(zn), gz.numpy()))
        # class probabilities: the product of the softmaxes on each path
        cp = np.zeros(classes, np.float32)
        row = np.ascontiguousarray(z[0])
        ds.ok(L.ds_hier_probs(tree, ds.fptr(row), ds.fptr(cp), None))
        tr = torch.tensor(row, dtype=torch.float64)
        want = np.array([np.prod([F.softmax(tr[first[k]:first[k] + len(nodes[k][1])], 0)[logit - first[k]].item()
                                  for k, logit in paths[c]]) for c in range(classes)])
        report.check(f"{what}: class probabilities", ds.rel_err(cp, want))
    except RuntimeError as e:
        report.check(f"{what}: {e}", float("inf"))
    finally:
        L.ds_graph_free(g)
        L.ds_class_tree_free(tree)


if __name__ == "__main__":
    for weighted in (False, True):
        tag = "class weights" if weighted else "unweighted"
        case(f"Fashion-MNIST tree [16,13] {tag}", FASHION, 10, 16, weighted)
        for classes in (3, 12, 40):
            case(f"random tree, {classes} classes, {tag}", random_tree(classes), classes, 2 * classes + 3, weighted)
    report.finish()
