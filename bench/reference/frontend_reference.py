#!/usr/bin/python3
"""Baseline: the reference numpy CLAP feature extractor (HF transformers ClapFeatureExtractor) on 10 s clips.

    /usr/bin/python3 bench/reference/frontend_reference.py [--clips N] [--reps R] [--workers 1,2]
                                                          [--preset unfused|fused] [--config JSON]

Counterpart of bench_frontend (same clip length, same kind of random input, same JSON fields). Each clip is
10 s of 48 kHz mono float32 noise (std 0.1), i.e. exactly 480000 samples, so no random crop happens.

Threads: the reference extractor is single-threaded per call (a Python loop over clips; numpy's FFT does
not use threads). "threads": 2 is therefore measured with a pool of 2 worker PROCESSES, each making one
batched call on half of the clips — the fairest 2-core use of the reference. Every worker runs with
OPENBLAS_NUM_THREADS=1 so that processes, not BLAS threads, share the cores. Clips are generated inside
the workers before timing (no transfer of audio counted); workers return a checksum, not the features.
Timing: best of R repetitions, wall clock from dispatch to the last worker's return. "cpu_seconds" is the
CPU time (user+system, all processes) spent in that repetition's extraction calls: on a loaded machine
"clips_per_cpu_s" is a steadier figure than the wall-clock rate (for 1 worker it estimates the unloaded
single-core rate).

Peak memory: "peak_rss_mb" is the main process's peak for 1 worker; for 2 workers (fresh spawned processes)
the SUM of the workers' peaks (the idle parent that only dispatches is not counted) — an upper bound of
what the two working processes held at once.

Output: one JSON line per worker count. The reference is taken from SYNCLAP_REFERENCE_PYTHONPATH
(default /work/ref); exit status 3 if it cannot be imported.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refcommon  # noqa: E402  (sets the BLAS environment before numpy is imported)

CLIP_SAMPLES = 480000  # 10 s at 48 kHz

_state = {}


def _init_worker(ref_path, fe_kwargs, truncation, clip_ids, seed):
    if ref_path not in sys.path:
        sys.path.insert(0, ref_path)
    import numpy as np
    from transformers import ClapFeatureExtractor

    _state["fe"] = ClapFeatureExtractor(**fe_kwargs)
    _state["truncation"] = truncation
    clips = []
    for i in clip_ids:
        rng = np.random.default_rng(seed + i)
        clips.append((rng.standard_normal(CLIP_SAMPLES) * 0.1).astype(np.float32))
    _state["clips"] = clips
    _extract(warm_up=True)


def _extract(warm_up=False):
    import numpy as np

    fe = _state["fe"]
    clips = _state["clips"][:1] if warm_up else _state["clips"]
    np.random.seed(0)
    cpu0 = refcommon.cpu_time()
    out = fe(clips, sampling_rate=48000, truncation=_state["truncation"], padding="repeatpad", return_tensors="np")
    feats = out["input_features"]
    assert feats.shape[0] == len(clips) and feats.shape[2:] == (1001, 64), feats.shape
    return float(feats[:, :, ::97, ::7].sum()), refcommon.peak_rss_mb(), refcommon.cpu_time() - cpu0


def _run_worker(_):
    return _extract()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts (processes)")
    ap.add_argument("--preset", choices=["unfused", "fused"], default="unfused",
                    help="unfused: rand_trunc (Slaney mel); fused: fusion (HTK mel, 4 channels)")
    ap.add_argument("--config", default=None, help="feature extractor config JSON (default: golden/feature_extractor_config.json)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    refcommon.setup_blas_env(1)
    ref_path = refcommon.import_reference()
    import multiprocessing as mp

    cfg_path = args.config or os.path.join(os.path.normpath(refcommon.golden_dir()), "feature_extractor_config.json")
    fe_kwargs = refcommon.load_feature_extractor_config(cfg_path)
    truncation = "rand_trunc" if args.preset == "unfused" else "fusion"

    for workers in [int(w) for w in args.workers.split(",") if w.strip()]:
        shares = [list(range(args.clips))[k::workers] for k in range(workers)]
        best, best_cpu = float("inf"), 0.0
        if workers == 1:
            _init_worker(ref_path, fe_kwargs, truncation, shares[0], args.seed)
            for _ in range(args.reps):
                t0 = refcommon.now()
                _, _, cpu = _extract()
                wall = refcommon.now() - t0
                if wall < best:
                    best, best_cpu = wall, cpu
            rss = refcommon.peak_rss_mb()
            _state.clear()
        else:
            # Fresh interpreters (spawn, not fork): each worker's peak RSS is its own, as for a separate process.
            ctx = mp.get_context("spawn")
            # One pool per share so that each worker holds exactly its own clips.
            pools = [ctx.Pool(1, initializer=_init_worker, initargs=(ref_path, fe_kwargs, truncation, share, args.seed))
                     for share in shares]
            try:
                for p in pools:  # wait for initialisation (clip generation, warm-up) to finish
                    p.apply(int, (0,))
                worker_rss = [0.0] * workers
                for _ in range(args.reps):
                    t0 = refcommon.now()
                    pending = [p.apply_async(_run_worker, (None,)) for p in pools]
                    results = [r.get() for r in pending]
                    wall = refcommon.now() - t0
                    if wall < best:
                        best, best_cpu = wall, sum(r[2] for r in results)
                    worker_rss = [max(a, b[1]) for a, b in zip(worker_rss, results)]
                rss = sum(worker_rss)
            finally:
                for p in pools:
                    p.close()
                    p.join()
        refcommon.emit({
            "bench": "frontend", "preset": args.preset, "clips": args.clips, "threads": workers,
            "parallelism": "processes" if workers > 1 else "single", "seconds": round(best, 4),
            "clips_per_s": round(args.clips / best, 1), "peak_rss_mb": round(rss, 1),
            "cpu_seconds": round(best_cpu, 4), "clips_per_cpu_s": round(args.clips / best_cpu, 1) if best_cpu > 0 else None,
            "implementation": "transformers.ClapFeatureExtractor (numpy)",
        })


if __name__ == "__main__":
    main()
