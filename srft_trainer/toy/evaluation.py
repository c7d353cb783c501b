# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""Held-out accuracy of a model on the toy task: batched `generate`, graded by the training reward."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..evaluation.generation import SamplingSettings, TransformersBackend
from ..grading import accuracy_reward


@dataclass
class HeldoutResult:
    """
    The outcome of [`evaluate_heldout`].

    Args:
        accuracy (`float`): Fraction of completions the accuracy reward scores 1.0.
        per_level (`dict[int, float]`): The same, per difficulty level (when the data set has a `level` column).
        n (`int`): Number of problems evaluated.
        completions (`list[str]`): The decoded completions, in data set order.
        rewards (`list[float]`): Their rewards (0.0 where the reward could not score them).
    """

    accuracy: float
    per_level: dict[int, float]
    n: int
    completions: list[str] = field(repr=False)
    rewards: list[float] = field(repr=False)


def evaluate_heldout(
    model: str | Path | PreTrainedModel,
    tokenizer: str | Path | PreTrainedTokenizerBase | None,
    dataset: Dataset,
    n: int | None = None,
    temperature: float = 0.0,
    batch_size: int = 64,
    max_new_tokens: int = 160,
    seed: int = 0,
) -> HeldoutResult:
    """
    Generates one completion per held-out prompt and scores it with [`srft_trainer.grading.accuracy_reward`].

    The caller's random state (Python, NumPy, torch) is left as it was, so evaluating in the middle of a training run
    does not change the run's own sampling. A model that was in training mode is put back in training mode.

    Args:
        model (`str`, `Path` or [`~transformers.PreTrainedModel`]):
            A model, or the path (or Hub id) of a model folder.
        tokenizer (`str`, `Path`, [`~transformers.PreTrainedTokenizerBase`] or `None`):
            The tokenizer, or its path; `None` loads it from `model` when that is a path.
        dataset ([`~datasets.Dataset`]):
            Rows with `prompt` (chat messages) and `solution` (gold answer); `level` (optional) gives the per-level
            accuracy.
        n (`int`, *optional*):
            Evaluate the first `n` rows only; defaults to all.
        temperature (`float`, *optional*, defaults to `0.0`):
            `0` decodes greedily; otherwise samples at this temperature (no top-k/top-p cut).
        batch_size (`int`, *optional*, defaults to `64`):
            Sequences generated at once.
        max_new_tokens (`int`, *optional*, defaults to `160`):
            Completion length limit (the longest toy demonstration is ~110 tokens).
        seed (`int`, *optional*, defaults to `0`):
            Sampling seed.

    Returns:
        [`HeldoutResult`]: overall and per-level accuracy, with the completions and their rewards.
    """
    for column in ("prompt", "solution"):
        if column not in dataset.column_names:
            raise ValueError(f"The held-out data set needs a `{column}` column; it has {dataset.column_names}.")
    if n is not None:
        if n < 1:
            raise ValueError(f"`n` must be >= 1, got {n}.")
        dataset = dataset.select(range(min(n, len(dataset))))
    if isinstance(model, (str, Path)):
        model, tokenizer = str(model), str(tokenizer or model)
        device = None
    else:
        if tokenizer is None:
            raise ValueError("Pass the tokenizer along with an already-loaded model.")
        device = str(model.device)  # evaluate where the model is; never move a model being trained
    was_training = not isinstance(model, str) and model.training
    python_state, numpy_state = random.getstate(), np.random.get_state()
    devices = [torch.device(device).index or 0] if device and device.startswith("cuda") else []
    try:
        with torch.random.fork_rng(devices=devices):  # the backend seeds the global generators
            backend = TransformersBackend(model, tokenizer, batch_size=batch_size, device=device, show_progress=False)
            sampling = SamplingSettings(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
            completions = [c[0] for c in backend.generate(dataset["prompt"], n=1, sampling=sampling)]
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        if was_training:
            model.train()
    rewards = [r or 0.0 for r in accuracy_reward(completions, dataset["solution"])]
    levels = dataset["level"] if "level" in dataset.column_names else [0] * len(dataset)
    by_level: dict[int, list[float]] = defaultdict(list)
    for level, reward in zip(levels, rewards):
        by_level[level].append(reward)
    return HeldoutResult(
        accuracy=sum(rewards) / max(len(rewards), 1),
        per_level={level: sum(r) / len(r) for level, r in sorted(by_level.items())},
        n=len(rewards),
        completions=completions,
        rewards=rewards,
    )


def heldout_accuracy(
    model: str | Path | PreTrainedModel,
    tokenizer: str | Path | PreTrainedTokenizerBase | None,
    dataset: Dataset,
    **kwargs,
) -> float:
    """
    Held-out accuracy (a fraction in [0, 1]) of a model on the toy task; the keyword arguments (`n`, `temperature`,
    `batch_size`, `max_new_tokens`, `seed`) are those of [`evaluate_heldout`].

    Example:
    ```python
    >>> from srft_trainer.toy import build_toy_world, heldout_accuracy
    >>> world = build_toy_world()
    >>> heldout_accuracy(world.model_dir, None, world.load_heldout())  # greedy; ~0.3 for the shipped base model
    ```
    """
    return evaluate_heldout(model, tokenizer, dataset, **kwargs).accuracy
