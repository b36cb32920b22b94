#!/usr/bin/env python3
"""Zero-shot accuracy by slices of the test clips (offline tooling).

    python3 bench/quality/slices.py EVAL_DIR/predictions.csv SET/manifest.jsonl

Joins `synclap eval --task zeroshot` predictions (genre, lead, ...) with the set's manifest and prints how many
clips were classified right:
  - by ensemble and by the clip's melodic parts (one lead; two leads, as sets made before the counter-line had;
    a lead and a counter-line), and how many wrong answers named the clip's other melodic instrument;
  - by instrumentation (genre-typical or balanced) and ensemble;
  - solo clips by the solo instrument's role (lead, or chords: a keyboard or guitar playing the whole song);
  - by how many training clips have the clip's label value (the label the predictions classify; e.g. rare leads);
  - balanced clips of duos to full bands by their label value (which genres the instruments alone carried);
  - solos and bands of the genres whose vocabulary entry names their ensemble sizes (the beat genres of the
    default vocabulary, never solo with synth --genre-ensembles) and of the others; the vocabulary is the one
    SET/dataset.json names;
  - the commonest wrong answers in solo clips, true -> predicted, with the solo instruments.
"""
import collections
import csv
import json
import os
import sys


def table(title, acc):
    print(title)
    total = [0, 0]
    for key, (right, n) in sorted(acc.items()):
        name = " / ".join(key) if isinstance(key, tuple) else key
        print(f"  {name:32s} {right:4d} / {n:4d} = {100.0 * right / n:5.1f} %")
        total[0] += right
        total[1] += n
    return total


def genres_with_ensembles(manifest):
    """Genres whose entry in the set's vocabulary (SET/dataset.json "vocabulary") lists ensemble sizes; None if the
    vocabulary cannot be read."""
    try:
        with open(os.path.join(os.path.dirname(manifest), "dataset.json")) as f:
            vocab_path = json.load(f)["vocabulary"]
        with open(vocab_path) as f:
            return {g["name"] for g in json.load(f)["genres"] if g.get("ensembles")}
    except (OSError, KeyError, ValueError):
        return None


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    labels, train_values = {}, []
    with open(sys.argv[2]) as f:
        for line in f:
            d = json.loads(line)
            labels[d["audio"].split("/")[-1]] = d["labels"]
            if d["split"] == "train":
                train_values.append(d["labels"])
    with open(sys.argv[1]) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"{sys.argv[1]}: no predictions")
    # The label the predictions classify: the manifest key whose value is every row's true label.
    first = labels[rows[0]["audio"].split("/")[-1]]
    keys = [k for k, v in first.items() if isinstance(v, str) and v == rows[0]["label"]]
    keys = [k for k in keys if all(labels[r["audio"].split("/")[-1]].get(k) == r["label"] for r in rows)]
    label = keys[0] if keys else None
    in_train = collections.Counter(v.get(label) for v in train_values) if label else collections.Counter()

    by_band, by_instr, solo, by_count, balanced_bands, by_sizes = (collections.defaultdict(lambda: [0, 0])
                                                                   for _ in range(6))
    sized = genres_with_ensembles(sys.argv[2])
    solo_wrong = collections.defaultdict(list)
    other = 0
    for r in rows:
        lab = labels[r["audio"].split("/")[-1]]
        parts = lab.get("parts", [])
        leads = [p["instrument"] for p in parts if p["role"] == "lead"]
        counters = [p["instrument"] for p in parts if p["role"] == "counter"]
        kind = "two leads" if len(leads) > 1 else "lead + counter" if counters else "one lead"
        ok = r["correct"] in ("1", "true")
        slices = [(by_band, (lab["ensemble"], kind)), (by_instr, (lab.get("instrumentation", "-"), lab["ensemble"]))]
        if lab["ensemble"] == "solo" and parts:
            slices.append((solo, (lab.get("instrumentation", "-"), parts[0]["role"])))
            if r["correct"] not in ("1", "true"):
                solo_wrong[(r["label"], r["predicted"])].append(f"{parts[0]['instrument']} ({parts[0]['role']})")
        elif lab.get("instrumentation") == "balanced":
            slices.append((balanced_bands, r["label"]))
        if sized is not None and "genre" in lab:
            slices.append((by_sizes, ("sized genres" if lab["genre"] in sized else "other genres",
                                      "solo" if lab["ensemble"] == "solo" else "band")))
        if label:
            n = in_train[r["label"]]
            slices.append((by_count, "< 60" if n < 60 else "60-119" if n < 120 else "120-199" if n < 200 else ">= 200"))
        for acc, key in slices:
            acc[key][0] += ok
            acc[key][1] += 1
        if not ok and r["predicted"] in (leads[1:] + counters):
            other += 1
    print(f"{len(rows)} clips; label: {label or '(not found in the manifest)'}")
    table("by ensemble and melodic parts", by_band)
    by_kind = collections.defaultdict(lambda: [0, 0])
    for (ens, kind), (right, n) in by_band.items():
        by_kind[kind][0] += right
        by_kind[kind][1] += n
    table("by melodic parts", by_kind)
    print(f"  wrong answers naming the clip's other melodic instrument: {other}")
    table("by instrumentation and ensemble", by_instr)
    table("solo clips by instrumentation and the solo instrument's role", solo)
    if label:
        table(f"by the number of training clips with the clip's {label}", by_count)
    if balanced_bands:
        table(f"balanced clips of duos to full bands, by {label or 'label'}", balanced_bands)
    if by_sizes:
        table("genres whose vocabulary entry names ensemble sizes (sized) and the others: solos and bands", by_sizes)
    if solo_wrong:
        print("commonest wrong answers in solo clips (true -> predicted: solo instruments)")
        for (true, pred), insts in sorted(solo_wrong.items(), key=lambda x: -len(x[1]))[:8]:
            print(f"  {true} -> {pred}: {len(insts)} ({', '.join(sorted(insts))})")


if __name__ == "__main__":
    main()
