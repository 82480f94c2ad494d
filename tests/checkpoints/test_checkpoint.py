"""charrnn.store.checkpoint: atomic saves, strict loads, and never unpickling anything."""
from __future__ import annotations

import errno
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from charrnn.store import checkpoint as ckpt
from charrnn.errors import CheckpointError
from helpers import CHECKPOINT_VOCAB as VOCAB, assert_same, make_checkpoint  # noqa: F401
from helpers import object_array as _object_array  # noqa: F401


def write_npz(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


class _CountingReader(io.BufferedReader):
    """The file at path, counting the bytes read through it (read, readinto)."""

    def __init__(self, path):
        super().__init__(io.FileIO(path))
        self.read_bytes = 0

    def read(self, n=-1):
        b = super().read(n)
        self.read_bytes += len(b)
        return b

    def readinto(self, buf):
        k = super().readinto(buf)
        self.read_bytes += k or 0
        return k


def rejected(path, *words) -> str:
    """Load must raise CheckpointError with a one-line message naming the file."""
    with pytest.raises(CheckpointError) as e:
        ckpt.load(str(path))
    msg = str(e.value)
    assert "\n" not in msg and "Traceback" not in msg
    assert str(path) in msg
    for w in words:
        assert w.lower() in msg.lower(), (w, msg)
    return msg


@pytest.fixture
def good(tmp_path):
    """A valid checkpoint on disk and its in-memory original."""
    ck = make_checkpoint()
    path = tmp_path / "latest.npz"
    ckpt.save(str(path), ck)
    return path, ck


# ------------------------------------------------------------- round trip
@pytest.mark.parametrize("model, optimizer, dtype, embed", [
    ("lstm", "adam", "float32", 0), ("rnn", "adagrad", "float64", 0),
    ("gru", "rmsprop", "float32", 3), ("rnn", "adam", "float64", 4)])
def test_save_load_round_trip_is_the_identity(tmp_path, model, optimizer, dtype, embed):
    ck = make_checkpoint(model=model, optimizer=optimizer, dtype=dtype, embed=embed)
    path = tmp_path / "ck.npz"
    ckpt.save(str(path), ck)
    back = ckpt.load(str(path))
    assert_same(ck, back)
    assert back.vocab[0] == "\x00" and back.vocab == VOCAB
    assert back.path == str(path)
    # Loadable without pickle by plain numpy, as the format promises.
    with np.load(path, allow_pickle=False) as z:
        assert int(z["format_version"]) == ckpt.FORMAT_VERSION
        assert json.loads(str(z["config"][()])) == ck.config


def test_restored_rng_state_replays_the_same_draws(good):
    path, ck = good
    back = ckpt.load(str(path))
    g1, g2 = np.random.default_rng(), np.random.default_rng()
    g1.bit_generator.state = ck.state["rng"]
    g2.bit_generator.state = back.state["rng"]
    np.testing.assert_array_equal(g1.random(10), g2.random(10))


def test_round_trip_of_a_real_training_checkpoint(trained, tmp_path):
    first = ckpt.load(str(trained.latest))
    assert first.vocab == trained.vocab
    again = tmp_path / "again.npz"
    ckpt.save(str(again), first)
    assert_same(first, ckpt.load(str(again)))


# ---------------------------------------------------------- atomic saving
def test_temporary_file_is_not_npz_and_nothing_stray_remains(tmp_path):
    seen = {}

    def spy(f, arrays):
        seen["name"] = f.name
        seen["listing"] = sorted(os.listdir(tmp_path))
        np.savez(f, **arrays)

    path = tmp_path / "latest.npz"
    ckpt.save(str(path), make_checkpoint(), writer=spy)
    tmp_name = os.path.basename(seen["name"])
    assert not tmp_name.endswith(".npz")
    assert os.path.dirname(os.path.abspath(seen["name"])) == str(tmp_path)   # same folder
    assert seen["listing"] == [tmp_name]            # while writing: no partial *.npz
    assert sorted(os.listdir(tmp_path)) == ["latest.npz"]
    assert_same(make_checkpoint(), ckpt.load(str(path)))


def test_failing_writer_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "latest.npz"
    ckpt.save(str(path), make_checkpoint(seed=1))
    before = path.read_bytes()

    def disk_full(f, arrays):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(CheckpointError) as e:
        ckpt.save(str(path), make_checkpoint(seed=2), writer=disk_full)
    assert str(path) in str(e.value)
    assert os.strerror(errno.ENOSPC) in str(e.value)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["latest.npz"]
    assert_same(make_checkpoint(seed=1), ckpt.load(str(path)))


def test_interrupted_writer_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "latest.npz"
    ckpt.save(str(path), make_checkpoint(seed=1))
    before = path.read_bytes()

    def ctrl_c(f, arrays):
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ckpt.save(str(path), make_checkpoint(seed=2), writer=ctrl_c)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["latest.npz"]


def test_save_into_a_missing_folder_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError):
        ckpt.save(str(tmp_path / "no" / "such" / "latest.npz"), make_checkpoint())


# ---------------------------------------------------------- strict loading
def test_load_rejects_a_missing_file(tmp_path):
    rejected(tmp_path / "nope.npz", "no such checkpoint")


def test_load_rejects_a_folder(tmp_path):
    d = tmp_path / "dir.npz"
    d.mkdir()
    rejected(d, "folder")


@pytest.mark.parametrize("content", [b"", b"hello, this is a text file\n", b"\x93NUMPY junk",
                                     b"PK\x03\x04" + b"\x00" * 40])
def test_load_rejects_files_that_are_not_npz(tmp_path, content):
    p = tmp_path / "x.npz"
    p.write_bytes(content)
    rejected(p)


def test_load_rejects_a_single_npy_array(tmp_path):
    p = tmp_path / "x.npz"
    with open(p, "wb") as f:
        np.save(f, np.arange(3))
    rejected(p, "single array")


def test_load_rejects_an_unrelated_npz(tmp_path):
    p = tmp_path / "x.npz"
    write_npz(p, {"weights": np.zeros(3)})
    rejected(p, "format_version")


@pytest.mark.parametrize("keep", [1, 30, 100, 0.5, -100, -22, -1])
def test_load_rejects_a_truncated_file(good, keep):
    path, _ = good
    raw = path.read_bytes()
    n = int(len(raw) * keep) if isinstance(keep, float) else keep % len(raw)
    path.write_bytes(raw[:n])
    rejected(path)


