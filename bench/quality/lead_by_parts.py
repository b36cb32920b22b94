#!/usr/bin/env python3
"""Zero-shot accuracy by ensemble and by the melodic parts of each clip (offline tooling).

    python3 bench/quality/lead_by_parts.py EVAL_DIR/predictions.csv SET/manifest.jsonl

Joins `synclap eval --task zeroshot` predictions with the set's manifest and prints, per ensemble and per
kind of band (one lead; two leads, as sets made before the counter-line had; a lead and a counter-line), how
many clips were classified right, and how many wrong answers named the clip's other melodic instrument.
"""
import collections
import csv
import json
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    labels = {}
    with open(sys.argv[2]) as f:
        for line in f:
            d = json.loads(line)
            labels[d["audio"].split("/")[-1]] = d["labels"]
    acc = collections.defaultdict(lambda: [0, 0])
    other = 0
    with open(sys.argv[1]) as f:
        for r in csv.DictReader(f):
            lab = labels[r["audio"].split("/")[-1]]
            parts = lab.get("parts", [])
            leads = [p["instrument"] for p in parts if p["role"] == "lead"]
            counters = [p["instrument"] for p in parts if p["role"] == "counter"]
            kind = "two leads" if len(leads) > 1 else "lead + counter" if counters else "one lead"
            ok = r["correct"] in ("1", "true")
            acc[(lab["ensemble"], kind)][0] += ok
            acc[(lab["ensemble"], kind)][1] += 1
            if not ok and r["predicted"] in (leads[1:] + counters):
                other += 1
    by_kind = collections.defaultdict(lambda: [0, 0])
    for (ens, kind), (right, n) in sorted(acc.items()):
        print(f"{ens:11s} {kind:15s} {right:4d} / {n:4d} = {100.0 * right / n:5.1f} %")
        by_kind[kind][0] += right
        by_kind[kind][1] += n
    for kind, (right, n) in sorted(by_kind.items()):
        print(f"{'all':11s} {kind:15s} {right:4d} / {n:4d} = {100.0 * right / n:5.1f} %")
    print(f"wrong answers naming the clip's other melodic instrument: {other}")


if __name__ == "__main__":
    main()
