"""The .npz checkpoint format: save atomically, load strictly (never pickle).

Keys of one flat .npz:
    format_version  int64 0-d
    config          0-d unicode, JSON: {"model": {...}, "train": {...}, "data": {...}}
    vocab           (V,) int32 code points, sorted, unique
    param/<name>    every weight (see model.param_shapes)
    optim/<name>    optimizer state (see optim)
    state/<name>    what an exact resume needs: iteration, chunk, epoch,
                    chars_seen, wall_time, best_val, start_loss (first step's
                    loss, the divergence yardstick), smooth_loss, h and c (L, B, H), rng (JSON);
                    with --weight-average, w.<name>: the trained weights (param/ then
                    holds their average, the model that was evaluated)
    history/<name>  1-D float64 curves of equal length: iter, chars, wall_time,
                    train_loss, val_loss (nats/char), lr
"""
from __future__ import annotations

import errno
import json
import math
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from charrnn.nn import model as model_mod
from charrnn.nn.names import DTYPES
from charrnn.nn import optim as optim_mod
from charrnn.errors import CheckpointError

FORMAT_VERSION = 1
LATEST, BEST = "latest.npz", "best.npz"
HISTORY_KEYS = ("iter", "chars", "wall_time", "train_loss", "val_loss", "lr")
# Run-health curves (see charrnn.runs.health); checkpoints before them lack these.
HEALTH_KEYS = ("grad_norm", "clip_share", "update_ratio", "saturation", "memory")


def health_keys(model_config) -> tuple[str, ...]:
    """Every run-health curve a model of this config records: HEALTH_KEYS,
    the update ratio per parameter group and the saturation per layer."""
    groups = (["embed"] if model_config.embed_size else []) + \
        [f"l{k}" for k in range(model_config.num_layers)] + ["out"]
    return HEALTH_KEYS + tuple(f"update_ratio/{g}" for g in groups) + \
        tuple(f"saturation/l{k}" for k in range(model_config.num_layers))
STATE_SCALARS = {"iteration": "i", "chunk": "i", "epoch": "i", "chars_seen": "i",
                 "wall_time": "f", "best_val": "f", "start_loss": "f",
                 "smooth_loss": "f"}
MAX_CONFIG_BYTES = 1 << 20


@dataclass
class Checkpoint:
    config: dict
    vocab: str
    params: dict[str, np.ndarray]
    optim: dict[str, np.ndarray] = field(default_factory=dict)
    state: dict = field(default_factory=dict)
    history: dict[str, np.ndarray] = field(default_factory=dict)
    path: str = ""

    @property
    def model_config(self) -> model_mod.ModelConfig:
        return model_mod.ModelConfig.from_dict(self.config["model"])


# ------------------------------------------------------------------- saving
def to_arrays(ck: Checkpoint) -> dict[str, np.ndarray]:
    out = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "config": np.array(json.dumps(ck.config, sort_keys=True, ensure_ascii=False)),
        "vocab": np.array([ord(c) for c in ck.vocab], dtype=np.int32),
    }
    for k, v in ck.params.items():
        out[f"param/{k}"] = v
    for k, v in ck.optim.items():
        out[f"optim/{k}"] = np.asarray(v)
    for k, v in ck.state.items():
        if k == "rng":
            out["state/rng"] = np.array(json.dumps(v))
        elif k in ("h", "c") or k.startswith("w."):
            out[f"state/{k}"] = np.asarray(v)
        else:
            kind = STATE_SCALARS[k]
            out[f"state/{k}"] = np.array(v, dtype=np.int64 if kind == "i" else np.float64)
    for k, v in ck.history.items():
        out[f"history/{k}"] = np.asarray(v, dtype=np.float64)
    return out


