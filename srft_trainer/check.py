# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
`srft check --config recipe.yaml [--num-processes N --num-machines M]`: validates a recipe offline, without loading
weights or reaching the Hub, for a launch of N processes on M machines.

It parses the recipe as `srft train` does, with the config built for that world size (TRL derives the generation batch
from it), then checks what a paper-scale launch would otherwise discover after minutes or hours: batch divisibility,
demonstration slots, vLLM settings, the model's config overrides, context length and chat template (local models),
data columns and demonstration lengths (local data, on a sample of rows). What needs the Hub is skipped with a note.
It prints the effective global batch, rollouts and tokens per step, and exits 0 on pass, 1 with the named problems.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import yaml

from .check_local import check_data, check_model, resolve_local
from .check_report import CheckReport
from .data_checks import GRPO_TRAINERS, SFT_TRAINERS


def _fmt(n: float) -> str:
    return f"{int(n):,}" if float(n).is_integer() else f"{n:,.2f}"


def _header_comments(text: str) -> str:
    """The recipe's comment text, continuation backslashes joined, for finding the commands it documents."""
    comments = [line.strip()[1:].strip() for line in text.splitlines() if line.strip().startswith("#")]
    return re.sub(r"\s*\\\s+", " ", " ".join(comments))


def prepared_outputs(recipe_text: str) -> list[str]:
    """Paths the recipe's header says `srft prepare-data --output PATH` writes (data that is made, not missing)."""
    text = _header_comments(recipe_text)
    outputs = []
    for match in re.finditer(r"srft prepare-data\b", text):
        found = re.search(r"--output[= ](\S+)", text[match.end() : match.end() + 1000])
        if found:
            outputs.append(os.path.normpath(found.group(1)))
    return outputs


def sibling_outputs(recipe: Path) -> dict[str, str]:
    """`output_dir` of every other recipe in the same folder -> that recipe (models one recipe trains for another)."""
    outputs = {}
    for other in sorted(recipe.parent.glob("*.yaml")):
        if other.resolve() == recipe.resolve():
            continue
        try:
            body = yaml.safe_load(other.read_text()) or {}
        except yaml.YAMLError:
            continue
        if isinstance(body, dict) and body.get("output_dir"):
            outputs[os.path.normpath(str(body["output_dir"]))] = str(other)
    return outputs


def _problem_name(message: str) -> str:
    """Names a config-construction error by what it is about."""
    lowered = message.lower()
    if "num_demos_per_group" in lowered:
        return "demos"
    if "divisible" in lowered or "generation_batch_size" in lowered or "steps_per_generation" in lowered:
        return "batch"
    if "vllm" in lowered:
        return "vllm"
    return "config"


def _parse(path: Path, num_processes: int, overrides: list[str], report: CheckReport):
    """The recipe's three argument objects for a launch of `num_processes`, or `None` with the problem reported."""
    from .recipe import parse_args, rejected_value_problem

    stderr = io.StringIO()
    try:
        # bf16 support is a question about the launch machine's GPUs, not the recipe: do not ask this machine.
        with (
            mock.patch("transformers.training_args.is_torch_bf16_gpu_available", return_value=True),
            contextlib.redirect_stderr(stderr),
        ):
            parsed = parse_args(["--config", str(path), *overrides], world_size=num_processes)
    except (ValueError, TypeError) as err:
        report.problem(_problem_name(str(err)), str(err))
        return None
    except SystemExit:  # argparse rejected a value (TrlParser passes the recipe's values through it too)
        report.problem("keys", rejected_value_problem(stderr.getvalue(), overrides))
        return None
    if parsed[1].bf16 and not parsed[1].use_cpu:
        report.notes.append("bf16: needs Ampere or newer GPUs on the launch machines (not checked here)")
    return parsed


