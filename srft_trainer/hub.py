# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
Hub pushes that fail are reported, not lost.

With `push_to_hub` and a `hub_strategy` other than `"end"`, transformers' `Trainer` pushes each saved checkpoint in the
background (`Trainer._push_from_checkpoint`: `HfApi.upload_folder(..., run_as_future=True)`) and keeps the futures in
`trainer.push_in_progress.jobs` (a `transformers.utils.hub.PushInProgress`). Nobody reads their results: a push that
fails (network, auth, a full repo, a refused commit) leaves no trace, and the Hub silently lacks the checkpoint.
[`PushWatch`] attaches to those futures after each save, logs a warning naming the checkpoint and the error as soon as
one fails (training goes on), and at the end of training waits for the pushes and logs which ones failed.
[`hub_token_status`] says, without network, whether a push would have a token (for `srft check`).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from transformers import TrainerCallback


logger = logging.getLogger(__name__)

# What each job `_push_from_checkpoint` starts uploads, in the order it starts them.
_JOB_NAMES = ("model files", "checkpoint folder")


@dataclass
class PushRecord:
    """One background push: what it uploads, at which step, and its future."""

    label: str
    step: int
    future: concurrent.futures.Future


def one_line(error: BaseException) -> str:
    """`Type: message` on one line (huggingface_hub's HTTP errors span several), for one log line per failure."""
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def _strategy(args: Any) -> str:
    value = getattr(args, "hub_strategy", "every_save")
    return str(getattr(value, "value", value))


class PushWatch(TrainerCallback):
    """
    Reports the checkpoint pushes transformers starts in the background (`hub_strategy` `"every_save"`,
    `"checkpoint"` or `"all_checkpoints"`): a warning as soon as one fails, and a summary at the end of training.

    Args:
        trainer (`transformers.Trainer`):
            The trainer whose pushes to watch (callbacks are not handed the trainer, and its `push_in_progress` holds
            the futures).

    Attributes:
        pushes (`list[PushRecord]`): every push seen, in order.
        failures (`list[tuple[PushRecord, BaseException]]`): the pushes that failed and why.
        skipped (`list[str]`): checkpoints transformers did not push because the previous push was still running
            (`hub_always_push: false`, the default).
    """

    def __init__(self, trainer: Any):
        self.trainer = trainer
        self.pushes: list[PushRecord] = []
        self.failures: list[tuple[PushRecord, BaseException]] = []
        self.skipped: list[str] = []
        self._lock = threading.Lock()  # failures are recorded from the upload thread

    def on_save(self, args, state, control, **kwargs):
        if not args.push_to_hub or _strategy(args) == "end" or not self.trainer.is_world_process_zero():
            return
        progress = getattr(self.trainer, "push_in_progress", None)
        jobs = list(getattr(progress, "jobs", None) or [])
        new = [job for job in jobs if not any(job is push.future for push in self.pushes)]
        checkpoint = f"checkpoint-{state.global_step}"
        if not new:
            self.skipped.append(checkpoint)
            logger.info(
                "%s was not pushed to the Hub: the previous push was still uploading (set `hub_always_push: true` "
                "to push every checkpoint).",
                checkpoint,
            )
            return
        for index, job in enumerate(new):
            what = _JOB_NAMES[index] if index < len(_JOB_NAMES) else f"upload {index + 1}"
            push = PushRecord(f"{checkpoint} ({what})", state.global_step, job)
            self.pushes.append(push)
            job.add_done_callback(lambda future, push=push: self._done(push, future))

    def _done(self, push: PushRecord, future: concurrent.futures.Future) -> None:
        if future.cancelled():
            error: BaseException | None = concurrent.futures.CancelledError("cancelled before it started")
        else:
            error = future.exception()
        if error is None:
            return
        with self._lock:
            self.failures.append((push, error))
        logger.warning(
            "Push of %s to the Hub failed (%s). Training goes on; the checkpoint is intact on disk.",
            push.label,
            one_line(error),
        )

    def on_train_end(self, args, state, control, **kwargs):
        self.wait()
        summary = self.summary()
        if summary:
            logger.warning(summary)

    def wait(self) -> None:
        """Blocks until every push seen so far has finished (transformers waits for them after training, too)."""
        concurrent.futures.wait([push.future for push in self.pushes])

    def summary(self) -> str | None:
        """One line naming the failed checkpoint pushes (`None` when every push succeeded)."""
        with self._lock:
            failures = list(self.failures)
        if not failures:
            return None
        repo = getattr(self.trainer, "hub_model_id", None) or "the Hub"
        named = ", ".join(f"{push.label} ({type(error).__name__})" for push, error in failures)
        return f"{len(failures)} of {len(self.pushes)} checkpoint pushes to {repo} failed: {named}"


def hub_token_status(hub_token: str | None = None) -> tuple[bool, str]:
    """
    Whether a push would be authenticated, found without network (the token itself is never shown nor checked).

    Args:
        hub_token (`str`, *optional*):
            The recipe's `hub_token`, which takes precedence over the environment and the token file.

    Returns:
        `tuple[bool, str]`: whether a token is configured, and where it comes from (or how to set one).
    """
    if hub_token:
        return True, "configured (`hub_token` in the recipe)"
    if os.environ.get("HF_OIDC_RESOURCE"):  # exchanged at push time: asking for it now would reach the Hub
        return True, "from an OIDC exchange at push time (HF_OIDC_RESOURCE; not checked offline)"
    from unittest import mock

    from huggingface_hub import constants, get_token

    # get_token() may refresh an expiring OAuth token over the network; offline mode makes it skip that.
    with mock.patch.object(constants, "HF_HUB_OFFLINE", True):
        token = get_token()
    if not token:
        return False, (
            "no Hub token: set HF_TOKEN or run `hf auth login` (without one, `srft train` stops when it creates the "
            "Hub repo, before training)"
        )
    source = "HF_TOKEN" if os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") else "token file"
    return True, f"configured ({source}; validity not checked offline)"