def test_load_never_raises_anything_but_checkpoint_error_on_damaged_bytes(tmp_path):
    """Flip single bytes all over a small checkpoint: every result is either a
    clean CheckpointError or (when the byte did not matter) the same data."""
    ck = make_checkpoint(model="rnn", optimizer="adagrad", hidden=2, layers=1, vocab="\nab")
    path = tmp_path / "ck.npz"
    ckpt.save(str(path), ck)
    raw = path.read_bytes()
    positions = sorted(set(range(0, len(raw), max(1, len(raw) // 250))) |
                       set(range(max(0, len(raw) - 120), len(raw))))
    outcomes = {"error": 0, "same": 0}
    for i in positions:
        bad = bytearray(raw)
        bad[i] ^= 0xFF
        path.write_bytes(bytes(bad))
        try:
            back = ckpt.load(str(path))
        except CheckpointError as e:
            assert "\n" not in str(e)
            outcomes["error"] += 1
        else:
            # Whatever loads is the original data.  (A damaged zip directory can
            # hide whole optional sections; those then load as absent.)
            assert back.config == ck.config and back.vocab == ck.vocab
            for section in ("params", "optim", "history", "state"):
                got, want = getattr(back, section), getattr(ck, section)
                if section != "state" and (section == "params" or got):
                    assert got.keys() == want.keys(), section      # all or nothing
                for k, v in got.items():
                    if isinstance(v, np.ndarray):
                        np.testing.assert_array_equal(v, want[k])
                    else:
                        assert v == want[k]
            outcomes["same"] += 1
    assert outcomes["error"] > len(positions) // 2


def test_the_pickle_payload_is_real(tmp_path):
    """Positive control: the payload does run when pickle is allowed."""
    marker = tmp_path / "control-marker"
    p = tmp_path / "evil.npz"
    write_npz(p, {"x": _object_array(marker)})
    with np.load(p, allow_pickle=True) as z:
        z["x"]
    assert marker.exists()


@pytest.mark.parametrize("key", ["config", "vocab", "format_version", "param/out.b",
                                 "optim/mem.out.W", "state/rng", "state/h", "history/iter",
                                 "extra/evil"])
def test_pickled_object_arrays_are_rejected_and_never_run(tmp_path, key):
    ck = make_checkpoint(model="rnn", optimizer="adagrad")
    arrays = ckpt.to_arrays(ck)
    marker = tmp_path / "pwned"
    arrays[key] = _object_array(marker)
    p = tmp_path / "evil.npz"
    write_npz(p, arrays)
    rejected(p)
    assert not marker.exists(), "loading a checkpoint executed a pickle payload"


def _tamper(tmp_path, change, ck=None):
    ck = ck or make_checkpoint()
    arrays = ckpt.to_arrays(ck)
    change(arrays)
    p = tmp_path / "bad.npz"
    write_npz(p, arrays)
    return p


def test_control_untampered_arrays_load(tmp_path):
    """The tampering helper itself writes loadable checkpoints."""
    assert_same(make_checkpoint(), ckpt.load(str(_tamper(tmp_path, lambda a: None))))


def test_load_rejects_a_wrong_parameter_shape(tmp_path):
    def change(a):
        a["param/out.W"] = np.zeros((5, len(VOCAB) + 1), np.float32)
    rejected(_tamper(tmp_path, change), "param/out.W", "shape")


def test_load_rejects_a_transposed_parameter(tmp_path):
    def change(a):
        a["param/l0.Wx"] = np.ascontiguousarray(a["param/l0.Wx"].T)
    rejected(_tamper(tmp_path, change, make_checkpoint(hidden=5, model="rnn")), "shape")


def test_load_rejects_a_wrong_dtype(tmp_path):
    def change(a):
        a["param/l0.Wh"] = a["param/l0.Wh"].astype(np.float64)
    rejected(_tamper(tmp_path, change), "param/l0.Wh", "dtype")


def test_load_rejects_integer_weights(tmp_path):
    def change(a):
        a["param/out.b"] = np.zeros(len(VOCAB), np.int32)
    rejected(_tamper(tmp_path, change), "dtype")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("key", ["param/l1.Wx", "optim/m.out.b", "state/h"])
def test_load_rejects_non_finite_values(tmp_path, bad, key):
    def change(a):
        a[key] = a[key].copy()
        a[key].flat[2] = bad
    rejected(_tamper(tmp_path, change), key, "nan")


def test_load_rejects_a_missing_parameter(tmp_path):
    rejected(_tamper(tmp_path, lambda a: a.pop("param/l1.b")), "missing", "param/l1.b")


@pytest.mark.parametrize("version, words", [(2, ("newer", "upgrade")), (99, ("newer",)),
                                            (0, ("format_version",)), (-1, ("format_version",))])
def test_load_rejects_other_format_versions(tmp_path, version, words):
    def change(a):
        a["format_version"] = np.array(version, np.int64)
    rejected(_tamper(tmp_path, change), *words)


def test_load_rejects_a_non_integer_format_version(tmp_path):
    def change(a):
        a["format_version"] = np.array(1.0)
    rejected(_tamper(tmp_path, change), "format_version")


@pytest.mark.parametrize("key", ["junk", "param/extra", "optim/mem.l0.Wh", "state/secret",
                                 "history/accuracy"])
def test_load_rejects_an_unexpected_extra_key(tmp_path, key):
    def change(a):
        a[key] = np.zeros(3)
    rejected(_tamper(tmp_path, change), key)


@pytest.mark.parametrize("vocab", [
    [98, 97, 99],                 # not sorted
    [97, 97, 99],                 # duplicate
    [0, 10, -5],                  # negative code point, unsorted
    [-5, 0, 10],                  # negative code point, sorted
    [97, 98, 0x110000],           # beyond Unicode
    [97, 98, 0x7FFFFFFF],
])
def test_load_rejects_a_vocab_that_is_not_sorted_unique_code_points(tmp_path, vocab):
    ck = make_checkpoint(model="rnn", optimizer="adagrad", vocab="abc")

    def change(a):
        a["vocab"] = np.array(vocab, np.int32)
    msg = rejected(_tamper(tmp_path, change, ck))
    assert msg.endswith(": vocab is not a sorted list of unique code points"), msg


def test_the_first_and_last_code_points_of_unicode_are_a_vocabulary(tmp_path):
    vocab = "\x00a\U0010ffff"
    ck = make_checkpoint(model="rnn", optimizer="adagrad", vocab=vocab)
    path = tmp_path / "edges.npz"
    ckpt.save(str(path), ck)
    assert ckpt.load(str(path)).vocab == vocab


def test_load_rejects_a_vocab_of_the_wrong_size_or_type(tmp_path):
    ck = make_checkpoint(model="rnn", optimizer="adagrad", vocab="abc")
    rejected(_tamper(tmp_path, lambda a: a.__setitem__("vocab", np.array([97, 98], np.int32)), ck),
             "vocab")
    rejected(_tamper(tmp_path, lambda a: a.__setitem__("vocab", np.array(["a", "b", "c"])), ck),
             "vocab")


def _set(path, value):
    """A config change: config[path[0]][path[1]]... = value (_DELETE deletes it)."""
    def change(cfg):
        d = cfg
        for k in path[:-1]:
            d = d[k]
        if value is _DELETE:
            del d[path[-1]]
        else:
            d[path[-1]] = value
        return cfg
    return change


_DELETE = object()


@pytest.mark.parametrize("change", [
    lambda c: "not json at all",
    lambda c: [1, 2, 3],
    lambda c: None,
    lambda c: {k: v for k, v in c.items() if k != "train"},
    lambda c: {k: v for k, v in c.items() if k != "model"},
    _set(("model",), "rnn"),
    _set(("model", "vocab_size"), _DELETE),
    _set(("model", "model"), "transformer"),
    _set(("model", "hidden_size"), 0),
    _set(("model", "hidden_size"), 5.0),
    _set(("model", "num_layers"), -1),
    _set(("model", "dtype"), "float16"),
    _set(("model", "dropout"), 1.5),
    _set(("model", "dropout"), "lots"),
    _set(("train",), ["optimizer", "adam"]),
    _set(("train",), "adam"),
    _set(("train", "optimizer"), "sgd"),
    _set(("train", "batch_size"), "three"),
    _set(("data",), [1, 2]),
])
def test_load_rejects_a_bad_config(tmp_path, change):
    ck = make_checkpoint()
    config = change(json.loads(json.dumps(ck.config)))
    text = config if isinstance(config, str) else json.dumps(config)

    def put(a):
        a["config"] = np.array(text)
    rejected(_tamper(tmp_path, put, ck))


@pytest.mark.parametrize("field, ok, bad", [
    ("vocab_size", [1, 1 << 20], [0, (1 << 20) + 1, 5.0]),
    ("hidden_size", [1, 1 << 20], [0, (1 << 20) + 1, 5.0]),
    ("num_layers", [1, 1 << 20], [0, (1 << 20) + 1, 2.0]),
    ("embed_size", [0, 1, 1 << 20], [-1, (1 << 20) + 1, 8.0]),
    ("dropout", [0, 0.0, 0.999], [1.0, -0.01, 2]),
    ("weight_drop", [0, 0.0, 0.999], [1.0, -0.01, 2]),
    ("dropout_mask", ["step", "chunk"], ["token", "STEP", ""]),
    ("model", ["rnn", "lstm", "gru"], ["transformer", "GRU"]),
    ("dtype", ["float32", "float64"], ["float16", "int32"]),
])
def test_the_model_configs_limits_are_exact(field, ok, bad):
    """What a checkpoint's model config may say (checked before any array
    is read): sizes 1..2**20 (embedding 0..2**20) as whole numbers, dropout
    rates in [0, 1), the known masks, cells and dtypes; each refusal names
    the field and the value."""
    import dataclasses
    from charrnn.nn.model import ModelConfig
    base = ModelConfig(vocab_size=5, model="gru", hidden_size=8)
    for v in ok:
        ckpt._check_model_config(dataclasses.replace(base, **{field: v}))
    for v in bad:
        with pytest.raises(ValueError) as e:
            ckpt._check_model_config(dataclasses.replace(base, **{field: v}))
        word = "unknown" if field in ("dropout_mask", "model", "dtype") else "bad"
        assert str(e.value) == f"{word} {field} {v!r}", (v, str(e.value))


def _npz_with_versions(path, arrays, version):
    """arrays written as an .npz whose .npy headers are of format version."""
    with zipfile.ZipFile(path, "w") as z:
        for k, v in arrays.items():
            b = io.BytesIO()
            np.lib.format.write_array(b, np.asarray(v), version=version)
            z.writestr(k + ".npy", b.getvalue())


@pytest.mark.parametrize("parts", [ckpt.MODEL_PARTS, ckpt.SUMMARY_PARTS, ckpt.PARTS],
                         ids=["model", "summary", "all"])
@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_npy_headers_of_every_version_numpy_writes_load(tmp_path, parts, version):
    """numpy writes .npy format 1.0, 2.0 (headers over 64 KB) and 3.0 (utf8
    field names): an entry of any of them is read, read by header only, or
    read directly, alike; a version numpy does not know is refused."""
    ck = make_checkpoint(model="lstm", optimizer="adam", hidden=160, layers=1)
    p = tmp_path / "v.npz"
    _npz_with_versions(p, ckpt.to_arrays(ck), version)
    got = ckpt.load(str(p), parts)
    for k, v in got.params.items():
        np.testing.assert_array_equal(v, ck.params[k])
    arrays = ckpt.to_arrays(ck)
    b = io.BytesIO()
    np.lib.format.write_array(b, arrays.pop("optim/m.l0.Wh"), version=version)
    future = bytearray(b.getvalue())
    future[6:8] = bytes((4, 0))                  # an .npy format numpy does not know
    q = tmp_path / "v4.npz"
    _npz_with_versions(q, arrays, version)
    with zipfile.ZipFile(q, "a") as z:
        z.writestr("optim/m.l0.Wh.npy", bytes(future))
    with pytest.raises(CheckpointError) as e:
        ckpt.load(str(q), parts)
    assert str(e.value) == f"{q}: damaged checkpoint (unsupported .npy version (4, 0))"


def test_an_entry_of_an_empty_dtype_is_refused_and_one_byte_integers_load(tmp_path):
    """A counter may be any integer type, one-byte ones too; a zero-size
    dtype (a string of no characters) is refused by name."""
    arrays = ckpt.to_arrays(make_checkpoint())
    arrays["state/epoch"] = np.array(3, np.uint8)
    p = tmp_path / "u8.npz"
    write_npz(p, arrays)
    assert ckpt.load(str(p)).state["epoch"] == 3
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, {"descr": "<U0", "fortran_order": False,
                                             "shape": ()})
    arrays.pop("state/rng")
    q = tmp_path / "u0.npz"
    write_npz(q, arrays)
    with zipfile.ZipFile(q, "a") as z:
        z.writestr("state/rng.npy", b.getvalue())
    with pytest.raises(CheckpointError) as e:
        ckpt.load(str(q))
    assert str(e.value) == f"{q}: entry 'state/rng' has an empty dtype <U0"


@pytest.mark.parametrize("average", ["absent", 0.0, 0.998, None, True, "0.9"])
@pytest.mark.parametrize("with_raw", [False, True], ids=["average only", "with raw weights"])
def test_trained_weights_beside_their_average_only_when_the_config_averages(tmp_path, average,
                                                                          with_raw):
    """state/w.<name> (the trained weights while param/ holds their average)
    is allowed in a run with weight_average > 0, and only there; a value that
    is not a number (null, true, a string) averages nothing."""
    ck = make_checkpoint(model="gru")
    if average == "absent":
        del ck.config["train"]["weight_average"]
    else:
        ck.config["train"]["weight_average"] = average
    if with_raw:
        ck.state.update({f"w.{k}": v + 1 for k, v in ck.params.items()})
    p = tmp_path / "c.npz"
    write_npz(p, ckpt.to_arrays(ck))
    if with_raw and average != 0.998:
        assert "unexpected entry 'state/w." in rejected(p)
    else:       # (a missing one is refused by --resume, which needs them: runs/snapshot.py)
        got = ckpt.load(str(p))
        assert sorted(k for k in got.state if k.startswith("w.")) == \
            (sorted(f"w.{k}" for k in ck.params) if with_raw else [])


def test_a_config_naming_no_batch_size_has_the_hidden_states_of_one_stream(tmp_path):
    ck = make_checkpoint(batch=1)
    del ck.config["train"]["batch_size"]
    p = tmp_path / "c.npz"
    write_npz(p, ckpt.to_arrays(ck))
    assert ckpt.load(str(p)).state["h"].shape == (2, 1, 5)


def test_a_generator_state_that_is_not_a_string_is_refused_by_its_kind(tmp_path):
    arrays = ckpt.to_arrays(make_checkpoint())
    arrays["state/rng"] = np.array(1.5)
    p = _written(tmp_path, arrays)
    with pytest.raises(CheckpointError) as e:
        ckpt.load(p)
    assert str(e.value) == f"{p}: state/rng has dtype float64, not the kind this entry holds"


def test_a_checkpoint_whose_config_names_no_optimizer_was_trained_with_adagrad(tmp_path):
    """The first checkpoints had no optimizer in their config: they were
    Adagrad's, and load with Adagrad's state."""
    ck = make_checkpoint(optimizer="adagrad")
    config = json.loads(json.dumps(ck.config))
    del config["train"]["optimizer"]
    p = _tamper(tmp_path, lambda a: a.__setitem__("config", np.array(json.dumps(config))), ck)
    got = ckpt.load(str(p))
    assert "optimizer" not in got.config["train"]
    assert sorted(got.optim) == sorted(ck.optim)
    for k, v in ck.optim.items():
        np.testing.assert_array_equal(got.optim[k], v)


@pytest.mark.parametrize("change, why", [
    (_set(("model", "hidden_size"), 0), "bad hidden_size 0"),
    (_set(("model", "weight_drop"), 1.0), "bad weight_drop 1.0"),
    (_set(("model", "weight_drop"), -0.1), "bad weight_drop -0.1"),
    (_set(("model", "dropout_mask"), "token"), "unknown dropout_mask 'token'"),
    (lambda c: [1, 2, 3], "config must be a JSON object with 'model' and 'train' objects"),
    (_set(("train",), "adam"), "config must be a JSON object with 'model' and 'train' objects"),
])
def test_a_bad_config_says_what_is_wrong(tmp_path, change, why):
    ck = make_checkpoint()
    text = json.dumps(change(json.loads(json.dumps(ck.config))))

    def put(a):
        a["config"] = np.array(text)
    msg = rejected(_tamper(tmp_path, put, ck))
    assert msg.endswith(f": bad config in checkpoint ({why})"), msg


def test_the_detail_of_an_error_is_its_first_line_at_most_160_characters():
    """What the checkpoint messages put in parentheses (store/checkpoint._short)."""
    assert ckpt._short(ValueError("")) == "ValueError"
    assert ckpt._short(KeyError()) == "KeyError"
    assert ckpt._short(ValueError("first line\nsecond line")) == "first line"
    assert ckpt._short(ValueError("x" * 200)) == "x" * 160
    assert ckpt._short(OSError("disk said no")) == "disk said no"


@pytest.mark.parametrize("value", [
    np.frombuffer(b"{}", np.uint8),            # raw bytes
    np.array(b"{}"),                           # a 0-d bytes string
    np.array(["{}", "{}"]),                    # strings, but not one
    np.array(7)])                              # a 0-d number
def test_load_rejects_a_config_that_is_not_a_string(tmp_path, value):
    def change(a):
        a["config"] = value
    msg = rejected(_tamper(tmp_path, change))
    assert msg.endswith(": config entry is not a JSON string"), msg


def test_a_vocabulary_of_thousands_of_characters_round_trips(tmp_path):
    """4 bytes per character: a 3,000-character vocabulary (CJK and beyond
    the BMP) is 12 kB, far past any fixed allowance."""
    vocab = "".join(sorted({chr(c) for c in range(0x4E00, 0x4E00 + 2900)}
                           | {chr(c) for c in range(0x1F300, 0x1F300 + 100)}))
    ck = make_checkpoint(model="rnn", optimizer="adagrad", hidden=2, layers=1, vocab=vocab)
    path = tmp_path / "wide.npz"
    ckpt.save(str(path), ck)
    back = ckpt.load(str(path))
    assert back.vocab == vocab and len(back.vocab) == 3000


def test_load_rejects_history_of_unequal_lengths(tmp_path):
    def change(a):
        a["history/lr"] = np.zeros(7)
    rejected(_tamper(tmp_path, change), "history")


@pytest.mark.parametrize("points", [40, 41])
def test_a_history_of_more_than_history_max_points_is_refused(tmp_path, monkeypatch, points):
    """A curve holds at most HISTORY_MAX points of 8 bytes (checked from its
    header, before its data is read); HISTORY_MAX made small here."""
    monkeypatch.setattr(ckpt, "HISTORY_MAX", 40)

    def change(a):
        for k in list(a):
            if k.startswith("history/"):
                a[k] = np.arange(points, dtype=np.float64)
    p = _tamper(tmp_path, change)
    if points == 40:
        assert len(ckpt.load(str(p)).history["lr"]) == 40
    else:
        assert "history/" in rejected(p)


@pytest.mark.parametrize("key", [f"history/{k}" for k in ckpt.HISTORY_KEYS])
def test_load_rejects_a_partial_history(tmp_path, key):
    """inspect indexes every curve by the same position: all or none."""
    rejected(_tamper(tmp_path, lambda a: a.pop(key)), key)


def test_load_rejects_a_wrong_hidden_state_shape(tmp_path):
    def change(a):
        a["state/h"] = np.zeros((2, 4, 5), np.float32)       # batch 4, config says 3
    rejected(_tamper(tmp_path, change), "state/h", "shape")


def test_every_entry_of_a_checkpoint_is_checked(tmp_path):
    """Removing any array-valued entry that the config implies is noticed;
    only optional sections may be absent as a whole."""
    base = ckpt.to_arrays(make_checkpoint())
    for key in base:
        if key.startswith(("param/", "optim/")) or key in ("format_version", "config", "vocab"):
            def change(a, key=key):
                a.pop(key)
            with pytest.raises(CheckpointError):
                ckpt.load(str(_tamper(tmp_path, change)))
    # Whole optional sections may be missing (e.g. a weights-only export).
    def strip(a):
        for k in [k for k in a if k.startswith(("optim/", "state/", "history/"))]:
            a.pop(k)
    back = ckpt.load(str(_tamper(tmp_path, strip)))
    assert back.optim == {} and back.state == {} and back.history == {}
    assert Path(back.path).name == "bad.npz"


# ------------------------------------------------- hostile archives (issue 6)
def _zip_with(path, members: dict, compress=False):
    """Write raw zip members (name -> bytes) -- for archives numpy would not write."""
    import zipfile
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", mode) as z:
        for name, data in members.items():
            z.writestr(name, data)


def _npy_bytes(a) -> bytes:
    import io
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _members(ck=None) -> dict:
    return {k + ".npy": _npy_bytes(v) for k, v in ckpt.to_arrays(ck or make_checkpoint()).items()}


def test_load_never_asks_numpy_for_pickles(good, monkeypatch):
    """No entry goes through np.load, whose allow_pickle is a switch away:
    headers are read with numpy.lib.format, data into a plain byte buffer."""
    path, ck = good
    seen = []
    real = np.load

    def spy(*args, **kw):
        seen.append(kw.get("allow_pickle"))
        return real(*args, **kw)
    monkeypatch.setattr(np, "load", spy)
    assert_same(ck, ckpt.load(str(path)))
    assert seen == []


@pytest.mark.parametrize("content", [
    b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4,      # a program, like /bin/ls
    b"hello, this is a text file\n" * 10,
    b"\x80\x04\x95 pickled bytes",                          # a pickle stream
])
def test_a_file_that_is_no_archive_is_called_not_a_checkpoint(tmp_path, content):
    """Not numpy's "contains pickled (object) data ... allow_pickle" guess."""
    p = tmp_path / "ls"
    p.write_bytes(content)
    msg = rejected(p, "not a charrnn checkpoint")
    assert "pickle" not in msg.lower() and "unsafe" not in msg.lower()


def test_a_zip_that_is_not_an_npz_is_called_not_a_checkpoint(tmp_path):
    p = tmp_path / "docs.zip"
    _zip_with(p, {"readme.txt": b"hello"})
    msg = rejected(p, "not a charrnn checkpoint")
    assert "pickle" not in msg.lower()


def test_a_pickled_entry_is_named_as_such(tmp_path):
    marker = tmp_path / "pwned"
    p = _tamper(tmp_path, lambda a: a.__setitem__("param/out.b", _object_array(marker)))
    rejected(p, "param/out.b", "pickled")
    assert not marker.exists()


def test_a_forged_header_cannot_make_numpy_allocate_terabytes(tmp_path):
    """The zip says the entry is small, its .npy header claims 8 TB: refused
    from the header, before numpy allocates anything."""
    import io
    members = _members()
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False,
                                               "shape": (2_000_000_000_000,)})
    members["param/out.b.npy"] = buf.getvalue() + b"\x00" * 64
    p = tmp_path / "forged.npz"
    _zip_with(p, members)
    rejected(p, "param/out.b", "shape")


