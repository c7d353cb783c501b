# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
The toy task: multi-digit arithmetic with step-by-step demonstrations in the paper's format.

Every problem has a verifiable integer answer. Its demonstration works column by column, least significant digit
first, the way one does it on paper, inside `<think>\n ... </think>\n`, then gives the answer in `\\boxed{}`:

```
<think>
 8+5+0=13
 7+6+1=14
 4+3+1=8
 so 843 </think>
\\boxed{843}
```

The prompt is a chat conversation with a *short* system message ([`TOY_SYSTEM_PROMPT`]) and the question. The
paper's system prompt (Figure A3, [`srft_trainer.prompts.SYSTEM_PROMPT`]) is ~900 characters: with a character-level
tokenizer it would be ~900 tokens per prompt, several times the length of a whole demonstration, and would make
every toy training step several times slower for no benefit. The format is taught by the demonstrations instead.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from datasets import Dataset, DatasetDict

from ..prompts import THINK_CLOSE, THINK_OPEN, make_prompt


TOY_SYSTEM_PROMPT = "Think, then answer in \\boxed{}."


@dataclass(frozen=True)
class Problem:
    """One arithmetic problem: `question` is what the user asks, `answer` the gold integer."""

    level: int
    question: str
    answer: int
    thoughts: tuple[str, ...]

    @property
    def demonstration(self) -> str:
        """The demonstration in the paper's format: `<think>\\n {thoughts} </think>\\n` then the boxed answer."""
        return f"{THINK_OPEN} " + "\n ".join(self.thoughts) + f" {THINK_CLOSE}\n\\boxed{{{self.answer}}}"


def _digits(n: int, width: int) -> list[int]:
    """Digits of `n`, least significant first, zero-padded to `width`."""
    return [int(c) for c in str(n).zfill(width)[::-1]]


def _add_steps(a: int, b: int) -> list[str]:
    width = max(len(str(a)), len(str(b)))
    steps, carry = [], 0
    for x, y in zip(_digits(a, width), _digits(b, width)):
        s = x + y + carry
        steps.append(f"{x}+{y}+{carry}={s}")
        carry = s // 10
    return steps


def _sub_steps(a: int, b: int) -> list[str]:
    # A borrowed column is written with its 10 added ("13-7-0=6"), so the next column subtracts a borrow of 1.
    width = len(str(a))
    steps, borrow = [], 0
    for x, y in zip(_digits(a, width), _digits(b, width)):
        top = x + 10 if x - y - borrow < 0 else x
        steps.append(f"{top}-{y}-{borrow}={top - y - borrow}")
        borrow = int(top != x)
    return steps


def _mul_steps(a: int, d: int) -> list[str]:
    steps, carry = [], 0
    for x in _digits(a, len(str(a))):
        v = x * d + carry
        steps.append(f"{x}*{d}+{carry}={v}")
        carry = v // 10
    return steps


def _add(a: int, b: int, level: int) -> Problem:
    return Problem(level, f"{a}+{b}", a + b, (*_add_steps(a, b), f"so {a + b}"))


def _sub(a: int, b: int, level: int) -> Problem:
    a, b = max(a, b), min(a, b)  # answers stay non-negative
    return Problem(level, f"{a}-{b}", a - b, (*_sub_steps(a, b), f"so {a - b}"))


def _mul(a: int, d: int, level: int) -> Problem:
    return Problem(level, f"{a}*{d}", a * d, (*_mul_steps(a, d), f"so {a * d}"))


def _mul_add(a: int, d: int, c: int, level: int) -> Problem:
    p = a * d
    steps = (*_mul_steps(a, d), f"so {p}", f"{p}+{c}", *_add_steps(p, c), f"so {p + c}")
    return Problem(level, f"{a}*{d}+{c}", p + c, steps)


# level -> (description, sampler). Each sampler draws one problem from the level's space with the given RNG.
LEVELS: dict[int, tuple[str, Callable[[random.Random, int], Problem]]] = {
    1: ("2-digit + 2-digit", lambda r, lv: _add(r.randint(10, 99), r.randint(10, 99), lv)),
    2: ("3-digit + 3-digit", lambda r, lv: _add(r.randint(100, 999), r.randint(100, 999), lv)),
    3: ("3-digit - 3-digit", lambda r, lv: _sub(r.randint(100, 999), r.randint(100, 999), lv)),
    4: ("3-digit * 1-digit", lambda r, lv: _mul(r.randint(100, 999), r.randint(2, 9), lv)),
    5: (
        "2-digit * 1-digit + 3-digit",
        lambda r, lv: _mul_add(r.randint(10, 99), r.randint(2, 9), r.randint(100, 999), lv),
    ),
}


