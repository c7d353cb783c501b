# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
Short training runs on a toy world through `srft train`'s own plumbing, scored on the way: what
`benchmarks/paper_table.py` and the regime check ([`srft_trainer.arena.regime`]) run. Every function here is importable
from a fresh process, so the benchmark can hand runs to worker processes.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import PrinterCallback, TrainerCallback


RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "toy"
FINAL_ENTROPY_STEPS = 5  # the training entropy of a run: mean over this many last logged steps (one step is noisy)
LOGGED_KEYS = ("loss", "entropy", "reward", "frac_reward_zero_std", "srft/w_sft", "srft/w_rl", "mean_token_accuracy")


def recipe_path(task: str, recipe: str) -> Path:
    """
    The toy recipe `recipe` (`sft`, `grpo`, `srft`, ...) of `task`: `recipes/toy/[<task>/]<recipe>.yaml` of the
    checkout this package is installed from (`pip install -e .`: the recipes are not part of a built wheel).
    """
    return (RECIPES if task == "arithmetic" else RECIPES / task) / f"{recipe}.yaml"


@dataclass(frozen=True)
class Stage:
    """
    One training stage of a run.

    Args:
        recipe (`str`): The task's toy recipe (`sft`, `grpo`, `srft`).
        overrides (`dict`): Recipe keys changed for this stage.
        learning_rate (`float`): The stage's peak learning rate (the recipe's schedule and warmup are kept).
        steps (`int`): Optimizer steps.
    """

    recipe: str
    learning_rate: float
    steps: int
    overrides: dict[str, Any] = field(default_factory=dict)


def stage_argv(stage: Stage, task: str, world: Path, out: Path, seed: int, model: str | None = None) -> list[str]:
    """The `srft train` command line of one stage."""
    argv = ["--config", str(recipe_path(task, stage.recipe)), "--toy_world", str(world), "--output_dir", str(out),
            "--max_steps", str(stage.steps), "--seed", str(seed), "--learning_rate", str(stage.learning_rate),
            "--logging_steps", "1", "--disable_tqdm", "true"]  # fmt: skip
    if model:
        argv += ["--model_name_or_path", model]
    for key, value in stage.overrides.items():
        argv += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return argv


def score(model, tokenizer, problems) -> tuple[float, float]:
    """Greedy accuracy (a fraction) on `problems` and the mean token entropy along those greedy completions."""
    from ..toy.evaluation import completion_entropy, evaluate_heldout

    result = evaluate_heldout(model, tokenizer, problems)
    return result.accuracy, completion_entropy(model, tokenizer, problems["prompt"], result.completions)


class ScoreCurve(TrainerCallback):
    """Scores the trainer's model every `every` steps and at the end, into `points` as {step, accuracy, entropy}."""

    def __init__(self, trainer, problems, every: int | None, offset: int, points: list[dict]):
        self.trainer, self.problems, self.every, self.offset, self.points = trainer, problems, every, offset, points

    def _score(self, step: int) -> None:
        model = self.trainer.accelerator.unwrap_model(self.trainer.model)
        accuracy, entropy = score(model, self.trainer.processing_class, self.problems)
        self.points.append({"step": self.offset + step, "accuracy": accuracy, "entropy": entropy})

    def on_step_end(self, args, state, control, **kwargs):
        if self.every and state.global_step % self.every == 0 and state.global_step < state.max_steps:
            self._score(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        self._score(state.global_step)


def train_toy(argv: list[str], callbacks=()):
    """Builds the trainer `srft train argv` would build (toy world applied, console printer removed)."""
    from ..train import apply_toy_world, build_trainer, load_split, parse_args

    script_args, training_args, model_args = parse_args(argv)
    apply_toy_world(script_args, training_args, model_args)
    train = load_split(script_args.dataset_name, script_args.dataset_train_split)
    trainer = build_trainer(script_args, training_args, model_args, train, None)
    trainer.remove_callback(PrinterCallback)  # one line per run instead of a metrics dict per step
    for callback in callbacks:
        trainer.add_callback(callback(trainer))
    return trainer


def run_stages(
    stages: list[Stage],
    *,
    task: str,
    world: Path,
    out: Path,
    seed: int,
    problems,
    every: int | None = None,
    model: str | None = None,
    offset: int = 0,
    start: dict | None = None,
    ood=None,
    ood_max_new_tokens: int = 256,
    threads: int | None = None,
) -> dict:
    """
    Trains `stages` one after another (each from the previous stage's saved model), scoring `problems` greedily every
    `every` steps and at the end of each stage.

    Args:
        stages (`list[Stage]`): The stages.
        task (`str`): The toy task (picks the recipes).
        world (`Path`): The built toy world.
        out (`Path`): Output folder; stage `i` is saved to `out/stage<i>`.
        seed (`int`): Training seed of every stage.
        problems (`~datasets.Dataset`): Problems scored along the way (`prompt`, `solution`).
        every (`int`, *optional*): Score every this many steps as well as at the end; `None`: only at the end.
        model (`str`, *optional*): Start from this model folder instead of the world's base.
        offset (`int`, *optional*, defaults to `0`): Step number the run starts at (a second stage tuned alone).
        start (`dict`, *optional*): The curve's first point (the starting model's score), if known.
        ood (`~datasets.Dataset`, *optional*): Problems scored once with the final model, `ood_max_new_tokens` long.
        threads (`int`, *optional*): Torch threads of this process (a worker of a pool).

    Returns:
        `dict`: `curve` (points {step, accuracy, entropy}), `logs` (each logged step's metrics), `final_accuracy`,
        `final_heldout_entropy`, `final_train_entropy`, `final_ood_accuracy`, `model` (the last stage's folder),
        `argv` (each stage's command line) and `seconds`.
    """
    import torch

    from ..toy.evaluation import heldout_accuracy

    if threads:
        torch.set_num_threads(threads)
    begin = time.perf_counter()
    points: list[dict] = [start] if start else []
    logs: list[dict] = []
    argvs = []
    for i, stage in enumerate(stages):
        stage_out = out / f"stage{i}"
        argv = stage_argv(stage, task, world, stage_out, seed, model)
        trainer = train_toy(argv, [lambda t, o=offset: ScoreCurve(t, problems, every, o, points)])
        trainer.train()
        trainer.save_model(str(stage_out))  # the next stage starts from it
        for log in trainer.state.log_history:
            if "entropy" in log:
                logs.append({"step": offset + log["step"], **{k: float(log[k]) for k in LOGGED_KEYS if k in log}})
        argvs.append(argv)
        model, offset = str(stage_out), offset + stage.steps
    final = trainer.accelerator.unwrap_model(trainer.model)
    ood_accuracy = None
    if ood is not None:  # the final model only: problems unlike any it trained on
        ood_accuracy = heldout_accuracy(final, trainer.processing_class, ood, max_new_tokens=ood_max_new_tokens)
    entropies = [log["entropy"] for log in logs]
    return {
        "curve": points,
        "logs": logs,
        "final_accuracy": points[-1]["accuracy"],
        "final_heldout_entropy": points[-1]["entropy"],
        "final_train_entropy": statistics.mean(entropies[-FINAL_ENTROPY_STEPS:]) if entropies else None,
        "final_ood_accuracy": ood_accuracy,
        "model": model,
        "argv": argvs,
        "seconds": round(time.perf_counter() - begin, 1),
    }
