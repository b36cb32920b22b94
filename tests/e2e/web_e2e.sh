#!/usr/bin/env bash
# End-to-end test of semantic search: `synclap index` over a small library of real recordings with the
# tiny golden CLAP checkpoint, `synclap serve` on a free localhost port, the web page driven by headless
# Chromium (the page runs the query given in its address: /?q=TEXT, /?similar=ID), and the HTTP API
# checked with curl: audio streaming of indexed files only (no path traversal, no symlink out of the
# library), the upload size limit, undecodable uploads, several clients at once.
#
#   web_e2e.sh SYNCLAP_BINARY SHARED_DIR SOURCE_DIR WORK_DIR
#
# Exit 0: passed; 77: skipped (no chromium / curl / reference data); anything else: failed.
# Never hangs: every step runs under `timeout`, and the server is killed on every exit path.
set -u

SYNCLAP=$1 SHARED=$2 SOURCE=$3 WORK=$4
SKIP=77

fail() { echo "FAIL: $*" >&2; [ -f "$WORK/serve.log" ] && { echo "--- serve log (tail)" >&2; tail -20 "$WORK/serve.log" >&2; }; exit 1; }
skip() { echo "SKIP: $*"; exit $SKIP; }
step() { echo "== $*"; }

CHROMIUM=""
for c in chromium chromium-browser google-chrome-stable google-chrome; do
  if command -v "$c" >/dev/null 2>&1; then CHROMIUM=$(command -v "$c"); break; fi
done
[ -n "$CHROMIUM" ] || skip "no chromium installed (Debian: apt-get install chromium)"
command -v curl >/dev/null 2>&1 || skip "no curl installed"
"$SYNCLAP" serve --help >/dev/null 2>&1 || skip "this synclap has no serve command (built without faiss / cpp-httplib)"
MODEL="$SHARED/golden/tiny_unfused_weights.safetensors"
AUDIO="$SHARED/realaudio/sms-tools"
TOKENIZER="$SOURCE/tests/data/tokenizer/trained"
[ -f "$MODEL" ] || skip "no $MODEL"
[ -f "$AUDIO/flute-A4.wav" ] || skip "no real recordings in $AUDIO"
[ -f "$TOKENIZER/vocab.json" ] || fail "no tokenizer in $TOKENIZER"

rm -rf "$WORK"
mkdir -p "$WORK/lib/winds" "$WORK/lib/strings" "$WORK/lib/percussion" "$WORK/home" || fail "cannot create $WORK"

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$SERVER_PID" 2>/dev/null
  fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- the library: 5 real recordings in tag folders, a symlink out of it, a file that is not audio
step "library"
cp "$AUDIO/flute-A4.wav" "$AUDIO/oboe-A4.wav" "$WORK/lib/winds/" &&
cp "$AUDIO/violin-B3.wav" "$WORK/lib/strings/" &&
cp "$AUDIO/mridangam.wav" "$WORK/lib/percussion/" &&
cp "$AUDIO/soprano-E4.wav" "$WORK/lib/" || fail "copying recordings"
printf 'root:x:0:0:secret outside the library\n' > "$WORK/outside.txt"
cp "$AUDIO/trumpet-A4.wav" "$WORK/outside.wav"
ln -s "$WORK/outside.wav" "$WORK/lib/escape.wav"
printf 'not audio at all' > "$WORK/lib/notes.wav"

# ---- index
step "synclap index"
timeout 300 "$SYNCLAP" --json --quiet index --model "$MODEL" --library "$WORK/lib" --out "$WORK/idx" \
  > "$WORK/index.json" 2> "$WORK/index.err"
rc=$?
# notes.wav is reported and skipped; the run still succeeds
[ $rc -eq 0 ] || { cat "$WORK/index.err" >&2; fail "synclap index exited $rc"; }
grep -q '"failed": 1' "$WORK/index.json" || fail "index should report one failed file: $(cat "$WORK/index.json")"
grep -q 'notes\.wav' "$WORK/index.err" || fail "index should name notes.wav: $(cat "$WORK/index.err")"
ITEMS=$(sed -n 's/.*"items": \([0-9]*\).*/\1/p' "$WORK/index.json")
[ "$ITEMS" -ge 5 ] 2>/dev/null || fail "expected at least 5 items, index says '$ITEMS'"

# ---- serve on a free port (--port 0), upload limit 0.15 MB (soprano-E4.wav: 104 kB, flute-A4.wav: 190 kB)
step "synclap serve"
timeout 600 "$SYNCLAP" serve --index "$WORK/idx" --port 0 --tokenizer "$TOKENIZER" --max-upload-mb 0.15 \
  > "$WORK/serve.out" 2> "$WORK/serve.log" &