def test_a_zip_bomb_like_entry_is_refused_by_its_expansion(tmp_path):
    """16 MB of zeros deflate to about 16 kB: within the history size limit,
    but a 1000:1 expansion is refused before decompressing it."""
    members = _members()
    members["history/chars.npy"] = _npy_bytes(np.zeros(2_000_000))
    p = tmp_path / "bomb.npz"
    _zip_with(p, members, compress=True)
    assert p.stat().st_size < 200_000
    rejected(p, "history/chars", "zip bomb")


def test_an_entry_larger_than_its_config_allows_is_refused_unread(tmp_path):
    members = _members()
    members["param/out.b.npy"] = _npy_bytes(np.zeros(3_000_000, np.float32))
    p = tmp_path / "big.npz"
    _zip_with(p, members, compress=True)
    rejected(p, "param/out.b", "larger than")


def test_arrays_numpy_wrote_in_fortran_order_load_as_the_same_arrays(tmp_path):
    """np.savez keeps a Fortran-ordered array in that order (the .npy header
    says so); the loader must lay the bytes out the same way."""
    ck = make_checkpoint(hidden=80)        # l0.Wh 100 kB: the direct reader too
    arrays = {k: np.asfortranarray(v) if v.ndim >= 2 else v
              for k, v in ckpt.to_arrays(ck).items()}
    p = tmp_path / "fortran.npz"
    write_npz(p, arrays)
    with np.load(p) as z:
        assert z["param/l0.Wh"].flags.f_contiguous and not z["param/l0.Wh"].flags.c_contiguous
    assert_same(ck, ckpt.load(str(p)))


