"""Crash safety: kill -9 at any moment of a save, full disks, read-only
folders and diverging training never cost the previous checkpoint."""
from __future__ import annotations

import errno
import math
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from charrnn.store import checkpoint as ckpt
from charrnn.cli.commands import cli
from charrnn.errors import CharRNNError
from charrnn.runs.trainer import Trainer

from conftest import CLEAN_ENV
from helpers import charrnn, clean_env, config, continued, corpus, make_checkpoint, start, TESTS, TEXT, wait_for_iteration
from helpers import charrnn_command as command

ARGS = ["--hidden-size", "12", "--seq-len", "8", "--batch-size", "4", "--seed", "5"]


def _validate_folder(folder: Path, allowed_iterations) -> dict:
    """Load and validate every *.npz; count temporary files.  Raises on any
    unreadable checkpoint."""
    names = sorted(n for n in os.listdir(folder) if n != ".lock")   # a killed run's lock file
    npz = [n for n in names if n.endswith(".npz")]
    tmp = [n for n in names if ".npz.tmp-" in n]
    assert set(names) == set(npz) | set(tmp), names
    for n in npz:
        ck = ckpt.load(str(folder / n))            # CheckpointError = unreadable
        if allowed_iterations is not None:
            assert ck.state["iteration"] in allowed_iterations, (n, ck.state["iteration"])
    return {"npz": npz, "tmp": tmp}


# ------------------------------------------------------------------ kill -9
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_kill_9_at_200_random_points_of_saves_leaves_every_checkpoint_loadable(tmp_path):
    """A child process saves latest.npz/best.npz in a loop (the real
    checkpoint.save: temporary file, fsync, rename); it is killed with SIGKILL
    at a random moment, 200 times.  After every kill, every .npz in the folder
    loads and validates and holds one of the versions that were written."""
    variants = [make_checkpoint(model="gru", optimizer="adam", hidden=32, layers=1, seed=s)
                for s in range(3)]
    for i, v in enumerate(variants):
        v.state["iteration"] = 100 + i
    folder = tmp_path / "ck"
    folder.mkdir()
    ckpt.save(str(folder / "latest.npz"), variants[0])      # the previous checkpoint
    t = time.perf_counter()
    ckpt.save(str(folder / "latest.npz"), variants[0])
    save_s = time.perf_counter() - t
    rng = random.Random(6)
    kills, mid_save, cleaned = 200, 0, 0
    for k in range(kills):
        pid = os.fork()
        if pid == 0:                                          # child: save forever
            try:
                i = rng.randrange(3)
                while True:
                    i += 1
                    ckpt.save(str(folder / "latest.npz"), variants[i % 3])
                    if i % 2:
                        ckpt.save(str(folder / "best.npz"), variants[(i + 1) % 3])
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0, 1.5 * save_s))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        seen = _validate_folder(folder, {100, 101, 102})
        assert "latest.npz" in seen["npz"]
        if seen["tmp"]:
            mid_save += 1
            assert all(n.endswith(f".tmp-{pid}") for n in seen["tmp"])
            removed = ckpt.clean_stale_temporaries(str(folder))
            cleaned += len(removed)
            assert sorted(os.listdir(folder)) == sorted(seen["npz"])
    print("kill -9 during checkpoint.save:",
          f"{kills} random points, {mid_save} of them mid-write (temporary file left), "
          f"0 unreadable checkpoints, {cleaned} stale temporaries cleaned")
    # The kills really did land inside saves (not only between them); how
    # many depends on the machine's load (about half on an idle one, down to a
    # quarter with other processes on both cores), so the bar is low.
    assert mid_save > kills // 10


