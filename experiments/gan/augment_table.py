#!/usr/bin/env python3
"""The table of experiments/gan/augment.sh: test error, ROC AUC, MDR at 1 %
FPR and the real class's recall at 0.5, per variant, from the eval JSON the
script leaves (OUT/VARIANT.json; more seeds as OUT/VARIANT_sS.json).

  /usr/bin/python3 experiments/gan/augment_table.py runs/gan/aug
"""
import glob
import json
import os
import statistics
import sys

NAMES = [("none", "no augmentation"), ("dihedral", "plain augmentation (dihedral: the 8 symmetries)"),
         ("gan", "+ 5,000 cGAN \"real\" stamps"), ("gan_dihedral", "+ 5,000 cGAN \"real\" stamps and dihedral"),
         ("gan_bal", "+ 5,000 stamps of the balanced cGAN"),
         ("gan_bal_dihedral", "+ 5,000 stamps of the balanced cGAN and dihedral")]


def cell(vals, pct=True, digits=1):
    f = (lambda v: 100 * v) if pct else (lambda v: v)
    if len(vals) == 1:
        return f"{f(vals[0]):.{digits}f}"
    return f"{f(statistics.mean(vals)):.{digits}f} ± {f(statistics.stdev(vals)):.{digits}f}"


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "runs/gan/aug"
    print("| training set | seeds | test error % | ROC AUC | MDR at 1 % FPR, % | real recall at 0.5, % |")
    print("|---|---|---|---|---|---|")
    for key, label in NAMES:
        files = [os.path.join(out, key + ".json")] + sorted(glob.glob(os.path.join(out, key + "_s*.json")))
        rows = []
        for f in files:
            try:
                rows.append(json.load(open(f)))
            except (OSError, ValueError):
                pass
        if not rows:
            continue
        err = [1 - r["accuracy"] for r in rows]
        auc = [r["roc_auc"] for r in rows]
        mdr = [r["mdr_at_fpr1"] for r in rows]
        rec = [r["classes"][1]["recall"] for r in rows]
        print(f"| {label} | {len(rows)} | {cell(err, digits=2)} | {cell(auc, False, 4)} | {cell(mdr)} | {cell(rec)} |")


if __name__ == "__main__":
    main()
