#!/usr/bin/env bash
# The main job (synclap demo) at a tiny size: every step runs (synthesise, train, evaluate, index, search) and
# the results table and report are written. Usage: demo_small.sh SYNCLAP WORKDIR. Exit 77 without FluidSynth.
set -u
SYNCLAP=$1
WORK=$2
rm -rf "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }
if ! "$SYNCLAP" --quiet --json demo --out "$WORK" --clips 60 --seconds 2 --epochs 2 --batch 8 >"$WORK.json" 2>"$WORK.log"; then
  if grep -qi "fluidsynth\|soundfont" "$WORK.log"; then echo "skipped: no FluidSynth/soundfont"; exit 77; fi
  cat "$WORK.log"; fail "demo"
fi
for f in report.html demo.json run/report.html run/final/model.safetensors eval-genre/confusion.svg eval-lead/result.json; do
  [ -s "$WORK/$f" ] || fail "missing $f"
done
grep -q '"zeroshot_genre_top1"' "$WORK.json" || fail "no results JSON"
grep -q '"query": "relaxed jazz with a saxophone"' "$WORK.json" || fail "no search results"
# A re-run continues: nothing is trained again.
"$SYNCLAP" --quiet demo --out "$WORK" --clips 60 --seconds 2 --epochs 2 --batch 8 >"$WORK.txt" 2>"$WORK.log2" || { cat "$WORK.log2"; fail "re-run"; }
grep -q "zero-shot genre top-1" "$WORK.txt" || fail "no results table"
echo "demo small: OK"
