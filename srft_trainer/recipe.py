# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
A recipe's arguments: `srft train`'s own fields ([`SRFTScriptArguments`]), the config class of each trainer kind, and
the parse of a recipe YAML plus command-line overrides through TRL's `TrlParser`, with the recipe problems `srft check`
and `srft train` both report in the same words ([`recipe_problems`]). Imported by `train`, `check` and `console`; it
imports none of them.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml
from trl import ModelConfig, ScriptArguments, TrlParser

from .toy.world import TASKS as TOY_TASKS


TRAINERS = ("srft", "grpo", "sft", "sft_kl")
DATA_SUFFIXES = (".json", ".jsonl", ".parquet")


@dataclass
class SRFTScriptArguments(ScriptArguments):
    """
    Script arguments of `srft train` (on top of TRL's `ScriptArguments`: `dataset_name`, `dataset_config`,
    `dataset_train_split`, `dataset_test_split`, ...). `dataset_name` is a Hub id or a local json/jsonl/parquet
    file or directory.

    Args:
        trainer (`str`, *optional*, defaults to `"srft"`):
            `"srft"`, `"grpo"` (TRL's GRPOTrainer), `"sft"` (TRL's SFTTrainer on the demonstrations) or `"sft_kl"`
            ([`SFTKLTrainer`]: SFT plus `kl_coef` times the KL to the base model, the paper's SFT_KL).
        reward_funcs (`list[str]`, *optional*, defaults to `["accuracy"]`):
            Reward functions: registry names (`accuracy`, `think_format_reward`, ...) or dotted import paths.
        eval_dataset_name (`str`, *optional*):
            A separate evaluation data set (Hub id or local file); otherwise `dataset_test_split` when evaluating.
        model_config_overrides (`dict` or JSON `str`, *optional*):
            Model config values changed at load time, e.g. `{"rope_theta": 40000, "max_position_embeddings": 16384}`.
        toy_world (`str`, *optional*):
            Directory of the offline toy world (built there on first use): fills in the model, the data and the
            held-out set when they are not given.
        toy_task (`str`, *optional*, defaults to `"arithmetic"`):
            The toy world's task: `"arithmetic"`, `"expressions"` (sums of products with several correct
            derivations, imperfect demonstrations and an out-of-distribution split) or `"expressions_terse"` (the
            same problems with correct demonstrations in the base's style: the paper's regime); see
            [`srft_trainer.toy`].
        heldout_dataset (`str`, *optional*):
            A local file of held-out problems (`prompt`, `solution`) scored before and after training.
        heldout_fraction (`float`, *optional*):
            Instead of `heldout_dataset`: this fraction of the training rows (cut with a fixed seed, at least one) is
            held out, removed from training, and scored before and after training.
        heldout_before (`bool`, *optional*, defaults to `True`):
            Also score the held-out problems before training (`srft arena` scores the base model once instead).
        heldout_size (`int`, *optional*, defaults to `200`):
            How many held-out problems to score; `0` skips the held-out scoring.
        heldout_every (`int`, *optional*, defaults to `0`):
            Also score the held-out problems every this many optimizer steps (`0`: only before and after); the points
            are printed and saved as the `curve` of `heldout_accuracy.json` (what `srft arena` reads steps to a
            target from).
        plot_curves (`bool`, *optional*, defaults to `True`):
            Write `training_curves.png` (reward, entropy, w_sft, w_rl, demo NLL) into the output directory.
    """

    trainer: str = field(default="srft", metadata={"help": " | ".join(TRAINERS), "choices": list(TRAINERS)})
    reward_funcs: list[str] = field(default_factory=lambda: ["accuracy"], metadata={"help": "Reward functions."})
    eval_dataset_name: str | None = field(default=None, metadata={"help": "Separate evaluation data set."})
    model_config_overrides: str | None = field(default=None, metadata={"help": "JSON dict of config overrides."})
    toy_world: str | None = field(default=None, metadata={"help": "Toy world directory (built on first use)."})
    toy_task: str = field(default="arithmetic", metadata={"help": "Toy world task.", "choices": list(TOY_TASKS)})
    heldout_dataset: str | None = field(default=None, metadata={"help": "Held-out file scored before/after."})
    heldout_fraction: float | None = field(
        default=None, metadata={"help": "Fraction of the training rows held out (fixed seed) and scored."}
    )
    heldout_size: int = field(default=200, metadata={"help": "Held-out problems to score."})
    heldout_before: bool = field(default=True, metadata={"help": "Score the held-out problems before training too."})
    heldout_every: int = field(default=0, metadata={"help": "Also score the held-out problems every N steps."})
    plot_curves: bool = field(default=True, metadata={"help": "Write training_curves.png."})

    def __post_init__(self):
        if self.dataset_streaming:
            raise ValueError(
                "`dataset_streaming: true` is not supported by `srft train`, because it checks every training row "
                "(columns, demonstration types) before step 1 and cuts `heldout_fraction` from the rows, which a "
                "stream does not allow. Local .jsonl/.parquet files load memory-mapped without it; from Python, "
                "SRFTTrainer trains on an `IterableDataset` as GRPOTrainer does. Remove `dataset_streaming`."
            )
        if self.heldout_fraction is not None:
            if self.heldout_dataset:
                raise ValueError(
                    "Set one of `heldout_dataset` (a file of held-out problems) and `heldout_fraction` (rows cut from "
                    "the training file), not both."
                )
            if not 0.0 < self.heldout_fraction < 1.0:
                raise ValueError(
                    f"`heldout_fraction` must be between 0 and 1 (exclusive), got {self.heldout_fraction}."
                )
        if self.heldout_size < 0:
            raise ValueError(f"`heldout_size` must be >= 0 (0 skips the held-out scoring), got {self.heldout_size}.")
        if self.heldout_every < 0:
            raise ValueError(
                f"`heldout_every` must be >= 0 (0 scores only before and after training), got {self.heldout_every}."
            )


