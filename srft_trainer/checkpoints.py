# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
Checkpoints that are complete or absent, and resuming from the newest complete one.

transformers writes `checkpoint-N` in place (weights, optimizer, scheduler, RNG states, then `trainer_state.json`), so
a run killed during a save leaves a partial folder that `get_last_checkpoint` then picks for
`resume_from_checkpoint=True`. [`AtomicCheckpointMixin`] makes the trainer write each checkpoint into a hidden
staging folder (`output_dir/.staging/checkpoint-N`) and rename it into place once every process has finished writing;
[`resolve_resume`] turns `resume_from_checkpoint` (a path, `true` from YAML or the command line, or none) into the
newest complete checkpoint, naming the partial ones it skips.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any


logger = logging.getLogger(__name__)

STAGING = ".staging"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# What a checkpoint's model part is saved as (full model, sharded model, PEFT adapter, DeepSpeed's own layout).
_WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "adapter_model.safetensors",
    "adapter_model.bin",
)
TRUE_VALUES, FALSE_VALUES = ("true", "yes", "1"), ("false", "no", "0", "none", "")


def incomplete_reason(checkpoint: Path) -> str | None:
    """Why `checkpoint` cannot be resumed from (`None` when it can): no weights, or no readable trainer state."""
    state = checkpoint / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json"
    try:
        json.loads(state.read_text())
    except (OSError, ValueError) as err:
        return f"unreadable trainer_state.json ({err})"
    if not any((checkpoint / name).is_file() for name in _WEIGHTS):
        return "no model weights"
    return None


def last_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest `checkpoint-N` in `output_dir` that can be resumed from; partial ones are logged and skipped."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    found = sorted(
        (int(m.group(1)), p) for p in output_dir.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))
    )
    for _, checkpoint in reversed(found):
        reason = incomplete_reason(checkpoint)
        if reason is None:
            return checkpoint
        logger.warning("Skipping partial checkpoint %s (%s): resuming from an earlier one.", checkpoint, reason)
    return None


def resolve_resume(value: Any, output_dir: str | Path) -> str | None:
    """
    The checkpoint to resume from for `resume_from_checkpoint=value`.

    Args:
        value: `None`/`false` (start from step 0), `true` (YAML's boolean or the command line's string: the newest
            complete checkpoint in `output_dir`, or step 0 with a warning when there is none), or a checkpoint path.
        output_dir (`str` or `Path`): the run's output directory.

    Returns:
        `str` or `None`: the checkpoint folder for `Trainer.train(resume_from_checkpoint=...)`.

    Raises:
        `ValueError`: a path that is not a checkpoint one can resume from, with the reason.
    """
    if value is None or value is False:
        return None
    if value is True or (isinstance(value, str) and value.strip().lower() in TRUE_VALUES):
        checkpoint = last_complete_checkpoint(output_dir)
        if checkpoint is None:
            logger.warning(
                "resume_from_checkpoint: no complete checkpoint in %s; training starts at step 0.", output_dir
            )
            return None
        logger.info("Resuming from %s.", checkpoint)
        return str(checkpoint)
    if isinstance(value, str) and value.strip().lower() in FALSE_VALUES:
        return None
    path = Path(str(value))
    if not path.is_dir():
        raise ValueError(
            f"resume_from_checkpoint {str(value)!r} is not a folder: give a checkpoint-N folder, or `true` for the "
            "newest complete checkpoint in output_dir."
        )
    reason = incomplete_reason(path)
    if reason is not None:
        raise ValueError(
            f"resume_from_checkpoint {str(value)!r} cannot be resumed from ({reason}): it was cut off while being "
            "saved. Pass an earlier checkpoint, or `true` for the newest complete one."
        )
    return str(path)


# Settings that only act when checkpoints are saved.
_SAVE_SETTINGS = ("save_steps", "save_total_limit", "save_only_model", "save_safetensors", "save_on_each_node")


def ignored_save_settings(args: Any) -> list[str]:
    """Messages for save settings given a non-default value that `save_strategy: "no"` makes ineffective."""
    from dataclasses import fields

    strategy = getattr(args.save_strategy, "value", args.save_strategy)
    if strategy != "no":
        return []
    defaults = {f.name: f.default for f in fields(type(args)) if f.name in _SAVE_SETTINGS}

    def shown(value: Any) -> Any:  # TrainingArguments keeps save_steps as a float
        return int(value) if isinstance(value, float) and value.is_integer() else value

    return [
        f'`{name}: {shown(getattr(args, name))}` has no effect: `save_strategy` is "no", so no checkpoint is saved '
        'during training. Set `save_strategy: "steps"` (and `save_steps`) to be able to resume.'
        for name, default in defaults.items()
        if getattr(args, name) != default
    ]


class AtomicCheckpointMixin:
    """
    Mixin for a `transformers.Trainer` subclass (put it first): each checkpoint is written under
    `output_dir/.staging/` and renamed into `output_dir/checkpoint-N` once every process has written its part, so a
    run killed during a save leaves no `checkpoint-N` that looks resumable and is not. Rotation (`save_total_limit`)
    and the best-checkpoint bookkeeping then run on the real folder, as transformers would.
    """

    _staging_run_dir: str | None = None
    _deferred_push: str | None = None

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        # Called by transformers' _save_checkpoint with the staging folder, which is renamed before a background
        # upload would read it: push the folder once it is in place instead.
        if self._staging_run_dir is not None:
            self._deferred_push = checkpoint_folder
            return
        super()._push_from_checkpoint(checkpoint_folder)

    def _get_output_dir(self, trial):  # transformers' `_save_checkpoint` writes under this folder
        return self._staging_run_dir or super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, SaveStrategy, rotate_checkpoints

        run_dir = super()._get_output_dir(trial)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staging = os.path.join(run_dir, STAGING)
        if self.args.should_save:
            shutil.rmtree(os.path.join(staging, name), ignore_errors=True)  # left by a run killed while saving
        self.accelerator.wait_for_everyone()
        self._staging_run_dir = staging
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging_run_dir = None
        self.accelerator.wait_for_everyone()  # every process has written its shards and RNG state
        if self.args.should_save:
            final = os.path.join(run_dir, name)
            if os.path.isdir(final):  # saved again at the same step (e.g. SIGTERM right after a scheduled save)
                shutil.rmtree(final)
            os.replace(os.path.join(staging, name), final)
            shutil.rmtree(staging, ignore_errors=True)
            if self._deferred_push is not None:
                self._deferred_push = None
                self._push_from_checkpoint(final)
            best = self.state.best_global_step
            if self.args.save_strategy in (SaveStrategy.STEPS, SaveStrategy.EPOCH, SaveStrategy.BEST) and best:
                best_dir = os.path.join(run_dir, f"{PREFIX_CHECKPOINT_DIR}-{best}")
                if os.path.isdir(best_dir):
                    self.state.best_model_checkpoint = best_dir
            rotate_checkpoints(
                output_dir=run_dir,
                save_total_limit=self.args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=True,
            )
        self.accelerator.wait_for_everyone()
