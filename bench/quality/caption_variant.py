#!/usr/bin/env python3
"""A copy of a synth dataset with other captions (offline tooling behind bench/RESULTS.md "Quality bar").

    python3 bench/quality/caption_variant.py SRC DST keywords       # one caption: "techno music with a viola lead"
    python3 bench/quality/caption_variant.py SRC DST plus_keywords  # the five captions + two keyword captions

DST gets a manifest.jsonl with the new captions, dataset.json, and audio/ as a symbolic link to SRC/audio (the
clips are not copied). Train on DST; evaluate on SRC so that the test captions stay the synth's own.
"""
import json
import os
import sys


def keyword_caption(labels):
    lead = labels.get("lead")
    return f"{labels['genre']} music" + (f" with a {lead} lead" if lead else "")


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in ("keywords", "plus_keywords"):
        print(__doc__, file=sys.stderr)
        return 2
    src, dst, mode = sys.argv[1:]
    os.makedirs(dst, exist_ok=True)
    if not os.path.exists(os.path.join(dst, "audio")):
        os.symlink(os.path.abspath(os.path.join(src, "audio")), os.path.join(dst, "audio"))
    with open(os.path.join(src, "dataset.json")) as f, open(os.path.join(dst, "dataset.json"), "w") as g:
        g.write(f.read())
    with open(os.path.join(src, "manifest.jsonl")) as f, open(os.path.join(dst, "manifest.jsonl"), "w") as g:
        for line in f:
            r = json.loads(line)
            labels = r["labels"]
            if mode == "keywords":
                r["captions"] = [keyword_caption(labels)]
            else:
                tags = ", ".join([labels["genre"], labels["tempo"], labels["mood"]] + labels["instruments"])
                r["captions"] = r["captions"] + [keyword_caption(labels), tags]
            g.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
