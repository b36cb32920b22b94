#!/usr/bin/python3
"""Baseline: the reference CLAP model (HF transformers ClapModel on torch) — audio and text embeddings/s.

    /usr/bin/python3 bench/reference/model_reference.py [--quick] [--threads 2] [--cases a,b,...]
                                                       [--text-batch 16] [--wav-dir DIR] [--config JSON]

Geometry: ClapConfig() defaults == golden/full_unfused_config.json == laion/clap-htsat-unfused (HTS-AT tiny:
96, depths [2,2,6,2]; RoBERTa-base text tower; projection 512). Random weights (torch.manual_seed(0)), eval(),
torch.no_grad(), torch.set_num_threads(T) (default 2), OPENBLAS_CORETYPE set for this CPU before torch loads
(SkylakeX / Zen / Haswell from /proc/cpuinfo flags, as synclap chooses; an existing value is kept).

Cases (each in its own child process, so that "peak_rss_mb" — resource.getrusage ru_maxrss — is per case;
each child builds the whole ClapModel, as a user loading a checkpoint would):
  audio_files_b1, audio_files_b8  10 s clips FROM FILES, end to end: decode -> ClapFeatureExtractor (released
      preprocessor config, rand_trunc/repeatpad) -> model.get_audio_features, at batch 1 / 8. The files are
      10 s, 48 kHz, mono, 16-bit PCM WAV of noise (written to a temporary folder unless --wav-dir is given).
      Decoding: soundfile is not installed here; torchaudio.load is used if importable, otherwise Python's
      `wave` module + numpy (int16 / 32768 -> float32), which is what "decoder" reports. The time split
      decode_s / features_s / model_s is reported too; "model_clips_per_s" is the model part alone.
  text_77     texts/s through model.get_text_features, captions padded to 77 tokens (padding="max_length",
      max_length=77, as LAION-CLAP tokenises) with the attention mask marking the real tokens.
  text_real   the same captions padded only to the longest caption in each batch (padding="longest", the
      processor's padding=True): real caption lengths.
  Captions are synthetic token ids (no tokenizer needed): <s> (0) + random ids in [3, vocab) + </s> (2),
  total length uniform in 10..25 tokens, seeded; pad id 1.
Timing: one warm-up batch, then timed batches; wall clock, plus the process CPU time ("cpu_seconds").

Output: one JSON line per case. The reference is taken from SYNCLAP_REFERENCE_PYTHONPATH (default /work/ref);
exit status 3 if it cannot be imported.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refcommon  # noqa: E402

ALL_CASES = ["audio_files_b1", "audio_files_b8", "text_77", "text_real"]
SR = 48000
CLIP_SAMPLES = 10 * SR


def write_wavs(folder, count, seed):
    import wave

    import numpy as np

    paths = []
    for i in range(count):
        rng = np.random.default_rng(seed + i)
        x = np.clip(rng.standard_normal(CLIP_SAMPLES) * 0.1 * 32767, -32768, 32767).astype("<i2")
        path = os.path.join(folder, f"clip{i:02d}.wav")
        with wave.open(path, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SR)
            w.writeframes(x.tobytes())
        paths.append(path)
    return paths


def make_decoder():
    """Returns (name, function path -> mono float32 numpy array at the file's rate)."""
    import numpy as np

    try:
        import torchaudio

        def decode(path):
            wav, sr = torchaudio.load(path)
            if sr != SR:
                raise RuntimeError(f"{path}: {sr} Hz, expected {SR}")
            return wav.mean(dim=0).numpy()

        return "torchaudio.load", decode
    except Exception:
        import wave

        def decode(path):
            with wave.open(path, "rb") as w:
                if w.getsampwidth() != 2 or w.getframerate() != SR:
                    raise RuntimeError(f"{path}: expected 16-bit PCM at {SR} Hz")
                ch = w.getnchannels()
                x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
            return x.reshape(-1, ch).mean(axis=1) if ch > 1 else x

        return "wave+numpy", decode


def build_model(config_path, threads):
    import torch
    from transformers import ClapConfig, ClapModel

    torch.set_num_threads(threads)
    with open(config_path) as f:
        cfg_dict = json.load(f)
    config = ClapConfig.from_dict(cfg_dict)
    defaults = ClapConfig().to_dict()
    mine = config.to_dict()
    ignore = {"transformers_version", "_name_or_path"}
    matches = all(mine.get(k) == v for k, v in defaults.items() if k not in ignore)
    torch.manual_seed(0)
    model = ClapModel(config).eval()
    return model, config, matches


def captions(n, vocab, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        length = int(rng.integers(10, 26))  # incl. <s> and </s>
        out.append([0] + [int(t) for t in rng.integers(3, vocab, size=length - 2)] + [2])
    return out


def pad_batch(batch, max_length=None):
    """Pads like the RoBERTa tokenizer: right padding with pad id 1, attention mask 1 on real tokens."""
    import torch

    width = max_length or max(len(c) for c in batch)
    ids = torch.ones((len(batch), width), dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, c in enumerate(batch):
        c = c[:width]
        ids[i, : len(c)] = torch.tensor(c)
        mask[i, : len(c)] = 1
    return ids, mask


def run_case(args):
    import torch
    from transformers import ClapFeatureExtractor

    model, config, matches = build_model(args.config, args.threads)
    common = {"bench": "model", "case": args.case, "threads": torch.get_num_threads(),
              "model": "ClapModel(ClapConfig()) = HTS-AT tiny + RoBERTa-base, random weights, float32",
              "config_is_default": matches, "torch": torch.__version__}
    rec = dict(common)
    with torch.no_grad():
        if args.case.startswith("audio_files_b"):
            batch = int(args.case[len("audio_files_b"):])
            timed_batches = 1 if args.quick else (4 if batch == 1 else 2)
            fe = ClapFeatureExtractor(**refcommon.load_feature_extractor_config(args.fe_config))
            dec_name, decode = make_decoder()
            files = sorted(os.path.join(args.wav_dir, f) for f in os.listdir(args.wav_dir) if f.endswith(".wav"))
            parts = {"decode": 0.0, "features": 0.0, "model": 0.0}
            cursor = 0

            def one_batch(account):
                nonlocal cursor
                paths = [files[(cursor + k) % len(files)] for k in range(batch)]
                cursor += batch
                t0 = refcommon.now()
                waves = [decode(p) for p in paths]
                t1 = refcommon.now()
                feats = fe(waves, sampling_rate=SR, return_tensors="pt")
                t2 = refcommon.now()
                emb = model.get_audio_features(input_features=feats["input_features"], is_longer=feats["is_longer"])
                t3 = refcommon.now()
                assert emb.shape == (batch, config.projection_dim), emb.shape
                if account:
                    parts["decode"] += t1 - t0
                    parts["features"] += t2 - t1
                    parts["model"] += t3 - t2

            one_batch(False)  # warm-up
            c0, w0 = refcommon.cpu_time(), refcommon.now()
            for _ in range(timed_batches):
                one_batch(True)
            wall, cpu = refcommon.now() - w0, refcommon.cpu_time() - c0
            n = batch * timed_batches
            rec.update({"batch": batch, "clips": n, "seconds": round(wall, 3), "clips_per_s": round(n / wall, 3),
                        "cpu_seconds": round(cpu, 3), "decode_s": round(parts["decode"], 3),
                        "features_s": round(parts["features"], 3), "model_s": round(parts["model"], 3),
                        "model_clips_per_s": round(n / parts["model"], 3), "decoder": dec_name,
                        "clip_seconds": 10, "source": "16-bit PCM WAV files, 48 kHz mono"})
        else:
            batch = args.text_batch
            timed_batches = 1 if args.quick else 2
            vocab = config.text_config.vocab_size
            caps = captions(batch * (timed_batches + 1), vocab, seed=7)
            fixed = 77 if args.case == "text_77" else None
            batches = [caps[i * batch:(i + 1) * batch] for i in range(timed_batches + 1)]
            ids, mask = pad_batch(batches[0], fixed)
            model.get_text_features(input_ids=ids, attention_mask=mask)  # warm-up
            padded = real = 0
            c0, w0 = refcommon.cpu_time(), refcommon.now()
            for b in batches[1:]:
                ids, mask = pad_batch(b, fixed)
                emb = model.get_text_features(input_ids=ids, attention_mask=mask)
                assert emb.shape == (len(b), config.projection_dim), emb.shape
                padded += ids.numel()
                real += int(mask.sum())
            wall, cpu = refcommon.now() - w0, refcommon.cpu_time() - c0
            n = batch * timed_batches
            rec.update({"batch": batch, "texts": n, "seconds": round(wall, 3), "texts_per_s": round(n / wall, 3),
                        "cpu_seconds": round(cpu, 3), "mean_tokens": round(real / n, 2),
                        "mean_padded_tokens": round(padded / n, 2),
                        "padding": "max_length=77" if fixed else "longest in batch"})
    rec["peak_rss_mb"] = round(refcommon.peak_rss_mb(), 1)
    refcommon.emit(rec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one timed batch per case")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cases", default=",".join(ALL_CASES))
    ap.add_argument("--text-batch", type=int, default=16)
    ap.add_argument("--wav-dir", default=None, help="folder of 10 s 48 kHz mono 16-bit WAV files (default: generated)")
    ap.add_argument("--config", default=None, help="ClapConfig JSON (default: golden/full_unfused_config.json)")
    ap.add_argument("--fe-config", default=None, help="feature extractor JSON (default: golden/feature_extractor_config.json)")
    ap.add_argument("--write-wavs", metavar="DIR", default=None,
                    help="only write the 8 benchmark WAV files into DIR (needs numpy, not the reference) and exit")
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)  # internal: run one case in this process
    args = ap.parse_args()

    golden = os.path.normpath(refcommon.golden_dir())
    args.config = args.config or os.path.join(golden, "full_unfused_config.json")
    args.fe_config = args.fe_config or os.path.join(golden, "feature_extractor_config.json")

    refcommon.setup_blas_env(args.threads)
    if args.write_wavs:
        os.makedirs(args.write_wavs, exist_ok=True)
        for p in write_wavs(args.write_wavs, 8, seed=100):
            print(p)
        return
    refcommon.import_reference()
    if args.case:
        run_case(args)
        return

    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in ALL_CASES and not c.startswith("audio_files_b")]
    if unknown:
        ap.error(f"unknown case(s): {unknown}; known: {ALL_CASES} (or audio_files_bN)")
    with tempfile.TemporaryDirectory(prefix="synclap_refbench_") as tmp:
        wav_dir = args.wav_dir
        if wav_dir is None and any(c.startswith("audio") for c in cases):
            wav_dir = tmp
            write_wavs(tmp, 8, seed=100)
        status = 0
        for case in cases:
            cmd = [sys.executable, os.path.abspath(__file__), "--case", case, "--threads", str(args.threads),
                   "--text-batch", str(args.text_batch), "--config", args.config, "--fe-config", args.fe_config]
            if wav_dir:
                cmd += ["--wav-dir", wav_dir]
            if args.quick:
                cmd.append("--quick")
            r = subprocess.run(cmd)
            if r.returncode != 0:
                print(f"case {case} failed with status {r.returncode}", file=sys.stderr)
                status = 1
        sys.exit(status)


if __name__ == "__main__":
    main()
