# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
The runs of an arena, each an `srft train` (or `srft eval`) command line, and the choices between them.

Phases, in order (each a list fixed by the arena file alone, so a cluster job array can index it):
- `base`: the base model scored on validation, test (and OOD) with `srft eval --data` (greedy, the `accuracy` grader,
  the completion budget `srft train` scores with);
- `tune0`: every trained row's first stage at every grid rate, seed `tuning_seed`, scored on validation;
- `tune1`: SFT -> RL's second stage at every grid rate from the first stage's chosen model, scored on validation;
- `test`: every trained row at its chosen rate(s) with each test seed, scored on test every `eval_every` steps and at
  the end of each stage (the curve steps to a target are read from), and OOD at the end.

Scoring is greedy through one backend for the whole arena (`scoring`): with transformers, `srft train` scores its own
model in process (`heldout_dataset`, `heldout_every`: no reload, nothing extra saved); with vLLM, `srft eval --backend
vllm` scores each trained run's saved model (`<run>/scored`) and, for a test curve, the checkpoints saved every
`eval_every` steps (`<run>/scored-step<N>`), in the same array task after the training.

A job is finished when its output is on disk (`trainer_state.json`, written at the end of `srft train`, and
`heldout_accuracy.json` when it scores in process; `summary.json` for `srft eval`): a finished run is never trained
again, so a killed arena continues where it stopped and a widened grid trains only the new points and the test runs
whose chosen rates moved.
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from .config import ArenaConfig, recipe_values
from .report import rate
from .rows import ROWS, choose, stage_steps


PHASES = ("base", "tune0", "tune1", "test")
# Recipe keys an arena sets itself for every run (the rest of the base recipe is kept as it is).
ARENA_KEYS = {
    "trainer", "dataset_name", "output_dir", "learning_rate", "seed", "max_steps", "per_device_train_batch_size",
    "gradient_accumulation_steps", "heldout_dataset", "heldout_fraction", "heldout_size", "heldout_before",
    "push_to_hub", "hub_model_id", "save_strategy", "plot_curves", "report_to", "resume_from_checkpoint",
}  # fmt: skip
STAGE_TRAINER = {"sft": "sft", "grpo": "grpo", "srft": "srft"}  # a row stage's recipe kind -> `trainer:`


class ArenaNotReady(RuntimeError):
    """A run needs a choice whose tuning runs have not all finished."""


@dataclass(frozen=True)
class Job:
    """One command of the arena: `srft train` or `srft eval` (`kind`), its phase, row, folder and arguments."""

    kind: str
    phase: str
    row: str
    out: Path
    argv: list[str]
    scored: bool

    def done(self) -> bool:
        if self.kind == "eval":
            return (self.out / "summary.json").is_file()
        finished = (self.out / "trainer_state.json").is_file()
        return finished and (not self.scored or (self.out / "heldout_accuracy.json").is_file())


