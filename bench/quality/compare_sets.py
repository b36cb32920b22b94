#!/usr/bin/env python3
"""What differs between two synthetic sets made with the same command (offline tooling).

    python3 bench/quality/compare_sets.py OLD_SET NEW_SET

For sets synthesised with the same seed and options by two versions of the composer, prints: whether every clip
keeps its id, split and labels (apart from the parts' roles), which role changes occurred, how many clips' captions
changed (and how many of those have no changed role), and whether the audio of every clip without a changed role
is byte-identical, with the clips whose audio differs counted by ensemble and by the first part's role (a composer
change that touches only solo keyboards shows as "solo / chords"). Exit status 1 if a clip without a changed role
differs.
"""
import collections
import filecmp
import json
import os
import sys


def read(path):
    with open(os.path.join(path, "manifest.jsonl")) as f:
        return [json.loads(line) for line in f]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    old_dir, new_dir = sys.argv[1:]
    old, new = read(old_dir), read(new_dir)
    if len(old) != len(new):
        sys.exit(f"{len(old)} clips against {len(new)}")
    same_meta = 0
    role_changes = collections.Counter()
    changed_by_split = collections.Counter()
    captions_changed = captions_changed_plain = 0
    audio_same = audio_differs = 0
    differs_by_kind = collections.Counter()
    for a, b in zip(old, new):
        la, lb = dict(a["labels"]), dict(b["labels"])
        pa, pb = la.pop("parts", []), lb.pop("parts", [])
        same_meta += a["id"] == b["id"] and a["split"] == b["split"] and la == lb
        changes = [(p["role"], q["role"]) for p, q in zip(pa, pb) if p["role"] != q["role"]]
        role_changes.update(changes)
        if changes:
            changed_by_split[b["split"]] += 1
        if a["captions"] != b["captions"]:
            captions_changed += 1
            captions_changed_plain += not changes
        if not changes:
            if filecmp.cmp(os.path.join(old_dir, a["audio"]), os.path.join(new_dir, b["audio"]), shallow=False):
                audio_same += 1
            else:
                audio_differs += 1
                differs_by_kind[f"{lb['ensemble']} / {pb[0]['role'] if pb else '-'}"] += 1
    print(f"clips: {len(new)}; same id, split and labels (besides the parts' roles): {same_meta}")
    print(f"role changes: {dict(role_changes)}; clips with one, by split: {dict(changed_by_split)}")
    print(f"captions changed: {captions_changed} ({captions_changed_plain} of them in clips without a role change)")
    print(f"audio of clips without a role change: {audio_same} byte-identical, {audio_differs} different")
    if differs_by_kind:
        print(f"  different, by ensemble / first part's role: {dict(sorted(differs_by_kind.items()))}")
    sys.exit(1 if audio_differs or captions_changed_plain else 0)


if __name__ == "__main__":
    main()
