# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""`SRFTTrainer`: TRL's `GRPOTrainer` with demonstrations inside each group and the SRFT objective."""

from __future__ import annotations

import inspect
import logging
from typing import Any

import torch
from accelerate.utils import gather
from torch import nn
from trl import GRPOTrainer
from trl.data_utils import is_conversational

from .advantages import rollout_group_advantages
from .callbacks import SaveOnSigterm, check_output_dir, estimated_checkpoint_bytes, quiet_replicas
from .checkpoints import AtomicCheckpointMixin
from .config import SRFTConfig
from .demos import DemoStats, DemoTokenizer, normalize_demos, plan_group_demos
from .model_card import SRFT_CITATION, ModelCardMixin
from .objective import SRFTObjectiveMixin
from .reward_guard import GuardedReward, guard_reward_funcs, watch_reward_signal
from .versions import check_deepspeed
from .vllm_colocate import check_vllm_setup, shutdown_colocated_engine, vllm_colocate_overrides


logger = logging.getLogger(__name__)

# Why demonstrations cannot share a group with these (docs/compatibility.md).
_MULTI_TURN = (
    "a demonstration is one assistant turn spliced into a generation slot, while these rollouts are multi-turn "
    "conversations TRL builds by executing tool calls and masking the tool outputs: a demonstration has no tool "
    "turns to execute or mask"
)
DEMO_REFUSALS = {
    "tools": _MULTI_TURN,
    "environment_factory": _MULTI_TURN,
    "rollout_func": "a `rollout_func` replaces GRPOTrainer's generation, which is where SRFT places the "
    "demonstrations",
}