class Plan:
    """The arena's jobs, from the arena file, its split files and the finished runs on disk."""

    def __init__(self, config: ArenaConfig, splits: dict[str, Path], world=None):
        self.config, self.splits = config, splits
        self.recipe = recipe_values(config.recipe)
        self.overrides: dict[str, Any] = {}  # set in every row's recipe
        if world is not None:  # toy-world recipes: the arena's own world, its base model
            self.overrides.update(toy_world=str(world.root), model_name_or_path=str(world.model_dir))
        if config.model_name_or_path:  # the arena's model replaces the recipe's in every row's recipe
            self.overrides["model_name_or_path"] = config.model_name_or_path
        if self.recipe.get("reward_funcs"):  # every row is scored with the SRFT recipe's reward functions
            self.overrides["reward_funcs"] = self.recipe["reward_funcs"]
        self.recipe.update(self.overrides)
        names = list(self.recipe.get("reward_funcs") or ["accuracy"])
        self.custom_rewards = names not in (["accuracy"], ["accuracy_reward"])  # else: the `accuracy` grader
        self.base_model = str(self.recipe.get("model_name_or_path") or "")
        self.runs = config.output_dir / "runs"
        from ..evaluation.generation import backend_name

        self.backend = backend_name(config.scoring)
        self.in_training = self.backend == "transformers"  # srft train scores its own model: no reload, no saves

    # ------------------------------------------------------------------------------------------ command lines
    def stage_recipe(self, row: str, stage: int) -> Path:
        """The base recipe for this row's stage: its trainer, the keys that trainer's config knows, the row's keys."""
        from ..recipe import known_keys

        kind, overrides = ROWS[row].stages[stage]
        trainer = STAGE_TRAINER[kind]
        known = known_keys(trainer)
        values = {**recipe_values(self.config.recipe_for(kind)), **self.overrides}
        body = {k: v for k, v in values.items() if k in known and k not in ARENA_KEYS}
        if trainer == "sft" and "max_length" not in values:  # SFT's sequence limit: prompt + completion
            body["max_length"] = self.longest_prompt() + int(self.recipe.get("max_completion_length") or 512)
        body.update(trainer=trainer, **overrides)
        path = self.config.output_dir / "recipes" / f"{row}-stage{stage}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(body, sort_keys=False)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        return path

    def longest_prompt(self) -> int:
        """Tokens of the training split's longest prompt (chat template applied), for SFT's `max_length`."""
        if getattr(self, "_longest_prompt", None) is None:
            from transformers import AutoTokenizer

            from ..recipe import load_split

            tokenizer = AutoTokenizer.from_pretrained(self.base_model)
            prompts = load_split(str(self.splits["train"]), "train")["prompt"]
            lengths = []
            for prompt in prompts:
                if isinstance(prompt, list):
                    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_dict=True)
                    lengths.append(len(ids["input_ids"]))
                else:
                    lengths.append(len(tokenizer(prompt)["input_ids"]))
            self._longest_prompt = max(lengths, default=0)
        return self._longest_prompt

    def train_argv(self, row, stage, lr, seed, out, steps, model=None, scored_on=None, every=0) -> list[str]:
        c = self.config
        scores_in_process = scored_on is not None and self.in_training
        saves = bool(every) and scored_on is not None and not self.in_training  # checkpoints for `srft eval`
        argv = ["--config", str(self.stage_recipe(row, stage)), "--dataset_name", str(self.splits["train"]),
                "--output_dir", str(out), "--learning_rate", str(lr), "--seed", str(seed), "--max_steps", str(steps),
                "--per_device_train_batch_size", str(c.sequences), "--gradient_accumulation_steps", "1",
                "--plot_curves", "false", "--report_to", "none", "--push_to_hub", "false",
                "--heldout_before", "false", "--logging_steps", "1"]  # fmt: skip
        argv += ["--save_strategy", "steps", "--save_steps", str(every), "--save_only_model", "true"] if saves else [
            "--save_strategy", "no"]  # fmt: skip
        kind, overrides = ROWS[row].stages[stage]
        if STAGE_TRAINER[kind] != "sft" and "steps_per_generation" not in overrides:  # the released code's reuse
            argv += ["--generation_batch_size", str(c.sequences)]  # one generation per optimizer step, every row
        if model:
            argv += ["--model_name_or_path", str(model)]
        if scores_in_process:
            argv += ["--heldout_dataset", str(scored_on), "--heldout_size", str(c.max_problems)]
            argv += ["--heldout_every", str(every)] if every else []
        else:
            argv += ["--heldout_size", "0"]
        return argv

    def command(self, job: Job) -> list[str]:
        """The process a job runs: `srft eval` / `srft train` (or `accelerate launch ... -m srft_trainer.train`)."""
        if job.kind == "eval":
            return [sys.executable, "-m", "srft_trainer.cli", "eval", *job.argv]
        if self.config.accelerate_config:
            launch = ["accelerate", "launch", "--config_file", str(self.config.accelerate_config)]
            return [*launch, "-m", "srft_trainer.train", *job.argv]
        return [sys.executable, "-m", "srft_trainer.train", *job.argv]

    def max_new_tokens(self, ood: bool = False) -> int:
        """The scoring budget: what `srft train` scores with (`ood_max_new_tokens` for OOD splits, when set)."""
        from ..train import max_new_tokens

        default = max_new_tokens(SimpleNamespace(max_completion_length=self.recipe.get("max_completion_length")))
        return (self.config.ood_max_new_tokens or default) if ood else default

    # ---------------------------------------------------------------------------------------------------- jobs
    def jobs(self, phase: str) -> list[list[Job]]:
        """The phase's jobs, one list per array task (a run's stages and its scoring run in order in one task)."""
        c = self.config
        if phase == "base":
            splits = ["validation", "test", *[k for k in self.splits if k.startswith("ood-")]]
            return [[self.eval_job("base", self.base_model, self.runs / "base" / name, self.splits[name])]
                    for name in splits]  # fmt: skip
        if phase == "tune0":
            return [self.tune_jobs(row, 0, lr) for row in c.trained_rows for lr in c.grid]
        if phase == "tune1":
            return [self.tune_jobs(row, 1, lr) for row in c.two_stage_rows for lr in c.grid]
        if phase == "test":
            return [self.test_jobs(row, seed) for row in c.trained_rows for seed in c.test_seeds]
        raise ValueError(f"unknown phase {phase!r}; one of {PHASES}")

    def eval_job(self, row: str, model: str | Path, out: Path, data: Path, phase: str = "base") -> Job:
        budget = self.max_new_tokens(ood=out.name.startswith("ood-"))
        argv = ["--model", str(model), "--data", str(data), "--output-dir", str(out), "--backend", self.backend,
                "--temperature", "0", "--max-new-tokens", str(budget), "--limit",
                str(self.config.max_problems)]  # fmt: skip
        if self.custom_rewards:  # the recipe's reward functions and weights, as `srft train` scores in process
            argv += ["--recipe", str(self.config.recipe)]
        return Job("eval", phase, row, out, argv, scored=True)

    def scoring_jobs(self, row: str, phase: str, out: Path, data: Path, steps: int, every: int = 0) -> list[Job]:
        """`srft eval` of a trained run (and of its checkpoints every `every` steps) unless it scores in process."""
        if self.in_training:
            return []
        steps_scored = range(every, steps, every) if every else range(0)
        points = [(out / f"checkpoint-{n}", out / f"scored-step{n}") for n in steps_scored]
        return [self.eval_job(row, model, folder, data, phase) for model, folder in [*points, (out, out / "scored")]]

    def _tune_folder(self, row: str, stage: int, lr: float, earlier: list[float]) -> Path:
        prefix = "".join(f"-lr{rate(x)}" for x in earlier)  # a later stage starts from the earlier stages' choices
        return self.runs / "tune" / f"{row}{prefix}-stage{stage}-lr{rate(lr)}"

    def tune_folder(self, row: str, stage: int, lr: float) -> Path:
        return self._tune_folder(row, stage, lr, self.chosen(row, stage))

    def tune_jobs(self, row: str, stage: int, lr: float) -> list[Job]:
        steps = stage_steps(self.config.steps, len(ROWS[row].stages))
        earlier = self.chosen(row, stage)
        model = self.tune_folder(row, stage - 1, earlier[-1]) if stage else None
        out = self.tune_folder(row, stage, lr)
        validation = self.splits["validation"]
        argv = self.train_argv(row, stage, lr, self.config.tuning_seed, out, steps[stage], model, validation)
        train = Job("train", f"tune{stage}", row, out, argv, scored=self.in_training)
        return [train, *self.scoring_jobs(row, f"tune{stage}", out, validation, steps[stage])]

    def test_jobs(self, row: str, seed: int) -> list[Job]:
        rates = self.chosen(row, len(ROWS[row].stages))
        steps = stage_steps(self.config.steps, len(rates))
        folder = self.runs / "test" / f"{row}-lr{'-'.join(rate(x) for x in rates)}-seed{seed}"
        jobs, model, test, every = [], None, self.splits["test"], self.config.eval_every
        for stage, lr in enumerate(rates):  # every stage scored on test: the curve spans the whole budget
            out = folder / f"stage{stage}"
            argv = self.train_argv(row, stage, lr, seed, out, steps[stage], model, test, every)
            jobs.append(Job("train", "test", row, out, argv, scored=self.in_training))
            jobs += self.scoring_jobs(row, "test", out, test, steps[stage], every)
            model = out
        oods = [name for name in self.splits if name.startswith("ood-")]
        jobs += [self.eval_job(row, model, model / name, self.splits[name], "test") for name in oods]
        return jobs

    # ----------------------------------------------------------------------------------------------- choices
    def tuning_scores(self, row: str, stage: int) -> dict[float, float]:
        """Validation accuracy of each finished tuning run of the row's stage."""
        return self._scores(row, stage, self.chosen(row, stage))

    def _scores(self, row: str, stage: int, earlier: list[float]) -> dict[float, float]:
        scores = {}
        for lr in self.config.grid:
            score = final_score(self._tune_folder(row, stage, lr, earlier))
            if score is not None:
                scores[lr] = score
        return scores

    def chosen(self, row: str, stages: int) -> list[float]:
        """The chosen rates of the row's first `stages` stages; [`ArenaNotReady`] until their grids are scored."""
        rates: list[float] = []
        for stage in range(stages):
            scores = self._scores(row, stage, rates)
            if len(scores) < len(self.config.grid):
                missing = [rate(lr) for lr in self.config.grid if lr not in scores]
                raise ArenaNotReady(f"{row} stage {stage}: the tuning runs at {missing} have not finished")
            rates.append(choose(scores, self.config.grid)[0])
        return rates

    # ---------------------------------------------------------------------------------------------- results
    def results(self) -> dict[str, Any]:
        """Everything the report shows, read from the finished runs (what `--collect` gathers on a cluster)."""
        c = self.config
        base = self._base()
        tuning, chosen, runs = [], {}, []
        for row in c.trained_rows:
            stages = len(ROWS[row].stages)
            picked: dict[str, list] = {"learning_rates": [], "edge": [], "validation_accuracy": []}
            for stage in range(stages):
                try:
                    self.chosen(row, stage)  # the earlier stages' choices: where this stage's runs live
                except ArenaNotReady:
                    break
                scores = self.tuning_scores(row, stage)
                for lr, accuracy in sorted(scores.items()):
                    tuning.append({"row": row, "stage": stage, "recipe": ROWS[row].stages[stage][0],
                                   "learning_rate": lr, "validation_accuracy": accuracy,
                                   "first_entropy": _first_entropy(self.tune_folder(row, stage, lr))})  # fmt: skip
                if len(scores) == len(c.grid):
                    best, edge = choose(scores, c.grid)
                    picked["learning_rates"].append(best)
                    picked["edge"].append(edge)
                    picked["validation_accuracy"].append(scores[best])
            if len(picked["learning_rates"]) < stages:
                continue
            chosen[row] = picked
            for seed in c.test_seeds:
                jobs = self.test_jobs(row, seed)
                if all(job.done() for job in jobs):
                    folders = [job.out for job in jobs if job.kind == "train"]
                    runs.append(self._test_result(row, seed, picked["learning_rates"], folders, base))
        return {"base": base, "tuning": tuning, "chosen": chosen, "runs": runs}

    def _base(self) -> dict[str, Any]:
        scores = {job[0].out.name: summary_accuracy(job[0].out) for job in self.jobs("base")}
        test = scores.get("test")
        ood = [v for k, v in scores.items() if k.startswith("ood-") and v is not None]
        return {"row": "base", "accuracy": test, "final_accuracy": test,
                "validation_accuracy": scores.get("validation"),
                "final_ood_accuracy": statistics.mean(ood) if ood else None,
                "curve": [{"step": 0, "accuracy": test or 0.0}]}  # fmt: skip

    def _test_result(self, row, seed, rates, stages: list[Path], base: dict) -> dict[str, Any]:
        curve, offset = [{"step": 0, "accuracy": base["accuracy"] or 0.0}], 0
        for folder in stages:  # each stage's own curve, after the earlier stages' steps
            steps = json.loads((folder / "trainer_state.json").read_text())["global_step"]
            curve += [{"step": offset + p["step"], "accuracy": p["accuracy"]} for p in stage_curve(folder, steps)]
            offset += steps
        out = stages[-1]
        ood = [summary_accuracy(p.parent) for p in sorted(out.glob("ood-*/summary.json"))]  # the OOD eval jobs
        return {"row": row, "seed": seed, "learning_rates": rates, "final_accuracy": curve[-1]["accuracy"],
                "final_train_entropy": _last_entropy(out),
                "final_ood_accuracy": statistics.mean(ood) if ood else None, "curve": curve}  # fmt: skip


