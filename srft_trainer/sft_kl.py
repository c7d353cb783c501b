# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
The paper's SFT_KL baseline (Appendix B, Eq. A1): SFT plus `kl_coef` times the KL divergence from the trained policy
to the frozen base model, on the completion tokens.

TRL's `SFTTrainer` has no reference model or KL term, so [`SFTKLTrainer`] overrides its `compute_loss`. The policy's
forward pass is the unfused one (full logits): the KL needs the policy's whole next-token distribution with its
gradient, so one forward gives both the negative log-likelihood and the KL, plus one no-grad forward of the reference.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from accelerate.utils import is_peft_model
from trl import SFTConfig, SFTTrainer

from .checkpoints import AtomicCheckpointMixin
from .model_card import ModelCardMixin


@dataclass
class SFTKLConfig(SFTConfig):
    r"""
    Configuration class for [`SFTKLTrainer`]: TRL's [`~trl.SFTConfig`] plus the KL coefficient.

    Parameters:
        kl_coef (`float`, *optional*, defaults to `0.2`):
            Weight `λ` of the KL term: the loss is `NLL + λ · KL(π_θ ‖ π_ref)`, both as means over the completion
            (label) tokens. The paper's SFT_KL uses `λ = 0.2`. `0` trains plain SFT (and still logs the KL).
    """

    kl_coef: float = field(default=0.2, metadata={"help": "Weight of KL(policy || reference) on completion tokens."})

    def __post_init__(self):
        super().__post_init__()
        if self.kl_coef < 0:
            raise ValueError(f"`kl_coef` must be >= 0, got {self.kl_coef}.")
        if self.loss_type != "nll":
            raise ValueError(
                "SFT_KL adds its KL term to the negative log-likelihood: set `loss_type='nll'`, got "
                f"{self.loss_type!r}."
            )
        if self.label_smoothing_factor:
            raise ValueError(
                f"SFT_KL does not combine with label smoothing: set `label_smoothing_factor=0`, got "
                f"{self.label_smoothing_factor}."
            )
        if self.use_liger_kernel:
            raise ValueError("SFT_KL needs the policy's full logits: set `use_liger_kernel=False`.")


