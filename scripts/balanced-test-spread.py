#!/usr/bin/env python3
"""What balancing a test set by down-sampling does to the figure it gives.

Reads `fer eval --json` (its confusion matrix) and draws class-balanced subsets of the test
set (every class cut to the rarest class's count, as "balance the test set too" does),
scoring each from the per-class hit counts (a hypergeometric draw per class). Prints the
full set's plain and balanced accuracy and the spread of the balanced subsets' accuracy.

    fer eval --model models/edge.fer --data ../shared/data/fer2013/public_test --json > eval.json
    python3 scripts/balanced-test-spread.py eval.json [--draws 10000] [--seed 42]
"""
import argparse
import json
import random
import statistics


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("eval_json")
    ap.add_argument("--draws", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    with open(a.eval_json) as f:
        d = json.load(f)
    confusion, labels = d["confusion"], d["labels"]
    support = [sum(row) for row in confusion]
    hits = [confusion[i][i] for i in range(len(labels))]
    present = [i for i, n in enumerate(support) if n > 0]
    m = min(support[i] for i in present)
    rng = random.Random(a.seed)
    accs = []
    for _ in range(a.draws):
        correct = 0
        for i in present:
            # m of the class's images, without replacement: how many of them were right.
            pool = [1] * hits[i] + [0] * (support[i] - hits[i])
            correct += sum(rng.sample(pool, m))
        accs.append(correct / (m * len(present)))
    accs.sort()
    total = sum(support)
    plain = sum(hits) / total
    balanced = statistics.mean(hits[i] / support[i] for i in present)
    lo, hi = accs[int(0.025 * a.draws)], accs[int(0.975 * a.draws) - 1]
    print(f"full test set: {total} images; accuracy {100 * plain:.2f}%, balanced accuracy {100 * balanced:.2f}%")
    print(f"balanced subsets: {m} per class, {m * len(present)} images ({100 * m * len(present) / total:.1f}% of the set), {a.draws} draws")
    print(f"  accuracy mean {100 * statistics.mean(accs):.2f}%, std {100 * statistics.stdev(accs):.2f} points, 95% of draws in [{100 * lo:.2f}%, {100 * hi:.2f}%]")


if __name__ == "__main__":
    main()
