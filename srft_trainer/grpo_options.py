# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
Every `GRPOConfig` option, classified: how SRFTTrainer treats it with demonstrations, and how its parity with
`GRPOTrainer` is tested.

tests/test_grpo_parity.py reads the fields of the installed `GRPOConfig` and fails on any field missing here, so an
option a later TRL release adds cannot be silently accepted and ignored; it runs every `parity` setting below through
both trainers. docs/compatibility.md is generated from this table (`python scripts/compat_table.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


# How an option acts once demonstrations fill some slots of each group.
ROLLOUTS = "acts on the rollout rows exactly as in GRPO; demo rows get SRFT's SFT + off-policy terms"
GROUP = "acts on the whole group, demonstrations included (they are scored and normalised with the rollouts, Eq. 7)"
GENERATION = "acts on the generated rollouts (demonstration slots are not generated)"
ALL_ROWS = "acts on every row, as in GRPO"
EVAL = "evaluation only (no demonstrations at evaluation)"
NO_EFFECT = "no effect on the loss, advantages, generation or metrics: passed to GRPOTrainer unchanged"
TOOLS_REFUSED = (
    "refused with demonstrations: a demonstration is a single assistant turn spliced into a generation slot, while a "
    "tool rollout is a multi-turn conversation TRL builds by executing tool calls and masking their outputs; SRFT has "
    "no tool turns of a demonstration to execute or mask. With `num_demos_per_group=0` it is GRPOTrainer's"
)

# How parity with GRPOTrainer is shown.
STEPS = "steps"  # two optimizer steps of both trainers: losses, every logged metric, final weights
LOSS = "loss"  # one batch through both trainers' `_compute_loss`: loss, gradients, metric keys


@dataclass(frozen=True)
class GRPOOption:
    """How SRFTTrainer treats one `GRPOConfig` field."""

    with_demos: str
    parity: str  # STEPS, LOSS, or why it is not parity-tested here
    settings: tuple[dict[str, Any], ...] = field(default=())  # each run with both trainers (STEPS/LOSS)


def _steps(with_demos: str, *settings: dict[str, Any]) -> GRPOOption:
    return GRPOOption(with_demos, STEPS, settings)


def _loss(with_demos: str, *settings: dict[str, Any]) -> GRPOOption:
    return GRPOOption(with_demos, LOSS, settings)


_VLLM = "needs vLLM: run by the vllm stage of .ci/run (tests/test_vllm_cpu.py), generation-side code is GRPOTrainer's"
_VLLM_SERVER = "vLLM server mode needs CUDA (TRL's weight sync uses NCCL): not run here"
_KL = {"model": "path", "num_iterations": 2}
_ENTROPY_CONTROL = {
    "use_adaptive_entropy": True,
    "entropy_coef": 0.01,
    "entropy_target": 9.0,
    "entropy_coef_delta": 0.2,
}

GRPO_OPTIONS: dict[str, GRPOOption] = {
    # model loading
    "model_init_kwargs": _steps(NO_EFFECT, {"model_init_kwargs": {"dtype": "float32"}, "model": "path"}),
    "trust_remote_code": GRPOOption(NO_EFFECT, "model loading only; runs no code of ours"),
    "router_aux_loss_coef": _steps(ALL_ROWS, {"router_aux_loss_coef": 0.05, "model": "moe"}),
    "disable_dropout": _steps(ALL_ROWS, {"disable_dropout": True}),
    "cast_lm_head_to_fp32": _steps(ALL_ROWS, {"cast_lm_head_to_fp32": True}),
    # groups, batches and generation
    "num_generations": _steps(GROUP, {"num_generations": 2}),
    "num_generations_eval": _steps(EVAL, {"num_generations_eval": 2, "eval_strategy": "steps", "eval_steps": 1}),
    "max_completion_length": _steps(ALL_ROWS, {"max_completion_length": 6}),
    "ds3_gather_for_generation": GRPOOption(
        GENERATION, "DeepSpeed ZeRO-3 only; SRFT does not touch generation under ZeRO-3 (tests/test_multiprocess.py)"
    ),
    "shuffle_dataset": _steps(ALL_ROWS, {"shuffle_dataset": False}),
    "pad_to_multiple_of": _steps(ALL_ROWS, {"pad_to_multiple_of": 16}),
    "generation_batch_size": _steps(ALL_ROWS, {"generation_batch_size": 8}),
    "steps_per_generation": _steps(ALL_ROWS, {"steps_per_generation": 2}),
    "temperature": _steps(GENERATION, {"temperature": 0.7}),
    "top_p": _steps(GENERATION, {"top_p": 0.8}),
    "top_k": _steps(GENERATION, {"top_k": 5}),
    "min_p": _steps(GENERATION, {"min_p": 0.05}),
    "generation_kwargs": _steps(GENERATION, {"generation_kwargs": {"top_k": 40, "typical_p": 0.95}}),
    "chat_template_kwargs": _steps(ALL_ROWS, {"chat_template_kwargs": {"enable_thinking": False}}),
    "repetition_penalty": _steps(GENERATION, {"repetition_penalty": 1.3}),
    "cache_implementation": _steps(GENERATION, {"cache_implementation": "dynamic"}),
    "use_transformers_continuous_batching": GRPOOption(
        GENERATION, "transformers' continuous-batching backend: SRFT generates through GRPOTrainer's own call"
    ),
    "transformers_continuous_batching_config": GRPOOption(
        GENERATION, "configures the continuous-batching backend (see `use_transformers_continuous_batching`)"
    ),
    "use_transformers_paged": GRPOOption(
        GENERATION, "transformers' paged backend: SRFT generates through GRPOTrainer's own call"
    ),
    # vLLM
    "use_vllm": GRPOOption(GENERATION, _VLLM),
    "vllm_mode": GRPOOption(GENERATION, _VLLM),
    "vllm_model_impl": GRPOOption(GENERATION, _VLLM),
    "vllm_enable_sleep_mode": GRPOOption(GENERATION, _VLLM),
    "vllm_structured_outputs_regex": GRPOOption(GENERATION, _VLLM),
    "vllm_server_base_url": GRPOOption(GENERATION, _VLLM_SERVER),
    "vllm_server_host": GRPOOption(GENERATION, _VLLM_SERVER),
    "vllm_server_port": GRPOOption(GENERATION, _VLLM_SERVER),
    "vllm_server_timeout": GRPOOption(GENERATION, _VLLM_SERVER),
    "vllm_group_port": GRPOOption(GENERATION, _VLLM_SERVER),
    "vllm_gpu_memory_utilization": GRPOOption(GENERATION, _VLLM),
    "vllm_max_model_length": GRPOOption(GENERATION, _VLLM),
    "vllm_tensor_parallel_size": GRPOOption(GENERATION, _VLLM),
    # vLLM importance-sampling correction: the ratio is computed by GRPOTrainer's generation code, the loss applies it
    "vllm_importance_sampling_correction": _loss(ROLLOUTS, {"importance_sampling_ratio": "token"}),
    "vllm_importance_sampling_mode": _loss(
        ROLLOUTS, {"importance_sampling_ratio": "token"}, {"importance_sampling_ratio": "sequence"}
    ),
    "vllm_importance_sampling_clip_max": GRPOOption(ROLLOUTS, _VLLM),
    "vllm_importance_sampling_clip_min": GRPOOption(ROLLOUTS, _VLLM),
    "vllm_importance_sampling_cap": GRPOOption(ROLLOUTS, _VLLM),
    # the rollout objective
    # (`model: path`: the reference model is loaded from the policy's folder, as from a Hub id)
    "beta": _steps(ROLLOUTS, {"beta": 0.04, **_KL}),
    "use_bias_correction_kl": _steps(ROLLOUTS, {"beta": 0.04, "use_bias_correction_kl": False, **_KL}),
    "sync_ref_model": _steps(
        ROLLOUTS,
        {"beta": 0.04, "sync_ref_model": True, "ref_model_sync_steps": 1, "ref_model_mixup_alpha": 0.5, **_KL},
    ),
    "ref_model_mixup_alpha": _steps(
        ROLLOUTS, {"beta": 0.04, "sync_ref_model": True, "ref_model_mixup_alpha": 0.9, **_KL}
    ),
    "ref_model_sync_steps": _steps(ROLLOUTS, {"beta": 0.04, "sync_ref_model": True, "ref_model_sync_steps": 1, **_KL}),
    "num_iterations": _steps(ROLLOUTS, {"num_iterations": 2}),
    "epsilon": _steps(ROLLOUTS, {"epsilon": 0.05, "num_iterations": 2}),
    "epsilon_high": _steps(ROLLOUTS, {"epsilon_high": 0.28, "num_iterations": 2}),
    "delta": _loss(ROLLOUTS, {"delta": 2.0, "old_logps_shift": -3.0}),
    "loss_type": _steps(
        ROLLOUTS,
        *(
            {"loss_type": name, "num_iterations": 2}
            for name in ("grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "vespo")
        ),
        {"loss_type": "luspo", "importance_sampling_level": "sequence", "num_iterations": 2},
    ),
    "sapo_temperature_neg": _steps(ROLLOUTS, {"loss_type": "sapo", "sapo_temperature_neg": 3.0, "num_iterations": 2}),
    "sapo_temperature_pos": _steps(ROLLOUTS, {"loss_type": "sapo", "sapo_temperature_pos": 0.3, "num_iterations": 2}),
    "vespo_k_pos": _steps(ROLLOUTS, {"loss_type": "vespo", "vespo_k_pos": 1.0, "num_iterations": 2}),
    "vespo_lambda_pos": _steps(ROLLOUTS, {"loss_type": "vespo", "vespo_lambda_pos": 1.0, "num_iterations": 2}),
    "vespo_k_neg": _steps(ROLLOUTS, {"loss_type": "vespo", "vespo_k_neg": 1.0, "num_iterations": 2}),
    "vespo_lambda_neg": _steps(ROLLOUTS, {"loss_type": "vespo", "vespo_lambda_neg": 1.0, "num_iterations": 2}),
    "importance_sampling_level": _steps(ROLLOUTS, {"importance_sampling_level": "sequence", "num_iterations": 2}),
    "off_policy_mask_threshold": _steps(ROLLOUTS, {"off_policy_mask_threshold": 0.0, "num_iterations": 2}),
    "mask_truncated_completions": _steps(
        "acts on truncated rollouts as in GRPO; a demonstration cut by `demo_too_long='truncate'` stays in the loss",
        {"mask_truncated_completions": True, "max_completion_length": 6},
    ),
    "top_entropy_quantile": _steps(ROLLOUTS, {"top_entropy_quantile": 0.5}),
    "entropy_coef": _steps(ROLLOUTS, {"entropy_coef": 0.01}, {"entropy_coef": 0.01, "top_entropy_quantile": 0.5}),
    "use_adaptive_entropy": _steps(ROLLOUTS, _ENTROPY_CONTROL),
    "entropy_coef_min": _steps(ROLLOUTS, {**_ENTROPY_CONTROL, "entropy_target": 0.1, "entropy_coef_min": 0.005}),
    "entropy_coef_max": _steps(ROLLOUTS, {**_ENTROPY_CONTROL, "entropy_coef_max": 0.1}),
    "entropy_coef_delta": _steps(ROLLOUTS, {**_ENTROPY_CONTROL, "entropy_coef_delta": 0.01}),
    "entropy_target": _steps(ROLLOUTS, {**_ENTROPY_CONTROL, "entropy_target": 0.1}),
    # rewards and advantages
    "reward_weights": _steps(GROUP, {"reward_weights": [0.3, 1.0]}),
    "multi_objective_aggregation": _steps(GROUP, {"multi_objective_aggregation": "normalize_then_sum"}),
    "scale_rewards": _steps(GROUP, {"scale_rewards": "batch"}, {"scale_rewards": "none"}),
    # tools
    "max_tool_calling_iterations": GRPOOption(
        TOOLS_REFUSED, "tools: a random tiny model makes no tool calls, so the tool loop is not exercised here"
    ),
    # logging
    "log_completions": _steps(ALL_ROWS, {"log_completions": True, "num_completions_to_print": 1}),
    "log_multimodal": _steps(ALL_ROWS, {"log_multimodal": False}),
    "num_completions_to_print": _steps(ALL_ROWS, {"log_completions": True, "num_completions_to_print": 2}),
    "log_unique_prompts": _steps(ALL_ROWS, {"log_completions": True, "log_unique_prompts": True}),
    "log_completions_hub_repo": GRPOOption(ALL_ROWS, "pushes completions to the Hub, which tests cannot reach"),
}

# TrainingArguments fields that GRPOTrainer gives a meaning of its own.
TRAINING_ARGUMENTS_USED_BY_GRPO: dict[str, GRPOOption] = {
    "use_liger_kernel": GRPOOption(
        ALL_ROWS, "Liger's layer kernels only (TRL 1.16 keeps its own fused LM head): needs a GPU, not run here"
    ),
    "gradient_accumulation_steps": _steps(ALL_ROWS, {"gradient_accumulation_steps": 2, "steps_per_generation": 2}),
    "per_device_train_batch_size": _steps(ALL_ROWS, {"per_device_train_batch_size": 8}),
}

# Trainer constructor arguments with a GRPO meaning (not config fields).
TRAINER_ARGUMENTS: dict[str, GRPOOption] = {
    "tools": GRPOOption(TOOLS_REFUSED, "tools: a random tiny model makes no tool calls"),
    "environment_factory": GRPOOption(TOOLS_REFUSED, "environments: multi-turn, as tools"),
    "rollout_func": GRPOOption(
        "refused with demonstrations: a `rollout_func` replaces GRPOTrainer's generation, where SRFT places the "
        "demonstrations. With `num_demos_per_group=0` it is GRPOTrainer's",
        "user-supplied generation; SRFT passes it unchanged",
    ),
    "peft_config": GRPOOption(ALL_ROWS, "tests/test_trainer.py::test_lora_peft_config trains SRFT with LoRA"),
}


def all_options() -> dict[str, GRPOOption]:
    return {**GRPO_OPTIONS, **TRAINING_ARGUMENTS_USED_BY_GRPO, **TRAINER_ARGUMENTS}