def token_kl(policy_logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
    """
    Per-position KL divergence `KL(π_θ ‖ π_ref) = Σ_v π_θ(v) (log π_θ(v) − log π_ref(v))`, in float32.

    Args:
        policy_logits (`torch.Tensor`): `(N, V)` logits of the policy (may carry a gradient).
        ref_logits (`torch.Tensor`): `(N, V)` logits of the reference.

    Returns:
        `torch.Tensor`: `(N,)` non-negative KL per position.
    """
    logp = F.log_softmax(policy_logits.float(), dim=-1)
    ref_logp = F.log_softmax(ref_logits.float(), dim=-1)
    return (logp.exp() * (logp - ref_logp)).sum(-1)


class SFTKLTrainer(ModelCardMixin, AtomicCheckpointMixin, SFTTrainer):
    """
    TRL's [`~trl.SFTTrainer`] with the loss `NLL + kl_coef · KL(π_θ ‖ π_ref)` (the paper's SFT_KL baseline).

    Takes every argument of `SFTTrainer` plus `ref_model`. The reference is, in this order: `ref_model` (a model or a
    path); the adapter-disabled base model when `model` is a PEFT model (as TRL's trainers do); otherwise a frozen
    copy of the initial model, loaded from the policy's own checkpoint with the policy's config (so config overrides
    such as the paper's RoPE extension apply to both) and prepared for DeepSpeed/FSDP like the policy.

    Both terms are sums over the label tokens (those not `-100`), divided by the same count as TRL's SFT loss
    (`num_items_in_batch`, or the micro-batch's label tokens), so at `kl_coef=0` the loss equals `SFTTrainer`'s.
    Logged metrics: `kl` and `nll` (means per label token), plus TRL's `entropy`, `mean_token_accuracy` and
    `num_tokens`.
    """

    _tag_names = ["trl", "sft", "sft-kl"]
    _name = "SFT-KL"

    def __init__(self, model, args: SFTKLConfig | None = None, ref_model=None, **kwargs: Any):
        if kwargs.get("compute_loss_func") is not None:
            raise ValueError("SFTKLTrainer computes its own loss: `compute_loss_func` is not supported.")
        if args is not None and not isinstance(args, SFTKLConfig):
            raise ValueError(f"SFTKLTrainer needs an `SFTKLConfig` (it holds `kl_coef`), got {type(args).__name__}.")
        super().__init__(model, args=args, **kwargs)
        if self.aux_loss_enabled:
            raise ValueError(
                "SFT_KL does not support the MoE router auxiliary loss: set `output_router_logits=False`."
            )
        self.ref_model = self._make_reference(ref_model)

    # ----------------------------------------------------------------------------------------------- reference
    def _make_reference(self, ref_model):
        from trl.models import prepare_deepspeed, prepare_fsdp
        from trl.trainer.utils import create_model_from_path, disable_dropout_in_model, get_config_model_id

        if ref_model is None and is_peft_model(self.model):
            return None  # the adapter-disabled base is the reference
        if ref_model is None or isinstance(ref_model, str):
            policy = self.accelerator.unwrap_model(self.model)
            path = ref_model or get_config_model_id(policy.config)
            if not path:
                raise ValueError(
                    "SFT_KL needs a reference model: the policy was not loaded from a checkpoint (its config has no "
                    "`_name_or_path`). Pass `ref_model=` (a model or a path)."
                )
            kwargs = dict(self.args.model_init_kwargs or {})
            if self.args.distributed_state.distributed_type in ("MULTI_GPU", "DEEPSPEED"):
                kwargs["device_map"] = None  # "auto" fails under distributed training
            kwargs.setdefault("dtype", policy.dtype)
            kwargs.setdefault("attn_implementation", policy.config._attn_implementation)
            if ref_model is None:  # the initial policy: same config, overrides included
                kwargs["config"] = copy.deepcopy(policy.config)
            ref_model = create_model_from_path(path, **kwargs)
        ref_model.eval()
        ref_model.requires_grad_(False)
        disable_dropout_in_model(ref_model)
        if self.is_deepspeed_enabled:
            return prepare_deepspeed(ref_model, self.accelerator)
        if self.is_fsdp_enabled:
            return prepare_fsdp(ref_model, self.accelerator)
        return self.accelerator.prepare_model(ref_model, evaluation_mode=True)

    @torch.no_grad()
    def _reference_logits(self, model, inputs: dict[str, Any]) -> torch.Tensor:
        if self.ref_model is not None:
            return self.ref_model(**inputs).logits
        from trl.trainer.utils import use_adapter

        peft_model = self.accelerator.unwrap_model(model)
        # Re-training an existing adapter: TRL keeps the initial copy under the name "ref".
        with use_adapter(peft_model, adapter_name="ref" if "ref" in peft_model.peft_config else None):
            return model(**inputs).logits

    # ----------------------------------------------------------------------------------------------------- loss
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        inputs["use_cache"] = False
        labels = inputs["labels"]
        model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
        outputs = model(**model_inputs)  # unfused forward: full logits, with their gradient
        ref_logits = self._reference_logits(model, model_inputs)

        if "shift_labels" in inputs:  # context/sequence parallelism pre-shifts the labels
            raise ValueError("SFT_KL does not support context or sequence parallelism.")
        target = labels[:, 1:]
        mask = target != -100
        logits = outputs.logits[:, :-1][mask]
        logp = F.log_softmax(logits.float(), dim=-1)
        nll = -logp.gather(-1, target[mask].unsqueeze(-1)).squeeze(-1)
        kl = token_kl(logits, ref_logits[:, :-1][mask])

        num_tokens = mask.sum() if num_items_in_batch is None else num_items_in_batch
        denominator = torch.as_tensor(num_tokens, device=logits.device).clamp(min=1)
        loss = (nll.sum() + self.args.kl_coef * kl.sum()) / denominator
        # As TRL's SFT loss: `num_items_in_batch` counts every rank's tokens and DDP averages the gradients.
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())

        self._log_token_metrics(mode, inputs, logp.detach(), target[mask], nll.detach(), kl.detach())
        return (loss, outputs) if return_outputs else loss

    def _log_token_metrics(self, mode, inputs, logp, target, nll, kl) -> None:
        gather = self.accelerator.gather_for_metrics
        count = gather(torch.as_tensor(float(len(target)), device=logp.device)).sum()
        sums = {
            "kl": kl.sum(),
            "nll": nll.sum(),
            "entropy": -(logp.exp() * logp).sum(-1).sum(),
            "mean_token_accuracy": (logp.argmax(-1) == target).float().sum(),
        }
        for name, value in sums.items():
            total = gather(value.reshape(1)).sum()
            self._metrics[mode][name].append((total / count).item() if count > 0 else 0.0)
        if mode == "train":
            if "attention_mask" in inputs:
                local = inputs["attention_mask"].sum()
            else:  # padding-free batches carry position_ids instead
                local = torch.tensor(inputs["position_ids"].size(1), device=logp.device)
            self._total_train_tokens += gather(local).sum().item() // self._tp_size
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
