# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
An arena file (`srft arena --config ARENA.yaml`): the base recipe, the rows, the learning-rate grid, the seeds, the
budget and the splits. Everything is checked here, before any run: unknown rows, a grid narrower than the protocol
allows, overlapping splits, a validation set too small to choose on, a recipe `srft check` rejects.

```yaml
recipe: recipes/custom/srft.yaml          # any recipe `srft train` accepts (its trainer is ignored: rows set it), or
                                          # one per trainer kind: {sft: a.yaml, grpo: b.yaml, srft: c.yaml}
model_name_or_path: null                  # optional: replaces the recipe's model (e.g. a local copy)
rows: [base, sft, grpo, sft_grpo, srft]   # keys of srft_trainer.arena.rows.ROWS (default: these five)
grid: [1.0e-6, 1.0e-5, 1.0e-4]            # every row and stage (at least two decades)
tuning_seed: 0
test_seeds: [1, 2]
budget: {steps: 20, sequences: 8}        # optimizer steps x sequences per step, the same for every row
splits:
  validation: 0.2                         # a file, or a fraction cut from the training file (fixed seed)
  test: examples/data/sums_heldout.jsonl
  ood: []                                 # optional files scored with the test runs' final models
                                          # (toy-world recipes: `toy_world` names the world's own splits)
max_problems: 200                         # problems scored per split
eval_every: 5                             # test runs also score test every this many steps (steps to a target)
ood_max_new_tokens: null                  # the OOD splits' scoring budget (default: the one `srft train` scores
                                          # with: the recipe's max_completion_length, at least 160)
scoring: auto                             # greedy scoring through vllm when installed, else transformers
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
SCORING = ("auto", "vllm", "transformers")
KINDS = ("sft", "grpo", "srft")  # the trainer kinds of the rows' stages
TOY_WORLD = "toy_world"  # a split value: the toy world's own split (its recipes' world)
SPLIT_SEED = 0
KEYS = {
    "recipe", "rows", "grid", "tuning_seed", "test_seeds", "budget", "splits", "max_problems", "output_dir",
    "accelerate_config", "eval_every", "model_name_or_path", "scoring", "ood_max_new_tokens",
}  # fmt: skip


class ArenaError(ValueError):
    """An arena file that cannot run; the message names the key and the fix."""


@dataclass
class ArenaConfig:
    """A checked arena file (see the module docstring); relative paths are taken from the current directory."""

    path: Path
    recipe: Path  # the SRFT row's recipe (every row's, unless `recipes` names one per kind)
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
    eval_every: int = 0
    model_name_or_path: str | None = None
    scoring: str = "auto"
    ood_max_new_tokens: int | None = None
    recipes: dict[str, Path] = field(default_factory=dict)  # trainer kind -> its recipe

    def recipe_for(self, kind: str) -> Path:
        return self.recipes.get(kind, self.recipe)

    @property
    def toy_task(self) -> str | None:
        """The toy task when the recipes train on the toy world (`toy_world:`), else `None`."""
        values = recipe_values(self.recipe)
        return values.get("toy_task", "arithmetic") if values.get("toy_world") else None

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
    named = raw["recipe"] if isinstance(raw["recipe"], dict) else {"srft": raw["recipe"]}
    if set(named) - set(KINDS) or "srft" not in named:
        raise ArenaError(
            f"{path}: `recipe` is a recipe file, or a mapping of trainer kinds {list(KINDS)} (`srft` required) to "
            f"recipe files, got {raw['recipe']}"
        )
    recipes = {kind: Path(str(value)) for kind, value in named.items()}
    for kind, recipe in recipes.items():
        if not recipe.is_file():
            raise ArenaError(f"{path}: `recipe` ({kind}) {recipe} does not exist")
    recipe = recipes["srft"]
    rows = list(raw.get("rows") or DEFAULT_ROWS)
    bad = [row for row in rows if row not in ROWS]
    if bad:
        raise ArenaError(f"{path}: unknown row(s) {bad} in `rows`; choose from {list(ROWS)}")
    if len(recipes) > 1:
        kinds = {kind for row in rows for kind, _ in ROWS[row].stages}
        if missing := sorted(kinds - set(recipes)):
            raise ArenaError(f"{path}: `recipe` names no recipe for {missing}, which rows {rows} train")
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
    stages = max([len(ROWS[row].stages) for row in rows] + [1])
    if steps < stages or sequences < 1:
        raise ArenaError(
            f"{path}: `budget` needs `steps` >= {stages} (every training stage needs a step; SFT -> RL gives half to "
            f"each) and `sequences` >= 1, got {budget}; e.g. {{steps: 20, sequences: 8}}"
        )
    splits = raw.get("splits") or {}
    if "validation" not in splits or "test" not in splits:
        raise ArenaError(
            f"{path}: `splits` needs `validation` and `test` (a file, or a fraction of the training rows)"
        )
    eval_every = int(raw.get("eval_every", max(1, steps // 4)))
    if eval_every < 0:
        raise ArenaError(
            f"{path}: `eval_every: {eval_every}` must be >= 0 (test runs score test every this many steps for the "
            "steps-to-a-target columns; 0 scores only at the end)"
        )
    scoring = str(raw.get("scoring", "auto"))
    if scoring not in SCORING:
        raise ArenaError(
            f"{path}: `scoring: {scoring}` must be one of {list(SCORING)} (auto: vLLM when it is installed, else "
            "transformers)"
        )
    ood_budget = raw.get("ood_max_new_tokens")
    if ood_budget is not None and int(ood_budget) < 1:
        raise ArenaError(f"{path}: `ood_max_new_tokens: {ood_budget}` must be >= 1 (new tokens of an OOD completion)")
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
        eval_every=eval_every,
        scoring=scoring,
        recipes=recipes,
        ood_max_new_tokens=int(ood_budget) if ood_budget is not None else None,
        model_name_or_path=str(Path(model).expanduser()) if (model := raw.get("model_name_or_path")) else None,
    )
    if smoke:
        config.grid, config.test_seeds = [grid[0], grid[-1]], test_seeds[:1]
        config.steps, config.max_problems, config.eval_every = 2, 8, 1
        config.output_dir = config.output_dir.with_name(config.output_dir.name + "-smoke")
    return config


def _rows_of(path: Path) -> list[dict]:
    from ..recipe import load_split

    return load_split(str(path), "train").to_list()


def _key(row: dict) -> str:
    return json.dumps(row.get("prompt"), sort_keys=True, ensure_ascii=False)


def make_splits(config: ArenaConfig, train_file: str, world=None) -> dict[str, Path]:
    """
    Writes `<output_dir>/splits/{train,validation,test}.jsonl` (and `ood-<i>.jsonl`): fractions are cut from the
    training file with a fixed seed and removed from training; `toy_world` takes the toy `world`'s own split
    (validation and test: the halves of its held-out split; OOD: its out-of-distribution split, shuffled with a fixed
    seed so every length is scored). Raises [`ArenaError`] when two splits share a prompt (training rows included) or
    the validation split has fewer than `MIN_VALIDATION` problems.
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
        if value == TOY_WORLD:
            taken[name] = _world_split(config, world, name)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
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
        if ood == TOY_WORLD:
            splits[f"ood-{i}"] = _world_split(config, world, "ood")
            continue
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


def _world_split(config: ArenaConfig, world, name: str) -> list[dict]:
    if world is None:
        raise ArenaError(f"{config.path}: a `{TOY_WORLD}` split needs toy-world recipes (`toy_world:` in the recipe)")
    if name == "ood":
        rows = world.load_heldout_ood()
        if rows is None:
            raise ArenaError(f"{config.path}: the {world.task} toy world has no out-of-distribution split")
        return rows.shuffle(seed=SPLIT_SEED).to_list()
    return (world.load_validation() if name == "validation" else world.load_test()).to_list()


def recipe_values(recipe: Path) -> dict[str, Any]:
    return yaml.safe_load(recipe.read_text()) or {}
