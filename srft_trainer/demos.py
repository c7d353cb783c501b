# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""Demonstrations: reading them from a data set row, tokenising them as completions, placing them in GRPO groups."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


logger = logging.getLogger(__name__)

Message = dict[str, Any]
Demo = str | list[Message]


def _is_message_list(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(isinstance(m, dict) and "role" in m for m in value)


def normalize_demos(value: Any, column: str) -> list[Demo]:
    """
    Reads the demonstration(s) of one row.

    Args:
        value (`Any`):
            The row's value in the demonstration column: `None` or `""` (no demo), a string, a list of chat messages
            (one demo, its assistant turn(s)), or a list of several demos (strings or message lists).
        column (`str`):
            The column's name, for error messages.

    Returns:
        `list[str | list[dict]]`: the demos, possibly empty. Empty strings and message lists are left out here and
        counted by the caller as missing.

    Raises:
        `ValueError`: the value has a type that cannot be a demonstration.
    """
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if _is_message_list(value):
        return [value]
    if isinstance(value, (list, tuple)):
        demos = []
        for item in value:
            if item is None or (isinstance(item, str) and not item.strip()):
                continue
            if isinstance(item, str) or _is_message_list(item):
                demos.append(item)
            else:
                raise ValueError(
                    f"Column `{column}` holds a list with an element of type {type(item).__name__}: each "
                    "demonstration must be a string or a list of chat messages ({'role': ..., 'content': ...})."
                )
        return demos
    raise ValueError(
        f"Column `{column}` holds a {type(value).__name__}: a demonstration must be a string, a list of chat "
        "messages, or a list of several such demonstrations. Fix the data or set `demo_column` to the right column."
    )


def demo_text(demo: Demo) -> str:
    """The assistant text of a demo (the concatenated content of its assistant messages)."""
    if isinstance(demo, str):
        return demo
    parts = []
    for message in demo:
        if message.get("role") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, list):  # content blocks
            content = "".join(block.get("text", "") for block in content if isinstance(block, dict))
        parts.append(content or "")
    return "".join(parts)


@dataclass
class DemoTokenizer:
    """
    Tokenises a demonstration exactly as the policy would produce it as a completion of the prompt.

    For conversational prompts, the prompt plus the demo's assistant message(s) is rendered with the chat template and
    the prompt's tokens (rendered with the generation prompt, as the rollouts are) are taken off the front; the rest,
    up to and including the last end-of-sequence token, is the completion. When the template does not render the
    prompt as a prefix of the conversation (templates that rewrite earlier turns), the demo's text is tokenised on its
    own and an end-of-sequence token appended; that fallback is counted. For standard (text) prompts, the completion
    is the demo's tokens followed by the end-of-sequence token.

    Args:
        tokenizer: the policy's tokenizer.
        eos_token_ids (`Sequence[int]`): the ids that end a completion (the trainer's `eos_token_ids`).
        apply_chat_template (`Callable`): renders a conversation to token ids (the trainer's settings bound in).
    """

    tokenizer: Any
    eos_token_ids: Sequence[int]
    apply_chat_template: Callable[[list[Message], bool], list[int]]
    fallbacks: int = 0

    def __call__(self, prompt: str | list[Message], prompt_ids: list[int], demo: Demo) -> list[int]:
        if isinstance(prompt, str):
            if not isinstance(demo, str):
                raise ValueError("A text (non-conversational) prompt needs text demonstrations, got chat messages.")
            return self._plain(demo, prompt_ids)
        messages = [{"role": "assistant", "content": demo}] if isinstance(demo, str) else demo
        full = self.apply_chat_template(list(prompt) + list(messages), False)
        if full[: len(prompt_ids)] == list(prompt_ids) and len(full) > len(prompt_ids):
            ids = full[len(prompt_ids) :]
            ends = [i for i, t in enumerate(ids) if t in self.eos_token_ids]
            return ids[: ends[-1] + 1] if ends else [*ids, self.tokenizer.eos_token_id]
        self.fallbacks += 1
        if self.fallbacks == 1:
            logger.warning(
                "The chat template does not render the prompt as a prefix of prompt + demonstration; demonstrations "
                "are tokenised on their own and end with the EOS token (counted in `srft/demo_template_fallbacks`)."
            )
        return self._plain(demo_text(demo), prompt_ids)

    def _plain(self, text: str, prompt_ids: list[int]) -> list[int]:
        # A demo that repeats the generation prompt's trailing "<think>\n" would duplicate it (LUFFY strips it).
        prompt_tail = self.tokenizer.decode(prompt_ids[-8:])
        if prompt_tail.endswith("<think>\n") and text.startswith("<think>\n"):
            text = text[len("<think>\n") :]
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]


def plan_group_demos(
    num_rows: int,
    group_size: int,
    num_demos: int,
    usable_demos: Callable[[int], list[list[int]]],
    rotation: int = 0,
) -> list[list[int] | None]:
    """
    Chooses which slots of each group hold demonstrations.

    Rows `[g * group_size, (g + 1) * group_size)` form group `g` (one prompt). Group `g` gets
    `k = min(num_demos, len(usable_demos(first_row)))` demo rows, in its last `k` slots; the other slots are on-policy
    rollouts. With more usable demos than slots, `rotation` (the training step) picks which ones, so that every demo
    of a prompt is used over the epochs independently of the number of processes.

    Returns:
        `list[list[int] | None]`: per row, the demo's completion token ids, or `None` for a rollout slot.
    """
    if num_rows % group_size:
        raise ValueError(f"{num_rows} rows do not form whole groups of {group_size}.")
    if not 0 <= num_demos < group_size:  # more would spill into the previous group's slots
        raise ValueError(f"`num_demos_per_group` must be in [0, {group_size}), got {num_demos}.")
    plan: list[list[int] | None] = [None] * num_rows
    for start in range(0, num_rows, group_size):
        demos = usable_demos(start)
        k = min(num_demos, len(demos))
        for j in range(k):
            plan[start + group_size - k + j] = demos[(rotation + j) % len(demos)]
    return plan


class DemoStats(Counter):
    """Per-step counts: `used`, `missing`, `dropped_too_long`, `truncated`, `dropped_low_reward`."""