def test_kill_9_a_training_process_repeatedly_then_resume(tmp_path):
    """`charrnn train --eval-every 1` saves at every step; kill -9 it at random
    moments, check every .npz, resume; a stale temporary of the killed process
    is removed by the next run."""
    text = tmp_path / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    d = tmp_path / "run"
    rng = random.Random(3)
    kills, unreadable, stale_seen = 6, 0, 0
    last = 0
    for k in range(kills):
        extra = ["--resume"] if k else ARGS
        proc = start("train", text, "--checkpoint-dir", d, *extra, "--max-iters", 100000,
                     "--eval-every", 1, "--quiet")
        wait_for_iteration(d / "latest.npz", last + 2, proc)     # this process saves now
        time.sleep(rng.uniform(0, 0.2))
        proc.kill()
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        try:
            seen = _validate_folder(d, None)
        except Exception:
            unreadable += 1
            raise
        stale_seen += len(seen["tmp"])
        it = ckpt.load(str(d / "latest.npz")).state["iteration"]
        assert it >= last
        last = it
    # a normal run cleans up what the killed one left
    stale = d / f"latest.npz.tmp-{proc.pid}"
    stale.write_bytes(b"PK half written")
    r = charrnn("train", text, "--checkpoint-dir", d, "--resume", "--max-iters", last + 3,
                "--quiet")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(d)) == ["best.npz", "latest.npz"]
    assert ckpt.load(str(d / "latest.npz")).state["iteration"] == last + 3
    print("kill -9 of `charrnn train --eval-every 1`:",
          f"{kills} kills at random moments, {unreadable} unreadable checkpoints, "
          f"{stale_seen} temporaries left by kills, all cleaned by the next run")


