# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
An offline toy world for trying SRFT on a laptop: multi-digit arithmetic with step-by-step demonstrations, a
character-level tokenizer, a ~1M-parameter Qwen2 base model, and a held-out evaluation, all without the Hub. A second
task, `expressions` ([`srft_trainer.toy.expressions`]), has several correct derivations per problem, demonstrations
in another style than the base model's (a fraction of them imperfect) and an out-of-distribution held-out split. A
third, `expressions_terse`, keeps those problems and that base but gives correct demonstrations in the base's own
style: the paper's regime, with its criteria checked and recorded ([`srft_trainer.arena.regime`]).

```python
>>> from srft_trainer.toy import build_toy_world, heldout_accuracy
>>> world = build_toy_world()  # cached under ~/.cache/srft_trainer
>>> world.model_dir, world.train_file, world.heldout_file
>>> heldout_accuracy(world.model_dir, None, world.load_heldout())
>>> world = build_toy_world(task="expressions")
>>> heldout_accuracy(world.model_dir, None, world.load_heldout_ood(), max_new_tokens=OOD_MAX_NEW_TOKENS)
```
"""

from .evaluation import HeldoutResult, completion_entropy, evaluate_heldout, heldout_accuracy
from .expressions import OOD_MAX_NEW_TOKENS, make_expression_splits
from .model import ToyModelSettings, init_toy_model, pretrain_base, toy_model_config
from .task import LEVELS, TOY_SYSTEM_PROMPT, make_splits, to_sft_dataset
from .tokenizer import build_char_tokenizer
from .world import (
    TASKS,
    ExpressionsTerseWorldSettings,
    ExpressionsWorldSettings,
    ToyWorld,
    ToyWorldSettings,
    build_toy_world,
    default_cache_dir,
    world_settings,
)


__all__ = [
    "LEVELS",
    "OOD_MAX_NEW_TOKENS",
    "TASKS",
    "TOY_SYSTEM_PROMPT",
    "ExpressionsTerseWorldSettings",
    "ExpressionsWorldSettings",
    "HeldoutResult",
    "ToyModelSettings",
    "ToyWorld",
    "ToyWorldSettings",
    "build_char_tokenizer",
    "build_toy_world",
    "completion_entropy",
    "default_cache_dir",
    "evaluate_heldout",
    "heldout_accuracy",
    "init_toy_model",
    "make_expression_splits",
    "make_splits",
    "pretrain_base",
    "to_sft_dataset",
    "toy_model_config",
    "world_settings",
]
