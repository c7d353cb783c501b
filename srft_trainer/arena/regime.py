# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
The paper's regime, written down as criteria a toy task must meet before any SRFT row of the arena
(`benchmarks/paper_table.py`) is run on it, measured by `python scripts/build_toy_base.py --task <task> --criteria`
and recorded in the task's `build_info.json` (key `regime`, by task):

1. SFT alone beats the base model on the validation split within the arena's budget;
2. GRPO alone beats the base model on the validation split within the same budget;
3. the base model's sampled (temperature 1) completions have a mean token entropy of at least 0.3 nats;
4. the task has an out-of-distribution held-out split.

SFT and GRPO run with their toy recipes as written (learning rate included), one seed, `REGIME_STEPS` optimizer steps
of 64 sequences (the arena's default budget for the task), scored greedily on the whole validation split
([`ToyWorld.load_validation`]). "Beats" means a higher accuracy, whatever the margin; the margins are recorded.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..toy.world import ToyWorld


# Tasks built to meet the criteria: the arena refuses to train on them without a passing record.
REGIME_TASKS = ("expressions_terse",)
MIN_BASE_ENTROPY = 0.3  # nats per token along the base's own samples at temperature 1
REGIME_STEPS = 40  # the arena's default budget per row (optimizer steps x 64 sequences)
REGIME_SEED = 0
CRITERIA = (
    ("sft_beats_base", "SFT alone beats the base on validation accuracy within the budget"),
    ("grpo_beats_base", "GRPO alone beats the base on validation accuracy within the budget"),
    ("base_entropy", f"the base's sampled entropy is at least {MIN_BASE_ENTROPY} nats"),
    ("ood_split", "the task has an out-of-distribution held-out split"),
)


def measure_regime(world: ToyWorld, steps: int = REGIME_STEPS, seed: int = REGIME_SEED) -> dict:
    """
    Measures the regime criteria on a built toy world (two short training runs: a few minutes on 2 CPU cores).

    Args:
        world ([`ToyWorld`]): The task's world.
        steps (`int`, *optional*, defaults to [`REGIME_STEPS`]): Optimizer steps of the SFT and GRPO runs.
        seed (`int`, *optional*, defaults to [`REGIME_SEED`]): Their training seed.

    Returns:
        `dict`: the measured values (accuracies are fractions), `checks` (criterion -> bool), `passed` (all of them),
        and what was run.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..toy.evaluation import completion_entropy, evaluate_heldout
    from .runs import Stage, recipe_path, run_stages

    validation = world.load_validation()
    model = AutoModelForCausalLM.from_pretrained(world.model_dir)
    tokenizer = AutoTokenizer.from_pretrained(world.model_dir)
    greedy = evaluate_heldout(model, tokenizer, validation)
    sampled = evaluate_heldout(model, tokenizer, validation, temperature=1.0, seed=seed)
    entropy = completion_entropy(model, tokenizer, validation["prompt"], sampled.completions)
    ood = world.load_heldout_ood()
    record = {
        "fingerprint": world.settings.fingerprint(),
        "validation_n": len(validation),
        "steps": steps,
        "seed": seed,
        "base_accuracy": greedy.accuracy,
        "base_accuracy_sampled_t1": sampled.accuracy,
        "base_entropy_sampled_t1": entropy,
        "ood_n": 0 if ood is None else len(ood),
    }
    with tempfile.TemporaryDirectory() as scratch:
        for method in ("sft", "grpo"):
            learning_rate = _recipe_learning_rate(recipe_path(world.task, method))
            run = run_stages([Stage(method, learning_rate, steps)], task=world.task, world=world.root,
                             out=Path(scratch) / method, seed=seed, problems=validation)  # fmt: skip
            record[f"{method}_learning_rate"] = learning_rate
            record[f"{method}_accuracy"] = run["final_accuracy"]
    record["checks"] = {
        "sft_beats_base": record["sft_accuracy"] > record["base_accuracy"],
        "grpo_beats_base": record["grpo_accuracy"] > record["base_accuracy"],
        "base_entropy": entropy >= MIN_BASE_ENTROPY,
        "ood_split": record["ood_n"] > 0,
    }
    record["passed"] = all(record["checks"].values())
    return record


def failed_criteria(record: dict | None) -> list[str]:
    """The criteria a recorded measurement fails (all of them when there is no record)."""
    if not record:
        return [text for _, text in CRITERIA]
    return [text for key, text in CRITERIA if not record.get("checks", {}).get(key)]


def _recipe_learning_rate(path: Path) -> float:
    import yaml

    return float(yaml.safe_load(path.read_text())["learning_rate"])
