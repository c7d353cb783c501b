# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
Row converters from the source layouts to the SRFT layout.

Each converter takes one raw row (a `dict`, as `datasets.Dataset.map` passes it) and returns a flat record: the chat
`prompt`, the candidate `demos`, the `solution` for the reward, the reason the row is skipped (`""` when kept) and
per-reason counts of the demonstrations it left out. Converters never raise on bad data: every problem becomes a
named, counted reason, so that nothing is dropped silently.
"""

from __future__ import annotations

from typing import Any

from ..prompts import make_prompt
from .chat_template import strip_think_open


# Row-level skip reasons. "Malformed" ones are data errors (`on_error="raise"` turns them into an exception);
# "filtered" ones are the intended selection (unverified traces, length cap).
MALFORMED = {
    "bad_prompt": "the prompt/problem is missing, empty, or not text or chat messages with string `content`",
    "bad_answer": "the ground truth (`reward_model.ground_truth` / `answer`) is missing, empty, or not a string or "
    "number",
    "missing_demo": "the demonstration (`target`) is missing or empty",
    "bad_demo": "the demonstration is not a string or chat messages with string `content` (`generations`: a list of "
    "strings)",
    "bad_verification": "`correctness_math_verify` / `is_reasoning_complete` is not a list of booleans as long as "
    "`generations`",
}
FILTERED = {
    "no_verified_demo": "no usable generation: none is marked correct by math-verify (and complete, when that column "
    "exists) and non-empty",
    "all_demos_too_long": "every demonstration is longer than `max_demo_tokens`",
}
# Demonstration-level drop reasons (the row may still be kept with its other demonstrations).
DEMO_DROPS = {
    "unverified": "generation not marked correct by `correctness_math_verify`",
    "incomplete": "generation marked incomplete by `is_reasoning_complete`",
    "empty": "empty demonstration (after stripping a duplicated `<think>\\n`)",
    "too_long": "longer than `max_demo_tokens` tokens",
    "over_max_demos": "beyond `max_demos` usable demonstrations for the problem",
}
CONVERTER_DROPS = ("unverified", "incomplete", "empty")


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _answer(value: Any) -> str | None:
    """The ground truth as a non-empty string. Numbers are accepted: `datasets` decodes mixed-type JSON columns (its
    `Json` feature) such that a string `"2"` comes back as the number `2`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    return value.strip() if _nonempty_str(value) else None


def _record(
    prompt: list[dict[str, str]] | None = None,
    demos: list[str] | None = None,
    solution: str = "",
    skip: str = "",
    other_system: bool = False,
    stripped: int = 0,
    **drops: int,
) -> dict[str, Any]:
    record = {
        "prompt": prompt or [],
        "demos": demos or [],
        "solution": solution,
        "_skip": skip,
        "_other_system": other_system,
        "_stripped": stripped,
    }
    record.update({f"_drop_{reason}": drops.get(reason, 0) for reason in CONVERTER_DROPS})
    return record


def _question_from_messages(prompt: Any) -> tuple[str | None, str | None]:
    """(user question, system message) of a `[system?, user]` prompt, or `(None, None)` when malformed."""
    if isinstance(prompt, str):
        return (prompt, None) if prompt.strip() else (None, None)
    if not isinstance(prompt, list) or not prompt:
        return None, None
    question, system = None, None
    for message in prompt:
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            return None, None
        role = message.get("role")
        if role == "user" and question is None:
            question = message["content"]
        elif role == "system" and system is None and question is None:
            system = message["content"]
        else:  # a second user turn, an assistant turn or an unknown role: not a single-question prompt
            return None, None
    return (question, system) if _nonempty_str(question) else (None, None)


def _demo_from_target(target: Any) -> tuple[str | None, str]:
    """The demonstration text of a LUFFY `target` and the skip reason when there is none."""
    if target is None or (isinstance(target, (str, list)) and len(target) == 0):
        return None, "missing_demo"
    if isinstance(target, str):
        return target, ""
    if not isinstance(target, list):
        return None, "bad_demo"
    parts = []
    for message in target:
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            return None, "bad_demo"
        if message.get("role") == "assistant":
            parts.append(message["content"])
        elif message.get("role") is not None and not isinstance(message.get("role"), str):
            return None, "bad_demo"
    if not parts:
        return None, "bad_demo"
    return "".join(parts), ""


def _clean_demo(text: str, strip_think: bool) -> str:
    return strip_think_open(text) if strip_think else text