def save(path: str, ck: Checkpoint, writer=None) -> None:
    """Write ck to path atomically: a temporary file ``<path>.tmp-<pid>`` in
    the same folder, flushed and fsynced, then renamed over path.  On any
    failure the temporary file is removed and the old path is untouched.
    ``writer(file, arrays)`` may replace np.savez (tests inject faults)."""
    arrays = to_arrays(ck)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            (writer or _savez)(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _unlink_quietly(tmp)
        raise CheckpointError(_write_error(path, e))
    except BaseException:
        _unlink_quietly(tmp)
        raise
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def _savez(f, arrays):
    np.savez(f, **arrays)


def _write_error(path, e: OSError) -> str:
    """One line for a failed save: what, why, and that the old file is intact."""
    why = e.strerror or str(e) or type(e).__name__
    advice = {errno.ENOSPC: "free some disk space or choose another --checkpoint-dir",
              errno.EDQUOT: "free some disk space or choose another --checkpoint-dir",
              errno.EROFS: "the folder is read-only; choose another --checkpoint-dir",
              errno.EACCES: "the folder is not writable; choose another --checkpoint-dir",
              errno.EPERM: "the folder is not writable; choose another --checkpoint-dir"}
    tail = advice.get(e.errno, "choose another --checkpoint-dir")
    kept = "; the previous checkpoint is unchanged" if os.path.exists(path) else ""
    return f"cannot write checkpoint {path}: {why}{kept}; {tail}"


_TMP_RE = re.compile(r"^.+\.npz\.tmp-(\d+)$")


def stale_temporaries(folder: str) -> list[str]:
    """Paths of ``*.npz.tmp-<pid>`` files in folder whose writer process is gone
    (left by a killed run).  Files of live processes are never listed."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    out = []
    for name in sorted(names):
        m = _TMP_RE.match(name)
        if m and not _pid_alive(int(m.group(1))):
            out.append(os.path.join(folder, name))
    return out


def clean_stale_temporaries(folder: str) -> list[str]:
    """Remove what ``stale_temporaries`` lists; returns the removed paths."""
    removed = []
    for p in stale_temporaries(folder):
        try:
            os.unlink(p)
            removed.append(p)
        except OSError:
            pass
    return removed


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True          # exists but not ours, or unknowable: keep its file
    return True


def _unlink_quietly(p):
    try:
        os.unlink(p)
    except OSError:
        pass


# ------------------------------------------------------------------ loading
PARTS = frozenset({"params", "optim", "state", "history"})
SECTIONS = {"param": "params", "optim": "optim", "state": "state", "history": "history"}
MODEL_PARTS = frozenset({"params"})                 # sample, eval, --cells
SUMMARY_PARTS = frozenset({"state", "history"})     # inspect


def load(path: str, parts=PARTS) -> Checkpoint:
    """Load and validate a checkpoint; anything unexpected raises CheckpointError.

    format_version, config and vocab are always read and checked, and so is
    the header of every other entry (its name, dtype and shape against the
    config; ``entry_rules``), whatever the command.  ``parts`` says which
    sections' arrays are read too (and fully validated): "params", "optim",
    "state", "history"; the others stay unread beyond their .npy headers and
    are empty in the result.  Resuming a run reads every part (the default);
    sampling reads MODEL_PARTS.  The file is opened once, so a checkpoint
    replaced meanwhile is read whole, old or new."""
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such checkpoint; train one with 'charrnn train FILE' "
                              f"or pass --checkpoint")
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    try:
        zf = _open_archive(path)
    except CheckpointError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError) as e:
        # RuntimeError: zipfile's NotImplementedError ("zip file version",
        # unsupported compression) and "encrypted" errors on damaged bytes.
        raise CheckpointError(f"{path}: not a readable charrnn checkpoint ({_short(e)})")
    try:
        with zf:
            return _validate(path, _Archive(zf), frozenset(parts))
    except CheckpointError:
        raise
    except MemoryError:
        raise CheckpointError(f"{path}: too large to load into memory")
    except (ValueError, OSError, EOFError, KeyError, TypeError, AttributeError,
            zipfile.BadZipFile, UnicodeError, RuntimeError, OverflowError) as e:
        raise CheckpointError(f"{path}: damaged checkpoint ({_short(e)})")


NPY_MAGIC, ZIP_MAGIC = b"\x93NUMPY", b"PK"


def _open_archive(path: str) -> zipfile.ZipFile:
    """The checkpoint's zip archive, after a look at its first bytes: a file
    that is not a zip (a program, a text, a lone .npy) is called what it is,
    and nothing is ever handed to numpy's pickle-aware loader."""
    with open(path, "rb") as f:
        head = f.read(len(NPY_MAGIC))
    if not head:
        raise CheckpointError(f"{path}: an empty file, not a charrnn checkpoint")
    if head.startswith(NPY_MAGIC):
        raise CheckpointError(f"{path}: not a charrnn checkpoint (a single array, not an .npz)")
    if not head.startswith(ZIP_MAGIC):
        raise CheckpointError(f"{path}: not a charrnn checkpoint (not an .npz archive); "
                              f"pass a latest.npz or best.npz that charrnn train wrote")
    return zipfile.ZipFile(path)


class _Archive:
    """The zip archive and its entry names (member names without '.npy')."""

    def __init__(self, zf: zipfile.ZipFile):
        self.zip = zf
        self.files = [n[:-4] if n.endswith(".npy") else n for n in zf.namelist()]


def _short(e):
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    return msg[:160]


# An entry may expand at most this much when decompressed (charrnn itself
# writes entries uncompressed; random weights do not compress 100:1).
MAX_EXPANSION, SMALL_ENTRY = 100, 1 << 20


def _info(npz, path, key, max_bytes) -> zipfile.ZipInfo:
    """The zip directory's record of entry key, checked against max_bytes,
    for an absurd expansion and for encryption; nothing of the entry is read."""
    try:
        info = npz.zip.getinfo(key + ".npy")
    except KeyError:
        raise CheckpointError(f"{path}: entry {key!r} is not a numpy array")
    if info.flag_bits & 0x1:
        raise CheckpointError(f"{path}: entry {key!r} is encrypted (charrnn writes no "
                              f"encrypted entries); refusing to load it")
    if info.file_size > max_bytes + 4096:
        raise CheckpointError(f"{path}: entry {key!r} is {info.file_size} bytes, larger than "
                              f"its config allows; refusing to load it")
    if (info.compress_type != zipfile.ZIP_STORED and info.file_size > SMALL_ENTRY
            and info.file_size > MAX_EXPANSION * max(info.compress_size, 1)):
        raise CheckpointError(f"{path}: entry {key!r} expands from {info.compress_size} to "
                              f"{info.file_size} bytes (a zip bomb?); refusing to load it")
    return info


def _header(f, path, key, max_bytes, rule=None):
    """Read entry key's .npy header from stream f and check it: a plain
    (non-object) dtype, at most max_bytes of data, and ``rule`` (see
    entry_rules) when given.  Returns (shape, fortran, dtype, nbytes)."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(f)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = fmt.read_array_header_2_0(f)
    else:
        raise ValueError(f"unsupported .npy version {version}")
    if dtype.hasobject:
        raise CheckpointError(f"{path}: entry {key!r} holds pickled Python objects; "
                              f"refusing to load it (checkpoints are plain arrays)")
    n = 1
    for d in shape:
        n *= int(d)
    nbytes = n * dtype.itemsize
    if nbytes > max_bytes:
        raise CheckpointError(f"{path}: entry {key!r} declares shape {tuple(shape)}, larger "
                              f"than its config allows; refusing to load it")
    if dtype.itemsize == 0:
        raise CheckpointError(f"{path}: entry {key!r} has an empty dtype {dtype}")
    if rule is not None:
        _check_rule(path, key, tuple(shape), dtype, rule)
    return shape, fortran, dtype, nbytes


def _check_rule(path, key, shape, dtype, rule):
    want_shape, want_dtype = rule
    if isinstance(want_shape, int):               # a number of dimensions
        if len(shape) != want_shape:
            raise CheckpointError(f"{path}: {key} has shape {shape}, a {want_shape}-D "
                                  f"array expected")
    elif shape != tuple(want_shape):
        raise CheckpointError(f"{path}: {key} has shape {shape}, config says "
                              f"{tuple(want_shape)}")
    if isinstance(want_dtype, str):               # dtype kinds
        if dtype.kind not in want_dtype:
            raise CheckpointError(f"{path}: {key} has dtype {dtype}, not the kind this "
                                  f"entry holds")
    elif dtype != want_dtype:
        raise CheckpointError(f"{path}: {key} has dtype {dtype}, config says "
                              f"{np.dtype(want_dtype)}")


def _get(npz, path, key, max_bytes, rule=None):
    """Read one entry, looking at it before numpy would: it must be a stored
    .npy array whose header passes ``_header``, and the zip must not claim an
    absurd expansion.  Nothing is allocated before these checks and nothing
    is unpickled; the header is read once and the data follows from the same
    stream."""
    info = _info(npz, path, key, max_bytes)
    with _open_entry(npz.zip, info, path) as f:
        shape, fortran, dtype, nbytes = _header(f, path, key, max_bytes, rule)
        raw = np.empty(nbytes, dtype=np.uint8)
        view, got = memoryview(raw), 0
        while got < nbytes:
            k = f.readinto(view[got:])
            if not k:
                raise CheckpointError(f"{path}: damaged checkpoint (entry {key!r} ends early)")
            got += k
        f.read(1)                      # reach the end: the zip checks the entry's CRC
    return raw.view(dtype).reshape(shape, order="F" if fortran else "C")


HEADER_READ = 4096     # bytes read for an unread entry's header (numpy writes 128)


def _check_header_only(npz, path, key, max_bytes, rule) -> None:
    """Check entry key's zip record and .npy header without reading its data:
    a stored entry (what charrnn writes) costs one seek and one read of its
    first HEADER_READ bytes; others go through zipfile."""
    info = _info(npz, path, key, max_bytes)
    fp = npz.zip.fp
    if info.compress_type != zipfile.ZIP_STORED:
        with _zip_open(npz.zip, info, path) as f:
            _header(f, path, key, max_bytes, rule)
        return
    import io
    import struct
    fp.seek(info.header_offset)
    head = fp.read(30 + len(info.filename) + len(info.extra) + HEADER_READ)
    if len(head) < 30 or head[:4] != b"PK\x03\x04":
        raise CheckpointError(f"{path}: damaged checkpoint (bad zip header of "
                              f"{info.filename!r})")
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    start = 30 + name_len + extra_len
    _header(io.BytesIO(head[start:start + min(info.file_size, HEADER_READ)]), path, key,
            max_bytes, rule)


def _open_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: str):
    """A stream of one entry's bytes.  Large uncompressed entries (what
    charrnn writes) are read straight from the archive's file into the
    caller's buffer, CRC-checked at the end like zipfile does; zipfile's own
    reader copies every block twice more.  Anything else goes through zipfile."""
    if (info.compress_type != zipfile.ZIP_STORED or info.file_size < DIRECT_READ_BYTES
            or not hasattr(zf.fp, "readinto")):
        return _zip_open(zf, info, path)
    return _StoredEntry(zf.fp, info, path)


def _zip_open(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: str):
    """zf.open(info), a local header zipfile refuses named as _StoredEntry names it."""
    try:
        return zf.open(info)
    except zipfile.BadZipFile:
        raise CheckpointError(f"{path}: damaged checkpoint (bad zip header of "
                              f"{info.filename!r})")


DIRECT_READ_BYTES = 1 << 16


class _StoredEntry:
    """read/readinto over a stored zip entry, from the archive's own file
    object (so a checkpoint renamed over meanwhile is still the old one)."""

    def __init__(self, fp, info, path):
        import struct
        fp.seek(info.header_offset)
        head = fp.read(30)
        if len(head) != 30 or head[:4] != b"PK\x03\x04":
            raise CheckpointError(f"{path}: damaged checkpoint (bad zip header of "
                                  f"{info.filename!r})")
        name_len, extra_len = struct.unpack("<HH", head[26:30])
        self.fp, self.info, self.path = fp, info, path
        self.pos = info.header_offset + 30 + name_len + extra_len
        self.left, self.crc = info.file_size, 0

    def readinto(self, buf) -> int:
        view = memoryview(buf).cast("B")[: self.left]
        if not len(view):
            self._check()
            return 0
        self.fp.seek(self.pos)
        n = self.fp.readinto(view)
        if not n:
            raise CheckpointError(f"{self.path}: damaged checkpoint ({self.info.filename!r} "
                                  f"ends early)")
        self.crc = zlib.crc32(view[:n], self.crc)
        self.pos += n
        self.left -= n
        if not self.left:
            self._check()
        return n

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        buf = bytearray(n)
        got = 0
        while got < n:
            k = self.readinto(memoryview(buf)[got:])
            got += k
        if not self.left:           # the end (also of a read(0) there): the CRC must match
            self._check()
        return bytes(buf)

    def _check(self):
        if self.crc != self.info.CRC:
            raise CheckpointError(f"{self.path}: damaged checkpoint (bad CRC-32 for file "
                                  f"{self.info.filename!r})")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


HISTORY_MAX = 10_000_000        # points per curve


def entry_rules(mcfg: model_mod.ModelConfig, train: dict, optim_kind: str) -> dict:
    """Entry name -> (shape, dtype) every entry after format_version, config
    and vocab must have, from the config: shape a tuple (or an int: a number
    of dimensions), dtype a numpy dtype (or a string of dtype kinds).  A name
    not listed is not allowed."""
    dtype = np.dtype(mcfg.dtype)
    shapes = model_mod.param_shapes(mcfg)
    rules = {f"param/{k}": (s, dtype) for k, s in shapes.items()}
    slots = optim_mod.OPTIMIZERS[optim_kind].state_shapes(
        {k: _Shape(s) for k, s in shapes.items()})
    rules.update({f"optim/{k}": (s, np.dtype(np.int64) if k == "t" else dtype)
                  for k, s in slots.items()})
    rules.update({f"state/{k}": ((), "iu" if kind == "i" else "f")
                  for k, kind in STATE_SCALARS.items()})
    B = int(train.get("batch_size", 1))
    rules.update({f"state/{k}": ((mcfg.num_layers, B, mcfg.hidden_size), dtype)
                  for k in ("h", "c")})
    rules["state/rng"] = ((), "U")
    if _number(train.get("weight_average", 0.0)) > 0:       # the trained weights beside their average
        rules.update({f"state/w.{k}": (s, dtype) for k, s in shapes.items()})
    rules.update({f"history/{k}": (1, np.dtype(np.float64))
                  for k in HISTORY_KEYS + health_keys(mcfg)})
    return rules


def _number(v) -> float:
    """A config number, or 0.0 for anything else (the config is checked elsewhere)."""
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0


def _entry_bytes(key, rule) -> int:
    """The most bytes entry key may hold under its rule."""
    if key == "state/rng":
        return 1 << 16
    shape, dtype = rule
    if isinstance(shape, int):
        return 8 * HISTORY_MAX
    if isinstance(dtype, str):
        return 1024
    return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize + 4096


def _validate(path, npz, parts) -> Checkpoint:
    keys = set(npz.files)
    for k in ("format_version", "config", "vocab"):
        if k not in keys:
            raise CheckpointError(f"{path}: not a charrnn checkpoint (no {k!r} entry)")
    fv = _get(npz, path, "format_version", 1024)
    if fv.shape != () or fv.dtype.kind not in "iu":
        raise CheckpointError(f"{path}: bad format_version entry")
    if int(fv) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {int(fv)} is newer than this charrnn "
                              f"understands ({FORMAT_VERSION}); upgrade charrnn")
    if int(fv) < 1:
        raise CheckpointError(f"{path}: bad format_version {int(fv)}")
    raw = _get(npz, path, "config", MAX_CONFIG_BYTES)
    if raw.shape != () or raw.dtype.kind != "U":
        raise CheckpointError(f"{path}: config entry is not a JSON string")
    try:
        config = json.loads(str(raw[()]))
        if not (isinstance(config, dict) and isinstance(config.get("model"), dict)
                and isinstance(config.get("train"), dict)
                and isinstance(config.get("data", {}), dict)):
            raise TypeError("config must be a JSON object with 'model' and 'train' objects")
        mcfg = model_mod.ModelConfig.from_dict(config["model"])
        train = config["train"]
        _check_model_config(mcfg)
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: bad config in checkpoint ({_short(e)})")

    V = mcfg.vocab_size
    vocab = _get(npz, path, "vocab", 4 * V + 1024)
    if vocab.dtype != np.int32 or vocab.shape != (V,):
        raise CheckpointError(f"{path}: vocab must be {V} int32 code points, "
                              f"found {vocab.dtype} {vocab.shape}")
    if V and (vocab.min() < 0 or vocab.max() > 0x10FFFF or np.any(np.diff(vocab) <= 0)):
        raise CheckpointError(f"{path}: vocab is not a sorted list of unique code points")

    kind = train.get("optimizer", "adagrad")
    if kind not in optim_mod.OPTIMIZERS:
        raise CheckpointError(f"{path}: unknown optimizer {kind!r} in config")
    rules = entry_rules(mcfg, train, kind)
    read_parts = tuple(f"{p}/" for p, part in SECTIONS.items() if part in parts)
    reading = {k for k in keys if k.startswith(read_parts)}
    # Every entry's name, then every unread entry's header (dtype and shape):
    # a file that is not what it claims is refused by every command.
    rest = sorted(keys - {"format_version", "config", "vocab"})
    extra = [k for k in rest if k not in rules]
    if extra:
        raise CheckpointError(f"{path}: unexpected entry {extra[0]!r}; not a checkpoint "
                              f"this charrnn wrote")
    for key in rest:
        if key not in reading:
            _check_header_only(npz, path, key, _entry_bytes(key, rules[key]), rules[key])

    def read(key, finite=True):
        if key not in keys:
            raise CheckpointError(f"{path}: missing entry {key!r}")
        a = _get(npz, path, key, _entry_bytes(key, rules[key]), rules[key])
        if finite and a.dtype.kind == "f" and not np.isfinite(a).all():
            raise CheckpointError(f"{path}: {key} holds NaN or infinite values")
        return a

    params = {}
    for key in (k for k in rules if k.startswith("param/")):
        if "params" in parts:
            params[key[6:]] = read(key)
        elif key not in keys:
            raise CheckpointError(f"{path}: missing entry {key!r}")

    optim = {}
    if "optim" in parts and any(k.startswith("optim/") for k in keys):
        optim = {key[6:]: read(key) for key in rules if key.startswith("optim/")}

    state = {}
    for key in sorted(k for k in reading if k.startswith("state/")):
        name = key[6:]
        if name in STATE_SCALARS:
            a = read(key, finite=False)
            v = int(a) if STATE_SCALARS[name] == "i" else float(a)
            if not math.isfinite(v) or (v < 0 and name != "best_val"):
                raise CheckpointError(f"{path}: {key} is {v}, not a finite count")
            state[name] = v
        elif name == "rng":
            a = read(key)
            try:
                state["rng"] = json.loads(str(a[()]))
                if not _plain_pcg64_state(state["rng"]):     # must be usable
                    np.random.default_rng().bit_generator.state = state["rng"]
            except (ValueError, TypeError, KeyError, OverflowError):
                raise CheckpointError(f"{path}: bad state/rng entry (not a random generator "
                                      f"state)")
        else:
            state[name] = read(key)

    history = {}
    hist_keys = sorted(k for k in reading if k.startswith("history/"))
    for key in hist_keys:
        a = read(key, finite=False)      # a curve may hold NaN (no evaluation yet)
        if history and len(a) != len(next(iter(history.values()))):
            raise CheckpointError(f"{path}: history arrays differ in length")
        history[key[8:]] = a
    missing = [k for k in HISTORY_KEYS if hist_keys and k not in history]
    if missing:
        raise CheckpointError(f"{path}: missing entry 'history/{missing[0]}'")
    return Checkpoint(config=config, vocab="".join(chr(int(c)) for c in vocab), params=params,
                      optim=optim, state=state, history=history, path=path)


class _Shape:
    """Stands for a parameter where only its shape matters (optimizer slots)."""

    def __init__(self, shape):
        self.shape = tuple(shape)


def _check_model_config(m: model_mod.ModelConfig):
    from charrnn.nn.names import CELLS
    if m.model not in CELLS:
        raise ValueError(f"unknown model {m.model!r}")
    if m.dtype not in DTYPES:
        raise ValueError(f"unknown dtype {m.dtype!r}")
    for name in ("vocab_size", "hidden_size", "num_layers"):
        v = getattr(m, name)
        if not isinstance(v, int) or not 1 <= v <= 1 << 20:
            raise ValueError(f"bad {name} {v!r}")
    if not isinstance(m.embed_size, int) or not 0 <= m.embed_size <= 1 << 20:
        raise ValueError(f"bad embed_size {m.embed_size!r}")
    if not 0 <= float(m.dropout) < 1:
        raise ValueError(f"bad dropout {m.dropout!r}")
    if not 0 <= float(m.weight_drop) < 1:
        raise ValueError(f"bad weight_drop {m.weight_drop!r}")
    if m.dropout_mask not in ("step", "chunk"):
        raise ValueError(f"unknown dropout_mask {m.dropout_mask!r}")


def _plain_pcg64_state(st) -> bool:
    """True for a well-formed PCG64 state (what np.random.default_rng saves),
    checked without importing numpy.random (~17 ms of `charrnn sample`'s
    start-up).  Anything else gets numpy's own check: numpy accepts at least
    everything accepted here."""
    def uint(v, bits):
        return type(v) is int and 0 <= v < (1 << bits)
    return (isinstance(st, dict) and set(st) == {"bit_generator", "state", "has_uint32", "uinteger"}
            and st["bit_generator"] == "PCG64" and isinstance(st["state"], dict)
            and set(st["state"]) == {"state", "inc"}
            and uint(st["state"]["state"], 128) and uint(st["state"]["inc"], 128)
            and st["has_uint32"] in (0, 1) and type(st["has_uint32"]) is int
            and uint(st["uinteger"], 32))
