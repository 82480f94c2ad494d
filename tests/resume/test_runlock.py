"""One run per checkpoint folder: the OS-level lock of charrnn.runlock, with
real concurrent processes.  A second train, --resume or --init-from into a
held folder exits 1 with one line naming the folder and the holder's pid and
writes nothing; a lock left by a killed process never blocks; sample, eval
and inspect never need the lock and always read a whole checkpoint."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from charrnn.store import checkpoint as ckpt
from charrnn.api import verbs as commands
from charrnn.store import runlock

from conftest import make_corpus
from helpers import charrnn, clean_env, start, wait_for_iteration

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX flock")

ARGS = ["--hidden-size", "12", "--seq-len", "8", "--batch-size", "4", "--seed", "5",
        "--quiet"]


@pytest.fixture
def texts(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text(make_corpus(6000, seed=1))
    b.write_text(make_corpus(6000, seed=2))
    return a, b


def snapshot(folder: Path) -> dict:
    """Every file of folder with its bytes and modification time."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


HOLDER = ("import sys, time; from charrnn.store import runlock; lock = runlock.hold(sys.argv[1]); "
          "print('held', flush=True); time.sleep(120)")


def hold_in_other_process(folder: Path) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE,
                         text=True, env=clean_env())
    assert p.stdout.readline() == "held\n"
    return p


def assert_refused(r, folder: Path, pid: int):
    assert r.returncode == 1, r.stderr
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"checkpoint folder {folder} is in use" in lines[0] and f"process {pid}" in lines[0]


def test_two_real_train_processes_into_one_folder(tmp_path, texts):
    """Run a trains; run b into the same folder while a runs is refused (even
    with --overwrite) and a's checkpoints are a's when it ends."""
    a, b = texts
    ck = tmp_path / "ck"
    first = start("train", a, "--checkpoint-dir", ck, "--max-iters", "100000",
                  "--eval-every", "20", *ARGS)
    try:
        wait_for_iteration(ck / "latest.npz", 20, first)
        stale = ck / f"best.npz.tmp-{dead_pid()}"
        stale.write_bytes(b"left by a killed run")
        for extra in ([], ["--overwrite"]):
            r = charrnn("train", b, "--checkpoint-dir", ck, "--max-iters", "5", *ARGS, *extra)
            assert_refused(r, ck, first.pid)
        assert stale.exists()            # the refused run cleaned nothing up
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGINT)
        out, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    for name in ("latest.npz", "best.npz"):
        c = ckpt.load(str(ck / name))
        assert c.config["data"]["sources"] == [str(a)]
    assert ckpt.load(str(ck / "latest.npz")).state["iteration"] > 20
    assert not (ck / ".lock").exists()   # a run that ends removes its lock file
    # once the first run is gone the folder is free again
    r = charrnn("train", a, "--checkpoint-dir", ck, "--resume", "--max-iters",
                str(ckpt.load(str(ck / "latest.npz")).state["iteration"] + 3), *ARGS)
    assert r.returncode == 0, r.stderr


def test_a_folder_held_by_a_live_process_refuses_every_kind_of_run(tmp_path, texts):
    a, b = texts
    ck = tmp_path / "ck"
    r = charrnn("train", a, "--checkpoint-dir", ck, "--max-iters", "10", "--eval-every", "5",
                *ARGS)
    assert r.returncode == 0, r.stderr
    (ck / f"latest.npz.tmp-{dead_pid()}").write_bytes(b"stale")
    holder = hold_in_other_process(ck)
    try:
        before = snapshot(ck)
        tries = {
            "new": ["train", b, "--checkpoint-dir", ck, "--overwrite"],
            "resume": ["train", a, "--checkpoint-dir", ck, "--resume", "--max-iters", "20"],
            "resume path": ["train", a, "--resume", ck / "latest.npz", "--max-iters", "20"],
            "init-from": ["train", b, "--init-from", tmp_path / "elsewhere.npz",
                          "--checkpoint-dir", ck, "--overwrite"],
        }
        (tmp_path / "elsewhere.npz").write_bytes((ck / "latest.npz").read_bytes())
        for name, args in tries.items():
            r = charrnn(*args, *ARGS)
            assert_refused(r, ck, holder.pid)
            assert snapshot(ck) == before, name
        # readers never need the lock
        for args in (["sample", "--len", "20", "--seed", "1"], ["inspect", "--json"],
                     ["eval", str(a)]):
            r = charrnn(*args, "--checkpoint-dir", ck)
            assert r.returncode == 0 and r.stdout, (args, r.stderr)
        assert snapshot(ck) == before
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_run_does_not_block(tmp_path, texts):
    a, _ = texts
    ck = tmp_path / "ck"
    proc = start("train", a, "--checkpoint-dir", ck, "--max-iters", "100000", "--eval-every",
                 "10", *ARGS)
    try:
        wait_for_iteration(ck / "latest.npz", 10, proc)
    finally:
        proc.kill()                        # SIGKILL: no clean-up code runs
        proc.communicate()
    assert (ck / ".lock").read_text().strip() == str(proc.pid)     # left behind ...
    it = ckpt.load(str(ck / "latest.npz")).state["iteration"]
    r = charrnn("train", a, "--checkpoint-dir", ck, "--resume", "--max-iters", str(it + 5), *ARGS)
    assert r.returncode == 0, r.stderr                               # ... but not in force
    assert ckpt.load(str(ck / "latest.npz")).state["iteration"] == it + 5
    assert not (ck / ".lock").exists()


