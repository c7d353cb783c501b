# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
GRPOTrainer's own loss over the rollout rows of an SRFT micro-batch, with the forward pass shared.

Why this reaches into TRL: `GRPOTrainer._compute_loss` runs the forward pass and the whole rollout objective (every
loss type, `delta`, GSPO's sequence-level ratios, the off-policy mask, the entropy mask and bonus, KL, vLLM
importance sampling, MoE aux loss, metrics) with no hook between them. SRFT needs three things from inside it: the
log-probabilities of the same forward (for its demonstration terms: one forward pass per micro-batch, which ZeRO-3's
collectives also require), the entropy before the advantages are read (`w_RL = rl_pos_coef * exp(H)` scales the
positive advantages), and the demonstration rows left out. It gets them by

- wrapping `_get_per_token_logps_and_entropies` for the one call `_compute_loss` makes, so that a callback sees the
  log-probs and entropies and may rewrite `inputs["advantages"]` before TRL reads them (TRL reads the advantages after
  the forward pass, and accepts `(B, T)` advantages "to support subclasses");
- passing the demonstration rows as `tool_mask` zeros: TRL's loss mask is `completion_mask * tool_mask`, while the
  attention mask of the forward pass is built from `completion_mask` alone, so demo tokens are still attended to.

Every GRPO loss type is linear in the advantage with a sign-dependent choice (clip side, SAPO temperature,
VESPO's gamma, the off-policy mask), so scaling positive advantages by `w_RL > 0` scales exactly the positive
rows' policy term, as Eq. 12 asks, and leaves the KL and entropy terms alone. tests/test_grpo_loss_pins.py pins
each of these facts against the installed TRL and fails loudly if a release changes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


ForwardHook = Callable[[torch.Tensor, torch.Tensor, dict[str, Any]], None]


def rollout_only_inputs(inputs: dict[str, Any], is_demo: torch.Tensor) -> dict[str, Any]:
    """A shallow copy of a micro-batch whose loss mask (TRL's `tool_mask`) leaves out the demonstration rows."""
    completion_mask = inputs["completion_mask"]
    keep = (~is_demo.bool()).to(completion_mask.dtype).unsqueeze(1).expand_as(completion_mask)
    out = dict(inputs)
    out["tool_mask"] = keep if "tool_mask" not in inputs else inputs["tool_mask"] * keep
    return out


def grpo_rollout_loss(trainer, model, inputs: dict[str, Any], on_forward: ForwardHook) -> torch.Tensor:
    """
    Runs `GRPOTrainer._compute_loss` of `trainer` on `inputs`, calling `on_forward(per_token_logps, entropies, inputs)`
    right after its forward pass (the tensors carry their gradient; `inputs` is the dict TRL reads next).
    """
    from trl import GRPOTrainer

    forward = trainer._get_per_token_logps_and_entropies
    own = trainer.__dict__.get("_get_per_token_logps_and_entropies")  # an instance-level stand-in (tests) survives
    calls = []

    def forward_then_hook(*args, **kwargs):
        per_token_logps, entropies, aux_loss = forward(*args, **kwargs)
        calls.append(1)
        on_forward(per_token_logps, entropies, inputs)
        return per_token_logps, entropies, aux_loss

    trainer._get_per_token_logps_and_entropies = forward_then_hook  # instance attribute: this call only
    try:
        loss = GRPOTrainer._compute_loss(trainer, model, inputs)
    finally:
        if own is None:
            del trainer._get_per_token_logps_and_entropies
        else:
            trainer._get_per_token_logps_and_entropies = own
    if len(calls) != 1:
        raise RuntimeError(
            f"GRPOTrainer._compute_loss ran {len(calls)} forward passes through `_get_per_token_logps_and_entropies` "
            "(SRFT expects exactly one): this TRL release changed the loss code srft_trainer/grpo_loss.py relies on."
        )
    return loss