def test_stale_temporaries_are_removed_only_when_their_writer_is_dead(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        names = [f"latest.npz.tmp-{dead.pid}", f"best.npz.tmp-{dead.pid}",
                 "latest.npz.tmp-0",        # no process has id 0 (signalling 0 means our group)
                 f"latest.npz.tmp-{alive.pid}", f"latest.npz.tmp-{os.getpid()}",
                 "best.npz.tmp-1",          # init: alive in every pid namespace
                 "notes.txt.tmp-1", "latest.npz"]
        for n in names:
            (tmp_path / n).write_bytes(b"x")
        removed = ckpt.clean_stale_temporaries(str(tmp_path))
        assert sorted(os.path.basename(p) for p in removed) == sorted(names[:3])
        assert sorted(os.listdir(tmp_path)) == sorted(names[3:])
        time.sleep(0.2)
        assert alive.poll() is None, "asking whether a writer lives must not signal it"
    finally:
        alive.kill()
        alive.wait()


def test_a_writer_we_may_not_signal_is_alive_and_its_temporary_is_kept(tmp_path, monkeypatch):
    """Another user's process (kill answers EPERM) exists: its file stays;
    a process id the kernel does not know (ESRCH) is gone: its file goes."""
    def kill(pid, sig):
        assert sig == 0, "only the null signal may be sent"
        raise PermissionError(errno.EPERM, "not permitted") if pid == 4242 else \
            ProcessLookupError(errno.ESRCH, "no such process")
    monkeypatch.setattr(os, "kill", kill)
    for n in ("latest.npz.tmp-4242", "latest.npz.tmp-4343"):
        (tmp_path / n).write_bytes(b"x")
    removed = ckpt.clean_stale_temporaries(str(tmp_path))
    assert [os.path.basename(p) for p in removed] == ["latest.npz.tmp-4343"]
    assert os.listdir(tmp_path) == ["latest.npz.tmp-4242"]


# --------------------------------------------------------- full disk, read-only
def invoke(*args, **kw):
    return CliRunner(env=CLEAN_ENV).invoke(cli, [str(a) for a in args], **kw)


def one_line_error(result, code=1) -> str:
    assert result.exit_code == code, (result.exit_code, result.stderr, result.exception)
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    return result.stderr.strip()


def snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def run(tmp_path) -> tuple[Path, Path]:
    """(text file, folder of a run stopped at 23 iterations)."""
    text = tmp_path / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    d = tmp_path / "run"
    r = invoke("train", text, "--checkpoint-dir", d, *ARGS, "--max-iters", 23, "--eval-every",
               10, "--quiet")
    assert r.exit_code == 0, r.stderr
    return text, d


def _failing_writer(err, after_bytes=100):
    def writer(f, arrays):
        f.write(b"PK\x03\x04" + b"\x00" * after_bytes)       # part of it made it out
        raise OSError(err, os.strerror(err))
    return writer


@pytest.mark.parametrize("err, words", [(errno.ENOSPC, "free some disk space"),
                                        (errno.EDQUOT, "free some disk space"),
                                        (errno.EROFS, "read-only"),
                                        (errno.EIO, "another --checkpoint-dir")])
def test_failed_save_during_a_run_is_one_line_and_keeps_the_old_checkpoint(run, monkeypatch,
                                                                          err, words):
    text, d = run
    before = snapshot(d)
    monkeypatch.setattr(ckpt, "_savez", _failing_writer(err))
    line = one_line_error(invoke("train", text, "--checkpoint-dir", d, "--resume",
                                 "--max-iters", 40, "--quiet"))
    assert os.strerror(err) in line and words in line and "unchanged" in line
    assert str(d / "latest.npz") in line
    assert snapshot(d) == before                       # byte-identical, nothing stray


def test_failed_fsync_keeps_the_old_checkpoint_and_says_so(run, monkeypatch):
    """The data reached the temporary file but could not be made durable
    (fsync: EIO): the rename must not have happened yet, so latest.npz is
    the old one, byte for byte, as the message says."""
    text, d = run
    before = snapshot(d)
    real_fsync, failed = os.fsync, []

    def fsync(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):        # files fail; the folder's fsync works
            failed.append(fd)
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    line = one_line_error(invoke("train", text, "--checkpoint-dir", d, "--resume",
                                 "--max-iters", 40, "--quiet"))
    assert failed
    assert line == (f"charrnn: error: cannot write checkpoint {d / 'latest.npz'}: "
                    f"{os.strerror(errno.EIO)}; the previous checkpoint is unchanged; "
                    f"choose another --checkpoint-dir")
    assert snapshot(d) == before                       # byte-identical, nothing stray


def test_full_disk_on_a_fresh_run_leaves_nothing_behind(tmp_path, monkeypatch):
    text = tmp_path / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    monkeypatch.setattr(ckpt, "_savez", _failing_writer(errno.ENOSPC))
    line = one_line_error(invoke("train", text, "--checkpoint-dir", tmp_path / "ck", *ARGS,
                                 "--max-iters", 5, "--quiet"))
    assert "No space left" in line
    assert os.listdir(tmp_path / "ck") == []


def test_full_disk_when_writing_best_keeps_the_old_best(tmp_path, monkeypatch):
    """latest.npz was written, then the disk filled up: best.npz stays as it was."""
    tr = Trainer(config("rnn", max_iters=30, eval_every=10), corpus(), str(tmp_path))
    tr.validate = lambda: 10.0 / (1 + tr.iteration)          # always improving
    tr.run(progress=False)
    old_best = (tmp_path / "best.npz").read_bytes()
    real = ckpt._savez

    def writer(f, arrays):
        if os.path.basename(f.name).startswith("best"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(f, arrays)
    monkeypatch.setattr(ckpt, "_savez", writer)
    tr = continued(tr, max_iters=40)
    tr.validate = lambda: 10.0 / (1 + tr.iteration)
    with pytest.raises(CharRNNError, match="No space left") as e:
        tr.run(progress=False)
    assert "unchanged" in str(e.value) and "best.npz" in str(e.value)
    assert (tmp_path / "best.npz").read_bytes() == old_best
    assert ckpt.load(str(tmp_path / "latest.npz")).state["iteration"] == 40
    assert sorted(os.listdir(tmp_path)) == ["best.npz", "latest.npz"]


# Real read-only and full file systems need a private mount namespace (root or
# user namespaces).  chmod does not stop root, so it would prove nothing.
UNPRIVILEGED = ("; the same behaviour is covered without privileges by the fault-injecting "
                "layer (test_fault_layer_*)")


def _mount_namespace_works(tmp: Path) -> str | None:
    if not shutil.which("unshare") or not shutil.which("mount"):
        return "a real mount needs unshare and mount, not found" + UNPRIVILEGED
    probe = tmp / "probe"
    probe.mkdir()
    r = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs '{probe}'"],
                       capture_output=True, text=True)
    if r.returncode == 0:
        return None
    return (f"a real mount needs root or user namespaces (unshare -m said: "
            f"{r.stderr.strip() or r.returncode})" + UNPRIVILEGED)


def _in_namespace(script: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["unshare", "-m", "sh", "-ec", script], capture_output=True, text=True,
                          env={**clean_env(), **{k: str(v) for k, v in env.items()}}, timeout=120)


def test_real_read_only_checkpoint_folder(run, tmp_path):
    reason = _mount_namespace_works(tmp_path)
    if reason:
        pytest.skip(reason)
    text, d = run
    before = snapshot(d)
    cmd = " ".join(f"'{c}'" for c in command())
    r = _in_namespace(f'mount --bind "$D" "$D"; mount -o remount,bind,ro "$D"; '
                      f'touch "$D/probe" 2>/dev/null && echo WRITABLE >&2; '
                      f'{cmd} train "$T" --checkpoint-dir "$D" --resume --max-iters 40 '
                      f'|| echo "rc=$?" >&2', D=d, T=text)
    lines = r.stderr.splitlines()
    assert "WRITABLE" not in r.stderr, "the bind mount is not read-only"
    assert lines[-1] == "rc=1" and len(lines) == 2, r.stderr
    assert lines[0].startswith("charrnn: error:") and "not writable" in lines[0]
    assert r.stdout == ""
    assert snapshot(d) == before


def test_real_full_disk(run, tmp_path):
    """A tmpfs with room for the old checkpoints and half of a new one."""
    reason = _mount_namespace_works(tmp_path)
    if reason:
        pytest.skip(reason)
    text, d = run
    before = snapshot(d)
    page = 4096
    pages = sum(math.ceil(len(b) / page) for b in before.values())
    size_k = (pages + math.ceil(len(before["latest.npz"]) / page) // 2 + 1) * page // 1024
    out = tmp_path / "after"
    out.mkdir()
    cmd = " ".join(f"'{c}'" for c in command())
    r = _in_namespace(f'M="$O/mnt"; mkdir "$M"; mount -t tmpfs -o size={size_k}k tmpfs "$M"; '
                      f'cp "$D"/*.npz "$M"/; '
                      f'{cmd} train "$T" --checkpoint-dir "$M" --resume --max-iters 40 --quiet '
                      f'|| echo "rc=$?" >&2; cp "$M"/* "$O"/; ls -a "$M" > "$O/listing"',
                      D=d, T=text, O=out)
    lines = r.stderr.splitlines()
    assert lines[-1] == "rc=1" and len(lines) == 2, r.stderr
    assert "No space left on device" in lines[0] and "unchanged" in lines[0]
    assert (out / "listing").read_text().split() == [".", "..", "best.npz", "latest.npz"]
    for name, data in before.items():
        assert (out / name).read_bytes() == data
    print("real full tmpfs:", f"{size_k} KiB tmpfs: exit 1, one line, old checkpoints intact")


# The same two cases, unprivileged: a real charrnn process under tests/faultfs.py,
# which makes one folder behave as a read-only mount or as a full disk.
TESTS_DIR = TESTS


def _under_fault_layer(root, mode, free_bytes, *args) -> subprocess.CompletedProcess:
    env = clean_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", "import faultfs; faultfs.main()", str(root), mode,
                           str(free_bytes), *[str(a) for a in args]],
                          capture_output=True, text=True, env=env, timeout=120)