def test_entries_are_gathered_from_short_reads(tmp_path, monkeypatch, good):
    """A stream may fill less than asked (readinto returns what it had):
    the reader goes on from where it stopped until the entry is whole."""
    path, ck = good
    real = ckpt._open_entry

    class Trickle:
        def __init__(self, inner):
            self.inner = inner

        def __enter__(self):
            self.f = self.inner.__enter__()
            return self

        def __exit__(self, *exc):
            return self.inner.__exit__(*exc)

        def read(self, n=-1):
            return self.f.read(n)

        def readinto(self, b):
            return self.f.readinto(memoryview(b)[:7])
    monkeypatch.setattr(ckpt, "_open_entry", lambda *a: Trickle(real(*a)))
    assert_same(ck, ckpt.load(str(path)))


def test_a_damaged_zip_is_refused_with_zipfiles_reason(tmp_path):
    p = tmp_path / "damaged.npz"
    p.write_bytes(b"PK\x03\x04" + b"\x00" * 200)      # a zip's first bytes, then nothing
    msg = rejected(p)
    assert msg == f"{p}: not a readable charrnn checkpoint (File is not a zip file)"


def test_a_checkpoint_too_large_for_memory_is_one_line(good, monkeypatch):
    path, _ = good

    def no_memory(*a):
        raise MemoryError()
    monkeypatch.setattr(ckpt, "_validate", no_memory)
    assert rejected(path) == f"{path}: too large to load into memory"


