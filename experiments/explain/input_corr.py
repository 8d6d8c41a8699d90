"""input_corr.py — how much of a map is the input itself: Spearman's rank
correlation of |x| with the |map| of the trained model and of the fully
re-initialised one, mean over the 16 images explain --sanity keeps
(DIR/sanity_maps.npy, DIR/sanity_inputs.npy). Ties get their mean rank, as
ds_spearman.
  /usr/bin/python3 experiments/explain/input_corr.py runs/explain/fmnist-sanity ..."""
import sys

import numpy as np

METHODS = ["saliency", "gradxinput", "smoothgrad", "integrated-gradients", "gradcam", "guided-backprop", "deconvnet"]


def ranks(a):
    o = np.argsort(a, kind="stable")
    s, r, i = a[o], np.empty(len(a)), 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and s[j + 1] == s[i]:
            j += 1
        r[o[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return r


def spearman(a, b):
    return np.corrcoef(ranks(a), ranks(b))[0, 1]


for d in sys.argv[1:]:
    m = np.load(f"{d}/sanity_maps.npy")  # [stages, methods, keep, H, W]
    x = np.abs(np.load(f"{d}/sanity_inputs.npy")).max(1)
    print(f"{d}: {m.shape[2]} images, {100 * (x == 0).mean():.0f} % of their pixels exactly 0")
    print(f"  {'method':22s} {'trained':>8s} {'all random':>10s}   (Spearman of |map| with |x|)")
    for j, name in enumerate(METHODS[:m.shape[1]]):
        t = np.nanmean([spearman(x[i].ravel(), np.abs(m[0, j, i]).ravel()) for i in range(m.shape[2])])
        r = np.nanmean([spearman(x[i].ravel(), np.abs(m[-1, j, i]).ravel()) for i in range(m.shape[2])])
        print(f"  {name:22s} {t:8.3f} {r:10.3f}")
