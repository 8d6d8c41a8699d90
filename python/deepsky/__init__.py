"""deepsky from Python: load a checkpoint and predict on NumPy arrays
(libdeepsky through ctypes), its parameters as arrays, and train/explain/
attack through the deepsky program. docs/python.md."""
from ._lib import DeepskyError, lib_path
from .cli import attack, executable, explain, run, train
from .model import Model

load = Model.load

__all__ = ["Model", "load", "train", "explain", "attack", "run", "executable", "DeepskyError", "lib_path"]
