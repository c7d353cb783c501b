# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
Answer extraction and grading shared by training (the accuracy reward) and evaluation.

A completion's final answer is taken from the text after its last `</think>` (the whole text when there is none):
the content of its last `\\boxed{...}` for math, a choice label (`ANSWER: X`, a boxed label, a final standalone
label) for multiple choice. A completion without a final answer is wrong and flagged `no_answer`.

Math answers are compared with math-verify's `parse`/`verify`. Math-verify bounds its own run time with
`signal.alarm`, which only works on the main thread of the main interpreter; off that thread this module runs the
same code in a small worker process instead (whose main thread can use the alarm) and kills the worker if it does not
answer within `process_timeout`, so a call is bounded in time whichever thread makes it.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify


logger = logging.getLogger(__name__)

THINK_CLOSE = "</think>"
BOXED_COMMANDS = ("\\boxed", "\\fbox")
DEFAULT_CHOICE_LABELS = "ABCDEFGHIJ"
# Per-call limits handed to math-verify's own (SIGALRM) timeouts.
PARSING_TIMEOUT = 5
VERIFY_TIMEOUT = 5
# Wall-clock limit for one grade computed in the worker process (off the main thread): two parses and a verify.
PROCESS_TIMEOUT = 2 * PARSING_TIMEOUT + VERIFY_TIMEOUT + 5
# Worker processes for off-main-thread grading (each pays the package's import time once, at its start).
GRADING_WORKERS = min(2, os.cpu_count() or 1)


@dataclass(frozen=True)
class GradeResult:
    """
    The outcome of grading one completion.

    Args:
        correct (`bool`):
            Whether the extracted answer matches the gold answer.
        extracted (`str` or `None`):
            The final answer found in the completion (boxed content or choice label); `None` when there is none.
        no_answer (`bool`):
            `True` when the completion has no final answer (it then counts as wrong).
        error (`str` or `None`, *optional*):
            Why the grade could not be computed normally: `"gold_unparseable"` (the reference answer itself cannot
            be parsed, so the row cannot be scored) or `"timeout"` (grading exceeded its time limit; counted wrong).
    """

    correct: bool
    extracted: str | None
    no_answer: bool
    error: str | None = None


# ---------------------------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------------------------


def final_text(completion: str) -> str:
    """Returns the part of `completion` after its last `</think>`, or the whole completion when it has none."""
    _, sep, after = completion.rpartition(THINK_CLOSE)
    return after if sep else completion


def _boxed_spans(text: str) -> list[tuple[int, str | None]]:
    """(start, content) of every `\\boxed{...}`/`\\fbox{...}` in `text`; content is `None` when braces don't close."""
    # One pass pairs every unescaped brace, so the scan stays linear however many boxes the text has.
    closing: dict[int, int] = {}
    stack: list[int] = []
    for match in re.finditer(r"(?<!\\)[{}]", text):
        if match.group() == "{":
            stack.append(match.start())
        elif stack:
            closing[stack.pop()] = match.start()
    spans = []
    for match in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        end = closing.get(match.end() - 1)
        spans.append((match.start(), None if end is None else text[match.end() : end]))
    return spans


def last_boxed(text: str) -> str | None:
    """
    Returns the content of the last `\\boxed{...}` (or `\\fbox{...}`) in `text`, matching braces.

    Args:
        text (`str`):
            The text to search.

    Returns:
        `str` or `None`: the stripped content, or `None` when there is no box, the last box never closes (a
        truncated completion) or it is empty.
    """
    spans = _boxed_spans(text)
    if not spans or spans[-1][1] is None:
        return None
    content = spans[-1][1].strip()
    return content or None


def extract_math_answer(completion: str) -> str | None:
    """The content of the last `\\boxed{}` after the last `</think>` of `completion`, or `None` when there is none."""
    return last_boxed(final_text(completion))


def _label_class(labels: str) -> str:
    return "[" + re.escape(labels) + "]"


def _normalise_boxed_choice(content: str) -> str:
    # `\boxed{\text{(B)}}`, `\boxed{\textbf{B}}`, `\boxed{\mathrm{B}}` -> `(B)` / `B`.
    content = re.sub(r"\\(?:text|textbf|mathrm|mathbf|textrm)\s*\{([^{}]*)\}", r"\1", content)
    return content.replace("$", "").strip()


