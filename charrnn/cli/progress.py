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


class TrainPrinter:
    """progress(event, info) for charrnn.train, printing as the shell expects."""

    def __init__(self, quiet: bool = False, sample_out=None):
        self.quiet = quiet
        self.sample_out = sample_out if sample_out is not None else sys.stdout
        self.bar = None
        self.text = None

    def __call__(self, event: str, info: dict) -> None:
        if event == "start":
            self._start(info)
        elif event == "step":
            if self.bar is not None:
                self.bar.update(1)
        elif event == "eval":
            if self.bar is not None:
                self.bar.set_postfix_str(f"loss {info['train_loss']:.3f} val {info['val_loss']:.3f} "
                                         f"{info['chars_per_s'] / 1000:.0f}k chars/s", refresh=True)
        elif event == "sample":
            self._sample(info)
        elif event == "skip":
            # a warning about the text: shown even with --quiet
            print(f"charrnn: skipped {info['path']} ({info['why']})", file=sys.stderr)
        elif event == "text":
            self.text = info        # said when training starts (not before an error)
        elif event == "plan" and not self.quiet:
            line = f"plan: {plan_words(info)}"
            if self.bar is not None:
                self.bar.write(line, file=sys.stderr)
            else:
                print(line, file=sys.stderr)

    def _start(self, info):
        if self.quiet:
            return
        t = self.text
        if t is not None and (t["files"] != 1 or t.get("folders") or t.get("skipped")):
            print(text_words(t), file=sys.stderr)       # one file given: nothing to add
        if info.get("choices"):
            print(f"chosen: {info['choices']['reason']}", file=sys.stderr)
        plan = info.get("plan") or {}
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
        from tqdm import tqdm
        self.bar = tqdm(total=info.get("max_iters"), initial=info["iteration"], unit="it",
                        file=sys.stderr, dynamic_ncols=True, mininterval=0.5, leave=True)

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

    def finish(self, result, patience: int | None = None) -> int:
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
                print(f"stopped early: no better validation loss in the last {patience} "
                      f"evaluations (--patience)", file=sys.stderr)
        return 0


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
