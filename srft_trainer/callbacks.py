# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""Run safety: a checkpoint on SIGTERM (pre-emption), and an output directory checked before hours are spent."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import uuid
from pathlib import Path

import torch
from transformers import TrainerCallback


logger = logging.getLogger(__name__)


def quiet_replicas() -> None:
    """Only the main process of a launch prints this project's warnings (each process would otherwise repeat them)."""
    from accelerate import PartialState

    if not PartialState().is_main_process:
        logging.getLogger("srft_trainer").setLevel(logging.ERROR)


class SaveOnSigterm(TrainerCallback):
    """
    On SIGTERM (what Slurm, Kubernetes and spot pre-emption send before killing), finish the current optimizer step,
    save a checkpoint and stop training, so that `--resume_from_checkpoint` loses nothing.

    Every process installs the handler; at each step end the processes agree (one all-reduce of a flag) so that they
    all save at the same step. A second SIGTERM is handled by the previous handler (usually: exit at once).
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested and callable(self._previous):
            self._previous(signum, frame)
        self.requested = True
        logger.warning("SIGTERM received: saving a checkpoint at the end of this step, then stopping.")

    def on_train_begin(self, args, state, control, **kwargs):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handler)

    def on_train_end(self, args, state, control, **kwargs):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _agreed(self, args) -> bool:
        flag = float(self.requested)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            device = args.device if torch.distributed.get_backend() != "gloo" else torch.device("cpu")
            tensor = torch.tensor([flag], device=device)
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
            flag = tensor.item()
        return flag > 0

    def on_step_end(self, args, state, control, **kwargs):
        if self._agreed(args):
            self.requested = True
            control.should_save = True
            control.should_training_stop = True
        return control


def estimated_checkpoint_bytes(model: torch.nn.Module, save_only_model: bool) -> int:
    """Weights in their dtype, plus AdamW's two float32 moments per trainable parameter unless `save_only_model`."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return weights + (0 if save_only_model else 8 * trainable)


def output_dir_problem(output_dir: str) -> str | None:
    """
    Why `output_dir` cannot hold the run, found without creating anything (`None` when it can): a regular file where
    it or one of its parents should be a folder, or a folder that cannot be written.
    """
    path = Path(output_dir).expanduser()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        what = "is a file" if existing == path else f"is under {str(existing)!r}, which is a file"
        return f"output_dir {str(path)!r} {what}: choose a folder path for `output_dir`"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"output_dir {str(path)!r} cannot be created or written ({str(existing)!r} is not writable)"
    return None


def check_output_dir(output_dir: str, needed_bytes: int = 0) -> None:
    """
    Fails now, with the path and the fix, if `output_dir` cannot be written or lacks the room for one checkpoint.

    Raises:
        `NotADirectoryError` / `PermissionError` / `OSError`: the directory cannot be created or written, or the
        disk is too full.
    """
    path = Path(output_dir)
    problem = output_dir_problem(output_dir)
    if problem is not None:
        error = NotADirectoryError if "file" in problem.split(":")[0] else PermissionError
        raise error(problem)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".srft-write-test-{uuid.uuid4().hex}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as err:
        raise type(err)(
            err.errno,
            f"Cannot write to output_dir {str(path)!r} ({err.strerror}): choose a writable `output_dir`",
        ) from err
    free = shutil.disk_usage(path).free
    if needed_bytes and free < needed_bytes:
        raise OSError(
            f"output_dir {str(path)!r} has {free / 2**30:.2f} GiB free but one checkpoint needs about "
            f"{needed_bytes / 2**30:.2f} GiB: free some space, choose another `output_dir`, or set "
            "`save_only_model=True` / `save_strategy='no'`."
        )
