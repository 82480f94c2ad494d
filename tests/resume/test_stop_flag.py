"""StopFlag in this process: which handlers it installs, what it puts back.

The signals are raised only once the flag's own handler is checked to be in
place, so a broken flag fails the test instead of interrupting pytest."""
import signal
import threading

import pytest

from charrnn.runs.signals import StopFlag, deferred

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@pytest.fixture(autouse=True)
def handlers_restored():
    """Whatever a test (or a broken flag) leaves installed is undone."""
    before = {s: signal.getsignal(s) for s in SIGNALS}
    yield before
    for s, h in before.items():
        signal.signal(s, h)


def _installed(flag):
    return all(signal.getsignal(s) == flag._handle for s in SIGNALS)


def test_the_flag_catches_both_signals_and_keeps_the_first(handlers_restored):
    with StopFlag() as flag:
        assert _installed(flag)
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)
        assert (flag.signum, flag.count) == (signal.SIGTERM, 2)
    assert {s: signal.getsignal(s) for s in SIGNALS} == handlers_restored


def test_without_a_signal_the_old_handlers_come_back_also_when_lingering(handlers_restored):
    with StopFlag(linger=True) as flag:
        assert _installed(flag)
    assert flag.signum is None
    assert {s: signal.getsignal(s) for s in SIGNALS} == handlers_restored


def test_after_a_signal_a_lingering_flag_ignores_further_ones(handlers_restored):
    with StopFlag(linger=True) as flag:
        assert _installed(flag)
        signal.raise_signal(signal.SIGINT)
    assert flag.signum == signal.SIGINT
    assert all(signal.getsignal(s) is signal.SIG_IGN for s in SIGNALS)
    signal.raise_signal(signal.SIGINT)          # ignored: the test goes on
    assert flag.count == 1


def test_after_a_signal_a_flag_that_does_not_linger_restores(handlers_restored):
    with StopFlag() as flag:
        assert _installed(flag)
        signal.raise_signal(signal.SIGINT)
    assert flag.signum == signal.SIGINT
    assert {s: signal.getsignal(s) for s in SIGNALS} == handlers_restored


def test_a_handler_python_did_not_install_comes_back_as_the_default(monkeypatch):
    """signal.signal returns None for a handler installed outside Python;
    None cannot be installed again, so the default takes its place."""
    real = signal.signal
    calls = []

    def first_unknown(s, h):
        old = real(s, h)
        calls.append((s, h))
        return None if len(calls) <= len(SIGNALS) else old

    monkeypatch.setattr(signal, "signal", first_unknown)
    with StopFlag():
        pass
    assert calls[len(SIGNALS):] == [(s, signal.SIG_DFL) for s in SIGNALS]


def test_outside_the_main_thread_the_flag_installs_nothing(handlers_restored):
    """Python allows handlers in the main thread only: elsewhere the flag is a
    plain flag, and entering it must not raise."""
    seen = {}

    def worker():
        try:
            with StopFlag() as flag:
                seen["inside"] = {s: signal.getsignal(s) for s in SIGNALS}
                seen["old"] = dict(flag._old)
        except Exception as e:             # pragma: no cover - reported below
            seen["error"] = repr(e)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert "error" not in seen, seen.get("error")
    assert seen["inside"] == handlers_restored
    assert seen["old"] == {}


def test_deferred_uses_the_callers_flag_and_leaves_it_installed():
    with StopFlag() as outer:
        with deferred(outer) as flag:
            assert flag is outer
        assert _installed(outer)            # the block did not restore
        with deferred() as own:
            assert own is not outer and _installed(own)
        assert _installed(outer)


def test_a_flag_can_be_entered_again(handlers_restored):
    flag = StopFlag()
    for _ in range(2):
        with flag:
            assert _installed(flag)
        assert {s: signal.getsignal(s) for s in SIGNALS} == handlers_restored
