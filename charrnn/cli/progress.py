"""What `charrnn train` shows while it runs: the progress bar and status
lines on stderr, samples on stdout.  The command line's half of the
library's progress callback (charrnn.train(progress=...)); the only place
besides cli.py that prints."""
from __future__ import annotations

import signal
import sys


def _show(v) -> str:
    return "none" if v is None else str(v)


def plan_words(plan: dict) -> str:
    """'lr decays linearly to 5% of --lr at iteration 8123 (6.1 ms a step, ...)'."""
    return (f"the learning rate decays linearly to {plan['floor']:.0%} of --lr at iteration "
            f"{plan['total']} ({plan['basis']})")


def text_words(info: dict) -> str:
    """'read 3 files, 12,345 characters (skipped 2, see above)'."""
    n, k = info["files"], info.get("skipped", 0)
    skipped = f" (skipped {k:,}, see above)" if k else ""
    return f"read {n:,} file{'s' if n != 1 else ''}, {info['chars']:,} characters{skipped}"


PLAIN_EVERY = 30.0     # seconds between plain progress lines (also one at each evaluation)


def _clock(seconds: float) -> str:
    """'1:02:03' or '2:03'."""
    s = int(round(max(seconds, 0)))
    h, m = divmod(s, 3600)
    return f"{h}:{m // 60:02d}:{m % 60:02d}" if h else f"{m // 60}:{m % 60:02d}"


# tqdm's bar without its own time-left estimate: ours, capped by --max-time, is in the postfix
BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}{postfix}]"


