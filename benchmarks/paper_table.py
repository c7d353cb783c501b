# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
A fair arena: the paper's Tables 2 and 3 in miniature on the offline toy world, every method tuned by one protocol,
chosen on validation, reported on test.

    python benchmarks/paper_table.py --task expressions_terse   # the task in the paper's regime: ~80 min on 2 cores
    python benchmarks/paper_table.py                            # arithmetic
    python benchmarks/paper_table.py --ci                       # what the tests run (2 steps, 2 rates, 8 problems)
    python benchmarks/paper_table.py --rows sft,grpo,srft --grid 1e-5,1e-4,1e-3 --steps 60

The protocol, the same for every row (written here before any run; nothing below depends on a row's results but
the choice it makes from its own grid):
- Splits: the world's held-out split cut in two disjoint halves, validation (`world.load_validation()`, the first
  `--val-size` problems used) and test (`world.load_test()`, the first `--test-size`); the OOD split, when the task
  has one, is scored at the end on test-time models only.
- Learning rates: `LR_GRID` (3e-6 to 3e-3 in half-decade steps), the same for every row and stage; `--grid` replaces
  it for every row at once (it must still span two decades).
- Tuning: one run per grid point with seed `TUNING_SEED`, scored greedily on validation at the end; a row's rate is
  the one with the best validation accuracy (ties: the smaller rate). SFT -> RL tunes its stages in order: the SFT
  stage over the grid, then the RL stage over the grid from the chosen SFT stage's model.
- Test: `--seeds` (default three, none of them the tuning seed) at the chosen rate(s), scored on test every
  `--eval-every` steps and at the end.
- Budget: `--steps` optimizer steps x 64 sequences for every row; SFT -> RL gives half to each stage. Schedules are
  the toy recipes' (cosine, 5 warmup steps) around the chosen peak rate.
- Edge: a rate chosen at either end of the grid is flagged `(edge)` in the table, and the report asks for a wider
  grid for every row.
- Regime: on a task listed in `srft_trainer.arena.regime.REGIME_TASKS` nothing is trained unless the task's criteria
  were measured and passed (`python scripts/build_toy_base.py --task <task>`); for the other tasks the report says
  which criteria their record fails.

Rows (`ROWS`) are the toy recipes (`recipes/toy/[<task>/]{sft,grpo,srft}.yaml`) plus the same key overrides as the
paper-scale recipes in `recipes/qwen2.5-math-7b/`, trained through `srft train`'s own plumbing
(`srft_trainer.arena.runs`), `--workers` runs at a time (one process each, the cores shared out). The base model is
scored once (greedy decoding). Measured for each test run: greedy test accuracy, the entropy along those greedy
completions, the training entropy each trainer logs (mean of the last 5 logged steps), and OOD accuracy.

