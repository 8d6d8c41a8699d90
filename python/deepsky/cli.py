"""train/explain/attack: the built `deepsky` command line, run as a subprocess
with the same options (the library has no one-call trainer; the CLI's is
the tested one, with its checkpoints, metrics and report)."""
import os
import shutil
import subprocess
import tempfile

import numpy as np

from ._lib import DeepskyError, lib_path


def executable():
    """The deepsky program: $DEEPSKY_CLI, the one beside libdeepsky.so, or the one on PATH."""
    env = os.environ.get("DEEPSKY_CLI")
    if env:
        return env
    beside = os.path.join(os.path.dirname(lib_path), "deepsky")
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("deepsky")
    if not found:
        raise DeepskyError("the deepsky program was not found beside %s nor on PATH; set DEEPSKY_CLI" % lib_path)
    return found


def _options(opts):
    """epochs=3 -> --epochs 3; val_split=0.1 -> --val-split 0.1; quiet=True -> --quiet;
    a list repeats the option (data=[...] for several inputs); None and False are left out."""
    args = []
    for key, val in opts.items():
        flag = "--" + key.replace("_", "-")
        if val is None or val is False:
            continue
        if val is True:
            args.append(flag)
            continue
        for v in val if isinstance(val, (list, tuple)) else [val]:
            args += [flag, os.fspath(v) if isinstance(v, os.PathLike) else str(v)]
    return args


def run(command, *args, **opts):
    """Run `deepsky COMMAND ARGS... --OPTIONS`; returns its standard output.

    A failure raises DeepskyError with the program's message (its
    "deepsky: ..." line)."""
    argv = [executable(), command] + [os.fspath(a) for a in args] + _options(opts)
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        msg = [l for l in r.stderr.splitlines() if l.startswith("deepsky:")] or r.stderr.strip().splitlines()[-1:]
        raise DeepskyError("%s (exit %d)" % ("; ".join(msg) or " ".join(argv), r.returncode))
    return r.stdout


def _spec(data, tmp, name):
    """A data spec from a string, or from arrays (x, y): written as NPY to tmp."""
    if data is None or isinstance(data, (str, os.PathLike)):
        return data
    x, y = data
    xp, yp = os.path.join(tmp, name + "_x.npy"), os.path.join(tmp, name + "_y.npy")
    np.save(xp, np.ascontiguousarray(x, dtype=np.float32))
    np.save(yp, np.ascontiguousarray(y, dtype=np.float32))
    return "npy:%s,%s" % (xp, yp)


def train(model, data, out, val=None, test=None, quiet=True, **opts):
    """`deepsky train MODEL --data DATA --out OUT [options]`; returns OUT/best.safetensors's Model.

    model: a model file (.cfg); data, val, test: a data spec as the CLI takes
    ("npy:x.npy,y.npy", "fits:DIR", "fashion-mnist") or a pair of arrays
    (x [n, ...], y [n] class indices), saved as NPY for the run. Other
    options as the CLI's: epochs=, batch=, lr=, seed=, val_split=, resume=,
    init=, micro_batches=, ... (see `deepsky train --help`).
    """
    from .model import Model
    with tempfile.TemporaryDirectory(prefix="deepsky-train-") as tmp:
        run("train", model, data=_spec(data, tmp, "data"), val=_spec(val, tmp, "val"),
            test=_spec(test, tmp, "test"), out=out, quiet=quiet, **opts)
    return Model.load(os.path.join(os.fspath(out), "best.safetensors"))


def explain(checkpoint, *inputs, **opts):
    """`deepsky explain CKPT INPUT... [options]` (method=, out=, data=, ...); returns its output text."""
    return run("explain", checkpoint, *inputs, **opts)


def attack(checkpoint, *inputs, **opts):
    """`deepsky attack CKPT ... [options]`; returns its output text."""
    return run("attack", checkpoint, *inputs, **opts)
