# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
The runs of an arena, each an `srft train` (or `srft eval`) command line, and the choices between them.

Phases, in order (each a list fixed by the arena file alone, so a cluster job array can index it):
- `base`: the base model scored on validation, test (and OOD) with `srft eval --data` (greedy, the `accuracy` grader,
  the completion budget `srft train` scores with);
- `tune0`: every trained row's first stage at every grid rate, seed `tuning_seed`, scored on validation;
- `tune1`: SFT -> RL's second stage at every grid rate from the first stage's chosen model, scored on validation;
- `test`: every trained row at its chosen rate(s) with each test seed, scored on test (and OOD).
A run is finished when its folder holds `trainer_state.json` (written at the end of `srft train`) and, when it is
scored, `heldout_accuracy.json`: a finished run is never trained again, so a killed arena continues where it stopped
and a widened grid trains only the new points and the test runs whose chosen rates moved.
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
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

    def __init__(self, config: ArenaConfig, splits: dict[str, Path]):
        self.config, self.splits = config, splits
        self.recipe = recipe_values(config.recipe)
        self.base_model = str(self.recipe.get("model_name_or_path") or "")
        self.runs = config.output_dir / "runs"

    # ------------------------------------------------------------------------------------------ command lines
    def stage_recipe(self, row: str, stage: int) -> Path:
        """The base recipe for this row's stage: its trainer, the keys that trainer's config knows, the row's keys."""
        from ..recipe import known_keys

        kind, overrides = ROWS[row].stages[stage]
        trainer = STAGE_TRAINER[kind]
        known = known_keys(trainer)
        body = {k: v for k, v in self.recipe.items() if k in known and k not in ARENA_KEYS}
        if trainer == "sft" and "max_length" not in self.recipe:  # SFT's sequence limit: prompt + completion
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

    def train_argv(self, row, stage, lr, seed, out, steps, model=None, scored_on=None) -> list[str]:
        c = self.config
        argv = ["--config", str(self.stage_recipe(row, stage)), "--dataset_name", str(self.splits["train"]),
                "--output_dir", str(out), "--learning_rate", str(lr), "--seed", str(seed), "--max_steps", str(steps),
                "--per_device_train_batch_size", str(c.sequences), "--gradient_accumulation_steps", "1",
                "--save_strategy", "no", "--plot_curves", "false", "--report_to", "none", "--push_to_hub", "false",
                "--heldout_before", "false"]  # fmt: skip
        if STAGE_TRAINER[ROWS[row].stages[stage][0]] != "sft":
            argv += ["--generation_batch_size", str(c.sequences)]  # one generation per optimizer step, every row
        if model:
            argv += ["--model_name_or_path", str(model)]
        if scored_on is not None:
            argv += ["--heldout_dataset", str(scored_on), "--heldout_size", str(c.max_problems)]
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

    def max_new_tokens(self) -> int:
        return max(160, int(self.recipe.get("max_completion_length") or 0))

    # ---------------------------------------------------------------------------------------------------- jobs
    def jobs(self, phase: str) -> list[list[Job]]:
        """The phase's jobs, one list per array task (a test run's stages run in order in one task)."""
        c = self.config
        if phase == "base":
            splits = ["validation", "test", *[k for k in self.splits if k.startswith("ood-")]]
            return [[self.eval_job("base", self.base_model, self.runs / "base" / name, self.splits[name])]
                    for name in splits]  # fmt: skip
        if phase == "tune0":
            return [[self.tune_job(row, 0, lr)] for row in c.trained_rows for lr in c.grid]
        if phase == "tune1":
            return [[self.tune_job(row, 1, lr)] for row in c.two_stage_rows for lr in c.grid]
        if phase == "test":
            return [self.test_jobs(row, seed) for row in c.trained_rows for seed in c.test_seeds]
        raise ValueError(f"unknown phase {phase!r}; one of {PHASES}")

    def eval_job(self, row: str, model: str | Path, out: Path, data: Path, phase: str = "base") -> Job:
        argv = ["--model", str(model), "--data", str(data), "--output-dir", str(out), "--backend", "transformers",
                "--temperature", "0", "--max-new-tokens", str(self.max_new_tokens()), "--limit",
                str(self.config.max_problems)]  # fmt: skip
        return Job("eval", phase, row, out, argv, scored=True)

    def _tune_folder(self, row: str, stage: int, lr: float, earlier: list[float]) -> Path:
        prefix = "".join(f"-lr{rate(x)}" for x in earlier)  # a later stage starts from the earlier stages' choices
        return self.runs / "tune" / f"{row}{prefix}-stage{stage}-lr{rate(lr)}"

    def tune_folder(self, row: str, stage: int, lr: float) -> Path:
        return self._tune_folder(row, stage, lr, self.chosen(row, stage))

    def tune_job(self, row: str, stage: int, lr: float) -> Job:
        steps = stage_steps(self.config.steps, len(ROWS[row].stages))
        earlier = self.chosen(row, stage)
        model = self.tune_folder(row, stage - 1, earlier[-1]) if stage else None
        out = self.tune_folder(row, stage, lr)
        argv = self.train_argv(row, stage, lr, self.config.tuning_seed, out, steps[stage], model,
                               self.splits["validation"])  # fmt: skip
        return Job("train", f"tune{stage}", row, out, argv, scored=True)

    def test_jobs(self, row: str, seed: int) -> list[Job]:
        rates = self.chosen(row, len(ROWS[row].stages))
        steps = stage_steps(self.config.steps, len(rates))
        folder = self.runs / "test" / f"{row}-lr{'-'.join(rate(x) for x in rates)}-seed{seed}"
        jobs, model = [], None
        for stage, lr in enumerate(rates):
            last = stage == len(rates) - 1
            out = folder / f"stage{stage}"
            argv = self.train_argv(row, stage, lr, seed, out, steps[stage], model,
                                   self.splits["test"] if last else None)  # fmt: skip
            jobs.append(Job("train", "test", row, out, argv, scored=last))
            model = out
        oods = [name for name in self.splits if name.startswith("ood-")]
        jobs += [self.eval_job(row, model, model / name, self.splits[name], "test") for name in oods]
        return jobs

    # ----------------------------------------------------------------------------------------------- choices
    def tuning_scores(self, row: str, stage: int) -> dict[float, float]:
        """Validation accuracy of each finished tuning run of the row's stage."""
        scores = {}
        for lr in self.config.grid:
            path = self.tune_folder(row, stage, lr) / "heldout_accuracy.json"
            if path.is_file():
                scores[lr] = json.loads(path.read_text())["after"]
        return scores

    def chosen(self, row: str, stages: int) -> list[float]:
        """The chosen rates of the row's first `stages` stages; [`ArenaNotReady`] until their grids are scored."""
        rates: list[float] = []
        for stage in range(stages):
            scores = {}
            for lr in self.config.grid:
                path = self._tune_folder(row, stage, lr, rates) / "heldout_accuracy.json"
                if path.is_file():
                    scores[lr] = json.loads(path.read_text())["after"]
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
                    final = [job for job in jobs if job.kind == "train"][-1].out
                    runs.append(self._test_result(row, seed, picked["learning_rates"], final, base))
        return {"base": base, "tuning": tuning, "chosen": chosen, "runs": runs}

    def _base(self) -> dict[str, Any]:
        scores = {}
        for job in self.jobs("base"):
            summary = job[0].out / "summary.json"
            if summary.is_file():
                benchmarks = json.loads(summary.read_text())["benchmarks"]
                scores[job[0].out.name] = next(iter(benchmarks.values()))["accuracy"] / 100
        test = scores.get("test")
        ood = [v for k, v in scores.items() if k.startswith("ood-")]
        return {"row": "base", "accuracy": test, "final_accuracy": test,
                "validation_accuracy": scores.get("validation"),
                "final_ood_accuracy": statistics.mean(ood) if ood else None,
                "curve": [{"step": 0, "accuracy": test or 0.0}]}  # fmt: skip

    def _test_result(self, row, seed, rates, out: Path, base: dict) -> dict[str, Any]:
        final = json.loads((out / "heldout_accuracy.json").read_text())["after"]
        ood = [json.loads(p.read_text()) for p in sorted(out.glob("ood-*/summary.json"))]  # the OOD eval jobs
        ood_accuracy = [next(iter(s["benchmarks"].values()))["accuracy"] / 100 for s in ood]
        return {"row": row, "seed": seed, "learning_rates": rates, "final_accuracy": final,
                "final_train_entropy": _last_entropy(out),
                "final_ood_accuracy": statistics.mean(ood_accuracy) if ood_accuracy else None,
                "curve": [{"step": 0, "accuracy": base["accuracy"] or 0.0},
                          {"step": self.config.steps, "accuracy": final}]}  # fmt: skip


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
