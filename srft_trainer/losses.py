# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
The SRFT objective (arXiv 2506.19767, Eq. 13) for one micro-batch, as pure tensor functions.

`demo_loss` is the part SRFT adds to GRPO: entropy-weighted SFT and the off-policy RL term on the demonstration rows.
`SRFTTrainer` adds it to `GRPOTrainer`'s own loss over the rollout rows (with `w_RL` folded into the positive
advantages), so every GRPO option acts on the rollouts as in GRPO. `srft_loss` states the whole objective for the
clipped loss types in one function: the reference the trainer is tested against, and the `reinforce` rollout objective.
"""

from __future__ import annotations

import torch


SUPPORTED_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")  # `srft_loss`'s own rollout term
# How each TRL loss type aggregates per-token terms; the demo terms use the same rule, so that with demonstrations the
# off-policy term weighs what a rollout of the same length would. A loss type TRL adds later is refused with
# demonstrations until it is classified here (tests/test_grpo_parity.py fails until then).
DEMO_AGGREGATION = {
    "grpo": "row_mean",  # mean over rows of each row's token mean
    "sapo": "row_mean",
    "luspo": "row_sum",  # mean over rows of each row's token sum
    "bnpo": "token_mean",  # token mean over the rows of the term (demo rows for the demo term)
    "dr_grpo": "constant",  # token sum / (rows * max_completion_length)
    "dapo": "global_tokens",  # token sum / the generation batch's token count (`num_items_in_batch`)
    "cispo": "global_tokens",
    "vespo": "global_tokens",
}
# Variants of the authors' released code (a verl fork of LUFFY), each an option with the paper as its default.
SFT_WEIGHT_SIGNS = ("paper", "code")  # w_SFT = sft_coef * exp(-H) (Eq. 8) or * exp(+H) (released code)
ROLLOUT_OBJECTIVES = ("clipped", "reinforce")  # GRPO's clipped surrogate, or the binary REINFORCE form of Eq. 11-12


def _check_shapes(per_token_logps, **tensors) -> None:
    if per_token_logps.dim() != 2:
        raise ValueError(f"`per_token_logps` must have shape (B, T), got {tuple(per_token_logps.shape)}.")
    batch, length = per_token_logps.shape
    expected = {
        "old_per_token_logps": (batch, length),
        "completion_mask": (batch, length),
        "per_token_entropy": (batch, length),
        "advantages": (batch,),
        "is_demo": (batch,),
        "rewards": (batch,),
    }
    for name, tensor in tensors.items():
        if tensor is not None and tuple(tensor.shape) != expected[name]:
            raise ValueError(
                f"`{name}` has shape {tuple(tensor.shape)} but `per_token_logps` has shape {(batch, length)}: "
                f"expected `{name}` to have shape {expected[name]}."
            )


def _entropy_tensor(entropy, batch: int, length: int, dtype, device) -> torch.Tensor:
    """`H` as a detached tensor broadcastable to (B, T): a scalar (one H), (B,) (per row) or (B, T) (per token)."""
    entropy = torch.as_tensor(entropy, dtype=dtype, device=device).detach()
    if entropy.numel() == 1:
        return entropy.reshape(1, 1)
    if tuple(entropy.shape) == (batch,):
        return entropy.unsqueeze(1)
    if tuple(entropy.shape) == (batch, length):
        return entropy
    raise ValueError(
        f"`entropy` must be a scalar, of shape ({batch},) or of shape ({batch}, {length}), got a tensor of shape "
        f"{tuple(entropy.shape)}."
    )


def _weighted_mean(weight: torch.Tensor, tokens: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """Mean of a broadcast weight over `tokens` (a 0/1 (B, T) mask), over `fallback` when `tokens` is empty."""
    weight = weight.expand_as(tokens)
    use = torch.where(tokens.sum() > 0, tokens, fallback)
    return (weight * use).sum() / use.sum().clamp(min=1.0)


def entropy_weights(
    entropy: torch.Tensor,
    *,
    sft_coef: float = 0.5,
    rl_pos_coef: float = 0.1,
    sft_entropy_weighting: bool = True,
    rl_entropy_weighting: bool = True,
    sft_weight_sign: str = "paper",
    w_rl_max: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    The stop-gradient weights `(w_SFT, w_RL)` of Eq. 8 and Eq. 12 for an entropy `H` (any shape; detached here).

    `w_rl_max` caps `w_RL` (the paper's form is unbounded: `0.1 * exp(H)` exceeds 1 once `H > ln 10 = 2.30` nats).
    """
    if sft_weight_sign not in SFT_WEIGHT_SIGNS:
        raise ValueError(f"`sft_weight_sign` must be one of {SFT_WEIGHT_SIGNS}, got {sft_weight_sign!r}.")
    H = entropy.detach()
    one = torch.ones_like(H)
    sign = -1.0 if sft_weight_sign == "paper" else 1.0
    w_sft = sft_coef * (torch.exp(sign * H) if sft_entropy_weighting else one)
    w_rl = rl_pos_coef * (torch.exp(H) if rl_entropy_weighting else one)
    if w_rl_max is not None:
        w_rl = w_rl.clamp(max=w_rl_max)
    return w_sft, w_rl


