# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
A fair arena on the offline toy world: the paper's Tables 2 and 3 in miniature, every method tuned by one protocol,
chosen on validation, reported on test. This is `srft arena` on the toy tasks' arena files
(`recipes/toy/[<task>/]arena.yaml`); the flags below change a copy of that file for one run.

    python benchmarks/paper_table.py --task expressions_terse   # the task in the paper's regime
    python benchmarks/paper_table.py                            # arithmetic
    python benchmarks/paper_table.py --ci                       # what the tests run (2 steps, 2 rates, 8 problems)
    python benchmarks/paper_table.py --rows sft,grpo,srft --grid 1e-5,1e-4,1e-3 --steps 60

The protocol, the same for every row (docs/arena.md; nothing depends on a row's results but the choice it makes from
its own grid):
- Splits: the world's held-out split cut in two disjoint halves, validation and test (the first `max_problems` of
  each scored); the OOD split, when the task has one, scored at the end on test-time models only.
- Learning rates: `LR_GRID` (3e-6 to 3e-3 in half-decade steps), the same for every row and stage; `--grid` replaces
  it for every row at once (it must still span two decades).
- Tuning: one run per grid point with seed `TUNING_SEED`, scored greedily on validation at the end; a row's rate is
  the one with the best validation accuracy (ties: the smaller rate). SFT -> RL tunes its stages in order.
- Test: three seeds (none of them the tuning seed) at the chosen rate(s), scored on test every `eval_every` steps.
- Budget: 40 optimizer steps x 64 sequences for every row; SFT -> RL gives half to each stage. Schedules are the toy
  recipes' (cosine, 5 warmup steps) around the chosen peak rate.
- Edge: a rate chosen at either end of the grid is flagged `(edge)`, and the report asks for a wider grid.
- Regime: on a task listed in `srft_trainer.arena.regime.REGIME_TASKS` nothing is trained unless the task's criteria
  were measured and passed (`python scripts/build_toy_base.py --task <task>`).

Every run is an `srft train` command line on the task's toy recipe for its trainer kind plus the row's overrides (the
same as the paper-scale recipes in `recipes/qwen2.5-math-7b/`), one after another. Runs are kept in
`<output-dir>/runs/`: the same command continues a stopped arena, and a widened `--grid` trains only the new points
(and the test runs whose chosen rate moved). Writes `<output-dir>/arena.yaml` (the arena file this run used; `srft
arena --config` on it is the same run) and the report, `arena.md` (also printed), `arena.json` and `arena.png`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

from srft_trainer.arena.rows import ROWS, TUNING_SEED


ROOT = Path(__file__).resolve().parents[1]
ARENA_FILES = {
    "arithmetic": ROOT / "recipes" / "toy" / "arena.yaml",
    "expressions": ROOT / "recipes" / "toy" / "expressions" / "arena.yaml",
    "expressions_terse": ROOT / "recipes" / "toy" / "expressions_terse" / "arena.yaml",
}
TASKS = tuple(ARENA_FILES)
# The smallest protocol: base, SFT -> RL (two stages) and SRFT, two rates, one test seed, 2 steps, 8 problems.
CI_PRESET = {"rows": "base,sft_grpo,srft", "grid": "1e-5,1e-3", "seeds": "1", "steps": 2, "problems": 8,
             "eval_every": 1}  # fmt: skip


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=TASKS, default="arithmetic", help="which toy world")
    p.add_argument("--rows", default=None, help=f"comma-separated, from: {', '.join(ROWS)} (default: the task's)")
    p.add_argument("--grid", default=None, help="learning rates tried for every row and stage (two decades at least)")
    p.add_argument("--seeds", default=None, help=f"test seeds (the tuning seed is {TUNING_SEED})")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per row (64 sequences each)")
    p.add_argument("--problems", type=int, default=None, help="problems scored per split (default 200)")
    p.add_argument("--eval-every", type=int, default=None, help="score the test problems every N steps")
    p.add_argument("--output-dir", type=Path, default=None, help="default: the arena file's (outputs/paper_table...)")
    p.add_argument("--ci", action="store_true", help="base, SFT -> RL, SRFT; grid 1e-5,1e-3; 2 steps; 1 test seed; "
                   "8 problems")  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="print the runs, run nothing")
    a = p.parse_args(argv)
    if a.ci:
        for key, value in CI_PRESET.items():
            setattr(a, key, getattr(a, key) if getattr(a, key) is not None else value)
    return a


def numbers(text: str, kind, flag: str) -> list:
    try:
        return [kind(x) for x in text.split(",") if x.strip()]
    except ValueError:
        print(f"paper_table.py: {flag}: expected comma-separated numbers, got {text!r}", file=sys.stderr)
        raise SystemExit(2) from None


def arena_file(a: argparse.Namespace) -> Path:
    """
    The task's arena file with this run's flags applied, checked (a bad flag exits 2 naming the fix, before anything is
    written), then written as `<output-dir>/arena.yaml`.
    """
    from srft_trainer.arena.config import ArenaError, load_arena

    arena = yaml.safe_load(ARENA_FILES[a.task].read_text())
    if a.rows is not None:
        arena["rows"] = [r.strip() for r in a.rows.split(",") if r.strip()]
    if a.grid is not None:
        arena["grid"] = numbers(a.grid, float, "--grid")
    if a.seeds is not None:
        arena["test_seeds"] = numbers(a.seeds, int, "--seeds")
    if a.steps is not None:
        arena["budget"]["steps"] = a.steps
    if a.problems is not None:
        arena["max_problems"] = a.problems
    if a.eval_every is not None:
        arena["eval_every"] = a.eval_every
    if a.output_dir is not None:
        arena["output_dir"] = str(a.output_dir)
    # The recipes by absolute path: the copy lives in the output folder, and the command may run from anywhere.
    arena["recipe"] = {kind: str((ROOT / path).resolve()) for kind, path in arena["recipe"].items()}
    text = yaml.safe_dump(arena, sort_keys=False)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "arena.yaml").write_text(text)
        try:
            load_arena(Path(tmp) / "arena.yaml")
        except ArenaError as err:
            print(f"paper_table.py: {str(err).split(': ', 1)[-1]}", file=sys.stderr)
            raise SystemExit(2) from None
    out = Path(arena["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "arena.yaml").write_text(text)
    return out / "arena.yaml"


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
    regime = ("meets the paper-regime criteria (`srft_trainer.arena.regime`)" if not failed else
              f"is outside the paper's regime: {'; '.join(failed)}" if record else
              "has no measured paper-regime criteria")  # fmt: skip
    print(f"Toy task `{a.task}` {regime}.", flush=True)
    from srft_trainer.arena.cli import main as arena

    return arena(["--config", str(arena_file(a)), *(["--dry-run"] if a.dry_run else [])])


if __name__ == "__main__":
    sys.exit(main())
