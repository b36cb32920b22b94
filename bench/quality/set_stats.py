#!/usr/bin/env python3
"""How a synthetic set's instruments and meters were drawn (offline tooling).

    python3 bench/quality/set_stats.py SET [VOCAB]      (VOCAB: configs/vocab/default.json)

Prints, from SET/manifest.jsonl and the vocabulary's typical instruments and roles:
  - for the balanced clips (labels "instrumentation": "balanced"): the share of their parts (drums aside) whose
    instrument is typical of the clip's genre, against the share an even draw among the instruments that can play
    each part's role would give, and their most and least used instruments;
  - how many clips have each lead (the rarest), and how many leads the test split has;
  - the time signatures of each genre.
"""
import collections
import json
import os
import sys


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    here = os.path.dirname(os.path.abspath(__file__))
    vocab_path = sys.argv[2] if len(sys.argv) == 3 else os.path.join(here, "../../configs/vocab/default.json")
    with open(vocab_path) as f:
        vocab = json.load(f)
    typical = {g["name"]: set(g.get("typical_instruments", [])) for g in vocab["genres"]}
    roles = {i["name"]: i.get("roles", []) for i in vocab["instruments"]}
    with open(os.path.join(sys.argv[1], "manifest.jsonl")) as f:
        clips = [json.loads(line) for line in f]

    balanced = [c["labels"] for c in clips if c["labels"].get("instrumentation") == "balanced"]
    parts = typical_parts = 0
    even = 0.0
    used = collections.Counter()
    for lab in balanced:
        for p in lab["parts"]:
            if p["role"] == "drums":
                continue
            role = "lead" if p["role"] == "counter" else p["role"]  # a counter-line is drawn among the leads
            can = [name for name, r in roles.items() if role in r]
            parts += 1
            typical_parts += p["instrument"] in typical[lab["genre"]]
            even += sum(name in typical[lab["genre"]] for name in can) / len(can)
            used[p["instrument"]] += 1
    print(f"{len(clips)} clips, {len(balanced)} balanced")
    if parts:
        print(f"balanced clips' parts typical of the clip's genre: {100.0 * typical_parts / parts:.1f} % "
              f"(an even draw: {100.0 * even / parts:.1f} %), over {parts} parts")
        print(f"  most used: {used.most_common(5)}")
        print(f"  least used: {used.most_common()[-5:]}")

    leads = collections.Counter(c["labels"]["lead"] for c in clips if "lead" in c["labels"])
    test_leads = {c["labels"]["lead"] for c in clips if c["split"] == "test" and "lead" in c["labels"]}
    print(f"leads: {len(leads)}, in the test split {len(test_leads)}; rarest: {sorted(leads.items(), key=lambda x: x[1])[:6]}")

    meters = collections.defaultdict(collections.Counter)
    for c in clips:
        meters[c["labels"]["genre"]][c["labels"]["time_signature"]] += 1
    print("time signatures by genre:")
    for g, m in sorted(meters.items()):
        print(f"  {g:14s} " + ", ".join(f"{k} {n}" for k, n in sorted(m.items())))


if __name__ == "__main__":
    main()