def sample_problems(level: int, n: int, rng: random.Random, exclude: set[str] | None = None) -> list[Problem]:
    """
    Draws `n` distinct problems of one level.

    Args:
        level (`int`):
            A key of [`LEVELS`].
        n (`int`):
            How many problems.
        rng (`random.Random`):
            The random generator (the only source of randomness, so a seed fixes the result).
        exclude (`set[str]`, *optional*):
            Questions not to draw (e.g. the held-out split's, so the splits stay disjoint).

    Returns:
        `list[Problem]`: `n` problems with pairwise different questions, none in `exclude`.
    """
    if level not in LEVELS:
        raise ValueError(f"`level` must be one of {sorted(LEVELS)}, got {level!r}.")
    sampler = LEVELS[level][1]
    seen = set(exclude or ())
    problems: list[Problem] = []
    for _ in range(100 * n + 1000):  # every level has >= 8000 distinct problems, so this bound is never reached
        if len(problems) == n:
            return problems
        problem = sampler(rng, level)
        if problem.question not in seen:
            seen.add(problem.question)
            problems.append(problem)
    raise ValueError(f"Could not draw {n} distinct problems of level {level}: ask for fewer.")


def problems_to_dataset(problems: list[Problem], system_prompt: str | None = TOY_SYSTEM_PROMPT) -> Dataset:
    """
    Lays problems out as an SRFT data set.

    Args:
        problems (`list[Problem]`):
            The problems.
        system_prompt (`str` or `None`, *optional*, defaults to [`TOY_SYSTEM_PROMPT`]):
            The system message of every prompt; `None` leaves it out.

    Returns:
        [`~datasets.Dataset`]: columns `prompt` (chat messages), `completion` (the demonstration, a string: SRFT's
        default `demo_column`), `solution` (the gold answer, what the accuracy reward compares against) and
        `level` (`int`).
    """
    return Dataset.from_dict(
        {
            "prompt": [make_prompt(f"What is {p.question}?", system_prompt) for p in problems],
            "completion": [p.demonstration for p in problems],
            "solution": [str(p.answer) for p in problems],
            "level": [p.level for p in problems],
        }
    )


def make_splits(
    seed: int = 0,
    train_per_level: int = 2000,
    heldout_per_level: int = 100,
    pretrain_per_level: int = 0,
    levels: tuple[int, ...] = tuple(LEVELS),
    system_prompt: str | None = TOY_SYSTEM_PROMPT,
) -> DatasetDict:
    """
    Builds the toy data set's splits, deterministically from `seed`, with no question in two splits.

    For each level in turn, the held-out problems are drawn first, then the train problems from what is left, then
    (if asked) the problems the base model is pretrained on from what is left after that. One generator serves all
    draws, so every split depends on `seed` and on all the sizes: change a size and you get another world (its
    fingerprint changes too, see [`ToyWorldSettings`]).

    Args:
        seed (`int`, *optional*, defaults to `0`):
            Seed of the problem generator.
        train_per_level (`int`, *optional*, defaults to `2000`):
            Train problems per level (the prompts and demonstrations SFT, GRPO and SRFT train on).
        heldout_per_level (`int`, *optional*, defaults to `100`):
            Held-out problems per level (evaluation only).
        pretrain_per_level (`int`, *optional*, defaults to `0`):
            Problems per level for a `"pretrain"` split (what the toy base model is made from); `0` leaves it out.
        levels (`tuple[int, ...]`, *optional*, defaults to all of [`LEVELS`]):
            Which levels to include.
        system_prompt (`str` or `None`, *optional*, defaults to [`TOY_SYSTEM_PROMPT`]):
            The system message of every prompt; `None` leaves it out.

    Returns:
        [`~datasets.DatasetDict`]: `"train"`, `"heldout"` and, when `pretrain_per_level > 0`, `"pretrain"`, each
        shuffled across levels, with the columns of [`problems_to_dataset`].
    """
    rng = random.Random(seed)
    sizes = {"heldout": heldout_per_level, "train": train_per_level, "pretrain": pretrain_per_level}
    splits: dict[str, list[Problem]] = {name: [] for name, size in sizes.items() if size > 0}
    for level in levels:
        taken: set[str] = set()
        for name in splits:
            drawn = sample_problems(level, sizes[name], rng, exclude=taken)
            taken.update(p.question for p in drawn)
            splits[name] += drawn
    for problems in splits.values():
        rng.shuffle(problems)
    return DatasetDict({name: problems_to_dataset(problems, system_prompt) for name, problems in splits.items()})


def to_sft_dataset(dataset: Dataset) -> Dataset:
    """
    Turns an SRFT data set into a conversational prompt-completion data set for TRL's `SFTTrainer`.

    `SFTTrainer` needs the completion of a conversational prompt as chat messages: the demonstration string becomes
    one assistant message. The other columns are kept.

    Args:
        dataset ([`~datasets.Dataset`]):
            A data set with a `prompt` (chat messages) and a `completion` (string) column.

    Returns:
        [`~datasets.Dataset`]: the same rows with `completion` as `[{"role": "assistant", "content": demo}]`.
    """
    for column in ("prompt", "completion"):
        if column not in dataset.column_names:
            raise ValueError(f"to_sft_dataset needs a `{column}` column; the data set has {dataset.column_names}.")
    return dataset.map(lambda row: {"completion": [{"role": "assistant", "content": row["completion"]}]})
