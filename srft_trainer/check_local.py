# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
The local part of `srft check` ([`srft_trainer.check`]): paths that exist or are Hub ids, a local model's config,
context and chat template, and a local data file (the checks `srft train` runs before step 1, then lengths measured on
a sample of rows).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data_checks import GRPO_TRAINERS, HUB_ID


if TYPE_CHECKING:
    from .check_report import CheckReport


def resolve_local(
    value: str | None, key: str, producers: dict[str, str], report: CheckReport, kind: str
) -> Path | str | None:
    """A local path that exists, the Hub id string, or `None` (not checkable here: noted or reported)."""
    if value is None:
        return None
    path = Path(value).expanduser()
    if path.exists():
        return path
    made_by = producers.get(os.path.normpath(value))
    if made_by:
        report.notes.append(f"{key} {value} does not exist yet: {made_by}. Not checked.")
        return None
    looks_local = value.startswith((".", "/", "~")) or value.endswith((".json", ".jsonl", ".parquet"))
    if HUB_ID.match(value) and not looks_local:
        report.notes.append(f"{key} {value} is a Hub id: {kind} not checked offline")
        return value
    report.problem("model" if key == "model_name_or_path" else "data", f"`{key}` {value!r} does not exist.")
    return None


def check_model(report: CheckReport, model_dir: Path, overrides: dict, args: Any, trainer: str):
    """Config overrides, context length and chat template of a local model; returns its tokenizer (or None)."""
    from transformers import AutoConfig, AutoTokenizer

    from .modeling import override_config

    if not (model_dir / "config.json").exists():
        report.problem("model", f"`model_name_or_path` {model_dir} has no config.json: not a model folder.")
        return None
    config = AutoConfig.from_pretrained(model_dir)
    try:
        config = override_config(config, overrides)
    except ValueError as err:
        report.problem("overrides", str(err))
    context = getattr(config, "max_position_embeddings", None)
    needed = args.max_completion_length if trainer in GRPO_TRAINERS else args.max_length
    if context and needed and needed > context:
        what = "max_completion_length" if trainer in GRPO_TRAINERS else "max_length"
        report.problem(
            "context",
            f"`{what}` ({needed}) exceeds the model's context ({context} positions"
            + (" after model_config_overrides" if overrides else "")
            + "): raise `max_position_embeddings` (and `rope_theta`) with `model_config_overrides`, or lower it.",
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError) as err:
        report.notes.append(f"no tokenizer in {model_dir} ({err}): chat template and lengths not checked")
        return None
    if not getattr(tokenizer, "chat_template", None) and not getattr(args, "chat_template_path", None):
        report.problem(
            "chat_template",
            f"the tokenizer in {model_dir} has no chat template, needed for conversational prompts: add one "
            "(tokenizer_config.json / chat_template.jinja) or set `chat_template_path`.",
        )
        return None
    report.facts.append(("model", f"{model_dir} ({context} positions, chat template present)"))
    return tokenizer


def eos_token_ids(model_dir: Path, tokenizer: Any) -> list[int]:
    """The ids that end a completion, as GRPOTrainer collects them: the generation config's plus the tokenizer's."""
    from transformers import GenerationConfig

    try:
        ids = GenerationConfig.from_pretrained(model_dir).eos_token_id
    except OSError:  # no generation_config.json
        ids = None
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids = [tokenizer.eos_token_id, *ids]
    return ids


def sample_rows_of(dataset, rows: int):
    step = max(1, len(dataset) // rows)
    return dataset.select(range(0, len(dataset), step)[:rows])


def check_data(
    report: CheckReport,
    data_file: Path,
    model_dir: Path | None,
    script_args: Any,
    args: Any,
    trainer: str,
    tokenizer: Any,
    sample_rows: int,
    tolerance: float,
    reward_funcs: list,
) -> int | None:
    """
    The data checks `srft train` runs (columns, every demonstration's type: [`srft_trainer.data_checks`]) on a local
    data file, then demonstration and prompt lengths on a sample; returns the longest sampled prompt.
    """
    from .data_checks import DataError, check_training_data
    from .demos import DemoTokenizer, normalize_demos
    from .recipe import load_split

    try:
        dataset = load_split(str(data_file), script_args.dataset_train_split, script_args.dataset_config)
    except Exception as err:  # noqa: BLE001 - any loading failure is the recipe's data problem
        report.problem("data", f"`dataset_name` {data_file} cannot be loaded: {type(err).__name__}: {err}")
        return None
    demo_column = getattr(args, "demo_column", "completion")
    try:
        check_training_data(
            dataset,
            str(data_file),
            trainer,
            demo_column,
            reward_funcs,
            demos=getattr(args, "num_demos_per_group", 1) > 0,
        )
    except DataError as err:
        report.problem("data", str(err))
        return None
    sample = sample_rows_of(dataset, sample_rows)
    report.facts.append(("data", f"{data_file}: {len(dataset):,} rows; {len(sample)} sampled"))
    if tokenizer is None:
        report.notes.append("demonstration and prompt lengths not measured: no local tokenizer")
        return None

    def render(messages, add_generation_prompt):
        out = tokenizer.apply_chat_template(
            messages, tokenize=True, add_generation_prompt=add_generation_prompt, return_dict=True
        )
        return list(out["input_ids"])

    demo_tokenizer = DemoTokenizer(tokenizer, eos_token_ids(model_dir, tokenizer), render)
    limit = args.max_completion_length if trainer in GRPO_TRAINERS else args.max_length
    longest_prompt, lengths, too_long = 0, [], 0
    for row in sample:
        prompt = row["prompt"]
        if isinstance(prompt, list):
            prompt_ids = render(prompt, True)
        else:
            prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        longest_prompt = max(longest_prompt, len(prompt_ids))
        if trainer == "grpo":
            continue
        for demo in normalize_demos(row.get(demo_column), demo_column):
            n = len(demo_tokenizer(prompt, prompt_ids, demo))
            n = n if trainer == "srft" else n + len(prompt_ids)  # SFT counts prompt + completion
            lengths.append(n)
            too_long += n > limit
    if not lengths:
        return longest_prompt
    what = "demonstration tokens" if trainer == "srft" else "prompt + demonstration tokens"
    key = "max_completion_length" if trainer == "srft" else "max_length"
    report.facts.append(
        ("demo lengths", f"{what}: max {max(lengths):,}, mean {sum(lengths) / len(lengths):,.0f}; {key} {limit:,}")
    )
    if too_long:
        fraction = too_long / len(lengths)
        if trainer == "srft":
            fate = f"demo_too_long={args.demo_too_long}: " + (
                "their slots go to rollouts" if args.demo_too_long == "drop" else "they are cut"
            )
        else:
            fate = "they are truncated"
        message = f"{too_long} of {len(lengths)} sampled demonstrations exceed {key} ({limit:,}); {fate}"
        if fraction > tolerance:
            report.problem(
                "demo_length",
                f"{message}. More than {tolerance:.0%}: raise `{key}` or re-run `srft prepare-data` with "
                "`--max-demo-tokens`.",
            )
        else:
            report.notes.append(message)
    return longest_prompt