class SRFTTrainer(SRFTObjectiveMixin, ModelCardMixin, AtomicCheckpointMixin, GRPOTrainer):
    """
    Supervised Reinforcement Fine-Tuning ([arXiv 2506.19767](https://huggingface.co/papers/2506.19767)).

    A drop-in replacement for TRL's [`~trl.GRPOTrainer`] that takes the same arguments with an [`SRFTConfig`]. Of the
    `num_generations` slots of each prompt's group, `num_demos_per_group` are filled with demonstrations from the data
    set's `demo_column` instead of sampled completions (no generation is spent on them where the generation backend
    allows). Demonstrations are scored by the same reward functions and normalised with the rollouts (Eq. 7), and the
    loss is [`~srft_trainer.losses.srft_loss`]: entropy-weighted SFT and off-policy RL on the demonstrations plus the
    clipped GRPO surrogate on the rollouts, with positive rollouts entropy-weighted (Eq. 13).

    Demonstration slots are incompatible with `tools`, `environment_factory`, `rollout_func` and vision-language
    models; with `num_demos_per_group=0` the trainer is GRPO with the SRFT loss.

    Run safety: checkpoints are written whole or not at all ([`~srft_trainer.checkpoints.AtomicCheckpointMixin`]),
    SIGTERM saves and stops, and `max_unscorable_steps` consecutive steps without a scorable rollout stop the run.
    """

    _tag_names = ["trl", "srft"]
    _name = "SRFT"
    _paper = {
        "title": "SRFT: A Single-Stage Method with Supervised and Reinforcement Fine-Tuning for Reasoning",
        "id": "2506.19767",
        "citation": SRFT_CITATION,
    }

    def __init__(
        self,
        model,
        reward_funcs=None,
        args: SRFTConfig | None = None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        reward_processing_classes=None,
        callbacks=None,
        optimizers=(None, None),
        quantization_config=None,
        peft_config=None,
        tools=None,
        rollout_func=None,
        environment_factory=None,
    ):
        # GRPOTrainer's signature, positions included (tests/test_grpo_parity.py compares the two).
        kwargs = dict(
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            reward_processing_classes=reward_processing_classes,
            callbacks=callbacks,
            optimizers=optimizers,
            quantization_config=quantization_config,
            peft_config=peft_config,
            tools=tools,
            rollout_func=rollout_func,
            environment_factory=environment_factory,
        )
        if args is None:
            name = model if isinstance(model, str) else getattr(model.config, "_name_or_path", "") or "model"
            args = SRFTConfig(f"{name.rstrip('/').split('/')[-1]}-SRFT")
        if not isinstance(args, SRFTConfig):
            raise TypeError(
                f"SRFTTrainer needs an `SRFTConfig`, got {type(args).__name__}: build `SRFTConfig(**your_grpo_args)`."
            )
        if args.num_demos_per_group > 0:
            for name, why in DEMO_REFUSALS.items():
                if kwargs.get(name):
                    raise ValueError(
                        f"SRFT demonstration slots do not support `{name}`, because {why}. Train with "
                        f"`num_demos_per_group=0` (GRPO with `{name}`, every GRPO option kept) or without `{name}`."
                    )
            columns = getattr(train_dataset, "column_names", None)
            if isinstance(columns, list) and args.demo_column not in columns:
                raise ValueError(
                    f"The training data set has no demonstration column `{args.demo_column}` (columns: {columns}): "
                    "set `demo_column` to the column holding the demonstrations, or `num_demos_per_group=0`."
                )
        if args.guard_rewards:
            reward_funcs = guard_reward_funcs(reward_funcs, args.reward_timeout)
        check_output_dir(args.output_dir)  # before transformers creates it: our message, not a raw traceback
        quiet_replicas()
        check_vllm_setup(args)
        check_deepspeed(args)
        with vllm_colocate_overrides():  # the colocated engine is built in here (vLLM's CPU build needs adapting)
            super().__init__(model, reward_funcs, args=args, train_dataset=train_dataset, **kwargs)
        if self._is_vlm and args.num_demos_per_group > 0:
            raise ValueError("SRFT demonstration slots support text models only: set `num_demos_per_group=0`.")
        if args.min_demo_reward is not None and args.demo_reward is None:
            for func, name in zip(self.reward_funcs, self.reward_func_names):
                if isinstance(func, nn.Module) or inspect.iscoroutinefunction(func):
                    raise ValueError(
                        f"`min_demo_reward` pre-scores demonstrations with plain (synchronous) reward functions, but "
                        f"`{name}` is a reward model or async: unset `min_demo_reward` or filter the demos offline."
                    )
        # Fail now, not at the first save hours later, if the output directory is unwritable or too full.
        saves = args.save_strategy != "no"
        check_output_dir(args.output_dir, estimated_checkpoint_bytes(self.model, args.save_only_model) if saves else 0)
        if args.save_on_sigterm:
            self.add_callback(SaveOnSigterm())
        self._demo_tokenizer = DemoTokenizer(self._tokenizer, list(self.eos_token_ids), self._render_conversation)
        # vLLM server mode and tensor-parallel colocate slice results by each process's list length, so every process
        # must generate the same number of rows: there, demo slots are generated and then replaced.
        self.skip_demo_generation = not (
            args.use_vllm and (args.vllm_mode == "server" or args.vllm_tensor_parallel_size > 1)
        )
        self.num_generated_sequences = 0  # rows sent to the generation backend on this process, for benchmarks/tests
        self._demo_plan: list[list[int] | None] | None = None
        self._local_is_demo: torch.Tensor | None = None
        self._step_rewards: tuple[torch.Tensor, torch.Tensor] | None = None

    def end(self) -> None:
        """Shuts down a colocated vLLM engine on CPU while the process group exists, then `Trainer.end()`."""
        shutdown_colocated_engine(self)
        super().end()

    # ----------------------------------------------------------------------------------------------- demonstrations
    def _render_conversation(self, messages: list[dict], add_generation_prompt: bool) -> list[int]:
        out = self.processing_class.apply_chat_template(
            messages,
            tools=self.tools or None,
            chat_template=self.chat_template,
            add_generation_prompt=add_generation_prompt,
            tokenize=True,
            return_dict=True,
            **self.chat_template_kwargs,
        )
        ids = out["input_ids"]
        return list(ids[0]) if ids and isinstance(ids[0], list) else list(ids)

    def _usable_demos(self, row: dict[str, Any], stats: DemoStats) -> list[list[int]]:
        column = self.args.demo_column
        if column not in row:
            raise ValueError(f"A training row has no demonstration column `{column}` (keys: {sorted(row)}).")
        demos = normalize_demos(row[column], column)
        if not demos:
            stats["missing"] += 1
            return []
        prompt = row["prompt"]
        prompt_ids = list(self._tokenize_prompts([prompt])[0][0])
        usable = []
        for demo in demos:
            ids = self._demo_tokenizer(prompt, prompt_ids, demo)
            if len(ids) > self.max_completion_length:
                if self.args.demo_too_long == "drop":
                    stats["dropped_too_long"] += 1
                    continue
                ids = ids[: self.max_completion_length]
                stats["truncated"] += 1
            usable.append(ids)
        if self.args.min_demo_reward is not None and usable:
            scores = self._score_demos(row, usable)
            kept = [ids for ids, score in zip(usable, scores) if score >= self.args.min_demo_reward]
            stats["dropped_low_reward"] += len(usable) - len(kept)
            usable = kept
        return usable

    def _decode_completions(self, prompt, completion_ids: list[list[int]]) -> list:
        texts = self.processing_class.batch_decode(completion_ids, skip_special_tokens=True)
        if is_conversational({"prompt": prompt}):
            return [[{"role": "assistant", "content": text}] for text in texts]
        return texts

    def _score_demos(self, row: dict[str, Any], demo_ids: list[list[int]]) -> list[float]:
        """Weighted total reward of a row's demos, computed locally (no collective) before generation."""
        if self.args.demo_reward is not None:
            return [float(self.args.demo_reward) * float(self.reward_weights.sum())] * len(demo_ids)
        n = len(demo_ids)
        kwargs = {key: [value] * n for key, value in row.items() if key not in ("prompt", "completion")}
        totals = torch.zeros(n)
        for func, weight in zip(self.reward_funcs, self.reward_weights.cpu()):
            scores = func(
                prompts=[row["prompt"]] * n,
                completions=self._decode_completions(row["prompt"], demo_ids),
                completion_ids=demo_ids,
                trainer_state=self.state,
                log_extra=lambda *a, **k: None,
                log_metric=lambda *a, **k: None,
                **kwargs,
            )
            totals += weight * torch.tensor([float("nan") if s is None else s for s in scores]).nan_to_num(0.0)
        return totals.tolist()

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        training = self.model.training
        stats = DemoStats()
        plan: list[list[int] | None] = [None] * len(inputs)
        if training and self.args.num_demos_per_group > 0:
            plan = plan_group_demos(
                len(inputs),
                self.num_generations,
                self.args.num_demos_per_group,
                lambda start: self._usable_demos(inputs[start], stats),
                rotation=self.state.global_step,
            )
        is_demo = [ids is not None for ids in plan]
        self._demo_plan = plan if any(is_demo) else None
        self._local_is_demo = torch.tensor(is_demo, device=self.accelerator.device)
        if self.args.log_completions:
            self._pending_extra_logs["is_demo"].extend(is_demo)
        try:
            output = super()._generate_and_score_completions(inputs)
        finally:
            self._demo_plan = None
        output["is_demo"] = self._local_is_demo
        self._attach_rollout_signals(output, len(inputs), training)
        if training:
            self._log_reward_failures()
        if training and self.args.num_demos_per_group > 0:
            if self.mask_truncated_completions:
                self._unmask_truncated_demos(output, plan)
            self._log_demo_metrics(output, stats)
        self._step_rewards = None
        return output

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        plan = self._demo_plan
        if plan is None:
            self.num_generated_sequences += len(prompt_ids)
            return super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images
            )
        if len(plan) != len(prompt_ids):
            raise RuntimeError(f"SRFT demo plan has {len(plan)} rows but generation got {len(prompt_ids)} prompts.")
        rows = [i for i, ids in enumerate(plan) if ids is None] if self.skip_demo_generation else range(len(plan))
        rows = list(rows)
        self.num_generated_sequences += len(rows)
        completion_ids, logprobs = super()._generate_single_turn(
            [prompt_ids[i] for i in rows],
            None if images is None else [images[i] for i in rows],
            multimodal_fields,
            num_generations,
            has_tool_images,
        )
        generated = dict(zip(rows, range(len(rows))))
        all_ids, all_logprobs = [], None if logprobs is None else []
        for i, demo_ids in enumerate(plan):
            if demo_ids is None:
                all_ids.append(list(completion_ids[generated[i]]))
                if logprobs is not None:
                    all_logprobs.append(logprobs[generated[i]])
            else:
                all_ids.append(list(demo_ids))
                if logprobs is not None:  # no sampling log-prob: TRL turns None into NaN, i.e. an IS ratio of 1
                    all_logprobs.append([None] * len(demo_ids))
        return all_ids, all_logprobs

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        global_is_demo = gather(self._local_is_demo).bool()
        if self.model.training:
            watch_reward_signal(self, rewards_per_func, ~global_is_demo)  # before demo_reward fills the demo rows
        if self.model.training and self.args.num_demos_per_group > 0 and self.args.demo_reward is not None:
            rewards_per_func[global_is_demo] = float(self.args.demo_reward)
        self._step_rewards = (rewards_per_func, global_is_demo)
        return rewards_per_func

    def _total_rewards(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's weighted total reward over the whole generation batch (NaN where unscorable), and `is_demo`."""
        rewards_per_func, global_is_demo = self._step_rewards
        rewards = (rewards_per_func * self.reward_weights.to(rewards_per_func.device).unsqueeze(0)).nansum(dim=1)
        rewards[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan
        return rewards, global_is_demo

    def _attach_rollout_signals(self, output: dict[str, Any], local_rows: int, training: bool) -> None:
        # TRL computes the group advantages inline in `_generate_and_score_completions` (no hook), so LUFFY's
        # rollout-only statistics replace them afterwards, from the same rewards; the REINFORCE objective needs the
        # rewards themselves. Both are sliced to this process's rows as TRL slices its advantages.
        stats_from_rollouts = training and self.args.group_stats_from == "rollouts"
        if not (stats_from_rollouts or self.args.rollout_objective == "reinforce"):
            return
        rewards, global_is_demo = self._total_rewards()
        start = self.accelerator.process_index * local_rows
        local = slice(start, start + local_rows)
        if stats_from_rollouts:
            advantages = rollout_group_advantages(rewards, global_is_demo, self.num_generations, self.scale_rewards)
            output["advantages"] = advantages[local].to(output["advantages"].dtype)
        if self.args.rollout_objective == "reinforce":
            output["rewards"] = rewards[local]

    def _log_reward_failures(self) -> None:
        failures = 0
        for func in self.reward_funcs:
            if isinstance(func, GuardedReward):
                failures += sum(func.failures.values())
                func.failures.clear()
        total = self.accelerator.reduce(torch.tensor(float(failures), device=self.accelerator.device), "sum")
        self._metrics["train"]["srft/reward_failures"].append(total.item())

    def _unmask_truncated_demos(self, output: dict[str, Any], plan: list[list[int] | None]) -> None:
        # `mask_truncated_completions` is for rollouts cut by the length limit; a truncated demo is still a demo.
        mask = output["completion_mask"]
        before = mask.sum()
        for i, ids in enumerate(plan):
            if ids is not None:
                mask[i, : len(ids)] = 1
        output["num_items_in_batch"] = output["num_items_in_batch"] + gather(mask.sum() - before).sum()

    def _log_demo_metrics(self, output: dict[str, Any], stats: DemoStats) -> None:
        device = self.accelerator.device
        is_demo = self._local_is_demo
        advantages = output["advantages"]
        local = torch.tensor(
            [
                advantages[is_demo].sum().item(),
                is_demo.sum().item(),
                (advantages[~is_demo] > 0).sum().item(),
                (~is_demo).sum().item(),
                stats["dropped_too_long"] + stats["dropped_low_reward"],
                stats["truncated"],
                stats["missing"],
                self._demo_tokenizer.fallbacks,
            ],
            device=device,
            dtype=torch.float64,
        )
        adv_sum, n_demo, n_pos, n_roll, dropped, truncated, missing, fallbacks = self.accelerator.reduce(
            local, reduction="sum"
        ).tolist()
        metrics = self._metrics["train"]
        if self._step_rewards is not None:
            rewards, global_is_demo = self._total_rewards()
            metrics["srft/demo_reward_mean"].append(torch.nanmean(rewards[global_is_demo]).item())
            metrics["srft/rollout_reward_mean"].append(torch.nanmean(rewards[~global_is_demo]).item())
        metrics["srft/demo_advantage_mean"].append(adv_sum / n_demo if n_demo else float("nan"))
        metrics["srft/pos_rollout_frac"].append(n_pos / n_roll if n_roll else float("nan"))
        metrics["srft/demos_used"].append(n_demo)
        metrics["srft/demos_dropped"].append(dropped)
        metrics["srft/demos_truncated"].append(truncated)
        metrics["srft/demos_missing"].append(missing)
        metrics["srft/demo_template_fallbacks"].append(fallbacks)
        for reason in ("dropped_too_long", "dropped_low_reward", "truncated"):
            if stats[reason] and not getattr(self, f"_warned_{reason}", False):
                setattr(self, f"_warned_{reason}", True)
                logger.warning(
                    "SRFT: %d demonstration(s) %s in this batch (see `demo_too_long`/`min_demo_reward`); counted in "
                    "the srft/demos_* metrics, warned once.",
                    stats[reason],
                    reason.replace("_", " "),
                )
