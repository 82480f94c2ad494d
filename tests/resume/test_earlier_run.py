"""runs/runner.py's rules for a folder that already holds a run, on files
made by hand: which runs may replace its checkpoints, what is kept, and the
folder checks, each refusal by its whole message."""
import os

import pytest

from charrnn.errors import CharRNNError
from charrnn.runs import runner


def folder(tmp_path, *names):
    d = tmp_path / "run"
    d.mkdir()
    for n in names:
        (d / n).write_bytes(b"x")
    return str(d)


def test_an_empty_folder_has_nothing_to_replace(tmp_path):
    d = folder(tmp_path)
    assert runner._check_earlier_run(d, False, None, None)[0] == []


def test_a_new_run_into_a_used_folder_needs_overwrite(tmp_path):
    d = folder(tmp_path, "best.npz")
    with pytest.raises(CharRNNError) as e:
        runner._check_earlier_run(d, False, None, None)
    assert str(e.value) == (f"{d}/ already holds best.npz from an earlier run; pass --overwrite "
                            f"to replace it or choose another --checkpoint-dir")
    assert runner._check_earlier_run(d, True, None, None) == (["best.npz"], False)


def test_resuming_the_folders_latest_continues_it(tmp_path):
    d = folder(tmp_path, "latest.npz", "best.npz")
    assert runner._check_earlier_run(d, False, "", os.path.join(d, "latest.npz")) == ([], True)


def test_resuming_the_folders_best_would_replace_its_latest(tmp_path):
    d = folder(tmp_path, "latest.npz", "best.npz")
    best = os.path.join(d, "best.npz")
    with pytest.raises(CharRNNError) as e:
        runner._check_earlier_run(d, False, best, best)
    assert str(e.value) == (f"resuming {best} would replace {d}/latest.npz, which is further "
                            f"along; pass --overwrite to do it anyway, or resume latest.npz")
    # with --overwrite it replaces latest.npz and keeps best.npz
    assert runner._check_earlier_run(d, True, best, best) == (["latest.npz", "best.npz"], True)
    os.unlink(os.path.join(d, "latest.npz"))
    assert runner._check_earlier_run(d, False, best, best) == ([], True)


def test_resuming_another_folders_checkpoint_into_a_used_one_needs_overwrite(tmp_path):
    d = folder(tmp_path, "latest.npz")
    other = tmp_path / "other"
    other.mkdir()
    (other / "latest.npz").write_bytes(b"x")
    with pytest.raises(CharRNNError, match="already holds latest.npz"):
        runner._check_earlier_run(d, False, str(other / "latest.npz"), str(other / "latest.npz"))
    assert runner._check_earlier_run(d, True, str(other / "latest.npz"),
                                     str(other / "latest.npz")) == (["latest.npz"], False)


def test_paths_that_do_not_exist_are_the_same_by_their_absolute_form(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runner._same_file("none/x.npz", os.path.join(str(tmp_path), "none", ".", "x.npz"))
    assert not runner._same_file("none/x.npz", "none/y.npz")


def test_a_folder_that_cannot_be_made_is_named_with_the_reason(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(CharRNNError) as e:
        runner._ensure_writable(str(tmp_path / "file" / "run"))
    assert str(e.value) == (f"cannot create checkpoint folder {tmp_path / 'file' / 'run'}: "
                            f"Not a directory")


def test_a_folder_this_user_may_not_write_is_refused(tmp_path, monkeypatch):
    """(root may write anywhere, so the refusal is simulated: os.access says
    no to writing)"""
    monkeypatch.setattr(runner.os, "access", lambda path, mode: not mode & os.W_OK)
    with pytest.raises(CharRNNError) as e:
        runner._ensure_writable(str(tmp_path))
    assert str(e.value) == (f"checkpoint folder {tmp_path} is not writable; choose another "
                            f"--checkpoint-dir")
