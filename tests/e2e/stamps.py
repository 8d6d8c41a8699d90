"""Toy stamps for the end-to-end tests: three classes of 1x8x8 images, a
bright row (0), column (1) or diagonal (2) over Gaussian noise."""
import numpy as np


def make(rng, n, noise, signal):
    """n stamps [n,1,8,8] float32 and their labels [n] float32, drawn from rng."""
    y = rng.integers(0, 3, n)
    x = rng.normal(0, noise, (n, 1, 8, 8)).astype(np.float32)
    for i, c in enumerate(y):
        k = rng.integers(1, 7)
        if c == 0: x[i, 0, k, :] += signal
        elif c == 1: x[i, 0, :, k] += signal
        else: x[i, 0].flat[::9] += signal
    return x, y.astype(np.float32)
