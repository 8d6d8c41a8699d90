"""Optimizer parity: ten steps of each deepsky optimizer against torch.optim
(foreach=False) on the same initial weights and the same random gradients,
comparing the weights after every step."""
import warnings

import numpy as np
import torch

import ds

torch.set_num_threads(2)
warnings.filterwarnings("ignore")  # SequentialLR's step(0) deprecation notice

SHAPES = [(3, 5), (7,), (2, 1, 3)]
STEPS = 10
f32 = lambda x: float(np.float32(x))


def torch_optim(kind, params, c):
    lr = f32(c["lr"])
    mom, wd = f32(c.get("momentum", 0)), f32(c.get("weight_decay", 0))
    betas = (f32(c.get("beta1", 0.9)), f32(c.get("beta2", 0.999)))
    if kind == ds.SGD:
        return torch.optim.SGD(params, lr=lr, momentum=mom, weight_decay=wd,
                               nesterov=bool(c.get("nesterov", 0)), foreach=False)
    if kind == ds.ADAM:
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=f32(1e-8), weight_decay=wd,
                                foreach=False)
    if kind == ds.ADAMW:
        return torch.optim.AdamW(params, lr=lr, betas=betas, eps=f32(1e-8), weight_decay=wd,
                                 foreach=False)
    return torch.optim.RMSprop(params, lr=lr, alpha=f32(c.get("alpha", 0.99)), eps=f32(1e-8),
                               weight_decay=wd, momentum=mom, foreach=False)


def torch_schedule(opt, s):
    """The torch.optim.lr_scheduler equivalent of a ds schedule dict (or None)."""
    if s is None:
        return None
    S = torch.optim.lr_scheduler
    if s["kind"] == ds.SCHED_STEP:
        base = S.StepLR(opt, step_size=s["step_size"], gamma=f32(s["gamma"]))
    else:
        base = S.CosineAnnealingLR(opt, T_max=s["t_max"], eta_min=f32(s["eta_min"]))
    w = s.get("warmup_steps", 0)
    if not w:
        return base
    warm = S.LinearLR(opt, start_factor=f32(s["warmup_start"]), end_factor=1.0, total_iters=w)
    return S.SequentialLR(opt, schedulers=[warm, base], milestones=[w])


def run_case(report, name, kind, c, sched=None, seed=0):
    rng = np.random.default_rng(seed)
    w0 = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]

    g = ds.lib.ds_graph_new(1)
    ds.check(ds.lib.ds_input(g, b"x", ds.shape(1, 1)))
    zeros = ds.Init(ds.INIT["zeros"], 0, 0)
    nodes = [ds.check(ds.lib.ds_param(g, f"p{i}".encode(), ds.shape(*s), zeros))
             for i, s in enumerate(SHAPES)]
    ds.ok(ds.lib.ds_graph_compile(g))
    for n, w in zip(nodes, w0):
        ds.value(n)[...] = w

    cfg = ds.OptimCfg()
    cfg.kind = kind
    for k, v in c.items():
        setattr(cfg, k, v)
    if sched:
        for k, v in sched.items():
            setattr(cfg.schedule, k, v)
    o = ds.lib.ds_optim_new(g, cfg)
    if not o:
        raise RuntimeError(ds.error())

    tp = [torch.nn.Parameter(torch.from_numpy(w.copy())) for w in w0]
    opt = torch_optim(kind, tp, c)
    sch = torch_schedule(opt, sched)

    worst = 0.0
    for step in range(STEPS):
        lr_t = opt.param_groups[0]["lr"]
        lr_ds = ds.lib.ds_optim_lr(o)
        report.check(f"{name} lr at step {step}", abs(lr_ds - lr_t) / lr_t, 1e-6)
        for n, p in zip(nodes, tp):
            gr = rng.standard_normal(p.shape).astype(np.float32)
            ds.grad(n)[...] = gr
            p.grad = torch.from_numpy(gr.copy())
        if c.get("clip_norm"):
            torch.nn.utils.clip_grad_norm_(tp, f32(c["clip_norm"]))
        ds.ok(ds.lib.ds_optim_step(o))
        opt.step()
        if sch:
            sch.step()
        err = max(ds.rel_err(ds.value(n), p.detach().numpy()) for n, p in zip(nodes, tp))
        report.check(f"{name} weights after step {step + 1}", err, 1e-5)
        worst = max(worst, err)
    print(f"     {name}: max rel err over {STEPS} steps {worst:.2e}")
    ds.lib.ds_optim_free(o)
    ds.lib.ds_graph_free(g)
    return worst


CASES = [
    ("sgd momentum", ds.SGD, dict(lr=0.05, momentum=0.9)),
    ("sgd momentum wd", ds.SGD, dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("sgd nesterov", ds.SGD, dict(lr=0.05, momentum=0.9, nesterov=1)),
    ("sgd nesterov wd", ds.SGD, dict(lr=0.05, momentum=0.8, nesterov=1, weight_decay=0.05)),
    ("adam", ds.ADAM, dict(lr=0.01)),  # zero betas/eps: the defaults
    ("adam wd", ds.ADAM, dict(lr=0.02, beta1=0.8, beta2=0.99, weight_decay=0.05)),
    ("adamw no wd", ds.ADAMW, dict(lr=0.01)),
    ("adamw wd", ds.ADAMW, dict(lr=0.02, weight_decay=0.1)),
    ("rmsprop", ds.RMSPROP, dict(lr=0.01)),
    ("rmsprop momentum", ds.RMSPROP, dict(lr=0.005, momentum=0.9, alpha=0.9)),
    ("rmsprop wd momentum", ds.RMSPROP, dict(lr=0.01, momentum=0.5, weight_decay=0.05)),
    ("sgd momentum clip", ds.SGD, dict(lr=0.05, momentum=0.9, clip_norm=1.5)),
    ("adam clip", ds.ADAM, dict(lr=0.01, clip_norm=0.5)),
]

SCHED_CASES = [
    ("sgd momentum warm-up+step", ds.SGD, dict(lr=0.1, momentum=0.9),
     dict(kind=ds.SCHED_STEP, step_size=3, gamma=0.5, warmup_steps=3, warmup_start=0.1)),
    ("adam warm-up+cosine", ds.ADAM, dict(lr=0.02),
     dict(kind=ds.SCHED_COSINE, t_max=8, eta_min=1e-3, warmup_steps=2, warmup_start=0.2)),
    ("adamw cosine", ds.ADAMW, dict(lr=0.02, weight_decay=0.1),
     dict(kind=ds.SCHED_COSINE, t_max=10, eta_min=0.0)),
    ("rmsprop step", ds.RMSPROP, dict(lr=0.01, weight_decay=0.01),
     dict(kind=ds.SCHED_STEP, step_size=4, gamma=0.3)),
]


def main():
    report = ds.Report("optim")
    worst = 0.0
    for i, (name, kind, c) in enumerate(CASES):
        worst = max(worst, run_case(report, name, kind, c, seed=i))
    for i, (name, kind, c, s) in enumerate(SCHED_CASES):
        worst = max(worst, run_case(report, name, kind, c, s, seed=100 + i))
    print(f"max rel err over all cases: {worst:.2e}")
    report.finish()


if __name__ == "__main__":
    main()
