# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""`SRFTConfig`: TRL's `GRPOConfig` plus the SRFT fields, with the paper's defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig

from .advantages import GROUP_STATS_FROM
from .losses import DEMO_AGGREGATION, ROLLOUT_OBJECTIVES, SFT_WEIGHT_SIGNS, SUPPORTED_LOSS_TYPES
from .versions import quiet_renamed_argument_warnings


ENTROPY_SOURCES = ("all", "rollouts", "demos")
ENTROPY_GRANULARITIES = ("micro_batch", "sequence", "token")
DEMO_TOO_LONG = ("drop", "truncate")


@dataclass
class SRFTConfig(GRPOConfig):
    r"""
    Configuration class for [`SRFTTrainer`].

    [`SRFTConfig`] inherits every parameter of TRL's [`~trl.GRPOConfig`]. The demonstration slots are part of
    `num_generations`: with `num_generations=8` and `num_demos_per_group=1`, each group holds 7 on-policy rollouts and
    1 demonstration, as in the paper. Only the new parameters are listed here.

    Parameters:
        demo_column (`str`, *optional*, defaults to `"completion"`):
            Data set column holding the demonstration(s) of each prompt: a string, a list of chat messages (the
            assistant turn(s)), or a list of several demonstrations (strings or message lists). The default makes a
            TRL prompt-completion data set an SRFT data set.
        num_demos_per_group (`int`, *optional*, defaults to `1`):
            How many of the `num_generations` slots of each group are filled with demonstrations. Must satisfy
            `0 <= num_demos_per_group < num_generations` (one rollout at least; two with
            `group_stats_from="rollouts"`). `0` trains GRPO with SRFT's `w_RL` on positive rollouts (set
            `rl_entropy_weighting=False, rl_pos_coef=1.0` for GRPOTrainer exactly).
        sft_coef (`float`, *optional*, defaults to `0.5`):
            Coefficient of the SFT term on demonstrations: `w_SFT = sft_coef * exp(-H)` (paper Eq. 8).
        rl_pos_coef (`float`, *optional*, defaults to `0.1`):
            Coefficient of positive-advantage rollouts: `w_RL = rl_pos_coef * exp(H)` (paper Eq. 12).
        w_rl_max (`float` or `None`, *optional*, defaults to `None`):
            Caps `w_RL`. `None` keeps the paper's unbounded form; the trainer warns once when `w_RL` exceeds 1 (a
            positive rollout weighing more than in plain GRPO: `H > ln 10 = 2.30` nats with `rl_pos_coef=0.1`).
        sft_entropy_weighting (`bool`, *optional*, defaults to `True`):
            Whether `w_SFT` includes `exp(-H)`. The paper's "w/o w_SFT" ablation is `False` with `sft_coef=1.0`.
        rl_entropy_weighting (`bool`, *optional*, defaults to `True`):
            Whether `w_RL` includes `exp(H)`. The paper's "w/o w_RL" ablation is `False` with `rl_pos_coef=1.0`.
        demo_rl (`bool`, *optional*, defaults to `True`):
            Whether demonstrations also get the off-policy RL term `-A * pi_theta` (paper Eq. 9-10).
        entropy_source (`str`, *optional*, defaults to `"all"`):
            Which completion tokens of the micro-batch the entropy `H` averages over: `"all"`, `"rollouts"` or
            `"demos"`. Falls back to all tokens when the selection is empty.
        demo_too_long (`str`, *optional*, defaults to `"drop"`):
            What to do with a demonstration longer than `max_completion_length` tokens: `"drop"` gives its slot back
            to an on-policy rollout, `"truncate"` cuts it. Counted in the `srft/demos_dropped` and
            `srft/demos_truncated` metrics either way.
        demo_reward (`float` or `None`, *optional*, defaults to `None`):
            `None` scores demonstrations with the same reward functions as rollouts; a float assigns that reward to
            every demonstration.
        min_demo_reward (`float` or `None`, *optional*, defaults to `None`):
            A demonstration scoring below this is not used and its slot goes back to an on-policy rollout.
        guard_rewards (`bool`, *optional*, defaults to `True`):
            Wrap plain reward functions so that a row whose reward raises, is `None`, NaN or not a number is scored
            as unscorable (TRL's `None`) instead of stopping the run; counted in `srft/reward_failures`.
        reward_timeout (`float` or `None`, *optional*, defaults to `None`):
            With `guard_rewards`, seconds after which a reward call is abandoned and its rows scored `None`. The call
            then runs in a worker thread, so leave it `None` for reward functions that rely on SIGALRM (e.g.
            math-verify with its default timeouts); `srft_trainer.grading.accuracy_reward` is safe either way.
        max_unscorable_steps (`int`, *optional*, defaults to `3`):
            Stop with an error after this many consecutive training steps in which no rollout could be scored (every
            reward function raised, timed out or returned `None` for every rollout): the run would otherwise go on as
            SFT alone. Each such step is logged as a warning; `0` never stops.
        save_on_sigterm (`bool`, *optional*, defaults to `True`):
            On SIGTERM (pre-emption), finish the step, save a checkpoint and stop, so that a resume loses nothing.

    > Variants of the authors' released code (the paper's behaviour is the default of each; the README lists every
    > difference and `recipes/qwen2.5-math-7b/srft_official.yaml` sets them all)

        sft_weight_sign (`str`, *optional*, defaults to `"paper"`):
            `"paper"`: `w_SFT = sft_coef * exp(-H)` (Eq. 8); `"code"`: `sft_coef * exp(+H)`, as the released code.
        entropy_granularity (`str`, *optional*, defaults to `"micro_batch"`):
            The `H` of the weights: `"micro_batch"` (one value, the mean over the `entropy_source` tokens of the
            micro-batch on all processes), `"sequence"` (each row its own mean token entropy, as HPT's
            re-implementation) or `"token"` (each token its own entropy, as the released code).
        demo_policy_shaping (`float` or `None`, *optional*, defaults to `None`):
            `None`: the demo term is `-A * pi_theta` (Eq. 9-10); a `gamma`: LUFFY's policy shaping
            `-A * p / (p + gamma)` (the released code: 0.1).
        group_stats_from (`str`, *optional*, defaults to `"all"`):
            `"all"`: group mean/std over rollouts and demonstrations together (Eq. 7); `"rollouts"`: over the on-policy
            rollouts only, demonstrations scored against them (LUFFY's `grpo_split`).
        rollout_objective (`str`, *optional*, defaults to `"clipped"`):
            `"clipped"`: GRPO's clipped surrogate with `w_RL` on positive-advantage rollouts; `"reinforce"`: the
            binary REINFORCE form of Eq. 11-12 (`w_RL * -log p` for reward > 0, `+log p` otherwise), as HPT's "paper"
            mode.

    Every `GRPOConfig` option acts on the on-policy rollouts exactly as in `GRPOTrainer` (the rollout term is
    GRPOTrainer's own loss); docs/compatibility.md lists each option and what it does with demonstrations.
    """

    demo_column: str = field(
        default="completion",
        metadata={"help": "Data set column holding the demonstration(s): a string, messages, or a list of them."},
    )
    num_demos_per_group: int = field(
        default=1, metadata={"help": "How many of the num_generations slots of each group hold demonstrations."}
    )
    sft_coef: float = field(default=0.5, metadata={"help": "w_SFT = sft_coef * exp(-H) (paper Eq. 8)."})
    rl_pos_coef: float = field(default=0.1, metadata={"help": "w_RL = rl_pos_coef * exp(H) (paper Eq. 12)."})
    w_rl_max: float | None = field(
        default=None, metadata={"help": "Cap on w_RL; None keeps the paper's unbounded rl_pos_coef * exp(H)."}
    )
    sft_entropy_weighting: bool = field(default=True, metadata={"help": "Multiply w_SFT by exp(-H)."})
    rl_entropy_weighting: bool = field(default=True, metadata={"help": "Multiply w_RL by exp(H)."})
    demo_rl: bool = field(default=True, metadata={"help": "Off-policy RL term -A * pi_theta on demonstrations."})
    entropy_source: str = field(
        default="all",
        metadata={"help": "Tokens H averages over.", "choices": list(ENTROPY_SOURCES)},
    )
    demo_too_long: str = field(
        default="drop",
        metadata={"help": "Demos longer than max_completion_length.", "choices": list(DEMO_TOO_LONG)},
    )
    demo_reward: float | None = field(
        default=None, metadata={"help": "Fixed reward for every demonstration; None scores them like rollouts."}
    )
    min_demo_reward: float | None = field(
        default=None, metadata={"help": "Demonstrations scoring below this give their slot back to a rollout."}
    )
    guard_rewards: bool = field(
        default=True, metadata={"help": "Score rows whose reward raises/is None/NaN as unscorable, counted."}
    )
    reward_timeout: float | None = field(
        default=None, metadata={"help": "Seconds before a reward call is abandoned (runs rewards in a thread)."}
    )
    max_unscorable_steps: int = field(
        default=3, metadata={"help": "Stop after this many consecutive steps with no scorable rollout (0: never)."}
    )
    save_on_sigterm: bool = field(
        default=True, metadata={"help": "On SIGTERM, save a checkpoint at the end of the step and stop."}
    )
    sft_weight_sign: str = field(
        default="paper",
        metadata={
            "help": "w_SFT = sft_coef * exp(-H) ('paper') or exp(+H) ('code').",
            "choices": list(SFT_WEIGHT_SIGNS),
        },
    )
    entropy_granularity: str = field(
        default="micro_batch",
        metadata={
            "help": "H of the weights: per micro-batch, sequence or token.",
            "choices": list(ENTROPY_GRANULARITIES),
        },
    )
    demo_policy_shaping: float | None = field(
        default=None, metadata={"help": "Demo term -A * p / (p + gamma) with this gamma; None: -A * p."}
    )
    group_stats_from: str = field(
        default="all",
        metadata={"help": "Rows of the group mean/std: 'all' or 'rollouts'.", "choices": list(GROUP_STATS_FROM)},
    )
    rollout_objective: str = field(
        default="clipped",
        metadata={
            "help": "'clipped' surrogate or binary 'reinforce' (Eq. 11-12).",
            "choices": list(ROLLOUT_OBJECTIVES),
        },
    )

    def __post_init__(self):
        quiet_renamed_argument_warnings()  # from Python as from `srft train`: TRL's own defaults use the old names
        super().__post_init__()
        if self.remove_unused_columns:
            raise ValueError(
                "SRFT reads the demonstration column of each row: set `remove_unused_columns=False` (GRPO's default)."
            )
        if self.num_demos_per_group < 0:
            raise ValueError(f"`num_demos_per_group` must be >= 0, got {self.num_demos_per_group}.")
        rollouts = self.num_generations - self.num_demos_per_group
        if self.num_demos_per_group > 0 and rollouts < 1:
            raise ValueError(
                f"`num_generations - num_demos_per_group` must be >= 1: a group of only demonstrations has no "
                f"on-policy rollout to learn from (got num_generations={self.num_generations}, "
                f"num_demos_per_group={self.num_demos_per_group}): raise `num_generations` or lower "
                "`num_demos_per_group`."
            )
        local_batch = self.per_device_train_batch_size * self.steps_per_generation
        if local_batch % self.num_generations != 0:
            raise ValueError(
                f"Each process must hold whole groups: `per_device_train_batch_size * steps_per_generation` "
                f"({self.per_device_train_batch_size} * {self.steps_per_generation} = {local_batch}) must be "
                f"divisible by `num_generations` ({self.num_generations}). Change `per_device_train_batch_size`, "
                "`gradient_accumulation_steps`/`steps_per_generation` or `num_generations`."
            )
        if self.entropy_source not in ENTROPY_SOURCES:
            raise ValueError(f"`entropy_source` must be one of {ENTROPY_SOURCES}, got {self.entropy_source!r}.")
        if self.max_unscorable_steps < 0:
            raise ValueError(f"`max_unscorable_steps` must be >= 0 (0: never stop), got {self.max_unscorable_steps}.")
        if self.reward_timeout is not None and self.reward_timeout <= 0:
            raise ValueError(f"`reward_timeout` must be positive seconds or None, got {self.reward_timeout}.")
        choices = {
            "demo_too_long": DEMO_TOO_LONG,
            "sft_weight_sign": SFT_WEIGHT_SIGNS,
            "entropy_granularity": ENTROPY_GRANULARITIES,
            "group_stats_from": GROUP_STATS_FROM,
            "rollout_objective": ROLLOUT_OBJECTIVES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"`{name}` must be one of {allowed}, got {getattr(self, name)!r}.")
        if self.demo_policy_shaping is not None and not self.demo_policy_shaping > 0:
            raise ValueError(
                f"`demo_policy_shaping` must be a positive gamma (the released code uses 0.1) or None, got "
                f"{self.demo_policy_shaping!r}."
            )
        if self.entropy_granularity != "micro_batch" and self.entropy_source != "all":
            raise ValueError(
                f"`entropy_source={self.entropy_source!r}` chooses the tokens of the one micro-batch entropy: it "
                f"needs `entropy_granularity='micro_batch'` (got {self.entropy_granularity!r}, where each row or "
                "token uses its own entropy). Set `entropy_source='all'` or `entropy_granularity='micro_batch'`."
            )
        if self.group_stats_from == "rollouts" and self.multi_objective_aggregation != "sum_then_normalize":
            raise ValueError(
                "`group_stats_from='rollouts'` normalises the summed reward: it needs "
                f"`multi_objective_aggregation='sum_then_normalize'`, got {self.multi_objective_aggregation!r}."
            )
        if self.group_stats_from == "rollouts" and self.num_demos_per_group > 0 and rollouts < 2:
            raise ValueError(
                "`group_stats_from='rollouts'` takes each group's mean and std over its on-policy rollouts, and the "
                f"std of {rollouts} rollout is undefined: `num_generations - num_demos_per_group` must be >= 2 (got "
                f"{self.num_generations} - {self.num_demos_per_group}); raise `num_generations` or use "
                "`group_stats_from='all'`."
            )
        if self.w_rl_max is not None and not self.w_rl_max > 0:
            raise ValueError(f"`w_rl_max` must be a positive cap or None, got {self.w_rl_max!r}.")
        if self.num_demos_per_group > 0 and self.loss_type not in DEMO_AGGREGATION:
            raise ValueError(
                f"SRFT adds its demonstration terms with the aggregation of the `loss_type`, and has none for "
                f"{self.loss_type!r} (a loss type newer than this srft-trainer: known {tuple(DEMO_AGGREGATION)}): "
                "use one of those, or `num_demos_per_group=0`, where the rollout loss is GRPOTrainer's own."
            )
        if self.rollout_objective == "reinforce":
            self._check_reinforce()

    def _check_reinforce(self) -> None:
        # The binary REINFORCE objective (Eq. 11-12) has no importance ratio: the ratio options have no meaning for it.
        no_ratio = {
            "delta": self.delta is not None,
            "importance_sampling_level": self.importance_sampling_level != "token",
            "off_policy_mask_threshold": self.off_policy_mask_threshold is not None,
        }
        for name, bad in no_ratio.items():
            if bad:
                raise ValueError(
                    f"`{name}={getattr(self, name)!r}` acts on the importance ratio of GRPO's clipped objective, and "
                    "`rollout_objective='reinforce'` (Eq. 11-12) has no ratio: use `rollout_objective='clipped'` "
                    f"with `{name}`, or leave `{name}` at its default."
                )
        if self.loss_type not in SUPPORTED_LOSS_TYPES:
            raise ValueError(
                f"`loss_type={self.loss_type!r}` is a ratio-based GRPO objective of its own, while "
                "`rollout_objective='reinforce'` replaces the rollout objective with Eq. 11-12; of TRL's loss types "
                f"only the aggregations {SUPPORTED_LOSS_TYPES} apply to it. Pick one of them, or "
                "`rollout_objective='clipped'`."
            )
        if self.use_adaptive_entropy:
            raise ValueError(
                "`use_adaptive_entropy` is GRPOTrainer's controller inside its own loss, which "
                "`rollout_objective='reinforce'` replaces: use `rollout_objective='clipped'`, or a static "
                "`entropy_coef`."
            )
        if self.entropy_coef != 0.0 and self.top_entropy_quantile < 1.0:
            raise ValueError(
                "With `rollout_objective='reinforce'` the entropy bonus (`entropy_coef`) averages over all rollout "
                f"tokens, not GRPO's high-entropy selection (`top_entropy_quantile={self.top_entropy_quantile}`): "
                "use `rollout_objective='clipped'`, or set one of them back to its default."
            )
