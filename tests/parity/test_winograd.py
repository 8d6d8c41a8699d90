"""Parity with PyTorch of the Winograd convolutions (src/ops/winograd.c):
3x3 stride-1 conv2d forward, dx, dW and db under DS_CONV_ALGO=winograd2,
winograd4, ocv (the direct kernel), auto (chosen per layer by timing) and
unset (the default rule),
on odd sizes, padding 0/1/2, channel counts that are not multiples of 16
and batches 1, 7 and 33 (relative error <= 1e-4, test_ops.py's bound; the
reference is float64)."""
import os

import ds
import test_ops as T

T.report = ds.Report("winograd parity")
SHAPES = [  # (x shape, out channels, pad)
    ((1, 3, 7, 9), 5, 1), ((7, 17, 11, 13), 19, 0), ((7, 33, 14, 15), 40, 1),
    ((1, 64, 7, 7), 64, 1), ((3, 5, 5, 6), 18, 2), ((33, 8, 9, 10), 12, 1),
    ((17, 32, 9, 8), 64, 1),  # the default rule's Winograd (forward and dx)
]
SHAPES5 = [((17, 16, 9, 10), 24, 2), ((2, 3, 7, 6), 5, 1)]  # 5x5: F(2x2,5x5)

if __name__ == "__main__":
    for algo in ("winograd2", "winograd4", "ocv", "auto", None):
        if algo:
            os.environ["DS_CONV_ALGO"] = algo
        else:
            os.environ.pop("DS_CONV_ALGO", None)
        for xs, k, pad in SHAPES:
            T.conv_case(f"{algo or 'default'} conv2d {list(xs)} -> {k} 3x3 pad {pad}", xs, (k, xs[1], 3, 3), True,
                        pad=pad)
        for xs, k, pad in SHAPES5:
            T.conv_case(f"{algo or 'default'} conv2d {list(xs)} -> {k} 5x5 pad {pad}", xs, (k, xs[1], 5, 5), True,
                        pad=pad)
    print(f"max rel err {T.worst[0]:.2e} ({T.worst[1]})")
    T.report.finish()
