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

    Each kind of failure is counted in `failures` and warned about once, with the offending example.
    """

    def __init__(self, func: Callable, timeout: float | None = None):
        self.func = func
        self.timeout = timeout
        self.failures: Counter[str] = Counter()
        self._warned: set[str] = set()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1) if timeout else None
        functools.update_wrapper(self, func)

    def _warn(self, kind: str, detail: str) -> None:
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
        return [self._clean(v, completions[i]) for i, v in enumerate(values)]

    def _one_row(self, batch: dict[str, Any], i: int) -> float | None:
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
            return None

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
