"""Worker threads for data parallelism inside one training step.

numpy releases the GIL inside its array loops and BLAS calls, so B streams
split into W groups can run their forward/backward passes on W cores at
once; only the short Python glue between numpy calls is serialised.
"""
from __future__ import annotations

import os
import threading

ENV = "CHARRNN_THREADS"
_lock = threading.Lock()
_pool = None                 # a concurrent.futures.ThreadPoolExecutor, made on first use
_pool_size = 0


def max_workers() -> int:
    """CHARRNN_THREADS if set (>= 1), else the CPUs this process may use."""
    value = os.environ.get(ENV, "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):    # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _get_pool(n: int):
    global _pool, _pool_size
    from concurrent.futures import ThreadPoolExecutor   # not at import: start-up time
    with _lock:
        if _pool is None or _pool_size < n:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="charrnn")
            _pool_size = n
        return _pool


def _forget_pool_in_child():
    """A forked child has none of the parent's worker threads (a pool made
    before the fork would take its jobs and never run them): start afresh."""
    global _lock, _pool, _pool_size
    _lock = threading.Lock()
    _pool, _pool_size = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def run(tasks):
    """Call every zero-argument function in tasks, the first in this thread and
    the rest in worker threads; return their results in order.  The first
    exception raised (in task order) propagates after all have finished."""
    if len(tasks) <= 1:
        return [t() for t in tasks]
    pool = _get_pool(len(tasks) - 1)
    futures = [pool.submit(t) for t in tasks[1:]]
    results, error = [None] * len(tasks), None
    try:
        results[0] = tasks[0]()
    except BaseException as e:          # still wait: workers write into shared state
        error = e
    for k, f in enumerate(futures, start=1):
        try:
            results[k] = f.result()
        except BaseException as e:
            error = error or e
    if error is not None:
        raise error
    return results


def submit(fn, *args):
    """Run fn(*args) in a worker thread; returns its Future (jobs submitted
    from one thread run in order when the pool has a single worker)."""
    return _get_pool(1).submit(fn, *args)


def splits(n: int, parts: int):
    """Cut range(n) into `parts` contiguous slices of near-equal length."""
    parts = max(1, min(parts, n))
    bounds = [n * k // parts for k in range(parts + 1)]
    return [slice(bounds[k], bounds[k + 1]) for k in range(parts)]
