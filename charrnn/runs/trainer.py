"""The training loop: streams of chunks, steps, evaluation, checkpoint cadence."""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, asdict

import numpy as np

from charrnn.store import checkpoint as ckpt
from charrnn.text import data
from charrnn.runs import health
from charrnn.nn import optim
from charrnn.errors import CharRNNError, DataError
from charrnn.runs.config import TrainConfig
from charrnn.runs import schedule
from charrnn.runs.schedule import Plan, lr_at
from charrnn.runs.signals import StopFlag
from charrnn.text.corpus import Corpus, text_fingerprint
from charrnn.nn.model import Model, init_params, zero_state

LATEST, BEST = ckpt.LATEST, ckpt.BEST


# Validation during training reads a fixed sample of the split when the
# split is long: K windows, evenly spaced, side by side (one batch row each),
# in chunks of T characters, where K x T is the run's batch shape (but at
# least EVAL_SHAPE when the shape was chosen for a budget: its small steps
# need not make validation slower or its figures sampled).  A window reads
# EVAL_WARMUP_CHUNKS chunks of T characters unscored (its state warms up
# from zero), then scores EVAL_WINDOW_CHUNKS chunks.  An evaluation thus
# costs (4 + 52) forward chunks whatever the corpus size: a forward chunk is
# 0.25 (lstm) to 0.38 (rnn) of a training step of the default shape, so 2.8
# to 4.3 % of the 500 steps between evaluations at the default
# --eval-every.  A split no longer than the sample is scored whole (every
# character, as K streams from a zero state): tiny Shakespeare's for the
# lstm/gru defaults, so their figures stay comparable with before.
EVAL_SHAPE = (32, 64)
EVAL_WARMUP_CHUNKS = 4
EVAL_WINDOW_CHUNKS = 52


def eval_shape(cfg: TrainConfig, choices=None) -> tuple[int, int]:
    """(streams K, characters per chunk T) of validation during training:
    the run's batch shape, or at least EVAL_SHAPE in each when ``choices``
    (config "choices") say the shape was chosen for the budget."""
    chosen = choices.get("chosen", ()) if isinstance(choices, dict) else ()
    if isinstance(chosen, (list, tuple)) and "batch_size" in chosen:
        return max(cfg.batch_size, EVAL_SHAPE[0]), max(cfg.seq_len, EVAL_SHAPE[1])
    return cfg.batch_size, cfg.seq_len