def test_the_first_look_at_a_file_reads_its_first_bytes_only(tmp_path, monkeypatch):
    """Whether a file is a zip at all is told from its first bytes: a large
    checkpoint is not read whole twice."""
    p = tmp_path / "big.npz"
    write_npz(p, {"x": np.zeros(1 << 18)})          # 2 MB
    readers = []

    def counted_open(path, mode="rb"):
        readers.append(_CountingReader(path))
        return readers[-1]
    monkeypatch.setattr(ckpt, "open", counted_open, raising=False)
    ckpt._open_archive(str(p)).close()
    assert len(readers) == 1 and 0 < readers[0].read_bytes <= 64


@pytest.mark.parametrize("embed", [0, 3])
def test_the_health_curves_are_one_per_parameter_group_and_layer(embed):
    from charrnn.nn.model import ModelConfig
    mcfg = ModelConfig(vocab_size=5, model="gru", hidden_size=4, num_layers=2, embed_size=embed)
    groups = (["embed"] if embed else []) + ["l0", "l1", "out"]
    assert ckpt.health_keys(mcfg) == ckpt.HEALTH_KEYS + tuple(
        [f"update_ratio/{g}" for g in groups] + ["saturation/l0", "saturation/l1"])


@pytest.mark.parametrize("parts", ["PARTS", "MODEL_PARTS", "SUMMARY_PARTS"])
def test_a_missing_weight_is_refused_by_name_whatever_is_read(tmp_path, parts):
    """A checkpoint without one of its weights is refused also by the
    commands that do not read the weights (inspect reads SUMMARY_PARTS)."""
    p = _tamper(tmp_path, lambda a: a.pop("param/out.b"))
    with pytest.raises(CheckpointError) as e:
        ckpt.load(str(p), getattr(ckpt, parts))
    assert str(e.value) == f"{p}: missing entry 'param/out.b'"


class _Directory:
    """A zip directory of one entry 'k.npy' with the sizes a test sets."""

    def __init__(self, file_size, compress_size, compressed):
        self.info = zipfile.ZipInfo("k.npy")
        self.info.file_size, self.info.compress_size = file_size, compress_size
        self.info.compress_type = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
        self.zip = self

    def getinfo(self, name):
        if name != "k.npy":
            raise KeyError(name)
        return self.info


@pytest.mark.parametrize("file_size, ok", [(10_000 + 4096, True), (10_000 + 4097, False)])
def test_the_size_limit_allows_a_header_of_4096_bytes_and_not_one_more(file_size, ok):
    """An entry's zip size may exceed its data limit by the 4096 bytes a
    .npy header may take, exactly."""
    z = _Directory(file_size, file_size, compressed=False)
    if ok:
        assert ckpt._info(z, "p.npz", "k", 10_000) is z.info
    else:
        with pytest.raises(CheckpointError, match="larger than its config allows"):
            ckpt._info(z, "p.npz", "k", 10_000)


@pytest.mark.parametrize("file_size, compress_size, ok", [
    (ckpt.SMALL_ENTRY, 1, True),                          # small: any ratio
    (ckpt.SMALL_ENTRY + 1, 1, False),
    (ckpt.MAX_EXPANSION * 20_000, 20_000, True),          # exactly the ratio allowed
    (ckpt.MAX_EXPANSION * 20_000 + 1, 20_000, False)])
def test_the_expansion_limit_refuses_only_beyond_its_ratio(file_size, compress_size, ok):
    z = _Directory(file_size, compress_size, compressed=True)
    if ok:
        assert ckpt._info(z, "p.npz", "k", 1 << 30) is z.info
    else:
        with pytest.raises(CheckpointError, match="zip bomb"):
            ckpt._info(z, "p.npz", "k", 1 << 30)


def test_a_member_that_is_not_an_array_is_refused(tmp_path):
    members = _members()
    members["config"] = members.pop("config.npy")[80:]      # raw bytes, no .npy
    p = tmp_path / "raw.npz"
    _zip_with(p, members)
    rejected(p, "config", "not a numpy array")


def test_compressed_checkpoints_of_real_weights_still_load(tmp_path):
    """The expansion limit does not refuse an honest np.savez_compressed file."""
    ck = make_checkpoint(hidden=40)
    p = tmp_path / "small.npz"
    np.savez_compressed(p, **ckpt.to_arrays(ck))
    assert_same(ck, ckpt.load(str(p)))


@pytest.mark.parametrize("key, value", [("state/iteration", -5), ("state/chunk", -1),
                                        ("state/wall_time", float("nan")),
                                        ("state/best_val", float("inf")),
                                        ("state/smooth_loss", float("-inf")),
                                        ("state/chars_seen", -100)])
def test_load_rejects_impossible_counters(tmp_path, key, value):
    """Counters are read whatever their values and then refused by the one
    message that says which and what (not as an array holding NaN)."""
    dtype = np.float64 if isinstance(value, float) else np.int64
    msg = rejected(_tamper(tmp_path, lambda a: a.__setitem__(key, np.array(value, dtype))), key)
    assert msg.endswith(f": {key} is {value}, not a finite count"), msg


def _pcg64(**change) -> str:
    st = {"bit_generator": "PCG64", "state": {"state": 5, "inc": 7}, "has_uint32": 0,
          "uinteger": 0}
    for k, v in change.items():
        (st["state"] if k in ("state", "inc") else st)[k] = v
    return json.dumps(st)


@pytest.mark.parametrize("rng", ['{"bit_generator": "MT19937", "state": {"key": [1], "pos": 0}}',
                                 '{"bit_generator": "PCG64"}', '[1, 2]', '"seed"',
                                 _pcg64(state=1 << 128), _pcg64(inc=1 << 128),
                                 _pcg64(state=-1), _pcg64(inc=-1), _pcg64(uinteger=1 << 64),
                                 _pcg64(has_uint32=1 << 64)])
def test_load_rejects_an_unusable_rng_state(tmp_path, rng):
    """Numbers beyond what the generator holds (128-bit state and increment)
    are refused at load, as numpy would refuse them at the first draw."""
    rejected(_tamper(tmp_path, lambda a: a.__setitem__("state/rng", np.array(rng))), "state/rng")


