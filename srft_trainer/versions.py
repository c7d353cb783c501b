# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""Library versions this project checks when a run starts, because an older one trains wrongly without an error."""

from __future__ import annotations

import os
import warnings
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from packaging.version import Version


# The first DeepSpeed release with deepspeedai/DeepSpeed#7967: with ZeRO-1/2, an optimizer offloaded to the CPU and
# gradient accumulation, every micro-batch's gradient after the first was dropped instead of accumulated (0.18.9
# still has it: `stage_1_and_2.py` copies the gradients to the CPU buffer only on micro-step 0). Limozin et al.
# (arXiv 2604.23747) trace part of the published SFT+RL rankings to it. setup.cfg's extras require it too.
DEEPSPEED_MIN = "0.19.0"


def deepspeed_in_use(args: Any) -> bool:
    """Whether this run trains with DeepSpeed (`deepspeed` in the config, or an accelerate DeepSpeed launch)."""
    return bool(getattr(args, "deepspeed", None)) or os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true"


def check_deepspeed(args: Any) -> None:
    """Raises `RuntimeError` naming the bug and the fix when a DeepSpeed run would use a release older than the fix."""
    if not deepspeed_in_use(args):
        return
    try:
        installed = version("deepspeed")
    except PackageNotFoundError:
        return  # accelerate reports the missing package itself
    if Version(installed) < Version(DEEPSPEED_MIN):
        raise RuntimeError(
            f"DeepSpeed {installed} drops gradients with ZeRO-1/2, CPU-offloaded optimizer states and gradient "
            f"accumulation (deepspeedai/DeepSpeed#7967, fixed in {DEEPSPEED_MIN}): `pip install 'deepspeed>="
            f"{DEEPSPEED_MIN}'`."
        )


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