def _batch_facts(report: CheckReport, trainer: str, args: Any, num_processes: int) -> dict[str, float]:
    """Prints the effective batch; returns the numbers the token bound needs."""
    per_device, accumulation = args.per_device_train_batch_size, args.gradient_accumulation_steps
    sequences = per_device * accumulation * num_processes
    how = f"{per_device} per device x {accumulation} accumulation x {num_processes} processes"
    if trainer in SFT_TRAINERS:
        report.facts.append(("global batch", f"{_fmt(sequences)} demonstrations per optimizer step ({how})"))
        return {"sequences": sequences}
    group = args.num_generations
    demos = getattr(args, "num_demos_per_group", 0) if trainer == "srft" else 0
    prompts = sequences / group
    report.facts.append(
        ("global batch", f"{_fmt(prompts)} prompts x {group} = {_fmt(sequences)} sequences per optimizer step ({how})")
    )
    rollouts = sequences - prompts * demos
    if demos:
        text = (
            f"{_fmt(rollouts)} on-policy rollouts + {_fmt(prompts * demos)} demonstration slots per step "
            f"({group - demos} + {demos} per group; a slot without a usable demonstration gets a rollout)"
        )
    else:
        text = f"{_fmt(rollouts)} on-policy rollouts per step ({group} per group, no demonstrations)"
    report.facts.append(("rollouts", text))
    per_generation = args.steps_per_generation / accumulation
    report.facts.append(
        (
            "generation",
            f"{_fmt(args.generation_batch_size)} sequences generated together every {args.steps_per_generation} "
            f"micro-batches ({_fmt(per_generation)} optimizer step(s) per generation)",
        )
    )
    return {"sequences": sequences}