def aggregate(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    loss_type: str,
    *,
    num_rows: int,
    max_completion_length: int | None = None,
    num_items_in_batch: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """
    Aggregates a per-token term over `mask` as TRL's `loss_type` does (before gradient-accumulation scaling).

    `num_rows` is the micro-batch's row count (TRL's row-mean denominators count every row, also rows `mask` leaves
    out); `num_items_in_batch` is the token count of the global-token loss types, already divided per process and
    per optimizer micro-step (`None`: the tokens of `mask`).
    """
    rule = DEMO_AGGREGATION.get(loss_type)
    if rule is None:
        known = ", ".join(DEMO_AGGREGATION)
        raise ValueError(f"No aggregation rule for `loss_type={loss_type!r}` (known: {known}).")
    mask = mask.to(per_token.dtype)
    total = (per_token * mask).sum()
    if rule == "row_mean":
        return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).sum() / max(num_rows, 1)
    if rule == "row_sum":
        return (per_token * mask).sum(-1).sum() / max(num_rows, 1)
    if rule == "token_mean":
        return total / mask.sum().clamp(min=1.0)
    if rule == "constant":
        if not max_completion_length:
            raise ValueError(f"`loss_type={loss_type!r}` needs `max_completion_length` (a positive int).")
        return total / (max(num_rows, 1) * max_completion_length)
    denom = mask.sum() if num_items_in_batch is None else torch.as_tensor(num_items_in_batch, dtype=total.dtype)
    return total / denom.to(total.device).clamp(min=1.0)