def val_plan(n_val: int, batch_size: int, seq_len: int) -> dict:
    """How a validation split of n_val characters is scored, as recorded in
    the checkpoint (config data.val_eval): method "whole" or "sampled", and
    for a sample its windows (their starts, evenly spaced over the split),
    window_chars scored in each after warmup_chars of warm-up, and the
    characters scored per evaluation."""
    K, T = max(1, batch_size), seq_len
    warm, length = EVAL_WARMUP_CHUNKS * T, EVAL_WINDOW_CHUNKS * T
    span = warm + length + 1
    if n_val <= K * span:
        n = n_val - 1
        B = max(1, min(batch_size, n // seq_len)) if n > 0 else 0
        return {"method": "whole", "chars_scored": int(B * (n // B)) if B else 0}
    room = n_val - span
    starts = [room // 2] if K == 1 else [k * room // (K - 1) for k in range(K)]
    return {"method": "sampled", "windows": K, "spacing": "even", "window_chars": length,
            "warmup_chars": warm, "chars_scored": K * length, "starts": starts}


def sampled_validation_loss(model: Model, ids: np.ndarray, plan: dict, seq_len: int, stop=None) -> float:
    """Mean cross-entropy (nats/char) over the windows of a "sampled" plan:
    each window read from a zero state, its first warmup_chars unscored."""
    warm, length = plan["warmup_chars"], plan["window_chars"]
    x = np.stack([np.asarray(ids[s: s + warm + length]) for s in plan["starts"]])
    y = np.stack([np.asarray(ids[s + 1: s + warm + length + 1]) for s in plan["starts"]])
    state = zero_state(model.cfg, len(plan["starts"]))
    total, count = 0.0, 0
    for a in range(0, warm + length, seq_len):
        if stop is not None and stop():
            return float("nan")
        b = min(a + seq_len, warm + length)
        loss, state = model.loss(x[:, a:b], y[:, a:b], state)
        if a >= warm:
            total += loss * (b - a) * x.shape[0]
            count += (b - a) * x.shape[0]
    return total / count if count else float("nan")


def validation_loss(model: Model, ids: np.ndarray, batch_size: int, seq_len: int, stop=None) -> float:
    """Mean cross-entropy of the model on ids, in nats/char (hidden state carried).
    ``stop()`` returning True between chunks abandons the evaluation (-> nan)."""
    total, count = 0.0, 0
    state = None
    for x, y in data.eval_chunks(ids, batch_size, seq_len):
        if stop is not None and stop():
            return float("nan")
        if state is None:
            state = zero_state(model.cfg, x.shape[0])
        loss, state = model.loss(x, y, state)
        total += loss * y.size
        count += y.size
    return total / count if count else float("nan")


@dataclass
class TrainResult:
    iterations: int
    train_loss: float
    val_loss: float
    best_val: float
    interrupted_by: int | None
    latest_path: str
    best_path: str | None
    stopped_early: bool = False      # --patience ran out


class Trainer:
    """Holds model, optimizer, data streams and the resumable loop state."""

    def __init__(self, cfg: TrainConfig, corpus: Corpus, checkpoint_dir: str, choices=None):
        self.cfg = cfg
        self.corpus = corpus
        self.dir = checkpoint_dir
        train_ids, self.val_ids = data.split(corpus.ids, cfg.val_frac)
        if cfg.val_frac > 0 and len(self.val_ids) < 2:
            raise DataError(f"the validation split is empty: {len(corpus.ids)} characters x "
                            f"--val-frac {cfg.val_frac}; use more text or --val-frac 0")
        self.streams = data.Streams(train_ids, cfg.batch_size, cfg.seq_len)
        self.eval_shape = eval_shape(cfg, choices)
        self.val_plan = val_plan(len(self.val_ids), *self.eval_shape)
        self.mcfg = cfg.model_config(len(corpus.vocab))
        self.rng = np.random.default_rng(cfg.seed)
        self.model = Model(self.mcfg, init_params(self.mcfg, self.rng))
        self.opt = optim.make(cfg.optimizer, self.model.params)
        if cfg.patience and not len(self.val_ids):
            raise CharRNNError("--patience needs validation text to watch; set --val-frac above 0")
        self.start_loss = None       # training loss of the first step: the divergence yardstick
        self.smooth_loss = None      # its moving average over ~SMOOTH_CHARS characters
        self.hidden = zero_state(self.mcfg, cfg.batch_size)
        self.iteration = self.chunk = self.epoch = self.chars_seen = 0
        self.wall_time = 0.0
        self.best_val = math.inf
        self.history = {k: [] for k in self.history_keys()}
        self._span = health.Span()      # run-health figures since the last evaluation
        self.lineage: dict = {}       # extra config entries: "resumes", "init_from", "choices", ...
        self.plan = Plan()            # the learning-rate plan (runs/schedule.py)
        self.spent = 0.0              # seconds this session spent before run() (choosing sizes)
        self._fingerprint = None
        self._stop = None

    # --------------------------------------------------------------- restore
    def restore(self, ck: ckpt.Checkpoint) -> None:
        """Continue exactly where ck stopped: weights, optimizer state, data
        position, hidden states, RNG state, counters and history.  The caller
        checks that ck fits this trainer's settings and corpus (see runs/resume.py)."""
        st = ck.state
        self.load_weights(ck.params)
        if set(ck.optim) != set(self.opt.state):
            raise CharRNNError(f"{ck.path}: its optimizer state does not fit "
                               f"--optimizer {self.cfg.optimizer}")
        self.opt.state = {k: np.array(v, copy=True) for k, v in ck.optim.items()}
        self.iteration, self.chunk, self.epoch = st["iteration"], st["chunk"], st["epoch"]
        self.chars_seen, self.wall_time = st["chars_seen"], st["wall_time"]
        self.best_val = st["best_val"] if st["best_val"] >= 0 else math.inf
        h, c = st["h"], st.get("c")
        self.hidden = [(np.array(h[k], copy=True), None if c is None else np.array(c[k], copy=True))
                       for k in range(self.mcfg.num_layers)]
        self.rng.bit_generator.state = st["rng"]
        self.start_loss = st.get("start_loss")
        self.smooth_loss = st.get("smooth_loss", self.start_loss)
        rows = len(ck.history.get("iter", ()))
        self.history = {k: [float(x) for x in ck.history[k]] if k in ck.history
                        else [math.nan] * rows for k in self.history_keys()}

    def history_keys(self) -> tuple[str, ...]:
        """The curves of the history: losses, rate, and the run-health figures
        (charrnn.health; a checkpoint written before them gets NaN rows)."""
        return ckpt.HISTORY_KEYS + ckpt.health_keys(self.mcfg)

    def load_weights(self, params: dict) -> None:
        """Replace the weights (same names and shapes; cast to this run's dtype)."""
        mine = self.model.params
        if set(params) != set(mine) or any(params[k].shape != mine[k].shape for k in mine):
            raise CharRNNError("the checkpoint's weights do not fit this model")
        self.model.params = {k: np.array(params[k], dtype=mine[k].dtype, copy=True) for k in mine}

    # ------------------------------------------------------------ checkpoint
    def to_checkpoint(self) -> ckpt.Checkpoint:
        m = self.mcfg
        h = np.stack([s[0] for s in self.hidden])
        state = {"iteration": self.iteration, "chunk": self.chunk, "epoch": self.epoch,
                 "chars_seen": self.chars_seen, "wall_time": self.wall_time,
                 "best_val": self.best_val if math.isfinite(self.best_val) else -1.0,
                 "h": h, "rng": self.rng.bit_generator.state}
        if self.start_loss is not None:
            state["start_loss"] = self.start_loss
            state["smooth_loss"] = self.smooth_loss
        if m.cell.has_c:
            state["c"] = np.stack([s[1] for s in self.hidden])
        if self._fingerprint is None:
            self._fingerprint = text_fingerprint(self.corpus)
        config = {**self.lineage, "plan": self.plan.to_dict(), "model": m.to_dict(),
                  "train": asdict(self.cfg),
                  "data": {"sources": self.corpus.sources, "encoding": self.corpus.encoding,
                           "errors": self.corpus.errors, "chars": int(len(self.corpus.ids)),
                           "train_chars": int(self.streams.B * self.streams.L + 1),
                           "val_chars": int(len(self.val_ids)),
                           "val_eval": {k: v for k, v in self.val_plan.items() if k != "starts"},
                           "text_sha256": self._fingerprint, "files": int(self.corpus.files)}}
        if self.corpus.reading.record() is not None:
            config["data"]["reading"] = self.corpus.reading.record()
        return ckpt.Checkpoint(config=config, vocab=self.corpus.vocab, params=self.model.params,
                               optim=self.opt.state, state=state,
                               history={k: np.array(v, dtype=np.float64) for k, v in self.history.items()})

    def save(self, name: str) -> str:
        """Write the current state to <dir>/<name> atomically; never NaN weights."""
        self.check_finite()
        path = os.path.join(self.dir, name)
        ckpt.save(path, self.to_checkpoint())
        return path

    def check_finite(self) -> None:
        """Raise (before anything is written) if a weight or optimizer entry is
        NaN or infinite: a diverged model must not replace a good checkpoint."""
        for section, arrays in (("weight", self.model.params), ("optimizer state", self.opt.state)):
            for name, a in arrays.items():
                if a.dtype.kind == "f" and not np.isfinite(a).all():
                    raise CharRNNError(
                        f"training diverged by iteration {self.iteration} ({section} {name} is "
                        f"NaN or infinite); lower --lr or --clip. Last good checkpoint kept.")

    # ------------------------------------------------------------------ loop
    def train_step(self) -> float:
        """One truncated-BPTT step on the next chunk of every stream; nats/char."""
        cfg = self.cfg
        if self.chunk == 0:
            self.hidden = zero_state(self.mcfg, cfg.batch_size)
        x, y = self.streams.chunk(self.chunk)
        rng = self.rng if self.mcfg.dropout > 0 else None
        lr = lr_at(cfg, self.iteration, self.plan)
        loss, grads, hidden = self.model.loss_and_grads(x, y, self.hidden, rng)
        if self.start_loss is None and math.isfinite(loss):
            self.start_loss = self.smooth_loss = loss
        elif math.isfinite(loss):
            a = min(1.0, x.size / SMOOTH_CHARS)
            self.smooth_loss = (1.0 - a) * self.smooth_loss + a * loss
        norm, clipped = optim.clip_report_(grads, cfg.clip_mode, cfg.clip)
        self._check_step(loss, norm)
        sizes = {}
        self.opt.update(self.model.params, grads, lr, sizes)
        self._span.add(norm, clipped, sizes)
        self.hidden = hidden
        self.iteration += 1
        self.chars_seen += x.size
        self.chunk += 1
        if self.chunk >= self.streams.chunks_per_epoch:
            self.chunk = 0
            self.epoch += 1
        return loss

    # Divergence: stop (CharRNNError, exit 1) before a bad update or save.
    # Nothing is written, so the checkpoints of the last evaluation survive.
    def _check_step(self, loss: float, norm: float) -> None:
        """After a step's forward/backward: the loss or the gradient norm is
        not finite; or this step's loss is more than SPIKE_FACTOR times the
        first step's; or the loss smoothed over ~SMOOTH_CHARS characters is
        more than DIVERGE_FACTOR times it (one chunk alone is too noisy)."""
        start = self.start_loss
        if not math.isfinite(loss):
            self._diverged(f"loss is {loss}", in_step=True)
        if not math.isfinite(norm):
            self._diverged(f"gradient norm is {norm}", in_step=True)
        if start is None:
            return
        if loss > SPIKE_FACTOR * start:
            self._diverged(f"loss {loss:.3f} is over {SPIKE_FACTOR:g}x the starting loss "
                           f"{start:.3f}", in_step=True)
        if self.smooth_loss > DIVERGE_FACTOR * start:
            self._diverged(f"smoothed loss {self.smooth_loss:.3f} is over {DIVERGE_FACTOR:g}x "
                           f"the starting loss {start:.3f}", in_step=True)

    def _check_evaluation(self, val: float | None) -> None:
        """At an evaluation: the validation loss (None: not scored) is not
        finite or over DIVERGE_FACTOR times the first step's loss, or a weight
        is not finite."""
        start = self.start_loss
        if val is not None and not math.isfinite(val):
            self._diverged(f"validation loss is {val}", in_step=False)
        if val is not None and start is not None and val > DIVERGE_FACTOR * start:
            self._diverged(f"validation loss {val:.3f} is over {DIVERGE_FACTOR:g}x the starting "
                           f"loss {start:.3f}", in_step=False)
        if not all(np.isfinite(p).all() for p in self.model.params.values()):
            self._diverged("a weight is nan", in_step=False)

    def _diverged(self, why: str, in_step: bool):
        lr = lr_at(self.cfg, self.iteration if in_step else max(self.iteration - 1, 0), self.plan)
        if math.isfinite(self.best_val):
            kept = f"kept {os.path.join(self.dir, BEST)} (val {self.best_val:.4f})"
        elif self.history["iter"]:
            kept = f"kept {os.path.join(self.dir, LATEST)} (iteration {int(self.history['iter'][-1])})"
        else:
            kept = "no checkpoint was saved yet"
        raise CharRNNError(f"training diverged at iteration {self.iteration + in_step}: {why}; "
                           f"lower --lr (now {lr:g}) and try again; {kept}")

    def evals_without_improvement(self) -> int:
        """Evaluations since the best validation loss (derived from history,
        so a resumed run counts the same)."""
        return evals_since_best(self.history["val_loss"])

    def validate(self) -> float:
        if len(self.val_ids) < 2:
            return float("nan")
        # A second Ctrl-C while the final checkpoint is prepared skips the
        # evaluation (recorded as nan), never the save.
        stop = self._stop
        give_up = (lambda: stop.count >= 2) if stop is not None else None
        if self.val_plan["method"] == "sampled":
            return sampled_validation_loss(self.model, self.val_ids, self.val_plan,
                                           self.eval_shape[1], give_up)
        return validation_loss(self.model, self.val_ids, *self.eval_shape, give_up)

    def run(self, progress=None, stop: StopFlag | None = None) -> TrainResult:
        """Train until max_iters/max_time or a signal; checkpoint at every eval.

        progress(event, info), when given, hears of each step ("step":
        iteration, loss in nats/char), each evaluation ("eval": iteration,
        train_loss, val_loss, best_val, chars_per_s) and, with sample_every,
        each sample ("sample": iteration, text).
        ``stop``: a StopFlag the caller already entered (so signals stay
        deferred after run returns); by default run installs its own."""
        cfg = self.cfg
        os.makedirs(self.dir, exist_ok=True)
        progress = progress or None
        start = time.perf_counter()
        t0 = start - self.spent       # the session's clock counts the time spent choosing sizes
        wall0 = self.wall_time
        losses, val = [], float("nan")
        last_rate_t, last_rate_chars, rate = start, self.chars_seen, 0.0
        stopped_early = False
        timing = self._plan_at_start(progress)
        with self._session(stop) as stop:
            while True:
                elapsed = time.perf_counter() - t0
                self.wall_time = wall0 + elapsed
                if cfg.max_iters is not None and self.iteration >= cfg.max_iters:
                    break
                if cfg.max_time is not None and elapsed >= cfg.max_time:
                    break
                if self.plan.finished(self.iteration, cfg.max_iters):
                    break
                if stop.signum is not None:
                    break
                losses.append(self.train_step())
                if timing is not None:
                    timing = self._time_for_plan(timing, t0, progress)
                if progress:
                    progress("step", {"iteration": self.iteration, "loss": losses[-1]})
                    if cfg.sample_every and self.iteration % cfg.sample_every == 0:
                        progress("sample", {"iteration": self.iteration,
                                            "text": self.sample_text()})
                if cfg.eval_every and self.iteration % cfg.eval_every == 0:
                    now = time.perf_counter()
                    rate = (self.chars_seen - last_rate_chars) / max(now - last_rate_t, 1e-9)
                    val = self._checkpoint(losses, progress, rate)
                    if timing is not None and "t" in timing:     # not a step: timed apart
                        timing["evals"].append(time.perf_counter() - now)
                    losses = []
                    last_rate_t, last_rate_chars = time.perf_counter(), self.chars_seen
                    if cfg.patience and self.evals_without_improvement() >= cfg.patience:
                        stopped_early = True
                        break
            self.wall_time = wall0 + time.perf_counter() - t0
            if losses or not self.history["iter"]:
                now = time.perf_counter()
                rate = (self.chars_seen - last_rate_chars) / max(now - last_rate_t, 1e-9)
                val = self._checkpoint(losses, progress, rate)
            elif not os.path.exists(os.path.join(self.dir, LATEST)):
                self.save(LATEST)          # resumed into a new folder and stopped at once
        if not math.isfinite(val) and self.history["val_loss"]:
            val = self.history["val_loss"][-1]
        train_loss = self.history["train_loss"][-1] if self.history["train_loss"] else float("nan")
        best_path = os.path.join(self.dir, BEST) if math.isfinite(self.best_val) else None
        return TrainResult(self.iteration, train_loss, val, self.best_val, stop.signum,
                           os.path.join(self.dir, LATEST), best_path, stopped_early)

    # --------------------------------------------------------- the plan
    def _plan_at_start(self, progress):
        """Before the first step of a session: a budget plan still waiting for
        its end is timed in this session (returns the timing state) when it
        has --max-time, else ends at --max-iters (or never, holding --lr)."""
        p = self.plan
        if p.kind != "budget" or p.total is not None:
            return None
        if self.cfg.max_time is not None:
            return {"steps": -1}
        if self.cfg.max_iters is not None:
            self._fix_plan(schedule.plan_for_iters(self.cfg, self.iteration), progress)
        return None

    def _time_for_plan(self, timing, t0, progress):
        """After a step while a --max-time plan is timed: the first step of
        the session is not timed (caches, allocation), nor are the
        evaluations between the timed steps (their cost is counted apart);
        once measuring_done, the plan is fixed (schedule.plan_from_speed)."""
        now = time.perf_counter()
        if timing["steps"] < 0:
            return {"steps": 0, "t": now, "it": self.iteration, "evals": []}
        steps = self.iteration - timing["it"]
        evals = timing["evals"]
        stepping = now - timing["t"] - sum(evals)
        if not schedule.measuring_done(stepping, steps, self.cfg.max_time):
            return timing
        vp = self.val_plan
        eval_chars = vp["chars_scored"] + vp.get("windows", 0) * vp.get("warmup_chars", 0)
        if not len(self.val_ids) or not self.cfg.eval_every:
            eval_chars = 0
        eval_seconds = sum(evals) / len(evals) if evals else None
        self._fix_plan(schedule.plan_from_speed(self.cfg, self.iteration, now - t0,
                                                stepping / steps, eval_chars, eval_seconds),
                       progress)
        return None

    def _fix_plan(self, plan: Plan, progress):
        self.plan = plan
        if progress:
            progress("plan", {"iteration": self.iteration, "total": plan.total,
                              "basis": plan.basis, "floor": plan.floor})

    @contextlib.contextmanager
    def _session(self, stop):
        """Around run(): signals deferred (by stop, else by a StopFlag of its own)."""
        try:
            with (contextlib.nullcontext(stop) if stop is not None else StopFlag()) as flag:
                self._stop = flag
                yield flag
        finally:
            self._stop = None

    def _checkpoint(self, losses, progress, rate) -> float:
        """Evaluate, record history, save latest (and best if it improved)."""
        val = self.validate()
        skipped = self._stop is not None and self._stop.count >= 2    # see validate()
        self._check_evaluation(val if len(self.val_ids) >= 2 and not skipped else None)
        train_loss = float(np.mean(losses)) if losses else float("nan")
        h = self.history
        h["iter"].append(self.iteration)
        h["chars"].append(self.chars_seen)
        h["wall_time"].append(self.wall_time)
        h["train_loss"].append(train_loss)
        h["val_loss"].append(val)
        h["lr"].append(lr_at(self.cfg, max(self.iteration - 1, 0), self.plan))
        figures = {**self._span.figures(), **health.measure(self.model, self._health_text())}
        for k in ckpt.health_keys(self.mcfg):
            h[k].append(float(figures.get(k, math.nan)))
        self._span = health.Span()
        improved = math.isfinite(val) and val < self.best_val
        if improved:
            self.best_val = val
        self.save(LATEST)
        if improved:
            self.save(BEST)
        if progress:
            progress("eval", {"iteration": self.iteration, "train_loss": train_loss,
                              "val_loss": val, "best_val": self.best_val, "chars_per_s": rate})
        return val

    def _health_text(self) -> np.ndarray:
        """Where the evaluation-time health figures are measured: the start of
        the validation text, else of the training text."""
        return self.val_ids if len(self.val_ids) >= 2 else self.streams.x[0]

    def sample_text(self) -> str:
        """sample_len characters from the model as it is now (seeded by the
        run's seed and the iteration, so a resumed run writes the same)."""
        from charrnn.generate.sample import generate
        rng = np.random.default_rng([self.cfg.seed, self.iteration])
        return generate(self.model, self.corpus.vocab, self.cfg.sample_len, rng=rng)


DIVERGE_FACTOR = 3.0       # smoothed training loss or validation loss vs the first step's
SPIKE_FACTOR = 10.0        # a single step's training loss vs the first step's
SMOOTH_CHARS = 50_000      # characters the smoothed training loss averages over


def evals_since_best(val_losses) -> int:
    """How many evaluations came after the first lowest finite validation
    loss (all of them when none is finite)."""
    best, since = math.inf, 0
    for v in val_losses:
        if math.isfinite(v) and v < best:
            best, since = v, 0
        else:
            since += 1
    return since
