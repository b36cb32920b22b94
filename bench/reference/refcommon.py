"""Shared helpers for the reference (HF transformers CLAP) baseline benchmarks.

Offline tooling only: nothing in synclap imports this. The reference itself is NOT part of this repository;
it is found through SYNCLAP_REFERENCE_PYTHONPATH (default /work/ref, see README.md next to this file).

Import this module BEFORE numpy/torch: OpenBLAS reads its environment variables only when it is loaded.
"""
import json
import os
import platform
import resource
import sys
import time

DEFAULT_REFERENCE = "/work/ref"


def cpu_blas_coretype(cpuinfo_path="/proc/cpuinfo"):
    """The OpenBLAS core type for this CPU, by the same rule synclap uses (synclap::detect_blas_coretype):
    AVX-512 F/DQ/BW/VL -> SkylakeX; AVX2 + FMA -> Zen on AMD/Hygon, Haswell otherwise; else "" (leave it)."""
    try:
        with open(cpuinfo_path) as f:
            text = f.read()
    except OSError:
        return ""
    flags, vendor = set(), ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "flags" and not flags:
            flags = set(value.split())
        elif key == "vendor_id" and not vendor:
            vendor = value.strip()
    if {"avx512f", "avx512dq", "avx512bw", "avx512vl"} <= flags:
        return "SkylakeX"
    if {"avx", "avx2", "fma"} <= flags:
        return "Zen" if vendor in ("AuthenticAMD", "HygonGenuine") else "Haswell"
    return ""


def setup_blas_env(blas_threads):
    """Sets OPENBLAS_CORETYPE (unless already set) and the BLAS/OpenMP thread counts. Returns the core type."""
    if "numpy" in sys.modules or "torch" in sys.modules:
        raise RuntimeError("setup_blas_env must run before numpy/torch are imported")
    core = os.environ.get("OPENBLAS_CORETYPE") or cpu_blas_coretype()
    if core:
        os.environ["OPENBLAS_CORETYPE"] = core
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(blas_threads)
    return core


def add_reference_to_path():
    """Puts the reference's source folder first on sys.path. Returns the folder used."""
    root = os.environ.get("SYNCLAP_REFERENCE_PYTHONPATH", DEFAULT_REFERENCE)
    # Accept either the folder that holds src/ or the src/ folder itself.
    src = os.path.join(root, "src")
    path = src if os.path.isdir(os.path.join(src, "transformers")) else root
    if path not in sys.path:
        sys.path.insert(0, path)
    return path


def import_reference():
    """Imports transformers from the reference location; exits with status 3 and a note if it cannot."""
    path = add_reference_to_path()
    try:
        import transformers  # noqa: F401
        from transformers import ClapConfig, ClapFeatureExtractor, ClapModel  # noqa: F401
    except Exception as e:  # any import problem means "no reference here"
        print(f"reference not importable from {path}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(3)
    return path


def peak_rss_mb(who=resource.RUSAGE_SELF):
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(who).ru_maxrss / 1024.0


def cpu_time():
    """User+system CPU seconds of this process (all its threads)."""
    return time.process_time()


def now():
    return time.perf_counter()


def emit(record):
    """Prints one JSON line (flushed) with common provenance fields added."""
    out = {"side": "reference"}
    out.update(record)
    out.setdefault("openblas_coretype", os.environ.get("OPENBLAS_CORETYPE", ""))
    out.setdefault("omp_wait_policy", os.environ.get("OMP_WAIT_POLICY", "(default)"))
    out.setdefault("python", platform.python_version())
    print(json.dumps(out), flush=True)


def load_feature_extractor_config(path):
    """The released laion/clap-htsat-* preprocessor settings as ClapFeatureExtractor keyword arguments."""
    with open(path) as f:
        cfg = json.load(f)
    return {k: v for k, v in cfg.items() if not k.startswith("_") and k != "feature_extractor_type"}


def golden_dir():
    return os.environ.get("SYNCLAP_GOLDEN_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "golden"))
