# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
TRL's own trainers as `srft train` runs them for the baselines (`trainer: grpo`, `trainer: sft`): their training is
unchanged; they get the run safety `SRFTTrainer` has, so that a comparison never differs in how a run survives:
checkpoints written whole ([`~srft_trainer.checkpoints.AtomicCheckpointMixin`]) and, for GRPO, a stop after
`max_unscorable_steps` (3) consecutive steps in which no rollout could be scored; and the same model card
([`~srft_trainer.model_card.ModelCardMixin`]).
"""

from __future__ import annotations

import torch
from trl import GRPOTrainer, SFTTrainer

from .checkpoints import AtomicCheckpointMixin
from .model_card import ModelCardMixin
from .reward_guard import watch_reward_signal


class GRPOBaseline(ModelCardMixin, AtomicCheckpointMixin, GRPOTrainer):
    """TRL's `GRPOTrainer` with whole checkpoints and the stop on a lost reward signal."""

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if self.model.training:
            every_row = torch.ones(rewards_per_func.shape[0], dtype=torch.bool, device=rewards_per_func.device)
            watch_reward_signal(self, rewards_per_func, every_row)
        return rewards_per_func


class SFTBaseline(ModelCardMixin, AtomicCheckpointMixin, SFTTrainer):
    """TRL's `SFTTrainer` with whole checkpoints and this project's model card."""
