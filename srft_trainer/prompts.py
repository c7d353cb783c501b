# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""The paper's reasoning prompt (Figure A3), stored once and shared by training, data preparation and evaluation."""

from __future__ import annotations


# Figure A3 of the paper (also LUFFY's and ReLIFT's system prompt): the model thinks inside <think> ... </think>
# and then gives the answer, boxed where applicable.
SYSTEM_PROMPT = (
    "Your task is to follow a systematic, thorough reasoning process before providing the final solution. "
    "This involves analyzing, summarizing, exploring, reassessing, and refining your thought process through "
    "multiple iterations. Structure your response into two sections: Thought and Solution. In the Thought "
    'section, present your reasoning using the format: "<think>\n {thoughts} </think>\n". Each thought should '
    'include detailed analysis, brainstorming, verification, and refinement of ideas. After "</think>\n," in '
    "the Solution section, provide the final, logical, and accurate answer, clearly derived from the exploration "
    "in the Thought section. If applicable, include the answer in \\boxed{} for closed-form results like "
    "multiple choices or mathematical solutions."
)

THINK_OPEN = "<think>\n"
THINK_CLOSE = "</think>"


def make_prompt(question: str, system_prompt: str | None = SYSTEM_PROMPT) -> list[dict[str, str]]:
    """
    Builds the conversational prompt (a list of chat messages) for one question.

    Args:
        question (`str`):
            The problem statement.
        system_prompt (`str` or `None`, *optional*, defaults to [`SYSTEM_PROMPT`]):
            The system message; `None` leaves it out.

    Returns:
        `list[dict[str, str]]`: the messages, ready for `apply_chat_template(..., add_generation_prompt=True)`.
    """
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": question})
    return messages