def config_class(trainer: str):
    """The TRL config class a trainer kind is parsed into."""
    if trainer == "srft":
        from .config import SRFTConfig

        return SRFTConfig
    if trainer == "grpo":
        from trl import GRPOConfig

        return GRPOConfig
    if trainer == "sft":
        from trl import SFTConfig

        return SFTConfig
    if trainer == "sft_kl":
        from .sft_kl import SFTKLConfig

        return SFTKLConfig
    raise ValueError(f"Unknown `trainer: {trainer}`: use one of {list(TRAINERS)}.")


def peek_trainer(argv: list[str]) -> str:
    """Reads `trainer` from the command line or the `--config` YAML, before the real parse (it picks the parser)."""
    for flag in ("--trainer",):
        if flag in argv:
            return argv[argv.index(flag) + 1]
        for arg in argv:
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    if "--config" in argv:
        path = Path(argv[argv.index("--config") + 1])
        if not path.is_file():
            raise FileNotFoundError(f"Recipe not found: --config {path}")
        recipe = yaml.safe_load(path.read_text()) or {}
        if not isinstance(recipe, dict):
            raise ValueError(f"Recipe {path} must be a YAML mapping of field: value.")
        return str(recipe.get("trainer", "srft"))
    return "srft"


def config_class_for_world_size(cls: type, world_size: int) -> type:
    """
    `cls` with its `world_size` fixed, for validating a recipe offline for a launch of `world_size` processes:
    `GRPOConfig.__post_init__` derives `generation_batch_size` from `world_size` (normally read from the running
    distributed state) and checks it against `num_generations`.
    """
    if world_size < 1:
        raise ValueError(f"The number of processes must be >= 1, got {world_size}.")
    return type(cls.__name__, (cls,), {"world_size": property(lambda self: world_size), "__module__": __name__})


def make_parser(trainer: str, world_size: int | None = None) -> TrlParser:
    cls = config_class(trainer)
    if world_size is not None:
        cls = config_class_for_world_size(cls, world_size)
    return TrlParser((SRFTScriptArguments, cls, ModelConfig))


def parse_args(argv: list[str], world_size: int | None = None) -> tuple[SRFTScriptArguments, Any, ModelConfig]:
    """
    Parses a recipe plus overrides; unknown keys fail here, before anything is loaded. `world_size` builds the config
    as it would be built in a launch of that many processes (for `srft check`); by default, this process's.
    """
    trainer = peek_trainer(argv)
    parser = make_parser(trainer, world_size)
    saved, sys.argv = sys.argv, [sys.argv[0], *argv]
    try:
        script_args, training_args, model_args = parser.parse_args_and_config()
    finally:
        sys.argv = saved
    script_args.trainer = trainer
    return script_args, training_args, model_args