def test_the_fault_layer_really_refuses_writes(tmp_path):
    """Control: under the layer, writing into the folder fails as a real
    read-only mount or full disk would, and writing elsewhere works."""
    (tmp_path / "d").mkdir()
    prog = ("import sys, faultfs, os; faultfs.install(sys.argv[1], sys.argv[2], 10)\n"
            "open(os.path.join(sys.argv[1], '..', 'outside'), 'w').write('fine')\n"
            "try:\n    open(os.path.join(sys.argv[1], 'f'), 'wb').write(b'x' * 11)\n"
            "except OSError as e:\n    print(e.errno)\n")
    env = {**clean_env(), "PYTHONPATH": str(TESTS_DIR)}
    for mode, code in (("readonly", errno.EROFS), ("full", errno.ENOSPC)):
        r = subprocess.run([sys.executable, "-c", prog, str(tmp_path / "d"), mode],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.stdout.strip() == str(code), (mode, r.stdout, r.stderr)
    assert (tmp_path / "outside").read_text() == "fine"


def test_fault_layer_read_only_checkpoint_folder(run):
    text, d = run
    before = snapshot(d)
    r = _under_fault_layer(d, "readonly", 0, "train", text, "--checkpoint-dir", d, "--resume",
                           "--max-iters", 40, "--quiet")
    assert r.returncode == 1, r.stderr
    assert r.stdout == "" and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stderr.startswith("charrnn: error:") and "not writable" in r.stderr
    assert snapshot(d) == before


@pytest.mark.parametrize("share", [0.0, 0.5, 1.2])
def test_fault_layer_full_disk(run, share):
    """Room for none, half, or a bit more than one new checkpoint (not two):
    exit 1 with one line, the old checkpoints byte for byte, nothing stray."""
    text, d = run
    before = snapshot(d)
    free = int(len(before["latest.npz"]) * share)
    r = _under_fault_layer(d, "full", free, "train", text, "--checkpoint-dir", d, "--resume",
                           "--max-iters", 40, "--quiet")
    assert r.returncode == 1, r.stderr
    assert r.stdout == "" and len(r.stderr.splitlines()) == 1, r.stderr
    assert "No space left on device" in r.stderr and "unchanged" in r.stderr
    after = snapshot(d)
    assert sorted(after) == ["best.npz", "latest.npz"]
    if share < 1:
        assert after == before
    else:             # one new latest.npz fitted (iteration 30), the next save did not
        assert ckpt.load(str(d / "latest.npz")).state["iteration"] == 30
        assert ckpt.load(str(d / "best.npz")).state["iteration"] in (10, 20, 23, 30)


# --------------------------------------------------------------- divergence
def test_nan_weights_are_never_saved_over_good_ones(tmp_path):
    tr = Trainer(config("rnn", max_iters=40, eval_every=10), corpus(), str(tmp_path))
    real_step = tr.train_step

    def step():
        loss = real_step()
        if tr.iteration == 20:                    # an evaluation (and a save) follows
            tr.model.params["l0.Wh"][0, 0] = np.nan
        return loss
    tr.train_step = step
    with pytest.raises(CharRNNError, match="diverged") as e:
        tr.run(progress=False)
    assert "\n" not in str(e.value)
    ck = ckpt.load(str(tmp_path / "latest.npz"))
    assert ck.state["iteration"] == 10               # the last good one, intact
    assert sorted(os.listdir(tmp_path)) == ["best.npz", "latest.npz"]


def test_diverging_resume_aborts_cleanly_through_the_cli(run):
    """--lr 3e38 blows the weights up; the next loss is not finite: one line,
    exit 1, and latest.npz/best.npz are byte-identical."""
    text, d = run
    before = snapshot(d)
    with np.errstate(all="ignore"):
        line = one_line_error(invoke("train", text, "--checkpoint-dir", d, "--resume",
                                     "--max-iters", 40, "--lr", "3e38", "--quiet"))
    assert "diverged" in line and "--lr" in line
    assert snapshot(d) == before