def extract_choice(completion: str, labels: str = DEFAULT_CHOICE_LABELS) -> str | None:
    """
    Extracts a multiple-choice label from the final part of a completion.

    Explicit answers are looked for first and the one written last wins: `ANSWER: X` (any case, optional markdown
    and parentheses) and a boxed label (`\\boxed{X}`, `\\boxed{(X)}`, `\\boxed{\\text{X}}`, `\\boxed{X) option}`). When
    there is none, the fallback is a final standalone label: a last line that is only the label (`X`, `(X)`, `X.`)
    or a last "answer/option/choice is X".

    Args:
        completion (`str`):
            The model's completion.
        labels (`str`, *optional*, defaults to `"ABCDEFGHIJ"`):
            The valid labels, one character each (e.g. `"1234"` for ARC items numbered with digits).

    Returns:
        `str` or `None`: the upper-cased label, or `None` when the completion gives none.
    """
    text = final_text(completion)
    label = _label_class(labels.upper() + labels.lower())
    found: list[tuple[int, str]] = []
    # `ANSWER: C`, `**Answer:** (C)`, `Answer: C) text`, `ANSWER: $C$`; not `Answer: A bit more` (a word).
    pattern = rf"answer\s*\**\s*[:：][\s*$]*(?:\(({label})\)|({label})(?=\s*(?:[).:*\]$]|$)))"
    for match in re.finditer(pattern, text, flags=re.IGNORECASE | re.MULTILINE):
        found.append((match.start(), match.group(1) or match.group(2)))
    for start, content in _boxed_spans(text):
        if content is None:
            continue
        boxed = re.fullmatch(rf"\(?({label})\)?(?:[.:)]\s*.*)?", _normalise_boxed_choice(content), flags=re.DOTALL)
        if boxed:
            found.append((start, boxed.group(1)))
    if found:
        return max(found)[1].upper()
    # Fallbacks: upper-case labels only, so the article "a" is never read as an answer.
    upper = _label_class(labels.upper())
    phrases = list(re.finditer(rf"(?:answer|option|choice)\s+is\s*:?\s*\**\s*\(?({upper})\)?(?![\w])", text, re.I))
    lines = [line.strip(" \t*#>`") for line in text.strip().splitlines() if line.strip(" \t*#>`")]
    if lines:
        last = re.fullmatch(rf"\(?({upper})\)?[.)]?", lines[-1])
        if last:
            return last.group(1)
    if phrases:
        return phrases[-1].group(1).upper()
    return None


# ---------------------------------------------------------------------------------------------------------------
# Math grading with math-verify
# ---------------------------------------------------------------------------------------------------------------


# Both sides are parsed from a `\boxed{...}` so math-verify sees exactly the answer we extracted (and normalises
# units, `\text{}`, `^\circ`, ... as it does for boxed answers); plain expressions are the fallback.
_EXTRACTION_CONFIG = (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())


def _strip_gold(gold: str) -> str:
    gold = gold.strip()
    boxed = last_boxed(gold)
    if boxed is not None:
        return boxed
    if len(gold) >= 2 and gold[0] == gold[-1] == "$":
        return gold.strip("$").strip()
    return gold


def _parse_boxed(answer: str, parsing_timeout: int | None) -> list:
    return parse(
        "\\boxed{" + answer + "}",
        extraction_config=_EXTRACTION_CONFIG,
        parsing_timeout=parsing_timeout,
    )


@lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> tuple:
    # Cached: a GRPO group grades many completions against the same gold.
    return tuple(_parse_boxed(gold, PARSING_TIMEOUT))


def _grade_on_main_thread(extracted: str | None, gold: str) -> tuple[bool, str | None]:
    """Parses and verifies with math-verify's alarm-based timeouts; must run on a main thread."""
    gold_parsed = list(_parse_gold(gold))
    if not gold_parsed:
        return False, "gold_unparseable"
    if extracted is None:
        return False, None
    pred_parsed = _parse_boxed(extracted, PARSING_TIMEOUT)
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=VERIFY_TIMEOUT)), None


_POOL: Any = None
_POOL_LOCK = threading.Lock()


def _get_pool():
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            # "spawn": forking a process that holds torch/tokenizers threads can deadlock.
            context = multiprocessing.get_context("spawn")
            _POOL = context.Pool(processes=GRADING_WORKERS)
        return _POOL


def _discard_pool(pool) -> None:
    global _POOL
    with _POOL_LOCK:
        if _POOL is pool:
            _POOL = None
    pool.terminate()


@atexit.register
def _shutdown_pool() -> None:
    if _POOL is not None:
        _POOL.terminate()


def _grade_off_main_thread(extracted: str | None, gold: str, process_timeout: float) -> tuple[bool, str | None]:
    pool = _get_pool()
    try:
        return pool.apply_async(_grade_on_main_thread, (extracted, gold)).get(timeout=process_timeout)
    except multiprocessing.TimeoutError:
        # A computation stuck in C code (e.g. a huge integer power) ignores the alarm: kill the worker(s).
        logger.warning("Grading timed out after %.0f s; restarting the grading worker.", process_timeout)
        _discard_pool(pool)
        return False, "timeout"