def check_local_path(name: str | None, key: str) -> None:
    """A value that names a local data file must exist: fail now rather than ask the Hub for it."""
    if name and (name.endswith(DATA_SUFFIXES) or name.startswith((".", "/", "~"))) and not Path(name).exists():
        raise FileNotFoundError(f"`{key}` points to {name!r}, which does not exist.")


def load_split(name: str, split: str, config: str | None = None):
    from .data import load_source

    return load_source(name, split=split, name=config)


def config_overrides(script_args: SRFTScriptArguments) -> dict[str, Any]:
    value = script_args.model_config_overrides
    if value is None or isinstance(value, dict):
        return dict(value or {})
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as err:
        raise ValueError(f"`model_config_overrides` must be a JSON object, got {value!r}: {err}") from err
    if not isinstance(parsed, dict):
        raise ValueError(f"`model_config_overrides` must be a JSON object, got {value!r}.")
    return parsed


# TrlParser reads an `env:` mapping (environment variables to set) from the YAML besides the dataclass fields.
EXTRA_KEYS = ("env",)


def known_keys(trainer: str) -> set[str]:
    """Every key a recipe for `trainer` may set: `srft train`'s fields, the trainer's config, TRL's `ModelConfig`."""
    return {f.name for cls in (SRFTScriptArguments, config_class(trainer), ModelConfig) for f in fields(cls)}


def unknown_key_problems(raw: dict[str, Any], overrides: list[str], trainer: str) -> list[str]:
    """One message per unknown key of the recipe or the command line, with the closest known key."""
    known = known_keys(trainer)
    flags = [arg[2:].split("=", 1)[0] for arg in overrides if arg.startswith("--")]
    problems = []
    for key in [*raw, *flags]:
        if key in known or key in EXTRA_KEYS:
            continue
        hint = difflib.get_close_matches(key, sorted(known), n=1)
        problems.append(
            f"unknown key `{key}` for trainer {trainer}" + (f" (did you mean `{hint[0]}`?)" if hint else "")
        )
    return problems


def rejected_value_problem(argparse_stderr: str, overrides: list[str]) -> str:
    """What argparse said when it rejected a value (TrlParser passes the recipe's values through it too)."""
    said = argparse_stderr.strip().splitlines()
    reason = said[-1].split("error: ", 1)[-1] if said else "no reason given"
    flag = re.search(r"argument (--[\w.-]+)", reason)
    where = "on the command line" if flag and flag.group(1) in overrides else "in the recipe"
    return f"a value {where} was rejected: {reason}"


def recipe_problems(argv: list[str], parse: bool = True) -> list[str]:
    """
    The problems of `--config RECIPE` plus overrides that stop a parse, in the words `srft check` uses: a missing or
    malformed recipe, an unknown trainer kind, unknown keys (with the closest known one), a value argparse rejects, a
    config the trainer's config class refuses (with `parse`). Empty when [`parse_args`] will succeed.
    """
    overrides = list(argv)
    raw: dict[str, Any] = {}
    if "--config" in argv:
        i = argv.index("--config")
        path = Path(argv[i + 1]) if i + 1 < len(argv) else None
        overrides = argv[:i] + argv[i + 2 :]
        if path is None or not path.is_file():
            return [f"no such recipe file: {path}"]
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            return [f"not valid YAML: {err}"]
        if not isinstance(raw, dict):
            return ["a recipe must be a YAML mapping of `key: value`"]
    trainer = peek_trainer(argv)
    if trainer not in TRAINERS:
        return [f"`trainer: {trainer}` is not one of {list(TRAINERS)}"]
    problems = unknown_key_problems(raw, overrides, trainer)
    if problems or not parse:
        return problems
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            parse_args(argv)
    except SystemExit:
        return [rejected_value_problem(stderr.getvalue(), overrides)]
    except (ValueError, TypeError) as err:
        return [str(err)]
    return []