@pytest.mark.parametrize("rng", [_pcg64(has_uint32=True),          # a bool, not an int
                                 _pcg64()[:-1] + ', "note": "kept"}'])  # a key numpy ignores
def test_a_generator_state_the_quick_check_doubts_is_given_to_numpy(tmp_path, rng):
    """States the quick check does not vouch for go to numpy's own setter,
    which accepts these two; they load and the generator takes them."""
    ck = make_checkpoint()
    back = ckpt.load(str(_tamper(tmp_path, lambda a: a.__setitem__("state/rng", np.array(rng)),
                                 ck)))
    assert back.state["rng"] == json.loads(rng)
    g = np.random.default_rng()
    g.bit_generator.state = back.state["rng"]
    assert g.bit_generator.state["state"] == {"state": 5, "inc": 7}


def test_loading_a_checkpoint_leaves_numpy_random_unimported(good):
    """A well-formed PCG64 state is checked without numpy.random, which
    would add about 17 ms to every `charrnn sample`."""
    import subprocess
    import sys
    code = ("import sys; from charrnn.store import checkpoint as c; "
            "print('numpy.random' in sys.modules); c.load(sys.argv[1]); "
            "print('numpy.random' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(good[0])], capture_output=True,
                         text=True, check=True).stdout.split()
    if out[0] == "True":
        pytest.skip("this numpy imports numpy.random itself (numpy 1.x)")
    assert out == ["False", "False"]


# ------------------------------------------------ reading only what is needed
def _count_opens(monkeypatch):
    opened = []
    real = zipfile.ZipFile.open

    def counting(self, name, *a, **k):
        opened.append(getattr(name, "filename", name))
        return real(self, name, *a, **k)
    monkeypatch.setattr(zipfile.ZipFile, "open", counting)
    return opened


def test_each_entry_is_opened_once_and_parts_not_asked_for_never(tmp_path, monkeypatch):
    ck = make_checkpoint(model="lstm", optimizer="adam")
    p = str(tmp_path / "c.npz")
    ckpt.save(p, ck)
    opened = _count_opens(monkeypatch)
    full = ckpt.load(p)
    assert len(opened) == len(set(opened)) == len(ckpt.to_arrays(ck))   # headers read once
    opened.clear()
    model_only = ckpt.load(p, ckpt.MODEL_PARTS)
    assert not [n for n in opened if n.startswith(("optim/", "state/", "history/"))]
    assert {n for n in opened if n.startswith("param/")} == {f"param/{k}.npy" for k in ck.params}
    assert model_only.optim == {} and model_only.state == {} and model_only.history == {}
    for k, v in full.params.items():
        np.testing.assert_array_equal(model_only.params[k], v)
    opened.clear()
    summary = ckpt.load(p, ckpt.SUMMARY_PARTS)
    assert not [n for n in opened if n.startswith(("optim/", "param/"))]
    assert summary.state["iteration"] == 123 and set(summary.history) == set(ckpt.HISTORY_KEYS)


def _written(tmp_path, arrays) -> str:
    p = tmp_path / "c.npz"
    write_npz(p, arrays)
    return str(p)


# Entries a command does not read are still checked by their headers, so
# sample (MODEL_PARTS) and inspect (SUMMARY_PARTS) refuse what resume refuses.
@pytest.mark.parametrize("parts", [ckpt.MODEL_PARTS, ckpt.SUMMARY_PARTS, ckpt.PARTS],
                         ids=["model", "summary", "all"])
@pytest.mark.parametrize("key, bad, words", [
    ("optim/m.out.W", "objects", "pickled"),
    ("param/out.W", "objects", "pickled"),
    ("history/lr", "objects", "pickled"),
    ("optim/m.out.W", "shape", "config says"),
    ("param/out.W", "shape", "config says"),
    ("state/h", "shape", "config says"),
    ("optim/v.out.b", "dtype", "dtype"),
    ("param/l0.Wx", "dtype", "dtype"),
    ("state/iteration", "dtype", "dtype"),
    ("history/train_loss", "shape", "1-D"),
    ("optim/velocity", "name", "unexpected entry"),
    ("state/secret", "name", "unexpected entry"),
])
def test_every_part_refuses_an_entry_its_config_does_not_allow(tmp_path, parts, key, bad,
                                                               words):
    marker = tmp_path / "pwned"
    arrays = ckpt.to_arrays(make_checkpoint(model="gru", optimizer="adam"))
    if bad == "objects":
        arrays[key] = _object_array(marker)
    elif bad == "shape":
        a = arrays[key]
        arrays[key] = np.zeros(a.shape[:-1] + (1,) if a.ndim else (2,), a.dtype) \
            if a.ndim != 1 else np.zeros((len(a), 1))
    elif bad == "dtype":
        arrays[key] = arrays[key].astype(np.float16 if arrays[key].dtype.kind != "f"
                                         else np.int32)
    else:
        arrays[key] = np.zeros(3)
    path = _written(tmp_path, arrays)
    with pytest.raises(CheckpointError) as e:
        ckpt.load(path, parts)
    assert key in str(e.value) and words in str(e.value), str(e.value)
    assert str(e.value).startswith(f"{path}: ")
    assert not marker.exists()


@pytest.mark.parametrize("parts", [ckpt.MODEL_PARTS, ckpt.SUMMARY_PARTS, ckpt.PARTS],
                         ids=["model", "summary", "all"])
@pytest.mark.parametrize("key, dtype, says", [
    ("param/l0.Wx", np.int32, "has dtype int32, config says float32"),
    ("optim/v.out.b", np.float64, "has dtype float64, config says float32"),
    ("optim/t", np.float32, "has dtype float32, config says int64"),
    ("state/iteration", np.float16, "has dtype float16, not the kind this entry holds"),
])
def test_a_refused_dtype_is_named_with_the_one_the_config_wants(tmp_path, parts, key, dtype,
                                                                says):
    arrays = ckpt.to_arrays(make_checkpoint(model="gru", optimizer="adam"))
    arrays[key] = arrays[key].astype(dtype)
    path = _written(tmp_path, arrays)
    with pytest.raises(CheckpointError) as e:
        ckpt.load(path, parts)
    assert str(e.value) == f"{path}: {key} {says}"


def _flag_encrypted(p, key):
    """Set the 'encrypted' bit of entry key in its local header and in the
    central directory (the bytes stay as they were: readable, were the bit
    not set)."""
    with zipfile.ZipFile(p) as z:
        info = z.getinfo(key)
    raw = bytearray(p.read_bytes())
    assert raw[info.header_offset:info.header_offset + 4] == b"PK\x03\x04"
    raw[info.header_offset + 6] |= 1
    i = raw.find(b"PK\x01\x02")
    while i != -1:
        n = int.from_bytes(raw[i + 28:i + 30], "little")
        if raw[i + 46:i + 46 + n] == key.encode():
            raw[i + 8] |= 1
        i = raw.find(b"PK\x01\x02", i + 4)
    p.write_bytes(bytes(raw))


@pytest.mark.parametrize("parts", [ckpt.MODEL_PARTS, ckpt.SUMMARY_PARTS, ckpt.PARTS],
                         ids=["model", "summary", "all"])
@pytest.mark.parametrize("key, hidden", [("param/out.W", 5), ("optim/m.l0.Wh", 160)],
                         ids=["small", "read-directly"])
