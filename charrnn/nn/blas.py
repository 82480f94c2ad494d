"""BLAS settings: environment before numpy loads, thread count at run time.

Nothing here imports numpy at module level: ``configure_env`` must run
before the first ``import numpy`` to have any effect.
"""
from __future__ import annotations

import contextlib
import os

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_AVX512 = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}


def cpu_flags(path: str = "/proc/cpuinfo") -> tuple[str, set]:
    """(vendor id, flags) of the first CPU listed; ('', set()) if unknown."""
    vendor, flags = "", set()
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "vendor_id" and not vendor:
                    vendor = value.strip()
                elif key == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return vendor, flags


def configure_env(environ=None, cpuinfo: str = "/proc/cpuinfo") -> None:
    """Call before numpy is imported; never overrides what the user set.

    - One BLAS thread: charrnn splits a batch across its own worker threads
      (charrnn.parallel), and its per-step matrices are too small for BLAS
      threads to pay (see bench/throughput.py).
    - OPENBLAS_CORETYPE=SkylakeX on AMD CPUs with AVX-512 (Zen 4/5): OpenBLAS
      0.3.x does not recognise every such model and falls back to its AVX2
      (Haswell) kernels, which run float32 GEMMs at about half the speed.
    """
    env = os.environ if environ is None else environ
    if not any(v in env for v in THREAD_VARS):
        env["OPENBLAS_NUM_THREADS"] = "1"
    if "OPENBLAS_CORETYPE" not in env:
        vendor, flags = cpu_flags(cpuinfo)
        if vendor == "AuthenticAMD" and _AVX512 <= flags:
            env["OPENBLAS_CORETYPE"] = "SkylakeX"


# ------------------------------------------------------------ run time
_API = None


def _find_api():
    """(set_num_threads, get_num_threads) of the OpenBLAS numpy uses, or (None, None)."""
    import ctypes
    import glob

    import numpy as np

    paths = []
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f
                            if "openblas" in line.lower() and ".so" in line})
    except OSError:
        pass
    here = os.path.dirname(np.__file__)
    paths += glob.glob(os.path.join(here, "..", "numpy.libs", "*openblas*.so*"))
    paths += glob.glob(os.path.join(here, ".libs", "*openblas*.so*"))
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    setter.argtypes, setter.restype = [ctypes.c_int], None
                    getter.argtypes, getter.restype = [], ctypes.c_int
                    return setter, getter
    return None, None


def _api():
    global _API
    if _API is None:
        try:
            _API = _find_api()
        except Exception:            # pragma: no cover - exotic builds: leave BLAS alone
            _API = (None, None)
    return _API


def get_threads() -> int | None:
    """OpenBLAS's current thread count, or None when it cannot be found."""
    getter = _api()[1]
    return int(getter()) if getter is not None else None


def set_threads(n: int) -> bool:
    """Set OpenBLAS's thread count; False when it cannot be found."""
    setter = _api()[0]
    if setter is None:
        return False
    setter(int(n))
    return True


@contextlib.contextmanager
def single_threaded():
    """BLAS on one thread inside the block (for code that runs its own
    threads); restores the previous count.  A no-op without OpenBLAS."""
    old = get_threads()
    if old is None or old == 1:
        yield
        return
    set_threads(1)
    try:
        yield
    finally:
        set_threads(old)
