# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""Group advantages whose statistics come from the on-policy rollouts only (LUFFY's `grpo_split`)."""

from __future__ import annotations

import torch
from trl.trainer.utils import nanstd


GROUP_STATS_FROM = ("all", "rollouts")


def rollout_group_advantages(
    rewards: torch.Tensor,
    is_demo: torch.Tensor,
    num_generations: int,
    scale_rewards: str = "group",
    epsilon: float = 1e-4,
) -> torch.Tensor:
    """
    GRPO advantages of every row, with each group's baseline (and scale) computed from its on-policy rollouts only.

    The paper's Eq. 7 (and TRL, for `group_stats_from="all"`) normalises over the whole group, demonstrations
    included. LUFFY's `grpo_split` estimator instead takes the mean and standard deviation of the rollouts alone and
    scores the demonstrations against them. As there, a standard deviation that is zero (all rollouts of the group
    scored alike) or undefined (fewer than two scorable rollouts) is replaced by 1, so a correct demonstration next to
    all-wrong rollouts gets an advantage of about 1 instead of `1 / epsilon`.

    Args:
        rewards (`torch.Tensor` of shape `(N,)`):
            Total (weighted) reward of every row of the generation batch, groups of `num_generations` consecutive
            rows; NaN for unscorable rows (TRL's convention), which get an advantage of 0.
        is_demo (`torch.Tensor` of shape `(N,)`):
            `True` for demonstration rows.
        num_generations (`int`):
            Rows per group.
        scale_rewards (`str`, *optional*, defaults to `"group"`):
            TRL's meaning: `"group"` divides by the group's rollout std, `"batch"` by the std of all rollouts of the
            batch, `"none"` does not divide.
        epsilon (`float`, *optional*, defaults to `1e-4`):
            Added to the standard deviation, as TRL does.

    Returns:
        `torch.Tensor` of shape `(N,)`: the advantages.
    """
    if rewards.shape != is_demo.shape or rewards.dim() != 1 or rewards.numel() % num_generations:
        raise ValueError(
            f"`rewards` {tuple(rewards.shape)} and `is_demo` {tuple(is_demo.shape)} must be one row per completion, "
            f"in whole groups of {num_generations}."
        )
    if scale_rewards not in ("group", "batch", "none"):
        raise ValueError(f"`scale_rewards` must be 'group', 'batch' or 'none', got {scale_rewards!r}.")
    grouped = rewards.view(-1, num_generations)
    rollouts = torch.where(is_demo.view(-1, num_generations), torch.nan, grouped)
    advantages = grouped - torch.nanmean(rollouts, dim=1, keepdim=True)
    if scale_rewards != "none":
        std = nanstd(rollouts, dim=1, keepdim=True) if scale_rewards == "group" else nanstd(rollouts)
        std = torch.where(torch.isnan(std) | (std == 0), torch.ones_like(std), std)
        advantages = advantages / (std + epsilon)
    return torch.nan_to_num(advantages, nan=0.0).view(-1)
