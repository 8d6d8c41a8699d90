"""Parameter-group parity: ten steps of deepsky's grouped optimizers against
torch.optim with the equivalent param_groups (foreach=False), on the same
initial weights and the same random gradients, comparing every group's rate
and all weights after every step. The groups have their own lr and
weight_decay, no_decay takes the biases' weight decay away, one group is
frozen (it must not move, and stays out of the global clip norm), and some
cases give each group its own schedule (torch: LambdaLR with one factor per
group)."""
import ctypes as C
import math
import warnings

import numpy as np
import torch

import ds
from test_optim import f32, torch_optim

torch.set_num_threads(2)
warnings.filterwarnings("ignore")

STEPS = 10
PG_LR, PG_WD, PG_SCHED = 1, 2, 4
NO_DECAY_BIAS, NO_DECAY_NORM = 1, 2

# name → shape; "frozen" is the frozen group's layer
PARAMS = [("enc.weight", (4, 3)), ("enc.bias", (4,)), ("head.weight", (2, 4)), ("head.bias", (2,)),
          ("frozen.weight", (3, 3)), ("frozen.bias", (3,))]


class ParamGroup(C.Structure):
    _fields_ = [("params", C.c_char_p), ("set", C.c_uint), ("lr", C.c_float), ("weight_decay", C.c_float),
                ("schedule", ds.Schedule), ("schedule_in_epochs", C.c_int), ("frozen", C.c_int),
                ("name", C.c_char_p)]


lib = ds.lib
lib.ds_optim_new_groups.restype = C.c_void_p
lib.ds_optim_new_groups.argtypes = [C.c_void_p, C.POINTER(ds.OptimCfg), C.POINTER(ParamGroup), C.c_int, C.c_uint]
lib.ds_optim_group_lr.restype = C.c_float
lib.ds_optim_group_lr.argtypes = [C.c_void_p, C.c_int]
lib.ds_optim_num_groups.restype = C.c_int
lib.ds_optim_num_groups.argtypes = [C.c_void_p]