def summary_accuracy(folder: Path) -> float | None:
    """The accuracy (a fraction) `srft eval --data` wrote into `folder/summary.json`, if it has finished."""
    summary = folder / "summary.json"
    if not summary.is_file():
        return None
    benchmarks = json.loads(summary.read_text())["benchmarks"]
    return next(iter(benchmarks.values()))["accuracy"] / 100


def final_score(run: Path) -> float | None:
    """A trained run's final accuracy: scored by `srft train` in process, or by `srft eval` into `run/scored`."""
    path = run / "heldout_accuracy.json"
    return json.loads(path.read_text())["after"] if path.is_file() else summary_accuracy(run / "scored")


def stage_curve(run: Path, steps: int) -> list[dict]:
    """The points {step, accuracy} after step 0 of a finished, scored run: in process, or each `scored-step<N>`."""
    path = run / "heldout_accuracy.json"
    if path.is_file():
        scored = json.loads(path.read_text())
        points = scored.get("curve") or [{"step": steps, "accuracy": scored["after"]}]
    else:
        # The scoring folders (each job's .log lies beside its folder).
        points = [{"step": int(p.name.removeprefix("scored-step")), "accuracy": summary_accuracy(p)}
                  for p in run.glob("scored-step*") if p.is_dir()]  # fmt: skip
        points = sorted((p for p in points if p["accuracy"] is not None), key=lambda p: p["step"])
        points.append({"step": steps, "accuracy": final_score(run)})
    return [p for p in points if p["step"] > 0]


def _log_history(out: Path) -> list[dict]:
    path = out / "trainer_state.json"
    return json.loads(path.read_text())["log_history"] if path.is_file() else []


def _last_entropy(out: Path, last: int = 5) -> float | None:
    """Training entropy of a run: the mean over its last few logged steps (one step is noisy)."""
    entropies = [h["entropy"] for h in _log_history(out) if "entropy" in h]
    return statistics.mean(entropies[-last:]) if entropies else None


def _first_entropy(out: Path) -> float | None:
    """The first logged entropy: for an RL row, the base model's entropy on its own samples at step 1."""
    return next((h["entropy"] for h in _log_history(out) if "entropy" in h), None)
