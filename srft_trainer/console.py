# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
What `srft train` prints: the progress bar with one compact line per logging step (every metric still goes to the
trackers and `trainer_state.json`), and no deprecation noise about names TRL itself uses.
"""

from __future__ import annotations

import warnings

from transformers.trainer_callback import ProgressCallback


# The metrics of the compact line, in order, with their short names; those a run does not log are left out.
COMPACT_METRICS = (
    ("loss", "loss"),
    ("reward", "reward"),
    ("srft/rollout_reward_mean", "rollout reward"),
    ("entropy", "entropy"),
    ("srft/w_sft", "w_sft"),
    ("srft/w_rl", "w_rl"),
    ("srft/sft_nll", "demo nll"),
    ("srft/demos_used", "demos"),
    ("srft/reward_failures", "reward failures"),
    ("completions/mean_length", "length"),
    ("mean_token_accuracy", "token acc"),
    ("learning_rate", "lr"),
)


def compact_line(step: int, max_steps: int, logs: dict) -> str | None:
    """`step 5/150 | loss 0.156 | reward 0.125 | ...` from one logging step's metrics (or the run's summary)."""
    if "train_runtime" in logs:
        return f"done in {logs['train_runtime']:.0f} s ({logs.get('train_steps_per_second', 0):.2f} steps/s)"
    parts = [f"step {step}/{max_steps}"]
    for key, label in COMPACT_METRICS:
        value = logs.get(key)
        if isinstance(value, (int, float)):
            shown = f"{value:.0f}" if key in ("srft/demos_used", "srft/reward_failures") else f"{value:.4g}"
            if key == "srft/reward_failures" and value == 0:
                continue
            parts.append(f"{label} {shown}")
    return " | ".join(parts) if len(parts) > 1 else None


class CompactProgressCallback(ProgressCallback):
    """transformers' progress bar, writing [`compact_line`] under it instead of the whole metrics dict."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs:
            line = compact_line(state.global_step, state.max_steps, logs)
            if line:
                self.training_bar.write(line)


def use_compact_progress(trainer) -> None:
    """Swaps the trainer's progress callback for [`CompactProgressCallback`] (when it shows a bar at all)."""
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(CompactProgressCallback)


def quiet_renamed_argument_warnings() -> None:
    """
    transformers >= 5.2x renamed `gradient_checkpointing*` to `activation_checkpointing*` and warns at every use of the
    old names, which TRL 1.16's configs and trainers use themselves; our recipes keep the old key because
    transformers 5.19 (our floor) knows no other. Only these messages are silenced.
    """
    warnings.filterwarnings(
        "ignore",
        message=r"`(is_)?gradient_checkpointing(_kwargs|_enable|_disable)?` is deprecated and will be removed in v6",
        category=FutureWarning,
    )