class TrainPrinter:
    """progress(event, info) for charrnn.train, printing as the shell expects.

    On a terminal: a tqdm bar whose total is the plan's step count once the
    plan knows it (--max-iters at once, --max-time after the speed is
    timed), so it shows a percentage and the time left (never more than
    --max-time leaves), with the latest training and validation loss.  Elsewhere (stderr to a file or a pipe): no
    carriage returns, one plain line at each evaluation and at most every
    PLAIN_EVERY seconds between them."""

    def __init__(self, quiet: bool = False, sample_out=None, terminal: bool | None = None,
                 clock=None):
        import time
        self.quiet = quiet
        self.sample_out = sample_out if sample_out is not None else sys.stdout
        self.terminal = is_terminal(sys.stderr) if terminal is None else terminal
        self.clock = clock or time.monotonic
        self.bar = None
        self.plain = False
        self.total = None
        self.max_time = None
        self.loss = self.val = self.rate = None
        self.iteration = self.first = 0
        self.started = self.last_line = 0.0
        self.text = None

    def __call__(self, event: str, info: dict) -> None:
        if event == "start":
            self._start(info)
        elif event == "step":
            self.iteration, self.loss = info["iteration"], info.get("loss", self.loss)
            if self.bar is not None:
                self.bar.set_postfix_str(self._postfix(), refresh=False)
                self.bar.update(1)
            elif self.plain and self.clock() - self.last_line >= PLAIN_EVERY:
                self._line()
        elif event == "eval":
            self.iteration, self.val = info["iteration"], info["val_loss"]
            self.loss, self.rate = info["train_loss"], info["chars_per_s"]
            if self.bar is not None:
                self.bar.set_postfix_str(self._postfix(), refresh=True)
            elif self.plain:
                self._line()
        elif event == "sample":
            self._sample(info)
        elif event == "skip":
            # a warning about the text: shown even with --quiet
            print(f"charrnn: skipped {info['path']} ({info['why']})", file=sys.stderr)
        elif event == "text":
            self.text = info        # said when training starts (not before an error)
        elif event == "plan":
            self._set_total(info.get("total"))
            if not self.quiet and not info.get("replans"):   # a re-plan moves the total only
                self._status(f"plan: {plan_words(info)}")

    def _losses(self) -> str:
        parts = []
        if self.loss is not None:
            parts.append(f"loss {self.loss:.3f}")
        if self.val is not None:
            parts.append(f"val {self.val:.3f}")
        if self.rate:
            parts.append(f"{self.rate / 1000:.0f}k chars/s")
        return " ".join(parts)

    def _line(self) -> None:
        """One plain progress line: iteration (of total, percentage), losses,
        elapsed time and, with a total, the time left at this session's pace
        (never more than --max-time leaves: early steps, slowed by the start,
        would overstate it)."""
        now = self.clock()
        self.last_line = now
        spent = now - self.started
        where = f"iteration {self.iteration}"
        if self.total:
            where += f"/{self.total} ({min(self.iteration / self.total, 1):.0%})"
        left = self._left(spent)
        losses = self._losses()
        print(f"{where}{', ' + losses if losses else ''}, {_clock(spent)} elapsed"
              f"{', ' + left if left else ''}", file=sys.stderr, flush=True)

    def _left(self, spent: float) -> str:
        """'1:23 left': the time left at this session's pace, ``spent``
        seconds in, never more than --max-time leaves (early steps, slowed
        by the start, would overstate it); '' before a total or a step."""
        done = self.iteration - self.first
        if not self.total or done <= 0:
            return ""
        pace = spent / done * max(self.total - self.iteration, 0)
        if self.max_time is not None:       # the clock ends the run first
            pace = min(pace, max(self.max_time - spent, 0.0))
        return f"{_clock(pace)} left"

    def _postfix(self) -> str:
        """The bar's text after its counts: the losses and, with a total,
        the time left as _left says (tqdm's own estimate is not capped)."""
        left = self._left(self.clock() - self.started) if self.total else ""
        return ", ".join(p for p in (self._losses(), left) if p)

    def _status(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def _set_total(self, total) -> None:
        self.total = total
        if self.bar is not None and total is not None:
            self.bar.total = total
            self.bar.bar_format = BAR_FORMAT
            self.bar.refresh()

    def _start(self, info):
        plan = info.get("plan") or {}
        self.total = plan.get("total") or info.get("max_iters")
        self.max_time = info.get("max_time")
        self.iteration = self.first = info["iteration"]
        self.started = self.last_line = self.clock()
        if self.quiet:
            return
        t = self.text
        if t is not None and (t["files"] != 1 or t.get("folders") or t.get("skipped")):
            print(text_words(t), file=sys.stderr)       # one file given: nothing to add
        if info.get("choices"):
            print(f"chosen: {info['choices']['reason']}", file=sys.stderr)
        if info.get("resumed_from") is None and plan.get("kind") == "budget" \
                and plan.get("total") is not None:
            print(f"plan: {plan_words(plan)}", file=sys.stderr)
        if info.get("resumed_from") is not None:
            changed = "".join(f", {k} {_show(a)} -> {_show(b)}"
                              for k, (a, b) in info.get("changed", {}).items())
            print(f"resuming {info['resumed_from']} at iteration {info['iteration']}{changed}",
                  file=sys.stderr)
        if info.get("max_iters") is None and info.get("max_time") is None:
            print("training until Ctrl-C (set --max-time or --max-iters to stop on its own)",
                  file=sys.stderr)
        if not self.terminal:
            self.plain = True
            return
        from tqdm import tqdm
        self.bar = tqdm(total=self.total, initial=info["iteration"], unit="it",
                        file=sys.stderr, dynamic_ncols=True, mininterval=0.5, leave=True,
                        bar_format=BAR_FORMAT if self.total else None)

    def _sample(self, info):
        out = self.sample_out
        if out is None:
            return
        msg = f"--- sample at iteration {info['iteration']} ---\n{info['text']}"
        try:
            if self.bar is not None:
                self.bar.write(msg, file=out)
            else:
                out.write(msg + "\n")
            out.flush()
        except BrokenPipeError:
            # The reader of the samples went away: keep training.
            self.sample_out = None
            print("charrnn: stdout was closed; training goes on without samples",
                  file=sys.stderr)

    def close(self) -> None:
        """Close the bar, so that what follows starts on a fresh line."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def finish(self, result) -> int:
        """The closing lines; returns the exit code (0, or 128 + signal)."""
        if result.interrupted_by is not None:
            # One line, even with --quiet: where the model is and how to go on.
            print(f"charrnn: interrupted by {signal_name(result.interrupted_by)} at iteration "
                  f"{result.iterations}; saved {result.latest_path} (continue with --resume "
                  f"{result.latest_path})", file=sys.stderr, flush=True)
            return 128 + int(result.interrupted_by)
        if not self.quiet:
            best = f"; best {result.best_path} ({result.best_val:.4f})" if result.best_path else ""
            print(f"saved {result.latest_path} after {result.iterations} iterations "
                  f"(val {result.val_loss:.4f} nats/char){best}", file=sys.stderr)
            if result.stopped_early:
                print(f"stopped early: {result.stop_reason}", file=sys.stderr)
        return 0


def is_terminal(stream) -> bool:
    """stream.isatty(), False for a missing or closed stream."""
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def signal_name(signum) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class CharBar:
    """progress(n, total) of `eval`: a bar of characters scored on stderr, only
    when stderr is a terminal."""

    def __init__(self):
        self.bar = None
        self.text = None

    def __call__(self, n: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit="char", unit_scale=True, file=sys.stderr,
                            disable=None, leave=False, mininterval=0.5)
        self.bar.update(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