def test_the_lock_in_process(tmp_path):
    """hold() twice on one folder fails even within one process (separate open
    file descriptions); release frees it and removes the file."""
    lock = runlock.hold(str(tmp_path))
    assert runlock.holder_pid(str(tmp_path)) == os.getpid()
    with pytest.raises(runlock.FolderLocked, match=f"process {os.getpid()}"):
        runlock.hold(str(tmp_path))
    lock.release()
    assert not (tmp_path / ".lock").exists()
    (tmp_path / ".lock").write_text("999999999\n")        # a stale file: no lock on it
    with runlock.hold(str(tmp_path)):
        assert runlock.holder_pid(str(tmp_path)) == os.getpid()


def test_sampling_in_a_loop_while_a_run_saves_always_reads_a_whole_checkpoint(tmp_path, texts):
    a, _ = texts
    ck = tmp_path / "ck"
    proc = start("train", a, "--checkpoint-dir", ck, "--max-iters", "100000", "--eval-every",
                 "2", "--hidden-size", "64", "--seq-len", "8", "--batch-size", "4", "--quiet")
    reads, seen = 0, set()
    try:
        wait_for_iteration(ck / "latest.npz", 2, proc)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4 or len(seen) < 5:
            assert time.monotonic() - t0 < 60, "the run saved too rarely"
            text = commands.sample(None, str(ck), 10, seed=1)   # never raises
            assert len(text) == 10
            c = ckpt.load(str(ck / "latest.npz"))
            seen.add(c.state["iteration"])
            reads += 1
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert reads >= 10 and len(seen) >= 5       # the reads overlapped many saves


@pytest.mark.parametrize("content, pid", [(b"4242\n", 4242), (b"", None), (b"not a pid", None),
                                          (b"4242" + b"\n" * 40 + b"junk", 4242),
                                          (b"4242" + b" " * 28 + b"7", 4242),
                                          (b"\xff\xfe1", None)])
def test_the_holder_pid_is_read_from_the_first_32_bytes_of_the_lock_file(tmp_path, content, pid):
    """A lock file is read as bytes and only its first 32 (a pid and a
    newline): what follows, however long, is never read."""
    (tmp_path / runlock.LOCK_NAME).write_bytes(content)
    assert runlock.holder_pid(str(tmp_path)) == pid


def lock_from_another_description(folder: Path, content: bytes):
    """Hold folder's lock through a separate open file description (as a
    second process would) with content in the file; returns the fd."""
    import fcntl
    fd = os.open(folder / runlock.LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, content)
    return fd


