# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""The `<think>\\n` generation-prompt convention: templates that open the thought block themselves."""

from __future__ import annotations

from typing import Any

from ..prompts import THINK_OPEN, make_prompt


def generation_prompt_opens_think(tokenizer: Any) -> bool:
    """
    Whether the tokenizer's chat template ends its generation prompt with `"<think>\\n"`.

    Such templates (e.g. LUFFY's `Qwen2.5-Math-7B-16k-think`) make the model's completion start inside the thought
    block, so a demonstration that itself starts with `"<think>\\n"` would repeat it.

    Args:
        tokenizer ([`~transformers.PreTrainedTokenizerBase`]):
            A tokenizer with a chat template.

    Returns:
        `bool`: `True` when a prompt rendered with `add_generation_prompt=True` ends with `"<think>\\n"`.

    Raises:
        `ValueError`: the tokenizer has no chat template.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"The tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no chat template: set "
            "`tokenizer.chat_template` (or pass a tokenizer that has one) before preparing conversational data."
        )
    rendered = tokenizer.apply_chat_template(make_prompt("1 + 1 = ?"), tokenize=False, add_generation_prompt=True)
    return rendered.endswith(THINK_OPEN)


def strip_think_open(text: str) -> str:
    """
    Removes one leading `"<think>\\n"` from a demonstration, as LUFFY does when the template already emits it.

    Args:
        text (`str`): the demonstration.

    Returns:
        `str`: the text without its leading `"<think>\\n"` (unchanged when it has none).
    """
    return text[len(THINK_OPEN) :] if text.startswith(THINK_OPEN) else text