def _check_vllm(report: CheckReport, trainer: str, args: Any, overrides: dict, num_processes: int, machines: int):
    if trainer not in GRPO_TRAINERS:
        return
    if not args.use_vllm:
        if not args.use_cpu:
            report.notes.append("generation with transformers (use_vllm: false): slow for long completions")
        return
    mode, tp = args.vllm_mode, args.vllm_tensor_parallel_size
    if args.use_cpu:
        from .vllm_colocate import VLLM_CPU_INSTALL, vllm_on_cpu

        if mode == "server":
            report.problem(
                "vllm",
                "`vllm_mode: server` with `use_cpu: true`: TRL's weight sync to a vLLM server needs CUDA (NCCL); use "
                "`vllm_mode: colocate` on CPU.",
            )
            return
        if not vllm_on_cpu():
            report.problem(
                "vllm",
                "`use_vllm: true` with `use_cpu: true` needs vLLM's CPU build, which is not installed here: "
                f"`{VLLM_CPU_INSTALL}` (README, 'Generation with vLLM'), or drop one of the two.",
            )
            return
        report.notes.append(
            "use_vllm on CPU: vLLM's CPU build is installed; the colocated engine gets the policy's dtype, plain "
            "weights for TRL's sync and a KV cache sized to the batch (VLLM_CPU_KVCACHE_SPACE overrides it)"
        )
    if mode == "colocate":
        if num_processes % tp:
            report.problem(
                "vllm",
                f"`vllm_tensor_parallel_size` ({tp}) must divide the number of processes ({num_processes}): TRL "
                "groups colocated processes into tensor-parallel groups.",
            )
        elif (num_processes // machines) % tp:
            report.problem(
                "vllm",
                f"`vllm_tensor_parallel_size` ({tp}) must divide the processes per machine "
                f"({num_processes // machines}): a tensor-parallel group must not span machines.",
            )
        util = args.vllm_gpu_memory_utilization
        if args.use_cpu:
            report.facts.append(("vllm", f"colocate on CPU, tensor parallel {tp}"))
        elif not 0 < util < 1:
            report.problem("vllm", f"`vllm_gpu_memory_utilization` must be in (0, 1), got {util}.")
        else:
            sleep = "with sleep mode (weights and KV cache released during the training step)"
            if not args.vllm_enable_sleep_mode:
                sleep = "without sleep mode: that memory stays taken during the training step"
            report.facts.append(("vllm", f"colocate, tensor parallel {tp}, {util:.0%} of each GPU for vLLM, {sleep}"))
        if overrides:
            report.notes.append(
                "model_config_overrides reach the colocated vLLM engine as `hf_overrides` (srft train)"
            )
    elif mode == "server":
        report.facts.append(
            ("vllm", "server: start `trl vllm-serve` separately (scripts/train.slurm VLLM_MODE=server)")
        )
        ignored = [
            name
            for name, unused in (
                ("vllm_tensor_parallel_size", tp != 1),
                ("vllm_gpu_memory_utilization", args.vllm_gpu_memory_utilization != 0.3),
                ("vllm_enable_sleep_mode", args.vllm_enable_sleep_mode),
            )
            if unused
        ]
        if ignored:
            report.notes.append(f"server mode ignores {', '.join(ignored)}: pass them to the server instead")
        if overrides:
            report.notes.append(
                "server mode: start the server with `--hf-overrides` for model_config_overrides "
                "(scripts/train.slurm derives it with srft_trainer.modeling.vllm_hf_overrides)"
            )
    else:
        report.problem("vllm", f"`vllm_mode` must be 'colocate' or 'server', got {mode!r}.")
    if trainer == "srft" and getattr(args, "num_demos_per_group", 0) and (mode == "server" or tp > 1):
        report.notes.append(
            "vLLM server mode / tensor parallelism: every group slot is generated, then the demonstration slots are "
            "replaced (TRL needs the same number of prompts on every process)"
        )


def check_recipe(
    recipe: str | Path,
    num_processes: int = 1,
    num_machines: int = 1,
    sample_rows: int = 256,
    tolerance: float = 0.05,
    overrides: list[str] | None = None,
) -> CheckReport:
    """
    Validates a recipe offline for a launch of `num_processes` processes on `num_machines` machines.

    Args:
        recipe (`str` or `Path`): the recipe YAML (relative paths inside it are taken from the current directory).
        num_processes (`int`, *optional*, defaults to `1`): processes of the launch (GPUs in all).
        num_machines (`int`, *optional*, defaults to `1`): machines of the launch.
        sample_rows (`int`, *optional*, defaults to `256`): rows of a local data file whose lengths are measured.
        tolerance (`float`, *optional*, defaults to `0.05`): fraction of sampled demonstrations allowed over the
            length limit before it is a problem (below, a note).
        overrides (`list[str]`, *optional*): command-line overrides, as given to `srft train` after `--config`
            (e.g. `["--gradient_accumulation_steps", "32"]`).

    Returns:
        [`CheckReport`]: facts, notes and named problems.
    """
    path = Path(recipe)
    report = CheckReport(str(path))
    if not path.is_file():
        report.problem("recipe", f"no such recipe file: {path}")
        return report
    text = path.read_text()
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        report.problem("recipe", f"not valid YAML: {err}")
        return report
    if not isinstance(raw, dict):
        report.problem("recipe", "a recipe must be a YAML mapping of `key: value`")
        return report
    if num_processes < 1 or num_machines < 1 or num_processes % num_machines:
        report.problem(
            "world",
            f"--num-processes ({num_processes}) must be a positive multiple of --num-machines ({num_machines})",
        )
        return report

    from .recipe import TRAINERS, config_overrides, peek_trainer, unknown_key_problems

    overrides = list(overrides or [])
    trainer = peek_trainer(["--config", str(path), *overrides])
    if trainer not in TRAINERS:
        report.problem("keys", f"`trainer: {trainer}` is not one of {list(TRAINERS)}")
        return report
    unknown = unknown_key_problems(raw, overrides, trainer)  # the words `srft train` uses too
    for message in unknown:
        report.problem("keys", message)
    if unknown:
        return report

    parsed = _parse(path, num_processes, overrides, report)
    if parsed is None:
        return report
    script_args, args, model_args = parsed
    per_machine = num_processes // num_machines
    report.facts.append(("trainer", f"{trainer} ({type(args).__name__})"))
    report.facts.append(
        ("world", f"{num_processes} processes on {num_machines} machine(s), {per_machine} per machine")
    )
    try:
        overrides = config_overrides(script_args)
    except ValueError as err:
        report.problem("overrides", str(err))
        overrides = {}

    from .callbacks import output_dir_problem
    from .checkpoints import ignored_save_settings

    problem = output_dir_problem(args.output_dir)
    if problem:
        report.problem("output_dir", problem)
    report.notes.extend(ignored_save_settings(args))
    batch = _batch_facts(report, trainer, args, num_processes)
    _check_vllm(report, trainer, args, overrides, num_processes, num_machines)

    reward_funcs: list = []
    if trainer in GRPO_TRAINERS:
        from .rewards import resolve_reward_funcs

        try:
            reward_funcs = resolve_reward_funcs(script_args.reward_funcs)
        except (ValueError, ImportError, AttributeError) as err:
            report.problem("rewards", str(err))

    if script_args.toy_world:  # check the world's model and data (before it is built: the shipped base model)
        from .toy.world import toy_world_paths

        toy_model, toy_data = toy_world_paths(script_args.toy_world, script_args.toy_task)
        model_args.model_name_or_path = model_args.model_name_or_path or str(toy_model)
        if not script_args.dataset_name and toy_data is None:
            report.notes.append(
                f"toy_world {script_args.toy_world}: its data is built by the first `srft train`; data not checked"
            )
        script_args.dataset_name = script_args.dataset_name or (str(toy_data) if toy_data else None)
    elif not model_args.model_name_or_path:
        report.problem("model", "no model: set `model_name_or_path` (a Hub id or a local folder) or `toy_world`")
    elif not script_args.dataset_name:
        report.problem("data", "no data: set `dataset_name` (a Hub id or a local file) or `toy_world`")

    made_models = {out: f"the output of {name}; run that first" for out, name in sibling_outputs(path).items()}
    what = "chat template, context length" + (" and model_config_overrides keys" if overrides else "")
    model = resolve_local(model_args.model_name_or_path, "model_name_or_path", made_models, report, what)
    tokenizer = check_model(report, model, overrides, args, trainer) if isinstance(model, Path) else None

    made_data = {
        out: "made by the `srft prepare-data` command in the recipe's header" for out in prepared_outputs(text)
    }
    data = resolve_local(script_args.dataset_name, "dataset_name", made_data, report, "columns and demo lengths")
    longest_prompt = None
    if isinstance(data, Path):
        model_dir = model if isinstance(model, Path) else None
        longest_prompt = check_data(
            report, data, model_dir, script_args, args, trainer, tokenizer, sample_rows, tolerance, reward_funcs
        )
    for key in ("eval_dataset_name", "heldout_dataset"):
        resolve_local(getattr(script_args, key), key, made_data, report, "not checked")

    sequences = batch["sequences"]
    if trainer in GRPO_TRAINERS:
        completion = args.max_completion_length
        if longest_prompt:
            bound = f"<= {_fmt(sequences * (longest_prompt + completion))} tokens per step"
            how = f"{_fmt(sequences)} x ({longest_prompt:,} longest sampled prompt + {completion:,} completion)"
        else:
            bound = f"<= {_fmt(sequences * completion)} completion tokens per step"
            how = f"{_fmt(sequences)} x {completion:,}; prompt tokens not measured"
        report.facts.append(("tokens", f"{bound} ({how})"))
    elif args.max_length:
        report.facts.append(
            ("tokens", f"<= {_fmt(sequences * args.max_length)} tokens per step ({_fmt(sequences)} x max_length)")
        )
    if args.max_steps and args.max_steps > 0:
        report.facts.append(("length", f"{args.max_steps:,} optimizer steps"))
    else:
        report.facts.append(("length", f"{_fmt(args.num_train_epochs)} epochs"))
    if args.push_to_hub:
        repo = args.hub_model_id or Path(args.output_dir).name
        report.facts.append(("hub", f"pushes to {repo} (hub_strategy: {args.hub_strategy.value})"))
        from .hub import hub_token_status

        configured, text = hub_token_status(args.hub_token)
        if configured:
            report.facts.append(("hub token", text))
        else:  # a note, not a problem: a recipe is often checked on a machine other than the one that trains
            report.notes.append(text)
    return report


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="srft check",
        description="Validate a training recipe offline (no weights loaded, no Hub access) for a launch of "
        "--num-processes processes on --num-machines machines; print its effective batch and budget. Further "
        "--key value pairs override the recipe, as with `srft train`.",
    )
    parser.add_argument("--config", required=True, help="The recipe YAML.")
    parser.add_argument("--num-processes", type=int, default=1, help="Processes of the launch (GPUs in all).")
    parser.add_argument("--num-machines", type=int, default=1, help="Machines of the launch.")
    parser.add_argument("--sample-rows", type=int, default=256, help="Rows of local data whose lengths are measured.")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.05,
        help="Fraction of sampled demonstrations allowed over the length limit before it is a problem.",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args, overrides = make_parser().parse_known_args(argv)
    report = check_recipe(
        args.config, args.num_processes, args.num_machines, args.sample_rows, args.tolerance, overrides
    )
    print(report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