Writes into `--output-dir`: `paper_table.md` (also printed), `paper_table.png` (test accuracy, training and held-out
entropy curves, and validation accuracy over the grid) and `paper_table.json` (grid, every tuning run, the chosen
rates, every test run's curves and logs).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

from srft_trainer.arena import report
from srft_trainer.arena.rows import (  # the arena's rows, grid and choice rule: one definition for `srft arena` too
    LABELS,
    LR_GRID,
    MIN_GRID_DECADES,
    ROWS,
    TUNING_SEED,
    choose,
    stage_steps,
)


ARENA_ROWS = [row for row in ROWS if row != "srft_filtered"]
TASKS = ("arithmetic", "expressions", "expressions_terse")
DEFAULT_ROWS = {"arithmetic": ARENA_ROWS, "expressions": list(ROWS), "expressions_terse": ARENA_ROWS}
DEFAULT_STEPS = 40  # per row; one task's arena took 52-107 min on 2 CPU cores (docs/arena.md)
OOD_MAX_NEW_TOKENS = 256  # a 6-term solution in the demonstrations' style is up to 189 characters


# ------------------------------------------------------------------------------------------------------ schedule
class InlineExecutor:
    """Runs each job when it is submitted (`--workers 1`: no child processes)."""

    def submit(self, fn, *args, **kwargs) -> Future:
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future

    def shutdown(self, wait: bool = True) -> None:
        pass


class Arena:
    """
    Schedules the protocol's runs on an executor as their inputs become known: every row's first-stage grid at once,
    a later stage's grid when the previous stage's rate is chosen, a row's test seeds when all its rates are.
    """

    def __init__(self, a: argparse.Namespace, world, validation, test, ood, base: dict, executor, previous=None):
        self.a, self.world, self.validation, self.test, self.ood, self.base = a, world, validation, test, ood, base
        self.executor = executor
        self.previous = previous or {"tuning": {}, "test": {}}  # runs of an earlier arena to reuse (`--reuse`)
        self.pending: dict[Future, tuple] = {}
        self.tuning: list[dict] = []
        self.chosen: dict[str, dict] = {}
        self.results: list[dict] = []
        self.stage_models: dict[str, str] = {}  # row -> the chosen previous stage's model (SFT -> RL)

    def _stages(self, row: str, learning_rates: list[float]):
        from srft_trainer.arena.runs import Stage

        steps = stage_steps(self.a.steps, len(ROWS[row].stages))
        return [Stage(recipe, lr, n, dict(overrides))
                for (recipe, overrides), lr, n in zip(ROWS[row].stages, learning_rates, steps)]  # fmt: skip

    def _submit(self, key: tuple, **kwargs) -> None:
        from srft_trainer.arena.runs import run_stages

        common = {"task": self.a.task, "world": self.world.root, "threads": self.a.threads}
        self.pending[self.executor.submit(run_stages, **common, **kwargs)] = key

    def _reuse(self, key: tuple, run: dict) -> None:
        future: Future = Future()
        future.set_result({**run, "reused": True})
        self.pending[future] = key

    def tune_stage(self, row: str, stage: int) -> None:
        chosen = self.chosen.get(row, {}).get("learning_rates", [])
        steps = stage_steps(self.a.steps, len(ROWS[row].stages))
        for lr in self.a.grid:
            hit = self.previous["tuning"].get((row, stage, tuple(chosen), lr))
            chained = stage + 1 < len(ROWS[row].stages)  # a later stage starts from this run's model
            if hit and not (chained and not Path(hit["model"]).is_dir()):
                self._reuse(("tune", row, stage, lr), {"final_accuracy": hit["validation_accuracy"],
                                                       "model": hit["model"], "seconds": hit["seconds"]})  # fmt: skip
                continue
            stages = self._stages(row, [*chosen, lr])[stage:]
            out = self.a.output_dir / "tuning" / f"{row}-stage{stage}-lr{report.rate(lr)}"
            self._submit(("tune", row, stage, lr), stages=stages, out=out, seed=TUNING_SEED, problems=self.validation,
                         model=self.stage_models.get(row), offset=sum(steps[:stage]))  # fmt: skip

    def test_row(self, row: str) -> None:
        for seed in self.a.seeds:
            hit = self.previous["test"].get((row, seed, tuple(self.chosen[row]["learning_rates"])))
            if hit:
                self._reuse(("test", row, seed), {k: v for k, v in hit.items() if k not in self.chosen[row]})
                continue
            start = {"step": 0, "accuracy": self.base["accuracy"], "entropy": self.base["entropy"]}
            self._submit(("test", row, seed), stages=self._stages(row, self.chosen[row]["learning_rates"]),
                         out=self.a.output_dir / "runs" / f"{row}-seed{seed}", seed=seed, problems=self.test,
                         every=self.a.eval_every, start=start, ood=self.ood,
                         ood_max_new_tokens=OOD_MAX_NEW_TOKENS)  # fmt: skip

    def _done(self, key: tuple, run: dict) -> None:
        kind, row = key[0], key[1]
        if kind == "test":
            self.results.append({"row": row, "seed": key[2], **self.chosen[row], **run})
            how = "reused" if run.get("reused") else f"{run['seconds']} s"
            print(f"test {row} seed {key[2]}: {100 * run['final_accuracy']:.1f}% ({how})", flush=True)
            return
        stage, lr = key[2], key[3]
        self.tuning.append({"row": row, "stage": stage, "recipe": ROWS[row].stages[stage][0], "learning_rate": lr,
                            "validation_accuracy": run["final_accuracy"], "model": run["model"],
                            "seconds": run["seconds"], "reused": run.get("reused", False)})  # fmt: skip
        print(f"tune {row} stage {stage} lr {report.rate(lr)}: {100 * run['final_accuracy']:.1f}% on validation "
              f"({run['seconds']} s)", flush=True)  # fmt: skip
        grid = [t for t in self.tuning if (t["row"], t["stage"]) == (row, stage)]
        if len(grid) < len(self.a.grid):
            return
        best, edge = choose({t["learning_rate"]: t["validation_accuracy"] for t in grid}, self.a.grid)
        choice = self.chosen.setdefault(row, {"learning_rates": [], "edge": [], "validation_accuracy": []})
        choice["learning_rates"].append(best)
        choice["edge"].append(edge)
        best_run = next(t for t in grid if t["learning_rate"] == best)
        choice["validation_accuracy"].append(best_run["validation_accuracy"])
        if stage + 1 < len(ROWS[row].stages):
            self.stage_models[row] = best_run["model"]
            self.tune_stage(row, stage + 1)
        else:
            self.test_row(row)

    def run(self) -> None:
        for row in self.a.rows:
            if ROWS[row].stages:
                self.tune_stage(row, 0)
        while self.pending:
            finished, _ = wait(list(self.pending), return_when=FIRST_COMPLETED)
            for future in finished:
                self._done(self.pending.pop(future), future.result())
        self.results.sort(key=lambda r: (self.a.rows.index(r["row"]), r["seed"]))


# --------------------------------------------------------------------------------------------------------- main
def parse_floats(text: str, flag: str, p: argparse.ArgumentParser) -> list[float]:
    try:
        return sorted({float(x) for x in text.split(",") if x.strip()})
    except ValueError:
        p.error(f"{flag}: expected comma-separated numbers such as 1e-5,1e-4,1e-3, got {text!r}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=TASKS, default="arithmetic", help="which toy world")
    p.add_argument("--rows", default=None, help=f"comma-separated, from: {', '.join(ROWS)} (default: the task's)")
    grid = ",".join(map(report.rate, LR_GRID))
    p.add_argument("--grid", default=grid, help="learning rates tried for every row and stage (at least "
                   f"{MIN_GRID_DECADES} decades; default: {grid})")  # fmt: skip
    p.add_argument("--seeds", default="1,2,3", help=f"test seeds (the tuning seed is {TUNING_SEED})")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="optimizer steps per row (64 sequences each)")
    p.add_argument("--val-size", type=int, default=200, help="validation problems scored per tuning run")
    p.add_argument("--test-size", type=int, default=200, help="test problems scored")
    p.add_argument("--ood-size", type=int, default=200, help="out-of-distribution problems scored at the end")
    p.add_argument("--eval-every", type=int, default=10, help="score the test problems every N steps")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="runs at a time")
    p.add_argument("--output-dir", type=Path, default=None, help="default: outputs/paper_table[-<task>]")
    p.add_argument("--reuse", type=Path, default=None, help="an earlier arena's paper_table.json whose runs with "
                   "the same inputs are reused (e.g. after widening --grid)")  # fmt: skip
    p.add_argument("--ci", action="store_true", help="base, SFT -> RL, SRFT; grid 1e-5,1e-3; 2 steps; 1 test seed; "
                   "8 problems; 1 worker")  # fmt: skip
    a = p.parse_args(argv)
    if a.ci:
        a.rows, a.grid, a.seeds, a.steps, a.workers = "base,sft_grpo,srft", "1e-5,1e-3", "1", 2, 1
        a.val_size, a.test_size, a.ood_size, a.eval_every = 8, 8, 8, 1
    if a.output_dir is None:
        a.output_dir = Path("outputs/paper_table" + ("" if a.task == "arithmetic" else f"-{a.task}"))
    a.rows = DEFAULT_ROWS[a.task] if a.rows is None else [r.strip() for r in a.rows.split(",") if r.strip()]
    unknown = [r for r in a.rows if r not in ROWS]
    if unknown or not a.rows:
        p.error(f"--rows: unknown row(s) {unknown or a.rows}; choose from: {', '.join(ROWS)}")
    a.grid = parse_floats(a.grid, "--grid", p)
    if not a.grid or min(a.grid) <= 0 or math.log10(max(a.grid) / min(a.grid)) < MIN_GRID_DECADES - 1e-9:
        p.error(f"--grid must span at least {MIN_GRID_DECADES} decades of positive rates (the protocol), got "
                f"{a.grid}; e.g. 1e-5,1e-4,1e-3")  # fmt: skip
    try:
        a.seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    except ValueError:
        p.error(f"--seeds: expected comma-separated integers such as 1,2,3, got {a.seeds!r}")
    if not a.seeds or TUNING_SEED in a.seeds:
        p.error(f"--seeds: give at least one test seed other than the tuning seed {TUNING_SEED}, e.g. 1,2,3")
    stages = max(len(ROWS[r].stages) for r in a.rows)
    if a.steps < max(stages, 1):
        p.error(f"--steps must be >= {max(stages, 1)} (every training stage needs a step), got {a.steps}")
    for flag in ("val_size", "test_size", "eval_every", "ood_size", "workers"):
        if getattr(a, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(a, flag)}")
    a.threads = max(1, (os.cpu_count() or 1) // a.workers)
    return a


# Settings two arenas must share for one to reuse the other's runs.
REUSE_KEYS = ("task", "steps", "val_size", "test_size", "ood_size", "eval_every")


def reusable_runs(path: Path, a: argparse.Namespace) -> dict:
    """
    The tuning and test runs of an earlier arena's `paper_table.json` that this one may reuse: a tuning run by (row,
    stage, the earlier stages' chosen rates, rate), a test run by (row, seed, rates). `--grid` can so be widened for
    every row at the cost of the new grid points (and of the test runs whose chosen rate changes).
    """
    payload = json.loads(path.read_text())
    differ = [k for k in REUSE_KEYS if payload["settings"].get(k) != getattr(a, k)]
    if differ:
        raise SystemExit(f"--reuse {path}: its runs were made with other settings ({', '.join(differ)}); reuse only "
                         "an arena of the same task, budget and problems.")  # fmt: skip
    tuning = {}
    for t in payload["tuning"]:
        prefix = tuple(payload["chosen"][t["row"]]["learning_rates"][: t["stage"]])
        tuning[(t["row"], t["stage"], prefix, t["learning_rate"])] = t
    tests = {(r["row"], r["seed"], tuple(r["learning_rates"])): r for r in payload["runs"]}
    return {"tuning": tuning, "test": tests, "path": str(path)}


def regime_status(task: str) -> tuple[dict | None, list[str]]:
    """The task's recorded regime measurement (if any) and the criteria it fails."""
    from srft_trainer.arena.regime import failed_criteria
    from srft_trainer.toy.world import shipped_base_info, world_settings

    record = ((shipped_base_info(task) or {}).get("regime") or {}).get(task)
    if record and record.get("fingerprint") != world_settings(task).fingerprint():
        record = None  # measured on another version of the task
    return record, failed_criteria(record)


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    from srft_trainer.arena.regime import REGIME_TASKS

    record, failed = regime_status(a.task)
    if a.task in REGIME_TASKS and failed:
        raise SystemExit(f"The {a.task} task has no passing record of the paper-regime criteria (failed or not "
                         f"measured: {'; '.join(failed)}). Run `python scripts/build_toy_base.py --task {a.task}` "
                         "first.")  # fmt: skip
    from srft_trainer.arena.runs import score
    from srft_trainer.toy import build_toy_world, heldout_accuracy

    start = time.perf_counter()
    a.output_dir.mkdir(parents=True, exist_ok=True)
    world = build_toy_world(a.output_dir / "toy-world", task=a.task)
    splits = {"validation": world.load_validation(), "test": world.load_test()}
    for name, size in (("validation", a.val_size), ("test", a.test_size)):
        if size > len(splits[name]):
            raise SystemExit(f"--{name[:4]}-size {size} is larger than the {name} split ({len(splits[name])}).")
    validation, test = splits["validation"].select(range(a.val_size)), splits["test"].select(range(a.test_size))
    ood = world.load_heldout_ood()
    if ood is not None:
        if a.ood_size > len(ood):
            raise SystemExit(f"--ood-size {a.ood_size} is larger than the out-of-distribution split ({len(ood)}).")
        ood = ood.shuffle(seed=0).select(range(a.ood_size))  # every number of terms, not only the first

    from transformers import AutoModelForCausalLM, AutoTokenizer

    # Greedy decoding: the base model's score is the same for every seed, so it is computed once.
    model, tokenizer = (cls.from_pretrained(world.model_dir) for cls in (AutoModelForCausalLM, AutoTokenizer))
    accuracy, entropy = score(model, tokenizer, test)
    base_ood = None if ood is None else heldout_accuracy(model, tokenizer, ood, max_new_tokens=OOD_MAX_NEW_TOKENS)
    base = {"row": "base", "final_accuracy": accuracy, "final_heldout_entropy": entropy, "accuracy": accuracy,
            "entropy": entropy, "curve": [{"step": 0, "accuracy": accuracy, "entropy": entropy}],
            "final_ood_accuracy": base_ood, "validation_accuracy": score(model, tokenizer, validation)[0]}  # fmt: skip
    print(f"base: {100 * accuracy:.1f}% on test, {100 * base['validation_accuracy']:.1f}% on validation", flush=True)

    previous = None if a.reuse is None else reusable_runs(a.reuse, a)
    executor = InlineExecutor() if a.workers == 1 else ProcessPoolExecutor(a.workers, mp_context=get_context("spawn"))
    arena = Arena(a, world, validation, test, ood, base, executor, previous)
    try:
        arena.run()
    finally:
        executor.shutdown(wait=True)
    seconds = time.perf_counter() - start
    md = render(a, argv, base, arena, record, failed, seconds)
    (a.output_dir / "paper_table.md").write_text(md)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}
    payload = {"settings": settings, "grid": a.grid, "seconds": round(seconds, 1), "base": base,
               "regime": record, "regime_failed": failed, "tuning": arena.tuning, "chosen": arena.chosen,
               "runs": arena.results}  # fmt: skip
    (a.output_dir / "paper_table.json").write_text(json.dumps(payload, indent=2))
    title = f"Toy world ({a.task} task): test seeds {','.join(map(str, a.seeds))}, rates chosen on validation"
    report.plot(arena.results, a.rows, base, a.output_dir / "paper_table.png", LABELS, title, arena.tuning)
    print(md, flush=True)
    return 0


