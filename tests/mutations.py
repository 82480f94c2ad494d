"""Plant one-line bugs, one at a time, and show which test catches each.

    python tests/mutations.py            # every mutation: a table, exit 1 if one survives
    python tests/mutations.py --check    # only: does every pattern still match once?
    python tests/mutations.py --only dropout-unscaled --only clip-mode-ignored

Each mutation is named by what it breaks.  It is applied to a copy of the
checkout (the working tree is never touched), the tests that should notice
run against that copy (PYTHONPATH points at it, so subprocesses and the
console script see the planted bug too), and the first failing test is
reported.  A mutation whose pattern no longer matches exactly once is
reported as "pattern moved": when code moves, update ``old`` here
(tests/project/test_mutation_patterns.py fails until you do).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str          # what it breaks, as a short id
    breaks: str        # what it breaks, in words
    file: str          # relative to the checkout
    old: str           # must occur exactly once in file
    new: str
    tests: tuple       # pytest node ids or files that should notice


T = "tests/"
MUTATIONS = [
    # --- the five bugs of issue 17 -------------------------------------------------
    Mutation("epoch-wrap-keeps-state",
             "hidden state not reset to zero when the streams wrap at an epoch boundary",
             "charrnn/runs/trainer.py",
             "if self.chunk == 0:\n",
             "if self.chunk == 0 and self.iteration == 0:\n",
             (T + "training/test_trainer_settings.py", T + "training/test_train.py", T + "resume/test_resume.py")),
    Mutation("dropout-unscaled",
             "dropout mask applied without the 1/keep scaling",
             "charrnn/nn/model.py",
             "scale = np.dtype(self.dtype).type(1.0 / (1.0 - self.p))",
             "scale = np.dtype(self.dtype).type(1.0)",
             (T + "training/test_trainer_settings.py", T + "model/test_model.py", T + "training/test_model_options.py")),
    Mutation("clip-mode-ignored",
             "trainer ignores --clip-mode and always clips each entry by value",
             "charrnn/runs/trainer.py",
             "optim.clip_report_(grads, cfg.clip_mode, cfg.clip)",
             'optim.clip_report_(grads, "value", cfg.clip)',
             (T + "training/test_trainer_settings.py", T + "training/test_train.py", T + "training/test_training_control.py")),
    Mutation("dropout-never-applied",
             "trainer never applies dropout (no masks drawn)",
             "charrnn/runs/trainer.py",
             "rng = self.rng if self.mcfg.draws_masks else None",
             "rng = None",
             (T + "training/test_trainer_settings.py", T + "training/test_train.py", T + "training/test_model_options.py")),
    Mutation("resume-forgets-best",
             "--resume forgets the best validation loss so far",
             "charrnn/runs/snapshot.py",
             'best_val=st["best_val"] if st["best_val"] >= 0 else math.inf,',
             "best_val=math.inf,",
             (T + "training/test_trainer_settings.py", T + "resume/test_resume.py")),
    # --- cells ---------------------------------------------------------------------
    Mutation("rnn-tanh-derivative",
             "vanilla rnn backward uses 1 - h instead of 1 - h^2",
             "charrnn/nn/cells.py",
             "da = np.multiply(hs, hs)                 # 1 - h^2",
             "da = np.array(hs)                        # 1 - h^2",
             (T + "model/test_cells.py", T + "model/test_model.py")),
    Mutation("lstm-forget-bias-on-input-gate",
             "lstm bias 1 initialised on the input gate instead of the forget gate",
             "charrnn/nn/cells.py",
             "b[H:2 * H] = 1.0",
             "b[:H] = 1.0",
             (T + "training/test_trainer_settings.py", T + "model/test_cells.py")),
    Mutation("gru-reset-gate-dropped",
             "gru candidate ignores the reset gate (n = tanh(xn + h@Wn))",
             "charrnn/nn/cells.py",
             "np.multiply(a[:, H:2 * H], gh[:, 2 * H:], out=n)",
             "np.copyto(n, gh[:, 2 * H:])",
             (T + "model/test_cells.py", T + "model/test_model.py", T + "sampling/test_scoring.py")),
    Mutation("lstm-cell-gradient-skips-forget",
             "lstm backward does not carry the cell gradient through the forget gate",
             "charrnn/nn/cells.py",
             "        dc *= f\n",
             "",
             (T + "model/test_cells.py", T + "model/test_model.py")),
    # --- optimizers ----------------------------------------------------------------
    Mutation("adam-no-bias-correction",
             "adam without bias correction",
             "charrnn/nn/optim.py",
             "step = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)",
             "step = lr",
             (T + "model/test_optim.py",)),
    Mutation("adagrad-forgets-history",
             "adagrad keeps only the latest squared gradient",
             "charrnn/nn/optim.py",
             "mem += g * g",
             "mem[...] = g * g",
             (T + "model/test_optim.py", T + "training/test_train.py")),
    Mutation("rmsprop-unsquared",
             "rmsprop averages g instead of g^2",
             "charrnn/nn/optim.py",
             "ms += (1 - a) * g * g",
             "ms += (1 - a) * np.abs(g)",
             (T + "model/test_optim.py",)),
    Mutation("norm-clip-threshold-doubled",
             "norm clipping lets the norm reach twice the limit",
             "charrnn/nn/optim.py",
             "elif norm > value:",
             "elif norm > 2 * value:",
             (T + "model/test_optim.py", T + "training/test_trainer_settings.py")),
    # --- learning-rate schedule ----------------------------------------------------
    Mutation("warmup-starts-at-zero",
             "warm-up's first step has learning rate 0",
             "charrnn/runs/schedule.py",
             "lr *= (iteration + 1) / cfg.warmup",
             "lr *= iteration / cfg.warmup",
             (T + "training/test_training_control.py",)),
    Mutation("decay-one-step-early",
             "step decay applied one period too early",
             "charrnn/runs/schedule.py",
             "lr *= cfg.lr_decay ** (iteration // cfg.lr_decay_every)",
             "lr *= cfg.lr_decay ** ((iteration + 1) // cfg.lr_decay_every)",
             (T + "training/test_training_control.py",)),
    Mutation("budget-floor-one-step-late",
             "the budget decay reaches its floor one step after the planned end",
             "charrnn/runs/schedule.py",
             "    last = plan.total - 1\n",
             "    last = plan.total\n",
             (T + "training/test_budget.py",)),
    Mutation("plan-ignores-evaluations",
             "the --max-time plan forgets the time evaluations take",
             "charrnn/runs/budget.py",
             "        return n * step_seconds + evals * eval_seconds\n",
             "        return n * step_seconds\n",
             (T + "training/test_budget.py",)),
    Mutation("replan-from-peak",
             "a --max-time re-plan starts its decay from the full rate, not where the rate stands",
             "charrnn/runs/budget.py",
             "hold, start = iteration, budget_factor(plan, iteration)",
             "hold, start = iteration, 1.0",
             (T + "training/test_budget.py",)),
    Mutation("replan-not-stored",
             "the checkpoint stores the plan the run started with, not the plan in force",
             "charrnn/runs/snapshot.py",
             '"plan": tr.plan.to_dict()',
             '"plan": tr.spec.plan.to_dict()',
             (T + "training/test_budget.py",)),
    Mutation("replan-never",
             "a --max-time plan is fixed once from the first steps and never re-planned",
             "charrnn/runs/budget.py",
             "        if not (evaluating or steps >= every):\n",
             "        if True:\n",
             (T + "training/test_budget.py",)),
    Mutation("pause-taken-for-speed",
             "a pause of the machine is taken for the speed of the steps to come",
             "charrnn/runs/budget.py",
             "np.where(d > OUTLIER * median, median, d).mean()",
             "d.mean()",
             (T + "training/test_budget.py",)),
    Mutation("resume-forgets-plan",
             "a resumed run starts the step schedule instead of its plan",
             "charrnn/runs/resume.py",
             "    return RunSpec(config=cfg, plan=plan, eval_shape=shape,",
             "    return RunSpec(config=cfg, eval_shape=shape,",
             (T + "training/test_budget.py",)),
    Mutation("size-rule-ignores-text",
             "sizes are chosen without the text-length cap",
             "charrnn/runs/sizing.py",
             "            if w * ease > PARAMS_PER_CHAR * train_chars:",
             "            if False:",
             (T + "training/test_budget.py",)),
    # --- sampling ------------------------------------------------------------------
    Mutation("temperature-multiplies",
             "sampling multiplies the logits by the temperature instead of dividing",
             "charrnn/generate/sample.py",
             "        w /= temperature\n    np.exp(w, out=w)\n    V = len(w)",
             "        w *= temperature\n    np.exp(w, out=w)\n    V = len(w)",
             (T + "sampling/test_sample.py",)),
    Mutation("top-k-one-too-many",
             "top-k keeps k+1 characters",
             "charrnn/generate/sample.py",
             "keep[_by_probability(probs)[:k]] = True",
             "keep[_by_probability(probs)[:k + 1]] = True",
             (T + "sampling/test_sample.py",)),
    Mutation("top-p-one-short",
             "top-p drops the character that crosses the threshold",
             "charrnn/generate/sample.py",
             'm = min(int(np.searchsorted(mass, p * mass[-1], side="left")) + 1, len(probs))',
             'm = max(int(np.searchsorted(mass, p * mass[-1], side="left")), 1)',
             (T + "sampling/test_sample.py",)),
    # --- data ----------------------------------------------------------------------
    Mutation("validation-is-the-head",
             "the validation split is the first share of the text, not the last",
             "charrnn/text/data.py",
             "return ids[: len(ids) - n_val], ids[len(ids) - n_val:]",
             "return ids[n_val:], ids[:n_val]",
             (T + "training/test_trainer_settings.py", T + "text/test_data.py")),
    Mutation("targets-not-shifted",
             "training targets are the inputs, not the next characters",
             "charrnn/text/data.py",
             "self.y = ids[1: B * L + 1].reshape(B, L)",
             "self.y = ids[: B * L].reshape(B, L)",
             (T + "text/test_data.py", T + "training/test_trainer_settings.py", T + "training/test_train.py")),
    # --- checkpoint validation -----------------------------------------------------
    Mutation("checkpoint-shape-unchecked",
             "checkpoint loading accepts a weight of the wrong shape",
             "charrnn/store/checkpoint.py",
             "    elif shape != tuple(want_shape):\n",
             "    elif False:\n",
             (T + "checkpoints/test_checkpoint.py",)),
    Mutation("checkpoint-nan-accepted",
             "checkpoint loading accepts NaN or infinite weights",
             "charrnn/store/checkpoint.py",
             'if finite and a.dtype.kind == "f" and not np.isfinite(a).all():',
             'if False:',
             (T + "checkpoints/test_checkpoint.py",)),
    Mutation("checkpoint-objects-allowed",
             "an entry holding Python objects passes the header check",
             "charrnn/store/checkpoint.py",
             "    if dtype.hasobject:\n",
             "    if False:\n",
             (T + "checkpoints/test_checkpoint.py",)),
    # --- issue 30: behaviours no test pinned before ---------------------------------
    Mutation("cache-signature-whole-seconds",
             "the id cache signs a file by whole seconds of mtime (a same-second rewrite reuses old ids)",
             "charrnn/text/corpus.py",
             '"mtime_ns": st.st_mtime_ns}',
             '"mtime_ns": int(st.st_mtime)}',
             (T + "text/test_corpus.py",)),
    Mutation("line-start-by-index",
             "segmented eval looks for a warm-up's line start by index in the text, not by the piece's positions",
             "charrnn/generate/scoring.py",
             "back = ids[p[max(0, start - LINE_LOOKBACK):start]]",
             "back = ids[max(0, start - LINE_LOOKBACK):start]",
             (T + "sampling/test_scoring.py",)),
    Mutation("value-clip-counts-norm",
             "value clipping reports a clipped step whenever the norm exceeds the limit",
             "charrnn/nn/optim.py",
             "clipped = any(float(np.abs(g).max()) > value for g in grads.values() if g.size)",
             "clipped = True",
             (T + "training/test_health.py", T + "model/test_optim.py")),
    Mutation("overfit-guard-sign",
             "the overfitting rule's noise guard has its sign flipped (fires when training stays flat)",
             "charrnn/views/advice.py",
             "and tb - tl >= 0.5 * (last - best))",
             "and tb - tl >= -0.5 * (last - best))",
             (T + "training/test_advice_rules.py",)),
    Mutation("api-score-ignores-oov",
             "charrnn.load(...).score(text, oov=...) scores with the default mode",
             "charrnn/api/__init__.py",
             "return score_text(self._model, self.vocab, text, oov)",
             "return score_text(self._model, self.vocab, text)",
             (T + "api/test_api.py",)),
    Mutation("resume-may-change-dropout",
             "--resume accepts another --dropout than the run was trained with",
             "charrnn/runs/resume.py",
             '"warmup"})',
             '"warmup", "dropout"})',
             (T + "resume/test_resume.py::test_contradicting_settings_are_refused",)),
    Mutation("save-renames-before-fsync",
             "a checkpoint save renames its temporary file over the old one before flushing it",
             "charrnn/store/checkpoint.py",
             "            f.flush()\n            os.fsync(f.fileno())\n        os.replace(tmp, path)\n",
             "            os.replace(tmp, path)\n            f.flush()\n            os.fsync(f.fileno())\n",
             (T + "checkpoints/test_crash.py::test_failed_fsync_keeps_the_old_checkpoint_and_says_so",
              T + "checkpoints/test_checkpoint.py")),
    Mutation("forked-child-uses-parents-pool",
             "a forked child hands its jobs to the parent's worker threads, which it does not have",
             "charrnn/nn/parallel.py",
             "    os.register_at_fork(after_in_child=_forget_pool_in_child)\n",
             "    pass\n",
             (T + "model/test_fast_paths.py::test_a_forked_child_gets_worker_threads_of_its_own",)),
    # --- found by mutmut (issue 30) -------------------------------------------------
    Mutation("bad-zip-header-passes",
             "a large entry whose local zip header is not one is read anyway",
             "charrnn/store/checkpoint.py",
             'if len(head) != 30 or head[:4] != b"PK\\x03\\x04":',
             'if len(head) != 30 and head[:4] != b"PK\\x03\\x04":',
             (T + "checkpoints/test_checkpoint.py",)),
    Mutation("error-detail-lost",
             "a checkpoint error's detail in parentheses is only the exception's type",
             "charrnn/store/checkpoint.py",
             "msg = str(e).splitlines()[0] if str(e) else type(e).__name__",
             "msg = type(e).__name__",
             (T + "checkpoints/test_checkpoint.py",)),
    # --- issue 27's recipe and stops ----------------------------------------------------
    Mutation("average-never-applied",
             "--weight-average keeps an average but evaluates, saves and samples the raw weights",
             "charrnn/runs/trainer.py",
             "return self.model if self.avg is None else Model(self.mcfg, self.avg)",
             "return self.model",
             (T + "training/test_trainer_settings.py", T + "resume/test_resume.py")),
    Mutation("chunk-mask-redrawn-every-step",
             "--dropout-mask chunk draws a fresh mask at every time step",
             "charrnn/nn/model.py",
             'cfg.dropout_mask == "step", T,',
             "True, T,",
             (T + "model/test_model.py",)),
    Mutation("weight-drop-never-applied",
             "--weight-drop draws masks but the forward pass uses the unmasked Wh",
             "charrnn/nn/model.py",
             'Wh = p[f"l{k}.Wh"] if whs is None else p[f"l{k}.Wh"] * whs[k]',
             'Wh = p[f"l{k}.Wh"]',
             (T + "model/test_model.py", T + "training/test_model_options.py")),
    Mutation("evaluations-never-thinned",
             "a --max-time run's chosen cadence evaluates at every multiple also in its first half",
             "charrnn/runs/schedule.py",
             "if self.thin and self.ends and iteration < THIN_SHARE * self.total:",
             "if False:",
             (T + "training/test_budget.py",)),
    Mutation("small-texts-thinned",
             "a run evaluated once per pass over a short text is thinned too",
             "charrnn/runs/budget.py",
             "thin = cfg.max_time is not None and not per_pass",
             "thin = cfg.max_time is not None",
             (T + "training/test_budget.py",)),
    Mutation("resume-forgets-encoding",
             "--resume decodes the text as utf-8 unless --encoding is given again",
             "charrnn/runs/resume.py",
             'return (encoding or recorded("encoding", "utf-8"), errors or recorded("errors", "strict"))',
             'return (encoding or "utf-8", errors or "strict")',
             (T + "resume/test_resume.py",)),
    Mutation("epochs-never-shifted",
             "--shift-epochs is stored but every epoch starts its chunks at 0",
             "charrnn/runs/trainer.py",
             "x, y = self.streams.chunk(self.chunk, self.epoch)",
             "x, y = self.streams.chunk(self.chunk)",
             (T + "training/test_trainer_settings.py",)),
    Mutation("stall-stop-never",
             "--stall-stop never ends a run whose best is that share of the budget old",
             "charrnn/runs/trainer.py",
             "if now - best[1] >= cfg.stall_stop * cfg.max_time:",
             "if False:",
             (T + "training/test_budget.py",)),
    Mutation("stall-passes-never",
             "a small text's run never stops five passes after its best",
             "charrnn/runs/trainer.py",
             "elif passes >= STALL_PASSES:",
             "elif False:",
             (T + "training/test_budget.py",)),
    Mutation("small-rungs-for-long-texts",
             "a long text whose budget affords nothing larger gets a size below the floor",
             "charrnn/runs/sizing.py",
             "below_floor = below_floor or (L, H) == FLOOR[model]",
             "below_floor = below_floor or L == 1",
             (T + "training/test_budget.py",)),
    Mutation("embedding-never-chosen",
             "a large vocabulary keeps the direct lookup (the rule never gives an embedding)",
             "charrnn/runs/sizing.py",
             "return e if 2 * (vocab_size * e + e * gh) <= vocab_size * gh else 0",
             "return 0",
             (T + "training/test_budget.py",)),
]


def check_patterns(root: Path = ROOT) -> list[str]:
    """The mutations whose ``old`` does not occur exactly once in their file."""
    bad = []
    for m in MUTATIONS:
        path = root / m.file
        n = path.read_text(encoding="utf-8").count(m.old) if path.exists() else 0
        if n != 1:
            bad.append(f"{m.name}: pattern found {n} times in {m.file}")
    return bad


def _copy_checkout(dest: Path) -> None:
    anywhere = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".pytest_cache",
                                      ".hypothesis", "*.egg-info", "mutants")
    top = {"checkpoints", "build", "dist"}          # the run folders, not tests/checkpoints

    def skip(folder, names):
        return anywhere(folder, names) | (top & set(names) if Path(folder) == ROOT else set())
    shutil.copytree(ROOT, dest, ignore=skip, dirs_exist_ok=True)


FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.M)


def _pytest(copy: Path, tests, timeout: float) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("CHARRNN_DEBUG", None)
    env.pop("CHARRNN_CHECKPOINT_DIR", None)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider",
           "-o", "addopts=", *tests]
    try:
        r = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, "(timed out)"
    m = FAILED.search(r.stdout)
    if m:
        return r.returncode, m.group(1)
    tail = r.stdout.strip().splitlines()
    return r.returncode, tail[-1] if tail else ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check that every pattern matches once")
    ap.add_argument("--only", action="append", default=[], help="run this mutation (repeatable)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per pytest run")
    args = ap.parse_args(argv)
    bad = check_patterns()
    if args.check:
        print("\n".join(bad) if bad else f"all {len(MUTATIONS)} patterns match once")
        return 1 if bad else 0
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    with tempfile.TemporaryDirectory(prefix="charrnn-mutants-") as tmp:
        copy = Path(tmp) / "charrnn"
        _copy_checkout(copy)
        # the baseline runs what the mutants will run: whole files, and single
        # tests only where their file is not run whole anyway
        named = {t for m in chosen for t in m.tests}
        baseline = sorted(t for t in named if t.split("::")[0] == t or t.split("::")[0] not in named)
        rc, first = _pytest(copy, baseline, args.timeout)
        if rc != 0:
            print(f"the unmutated tests fail ({first}); fix that first", file=sys.stderr)
            return 1
        rows, survivors = [], 0
        for m in chosen:
            path = copy / m.file
            original = path.read_text(encoding="utf-8")
            if original.count(m.old) != 1:
                rows.append((m.name, m.breaks, "PATTERN MOVED: update tests/mutations.py", 0.0))
                survivors += 1
                continue
            path.write_text(original.replace(m.old, m.new), encoding="utf-8")
            t0 = time.perf_counter()
            try:
                rc, first = _pytest(copy, list(m.tests), args.timeout)
            finally:
                path.write_text(original, encoding="utf-8")
            dt = time.perf_counter() - t0
            if rc == 0:
                survivors += 1
                first = "NOT CAUGHT"
            elif rc not in (1,):
                first = f"{first} (pytest exit {rc})"
            rows.append((m.name, m.breaks, first, dt))
    w = max(len(r[0]) for r in rows)
    print(f"{'mutation':<{w}}  {'caught by':<80}  seconds")
    for name, breaks, first, dt in rows:
        print(f"{name:<{w}}  {first:<80}  {dt:5.1f}")
        print(f"{'':<{w}}    ({breaks})")
    print(f"{len(rows) - survivors} of {len(rows)} mutations caught")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
