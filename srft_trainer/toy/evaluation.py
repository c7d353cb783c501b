# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
Held-out accuracy of a model on the toy task (batched `generate`, graded by the training reward), and the mean token
entropy of a model along given completions.
"""

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
from ..rewards import reward_totals


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
    reward_funcs: list | None = None,
    reward_weights: list[float] | None = None,
) -> HeldoutResult:
    """
    Generates one completion per held-out prompt and scores it with [`srft_trainer.grading.accuracy_reward`], or with
    `reward_funcs` (correct when the weighted total is > 0, as `srft eval --reward` counts it).

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
        reward_funcs (`list[Callable]`, *optional*):
            Score with these reward functions (called as TRL calls them, with the data set's columns but `prompt` and
            `completion`) instead of the `accuracy` reward; `reward_weights` weighs them.

    Returns:
        [`HeldoutResult`]: overall and per-level accuracy, with the completions and their rewards.
    """
    for column in ("prompt",) if reward_funcs else ("prompt", "solution"):
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
    if reward_funcs:
        columns = {k: dataset[k] for k in dataset.column_names if k not in ("prompt", "completion")}
        totals = reward_totals(reward_funcs, dataset["prompt"], completions, columns, reward_weights)
        rewards = [1.0 if total is not None and total > 0 else 0.0 for total in totals]
    else:
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


def completion_entropy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list,
    completions: list[str],
    batch_size: int = 64,
) -> float:
    """
    Mean token entropy (nats) of `model` along the given completions of the chat `prompts`, teacher-forced.

    Each completion is appended to its prompt (chat template with the generation prompt) and scored in one forward
    pass per batch, no sampling: the entropy of the model's next-token distribution at every position whose next
    token belongs to the completion, averaged over all those tokens. Along the model's own sampled (temperature 1)
    completions this is an estimate of its per-token entropy. A model in training mode is put back in training mode.

    Args:
        model ([`~transformers.PreTrainedModel`]):
            The model (scored where it is).
        tokenizer ([`~transformers.PreTrainedTokenizerBase`]):
            Its tokenizer, with a chat template.
        prompts (`list`):
            Chat prompts (lists of messages), one per completion.
        completions (`list[str]`):
            The completions, e.g. [`HeldoutResult.completions`]; empty ones are skipped.
        batch_size (`int`, *optional*, defaults to `64`):
            Sequences per forward pass.

    Returns:
        `float`: the mean entropy per completion token, `nan` when no completion has a token.

    Example:
    ```python
    >>> result = evaluate_heldout(model, tokenizer, heldout, temperature=1.0)
    >>> completion_entropy(model, tokenizer, heldout["prompt"], result.completions)
    ```
    """
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions: pass one completion per prompt.")
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    pairs = [
        (tokenizer(t, add_special_tokens=False)["input_ids"], tokenizer(c, add_special_tokens=False)["input_ids"])
        for t, c in zip(texts, completions)
    ]
    pairs = [(p, c) for p, c in pairs if c]  # an empty completion has no token to measure
    if not pairs:
        return float("nan")
    was_training, total, count = model.training, 0.0, 0
    model.eval()
    try:
        for start in range(0, len(pairs), batch_size):
            batch = pairs[start : start + batch_size]
            width = max(len(p) + len(c) for p, c in batch)
            ids = torch.zeros(len(batch), width, dtype=torch.long)
            attention = torch.zeros(len(batch), width, dtype=torch.long)
            scored = torch.zeros(len(batch), width, dtype=torch.bool)  # positions whose next token is a completion's
            for i, (p, c) in enumerate(batch):
                ids[i, : len(p) + len(c)] = torch.tensor(p + c)
                attention[i, : len(p) + len(c)] = 1
                scored[i, len(p) - 1 : len(p) + len(c) - 1] = True
            with torch.no_grad():
                logits = model(input_ids=ids.to(model.device), attention_mask=attention.to(model.device)).logits
            logps = torch.log_softmax(logits.float(), dim=-1)
            entropy = -(logps.exp() * logps).sum(-1).cpu()
            total += entropy[scored].sum().item()
            count += int(scored.sum())
    finally:
        if was_training:
            model.train()
    return total / count
