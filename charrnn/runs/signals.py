"""Ctrl-C and SIGTERM during training: a flag the loop checks between steps."""
from __future__ import annotations

import contextlib
import signal


class StopFlag:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps, so a
    step is never cut in half and the saved state is always consistent.
    Further signals (a second Ctrl-C while the final checkpoint is written)
    are counted, never raised: a save is not cut in half either."""

    def __init__(self, linger: bool = False):
        """linger: once a signal was caught, keep ignoring SIGINT/SIGTERM after
        exit instead of restoring the old handlers (for a process that is
        about to end: a late Ctrl-C must not turn into a traceback)."""
        self.signum = None
        self.count = 0
        self.linger = linger
        self._old = {}

    def __enter__(self):
        import threading
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        self.count += 1

    def __exit__(self, *exc):
        for s, h in self._old.items():
            if self.linger and self.signum is not None:
                h = signal.SIG_IGN
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        self._old = {}


@contextlib.contextmanager
def deferred(stop: StopFlag | None = None):
    """Signals deferred for a block: by ``stop`` when the caller already
    entered it (so they stay deferred after the block), else by a StopFlag
    of the block's own.  Yields the flag."""
    if stop is not None:
        yield stop
    else:
        with StopFlag() as flag:
            yield flag
