// synclap search: the web page served at "/" (one self-contained HTML file, no external resources).
#include <string>

namespace synclap::search {

const std::string& web_page_html() {
  static const std::string page = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>synclap search</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 860px; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; }
  #status { color: #666; font-size: .9rem; margin-bottom: 1rem; }
  form { display: flex; gap: .5rem; flex-wrap: wrap; }
  #q { flex: 1 1 20rem; font-size: 1.05rem; padding: .45rem; }
  input.small { width: 6rem; padding: .4rem; }
  button { padding: .45rem 1rem; font-size: 1rem; }
  #drop { margin: 1rem 0; padding: 1rem; border: 2px dashed #aaa; border-radius: 8px; text-align: center; color: #555; }
  #drop.over { border-color: #2a6; background: #efe; }
  #error { color: #b00; margin: .5rem 0; min-height: 1.2rem; }
  .result { display: grid; grid-template-columns: 2.5rem 4.5rem 1fr; align-items: center; gap: .6rem;
            padding: .45rem 0; border-bottom: 1px solid #eee; }
  .score { font-variant-numeric: tabular-nums; color: #2a6; font-weight: 600; }
  .path { overflow-wrap: anywhere; }
  .meta { color: #777; font-size: .85rem; }
  audio { width: 100%; margin-top: .25rem; }
  a.more { font-size: .85rem; margin-left: .5rem; }
</style>
</head>
<body>
<h1>synclap music search</h1>
<div id="status">loading&hellip;</div>
<form id="form">
  <input id="q" name="q" placeholder="describe the music, e.g. &quot;calm piano with soft strings&quot;" autofocus>
  <input id="k" class="small" type="number" min="1" max="200" value="10" title="results">
  <input id="tag" class="small" placeholder="tag" title="only items with this folder tag">
  <input id="path" class="small" placeholder="path glob" title="only paths matching, e.g. jazz/*">
  <button id="go" type="submit">Search</button>
</form>
<div id="drop">Drop an audio file here (or <label><u>choose one</u><input id="file" type="file" accept="audio/*" hidden></label>)
  to find music like it; with text in the box, both are blended.</div>
<div id="error"></div>
<div id="results"></div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
function params() {
  const p = new URLSearchParams();
  p.set("k", $("k").value || "10");
  if ($("tag").value.trim()) p.append("tag", $("tag").value.trim());
  if ($("path").value.trim()) p.set("path", $("path").value.trim());
  return p;
}
function fmt(s) { const m = Math.floor(s / 60), r = Math.round(s - 60 * m); return m + ":" + String(r).padStart(2, "0"); }
function show(data) {
  const box = $("results");
  box.textContent = "";
  if (data.error) { $("error").textContent = data.error; return; }
  $("error").textContent = "";
  if (!data.results.length) { box.textContent = "No matching items."; return; }
  for (const r of data.results) {
    const row = document.createElement("div");
    row.className = "result";
    row.dataset.id = r.id;
    const rank = document.createElement("div"); rank.textContent = r.rank + ".";
    const score = document.createElement("div"); score.className = "score"; score.textContent = r.score.toFixed(3);
    const main = document.createElement("div");
    const path = document.createElement("span"); path.className = "path"; path.textContent = r.path;
    const more = document.createElement("a"); more.className = "more"; more.href = "#"; more.textContent = "more like this";
    more.onclick = (e) => { e.preventDefault(); run(fetch("/api/similar/" + r.id + "?" + params())); };
    const meta = document.createElement("div"); meta.className = "meta";
    meta.textContent = fmt(r.duration_s) + (r.tags.length ? "  \u00b7  " + r.tags.join(", ") : "");
    const audio = document.createElement("audio"); audio.controls = true; audio.preload = "none"; audio.src = r.audio;
    main.append(path, more, meta, audio);
    row.append(rank, score, main);
    box.append(row);
  }
}
let searches = 0;
async function run(request) {
  $("error").textContent = "";
  $("results").textContent = "searching\u2026";
  try {
    const res = await request;
    show(await res.json());
  } catch (e) { $("results").textContent = ""; $("error").textContent = String(e); }
  $("results").dataset.done = String(++searches);
}
$("form").onsubmit = (e) => {
  e.preventDefault();
  const q = $("q").value.trim();
  if (!q) { $("error").textContent = "Type a description, or drop a file."; return; }
  const p = params(); p.set("q", q);
  run(fetch("/api/search?" + p));
};
function searchFile(file) {
  const p = params();
  if ($("q").value.trim()) p.set("q", $("q").value.trim());
  $("drop").textContent = "Searching like \u201c" + file.name + "\u201d";
  const fd = new FormData(); fd.append("file", file, file.name);
  run(fetch("/api/search/audio?" + p, { method: "POST", body: fd }));
}
const drop = $("drop");
["dragenter", "dragover"].forEach((t) => document.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
["dragleave", "drop"].forEach((t) => document.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
document.addEventListener("drop", (e) => { if (e.dataTransfer.files.length) searchFile(e.dataTransfer.files[0]); });
$("file").onchange = (e) => { if (e.target.files.length) searchFile(e.target.files[0]); };
// A query in the page's address runs at once: /?q=TEXT[&k=&tag=&path=] or /?similar=ID (links, tests).
function fromAddress() {
  const a = new URLSearchParams(location.search);
  if (a.get("k")) $("k").value = a.get("k");
  if (a.get("tag")) $("tag").value = a.get("tag");
  if (a.get("path")) $("path").value = a.get("path");
  if (a.get("similar")) {
    run(fetch("/api/similar/" + encodeURIComponent(a.get("similar")) + "?" + params()));
  } else if (a.get("q")) {
    $("q").value = a.get("q");
    $("form").requestSubmit();
  }
}
fromAddress();
fetch("/api/health").then((r) => r.json()).then((h) => {
  $("status").textContent = h.items + " items \u00b7 " + h.structure + " index" + (h.text ? "" : " \u00b7 text search unavailable");
  document.body.dataset.ready = "1";
}).catch(() => { $("status").textContent = "server not reachable"; });
</script>
</body>
</html>
)HTML";
  return page;
}

}  // namespace synclap::search
