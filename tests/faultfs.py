"""A fault-injecting file-system layer for tests, no privileges needed.

``install(root, "readonly")`` makes the folder ``root`` behave like a
read-only mount (EROFS on every attempt to create, write, rename or remove
anything below it; ``os.access(..., W_OK)`` is False), and
``install(root, "full", free_bytes)`` like a disk with ``free_bytes`` left
(ENOSPC once the files written below it would need more; removing a file
gives its bytes back).  It patches the Python-level entry points charrnn
and numpy use (``open``, ``os.open``/``os.write``, ``os.replace``, ...), so
it acts inside one process: run a real ``charrnn`` under it with

    python -c "import faultfs; faultfs.main()" ROOT MODE FREE_BYTES charrnn-args...

(tests/ on PYTHONPATH).  The real-mount tests in test_crash.py need root for
``unshare -m``; this layer covers the same behaviour for everyone else.
"""
from __future__ import annotations

import builtins
import errno
import io
import os
import sys

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class _Layer:
    def __init__(self, root: str, mode: str, free_bytes: int):
        if mode not in ("readonly", "full"):
            raise ValueError(f"mode must be readonly or full, not {mode!r}")
        self.root = os.path.realpath(root)
        self.mode = mode
        self.free = free_bytes
        self.write_fds: set[int] = set()

    def inside(self, path) -> bool:
        if isinstance(path, int):
            return False
        try:
            p = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return p == self.root or p.startswith(self.root + os.sep)

    @staticmethod
    def fail(code, path=None):
        raise OSError(code, os.strerror(code), None if path is None else os.fsdecode(path))

    def spend(self, n: int):
        if n > self.free:
            self.free = 0
            self.fail(errno.ENOSPC)
        self.free -= n

    def give_back(self, path):
        try:
            if os.path.isfile(path):
                self.free += os.path.getsize(path)
        except OSError:
            pass


class _CountingFile:
    """A writable file whose writes draw on the layer's free bytes."""

    def __init__(self, f, layer: _Layer):
        self._f, self._layer = f, layer

    def write(self, b):
        self._layer.spend(len(b))
        return self._f.write(b)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def __iter__(self):
        return iter(self._f)

    def __getattr__(self, name):
        return getattr(self._f, name)


def install(root, mode: str, free_bytes: int = 0) -> None:
    layer = _Layer(root, mode, free_bytes)
    real_open, real_os_open, real_write = builtins.open, os.open, os.write
    real_close, real_access = os.close, os.access
    ro = mode == "readonly"

    def writes(mode_str):
        return any(c in mode_str for c in "wax+")

    def fake_open(file, mode="r", *args, **kw):
        if layer.inside(file) and writes(mode):
            if ro:
                layer.fail(errno.EROFS, file)
            f = real_open(file, mode, *args, **kw)
            return _CountingFile(f, layer)
        return real_open(file, mode, *args, **kw)

    def fake_os_open(path, flags, *args, **kw):
        if layer.inside(path) and flags & _WRITE_FLAGS:
            if ro:
                layer.fail(errno.EROFS, path)
            fd = real_os_open(path, flags, *args, **kw)
            layer.write_fds.add(fd)
            return fd
        return real_os_open(path, flags, *args, **kw)

    def fake_write(fd, data):
        if fd in layer.write_fds:
            layer.spend(len(data))
        return real_write(fd, data)

    def fake_close(fd):
        layer.write_fds.discard(fd)
        return real_close(fd)

    def fake_access(path, how, *args, **kw):
        if ro and layer.inside(path) and how & os.W_OK:
            return False
        return real_access(path, how, *args, **kw)

    def guard(real, n_paths=1, frees=None):
        def fn(*args, **kw):
            paths = args[:n_paths]
            if any(layer.inside(p) for p in paths):
                if real is os.mkdir and os.path.exists(paths[0]):
                    layer.fail(errno.EEXIST, paths[0])
                if ro:
                    layer.fail(errno.EROFS, paths[0])
                if frees is not None:
                    layer.give_back(args[frees])
            return real(*args, **kw)
        fn.__name__ = real.__name__
        return fn

    builtins.open = io.open = fake_open
    os.open, os.write, os.close, os.access = fake_os_open, fake_write, fake_close, fake_access
    os.replace = guard(os.replace, 2, frees=1)
    os.rename = guard(os.rename, 2, frees=1)
    os.unlink = guard(os.unlink, frees=0)
    os.remove = guard(os.remove, frees=0)
    os.mkdir = guard(os.mkdir)
    os.rmdir = guard(os.rmdir)
    os.truncate = guard(os.truncate)
    os.utime = guard(os.utime)
    os.chmod = guard(os.chmod)


def main() -> None:
    """python -c "import faultfs; faultfs.main()" ROOT MODE FREE_BYTES charrnn-args..."""
    root, mode, free = sys.argv[1], sys.argv[2], int(sys.argv[3])
    install(root, mode, free)
    sys.argv = ["charrnn", *sys.argv[4:]]
    from charrnn.launch import main as charrnn_main
    charrnn_main()
