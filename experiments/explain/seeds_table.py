"""seeds_table.py — the randomisation test over three re-initialisation
seeds (explain --sanity --seed 0, 1, 2): mean Spearman per method after the
output layer alone and with every layer random, as a markdown table.
  /usr/bin/python3 experiments/explain/seeds_table.py runs/explain"""
import csv
import sys

M = ["saliency", "gradxinput", "smoothgrad", "integrated-gradients", "gradcam", "guided-backprop", "deconvnet"]
R = sys.argv[1]
for d, name in [("fmnist", "Fashion-MNIST"), ("stamps", "real/bogus")]:
    runs = [f"{R}/{d}-sanity/sanity.csv"] + [f"{R}/{d}-sanity-seed{s}/sanity.csv" for s in (1, 2)]
    tabs = [list(csv.DictReader(open(r))) for r in runs]
    last = max(int(r["randomized_layers"]) for r in tabs[0])
    print(f"| {name}: randomised | " + " | ".join(M) + " |")
    print("|---" * (len(M) + 1) + "|")
    for st in [1, last]:
        stage = [r["stage"] for r in tabs[0] if int(r["randomized_layers"]) == st][0]
        cells = []
        for m in M:
            v = [float(next(r for r in t if int(r["randomized_layers"]) == st and r["method"] == m)["spearman_mean"])
                 for t in tabs]
            cells.append(" / ".join(f"{x:.2f}".replace("-", "−") for x in v))
        print(f"| {stage} | " + " | ".join(cells) + " |")
    print()
