# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
What `srft train` prints: its `--help` (this project's keys first), the progress bar with one compact line per
logging step (every metric still goes to the trackers and `trainer_state.json`), and no deprecation noise about names
TRL itself uses.
"""

from __future__ import annotations

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


COMMON_KEYS = (
    "model_name_or_path", "dataset_name", "output_dir", "learning_rate", "lr_scheduler_type", "max_steps",
    "per_device_train_batch_size", "gradient_accumulation_steps", "num_generations", "max_completion_length",
    "temperature", "use_vllm", "vllm_mode", "bf16", "save_strategy", "save_steps", "resume_from_checkpoint",
    "report_to", "push_to_hub", "hub_model_id", "seed",
)  # fmt: skip


def _field_lines(cls, names) -> list[str]:
    from dataclasses import MISSING, fields

    lines = []
    for f in fields(cls):
        if f.name not in names:
            continue
        default = (
            f.default
            if f.default is not MISSING
            else (f.default_factory() if f.default_factory is not MISSING else "")
        )
        lines.append(f"  --{f.name} (default: {default!r})\n      {f.metadata.get('help', '')}")
    return lines


def short_help(trainer: str) -> str:
    """`srft train --help`: how to call it, this project's own keys first, then where the rest are."""
    from dataclasses import fields

    from trl import GRPOConfig, ScriptArguments

    from .recipe import SRFTScriptArguments, config_class

    cls = config_class(trainer)
    own_script = [
        f.name for f in fields(SRFTScriptArguments) if f.name not in {g.name for g in fields(ScriptArguments)}
    ]
    own_config = [f.name for f in fields(cls) if f.name not in {g.name for g in fields(GRPOConfig)}]
    lines = [
        "usage: srft train --config RECIPE [--key value ...]",
        "",
        "Trains with a YAML recipe (recipes/); `--key value` overrides any key of it. A key is a field of the script",
        "arguments below, of the trainer's config class or of TRL's ModelConfig. Check a recipe offline first:",
        "srft check --config RECIPE. Under accelerate: accelerate launch ... -m srft_trainer.train --config RECIPE.",
        "",
        "srft train's own keys:",
        *_field_lines(SRFTScriptArguments, own_script),
    ]
    if own_config:
        lines += ["", f"SRFT's keys ({cls.__name__}, on top of TRL's GRPOConfig):", *_field_lines(cls, own_config)]
    lines += [
        "",
        "Often set (TRL / transformers): " + ", ".join(f"--{k}" for k in COMMON_KEYS),
        f"Every field of {cls.__name__} (TRL's and transformers' training arguments) and of TRL's ModelConfig is a",
        "key too: `srft train --help-all` lists them all.",
    ]
    return "\n".join(lines)
