#!/usr/bin/env python3
"""Medians of benchmark runs interleaved side by side (the machines are noisy).

    medians.py [--ratio NUM DEN LABEL]... [--efficiency ONE TWO LABEL]... KEY=SAMPLES_PER_SECOND...

Each KEY=VALUE is one run; prints every key's median and runs, then for each --ratio the median of NUM over
the median of DEN, and for each --efficiency the scaling efficiency of TWO ranks over ONE (TWO ÷ 2·ONE).
"""
import statistics
import sys

args, runs, comparisons = sys.argv[1:], {}, []
while args:
    if args[0] in ("--ratio", "--efficiency"):
        comparisons.append(tuple(args[:4]))
        args = args[4:]
    else:
        key, value = args.pop(0).split("=")
        runs.setdefault(key, []).append(float(value))
median = {key: statistics.median(values) for key, values in runs.items()}
for key, values in runs.items():
    print(f"{key}: median {median[key]:.1f} samples/s over {len(values)} runs ({', '.join(f'{v:.0f}' for v in values)})")
for kind, first, second, label in comparisons:
    if kind == "--ratio":
        print(f"{label}: {median[first] / median[second]:.2f}x samples/s (medians)")
    else:
        print(f"{label}: {median[second] / (2 * median[first]):.0%} scaling efficiency (medians)")
