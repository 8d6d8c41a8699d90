#!/usr/bin/env python3
"""Print docs/robustness.md's tables from the attack.csv files that
experiments/robustness_{fashion,stamps}.sh write.

  /usr/bin/python3 experiments/robustness_table.py [OUT]   (default runs/robustness)
"""
import csv
import os
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else "runs/robustness"


def read(path):
    if not os.path.exists(path):
        return None
    return {float(r["eps"]): (float(r["clean_accuracy"]), float(r["adversarial_accuracy"]), int(r["n"]))
            for r in csv.DictReader(open(path))}


def table(prefix, models, eps, scale=None, unit=""):
    head = "| model | clean | " + " | ".join(
        f"FGSM {e:g}{unit}" if scale is None else f"FGSM {e / scale:g}σ" for e in eps) + " | " + " | ".join(
        f"PGD-20 {e:g}{unit}" if scale is None else f"PGD-20 {e / scale:g}σ" for e in eps) + " |"
    print(head)
    print("|" + "---|" * (2 + 2 * len(eps)))
    for name, label in models:
        f = read(f"{OUT}/{prefix}-{name}-fgsm/attack.csv")
        p = read(f"{OUT}/{prefix}-{name}-pgd2k/attack.csv") or read(f"{OUT}/{prefix}-{name}-pgd/attack.csv")
        if not f and not p:
            continue
        clean = next(iter(f.values()))[0] if f else float("nan")
        cells = [f"{100 * f[e][1]:.1f}" if f and e in f else "—" for e in eps]
        cells += [f"{100 * p[e][1]:.1f}" if p and e in p else "—" for e in eps]
        pc = f" ({100 * next(iter(p.values()))[0]:.1f} on PGD's {next(iter(p.values()))[2]:,})" if p else ""
        print(f"| {label} | {100 * clean:.1f}{pc} | " + " | ".join(cells) + " |")


print("Fashion-MNIST, LeNet, accuracy % (FGSM: 10,000 test images; PGD-20: the first 2,000)\n")
table("lenet", [("clean", "trained clean"), ("fgsm", "FGSM-trained (eps 0.1, α 0.5)"),
                ("pgd", "PGD-5-trained (eps 0.1, α 0)")], [0.05, 0.1, 0.2])
print("\nReal/bogus stamps, the demo's CNN, accuracy % (σ = 25 e⁻)\n")
table("realbogus", [("clean", "trained clean (demo)"), ("fgsm", "FGSM-trained (eps 3σ, α 0.5)"),
                    ("pgd", "PGD-3-trained (eps 3σ, α 0)")], [25.0, 75.0, 250.0], scale=25.0)
