#!/usr/bin/python3
"""Baseline: training speed of the reference CLAP model (HF transformers ClapModel on torch).

    /usr/bin/python3 bench/reference/train_reference.py [--quick] [--threads 2] [--batch 8] [--steps N]

Geometry: ClapConfig() defaults (= golden/full_unfused_config.json: HTS-AT tiny + RoBERTa-base, projection 512),
random weights (torch.manual_seed(0)), model.train(). One step = ClapModel(input_ids, attention_mask,
input_features, return_loss=True) -> loss.backward() -> torch.optim.AdamW(lr=1e-4, weight_decay=0.2).step() ->
zero_grad. Inputs: random log-mel features [B, 1, 1001, 64] (as from 10 s clips) and synthetic captions of 10..25
tokens padded to 77 (LAION-CLAP's tokenisation), the same recipe as bench_train. One warm-up step, then timed
steps; wall clock and process CPU time; peak RSS. Prints one JSON line (case "train_htsat_tiny_b8" for batch 8).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refcommon  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=0)
    a = ap.parse_args()
    core = refcommon.setup_blas_env(a.threads)
    refcommon.import_reference()
    import torch
    from transformers import ClapConfig, ClapModel

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = ClapModel(ClapConfig())
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.2)
    g = torch.Generator().manual_seed(1)
    b = a.batch
    feats = torch.randn(b, 1, 1001, 64, generator=g) * 20 - 40
    ids = torch.ones(b, 77, dtype=torch.long)
    mask = torch.zeros(b, 77, dtype=torch.long)
    for i in range(b):
        n = int(torch.randint(10, 26, (1,), generator=g))
        ids[i, 0] = 0
        ids[i, 1:n - 1] = torch.randint(3, 50265, (n - 2,), generator=g)
        ids[i, n - 1] = 2
        mask[i, :n] = 1
    steps = a.steps or (2 if a.quick else 5)

    def step():
        out = model(input_ids=ids, attention_mask=mask, input_features=feats, return_loss=True)
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        return float(out.loss)

    step()  # warm-up
    t0, c0 = refcommon.now(), refcommon.cpu_time()
    for _ in range(steps):
        loss = step()
    wall, cpu = refcommon.now() - t0, refcommon.cpu_time() - c0
    refcommon.emit({"bench": "train", "case": f"train_htsat_tiny_b{b}", "threads": a.threads, "batch": b,
                    "steps": steps, "samples_per_s": b * steps / wall, "cpu_seconds_per_sample": cpu / (b * steps),
                    "peak_rss_mb": refcommon.peak_rss_mb(), "last_loss": loss, "openblas_coretype": core})


if __name__ == "__main__":
    main()
