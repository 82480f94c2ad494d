"""The speed paths give the same numbers as the plain ones: sampling steps vs
the chunk forward, worker threads vs one thread, the lookup gradient
vs np.add.at, and the BLAS set-up."""
import os
import signal
import time

import numpy as np
import pytest

from charrnn.nn import blas
from charrnn.nn import cells
from charrnn.nn import model as model_mod
from charrnn.nn import parallel
from charrnn.nn.model import Model, ModelConfig, init_params, zero_state


def _model(kind, dtype="float64", layers=2, embed=0, dropout=0.0, H=6, V=11, seed=0, threads=None,
           **more):
    cfg = ModelConfig(vocab_size=V, model=kind, hidden_size=H, num_layers=layers,
                      embed_size=embed, dropout=dropout, dtype=dtype, **more)
    return Model(cfg, init_params(cfg, np.random.default_rng(seed)), threads=threads)


@pytest.mark.parametrize("kind", list(cells.CELLS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_step_equals_chunk_forward_for_a_batch_without_embedding(kind, dtype):
    m = _model(kind, dtype)
    rng = np.random.default_rng(1)
    B, T = 3, 7
    ids = rng.integers(0, 11, size=(T, B))
    state = zero_state(m.cfg, B)
    kept = []
    logits = []
    for t in range(T):
        lg, state = m.advance(ids[t], state)
        logits.append(lg)
        kept.append([(h.copy(), h) for h, _ in state])
    top, last, _, _ = m._run(ids, zero_state(m.cfg, B), None, train=False)
    want = top @ m.params["out.W"] + m.params["out.b"]
    tol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(np.array(logits), want, atol=tol)
    for k in range(m.cfg.num_layers):
        np.testing.assert_allclose(state[k][0], last[k][0], atol=tol)
        if kind == "lstm":
            np.testing.assert_allclose(state[k][1], last[k][1], atol=tol)
    # states handed out earlier are not overwritten by later steps
    for snap in kept:
        for copy, live in snap:
            np.testing.assert_array_equal(copy, live)


@pytest.mark.parametrize("kind", list(cells.CELLS))
def test_one_step_of_the_cell_record_equals_the_chunk_forward(kind):
    """cells.CELLS[kind].step_into, stepped T times (in place where the cell
    allows it), gives the chunk forward's outputs and leaves its inputs alone."""
    rng = np.random.default_rng(2)
    cell = cells.CELLS[kind]
    T, B, H = 5, 2, 4
    G = cell.gates * H
    xw = rng.normal(size=(T, B, G))
    h0 = rng.normal(size=(B, H))
    c0 = rng.normal(size=(B, H)) if cell.has_c else None
    Wh = rng.normal(size=(H, G))
    before = [None if a is None else a.copy() for a in (xw, h0, c0, Wh)]
    hs, (hT, cT), _ = cell.forward(xw, h0, c0, Wh)
    h, c = h0.copy(), None if c0 is None else c0.copy()
    a, b = np.empty((B, G)), np.empty((B, G))
    for t in range(T):
        h_out = np.empty_like(h) if kind == "rnn" else h      # rnn: never in place
        cell.step_into(xw[t], h, c, Wh, a, b, h_out, c)
        h = h_out
        np.testing.assert_allclose(h, hs[t], atol=1e-13)
    if cell.has_c:
        np.testing.assert_allclose(c, cT, atol=1e-13)
    for was, now in zip(before, (xw, h0, c0, Wh)):
        if was is not None:
            np.testing.assert_array_equal(now, was)


@pytest.mark.parametrize("kind", list(cells.CELLS))
@pytest.mark.parametrize("embed,dropout,more", [(0, 0.0, {}), (4, 0.3, {}), (4, 0.3, {"dropout_mask": "chunk", "weight_drop": 0.3})])
def test_worker_threads_give_the_single_thread_result(kind, embed, dropout, more, monkeypatch):
    monkeypatch.setattr(model_mod, "PAR_MIN_STREAMS", 1)
    one = _model(kind, embed=embed, dropout=dropout, threads=1, **more)
    many = Model(one.cfg, one.params, threads=3)
    B, T = 7, 6                                   # uneven parts: 2, 2, 3
    assert many.workers(B) == 3 and one.workers(B) == 1
    rng = np.random.default_rng(3)
    x = rng.integers(0, 11, size=(B, T))
    y = rng.integers(0, 11, size=(B, T))
    state = [(rng.normal(size=(B, 6)), rng.normal(size=(B, 6)) if kind == "lstm" else None)
             for _ in range(2)]
    l1, g1, s1 = one.loss_and_grads(x, y, state, np.random.default_rng(9))
    l3, g3, s3 = many.loss_and_grads(x, y, state, np.random.default_rng(9))
    assert l3 == pytest.approx(l1, rel=1e-12)
    assert set(g3) == set(g1)
    for name in g1:
        np.testing.assert_allclose(g3[name], g1[name], rtol=1e-10, atol=1e-13, err_msg=name)
    for (h1, c1), (h3, c3) in zip(s1, s3):
        np.testing.assert_allclose(h3, h1, atol=1e-13)
        if c1 is not None:
            np.testing.assert_allclose(c3, c1, atol=1e-13)
    e1, _ = one.loss(x, y, state)
    e3, _ = many.loss(x, y, state)
    assert e3 == pytest.approx(e1, rel=1e-12)


def test_workers_only_for_models_big_enough():
    small = _model("rnn", H=32, threads=None)
    big = _model("lstm", H=256, threads=None)
    assert small.workers(64) == 1
    assert big.workers(64) == min(parallel.max_workers(), 64 // model_mod.PAR_MIN_STREAMS)
    assert big.workers(4) == 1                      # too few streams to split
    assert _model("lstm", H=256, threads=2).workers(64) == 2


def test_lookup_gradient_matches_add_at():
    rng = np.random.default_rng(4)
    for n, N, D in ((7, 50, 3), (300, 40, 5), (1, 9, 2)):
        ids = rng.integers(0, n, size=N)
        rows = rng.normal(size=(N, D))
        want = np.zeros((n, D))
        np.add.at(want, ids, rows)
        np.testing.assert_allclose(model_mod._scatter_rows(ids, rows, n), want, atol=1e-12)


def test_parallel_run_keeps_order_and_raises_the_first_error():
    assert parallel.run([lambda k=k: k * k for k in range(5)]) == [0, 1, 4, 9, 16]
    done = []

    def bad(msg):
        raise ValueError(msg)
    with pytest.raises(ValueError, match="second"):
        parallel.run([lambda: done.append(1), lambda: bad("second"), lambda: bad("third")])
    assert done == [1]
    assert parallel.splits(7, 3) == [slice(0, 2), slice(2, 4), slice(4, 7)]
    assert parallel.splits(2, 5) == [slice(0, 1), slice(1, 2)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_worker_threads_of_its_own():
    """A process that trained, then forked (multiprocessing's default on
    Linux), must not hand its jobs to the parent's threads, which the child
    does not have: they would never run."""
    assert parallel.run([lambda: 1, lambda: 2, lambda: 3]) == [1, 2, 3]    # the pool exists
    pid = os.fork()
    if pid == 0:                                       # the child: exit 0 only if the jobs ran
        try:
            ok = parallel.run([lambda: 1, lambda: 2]) == [1, 2] and parallel.submit(abs, -4).result() == 4
        finally:
            os._exit(0 if ok else 1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child's jobs never ran (it waited on the parent's worker threads)")


def test_charrnn_threads_env_caps_the_workers(monkeypatch):
    monkeypatch.setenv(parallel.ENV, "1")
    assert parallel.max_workers() == 1
    assert _model("lstm", H=256).workers(64) == 1
    monkeypatch.setenv(parallel.ENV, "3")
    assert parallel.max_workers() == 3


def _cpuinfo(tmp_path, vendor, flags):
    p = tmp_path / "cpuinfo"
    p.write_text(f"processor\t: 0\nvendor_id\t: {vendor}\nflags\t\t: {' '.join(flags)}\n")
    return str(p)


AVX512 = ["fpu", "avx2", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]


def test_configure_env_picks_avx512_kernels_only_on_amd_with_avx512(tmp_path):
    env = {}
    blas.configure_env(env, _cpuinfo(tmp_path, "AuthenticAMD", AVX512))
    assert env == {"OPENBLAS_NUM_THREADS": "1", "OPENBLAS_CORETYPE": "SkylakeX"}
    env = {}
    blas.configure_env(env, _cpuinfo(tmp_path, "AuthenticAMD", AVX512[:-1]))
    assert "OPENBLAS_CORETYPE" not in env
    env = {}
    blas.configure_env(env, _cpuinfo(tmp_path, "GenuineIntel", AVX512))
    assert "OPENBLAS_CORETYPE" not in env
    env = {}
    blas.configure_env(env, str(tmp_path / "missing"))
    assert env == {"OPENBLAS_NUM_THREADS": "1"}


def test_configure_env_never_overrides_the_user(tmp_path):
    env = {"OMP_NUM_THREADS": "4", "OPENBLAS_CORETYPE": "Haswell"}
    blas.configure_env(env, _cpuinfo(tmp_path, "AuthenticAMD", AVX512))
    assert env == {"OMP_NUM_THREADS": "4", "OPENBLAS_CORETYPE": "Haswell"}


def test_single_threaded_restores_the_blas_thread_count():
    old = blas.get_threads()
    if old is None:
        pytest.skip("numpy is not linked to an OpenBLAS charrnn can find")
    try:
        assert blas.set_threads(2)
        with blas.single_threaded():
            assert blas.get_threads() == 1
        assert blas.get_threads() == 2
    finally:
        blas.set_threads(old)


def test_plain_pcg64_check_accepts_real_states_and_nothing_numpy_would_refuse():
    from charrnn.store.checkpoint import _plain_pcg64_state
    for seed in range(5):
        g = np.random.default_rng(seed)
        g.random(seed)                                 # some with has_uint32 set
        g.integers(0, 10, size=seed, dtype=np.uint32)
        assert _plain_pcg64_state(g.bit_generator.state)
    good = np.random.default_rng(1).bit_generator.state
    bad = [dict(good, bit_generator="MT19937"), dict(good, has_uint32=True),
           dict(good, uinteger=1 << 32), dict(good, state={"state": -1, "inc": 1}),
           dict(good, state={"state": 1 << 128, "inc": 1}), dict(good, state={"state": 1}),
           {k: v for k, v in good.items() if k != "uinteger"}, [1, 2], "seed"]
    for st in bad:
        assert not _plain_pcg64_state(st)


def test_sample_start_up_loads_nothing_it_does_not_need(trained):
    """`charrnn sample` must not import numpy.random, tqdm, the thread pool,
    the training side (the loop, the run lock) or, for one sample, the batched
    sampler: they cost start-up time (see docs/performance.md)."""
    import subprocess
    import sys
    code = ("import sys; sys.argv = ['charrnn', 'sample', '--len', '20', '--checkpoint-dir', "
            f"{str(trained.dir)!r}]\n"
            "from charrnn.cli.commands import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('tqdm', 'concurrent')"
            " or m.startswith('numpy.random') or m in ('charrnn.runs.trainer',"
            " 'charrnn.store.runlock', 'charrnn.generate.batch')]\n"
            "print('HEAVY', heavy, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) >= 20
    assert "HEAVY []" in r.stderr


@pytest.mark.parametrize("kind", list(cells.CELLS))
@pytest.mark.parametrize("embed,dropout,more", [(0, 0.0, {}), (3, 0.2, {}), (3, 0.2, {"dropout_mask": "chunk", "weight_drop": 0.3})])
def test_overlapped_weight_gradients_equal_the_plain_ones(kind, embed, dropout, more, monkeypatch):
    """Small models keep the streams together but compute the softmax layer in
    two halves and the weight gradients in a second thread: same numbers."""
    monkeypatch.setattr(model_mod, "PAR_MIN_STREAMS", 1000)    # never split the streams
    monkeypatch.setattr(model_mod, "OVERLAP_MIN_MACS", 0)
    one = _model(kind, embed=embed, dropout=dropout, threads=1, **more)
    two = Model(one.cfg, one.params, threads=2)
    B, T = 5, 7
    assert two.workers(B) == 1 and two.overlaps(B, T) and not one.overlaps(B, T)
    rng = np.random.default_rng(6)
    x = rng.integers(0, 11, size=(B, T))
    y = rng.integers(0, 11, size=(B, T))
    state = zero_state(one.cfg, B)
    l1, g1, s1 = one.loss_and_grads(x, y, state, np.random.default_rng(2))
    l2, g2, s2 = two.loss_and_grads(x, y, state, np.random.default_rng(2))
    assert l2 == pytest.approx(l1, rel=1e-12)
    for name in g1:
        np.testing.assert_allclose(g2[name], g1[name], rtol=1e-10, atol=1e-13, err_msg=name)
    for (h1, _), (h2, _) in zip(s1, s2):
        np.testing.assert_allclose(h2, h1, atol=1e-13)
