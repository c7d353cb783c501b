# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""Multiple-choice options written in a question's text: parse them, shuffle them with a fixed seed, remap the gold."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass


LETTERS = "ABCDEFGHIJKLMNOP"
DIGITS = "123456789"


@dataclass(frozen=True)
class ParsedOptions:
    """
    A question whose user text ends with a block of labelled options, one per line (`A) ...`, `B) ...`).

    Args:
        stem (`str`):
            The text before the first option line (kept verbatim).
        labels (`str`):
            The option labels in order, e.g. `"ABCD"` or `"1234"`.
        options (`list[str]`):
            The option texts (an option may span several lines).
        suffix (`str`):
            Trailing whitespace after the last option, kept so the rebuilt text ends like the original.
    """

    stem: str
    labels: str
    options: list[str]
    suffix: str

    def render(self, options: list[str] | None = None) -> str:
        """The user text with `options` (default: the parsed ones) written under the same labels."""
        options = self.options if options is None else options
        block = "\n".join(f"{label}) {text}" for label, text in zip(self.labels, options))
        return self.stem + block + self.suffix


def parse_options(text: str) -> ParsedOptions | None:
    """
    Finds the trailing option block of a multiple-choice question.

    The block is the last run of lines starting `A) `, `B) `, ... (or `1) `, `2) `, ...) in order and running to the
    end of the text; lines between two labels belong to the option above them (multi-line options), and numbered
    lists inside the question stem are left alone.

    Args:
        text (`str`):
            The user message.

    Returns:
        [`ParsedOptions`] or `None` when the text has no such block (at least two options).
    """
    body = text.rstrip()
    suffix = text[len(body) :]
    lines = body.split("\n")
    for alphabet in (LETTERS, DIGITS):
        starts = [i for i, line in enumerate(lines) if line.startswith(f"{alphabet[0]}) ")]
        for first in reversed(starts):
            positions, expected = [first], 1
            for i in range(first + 1, len(lines)):
                if expected < len(alphabet) and lines[i].startswith(f"{alphabet[expected]}) "):
                    positions.append(i)
                    expected += 1
            if len(positions) < 2:
                continue
            options = []
            for k, start in enumerate(positions):
                end = positions[k + 1] if k + 1 < len(positions) else len(lines)
                chunk = "\n".join(lines[start:end])[len(alphabet[k]) + 2 :]
                options.append(chunk.strip("\n"))
            # The last option must not swallow a later line that starts with an out-of-order label.
            tail = lines[positions[-1] + 1 :]
            if any(re.match(rf"[{re.escape(alphabet)}]\) ", line) for line in tail):
                continue
            stem = "\n".join(lines[:first]) + "\n" if first else ""
            return ParsedOptions(stem, alphabet[: len(positions)], options, suffix)
    return None


def shuffle_options(text: str, gold: str, seed: str | int) -> tuple[str, str, str] | None:
    """
    Shuffles the options of a multiple-choice question deterministically and remaps its gold label.

    Args:
        text (`str`):
            The user message, ending with labelled options.
        gold (`str`):
            The gold label in `text`'s labelling.
        seed (`str` or `int`):
            Seed of the permutation (e.g. `f"{seed}/{benchmark}/{problem_id}"`, so every problem gets its own).

    Returns:
        `(new_text, new_gold, labels)`, or `None` when the options cannot be parsed or `gold` is not one of them.
    """
    parsed = parse_options(text)
    gold = gold.strip().upper()
    if parsed is None or gold not in parsed.labels:
        return None
    order = list(range(len(parsed.options)))
    random.Random(seed).shuffle(order)
    new_options = [parsed.options[i] for i in order]
    new_gold = parsed.labels[order.index(parsed.labels.index(gold))]
    return parsed.render(new_options), new_gold, parsed.labels
