# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
The data checks `srft train` runs before step 1 and `srft check` runs offline: the columns the trainer, its
demonstrations and its reward functions need, and the type of every demonstration, with the offending row.

They read column types from the Arrow schema, so a column of strings costs nothing whatever its length; only a column
that mixes types (datasets' `Json` feature) or holds lists is read row by row (seen: 46,000 rows of message lists in
about a second, `tests/test_data_checks.py` prints the time).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any


# What TRL passes to every reward function besides the data set's columns (GRPOTrainer._calculate_rewards).
TRL_REWARD_ARGUMENTS = {"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric"}
GRPO_TRAINERS = ("srft", "grpo")
SFT_TRAINERS = ("sft", "sft_kl")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # an owner/name Hub id (not a local path)


# Columns other data sets use for the ones this project reads (the message for a missing column suggests the rename).
SIMILAR_COLUMNS = {
    "solution": ("answer", "ground_truth", "gold", "target", "final_answer", "label"),
    "prompt": ("problem", "question", "query", "input", "messages"),
    "completion": ("response", "output", "demonstration", "target_text"),
}


class DataError(ValueError):
    """The training data cannot train the recipe; the message names the column, the row and the fix."""


def reward_columns(reward_funcs: Sequence[Callable]) -> dict[str, list[str]]:
    """
    Data set columns the reward functions take as required arguments, each with the functions that need it
    (`accuracy_reward(completions, solution, **kwargs)` needs `solution`).
    """
    needed: dict[str, list[str]] = {}
    for func in reward_funcs:
        target = getattr(func, "func", func)  # a GuardedReward wraps the user's function
        try:
            parameters = inspect.signature(target).parameters.values()
        except (TypeError, ValueError):  # builtins, some callables: nothing to read
            continue
        name = getattr(target, "__name__", type(target).__name__)
        for parameter in parameters:
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            if parameter.name in TRL_REWARD_ARGUMENTS or parameter.default is not parameter.empty:
                continue
            needed.setdefault(parameter.name, []).append(name)
    return needed


def required_columns(
    trainer: str, demo_column: str, reward_funcs: Sequence[Callable], demos: bool = True
) -> dict[str, str]:
    """Every column the run reads, with who reads it (`demos=False`: SRFT with `num_demos_per_group=0`)."""
    needed = {"prompt": "every trainer"}
    if trainer in SFT_TRAINERS or (trainer == "srft" and demos):
        needed[demo_column] = f"the demonstrations (`demo_column: {demo_column}`)"
    if trainer in GRPO_TRAINERS:
        for column, funcs in reward_columns(reward_funcs).items():
            needed.setdefault(column, "reward function " + ", ".join(f"`{f}`" for f in funcs))
    return needed


def check_columns(dataset: Any, required: dict[str, str], source: str) -> None:
    """Raises [`DataError`] naming each missing column, what needs it, and the columns there are."""
    missing = {column: why for column, why in required.items() if column not in dataset.column_names}
    if missing:
        lines = "; ".join(f"`{column}` (needed by {why})" for column, why in missing.items())
        renames = [
            f"`{have}` -> `{column}`"
            for column in missing
            for have in SIMILAR_COLUMNS.get(column, ())
            if have in dataset.column_names
        ]
        hint = (
            f" It has a similar column: rename {', '.join(renames)} (`Dataset.rename_column` in Python, or the key "
            "in each JSON line)."
            if renames
            else ""
        )
        raise DataError(
            f"{source} lacks column(s) {lines}; it has {dataset.column_names}.{hint} Add them (`srft prepare-data` "
            "writes `prompt`, `completion` and `solution`), set `demo_column`, or choose reward functions the data "
            "can feed."
        )


def _string_like(feature: Any) -> bool:
    from datasets import Value

    return isinstance(feature, Value) and feature.dtype in ("string", "large_string", "null")


def check_demo_types(dataset: Any, column: str, source: str, max_rows_named: int = 5) -> None:
    """
    Raises [`DataError`] when a demonstration is neither a string, a list of chat messages, nor a list of several,
    naming the offending rows (0-based, as in `dataset[i]`; the line of a `.jsonl` file is the row + 1).
    """
    from datasets import Value

    from .demos import normalize_demos

    feature = dataset.features[column]
    if _string_like(feature):  # one Arrow type for the whole column: nothing to read
        return
    if isinstance(feature, Value):  # int64, float, bool...: every non-null row is wrong
        values = dataset[column]
        bad = [i for i, value in enumerate(values) if value is not None][:max_rows_named]
        if bad:
            raise DataError(
                f"{source}: column `{column}` holds {feature.dtype} values (row {bad[0]}: {values[bad[0]]!r}): a "
                "demonstration must be a string, a list of chat messages, or a list of several. Fix the data or set "
                "`demo_column` to the column with the demonstrations."
            )
        return
    bad_rows, first_error = [], None
    for i, value in enumerate(dataset[column]):  # mixed types (datasets' Json feature) or lists: row by row
        try:
            normalize_demos(value, column)
        except ValueError as err:
            bad_rows.append(i)
            first_error = first_error or f"row {i}: {type(value).__name__} {value!r:.80}: {err}"
    if bad_rows:
        shown = ", ".join(map(str, bad_rows[:max_rows_named])) + (", ..." if len(bad_rows) > max_rows_named else "")
        raise DataError(
            f"{source}: {len(bad_rows)} row(s) of column `{column}` hold something that is not a demonstration "
            f"(rows {shown}; {first_error}). Fix those rows (a `.jsonl` file's line is the row + 1)."
        )


def check_training_data(
    dataset: Any, source: str, trainer: str, demo_column: str, reward_funcs: Sequence[Callable], demos: bool = True
) -> None:
    """The checks of this module for one training data set, as `srft train` runs them before step 1."""
    check_columns(dataset, required_columns(trainer, demo_column, reward_funcs, demos), source)
    if trainer in SFT_TRAINERS or (trainer == "srft" and demos):
        check_demo_types(dataset, demo_column, source)
