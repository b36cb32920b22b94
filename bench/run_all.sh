#!/usr/bin/env bash
# Runs synclap's benchmarks and the reference baseline (HF transformers CLAP) back to back, then prints a
# table with ratios (synclap / reference).
#
#   bash bench/run_all.sh BUILD_DIR [--quick] [--out DIR]
#
# synclap side: BUILD_DIR/bench/bench_frontend, bench_model, bench_train (each skipped if not built).
# Reference side: bench/reference/*.py with /usr/bin/python3; the reference is found through
# SYNCLAP_REFERENCE_PYTHONPATH (default /work/ref, see bench/reference/README.md) and skipped with a note
# if it cannot be imported. Pairs run back to back (front end: synclap then reference; model: synclap then
# reference) so that both sides of a ratio see similar machine load.
# --quick: fewer clips/batches (about a minute on an idle 2-core machine; the full run takes a few minutes).
# --out DIR: keep the raw JSON lines there (default: a temporary folder, removed at exit).
# synclap's programs set OMP_WAIT_POLICY=PASSIVE for themselves unless it is set (their JSON lines record the
# value in force); the reference runs as users run it (libgomp's default) unless you export a value, which then
# applies to both sides. On a loaded machine, export OMP_WAIT_POLICY=PASSIVE (OpenMP threads spinning while the
# other core is busy multiply torch's CPU time); the script warns when the load average exceeds the cores.
set -euo pipefail

usage() { echo "usage: bash bench/run_all.sh BUILD_DIR [--quick] [--out DIR]" >&2; exit 2; }
[ $# -ge 1 ] || usage
BUILD=$1; shift
QUICK=0; OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --out) [ $# -ge 2 ] || usage; OUT=$2; shift ;;
    *) usage ;;
  esac
  shift
done
[ -d "$BUILD" ] || { echo "run_all.sh: no build folder $BUILD" >&2; exit 2; }

HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
if [ -z "$OUT" ]; then OUT=$(mktemp -d -t synclap_bench.XXXXXX); trap 'rm -rf "$OUT"' EXIT; else mkdir -p "$OUT"; fi
OURS=$OUT/synclap.jsonl; REF=$OUT/reference.jsonl
: > "$OURS"; : > "$REF"

if [ $QUICK = 1 ]; then CLIPS=16; REPS=2; QFLAG=--quick; else CLIPS=64; REPS=3; QFLAG=; fi
NPROC=$(nproc)
LOAD=$(cut -d' ' -f1 /proc/loadavg)
echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $NPROC cores, load average $LOAD" \
     "OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-(default)}"
if awk -v l="$LOAD" -v n="$NPROC" 'BEGIN { exit !(l > n) }'; then
  echo "# WARNING: load average $LOAD exceeds $NPROC cores: absolute figures are low; ratios are indicative only."
  [ -n "${OMP_WAIT_POLICY:-}" ] || echo "# (consider OMP_WAIT_POLICY=PASSIVE on a loaded machine, for both sides)"
fi

ref_ok=1
if ! "$PY" -c "import sys; sys.path.insert(0, '$HERE/reference'); import refcommon; refcommon.import_reference()" 2>"$OUT/ref_import.err"; then
  ref_ok=0
  echo "# reference not importable (SYNCLAP_REFERENCE_PYTHONPATH=${SYNCLAP_REFERENCE_PYTHONPATH:-/work/ref}): skipped." \
       "$(tail -n1 "$OUT/ref_import.err")"
fi

run() {  # run LABEL OUTFILE CMD...: runs CMD, appends its JSON lines to OUTFILE, echoes them
  local label=$1 file=$2; shift 2
  echo "## $label: $*"
  local t0=$SECONDS
  if "$@" > "$OUT/last.out"; then :; else echo "#   $label failed (status $?)"; fi
  grep '^{' "$OUT/last.out" | tee -a "$file" || true
  echo "#   ($((SECONDS - t0)) s)"
}

# 1. Front end: log-mel of 10 s clips, 1 and 2 threads.
if [ -x "$BUILD/bench/bench_frontend" ]; then
  run "synclap frontend" "$OURS" "$BUILD/bench/bench_frontend" --clips $CLIPS --reps $REPS
else
  echo "# $BUILD/bench/bench_frontend not built: skipped"
fi
if [ $ref_ok = 1 ]; then
  run "reference frontend" "$REF" "$PY" "$HERE/reference/frontend_reference.py" --clips $CLIPS --reps $REPS
fi

# 2. Model: audio embeddings from files (batch 1 and 8), texts (77 tokens, real lengths).
WAVS=$OUT/wavs
if [ -x "$BUILD/bench/bench_model" ] || [ $ref_ok = 1 ]; then
  "$PY" "$HERE/reference/model_reference.py" --write-wavs "$WAVS" > /dev/null
fi
if [ -x "$BUILD/bench/bench_model" ]; then
  run "synclap model" "$OURS" "$BUILD/bench/bench_model" --wav-dir "$WAVS" $QFLAG
else
  echo "# $BUILD/bench/bench_model not built: skipped"
fi
if [ $ref_ok = 1 ]; then
  run "reference model" "$REF" "$PY" "$HERE/reference/model_reference.py" --wav-dir "$WAVS" --threads 2 $QFLAG
fi

# 3. Training: one contrastive step (forward, backward, AdamW) of HTS-AT tiny + RoBERTa at batch 8; the CPU configs.
if [ -x "$BUILD/bench/bench_train" ]; then
  run "synclap train" "$OURS" "$BUILD/bench/bench_train" $QFLAG
else
  echo "# $BUILD/bench/bench_train not built: skipped"
fi
if [ $ref_ok = 1 ]; then
  run "reference train" "$REF" "$PY" "$HERE/reference/train_reference.py" --threads 2 $QFLAG
fi

echo
echo "# ratio = synclap / reference (higher is faster); MB = peak resident memory"
"$PY" "$HERE/compare.py" "$OURS" "$REF"
