# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""SRFT (Supervised Reinforcement Fine-Tuning, arXiv 2506.19767) as a TRL extension."""

from .losses import srft_loss


__version__ = "0.1.0.dev0"

__all__ = ["srft_loss"]