def grade_math(completion: str, gold: str, process_timeout: float = PROCESS_TIMEOUT) -> GradeResult:
    """
    Grades a math completion against its gold answer with math-verify.

    The answer is the content of the last `\\boxed{...}` after the last `</think>`; it and the gold answer are parsed
    with math-verify (`LatexExtractionConfig(boxed_match_priority=0)`, then plain expressions) and compared with
    `verify`, so `\\frac{1}{2}`, `0.5` and `1/2` are equal, units and `\\text{}` are normalised, and intervals, tuples
    and sets are compared as such. Safe to call from any thread (see the module docstring).

    Args:
        completion (`str`):
            The model's completion.
        gold (`str`):
            The reference answer (bare, `$...$`-wrapped or boxed).
        process_timeout (`float`, *optional*, defaults to `PROCESS_TIMEOUT`):
            Off the main thread only: the wall-clock limit for one grade in the worker process.

    Returns:
        [`GradeResult`]: `error="gold_unparseable"` when the gold answer cannot be parsed (then `correct=False`).
    """
    extracted = extract_math_answer(str(completion))
    gold = _strip_gold(str(gold))
    if not gold:
        return GradeResult(False, extracted, extracted is None, "gold_unparseable")
    if threading.current_thread() is threading.main_thread():
        correct, error = _grade_on_main_thread(extracted, gold)
    else:
        # The worker process runs the same function on its own main thread.
        correct, error = _grade_off_main_thread(extracted, gold, process_timeout)
    return GradeResult(correct, extracted, extracted is None, error)


def grade_choice(completion: str, gold: str, labels: str = DEFAULT_CHOICE_LABELS) -> GradeResult:
    """
    Grades a multiple-choice completion: the label from [`extract_choice`] must equal the gold label.

    Args:
        completion (`str`):
            The model's completion.
        gold (`str`):
            The gold label, e.g. `"C"` (case-insensitive; `"(C)"` is accepted).
        labels (`str`, *optional*, defaults to `"ABCDEFGHIJ"`):
            The valid labels.

    Returns:
        [`GradeResult`]: `error="gold_unparseable"` when `gold` is not one of `labels`.
    """
    extracted = extract_choice(str(completion), labels)
    gold_label = str(gold).strip().strip("()").strip().upper()
    if len(gold_label) != 1 or gold_label not in labels.upper():
        return GradeResult(False, extracted, extracted is None, "gold_unparseable")
    return GradeResult(extracted == gold_label, extracted, extracted is None)


# ---------------------------------------------------------------------------------------------------------------
# TRL reward function
# ---------------------------------------------------------------------------------------------------------------


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or conversational messages (the assistant contents joined)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    if isinstance(completion, (list, tuple)):
        parts = [
            m.get("content") for m in completion if isinstance(m, dict) and m.get("role", "assistant") == "assistant"
        ]
        return "".join(p if isinstance(p, str) else "" for p in parts)
    return "" if completion is None else str(completion)


def accuracy_reward(completions: list[Any], solution: list[str], **kwargs) -> list[float | None]:
    r"""
    Reward function for TRL trainers: 1.0 when the completion's final boxed answer matches the solution, else 0.0.

    The answer is read after the last `</think>` from the last `\boxed{}` (see [`grade_math`]); a completion without
    one gets 0.0. Never raises on odd completion text and is bounded in time per completion, on or off the main
    thread.

    Args:
        completions (`list[str]` or `list[list[dict[str, str]]]`):
            Completions as strings or as conversational messages (`[{"role": "assistant", "content": ...}]`).
        solution (`list[str]`):
            The gold answers, one per completion (the dataset's `solution` column).
        **kwargs:
            Other dataset columns passed by the trainer; unused.

    Returns:
        `list[float | None]`: one reward per completion; `None` when the gold answer itself cannot be parsed (TRL
        then treats the reward as missing).

    Example:
    ```python
    >>> accuracy_reward(["<think>...</think>\n\\boxed{\\frac{1}{2}}", "\\boxed{3}"], ["0.5", "4"])
    [1.0, 0.0]
    ```
    """
    if len(completions) != len(solution):
        raise ValueError(
            f"accuracy_reward got {len(completions)} completions but {len(solution)} solutions; the dataset needs "
            "a `solution` column with one gold answer per prompt."
        )
    rewards: list[float | None] = []
    for completion, gold in zip(completions, solution):
        try:
            result = grade_math(completion_text(completion), "" if gold is None else str(gold))
        except Exception:  # a grader bug must not kill a training run: log it and score the sample 0
            logger.exception("accuracy_reward: grading failed; scoring the completion 0.0")
            rewards.append(0.0)
            continue
        rewards.append(None if result.error == "gold_unparseable" else float(result.correct))
    return rewards
