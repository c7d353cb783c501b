# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
An arena file (`srft arena --config ARENA.yaml`): the base recipe, the rows, the learning-rate grid, the seeds, the
budget and the splits. Everything is checked here, before any run: unknown rows, a grid narrower than the protocol
allows, overlapping splits, a validation set too small to choose on, a recipe `srft check` rejects.

```yaml
recipe: recipes/custom/srft.yaml          # any recipe `srft train` accepts (its trainer is ignored: rows set it)
rows: [base, sft, grpo, sft_grpo, srft]   # keys of srft_trainer.arena.rows.ROWS (default: these five)
grid: [1.0e-6, 1.0e-5, 1.0e-4]            # every row and stage (at least two decades)
tuning_seed: 0
test_seeds: [1, 2]
budget: {steps: 20, sequences: 8}        # optimizer steps x sequences per step, the same for every row
splits:
  validation: 0.2                         # a file, or a fraction cut from the training file (fixed seed)
  test: examples/data/sums_heldout.jsonl
  ood: []                                 # optional files scored with the test runs' final models
max_problems: 200                         # problems scored per split
output_dir: outputs/arena-custom
accelerate_config: null                   # e.g. accelerate_configs/zero3.yaml: runs become `accelerate launch`
```
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .rows import MIN_GRID_DECADES, ROWS


DEFAULT_ROWS = ("base", "sft", "grpo", "sft_grpo", "srft")
MIN_VALIDATION = 20
SPLIT_SEED = 0
KEYS = {
    "recipe", "rows", "grid", "tuning_seed", "test_seeds", "budget", "splits", "max_problems", "output_dir",
    "accelerate_config",
}  # fmt: skip


class ArenaError(ValueError):
    """An arena file that cannot run; the message names the key and the fix."""


@dataclass
class ArenaConfig:
    """A checked arena file (see the module docstring); relative paths are taken from the current directory."""

    path: Path
    recipe: Path
    rows: list[str]
    grid: list[float]
    tuning_seed: int
    test_seeds: list[int]
    steps: int
    sequences: int
    validation: str | float
    test: str | float
    ood: list[str] = field(default_factory=list)
    max_problems: int = 200
    output_dir: Path = Path("outputs/arena")
    accelerate_config: str | None = None

    @property
    def two_stage_rows(self) -> list[str]:
        return [row for row in self.rows if len(ROWS[row].stages) > 1]

    @property
    def trained_rows(self) -> list[str]:
        return [row for row in self.rows if ROWS[row].stages]


def load_arena(path: str | Path, smoke: bool = False) -> ArenaConfig:
    """
    Reads and checks an arena file. `smoke`: the protocol at its smallest (the grid's two ends, the first test seed,
    2 steps, 8 problems per split, in `<output_dir>-smoke`) to check an arena file before a long or cluster run.
    """
    path = Path(path)
    if not path.is_file():
        raise ArenaError(f"no such arena file: {path}")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ArenaError(f"{path}: an arena file is a YAML mapping of `key: value`")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise ArenaError(f"{path}: unknown key(s) {unknown}; an arena file has {sorted(KEYS)}")
    if "recipe" not in raw:
        raise ArenaError(
            f"{path}: `recipe` is required (the recipe every row starts from, e.g. recipes/custom/srft.yaml)"
        )
    recipe = Path(raw["recipe"])
    if not recipe.is_file():
        raise ArenaError(f"{path}: `recipe: {recipe}` does not exist")
    rows = list(raw.get("rows") or DEFAULT_ROWS)
    bad = [row for row in rows if row not in ROWS]
    if bad:
        raise ArenaError(f"{path}: unknown row(s) {bad} in `rows`; choose from {list(ROWS)}")
    if "srft" not in rows:
        raise ArenaError(f"{path}: `rows` must include `srft`: every other row is compared with it")
    grid = sorted({float(lr) for lr in raw.get("grid") or ()})
    if not grid or min(grid) <= 0 or math.log10(max(grid) / min(grid)) < MIN_GRID_DECADES - 1e-9:
        raise ArenaError(
            f"{path}: `grid` must span at least {MIN_GRID_DECADES} decades of positive learning rates (the protocol: "
            f"a rate chosen at a narrow grid's edge says little), got {grid}; e.g. [1.0e-6, 1.0e-5, 1.0e-4]"
        )
    tuning_seed = int(raw.get("tuning_seed", 0))
    test_seeds = [int(s) for s in raw.get("test_seeds") or (1, 2, 3)]
    if tuning_seed in test_seeds:
        raise ArenaError(f"{path}: `test_seeds` {test_seeds} must not include the tuning seed {tuning_seed}")
    budget = raw.get("budget") or {}
    steps, sequences = int(budget.get("steps", 0)), int(budget.get("sequences", 0))
    if steps < 2 or sequences < 1:
        raise ArenaError(
            f"{path}: `budget` needs `steps` >= 2 (SFT -> RL gives half to each stage) and `sequences` >= 1, got "
            f"{budget}; e.g. {{steps: 20, sequences: 8}}"
        )
    splits = raw.get("splits") or {}
    if "validation" not in splits or "test" not in splits:
        raise ArenaError(
            f"{path}: `splits` needs `validation` and `test` (a file, or a fraction of the training rows)"
        )
    config = ArenaConfig(
        path=path,
        recipe=recipe,
        rows=rows,
        grid=grid,
        tuning_seed=tuning_seed,
        test_seeds=test_seeds,
        steps=steps,
        sequences=sequences,
        validation=splits["validation"],
        test=splits["test"],
        ood=list(splits.get("ood") or []),
        max_problems=int(raw.get("max_problems", 200)),
        output_dir=Path(raw.get("output_dir") or f"outputs/arena-{path.stem}"),
        accelerate_config=raw.get("accelerate_config"),
    )
    if smoke:
        config.grid, config.test_seeds = [grid[0], grid[-1]], test_seeds[:1]
        config.steps, config.max_problems = 2, 8
        config.output_dir = config.output_dir.with_name(config.output_dir.name + "-smoke")
    return config


