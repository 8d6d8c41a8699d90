#!/usr/bin/env python3
"""meta_table.py — simulate's meta.csv as a numeric training table for the
metadata-only baselines (docs/asteroids.md): every column but `index`, the
text column `band` one-hot as band_g, band_r, band_i, and the label pasted in
as the last column `label` from y.npy (0 bogus, 1 real; the rows of meta.csv
are in x.npy's order, which its `index` column and labels.csv confirm). The
other columns are copied as they are, sentinels (-1) and indicators included,
so a model on this table sees what a model on meta.csv itself would.

    meta_table.py DIR OUT.csv        (DIR: a `deepsky simulate --out DIR`)
"""
import csv
import sys

import numpy as np


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: meta_table.py SIMDIR OUT.csv")
    d, out = sys.argv[1], sys.argv[2]
    y = np.load(f"{d}/y.npy")
    with open(f"{d}/meta.csv", newline="") as f:
        rows = list(csv.reader(f))
    with open(f"{d}/labels.csv", newline="") as f:
        lab = list(csv.DictReader(f))
    head, rows = rows[0], rows[1:]
    if len(rows) != len(y) or len(lab) != len(y):
        sys.exit(f"{d}: meta.csv has {len(rows)} rows, y.npy {len(y)}, labels.csv {len(lab)}")
    ib, ii = head.index("band"), head.index("index")
    keep = [c for c in range(len(head)) if c not in (ib, ii)]
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([head[c] for c in keep] + ["band_g", "band_r", "band_i", "label"])
        for i, r in enumerate(rows):
            if int(r[ii]) != int(lab[i]["index"]) or int(lab[i]["label"]) != int(y[i]):
                sys.exit(f"{d}: row {i} of meta.csv, labels.csv and y.npy disagree")
            w.writerow([r[c] for c in keep] + [int(r[ib] == b) for b in "gri"] + [int(y[i])])


if __name__ == "__main__":
    main()