def test_an_entry_flagged_encrypted_is_refused_by_name_by_every_part(tmp_path, parts, key,
                                                                     hidden):
    """charrnn writes no encrypted entries: one flagged so is refused in
    one line naming it, whether the part reads it (zipfile or the direct
    reader) or checks its header only."""
    p = tmp_path / "c.npz"
    ckpt.save(str(p), make_checkpoint(model="gru", optimizer="adam", hidden=hidden))
    ckpt.load(str(p), parts)                                # loads before the flag
    _flag_encrypted(p, key + ".npy")
    with pytest.raises(CheckpointError) as e:
        ckpt.load(str(p), parts)
    assert str(e.value) == (f"{p}: entry {key!r} is encrypted (charrnn writes no encrypted "
                            f"entries); refusing to load it")


@pytest.mark.parametrize("parts", [ckpt.MODEL_PARTS, ckpt.SUMMARY_PARTS, ckpt.PARTS],
                         ids=["model", "summary", "all"])
def test_an_oversized_or_misnamed_entry_is_refused_with_the_checkpoints_path(tmp_path, parts):
    """The zip record's checks name the file, also for entries a part only
    checks by their header: an entry far larger than its config allows, and
    one whose name lacks .npy."""
    arrays = ckpt.to_arrays(make_checkpoint(model="gru", optimizer="adam"))
    arrays["param/out.W"] = np.zeros(5000, np.float32)
    p = _written(tmp_path, arrays)
    size = 128 + 5000 * 4
    with pytest.raises(CheckpointError) as e:
        ckpt.load(p, parts)
    assert str(e.value) == (f"{p}: entry 'param/out.W' is {size} bytes, larger than its "
                            f"config allows; refusing to load it")
    arrays = ckpt.to_arrays(make_checkpoint(model="gru", optimizer="adam"))
    q = tmp_path / "named.npz"
    with zipfile.ZipFile(q, "w") as z:
        for k, v in arrays.items():
            b = io.BytesIO()
            np.save(b, v)
            z.writestr(k if k == "param/out.W" else k + ".npy", b.getvalue())
    with pytest.raises(CheckpointError) as e:
        ckpt.load(str(q), parts)
    assert str(e.value) == f"{q}: entry 'param/out.W' is not a numpy array"


@pytest.mark.parametrize("parts", [ckpt.MODEL_PARTS, ckpt.SUMMARY_PARTS, ckpt.PARTS],
                         ids=["model", "summary", "all"])
def test_a_compressed_checkpoint_is_checked_like_a_stored_one(tmp_path, parts):
    """np.savez_compressed's entries go through zipfile, read or checked by
    header only: it loads as the stored one does, and an entry of the wrong
    shape is refused with the checkpoint's path and the entry's name.  Its
    recurrent weights (1.9 MB, random) are over the 1 MiB from which the
    zip-bomb check applies, and compress about 1.1-fold: they load."""
    ck = make_checkpoint(model="gru", optimizer="adam", hidden=400, layers=1)
    arrays = ckpt.to_arrays(ck)
    good = tmp_path / "good.npz"
    np.savez_compressed(good, **arrays)
    got = ckpt.load(str(good), parts)
    for k, v in (got.params or {}).items():
        np.testing.assert_array_equal(v, ck.params[k])
    arrays["param/out.W"] = np.zeros((3, 1), np.float32)
    bad = tmp_path / "bad.npz"
    np.savez_compressed(bad, **arrays)
    with zipfile.ZipFile(bad) as z:
        assert z.getinfo("param/out.W.npy").compress_type == zipfile.ZIP_DEFLATED
    with pytest.raises(CheckpointError) as e:
        ckpt.load(str(bad), parts)
    assert str(e.value).startswith(f"{bad}: param/out.W has shape (3, 1), config says "), \
        str(e.value)


def test_inspect_reads_the_headers_of_the_weights_not_the_weights(tmp_path, monkeypatch):
    """SUMMARY_PARTS (inspect) reads each weight and optimizer entry's zip
    and .npy header only: a few KB each, under a tenth of a 4 MB checkpoint
    in all; the full load reads it all."""
    p = tmp_path / "c.npz"
    ckpt.save(str(p), make_checkpoint(model="lstm", optimizer="adam", hidden=160, layers=2))
    size = p.stat().st_size
    assert size > 3_000_000
    readers = []

    def counted_archive(path):
        readers.append(_CountingReader(path))
        return zipfile.ZipFile(readers[-1])
    monkeypatch.setattr(ckpt, "_open_archive", counted_archive)
    ckpt.load(str(p), ckpt.SUMMARY_PARTS)
    assert readers[-1].read_bytes < size / 10, (readers[-1].read_bytes, size)
    ckpt.load(str(p))
    assert readers[-1].read_bytes >= size * 0.9


@pytest.mark.parametrize("compressed", [False, True], ids=["stored", "compressed"])
def test_an_unread_entry_with_a_damaged_local_header_is_refused_by_name(tmp_path, compressed):
    """An entry whose local zip header's signature is overwritten is refused
    by name by every part, whether it reads the entry (through zipfile) or
    checks its header only, stored (as charrnn writes) or compressed."""
    p = tmp_path / "latest.npz"
    ck = make_checkpoint(model="gru")
    if compressed:
        np.savez_compressed(p, **ckpt.to_arrays(ck))
    else:
        ckpt.save(str(p), ck)
    with zipfile.ZipFile(p) as z:
        info = z.getinfo("param/out.W.npy")
    raw = bytearray(p.read_bytes())
    raw[info.header_offset:info.header_offset + 4] = b"XXXX"
    p.write_bytes(bytes(raw))
    for parts in (ckpt.SUMMARY_PARTS, ckpt.MODEL_PARTS, ckpt.PARTS):
        with pytest.raises(CheckpointError) as e:
            ckpt.load(str(p), parts)
        assert str(e.value) == f"{p}: damaged checkpoint (bad zip header of 'param/out.W.npy')"


@pytest.mark.parametrize("parts", [ckpt.MODEL_PARTS, ckpt.SUMMARY_PARTS, ckpt.PARTS],
                         ids=["model", "summary", "all"])
@pytest.mark.parametrize("size", [13, 3000, 40000])
def test_entries_with_extra_fields_in_their_zip_headers_load(tmp_path, parts, size):
    """Other zip tools write extra fields (timestamps, owners) into each
    entry's headers: every reader finds the .npy data after the local
    header's name and extra field (small entries, the direct reader's large
    ones, header-only checks), for a field of a few bytes, one near the
    4 KB a header-only check reads, and one of 32 KiB or more (the zip
    header's lengths are unsigned 16-bit numbers)."""
    import struct
    ck = make_checkpoint(model="lstm", optimizer="adam", hidden=160, layers=1)
    arrays = ckpt.to_arrays(ck)
    p = tmp_path / "extra.npz"
    with zipfile.ZipFile(p, "w") as z:
        for k, v in arrays.items():
            b = io.BytesIO()
            np.save(b, v)
            zi = zipfile.ZipInfo(k + ".npy", date_time=(2026, 12, 7, 0, 0, 0))
            zi.extra = struct.pack("<HH", 0x5455, size) + bytes(i % 251 for i in range(size))
            z.writestr(zi, b.getvalue())
    with zipfile.ZipFile(p) as z:
        assert all(len(i.extra) == size + 4 for i in z.infolist())
    got = ckpt.load(str(p), parts)
    want = ckpt.load(str(p), ckpt.PARTS) if parts != ckpt.PARTS else got
    for k, v in got.params.items():
        np.testing.assert_array_equal(v, ck.params[k])
    for k, v in got.optim.items():
        np.testing.assert_array_equal(v, want.optim[k])
    assert got.state.get("iteration", 123) == 123


def test_unread_entries_are_checked_by_their_headers_only(tmp_path):
    """An optimizer entry whose data bytes are damaged (its header intact):
    sampling never reads the data, so it loads; resuming reads it and the
    CRC says it is damaged."""
    ck = make_checkpoint(model="lstm", optimizer="adam", hidden=160, layers=2)
    p = tmp_path / "c.npz"
    ckpt.save(str(p), ck)
    with zipfile.ZipFile(p) as z:
        info = z.getinfo("optim/m.l0.Wh.npy")
    raw = bytearray(p.read_bytes())
    end = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.file_size
    raw[end - 10] ^= 0xFF                                   # inside the array's data
    p.write_bytes(bytes(raw))
    assert ckpt.load(str(p), ckpt.MODEL_PARTS).params
    with pytest.raises(CheckpointError, match="CRC"):
        ckpt.load(str(p))


