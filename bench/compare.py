#!/usr/bin/python3
"""Side-by-side table of synclap's benchmark JSON lines against the reference baseline's.

    /usr/bin/python3 bench/compare.py SYNCLAP.jsonl REFERENCE.jsonl

Rows are matched by key: ("frontend", preset, threads) or ("model", case). The rate is clips_per_s,
texts_per_s or samples_per_s (training); "ratio" = synclap / reference (> 1: synclap faster). Peak memory ratio likewise (< 1: smaller).
When both sides report "cpu_seconds" (process CPU time of the timed part), a CPU-time ratio is shown too:
(items per CPU-second, synclap) / (same, reference) — steadier than wall clock on a loaded machine, but it
measures work per item, not parallel speed-up.
Lines that are not JSON objects are ignored; a row present on one side only is shown with "-".
When synclap's side has the "sgemm" case (the machine's float32 matmul rate through LibTorch), the model rates
of both sides are also shown as a fraction of that peak, which compares across machines: HTS-AT tiny costs
11.8 GFLOP per 10 s clip (the issue's figure), RoBERTa-base 13.3 GFLOP per 77-token text (12 layers of
2*77*(4*768^2 + 2*768*3072) + 4*77^2*768 multiply-adds, counted as 2 flops each).
"""
import json
import sys


def read(path):
    rows = {}
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                rows[key(r)] = r
    except OSError:
        pass
    return rows


def key(r):
    if r.get("bench") == "frontend":
        return ("frontend", r.get("preset", "unfused"), f"threads={r.get('threads')}")
    return (r.get("bench", "?"), r.get("case", "?"), f"threads={r.get('threads', '?')}")


def rate(r):
    for name in ("clips_per_s", "texts_per_s", "samples_per_s"):
        if name in r:
            return r[name], name.replace("_per_s", "/s")
    return None, ""


def count(r):
    for name in ("clips", "texts"):
        if name in r:
            return r[name]
    return None


def cpu_rate(r):
    if r.get("cpu_seconds_per_sample"):  # training benchmarks report CPU time per sample directly
        return 1.0 / r["cpu_seconds_per_sample"]
    n, cpu = count(r), r.get("cpu_seconds")
    return n / cpu if n and cpu else None


GFLOP_PER_ITEM = {"audio_files_b1": 11.8, "audio_files_b8": 11.8,
                  "text_77": 12 * (2 * 77 * (4 * 768 ** 2 + 2 * 768 * 3072) + 4 * 77 ** 2 * 768) / 1e9}


def peak_lines(ours, ref):
    sg = [r for r in ours.values() if r.get("case") == "sgemm"]
    if not sg:
        return []
    peak = max(max(r.get("gflops_2048", 0), r.get("gflops_ffn_1232x768x3072", 0)) for r in sg)
    out = [f"\nmachine float32 matmul peak (sgemm case, best shape): {peak:.1f} GFLOP/s"]
    for case, g in GFLOP_PER_ITEM.items():
        parts = []
        for side, rows in (("synclap", ours), ("reference", ref)):
            r = next((r for r in rows.values() if r.get("case") == case), None)
            if r is None:
                continue
            v, _ = rate(r)
            if v:
                parts.append(f"{side} {v * g:.0f} GFLOP/s = {100 * v * g / peak:.0f} % of peak")
        if parts:
            out.append(f"  {case} ({g:.1f} GFLOP/item): " + "; ".join(parts))
    return out


def fmt(x, digits=1):
    if x is None:
        return "-"
    return f"{x:.{digits}f}" if abs(x) >= 1 or digits == 0 else f"{x:.3g}"


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    ours, ref = read(sys.argv[1]), read(sys.argv[2])
    keys = list(ours) + [k for k in ref if k not in ours]
    head = ["benchmark", "case", "threads", "unit", "synclap", "reference", "ratio", "synclap MB", "reference MB", "MB ratio",
            "CPU-time ratio"]
    lines = [head]
    for k in keys:
        if k[1] == "sgemm":
            continue
        a, b = ours.get(k, {}), ref.get(k, {})
        ra, unit = rate(a)
        rb, unit_b = rate(b)
        unit = unit or unit_b
        ma, mb = a.get("peak_rss_mb"), b.get("peak_rss_mb")
        lines.append([k[0], k[1], k[2].split("=")[1], unit, fmt(ra), fmt(rb),
                      f"{ra / rb:.2f}x" if ra and rb else "-", fmt(ma, 0), fmt(mb, 0),
                      f"{ma / mb:.2f}" if ma and mb else "-",
                      f"{cpu_rate(a) / cpu_rate(b):.2f}x" if cpu_rate(a) and cpu_rate(b) else "-"])
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    for n, row in enumerate(lines):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in peak_lines(ours, ref):
        print(line)
    if any(r.get("parallelism") == "processes" for r in ref.values()):
        print("\nreference frontend with threads>1 = a pool of worker processes (numpy extractor is single-threaded).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
