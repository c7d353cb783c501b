# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""SRFT (Supervised Reinforcement Fine-Tuning, arXiv 2506.19767) as a TRL extension."""

from typing import TYPE_CHECKING, Any

from .losses import srft_loss


__version__ = "0.1.0.dev0"

__all__ = ["SRFTConfig", "SRFTTrainer", "srft_loss"]

if TYPE_CHECKING:
    from .config import SRFTConfig
    from .trainer import SRFTTrainer


def __getattr__(name: str) -> Any:
    # Lazy, so that `srft eval` or `srft_loss` alone do not pay for importing TRL's trainers.
    if name == "SRFTConfig":
        from .config import SRFTConfig

        return SRFTConfig
    if name == "SRFTTrainer":
        from .trainer import SRFTTrainer

        return SRFTTrainer
    raise AttributeError(f"module 'srft_trainer' has no attribute {name!r}")
