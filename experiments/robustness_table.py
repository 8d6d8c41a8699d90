#!/usr/bin/env python3
"""Print docs/robustness.md's tables from the attack.csv files that
experiments/robustness_{fashion,stamps}.sh write.

  /usr/bin/python3 experiments/robustness_table.py [OUT]   (default runs/robustness)
"""
import csv
import os
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else "runs/robustness"


def read(path, recall=None):
    """eps -> (clean accuracy, adversarial accuracy, n[, clean recall, adversarial recall of class `recall`])"""
    if not os.path.exists(path):
        return None
    out = {}
    for r in csv.DictReader(open(path)):
        v = (float(r["clean_accuracy"]), float(r["adversarial_accuracy"]), int(r["n"]))
        if recall:
            k = next((k for k in recall if f"adversarial_recall_{k}" in r), None)
            v += (float(r[f"clean_recall_{k}"]), float(r[f"adversarial_recall_{k}"])) if k else (float("nan"),) * 2
        out[float(r["eps"])] = v
    return out


def table(prefix, models, eps, scale=None, unit="", recall=None):
    head = "| model | clean | " + " | ".join(
        f"FGSM {e:g}{unit}" if scale is None else f"FGSM {e / scale:g}σ" for e in eps) + " | " + " | ".join(
        f"PGD-20 {e:g}{unit}" if scale is None else f"PGD-20 {e / scale:g}σ" for e in eps) + " |"
    print(head)
    print("|" + "---|" * (2 + 2 * len(eps)))
    for name, label in models:
        f = read(f"{OUT}/{prefix}-{name}-fgsm/attack.csv", recall)
        p = read(f"{OUT}/{prefix}-{name}-pgd2k/attack.csv", recall) or read(f"{OUT}/{prefix}-{name}-pgd/attack.csv", recall)
        if not f and not p:
            continue

        def cell(t, e):
            if not t or e not in t:
                return "—"
            return f"{100 * t[e][1]:.1f}" + (f" ({100 * t[e][4]:.1f})" if recall else "")
        first = next(iter(f.values())) if f else None
        clean = f"{100 * first[0]:.1f}" + (f" ({100 * first[3]:.1f})" if recall else "") if first else "—"
        cells = [cell(f, e) for e in eps] + [cell(p, e) for e in eps]
        pf = next(iter(p.values())) if p else None
        pc = f"; {100 * pf[0]:.1f} on PGD's {pf[2]:,}" if pf and first and pf[2] != first[2] else ""
        print(f"| {label} | {clean}{pc} | " + " | ".join(cells) + " |")


print("Fashion-MNIST, LeNet, accuracy % (FGSM: 10,000 test images; PGD-20: the first 2,000)\n")
table("lenet", [("clean", "trained clean"), ("fgsm", "FGSM-trained (eps 0.1, α 0.5)"),
                ("pgd", "PGD-5-trained (eps 0.1, α 0)")], [0.05, 0.1, 0.2])
print("\nReal/bogus stamps, the demo's CNN, accuracy % (in brackets: recall of the real class, %; σ = 25 e⁻;"
      " the first 2,000 of the demo's 5,438 test stamps)\n")
table("realbogus", [("clean", "trained clean (demo)"), ("fgsm", "FGSM-trained (eps 3σ, α 0.5)"),
                    ("pgd", "PGD-3-trained (eps 3σ, α 0)"), ("pgd1", "PGD-3-trained (eps 1σ, α 0)")], [25.0, 75.0, 250.0], scale=25.0,
      recall=["real", "1"])