def render(a, argv, base, arena: Arena, record, failed, seconds: float) -> str:
    """The Markdown report: header, results on test, separations, the grid on validation, the legend."""
    ood_note = "" if base["final_ood_accuracy"] is None else f"; OOD accuracy on {a.ood_size} problems at the end"
    regime = ("meets the paper-regime criteria (`srft_trainer.arena.regime`)" if not failed else
              f"is outside the paper's regime: {'; '.join(failed)}" if record else
              "has no measured paper-regime criteria")  # fmt: skip
    lines = [
        f"Task `{a.task}` ({regime}): {a.steps} optimizer steps x 64 sequences per row; learning rates from the grid "
        f"{', '.join(map(report.rate, a.grid))}, chosen per row (and stage) on {a.val_size} validation problems with "
        f"seed {TUNING_SEED}; test seeds {','.join(map(str, a.seeds))} at the chosen rates, greedy accuracy on "
        f"{a.test_size} test problems scored every {a.eval_every} steps{ood_note}; {a.workers} runs at a time, "
        f"{seconds / 60:.1f} min in all.{reuse_note(a, arena)}",
        f"`python benchmarks/paper_table.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        "",
        report.table(arena.results, a.rows, base, LABELS, arena.chosen),
    ]
    edges = [LABELS[row] for row, choice in arena.chosen.items() if any(choice["edge"])]
    if edges:
        lines += ["", f"Chosen at an edge of the grid: {', '.join(edges)}. Widen the grid for every row (`--grid`) "
                  "and run the arena again."]  # fmt: skip
    sep = report.separation(arena.results, a.rows, base, LABELS)
    if sep:
        lines += ["", "Difference from SRFT on test, and whether it exceeds two standard deviations:", "", sep]
    lines += ["", f"Validation accuracy (%) over the grid, seed {TUNING_SEED} (chosen rate in bold; base "
              f"{100 * base['validation_accuracy']:.1f}%):", "",
              report.tuning_table(arena.tuning, a.grid, LABELS, arena.chosen), "", legend(a.rows, a.task)]  # fmt: skip
    return "\n".join(lines) + "\n"


def reuse_note(a, arena: Arena) -> str:
    runs = arena.tuning + arena.results
    reused = sum(r.get("reused", False) for r in runs)
    return f" {reused} of {len(runs)} runs reused from `{a.reuse}` (same inputs)." if a.reuse else ""


def legend(rows: list[str], task: str = "arithmetic") -> str:
    """What each row trains: recipes, overrides and step split."""
    from srft_trainer.arena.runs import RECIPES, recipe_path

    lines = []
    for row in rows:
        stages = ROWS[row].stages
        if not stages:
            lines.append(f"- {ROWS[row].label}: the toy base model, untrained (scored once: greedy decoding).")
            continue
        parts = []
        for recipe, overrides in stages:
            keys = ", ".join(f"`{k}: {str(v).lower() if isinstance(v, bool) else v}`" for k, v in overrides.items())
            path = recipe_path(task, recipe).relative_to(RECIPES.parents[1])
            parts.append(f"`{path}`" + (f" with {keys}" if keys else ""))
        split = " then ".join(parts) + (" (half of the steps each, each stage tuned)" if len(stages) > 1 else "")
        lines.append(f"- {ROWS[row].label}: {split}.")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