def test_an_entry_cut_short_is_one_error(tmp_path):
    ck = make_checkpoint()
    arrays = ckpt.to_arrays(ck)
    buf = io.BytesIO()
    np.save(buf, arrays["param/out.W"])
    p = tmp_path / "c.npz"
    with zipfile.ZipFile(p, "w") as z:
        for k, v in arrays.items():
            if k == "param/out.W":
                z.writestr(k + ".npy", buf.getvalue()[:-8])
            else:
                b = io.BytesIO()
                np.save(b, v)
                z.writestr(k + ".npy", b.getvalue())
    with pytest.raises(CheckpointError, match="ends early"):
        ckpt.load(str(p), ckpt.MODEL_PARTS)


def test_large_stored_entries_read_directly_equal_numpy_and_are_crc_checked(tmp_path):
    ck = make_checkpoint(model="lstm", optimizer="adam", hidden=160, layers=2)
    p = tmp_path / "big.npz"
    ckpt.save(str(p), ck)
    big = [k for k, v in ckpt.to_arrays(ck).items() if v.nbytes >= ckpt.DIRECT_READ_BYTES]
    assert "param/l0.Wh" in big
    got = ckpt.load(str(p))
    with np.load(p, allow_pickle=False) as ref:
        for k, v in got.params.items():
            np.testing.assert_array_equal(v, ref[f"param/{k}"])
            assert v.flags.writeable and v.flags.c_contiguous
        for k, v in got.optim.items():
            np.testing.assert_array_equal(v, ref[f"optim/{k}"])
    with zipfile.ZipFile(p) as z:
        info = z.getinfo("param/l0.Wh.npy")
    raw = bytearray(p.read_bytes())
    at = info.header_offset + 30 + len(info.filename) + 200     # inside the weights
    raw[at] ^= 0x10                     # still a finite float32, another value
    p.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="bad CRC-32"):
        ckpt.load(str(p), ckpt.MODEL_PARTS)


def test_a_large_entry_with_a_damaged_local_header_is_one_error(tmp_path):
    """Large stored entries are read straight from the file (_StoredEntry):
    a local header that is not one ("PK\\3\\4" overwritten) is refused by
    name, although its data and CRC are intact."""
    import zipfile
    path = tmp_path / "latest.npz"
    ckpt.save(str(path), make_checkpoint(model="rnn", hidden=160, layers=1))
    key = "param/l0.Wh.npy"
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(key)
        assert info.file_size >= ckpt.DIRECT_READ_BYTES and info.compress_type == zipfile.ZIP_STORED
    ckpt.load(str(path))                                  # loads before the damage
    raw = bytearray(path.read_bytes())
    raw[info.header_offset:info.header_offset + 4] = b"XXXX"
    path.write_bytes(bytes(raw))
    msg = rejected(path)
    assert msg == f"{path}: damaged checkpoint (bad zip header of 'param/l0.Wh.npy')"


# ------------------------------------------------- what a failed save says
@pytest.mark.parametrize("err, advice", [
    (errno.ENOSPC, "free some disk space or choose another --checkpoint-dir"),
    (errno.EDQUOT, "free some disk space or choose another --checkpoint-dir"),
    (errno.EROFS, "the folder is read-only; choose another --checkpoint-dir"),
    (errno.EACCES, "the folder is not writable; choose another --checkpoint-dir"),
    (errno.EPERM, "the folder is not writable; choose another --checkpoint-dir"),
    (errno.EIO, "choose another --checkpoint-dir"),
])
def test_a_failed_save_says_why_and_what_to_do(tmp_path, err, advice):
    path = tmp_path / "latest.npz"
    fresh = ckpt._write_error(str(path), OSError(err, os.strerror(err)))
    assert fresh == f"cannot write checkpoint {path}: {os.strerror(err)}; {advice}"
    path.write_bytes(b"an earlier checkpoint")
    kept = ckpt._write_error(str(path), OSError(err, os.strerror(err)))
    assert kept == (f"cannot write checkpoint {path}: {os.strerror(err)}; the previous "
                    f"checkpoint is unchanged; {advice}")


def test_a_failed_save_without_an_os_reason_still_says_something(tmp_path):
    path = str(tmp_path / "latest.npz")
    assert ckpt._write_error(path, OSError("the writer gave up")).startswith(
        f"cannot write checkpoint {path}: the writer gave up; ")
    assert ckpt._write_error(path, OSError()).startswith(
        f"cannot write checkpoint {path}: OSError; ")


# ------------------------------------------- the direct reader of large entries
def _stored_entries(tmp_path):
    import zipfile
    path = tmp_path / "latest.npz"
    ckpt.save(str(path), make_checkpoint(model="rnn", hidden=160, layers=1))
    zf = zipfile.ZipFile(path)
    return zf, [i for i in zf.infolist() if i.file_size >= ckpt.DIRECT_READ_BYTES]


@pytest.mark.parametrize("sizes", [[-1], [None], [1000, 7, -1], [0, 4096, 0, 100_000, 5, -1]])
def test_the_direct_reader_returns_what_zipfile_returns(tmp_path, sizes):
    zf, infos = _stored_entries(tmp_path)
    assert infos
    with zf:
        for info in infos:
            want = zf.read(info)
            entry = ckpt._open_entry(zf, info, "latest.npz")
            assert isinstance(entry, ckpt._StoredEntry)
            got = b""
            for n in sizes:
                part = entry.read(n)
                assert len(part) == (len(want) - len(got) if n is None or n < 0
                                     else min(n, len(want) - len(got)))
                got += part
            assert got == want
            assert entry.readinto(bytearray(10)) == 0           # nothing left
            assert entry.read(5) == b""


def test_the_direct_reader_refuses_an_entry_that_ends_early():
    import io
    import struct
    import zipfile
    info = zipfile.ZipInfo("param/x.npy")
    info.header_offset, info.file_size, info.CRC = 0, 100, 0
    head = b"PK\x03\x04" + b"\x00" * 22 + struct.pack("<HH", 0, 0)
    entry = ckpt._StoredEntry(io.BytesIO(head + b"\x01" * 60), info, "latest.npz")
    buf = bytearray(100)
    assert entry.readinto(buf) == 60
    with pytest.raises(CheckpointError) as e:
        entry.readinto(memoryview(buf)[60:])
    assert str(e.value) == "latest.npz: damaged checkpoint ('param/x.npy' ends early)"


def test_the_direct_reader_gathers_short_reads():
    """A file object may return fewer bytes than asked (readinto): read(n)
    goes on until it has n."""
    import io
    import struct
    import zipfile
    import zlib

    class Trickle(io.BytesIO):
        def readinto(self, b):
            return super().readinto(memoryview(b)[:7])
    data = bytes(range(256)) * 2
    info = zipfile.ZipInfo("param/x.npy")
    info.header_offset, info.file_size, info.CRC = 0, len(data), zlib.crc32(data)
    head = b"PK\x03\x04" + b"\x00" * 22 + struct.pack("<HH", 0, 0)
    entry = ckpt._StoredEntry(Trickle(head + data), info, "latest.npz")
    real, calls = entry.readinto, []

    def counted(buf):                      # a read that loops for ever fails instead
        calls.append(len(buf))
        assert len(calls) <= 200, "read(n) keeps asking for bytes it already has"
        return real(buf)
    entry.readinto = counted
    assert entry.read(100) == data[:100]
    assert entry.read(-1) == data[100:]