def convert_luffy_row(row: dict[str, Any], system_prompt: str | None, strip_think: bool = False) -> dict[str, Any]:
    """
    Converts one row of the LUFFY/verl layout (`Elliott/Openr1-Math-46k-8192`).

    Args:
        row (`dict`):
            `prompt` (`[system, user]` chat messages, or the question as a string), `target` (the assistant
            message(s) of the demonstration, or a string) and `reward_model` (`{"ground_truth": str, ...}`).
        system_prompt (`str` or `None`):
            The system message of the rebuilt prompt (`None`: no system message).
        strip_think (`bool`, *optional*, defaults to `False`):
            Remove a leading `"<think>\\n"` from the demonstration (the template's generation prompt has it).

    Returns:
        `dict`: the record (see the module docstring).
    """
    question, system = _question_from_messages(row.get("prompt"))
    if question is None:
        return _record(skip="bad_prompt")
    reward_model = row.get("reward_model")
    answer = _answer(reward_model.get("ground_truth") if isinstance(reward_model, dict) else None)
    if answer is None:
        return _record(skip="bad_answer")
    text, reason = _demo_from_target(row.get("target"))
    if text is None:
        return _record(skip=reason)
    demo = _clean_demo(text, strip_think)
    if not demo.strip():
        return _record(skip="missing_demo", empty=1)
    return _record(
        prompt=make_prompt(question, system_prompt),
        demos=[demo],
        solution=answer,
        other_system=system is not None and system != system_prompt,
        stripped=int(demo != text),
    )


def _flags(value: Any, length: int, required: bool) -> list[bool | None] | None:
    """A per-generation boolean list (`None` entries allowed), or `None` when malformed."""
    if value is None:
        return None if required else [True] * length
    if not isinstance(value, list) or len(value) != length:
        return None
    if not all(flag is None or isinstance(flag, bool) for flag in value):
        return None
    return value


def convert_openr1_row(row: dict[str, Any], system_prompt: str | None, strip_think: bool = False) -> dict[str, Any]:
    """
    Converts one row of the OpenR1-Math-220k layout, keeping only verified traces as demonstrations.

    Args:
        row (`dict`):
            `problem` (`str`), `answer` (`str`), `generations` (`list[str]`, 2-4 R1 traces),
            `correctness_math_verify` (`list[bool]`, one per generation) and optionally `is_reasoning_complete`
            (`list[bool]`; when present, a trace must also be complete).
        system_prompt (`str` or `None`):
            The system message of the prompt (`None`: no system message).
        strip_think (`bool`, *optional*, defaults to `False`):
            Remove a leading `"<think>\\n"` from each demonstration.

    Returns:
        `dict`: the record, with every verified, complete, non-empty trace in `demos` (in the source order).
    """
    problem = row.get("problem")
    if not _nonempty_str(problem):
        return _record(skip="bad_prompt")
    answer = _answer(row.get("answer"))
    if answer is None:
        return _record(skip="bad_answer")
    generations = row.get("generations")
    if not isinstance(generations, list) or not all(g is None or isinstance(g, str) for g in generations):
        return _record(skip="bad_demo")
    if not generations:
        return _record(skip="missing_demo")
    correct = _flags(row.get("correctness_math_verify"), len(generations), required=True)
    complete = _flags(row.get("is_reasoning_complete"), len(generations), required=False)
    if correct is None or complete is None:
        return _record(skip="bad_verification")
    demos, drops, stripped = [], {"unverified": 0, "incomplete": 0, "empty": 0}, 0
    for text, is_correct, is_complete in zip(generations, correct, complete, strict=True):
        if is_correct is not True:
            drops["unverified"] += 1
        elif is_complete is not True:
            drops["incomplete"] += 1
        elif not (demo := _clean_demo(text or "", strip_think)).strip():
            drops["empty"] += 1
        else:
            demos.append(demo)
            stripped += int(demo != text)
    if not demos:
        return _record(skip="no_verified_demo", **drops)
    return _record(
        prompt=make_prompt(problem, system_prompt), demos=demos, solution=answer, stripped=stripped, **drops
    )


CONVERTERS = {"luffy": convert_luffy_row, "openr1": convert_openr1_row}
# Columns a layout cannot do without: a file without them is the wrong layout, not a set of malformed rows.
REQUIRED_COLUMNS = {
    "luffy": ("prompt", "target", "reward_model"),
    "openr1": ("problem", "answer", "generations", "correctness_math_verify"),
}