def _rows_of(path: Path) -> list[dict]:
    from ..recipe import load_split

    return load_split(str(path), "train").to_list()


def _key(row: dict) -> str:
    return json.dumps(row.get("prompt"), sort_keys=True, ensure_ascii=False)


def make_splits(config: ArenaConfig, train_file: str) -> dict[str, Path]:
    """
    Writes `<output_dir>/splits/{train,validation,test}.jsonl` (and `ood-<i>.jsonl`): fractions are cut from the
    training file with a fixed seed and removed from training. Raises [`ArenaError`] when two splits share a prompt
    (training rows included) or the validation split has fewer than `MIN_VALIDATION` problems.
    """
    import random

    out = config.output_dir / "splits"
    train = _rows_of(Path(train_file))
    order = list(range(len(train)))
    random.Random(SPLIT_SEED).shuffle(order)
    taken: dict[str, list[dict]] = {}
    cursor = 0
    for name in ("validation", "test"):
        value = getattr(config, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not 0 < value < 1:
                raise ArenaError(f"{config.path}: `splits.{name}: {value}` must be a fraction in (0, 1) or a file")
            count = max(1, round(value * len(train)))
            taken[name] = [train[i] for i in order[cursor : cursor + count]]
            cursor += count
        else:
            if not Path(value).is_file():
                raise ArenaError(f"{config.path}: `splits.{name}: {value}` does not exist")
            taken[name] = _rows_of(Path(value))
    kept = [train[i] for i in sorted(order[cursor:])]
    if not kept:
        raise ArenaError(f"{config.path}: the splits leave no training rows: lower the fractions")
    splits = {"train": kept, **taken}
    for i, ood in enumerate(config.ood):
        if not Path(ood).is_file():
            raise ArenaError(f"{config.path}: `splits.ood` file {ood} does not exist")
        splits[f"ood-{i}"] = _rows_of(Path(ood))
    names = list(splits)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            shared = {_key(r) for r in splits[names[a]]} & {_key(r) for r in splits[names[b]]}
            if shared:
                raise ArenaError(
                    f"{config.path}: the {names[a]} and {names[b]} splits share {len(shared)} prompt(s), e.g. "
                    f"{sorted(shared)[0][:120]}: a method tuned or trained on a problem would be scored on it. Remove "
                    "them from one side."
                )
    if len(splits["validation"]) < MIN_VALIDATION:
        raise ArenaError(
            f"{config.path}: the validation split has {len(splits['validation'])} problems; at least "
            f"{MIN_VALIDATION} are needed to choose a learning rate on it (give a larger fraction or file)"
        )
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, rows in splits.items():
        paths[name] = out / f"{name}.jsonl"
        with open(paths[name], "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return paths


def recipe_values(recipe: Path) -> dict[str, Any]:
    return yaml.safe_load(recipe.read_text()) or {}
