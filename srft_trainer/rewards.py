# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""Reward functions by name (a small registry) or by dotted import path, as TRL's scripts resolve them."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable


def _registry() -> dict[str, Callable]:
    from trl.rewards import reasoning_accuracy_reward, think_format_reward

    from .grading import accuracy_reward

    return {
        # math-verify on the last \boxed{} after </think>, robust off the main thread (srft_trainer.grading)
        "accuracy": accuracy_reward,
        "accuracy_reward": accuracy_reward,
        "reasoning_accuracy_reward": reasoning_accuracy_reward,
        "think_format_reward": think_format_reward,
    }


REWARD_NAMES = ("accuracy", "accuracy_reward", "reasoning_accuracy_reward", "think_format_reward")


def resolve_reward_funcs(names: list[str]) -> list[Callable]:
    """
    Turns reward names into callables.

    Args:
        names (`list[str]`):
            Registry names (`"accuracy"`, `"think_format_reward"`, ...) or dotted import paths
            (`"my_pkg.rewards.fn"`, resolved from the current directory too).

    Returns:
        `list[Callable]`: the reward functions, in order.

    Raises:
        `ValueError`: a name is neither in the registry nor an importable `module.attribute` path.
    """
    if not names:
        raise ValueError(f"`reward_funcs` is empty: name at least one of {list(REWARD_NAMES)} or a dotted path.")
    registry = _registry()
    funcs = []
    for name in names:
        if name in registry:
            funcs.append(registry[name])
            continue
        if "." not in name:
            raise ValueError(
                f"Unknown reward function {name!r} in `reward_funcs`: use one of {list(registry)} or a dotted import "
                "path such as `my_pkg.rewards.my_reward`."
            )
        module_path, attr = name.rsplit(".", 1)
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_path)
        except ImportError as err:
            raise ValueError(f"Cannot import module {module_path!r} for reward function {name!r}: {err}") from err
        if not callable(getattr(module, attr, None)):
            raise ValueError(f"Module {module_path!r} has no callable {attr!r} (reward function {name!r}).")
        funcs.append(getattr(module, attr))
    return funcs


def reward_totals(
    reward_funcs: list[Callable],
    prompts: list,
    completions: list[str],
    columns: dict[str, list],
    reward_weights: list[float] | None = None,
) -> list[float | None]:
    """
    The weighted total reward of each completion, as TRL calls reward functions: the data set's other `columns` (at
    least `solution`, the gold answer) as keyword arguments, and a conversational prompt's completion as an assistant
    message. `None` where no function could score it. Scoring counts a completion correct when its total is > 0
    (`srft eval --reward`, `srft train`'s held-out score with the recipe's `reward_funcs`).
    """
    weights = reward_weights or [1.0] * len(reward_funcs)
    if len(weights) != len(reward_funcs):
        raise ValueError(f"{len(weights)} reward_weights for {len(reward_funcs)} reward_funcs")
    texts = [[{"role": "assistant", "content": c}] if isinstance(p, list) else c for p, c in zip(prompts, completions)]
    totals: list[float | None] = [None] * len(completions)
    for func, weight in zip(reward_funcs, weights):
        scores = func(prompts=list(prompts), completions=texts, **{k: list(v) for k, v in columns.items()})
        for i, score in enumerate(scores):
            if score is not None:
                totals[i] = (totals[i] or 0.0) + weight * float(score)
    return totals