def step_factor(step_size, gamma):
    return lambda t: float(np.float32(gamma)) ** (t // step_size)


def cosine_factor(t_max, eta_min, base):
    """CosineAnnealingLR's closed form, as a factor of the group's base rate."""
    return lambda t: (eta_min + (base - eta_min) * (1 + math.cos(math.pi * min(t, t_max) / t_max)) / 2) / base


def run_case(report, name, kind, c, groups, no_decay, sched=None, seed=0):
    """groups: dicts with params (a pattern list for deepsky), members (the
    names it selects, for torch), and lr / weight_decay / frozen / schedule
    (a (ds Schedule kwargs, factor) pair)."""
    rng = np.random.default_rng(seed)
    w0 = {n: rng.standard_normal(s).astype(np.float32) for n, s in PARAMS}

    g = lib.ds_graph_new(1)
    ds.check(lib.ds_input(g, b"x", ds.shape(1, 1)))
    zeros = ds.Init(ds.INIT["zeros"], 0, 0)
    nodes = {n: ds.check(lib.ds_param(g, n.encode(), ds.shape(*s), zeros)) for n, s in PARAMS}
    ds.ok(lib.ds_graph_compile(g))
    for n in nodes:
        ds.value(nodes[n])[...] = w0[n]

    cfg = ds.OptimCfg()
    cfg.kind = kind
    for k, v in c.items():
        setattr(cfg, k, v)
    if sched:
        for k, v in sched[0].items():
            setattr(cfg.schedule, k, v)
    arr = (ParamGroup * len(groups))()
    for a, gr in zip(arr, groups):
        a.params = gr["params"].encode()
        a.frozen = gr.get("frozen", 0)
        if "lr" in gr:
            a.set |= PG_LR
            a.lr = gr["lr"]
        if "weight_decay" in gr:
            a.set |= PG_WD
            a.weight_decay = gr["weight_decay"]
        if "schedule" in gr:
            a.set |= PG_SCHED
            for k, v in gr["schedule"][0].items():
                setattr(a.schedule, k, v)
    o = lib.ds_optim_new_groups(g, cfg, arr, len(groups), no_decay)
    if not o:
        raise RuntimeError(ds.error())

    # torch: one param_group per (deepsky group, decayed or not); the default
    # group is what no group names
    tp = {n: torch.nn.Parameter(torch.from_numpy(w0[n].copy())) for n, _ in PARAMS}
    named = set(m for gr in groups for m in gr["members"])
    default = dict(members=[n for n, _ in PARAMS if n not in named], schedule=sched)
    pgs, factors, ds_index = [], [], []
    for k, gr in enumerate(groups + [default]):
        if gr.get("frozen"):
            continue
        lr = f32(gr.get("lr", c["lr"]))
        wd = f32(gr.get("weight_decay", c.get("weight_decay", 0)))
        s = gr.get("schedule", sched) if k < len(groups) else sched
        for decayed in (True, False):
            ms = [m for m in gr["members"] if (m.endswith(".bias") and no_decay & NO_DECAY_BIAS) != decayed]
            if ms:
                pgs.append(dict(params=[tp[m] for m in ms], lr=lr, weight_decay=wd if decayed else 0.0))
                factors.append(s[1] if s else (lambda t: 1.0))
                ds_index.append(k)
    trainable = [p for pg in pgs for p in pg["params"]]
    opt = torch_optim(kind, pgs, c)
    sch = torch.optim.lr_scheduler.LambdaLR(opt, factors)

    worst = 0.0
    for step in range(STEPS):
        for pg, k in zip(opt.param_groups, ds_index):
            report.check(f"{name} group {k} lr at step {step}",
                         abs(lib.ds_optim_group_lr(o, k) - pg["lr"]) / pg["lr"], 1e-6)
        for n, p in tp.items():
            gr = rng.standard_normal(p.shape).astype(np.float32)
            dgrad = ds.grad(nodes[n])
            if any(p is q for q in trainable):
                dgrad[...] = gr
                p.grad = torch.from_numpy(gr.copy())
            elif dgrad is not None:
                raise RuntimeError(f"{n} is frozen but has a gradient buffer")
        if c.get("clip_norm"):
            torch.nn.utils.clip_grad_norm_(trainable, f32(c["clip_norm"]))
        ds.ok(lib.ds_optim_step(o))
        opt.step()
        sch.step()
        err = max(ds.rel_err(ds.value(nodes[n]), tp[n].detach().numpy()) for n in tp)
        report.check(f"{name} weights after step {step + 1}", err, 1e-5)
        worst = max(worst, err)
    for n in tp:
        if not any(tp[n] is q for q in trainable):
            report.check(f"{name} {n} frozen, bit-identical",
                         0.0 if np.array_equal(ds.value(nodes[n]), w0[n]) else 1.0, 0.0)
    print(f"     {name}: max rel err over {STEPS} steps {worst:.2e}")
    lib.ds_optim_free(o)
    lib.ds_graph_free(g)
    return worst


ENC = dict(params="enc", members=["enc.weight", "enc.bias"])
HEAD_W = dict(params="head.weight", members=["head.weight"])
FROZEN = dict(params="frozen", members=["frozen.weight", "frozen.bias"], frozen=1)

CASES = [
    ("sgd momentum", ds.SGD, dict(lr=0.05, momentum=0.9, weight_decay=0.01),
     [dict(ENC, lr=0.01, weight_decay=0.1), FROZEN], NO_DECAY_BIAS),
    ("sgd nesterov", ds.SGD, dict(lr=0.05, momentum=0.8, nesterov=1, weight_decay=0.02),
     [dict(ENC, weight_decay=0.2), dict(HEAD_W, lr=0.2)], NO_DECAY_BIAS),
    ("adam", ds.ADAM, dict(lr=0.01, weight_decay=0.05),
     [dict(ENC, lr=0.003, weight_decay=0.2), FROZEN], NO_DECAY_BIAS),
    ("adamw", ds.ADAMW, dict(lr=0.02, weight_decay=0.1),
     [dict(ENC, lr=0.005, weight_decay=0.3), dict(HEAD_W, weight_decay=0.0), FROZEN], NO_DECAY_BIAS),
    ("adamw, decay on biases too", ds.ADAMW, dict(lr=0.02, weight_decay=0.1),
     [dict(ENC, lr=0.005, weight_decay=0.3)], 0),
    ("sgd momentum clip", ds.SGD, dict(lr=0.05, momentum=0.9, weight_decay=0.01, clip_norm=1.0),
     [dict(ENC, lr=0.02), FROZEN], NO_DECAY_BIAS),
    ("adam clip", ds.ADAM, dict(lr=0.01, weight_decay=0.01, clip_norm=0.5),
     [dict(HEAD_W, lr=0.05, weight_decay=0.1), FROZEN], NO_DECAY_BIAS),
]

# (ds schedule kwargs, torch factor of t)
STEP_3 = (dict(kind=ds.SCHED_STEP, step_size=3, gamma=0.5), step_factor(3, 0.5))
SCHED_CASES = [
    # the optimizer's schedule, each group from its own base rate
    ("sgd momentum step, shared", ds.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01),
     [dict(ENC, lr=0.03), FROZEN], NO_DECAY_BIAS, STEP_3),
    # each group a schedule of its own
    ("adamw step + cosine", ds.ADAMW, dict(lr=0.02, weight_decay=0.1),
     [dict(ENC, lr=0.01, schedule=(dict(kind=ds.SCHED_COSINE, t_max=8, eta_min=1e-3),
                                   cosine_factor(8, f32(1e-3), f32(0.01)))), FROZEN], NO_DECAY_BIAS, STEP_3),
    ("adam step + step", ds.ADAM, dict(lr=0.01, weight_decay=0.02),
     [dict(HEAD_W, lr=0.05, schedule=(dict(kind=ds.SCHED_STEP, step_size=2, gamma=0.3), step_factor(2, 0.3)))],
     NO_DECAY_BIAS, None),
]


def main():
    report = ds.Report("groups")
    worst = 0.0
    for i, (name, kind, c, groups, nd) in enumerate(CASES):
        worst = max(worst, run_case(report, name, kind, c, groups, nd, seed=i))
    for i, (name, kind, c, groups, nd, s) in enumerate(SCHED_CASES):
        worst = max(worst, run_case(report, name, kind, c, groups, nd, s, seed=100 + i))
    print(f"max rel err over all cases: {worst:.2e}")
    report.finish()


if __name__ == "__main__":
    main()
