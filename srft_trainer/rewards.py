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
