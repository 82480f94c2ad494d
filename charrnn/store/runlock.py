"""One training run per checkpoint folder: an OS-level lock.

``hold(folder)`` takes an exclusive ``fcntl.flock`` on ``<folder>/.lock`` and
writes the holder's process id into it.  The kernel releases the lock when
the process ends in any way (a ``kill -9`` included), so a lock file left
behind never blocks anyone: only a live holder does.  A run that ends
normally removes the file (while still holding the lock; a process that
opened the removed file retries on the new one).  ``charrnn train``
holds it for its whole life; ``sample``, ``eval`` and ``inspect`` never take
it (checkpoints are replaced by atomic renames, so readers always see a
whole file).

Where flock is not available (not POSIX) or the file system refuses it
(some network mounts), the run goes on unlocked.
"""
from __future__ import annotations

import errno
import os

from charrnn.errors import CharRNNError

LOCK_NAME = ".lock"


class FolderLocked(CharRNNError):
    """Another live process trains into this folder."""


class RunLock:
    """An acquired folder lock; ``release()`` (or process exit) frees it."""

    def __init__(self, folder: str, fd: int | None):
        self.folder, self.fd = folder, fd

    def release(self) -> None:
        """Remove the lock file (while still holding it) and drop the lock."""
        if self.fd is not None:
            try:
                if _same_inode(self.fd, os.path.join(self.folder, LOCK_NAME)):
                    os.unlink(os.path.join(self.folder, LOCK_NAME))
            except OSError:
                pass
            try:
                os.close(self.fd)       # closing the descriptor drops the flock
            finally:
                self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def holder_pid(folder: str) -> int | None:
    """The process id written in folder's lock file (None if unreadable)."""
    try:
        with open(os.path.join(folder, LOCK_NAME), "rb") as f:
            return int(f.read(32).strip() or b"x")
    except (OSError, ValueError):
        return None


def hold(folder: str) -> RunLock:
    """Lock an existing folder for this process, or raise FolderLocked naming
    the folder and the holder's pid.  Raises CharRNNError when the lock file
    cannot be created (folder not writable)."""
    try:
        import fcntl
    except ImportError:                 # not POSIX: no locking
        return RunLock(folder, None)
    path = os.path.join(folder, LOCK_NAME)
    for _ in range(100):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)    # not inherited (PEP 446)
        except OSError as e:
            raise CharRNNError(f"checkpoint folder {folder} is not writable ({e.strerror}); "
                               f"choose another --checkpoint-dir")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            _refuse(folder, e)
            return RunLock(folder, None)    # flock unsupported here: go on unlocked
        if _same_inode(fd, path):
            break
        os.close(fd)        # its holder removed that file while we opened it: again
    else:
        return RunLock(folder, None)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError:
        pass                            # the lock holds even without the pid in it
    return RunLock(folder, fd)


def _same_inode(fd: int, path: str) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _refuse(folder: str, e: OSError) -> None:
    """Raise FolderLocked when flock failed because another process holds
    the lock; return for any other failure (flock not supported)."""
    if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        return
    import time
    pid = None
    for _ in range(20):         # the holder writes its pid right after locking
        pid = holder_pid(folder)
        if pid is not None:
            break
        time.sleep(0.01)
    who = f"process {pid}" if pid is not None else "another process"
    raise FolderLocked(f"checkpoint folder {folder} is in use by a training run ({who}); "
                       f"wait for it to finish or choose another --checkpoint-dir")