def demo_loss(
    per_token_logps: torch.Tensor,
    advantages: torch.Tensor,
    completion_mask: torch.Tensor,
    is_demo: torch.Tensor,
    w_sft: float | torch.Tensor,
    *,
    loss_type: str = "dapo",
    demo_rl: bool = True,
    demo_policy_shaping: float | None = None,
    max_completion_length: int | None = None,
    num_items_in_batch: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """
    The demonstration terms of SRFT: `L_SFT^demo + L_RL^demo` (paper Eq. 8-10) of one micro-batch.

    Args:
        per_token_logps (`torch.Tensor` of shape `(B, T)`):
            Log-probability of each completion token under the current policy (carries the gradient).
        advantages (`torch.Tensor` of shape `(B,)`):
            Group advantages of the rows (Eq. 7), unweighted.
        completion_mask (`torch.Tensor` of shape `(B, T)`):
            1 for real completion tokens, 0 for padding (and for tool-output tokens).
        is_demo (`torch.Tensor` of shape `(B,)`):
            `True` for demonstration rows; other rows contribute nothing here.
        w_sft (`float` or `torch.Tensor`):
            The SFT weight (see [`entropy_weights`]): a scalar, `(B, 1)` or `(B, T)`, treated as a constant.
        loss_type (`str`, *optional*, defaults to `"dapo"`):
            TRL's loss type: the off-policy term is aggregated as that loss type aggregates rollouts
            ([`aggregate`]), over all rows of the micro-batch; the SFT term is always the token mean over demo tokens.
        demo_rl (`bool`, *optional*, defaults to `True`):
            Whether demonstrations get the off-policy RL term `-A * pi_theta` (Eq. 9-10, behaviour probability 1).
        demo_policy_shaping (`float`, *optional*):
            A `gamma > 0` gives LUFFY's policy shaping `-A * p / (p + gamma)` (the released code: 0.1). Never clipped.
        max_completion_length (`int`, *optional*):
            Needed by `loss_type="dr_grpo"`.
        num_items_in_batch (`float` or `torch.Tensor`, *optional*):
            Denominator of the global-token loss types (`dapo`, `cispo`, `vespo`), per process and micro-step.

    Returns:
        `tuple[torch.Tensor, dict[str, torch.Tensor]]`: the scalar loss (not scaled for gradient accumulation) and
        detached metrics `sft_nll` (unweighted), `sft_loss` (weighted) and `demo_pg_loss`.
    """
    if demo_policy_shaping is not None and not demo_policy_shaping > 0:
        raise ValueError(f"`demo_policy_shaping` must be a positive gamma or None, got {demo_policy_shaping!r}.")
    _check_shapes(per_token_logps, completion_mask=completion_mask, advantages=advantages, is_demo=is_demo)
    logps = per_token_logps
    dtype = logps.dtype
    demo_mask = completion_mask.to(dtype) * is_demo.to(device=logps.device, dtype=dtype).unsqueeze(1)
    w_sft = torch.as_tensor(w_sft, dtype=dtype, device=logps.device).detach()
    demo_count = demo_mask.sum().clamp(min=1.0)
    sft_nll = (-logps * demo_mask).sum() / demo_count
    sft = (w_sft * -logps * demo_mask).sum() / demo_count  # Eq. 8: token mean; 0 without demo tokens
    pg = torch.zeros((), dtype=dtype, device=logps.device)
    if demo_rl:  # Eq. 9-10: off-policy, behaviour probability 1, no clipping
        probs = torch.exp(logps)
        shaped = probs if demo_policy_shaping is None else probs / (probs + demo_policy_shaping)
        off_policy = -advantages.to(dtype).unsqueeze(1) * shaped
        pg = aggregate(
            off_policy,
            demo_mask,
            loss_type,
            num_rows=logps.size(0),
            max_completion_length=max_completion_length,
            num_items_in_batch=num_items_in_batch,
        )
    metrics = {"sft_nll": sft_nll.detach(), "sft_loss": sft.detach(), "demo_pg_loss": pg.detach()}
    return sft + pg, metrics


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
    sft_weight_sign: str = "paper",
    demo_policy_shaping: float | None = None,
    rollout_objective: str = "clipped",
    rewards: torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    per_token_entropy: torch.Tensor | None = None,
    max_completion_length: int | None = None,
    num_items_in_batch: float | torch.Tensor | None = None,
    rollout_token_weights: torch.Tensor | None = None,
    rollout_token_penalty: torch.Tensor | None = None,
    w_rl_max: float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """
    Computes the SRFT loss `L_SFT^demo + L_RL^demo + L_RL^self-rollout` (paper Eq. 13) of one micro-batch.

    The rollout term is GRPO's (TRL's `loss_type` aggregation over the rollout rows, demonstration rows counted as
    masked rows); the demonstration terms are [`demo_loss`]. `SRFTTrainer` computes the rollout term with
    `GRPOTrainer`'s own loss, so that every GRPO option applies; this function is the reference it is tested against
    for the clipped loss types, and computes the `rollout_objective="reinforce"` variant.

    The defaults are the paper's equations; the options `sft_weight_sign`, the shape of `entropy`,
    `demo_policy_shaping`, `rollout_objective`, `entropy_coef` and `loss_type="dr_grpo"` give the behaviour of the
    authors' released code (see docs/objective.md).

    Args:
        per_token_logps (`torch.Tensor` of shape `(B, T)`):
            Log-probability of each completion token under the current policy (carries the gradient).
        old_per_token_logps (`torch.Tensor` of shape `(B, T)` or `None`):
            Log-probabilities under the sampling policy. `None` uses `per_token_logps.detach()` (ratio 1). Ignored
            for demonstration rows, whose behaviour probability is taken as 1 (Eq. 10).
        advantages (`torch.Tensor` of shape `(B,)`):
            Group advantages of the rows (Eq. 7).
        completion_mask (`torch.Tensor` of shape `(B, T)`):
            1 for real completion tokens, 0 for padding.
        is_demo (`torch.Tensor` of shape `(B,)`):
            `True` for demonstration rows, `False` for on-policy rollouts.
        entropy (`float` or `torch.Tensor`):
            The policy entropy `H` of the weights, always treated as a constant (stop-gradient of Eq. 8 and 12): a
            scalar (one `H` for the micro-batch, the paper's `H(pi_theta)`), shape `(B,)` (each row weighted by its
            own mean entropy) or `(B, T)` (each token by its own entropy, as the released code does).
        loss_type (`str`, *optional*, defaults to `"dapo"`):
            Aggregation of the policy-gradient terms, with TRL's meaning: `"grpo"`, `"bnpo"` (each term its own
            token mean), `"dr_grpo"` or `"dapo"`.
        epsilon_low (`float`, *optional*, defaults to `0.2`):
            Lower clipping bound of the on-policy ratio.
        epsilon_high (`float`, *optional*, defaults to `0.2`):
            Upper clipping bound of the on-policy ratio.
        sft_coef (`float`, *optional*, defaults to `0.5`):
            Coefficient of the SFT term: `w_sft = sft_coef * exp(-H)` (Eq. 8).
        rl_pos_coef (`float`, *optional*, defaults to `0.1`):
            Coefficient of positive rollouts: `w_rl = rl_pos_coef * exp(H)` (Eq. 12).
        sft_entropy_weighting (`bool`, *optional*, defaults to `True`):
            Whether `w_sft` includes the entropy factor. `False` gives the constant `sft_coef`.
        rl_entropy_weighting (`bool`, *optional*, defaults to `True`):
            Whether `w_rl` includes the `exp(H)` factor. `False` gives the constant `rl_pos_coef`.
        demo_rl (`bool`, *optional*, defaults to `True`):
            Whether demonstrations get the off-policy RL term `-A * pi_theta` (Eq. 9-10).
        sft_weight_sign (`str`, *optional*, defaults to `"paper"`):
            `"paper"`: `w_sft = sft_coef * exp(-H)` (Eq. 8); `"code"`: `sft_coef * exp(+H)`, as the released code.
        demo_policy_shaping (`float`, *optional*):
            `None`: the demo term is `-A * p` (Eq. 9-10). A `gamma > 0`: LUFFY's policy shaping `-A * p / (p + gamma)`
            (the released code uses `gamma = 0.1`). Never clipped.
        rollout_objective (`str`, *optional*, defaults to `"clipped"`):
            `"clipped"`: GRPO's clipped surrogate `-min(r A, clip(r) A)`, times `w_rl` where `A > 0`. `"reinforce"`:
            the binary REINFORCE form of Eq. 11-12, `w_rl * (-log p)` on rollouts whose reward is > 0 and `+log p` on
            the others (needs `rewards`; a NaN reward, i.e. unscorable, contributes nothing).
        rewards (`torch.Tensor` of shape `(B,)`, *optional*):
            Each row's total reward; used only by `rollout_objective="reinforce"`.
        entropy_coef (`float`, *optional*, defaults to `0.0`):
            TRL's entropy bonus: subtracts `entropy_coef` times the mean of `per_token_entropy` over the rollout
            tokens (as GRPO applies it to the rows of its loss).
        per_token_entropy (`torch.Tensor` of shape `(B, T)`, *optional*):
            Token entropies carrying the gradient; needed when `entropy_coef != 0`.
        max_completion_length (`int`, *optional*):
            Required for `loss_type="dr_grpo"`, whose denominator is `rows * max_completion_length`.
        num_items_in_batch (`float` or `torch.Tensor`, *optional*):
            Denominator of the `"dapo"` loss. `None` uses the number of completion tokens of this call.
        rollout_token_weights (`torch.Tensor` of shape `(B, T)` or `(B, 1)`, *optional*):
            Extra factor on the on-policy term of rollout rows only (TRL's entropy mask, vLLM importance-sampling
            correction). Ignored for demonstration rows.
        rollout_token_penalty (`torch.Tensor` of shape `(B, T)`, *optional*):
            Per-token term added to on-policy rows only, before aggregation (TRL's `beta * KL`). Ignored for
            demonstration rows.
        w_rl_max (`float`, *optional*):
            Caps `w_rl` (see [`entropy_weights`]); `None` keeps the paper's unbounded form.

    Returns:
        `tuple[torch.Tensor, dict[str, torch.Tensor]]`: the scalar loss (not scaled for gradient accumulation) and
        detached metrics `w_sft` (mean over demo tokens), `w_rl` (mean over positive rollout tokens; both over all
        tokens when there are none), `entropy` (mean `H` over the completion tokens), `sft_nll` (unweighted),
        `sft_loss` (weighted), `pg_loss` (the rollout term) and `demo_pg_loss`.
    """
    if loss_type not in SUPPORTED_LOSS_TYPES:
        supported = ", ".join(SUPPORTED_LOSS_TYPES)
        raise ValueError(f"Unsupported `loss_type={loss_type!r}` for `srft_loss`; supported: {supported}.")
    if loss_type == "dr_grpo" and not max_completion_length:
        raise ValueError("`loss_type='dr_grpo'` needs `max_completion_length` (a positive int).")
    if rollout_objective not in ROLLOUT_OBJECTIVES:
        raise ValueError(f"`rollout_objective` must be one of {ROLLOUT_OBJECTIVES}, got {rollout_objective!r}.")
    if rollout_objective == "reinforce" and rewards is None:
        raise ValueError("`rollout_objective='reinforce'` needs each row's `rewards`.")
    if entropy_coef != 0.0 and per_token_entropy is None:
        raise ValueError("`entropy_coef` != 0 needs `per_token_entropy` (the token entropies, with their gradient).")
    _check_shapes(
        per_token_logps,
        old_per_token_logps=old_per_token_logps,
        completion_mask=completion_mask,
        per_token_entropy=per_token_entropy,
        advantages=advantages,
        is_demo=is_demo,
        rewards=rewards,
    )
    logps = per_token_logps
    dtype, device = logps.dtype, logps.device
    H = _entropy_tensor(entropy, *logps.shape, dtype, device)
    w_sft, w_rl = entropy_weights(
        H,
        sft_coef=sft_coef,
        rl_pos_coef=rl_pos_coef,
        sft_entropy_weighting=sft_entropy_weighting,
        rl_entropy_weighting=rl_entropy_weighting,
        sft_weight_sign=sft_weight_sign,
        w_rl_max=w_rl_max,
    )
    mask = completion_mask.to(dtype)
    demo = is_demo.to(device=device, dtype=torch.bool).unsqueeze(1)  # (B, 1)
    adv = advantages.to(dtype).unsqueeze(1)  # (B, 1)

    # On-policy rollouts; demo rows get a ratio of 1 so that whatever their old log-probs hold cannot leak in.
    if rollout_objective == "clipped":  # GRPO clipped surrogate (Eq. 3); positive rows scaled by w_rl (Eq. 12)
        old = logps.detach() if old_per_token_logps is None else torch.where(demo, logps.detach(), old_per_token_logps)
        ratio = torch.exp(logps - old)
        clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
        on_policy = -torch.min(ratio * adv, clipped * adv)
        positive = (adv > 0).expand_as(logps)
        on_policy = torch.where(positive, w_rl * on_policy, on_policy)
    else:  # Eq. 11-12 with binary rewards: w_rl * (-log p) on correct rollouts, +log p on wrong ones
        reward = rewards.to(device=device, dtype=dtype).unsqueeze(1)
        positive = (reward > 0).expand_as(logps)
        one = torch.ones((1, 1), dtype=dtype, device=device)
        coef = torch.where(positive, w_rl, torch.where(reward <= 0, -one, 0.0 * one))  # NaN reward: no signal
        on_policy = -coef * logps
    if rollout_token_weights is not None:
        on_policy = on_policy * rollout_token_weights
    if rollout_token_penalty is not None:
        on_policy = on_policy + rollout_token_penalty
    rollout_mask = mask * (~demo).to(dtype)
    counts = dict(num_rows=logps.size(0), max_completion_length=max_completion_length)
    pg_loss = aggregate(on_policy, rollout_mask, loss_type, num_items_in_batch=num_items_in_batch, **counts)
    demo_part, parts = demo_loss(
        logps,
        advantages,
        completion_mask,
        is_demo,
        w_sft,
        loss_type=loss_type,
        demo_rl=demo_rl,
        demo_policy_shaping=demo_policy_shaping,
        max_completion_length=max_completion_length,
        num_items_in_batch=num_items_in_batch,
    )
    loss = pg_loss + demo_part
    if entropy_coef != 0.0:  # TRL's bonus: the mean token entropy over the rows of GRPO's loss, with its gradient
        loss = loss - entropy_coef * (per_token_entropy * rollout_mask).sum() / rollout_mask.sum().clamp(min=1.0)

    demo_mask = mask - rollout_mask
    metrics = {
        "w_sft": _weighted_mean(w_sft, demo_mask, mask).detach(),
        "w_rl": _weighted_mean(w_rl, rollout_mask * positive.to(dtype), mask).detach(),
        "entropy": _weighted_mean(H, mask, mask).detach() if H.numel() > 1 else H.reshape(()),
        "pg_loss": pg_loss.detach(),
        **parts,
    }
    return loss, metrics
