# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""The loss side of `SRFTTrainer`: GRPO's own loss on the rollouts plus SRFT's demonstration terms (Eq. 13)."""

from __future__ import annotations

import logging
from typing import Any

import torch

from .grpo_loss import grpo_rollout_loss, rollout_only_inputs
from .losses import demo_loss, entropy_weights, srft_loss


logger = logging.getLogger(__name__)

# `w_RL = rl_pos_coef * exp(H)` has no upper bound in the paper. Above 1 a positive rollout weighs more than in plain
# GRPO (H > ln 10 = 2.30 nats with the paper's 0.1), which only a near-uniform policy reaches: the first time it
# happens the trainer says so, once, with the entropy that caused it (`w_rl_max` caps it).
W_RL_WARN_ABOVE = 1.0


class SRFTObjectiveMixin:
    """
    `_compute_loss` for [`SRFTTrainer`]: `GRPOTrainer._compute_loss` over the rollout rows, with the positive
    advantages scaled by `w_RL` (Eq. 12), plus [`~srft_trainer.losses.demo_loss`] on the demonstration rows, from one
    forward pass. With no demonstrations and `w_RL = 1` the loss, gradients and metrics are GRPOTrainer's.
    """

    def _policy_entropy(
        self,
        per_token_logps: torch.Tensor,
        entropies: torch.Tensor,
        mask: torch.Tensor,
        is_demo: torch.Tensor,
        old_per_token_logps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """
        Mean token entropy over the `entropy_source` tokens of the micro-batch on all processes (detached).

        The same all-reduce counts non-finite log-probabilities and entropies on real tokens, so that every process
        stops together (no rank left waiting in a collective) instead of applying a NaN update.
        """
        entropies, logps, mask = entropies.detach(), per_token_logps.detach(), mask.to(entropies.dtype)
        rows = {"all": torch.ones_like(is_demo), "rollouts": ~is_demo, "demos": is_demo}[self.args.entropy_source]
        selected = mask * rows.unsqueeze(1).to(mask.dtype)
        bad = (~torch.isfinite(logps) | ~torch.isfinite(entropies)) & mask.bool()
        if old_per_token_logps is not None:  # demo rows ignore theirs (NaN where vLLM gave no log-prob)
            bad |= ~torch.isfinite(old_per_token_logps) & mask.bool() & ~is_demo.unsqueeze(1)
        finite_entropies = entropies.nan_to_num(0.0, posinf=0.0, neginf=0.0)
        local = torch.stack(
            [
                (finite_entropies * selected).sum(),
                selected.sum(),
                (finite_entropies * mask).sum(),
                mask.sum(),
                bad.sum().to(mask.dtype),
            ]
        )
        total = self.accelerator.reduce(local, reduction="sum")
        if total[4].item() > 0:
            raise FloatingPointError(
                f"SRFT: {int(total[4].item())} completion token(s) have non-finite log-probabilities or entropies at "
                f"step {self.state.global_step}; stopping before a NaN update. Usual causes: too high a learning "
                "rate, fp16 overflow (prefer bf16), or NaN weights in the starting checkpoint. The last saved "
                "checkpoint is intact: resume from it with `--resume_from_checkpoint` after the fix."
            )
        # An empty selection falls back to all completion tokens (no host sync: torch.where).
        return torch.where(total[1] > 0, total[0] / total[1].clamp(min=1.0), total[2] / total[3].clamp(min=1.0))

    def _weight_entropy(self, per_token_logps, entropies, mask, is_demo, old_per_token_logps) -> torch.Tensor:
        """The `H` of the weights: one value, one per row or one per token (`entropy_granularity`), detached."""
        entropy = self._policy_entropy(per_token_logps, entropies, mask, is_demo, old_per_token_logps)
        if self.args.entropy_granularity == "sequence":  # each row its own mean token entropy
            row_mask = mask.to(entropies.dtype)
            return (entropies.detach() * row_mask).sum(-1) / row_mask.sum(-1).clamp(min=1.0)
        if self.args.entropy_granularity == "token":  # each token its own entropy (the released code)
            return entropies.detach()
        return entropy

    def _weight_options(self) -> dict:
        """The config fields that shape `w_SFT` and `w_RL` (the same names in `entropy_weights` and `srft_loss`)."""
        names = ("sft_coef", "rl_pos_coef", "sft_entropy_weighting", "rl_entropy_weighting", "sft_weight_sign")
        return {name: getattr(self.args, name) for name in (*names, "w_rl_max")}

    def _weights(self, entropy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return entropy_weights(entropy, **self._weight_options())

    def _dapo_items(self, inputs: dict[str, Any], mode: str) -> torch.Tensor:
        """TRL's global-token normaliser per process and optimizer micro-step (before the accumulation factor)."""
        num_items = inputs["num_items_in_batch"] / self.accelerator.num_processes
        return num_items / self.args.steps_per_generation if mode == "train" else num_items

    def _compute_loss(self, model, inputs):
        if self.args.rollout_objective == "reinforce":
            return self._compute_reinforce_loss(model, inputs)
        mode = "train" if self.model.training else "eval"
        is_demo = inputs.get("is_demo")
        is_demo = torch.zeros_like(inputs["advantages"], dtype=torch.bool) if is_demo is None else is_demo.bool()
        completion_mask = inputs["completion_mask"]
        mask = completion_mask if "tool_mask" not in inputs else completion_mask * inputs["tool_mask"]
        seen: dict[str, torch.Tensor] = {}

        def scale_positive_advantages(per_token_logps, entropies, grpo_inputs):
            entropy = self._weight_entropy(
                per_token_logps, entropies, mask, is_demo, inputs.get("old_per_token_logps")
            )
            w_sft, w_rl = self._weights(entropy)
            advantages = grpo_inputs["advantages"]
            if w_rl.dim() == 2:  # per-token weights: TRL takes (B, T) advantages
                advantages = advantages.unsqueeze(1).expand_as(w_rl)
                grpo_inputs["advantages"] = torch.where(advantages > 0, advantages * w_rl, advantages)
            else:  # one weight, or one per row
                grpo_inputs["advantages"] = torch.where(advantages > 0, advantages * w_rl, advantages)
            seen.update(logps=per_token_logps, entropies=entropies, entropy=entropy, w_sft=w_sft, w_rl=w_rl)

        loss = grpo_rollout_loss(self, model, rollout_only_inputs(inputs, is_demo), scale_positive_advantages)
        accumulation = self.current_gradient_accumulation_steps if mode == "train" else 1.0
        w_sft = seen["w_sft"]
        demo_part, parts = demo_loss(
            seen["logps"],
            inputs["advantages"],
            mask,
            is_demo,
            w_sft.unsqueeze(1) if w_sft.dim() == 1 else w_sft,
            loss_type=self.loss_type,
            demo_rl=self.args.demo_rl,
            demo_policy_shaping=self.args.demo_policy_shaping,
            max_completion_length=self.max_completion_length,
            num_items_in_batch=self._dapo_items(inputs, mode),
        )
        loss = loss + demo_part / accumulation
        self._log_srft_metrics(mode, seen, mask, is_demo, inputs["advantages"], parts)
        return loss

    def _compute_reinforce_loss(self, model, inputs):
        # The binary REINFORCE rollout objective (Eq. 11-12, `rollout_objective="reinforce"`) replaces GRPO's
        # ratio-based one, so GRPO's loss cannot compute it: `srft_loss` does, with the options that have a meaning
        # without an importance ratio (SRFTConfig refuses the others).
        mode = "train" if self.model.training else "eval"
        prompt_ids, prompt_mask = inputs["prompt_ids"], inputs["prompt_mask"]
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
        mask = completion_mask if "tool_mask" not in inputs else completion_mask * inputs["tool_mask"]
        per_token_logps, entropies, aux_loss = self._get_per_token_logps_and_entropies(
            model,
            torch.cat([prompt_ids, completion_ids], dim=1),
            torch.cat([prompt_mask, completion_mask], dim=1),
            completion_ids.size(1),
            compute_entropy=True,
            compute_aux_loss=self.aux_loss_enabled,
        )
        is_demo = inputs.get("is_demo")
        is_demo = torch.zeros_like(inputs["advantages"], dtype=torch.bool) if is_demo is None else is_demo.bool()
        old_per_token_logps = inputs.get("old_per_token_logps")
        entropy = self._weight_entropy(per_token_logps, entropies, mask, is_demo, old_per_token_logps)
        weights = None
        if self.top_entropy_quantile < 1.0:
            rollout_mask = mask * (~is_demo).unsqueeze(1).to(mask.dtype)
            weights = self.get_high_entropy_mask(entropies, rollout_mask, 1 - self.top_entropy_quantile)
        if self.use_vllm and self.vllm_importance_sampling_correction:
            ratio = inputs["importance_sampling_ratio"]
            weights = ratio if weights is None else weights * ratio
        penalty = None
        if self.beta != 0.0:
            delta = inputs["ref_per_token_logps"] - per_token_logps
            penalty = self.beta * (torch.exp(delta) - delta - 1)
        accumulation = self.current_gradient_accumulation_steps if mode == "train" else 1.0
        args = self.args
        loss, parts = srft_loss(
            per_token_logps,
            old_per_token_logps,
            inputs["advantages"],
            mask,
            is_demo,
            entropy,
            loss_type=self.loss_type,
            demo_rl=args.demo_rl,
            demo_policy_shaping=args.demo_policy_shaping,
            rollout_objective="reinforce",
            rewards=inputs["rewards"],
            entropy_coef=self.entropy_coef,
            per_token_entropy=entropies if self.entropy_coef != 0.0 else None,
            max_completion_length=self.max_completion_length,
            num_items_in_batch=self._dapo_items(inputs, mode),
            rollout_token_weights=weights,
            rollout_token_penalty=penalty,
            **self._weight_options(),
        )
        loss = loss / accumulation
        if self.aux_loss_enabled:
            loss = loss + self.router_aux_loss_coef * aux_loss / accumulation
            self._metrics[mode]["aux_loss"].append(self.accelerator.gather_for_metrics(aux_loss).mean().item())
        rollout_tokens = mask.to(entropies.dtype) * (~is_demo).unsqueeze(1).to(entropies.dtype)
        totals = self.accelerator.reduce(
            torch.stack([(entropies.detach() * rollout_tokens).sum(), rollout_tokens.sum()]), reduction="sum"
        )
        self._metrics[mode]["entropy"].append((totals[0] / totals[1].clamp(min=1.0)).item())
        if self.beta != 0.0:
            kl = self.accelerator.reduce(torch.stack([(penalty.detach() / self.beta * rollout_tokens).sum()]), "sum")
            self._metrics[mode]["kl"].append((kl[0] / totals[1].clamp(min=1.0)).item())
        self._metrics[mode]["policy_loss"].append(parts["pg_loss"].item())
        w_sft, w_rl = self._weights(entropy)
        seen = dict(logps=per_token_logps, entropy=entropy, w_sft=w_sft, w_rl=w_rl)
        self._log_srft_metrics(mode, seen, mask, is_demo, inputs["advantages"], parts)
        return loss

    def _log_srft_metrics(self, mode, seen, mask, is_demo, advantages, parts) -> None:
        logps = seen["logps"].detach()
        mask = mask.to(logps.dtype)
        demo_mask = mask * is_demo.unsqueeze(1).to(mask.dtype)
        positive = mask * (~is_demo & (advantages > 0)).unsqueeze(1).to(mask.dtype)

        def per_token(name):  # a weight or entropy of any granularity, as a (B, T) tensor
            value = seen[name].detach().to(logps.dtype)
            value = value.reshape(1, 1) if value.dim() == 0 else value.unsqueeze(1) if value.dim() == 1 else value
            return value.expand_as(mask)

        w_sft, w_rl, entropy = per_token("w_sft"), per_token("w_rl"), per_token("entropy")
        sums = torch.stack(
            [
                (-logps * demo_mask).sum(),
                demo_mask.sum(),
                (w_sft * demo_mask).sum(),
                (w_sft * mask).sum(),
                (w_rl * positive).sum(),
                positive.sum(),
                (w_rl * mask).sum(),
                (entropy * mask).sum(),
                mask.sum(),
                parts["sft_loss"].to(mask.dtype),
                parts["demo_pg_loss"].to(mask.dtype),
                torch.ones((), device=mask.device, dtype=mask.dtype),
            ]
        )
        nll, n_demo, w_sft_demo, w_sft_all, w_rl_pos, n_pos, w_rl_all, ent, n_tok, sft, demo_pg, n_proc = (
            self.accelerator.reduce(sums, reduction="sum").tolist()
        )
        metrics = self._metrics[mode]
        metrics["srft/entropy"].append(ent / max(n_tok, 1.0))
        metrics["srft/w_sft"].append((w_sft_demo / n_demo) if n_demo else w_sft_all / max(n_tok, 1.0))
        metrics["srft/w_rl"].append((w_rl_pos / n_pos) if n_pos else w_rl_all / max(n_tok, 1.0))
        metrics["srft/sft_nll"].append(nll / n_demo if n_demo else float("nan"))
        metrics["srft/sft_loss"].append(sft / n_proc)
        metrics["srft/demo_pg_loss"].append(demo_pg / n_proc)
        if mode == "train" and not getattr(self, "_warned_w_rl", False):
            # The largest w_RL that acted on a positive rollout on any process, with the entropy behind it.
            peak = torch.stack([(w_rl * positive).max(), (entropy * positive).max()])
            w_rl_peak, entropy_peak = self.accelerator.gather(peak.unsqueeze(0)).max(dim=0).values.tolist()
            if w_rl_peak > W_RL_WARN_ABOVE:
                self._warned_w_rl = True
                logger.warning(
                    "SRFT: w_RL = rl_pos_coef * exp(H) reached %.4g on positive rollouts at step %d (policy "
                    "entropy H = %.3g nats): positive rollouts now weigh more than in plain GRPO (w_RL > %g), and "
                    "exp(H) grows fast for a near-uniform policy (a fresh or random-initialised model, a large "
                    "vocabulary sampled at T=1). Set `w_rl_max` (e.g. 1.0) to cap it, or `rl_entropy_weighting: "
                    "false`; warned once.",
                    w_rl_peak,
                    self.state.global_step,
                    entropy_peak,
                    W_RL_WARN_ABOVE,
                )
