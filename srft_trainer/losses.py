# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""The SRFT objective (arXiv 2506.19767, Eq. 13) for one micro-batch, as a pure tensor function."""

from __future__ import annotations

import torch


SUPPORTED_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")


def _check_shapes(per_token_logps, old_per_token_logps, advantages, completion_mask, is_demo) -> None:
    if per_token_logps.dim() != 2:
        raise ValueError(f"`per_token_logps` must have shape (B, T), got {tuple(per_token_logps.shape)}.")
    batch, length = per_token_logps.shape
    expected = {
        "old_per_token_logps": (old_per_token_logps, (batch, length)),
        "completion_mask": (completion_mask, (batch, length)),
        "advantages": (advantages, (batch,)),
        "is_demo": (is_demo, (batch,)),
    }
    for name, (tensor, shape) in expected.items():
        if tensor is not None and tuple(tensor.shape) != shape:
            raise ValueError(
                f"`{name}` has shape {tuple(tensor.shape)} but `per_token_logps` has shape {(batch, length)}: "
                f"expected `{name}` to have shape {shape}."
            )


def srft_loss(
    per_token_logps: torch.Tensor,
    old_per_token_logps: torch.Tensor | None,
    advantages: torch.Tensor,
    completion_mask: torch.Tensor,
    is_demo: torch.Tensor,
    entropy: float | torch.Tensor,
    *,
    loss_type: str = "dapo",
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    sft_coef: float = 0.5,
    rl_pos_coef: float = 0.1,
    sft_entropy_weighting: bool = True,
    rl_entropy_weighting: bool = True,
    demo_rl: bool = True,
    max_completion_length: int | None = None,
    num_items_in_batch: float | torch.Tensor | None = None,
    rollout_token_weights: torch.Tensor | None = None,
    rollout_token_penalty: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """
    Computes the SRFT loss `L_SFT^demo + L_RL^demo + L_RL^self-rollout` (paper Eq. 13) of one micro-batch.

    Args:
        per_token_logps (`torch.Tensor` of shape `(B, T)`):
            Log-probability of each completion token under the current policy (carries the gradient).
        old_per_token_logps (`torch.Tensor` of shape `(B, T)` or `None`):
            Log-probabilities under the sampling policy. `None` uses `per_token_logps.detach()` (ratio 1). Ignored
            for demonstration rows, whose behaviour probability is taken as 1 (Eq. 10).
        advantages (`torch.Tensor` of shape `(B,)`):
            Group-normalised advantages, computed over rollouts and demonstrations together (Eq. 7).
        completion_mask (`torch.Tensor` of shape `(B, T)`):
            1 for real completion tokens, 0 for padding.
        is_demo (`torch.Tensor` of shape `(B,)`):
            `True` for demonstration rows, `False` for on-policy rollouts.
        entropy (`float` or scalar `torch.Tensor`):
            The policy entropy `H`. Always treated as a constant (stop-gradient of Eq. 8 and Eq. 12).
        loss_type (`str`, *optional*, defaults to `"dapo"`):
            Normalisation of the policy-gradient terms, with TRL's meaning: `"grpo"`, `"bnpo"`, `"dr_grpo"` or
            `"dapo"`.
        epsilon_low (`float`, *optional*, defaults to `0.2`):
            Lower clipping bound of the on-policy ratio.
        epsilon_high (`float`, *optional*, defaults to `0.2`):
            Upper clipping bound of the on-policy ratio.
        sft_coef (`float`, *optional*, defaults to `0.5`):
            Coefficient of the SFT term: `w_sft = sft_coef * exp(-H)` (Eq. 8).
        rl_pos_coef (`float`, *optional*, defaults to `0.1`):
            Coefficient of positive-advantage rollouts: `w_rl = rl_pos_coef * exp(H)` (Eq. 12).
        sft_entropy_weighting (`bool`, *optional*, defaults to `True`):
            Whether `w_sft` includes the `exp(-H)` factor. `False` gives the constant `sft_coef`.
        rl_entropy_weighting (`bool`, *optional*, defaults to `True`):
            Whether `w_rl` includes the `exp(H)` factor. `False` gives the constant `rl_pos_coef`.
        demo_rl (`bool`, *optional*, defaults to `True`):
            Whether demonstrations get the off-policy RL term `-A * pi_theta` (Eq. 9-10).
        max_completion_length (`int`, *optional*):
            Required for `loss_type="dr_grpo"`, whose denominator is `num_pg_rows * max_completion_length`.
        num_items_in_batch (`float` or `torch.Tensor`, *optional*):
            Denominator of the `"dapo"` loss. `None` uses the number of active policy-gradient tokens of this call.
        rollout_token_weights (`torch.Tensor` of shape `(B, T)` or `(B, 1)`, *optional*):
            Extra factor on the clipped surrogate of on-policy rows only (TRL's entropy mask, vLLM importance-sampling
            correction). Ignored for demonstration rows.
        rollout_token_penalty (`torch.Tensor` of shape `(B, T)`, *optional*):
            Per-token term added to on-policy rows only, before aggregation (TRL's `beta * KL`). Ignored for
            demonstration rows.

    Returns:
        `tuple[torch.Tensor, dict[str, torch.Tensor]]`: the scalar loss (policy-gradient term plus SFT term, not
        scaled for gradient accumulation) and detached metrics `w_sft`, `w_rl`, `entropy`, `sft_nll` (unweighted),
        `sft_loss` (weighted) and `pg_loss`.
    """
    if loss_type not in SUPPORTED_LOSS_TYPES:
        supported = ", ".join(SUPPORTED_LOSS_TYPES)
        raise ValueError(f"Unsupported `loss_type={loss_type!r}` for SRFT; supported: {supported}.")
    if loss_type == "dr_grpo" and not max_completion_length:
        raise ValueError("`loss_type='dr_grpo'` needs `max_completion_length` (a positive int).")
    _check_shapes(per_token_logps, old_per_token_logps, advantages, completion_mask, is_demo)
    logps = per_token_logps
    dtype, device = logps.dtype, logps.device
    entropy = torch.as_tensor(entropy, dtype=dtype, device=device).detach()
    if entropy.numel() != 1:
        raise ValueError(f"`entropy` must be a scalar, got a tensor of shape {tuple(entropy.shape)}.")
    entropy = entropy.reshape(())

    # Entropy-aware weights, stop-gradient by construction (Eq. 8 and Eq. 12).
    one = torch.ones((), dtype=dtype, device=device)
    w_sft = sft_coef * (torch.exp(-entropy) if sft_entropy_weighting else one)
    w_rl = rl_pos_coef * (torch.exp(entropy) if rl_entropy_weighting else one)

    mask = completion_mask.to(dtype)
    demo = is_demo.to(device=device, dtype=torch.bool).unsqueeze(1)  # (B, 1)
    adv = advantages.to(dtype).unsqueeze(1)  # (B, 1)

    # On-policy rollouts: GRPO clipped surrogate (Eq. 3); positive rows scaled by w_rl (Eq. 12). Demo rows get a
    # ratio of 1 here so that whatever their old log-probs hold (NaN from vLLM, say) cannot leak into the gradient.
    old = logps.detach() if old_per_token_logps is None else torch.where(demo, logps.detach(), old_per_token_logps)
    ratio = torch.exp(logps - old)
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    on_policy = -torch.min(ratio * adv, clipped * adv)
    on_policy = torch.where(adv > 0, w_rl * on_policy, on_policy)
    if rollout_token_weights is not None:
        on_policy = on_policy * rollout_token_weights
    if rollout_token_penalty is not None:
        on_policy = on_policy + rollout_token_penalty
    # Demonstrations: off-policy RL with behaviour probability 1 and no clipping (Eq. 9-10).
    off_policy = -adv * torch.exp(logps)
    per_token_pg = torch.where(demo, off_policy, on_policy)

    pg_rows = (~demo).to(dtype) if not demo_rl else torch.ones_like(adv)  # (B, 1)
    pg_mask = mask * pg_rows
    pg_sum = (per_token_pg * pg_mask).sum()
    if loss_type == "grpo":
        row_means = (per_token_pg * pg_mask).sum(-1) / pg_mask.sum(-1).clamp(min=1.0)
        pg_loss = (row_means * pg_rows.squeeze(1)).sum() / pg_rows.sum().clamp(min=1.0)
    elif loss_type == "bnpo":
        pg_loss = pg_sum / pg_mask.sum().clamp(min=1.0)
    elif loss_type == "dr_grpo":
        pg_loss = pg_sum / (pg_rows.sum().clamp(min=1.0) * max_completion_length)
    else:  # dapo
        denom = pg_mask.sum() if num_items_in_batch is None else torch.as_tensor(num_items_in_batch, dtype=dtype)
        pg_loss = pg_sum / denom.to(device).clamp(min=1.0)

    # SFT on demonstration tokens (Eq. 8): token mean of the NLL, 0 when the micro-batch holds no demo tokens.
    demo_mask = mask * demo.to(dtype)
    sft_nll = (-logps * demo_mask).sum() / demo_mask.sum().clamp(min=1.0)
    sft_loss = w_sft * sft_nll

    metrics = {
        "w_sft": w_sft.detach(),
        "w_rl": w_rl.detach(),
        "entropy": entropy,
        "sft_nll": sft_nll.detach(),
        "sft_loss": sft_loss.detach(),
        "pg_loss": pg_loss.detach(),
    }
    return pg_loss + sft_loss, metrics