@pytest.mark.parametrize("written_after", [None, 0, 3])
def test_a_refusal_waits_briefly_for_the_holder_to_write_its_pid(tmp_path, monkeypatch,
                                                                  written_after):
    """A holder writes its pid right after it locks; a refused run polls the
    file every 10 ms for at most 0.2 s (20 polls) and names the pid as soon as
    it is there, or "another process" when it never comes."""
    fd = lock_from_another_description(tmp_path, b"4242\n" if written_after == 0 else b"")
    sleeps = []

    def sleep(s):
        sleeps.append(s)
        if written_after is not None and len(sleeps) == written_after:
            os.write(fd, b"4343\n")
    monkeypatch.setattr(time, "sleep", sleep)
    try:
        with pytest.raises(runlock.FolderLocked) as e:
            runlock.hold(str(tmp_path))
    finally:
        os.close(fd)
    who = {None: "another process", 0: "process 4242", 3: "process 4343"}[written_after]
    assert str(e.value) == (f"checkpoint folder {tmp_path} is in use by a training run ({who}); "
                            f"wait for it to finish or choose another --checkpoint-dir")
    assert sleeps == [0.01] * {None: 20, 0: 0, 3: 3}[written_after]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def hold_while_removing(folder: Path, monkeypatch, times: int):
    """runlock.hold(folder) while the lock file is removed right after each
    of its first `times` opens (as a holder's release would, between our
    open and flock): (the lock, how many opens it made)."""
    real_open, calls = os.open, []

    def open_then_removed(path, *a):
        fd = real_open(path, *a)
        calls.append(path)
        if len(calls) <= times:
            os.unlink(path)
        return fd
    monkeypatch.setattr(runlock.os, "open", open_then_removed)
    try:
        return runlock.hold(str(folder)), len(calls)
    finally:
        monkeypatch.undo()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_a_lock_file_removed_by_its_holder_while_opened_is_opened_again(tmp_path, monkeypatch):
    """A holder that ends removes its lock file; a run that opened it just
    before locks a file nobody else will ever open.  hold() sees the file
    at the path is not the one it locked, closes it and opens the new one:
    the lock it returns is the file at the path, and no descriptor leaks."""
    before = open_fds()
    lock, calls = hold_while_removing(tmp_path, monkeypatch, times=1)
    assert calls == 2
    assert lock.fd is not None and lock.folder == str(tmp_path)
    assert os.fstat(lock.fd).st_ino == (tmp_path / runlock.LOCK_NAME).stat().st_ino
    assert runlock.holder_pid(str(tmp_path)) == os.getpid()
    with pytest.raises(runlock.FolderLocked):
        runlock.hold(str(tmp_path))
    lock.release()
    assert open_fds() == before


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_a_lock_file_replaced_every_time_is_given_up_after_100_tries(tmp_path, monkeypatch):
    """Should the file at the path never be the one opened (a pathological
    race), hold() stops after 100 tries and goes on unlocked, leaking no
    descriptor."""
    before = open_fds()
    lock, calls = hold_while_removing(tmp_path, monkeypatch, times=10**6)
    assert calls == 100
    assert lock.fd is None and lock.folder == str(tmp_path)
    lock.release()
    assert open_fds() == before


@pytest.mark.parametrize("how", ["no fcntl module", "flock not supported"])
def test_without_flock_the_run_goes_on_unlocked(tmp_path, monkeypatch, how):
    """Without fcntl (not POSIX) or on a file system that refuses flock
    (ENOLCK, some network mounts) hold() returns an unlocked RunLock for the
    folder instead of failing; its release does nothing."""
    if how == "no fcntl module":
        monkeypatch.setitem(sys.modules, "fcntl", None)      # import fcntl -> ImportError
    else:
        import errno
        import fcntl

        def flock(fd, op):
            raise OSError(errno.ENOLCK, "No locks available")
        monkeypatch.setattr(fcntl, "flock", flock)
    lock = runlock.hold(str(tmp_path))
    again = runlock.hold(str(tmp_path))             # nothing is locked, so no refusal
    assert (lock.folder, lock.fd) == (str(tmp_path), None)
    assert (again.folder, again.fd) == (str(tmp_path), None)
    lock.release()
    again.release()
    assert (tmp_path / runlock.LOCK_NAME).exists() == (how == "flock not supported")


def test_the_lock_file_is_made_readable_by_all_and_writable_by_its_owner(tmp_path):
    """Mode 0o644 (under the usual umask 022), like the checkpoints: other
    users can read who holds the folder."""
    old = os.umask(0o022)
    try:
        with runlock.hold(str(tmp_path)):
            mode = (tmp_path / runlock.LOCK_NAME).stat().st_mode & 0o777
    finally:
        os.umask(old)
    assert mode == 0o644, oct(mode)
