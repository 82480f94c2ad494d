"""The training loop: streams of chunks, steps, evaluation, checkpoint cadence."""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass

import numpy as np

from charrnn.store import checkpoint as ckpt
from charrnn.text import data
from charrnn.runs import guard, health, snapshot, validation
from charrnn.nn import optim
from charrnn.errors import CharRNNError, DataError
from charrnn.runs.config import STALL_PASSES, TrainConfig
from charrnn.runs.schedule import Plan, lr_at
from charrnn.runs.signals import StopFlag, deferred
from charrnn.runs.spec import RunSpec
from charrnn.text.corpus import Corpus, text_fingerprint
from charrnn.nn.model import Model, init_params, zero_state

LATEST, BEST = ckpt.LATEST, ckpt.BEST


@dataclass
class TrainResult:
    iterations: int
    train_loss: float
    val_loss: float
    best_val: float
    interrupted_by: int | None
    latest_path: str
    best_path: str | None
    stopped_early: bool = False      # --patience or --stall-stop ended it
    stop_reason: str = ""            # ... why, in words


class Trainer:
    """The loop of a run: its model, optimizer, data streams and resumable
    loop state; the step; and the evaluate-and-save cadence.

    spec: the run, resolved (runs/spec.py; a TrainConfig alone is a run of
    exactly those settings, RunSpec.plain).  resume_from: a checkpoint to
    continue exactly (runs/resume.py has checked that it fits the spec and
    the text; runs/snapshot.py restores it); init_weights: weights to start
    from (--init-from)."""

    def __init__(self, spec: RunSpec | TrainConfig, corpus: Corpus, checkpoint_dir: str, *,
                 resume_from: ckpt.Checkpoint | None = None, init_weights: dict | None = None):
        self.spec = spec if isinstance(spec, RunSpec) else RunSpec.plain(spec)
        self.cfg = cfg = self.spec.config
        self.corpus = corpus
        self.dir = checkpoint_dir
        train_ids, self.val_ids = data.split(corpus.ids, cfg.val_frac)
        if cfg.val_frac > 0 and len(self.val_ids) < 2:
            raise DataError(f"the validation split is empty: {len(corpus.ids)} characters x "
                            f"--val-frac {cfg.val_frac}; use more text or --val-frac 0")
        self.streams = data.Streams(train_ids, cfg.batch_size, cfg.seq_len, cfg.shift_epochs)
        self.val_plan = validation.val_plan(len(self.val_ids), *self.spec.eval_shape)
        self.mcfg = cfg.model_config(len(corpus.vocab))
        self.rng = np.random.default_rng(cfg.seed)
        self.model = Model(self.mcfg, init_params(self.mcfg, self.rng))
        self.opt = optim.make(cfg.optimizer, self.model.params, cfg.adam_beta2)
        if cfg.patience and not len(self.val_ids):
            raise CharRNNError("--patience needs validation text to watch; set --val-frac above 0")
        self.guard = guard.Guard()       # divergence yardsticks
        self.hidden = zero_state(self.mcfg, cfg.batch_size)
        self.iteration = self.chunk = self.epoch = self.chars_seen = 0
        self.wall_time = 0.0
        self.best_val = math.inf
        self.history = {k: [] for k in snapshot.history_keys(self.mcfg)}
        self._span = health.Span()       # run-health figures since the last evaluation
        # where the evaluation-time health figures are measured
        self._health_ids = self.val_ids if len(self.val_ids) >= 2 else self.streams.x[0]
        self.plan = self.spec.plan       # the learning-rate plan (a PlanTimer fixes, re-plans it)
        self._lr = None                  # the rate of the last step taken
        self._fingerprint = None
        self._stop = None
        if init_weights is not None:
            self.load_weights(init_weights)
        # the weight average (--weight-average): evaluated, saved and sampled
        self.avg = ({k: v.copy() for k, v in self.model.params.items()}
                    if cfg.weight_average > 0 else None)
        if resume_from is not None:
            snapshot.restore(self, resume_from)

    def load_weights(self, params: dict) -> None:
        """Replace the weights (same names and shapes; cast to this run's dtype)."""
        mine = self.model.params
        if set(params) != set(mine) or any(params[k].shape != mine[k].shape for k in mine):
            raise CharRNNError("the checkpoint's weights do not fit this model")
        self.model.params = {k: np.array(params[k], dtype=mine[k].dtype, copy=True) for k in mine}

    def to_checkpoint(self) -> ckpt.Checkpoint:
        if self._fingerprint is None:
            self._fingerprint = text_fingerprint(self.corpus)
        return snapshot.write(self, self._fingerprint)

    def save(self, name: str) -> str:
        """Write the current state to <dir>/<name> atomically; never NaN weights."""
        guard.check_finite(self.model.params, self.opt.state, self.iteration)
        path = os.path.join(self.dir, name)
        ckpt.save(path, self.to_checkpoint())
        return path

    def train_step(self) -> float:
        """One truncated-BPTT step on the next chunk of every stream; nats/char."""
        cfg = self.cfg
        if self.chunk == 0:
            self.hidden = zero_state(self.mcfg, cfg.batch_size)
        x, y = self.streams.chunk(self.chunk, self.epoch)
        rng = self.rng if self.mcfg.draws_masks else None
        lr = self._lr = lr_at(cfg, self.iteration, self.plan)
        loss, grads, hidden = self.model.loss_and_grads(x, y, self.hidden, rng)
        self.guard.add(loss, x.size)
        norm, clipped = optim.clip_report_(grads, cfg.clip_mode, cfg.clip)
        why = self.guard.check_step(loss, norm)
        if why:
            self._diverged(why, in_step=True)
        sizes = {}
        self.opt.update(self.model.params, grads, lr, sizes)
        if self.avg is not None:
            optim.average_(self.avg, self.model.params, optim.average_decay(cfg.weight_average,
                                                                            self.iteration))
        self._span.add(norm, clipped, sizes)
        self.hidden = hidden
        self.iteration += 1
        self.chars_seen += x.size
        self.chunk += 1
        if self.chunk >= self.streams.chunks_per_epoch:
            self.chunk = 0
            self.epoch += 1
        return loss

    def _diverged(self, why: str, in_step: bool):
        """Stop (runs/guard.py) before a bad update or save."""
        lr = lr_at(self.cfg, self.iteration if in_step else max(self.iteration - 1, 0), self.plan)
        saved = int(self.history["iter"][-1]) if self.history["iter"] else None
        raise guard.diverged(why, self.iteration + in_step, lr, self.dir, self.best_val, saved)

    def validate(self) -> float:
        """The validation loss now (runs/validation.py), nats/char; nan without
        validation text.  A second Ctrl-C while the final checkpoint is
        prepared skips the evaluation (nan), never the save."""
        stop = self._stop
        give_up = (lambda: stop.count >= 2) if stop is not None else None
        return validation.score(self.evaluated(), self.val_ids, self.val_plan,
                                self.spec.eval_shape, give_up)

    def evaluated(self) -> Model:
        """The model that is evaluated, saved as the checkpoint's weights and
        sampled: the weight average with --weight-average, else the model."""
        return self.model if self.avg is None else Model(self.mcfg, self.avg)

    def run(self, progress=None, stop: StopFlag | None = None, timer=None) -> TrainResult:
        """Train until max_iters/max_time, the plan's end, --patience or a
        signal; evaluate and checkpoint when the plan says (every eval_every
        steps, fewer early in a thinned plan: Plan.evaluates) and at the end.

        progress(event, info), when given, hears of each step ("step":
        iteration, loss in nats/char), each evaluation ("eval": iteration,
        train_loss, val_loss, best_val, chars_per_s), each plan fixed or
        re-planned ("plan": iteration, total, basis, floor, replans) and,
        with sample_every, each sample ("sample": iteration, text).
        ``stop``: a StopFlag the caller already entered (signals stay
        deferred after run returns); by default run defers them itself.
        ``timer``: a runs/budget.PlanTimer that fixes a --max-time plan and
        re-plans it as the clock goes (None: the plan stays as it is)."""
        cfg = self.cfg
        os.makedirs(self.dir, exist_ok=True)
        t0 = time.perf_counter() - self.spec.spent   # the time spent choosing sizes counts
        wall0 = self.wall_time
        losses, val, stop_reason = [], float("nan"), ""
        speed = _Speed(self.chars_seen)
        self._lr = lr_at(cfg, max(self.iteration - 1, 0), self.plan)
        eval_chars = validation.chars_read(self.val_plan) if len(self.val_ids) and cfg.eval_every else 0
        if timer is not None:
            self._adopt(timer.begin(self.plan, self.iteration, wall0, t0, eval_chars), progress)
        with self._session(stop) as stop:
            while not (self._time_is_up(wall0, time.perf_counter() - t0) or stop.signum is not None):
                losses.append(self.train_step())
                evaluating = self.plan.evaluates(self.iteration, cfg.eval_every)
                if timer is not None:   # before an evaluation: its checkpoint has the new plan
                    self._adopt(timer.after_step(self.plan, self.iteration, time.perf_counter(),
                                                 evaluating), progress)
                if progress:
                    progress("step", {"iteration": self.iteration, "loss": losses[-1]})
                    if cfg.sample_every and self.iteration % cfg.sample_every == 0:
                        progress("sample", {"iteration": self.iteration, "text": self.sample_text()})
                if evaluating:
                    began = time.perf_counter()
                    val = self._checkpoint(losses, progress, speed.since_last(self.chars_seen))
                    if timer is not None:                   # not a step: timed apart
                        timer.after_eval(time.perf_counter() - began)
                    losses = []
                    speed.restart(self.chars_seen)
                    stop_reason = self._stalled(time.perf_counter() - t0)
                    if stop_reason:
                        break
            self.wall_time = wall0 + time.perf_counter() - t0
            if losses or not self.history["iter"]:
                val = self._checkpoint(losses, progress, speed.since_last(self.chars_seen))
            elif not os.path.exists(os.path.join(self.dir, LATEST)):
                self.save(LATEST)          # resumed into a new folder and stopped at once
        if not math.isfinite(val) and self.history["val_loss"]:
            val = self.history["val_loss"][-1]
        train_loss = self.history["train_loss"][-1] if self.history["train_loss"] else float("nan")
        best_path = os.path.join(self.dir, BEST) if math.isfinite(self.best_val) else None
        return TrainResult(self.iteration, train_loss, val, self.best_val, stop.signum,
                           os.path.join(self.dir, LATEST), best_path, bool(stop_reason),
                           stop_reason)

    def _stalled(self, elapsed: float) -> str:
        """Why the run stops before its limit, ``elapsed`` seconds into the
        session, or '': --patience evaluations without a better validation
        loss, or (--stall-stop, with --max-time) none for that share of it or
        for STALL_PASSES passes over the text."""
        cfg, h = self.cfg, self.history
        if cfg.patience and guard.evals_since_best(h["val_loss"]) >= cfg.patience:
            return f"no better validation loss in the last {cfg.patience} evaluations (--patience)"
        best = guard.best_at(h["val_loss"], h["wall_time"], h["chars"])
        if not (cfg.stall_stop and cfg.max_time) or best is None:
            return ""
        now = self.wall_time
        epoch = self.streams.chunks_per_epoch * cfg.batch_size * cfg.seq_len   # chars a pass reads
        passes = (self.chars_seen - best[2]) / epoch
        if now - best[1] >= cfg.stall_stop * cfg.max_time:
            why = f"for {_clock(now - best[1])} ({cfg.stall_stop:.0%} of --max-time, --stall-stop)"
        elif passes >= STALL_PASSES:
            why = f"in {passes:.3g} passes over the text (it is learning the text by heart)"
        else:
            return ""
        return (f"no better validation loss {why} since its best, {best[0]:.4f} at "
                f"{_clock(best[1])}; best.npz keeps it; "
                f"{_clock(max(cfg.max_time - elapsed, 0.0))} of the budget left unused")

    def _time_is_up(self, wall0: float, elapsed: float) -> bool:
        """Whether the run must stop before another step, ``elapsed`` seconds
        into a session that began ``wall0`` seconds into the run: max_iters
        reached, max_time spent, or the plan's steps or time used up."""
        cfg, plan, it = self.cfg, self.plan, self.iteration
        self.wall_time = wall0 + elapsed
        return ((cfg.max_iters is not None and it >= cfg.max_iters)
                or (cfg.max_time is not None and elapsed >= cfg.max_time)
                or plan.finished(it, cfg.max_iters)
                or (plan.deadline is not None and self.wall_time >= plan.deadline
                    and it < plan.total))

    def _adopt(self, plan: Plan | None, progress):
        """Take the plan a PlanTimer fixed or re-planned (None: no change)."""
        if plan is not None:
            self.plan = plan
            if progress:
                progress("plan", {"iteration": self.iteration, "total": plan.total,
                                  "basis": plan.basis, "floor": plan.floor,
                                  "replans": plan.replans})

    @contextlib.contextmanager
    def _session(self, stop):
        """Around run(): signals deferred (runs/signals.py), the flag kept for validate()."""
        with deferred(stop) as self._stop:
            try:
                yield self._stop
            finally:
                self._stop = None

    def _checkpoint(self, losses, progress, rate) -> float:
        """Evaluate, record history, save latest (and best if it improved)."""
        val = self.validate()
        skipped = self._stop is not None and self._stop.count >= 2    # see validate()
        why = self.guard.check_evaluation(val if len(self.val_ids) >= 2 and not skipped else None,
                                          self.model.params)
        if why:
            self._diverged(why, in_step=False)
        train_loss = float(np.mean(losses)) if losses else float("nan")
        figures = {**self._span.figures(), **health.measure(self.model, self._health_ids)}
        snapshot.add_row(self.history, self.mcfg, iter=self.iteration, chars=self.chars_seen,
                         wall_time=self.wall_time, train_loss=train_loss, val_loss=val,
                         lr=self._lr, **figures)
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

    def sample_text(self) -> str:
        """sample_len characters from the model as it is now (seeded by the
        run's seed and the iteration, so a resumed run writes the same)."""
        from charrnn.generate.sample import generate
        rng = np.random.default_rng([self.cfg.seed, self.iteration])
        return generate(self.evaluated(), self.corpus.vocab, self.cfg.sample_len, rng=rng)


class _Speed:
    """Characters per second of training since the last restart (clock:
    time.perf_counter)."""

    def __init__(self, chars: int):
        self.restart(chars)

    def restart(self, chars: int) -> None:
        self._t, self._chars = time.perf_counter(), chars

    def since_last(self, chars: int) -> float:
        return (chars - self._chars) / max(time.perf_counter() - self._t, 1e-9)


def _clock(seconds: float) -> str:
    """'1m05s', '42s', '1h02m'."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
