# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""Reward functions that cannot kill or stall a run: failures become unscorable rows, counted and warned once."""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import math
from collections import Counter
from collections.abc import Callable
from typing import Any


logger = logging.getLogger(__name__)
_FAILED = object()  # a row whose reward raised (already counted)


class GuardedReward:
    """
    Wraps a synchronous TRL reward function `f(prompts, completions, completion_ids, **kwargs) -> list[float | None]`.

    - An exception in the batch call is retried row by row; rows that still raise score `None`.
    - `None`, NaN and non-numeric values score `None` (TRL's "unscorable": if every reward function gives `None` for a
      row, its advantage is 0 and it is left out of the group baseline).
    - A call that takes longer than `timeout` seconds scores `None` for the whole batch; the worker thread cannot be
      killed and finishes in the background (math-verify, the usual culprit, is bounded inside
      `srft_trainer.grading` already).
    - A wrong number of rewards raises, as in TRL: that is a bug in the function, not a bad row.

    Each kind of failure is counted once per row in `failures` and warned about once, with the offending example;
    `last_failure` keeps the latest, for the error that stops a run without reward signal ([`RewardSignalWatch`]).
    """

    def __init__(self, func: Callable, timeout: float | None = None):
        self.func = func
        self.timeout = timeout
        self.failures: Counter[str] = Counter()
        self.last_failure: str | None = None
        self._warned: set[str] = set()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1) if timeout else None
        functools.update_wrapper(self, func)

    def _warn(self, kind: str, detail: str) -> None:
        self.last_failure = detail
        if kind not in self._warned:
            self._warned.add(kind)
            logger.warning(
                "Reward function %r: %s. The row(s) are scored as unscorable (None) and counted in "
                "`srft/reward_failures`; this warning is shown once.",
                getattr(self.func, "__name__", self.func),
                detail,
            )

    def _call(self, kwargs: dict[str, Any]) -> list:
        if self._pool is None:
            return list(self.func(**kwargs))
        future = self._pool.submit(self.func, **kwargs)
        try:
            return list(future.result(timeout=self.timeout))
        except concurrent.futures.TimeoutError:
            # The stuck thread keeps the pool's only worker: start a fresh pool for the next call.
            self._pool.shutdown(wait=False)
            self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
            raise TimeoutError(f"no result after {self.timeout:g} s") from None

    def __call__(self, prompts: list, completions: list, completion_ids: list, **kwargs: Any) -> list[float | None]:
        n = len(completions)
        batch = dict(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)
        try:
            values = self._call(batch)
        except TimeoutError as err:
            self.failures["timeout"] += n
            self._warn("timeout", f"{err} on a batch of {n} (first completion: {completions[0]!r:.300})")
            return [None] * n
        except Exception:  # noqa: BLE001 - isolate the failing row(s) below
            values = [self._one_row(batch, i) for i in range(n)]
        if len(values) != n:
            raise ValueError(f"Reward function {self.__name__!r} returned {len(values)} rewards for {n} completions.")
        return [None if v is _FAILED else self._clean(v, completions[i]) for i, v in enumerate(values)]

    def _one_row(self, batch: dict[str, Any], i: int) -> Any:
        row = {
            k: ([v[i]] if isinstance(v, list) and len(v) == len(batch["completions"]) else v) for k, v in batch.items()
        }
        try:
            return self._call(row)[0]
        except Exception as err:  # noqa: BLE001
            self.failures["exception"] += 1
            self._warn(
                "exception", f"raised {type(err).__name__}: {err} on completion {batch['completions'][i]!r:.300}"
            )
            return _FAILED  # counted here, not again as a None

    def _clean(self, value: Any, completion: Any) -> float | None:
        if value is None:
            self.failures["none"] += 1
            self._warn("none", f"returned None for completion {completion!r:.300}")
            return None
        try:
            value = float(value)
        except (TypeError, ValueError):
            self.failures["not_a_number"] += 1
            self._warn("not_a_number", f"returned {value!r}, not a number")
            return None
        if math.isnan(value):
            self.failures["nan"] += 1
            self._warn("nan", f"returned NaN for completion {completion!r:.300}")
            return None
        return value


def guard_reward_funcs(reward_funcs: Any, timeout: float | None) -> Any:
    """Wraps plain synchronous callables in [`GuardedReward`]; model ids, models and async functions pass through."""
    import inspect

    if reward_funcs is None:
        return None
    funcs = reward_funcs if isinstance(reward_funcs, list) else [reward_funcs]
    wrapped = [
        GuardedReward(f, timeout)
        if callable(f) and not isinstance(f, GuardedReward) and not inspect.iscoroutinefunction(f)
        and not hasattr(f, "forward")
        else f
        for f in funcs
    ]  # fmt: skip
    return wrapped if isinstance(reward_funcs, list) else wrapped[0]


class RewardSignalLost(RuntimeError):
    """No rollout could be scored for `max_unscorable_steps` consecutive steps: the run has lost its RL signal."""


class RewardSignalWatch:
    """
    Counts consecutive training steps in which no rollout could be scored (every reward function gave `None`/NaN
    for every rollout of the generation batch, on all processes), warns at each one, and stops the run with
    [`RewardSignalLost`] at `limit` (0: never), naming each reward function and its last failure.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.consecutive = 0

    def update(self, rewards_per_func: Any, is_rollout: Any, names: list[str], funcs: list, step: int) -> None:
        """`rewards_per_func`: (rows, functions), NaN where unscorable; `is_rollout`: (rows,) bool; both global."""
        import torch

        rows = rewards_per_func[is_rollout]
        if rows.numel() == 0:  # a batch of demonstrations only: nothing to say about the rollouts
            return
        if (~torch.isnan(rows).all(dim=1)).any():
            self.consecutive = 0
            return
        self.consecutive += 1
        reasons = []
        for name, func in zip(names, funcs):
            last = getattr(func, "last_failure", None)
            reasons.append(f"`{name}`: {last}" if last else f"`{name}`: returned None for every rollout")
        detail = "; ".join(reasons)
        stop = bool(self.limit) and self.consecutive >= self.limit
        logger.warning(
            "Step %d: none of the %d rollouts could be scored (%s). This is unscorable step %d in a row%s.",
            step,
            rows.shape[0],
            detail,
            self.consecutive,
            "" if not self.limit else f" of the {self.limit} allowed (`max_unscorable_steps`)",
        )
        if stop:
            raise RewardSignalLost(
                f"No rollout could be scored for {self.consecutive} consecutive steps (up to step {step}): {detail}. "
                "The run has lost its RL signal and would go on as SFT alone. Fix the reward function or the data "
                "(the columns it reads), then resume with `--resume_from_checkpoint true`; `max_unscorable_steps: 0` "
                "disables this stop."
            )


def watch_reward_signal(trainer: Any, rewards_per_func: Any, is_rollout: Any) -> None:
    """[`RewardSignalWatch`] for a GRPO-family trainer, limited by `args.max_unscorable_steps` (default 3)."""
    watch = getattr(trainer, "_reward_watch", None)
    if watch is None:
        watch = trainer._reward_watch = RewardSignalWatch(getattr(trainer.args, "max_unscorable_steps", 3))
    watch.update(
        rewards_per_func, is_rollout, trainer.reward_func_names, trainer.reward_funcs, trainer.state.global_step
    )
