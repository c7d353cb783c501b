# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""Data preparation: source layouts (LUFFY/verl, OpenR1-Math-220k) to the SRFT layout (`prompt`, demos, `solution`)."""

from .chat_template import generation_prompt_opens_think, strip_think_open
from .layouts import convert_luffy_row, convert_openr1_row
from .prepare import PrepareSummary, load_source, prepare_dataset, save_dataset


__all__ = [
    "PrepareSummary",
    "convert_luffy_row",
    "convert_openr1_row",
    "generation_prompt_opens_think",
    "load_source",
    "prepare_dataset",
    "save_dataset",
    "strip_think_open",
]
