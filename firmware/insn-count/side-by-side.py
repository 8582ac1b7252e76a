#!/usr/bin/env python3
"""Joins two per-op tables printed by qemu-counted.sh (ours, then CMSIS-NN's) into one:
instructions per op on each side and their ratio.

  side-by-side.py ours.txt cmsis.txt
"""
import re
import sys


def rows(path):
    out = {}
    for line in open(path):
        m = re.match(r"\| (\d+) \| ([^|]+) \| (\d+) \| (\d+) \|", line)
        if m:
            out[int(m.group(1))] = (m.group(2).strip(), int(m.group(3)), int(m.group(4)))
    return out


ours, theirs = rows(sys.argv[1]), rows(sys.argv[2])
print("| op | layer | MACs | ours | CMSIS-NN | ours / CMSIS-NN |")
print("|---:|---|---:|---:|---:|---:|")
tot = [0, 0, 0]
for i in sorted(ours):
    name, macs, a = ours[i]
    b = theirs[i][2]
    tot = [tot[0] + macs, tot[1] + a, tot[2] + b]
    print(f"| {i} | {name} | {macs:,} | {a:,} | {b:,} | {a / b:.2f} |")
print(f"| | all ops | {tot[0]:,} | {tot[1]:,} | {tot[2]:,} | {tot[1] / tot[2]:.2f} |")