SERVER_PID=$!
PORT=""
for _ in $(seq 1 300); do
  PORT=$(sed -n 's|.*at http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$WORK/serve.log" | head -1)
  [ -n "$PORT" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited before listening"
  sleep 0.2
done
[ -n "$PORT" ] || fail "server did not report its port within 60 s"
BASE="http://127.0.0.1:$PORT"
CURL=(curl -s --max-time 60)
ok=""
for _ in $(seq 1 100); do
  if "${CURL[@]}" "$BASE/api/health" > "$WORK/health.json" 2>/dev/null && grep -q '"status":"ok"' "$WORK/health.json"; then ok=1; break; fi
  sleep 0.2
done
[ -n "$ok" ] || fail "no health answer on $BASE"
grep -q "\"items\":$ITEMS" "$WORK/health.json" || fail "health: $(cat "$WORK/health.json")"

# status code of a request; body into $WORK/body
status() { "${CURL[@]}" -o "$WORK/body" -w '%{http_code}' "$@"; }

# ---- the web page in headless Chromium: the query in the address runs and renders rows
chrome() {  # URL -> DOM after the page's scripts ran (virtual time waits for pending fetches)
  HOME="$WORK/home" timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-extensions --disable-dev-shm-usage --user-data-dir="$WORK/home/profile" \
    --virtual-time-budget=15000 --dump-dom "$1" 2> "$WORK/chromium.log"
}
count() { grep -o "$1" "$2" | wc -l; }
step "chromium: /?q=a flute playing a single note&k=3"
chrome "$BASE/?q=a%20flute%20playing%20a%20single%20note&k=3" > "$WORK/page_text.html" || fail "chromium failed: $(tail -5 "$WORK/chromium.log")"
P="$WORK/page_text.html"
grep -q 'data-done="1"' "$P" || fail "the page did not finish its search:\n$(grep -A3 'id="results"' "$P")"
grep -q "$ITEMS items" "$P" || fail "the page did not show the health status"
[ "$(count 'class="result"' "$P")" -eq 3 ] || fail "expected 3 result rows, got $(count 'class="result"' "$P")"
[ "$(count '<audio controls="" preload="none" src="/api/audio/[0-9]*"' "$P")" -eq 3 ] || fail "expected 3 audio players"
[ "$(count 'class="score">-\{0,1\}[01]\.[0-9][0-9][0-9]<' "$P")" -eq 3 ] || fail "expected 3 scores"
grep -q 'id="error"></div>' "$P" || fail "the page shows an error: $(grep -o 'id="error">[^<]*' "$P")"
# scores in decreasing order, ranks 1..3, paths of the library
SCORES=$(grep -o 'class="score">[-0-9.]*' "$P" | sed 's/.*>//')
[ "$(printf '%s\n' $SCORES)" = "$(printf '%s\n' $SCORES | sort -g -r)" ] || fail "scores not in decreasing order: $SCORES"
grep -q '<div>1\.</div>' "$P" && grep -q '<div>3\.</div>' "$P" || fail "ranks 1. .. 3. missing"
grep -o 'class="path">[^<]*' "$P" | grep -qE 'winds/|strings/|percussion/|soprano' || fail "no library path in the results"

# the same query through the JSON API: same ids in the same order
step "api: text search agrees with the page"
[ "$(status "$BASE/api/search?q=a%20flute%20playing%20a%20single%20note&k=3")" = 200 ] || fail "api search: $(cat "$WORK/body")"
API_IDS=$(grep -o '"id":[0-9]*' "$WORK/body" | sed 's/"id"://' | tr '\n' ' ')
PAGE_IDS=$(grep -o 'class="result" data-id="[0-9]*"' "$P" | sed 's/.*data-id="//; s/"//' | tr '\n' ' ')
[ -n "$API_IDS" ] && [ "$API_IDS" = "$PAGE_IDS" ] || fail "page ids '$PAGE_IDS' differ from API ids '$API_IDS'"
FIRST=${API_IDS%% *}

# "more like this" of the soprano clip (in no tag folder), restricted to the tag winds: its 2 items
"${CURL[@]}" "$BASE/api/search?q=anything&k=50" > "$WORK/all.json" || fail "listing all items"
SOPRANO=$(grep -o '"id":[0-9]*,"path":"soprano-E4\.wav"' "$WORK/all.json" | sed 's/"id":\([0-9]*\).*/\1/')
[ -n "$SOPRANO" ] || fail "soprano-E4.wav not among the items: $(cat "$WORK/all.json")"
step "chromium: /?similar=$SOPRANO&tag=winds"
chrome "$BASE/?similar=$SOPRANO&tag=winds&k=5" > "$WORK/page_similar.html" || fail "chromium failed"
P="$WORK/page_similar.html"
grep -q 'data-done="1"' "$P" || fail "the similar search did not finish"
N=$(count 'class="result"' "$P")
[ "$N" -eq 2 ] || fail "tag winds: expected its 2 items, got $N rows"
grep -o 'class="path">[^<]*' "$P" | grep -v 'winds/' && fail "a result outside the winds tag"

# ---- audio streaming: indexed files only
step "api: audio of an indexed item is the file's bytes"
[ "$(status "$BASE/api/audio/$FIRST")" = 200 ] || fail "audio/$FIRST: $(cat "$WORK/body")"
match=""
for f in $(find "$WORK/lib" -type f -name '*.wav'); do cmp -s "$WORK/body" "$f" && match=$f; done
[ -n "$match" ] || fail "audio/$FIRST is not byte-identical to a library file"
[ "$("${CURL[@]}" -o /dev/null -w '%{http_code}' -H 'Range: bytes=0-3' "$BASE/api/audio/$FIRST")" = 206 ] || fail "Range request not 206"

step "api: path traversal refused"
for path in "/api/audio/../../../../etc/passwd" "/api/audio/%2e%2e%2f%2e%2e%2fetc%2fpasswd" \
            "/../../../../etc/passwd" "/%2e%2e/%2e%2e/%2e%2e/etc/passwd" "/api/audio/1/../../outside.txt" \
            "/api/audio/..%2f..%2foutside.txt" "/outside.txt" "/lib/winds/flute-A4.wav" "/api/audio/999999" \
            "/api/audio/-1" "/api/similar/../../etc/passwd"; do
  code=$(status --path-as-is "$BASE$path")
  [ "$code" != 200 ] && [ "$code" != 206 ] || fail "$path answered $code"
  grep -q 'root:x:0' "$WORK/body" && fail "$path leaked a file outside the library"
done
# the symlink out of the library: indexed or not, its bytes are never served
ESC_ID=$("${CURL[@]}" "$BASE/api/search?q=trumpet&k=50" | grep -o '"id":[0-9]*,[^}]*"path":"escape\.wav"' | sed 's/"id":\([0-9]*\).*/\1/')
if [ -n "$ESC_ID" ]; then
  code=$(status "$BASE/api/audio/$ESC_ID")
  [ "$code" = 404 ] || [ "$code" = 403 ] || fail "symlink out of the library answered $code"
fi
for id in $(seq 0 20); do
  code=$(status "$BASE/api/audio/$id")
  if [ "$code" = 200 ]; then cmp -s "$WORK/body" "$WORK/outside.wav" && fail "audio/$id served the file outside the library"; fi
done

# ---- uploads: size limit, validation, a good clip
step "api: uploads"
code=$(status -X POST -H 'Content-Type: audio/wav' --data-binary @"$WORK/lib/winds/flute-A4.wav" "$BASE/api/search/audio?k=3")
[ "$code" = 413 ] || fail "upload over --max-upload-mb answered $code: $(cat "$WORK/body")"
code=$(status -F "file=@$WORK/lib/winds/flute-A4.wav" "$BASE/api/search/audio?k=3")
[ "$code" = 413 ] || fail "multipart upload over the limit answered $code"
code=$(status -X POST -H 'Content-Type: audio/wav' --data-binary @"$WORK/lib/notes.wav" "$BASE/api/search/audio?k=3")
[ "$code" = 400 ] || fail "undecodable upload answered $code"
code=$(status -X POST -H 'Content-Type: audio/wav' --data-binary @"$WORK/lib/soprano-E4.wav" "$BASE/api/search/audio?k=3")
[ "$code" = 200 ] || fail "good upload answered $code: $(cat "$WORK/body")"
# the clip is in the library: its own item comes first with cosine ~1
grep -o '"path":"[^"]*"' "$WORK/body" | head -1 | grep -q 'soprano-E4\.wav' || fail "top hit of the uploaded clip: $(cat "$WORK/body")"
code=$(status -F "file=@$WORK/lib/soprano-E4.wav" "$BASE/api/search/audio?k=2&q=singing&blend=0.5")
[ "$code" = 200 ] || fail "blended multipart upload answered $code"

# ---- several clients at once
step "api: 8 clients at once"
pids=()
for i in 1 2 3 4 5 6 7 8; do
  ( [ "$("${CURL[@]}" -o "$WORK/par$i" -w '%{http_code}' "$BASE/api/search?q=query%20$i&k=2")" = 200 ] ) & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent request failed"; done
for i in 1 2 3 4 5 6 7 8; do grep -q '"rank":2' "$WORK/par$i" || fail "concurrent answer $i: $(cat "$WORK/par$i")"; done

# ---- the server stops cleanly on SIGTERM
step "stop"
kill "$SERVER_PID"
for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
kill -0 "$SERVER_PID" 2>/dev/null && fail "server still running 10 s after SIGTERM"
wait "$SERVER_PID"; rc=$?
[ $rc -eq 0 ] || fail "server exited $rc after SIGTERM"
SERVER_PID=""
echo "PASS: web e2e ($ITEMS items, port $PORT)"
