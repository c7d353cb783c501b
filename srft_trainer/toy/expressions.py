# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
The second toy task, `expressions`: sums of products and numbers with several correct derivations, demonstrations
from another policy than the base model's, a chosen fraction of them imperfect, and an out-of-distribution split.

A problem is `k` terms joined by `+`, each term a number from 1 to 20 or a product of two factors from 2 to 6, e.g.
`What is 6*5+13+4*3?`. Training and the in-distribution held-out split have 3-4 terms; the out-of-distribution
held-out split has 5-6. Any order of computing the products and of adding the partial results is correct.

Two policies write solutions, both in the paper's format (`<think>\\n ... </think>\\n\\boxed{N}`):

- the *base* style ([`base_completion`], the `pretrain` split the base model learns from): terse `a*b=c` and `a+b=c`
  steps, each choosing uniformly at random which pending product to compute or which two pending values to add
  (and in which operand order), so the base model has real choices to make, and separated by a new line, ` `,
  `, `, `; `, `. ` or ` | ` (chosen at random too):

  ```
  <think>
   4*3=12 | 13+12=25
   5*6=30. 25+30=55 </think>
  \\boxed{55}
  ```

- the *demonstration* style ([`demonstration`], the `completion` column of the train split, what SFT and SRFT
  imitate): a fixed left-to-right procedure, products first, then each addition worked column by column (least
  significant digit first, `+1` for a carry) like the arithmetic task's, the running total opening the next one:

  ```
  <think>
   6*5=30
   4*3=12
   30+13
   0+3=3
   3+1=4
   43+12
   3+2=5
   4+1=5
   so 55 </think>
  \\boxed{55}
  ```

A fraction `demo_error_rate` of the train demonstrations is imperfect: one arithmetic step (a product or a column) has
one wrong digit, and the wrong value is carried through the remaining steps, so the final answer is wrong and the
accuracy reward scores the demonstration 0 (`min_demo_reward=1.0` drops exactly those). The `demo_correct` column
says which.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from datasets import Dataset, DatasetDict

from ..prompts import THINK_CLOSE, THINK_OPEN, make_prompt
from .task import TOY_SYSTEM_PROMPT


# A term is `(n,)` for a number or `(a, b)` for the product a*b.
Term = tuple[int, ...]
# level = number of terms. Train, pretrain and the in-distribution held-out split use `ID_LEVELS`; the
# out-of-distribution held-out split uses `OOD_LEVELS`, more terms than training ever shows.
ID_LEVELS = (3, 4)
OOD_LEVELS = (5, 6)
PRODUCT_PROBABILITY = 0.5
# Between two steps of a base-style solution: a new line, or the same line after a space, a comma, a semicolon, a
# full stop or a bar. Six ways (ln 6 = 1.8 nats at each step boundary, ~0.125 nats per token of a base completion):
# task version 2 had three, and its base met the entropy target only below 10% sampled accuracy (issue 14).
BASE_SEPARATORS = ("\n ", " ", ", ", "; ", ". ", " | ")
NUMBERS = (1, 20)
FACTORS = (2, 6)
# Small operands keep the base model's one-line sums learnable by a ~1M-parameter model in a CPU-sized pretraining
# (task version 1 drew numbers up to 99 and factors up to 9: its base stayed under 10% sampled accuracy). The longest
# in-distribution demonstration is 143 characters (124 tokens of the task's tokenizer), within `evaluate_heldout`'s
# default of 160 new tokens; 6-term OOD demonstrations reach 189 characters, so score the OOD split with this many.
OOD_MAX_NEW_TOKENS = 256
# Styles of the train demonstrations ([`make_expression_splits`]'s `demo_style`).
DEMO_STYLES = ("column", "terse")


def _format(thoughts: list[str], answer: int) -> str:
    return f"{THINK_OPEN} " + "\n ".join(thoughts) + f" {THINK_CLOSE}\n\\boxed{{{answer}}}"


def _value(term: Term) -> int:
    return term[0] * term[1] if len(term) == 2 else term[0]


@dataclass(frozen=True)
class ExpressionProblem:
    """One problem: its `terms` (`(n,)` or `(a, b)` for `a*b`), with the question and the gold answer."""

    terms: tuple[Term, ...]

    @property
    def level(self) -> int:
        """The number of terms."""
        return len(self.terms)

    @property
    def question(self) -> str:
        return "+".join("*".join(map(str, term)) for term in self.terms)

    @property
    def answer(self) -> int:
        return sum(_value(term) for term in self.terms)


def sample_expression(num_terms: int, rng: random.Random) -> ExpressionProblem:
    """Draws one problem of `num_terms` terms, each a product (probability 1/2) or a number."""
    terms = []
    for _ in range(num_terms):
        if rng.random() < PRODUCT_PROBABILITY:
            terms.append((rng.randint(*FACTORS), rng.randint(*FACTORS)))
        else:
            terms.append((rng.randint(*NUMBERS),))
    return ExpressionProblem(tuple(terms))


def base_completion(problem: ExpressionProblem, rng: random.Random, error_rate: float = 0.0) -> str:
    """
    A base-style solution: terse `a*b=c` / `a+b=c` steps in a random valid order, with random separators.

    At each step the action is drawn uniformly from all that are possible then: computing any pending product, or
    adding any two pending values (computed products count as values); the two operands are written in random order.
    With probability `error_rate` a step's result gets a wrong last digit, carried through the remaining steps: the
    base model learns from a sloppy calculator, so its uncertainty sits on the digits that decide the reward.

    Args:
        problem ([`ExpressionProblem`]):
            The problem.
        rng (`random.Random`):
            The source of every choice.
        error_rate (`float`, *optional*, defaults to `0.0`):
            Probability that a step's result has a wrong last digit.

    Returns:
        `str`: the completion in the paper's format, its final value boxed (wrong after a wrong step).
    """
    products = [term for term in problem.terms if len(term) == 2]
    values = [term[0] for term in problem.terms if len(term) == 1]
    lines = []
    while products or len(values) > 1:
        pairs = [(i, j) for i in range(len(values)) for j in range(i + 1, len(values))]
        pick = rng.randrange(len(products) + len(pairs))
        if pick < len(products):
            (a, b), op = products.pop(pick), "*"
            result = a * b
        else:
            i, j = pairs[pick - len(products)]
            a, b, op = values[i], values[j], "+"
            result = a + b
            del values[j], values[i]  # j > i: the later one first
        if error_rate and rng.random() < error_rate:
            last = result % 10
            result += rng.choice([d for d in range(10) if d != last and not (result < 10 and d == 0)]) - last
        if rng.random() < 0.5:
            a, b = b, a
        lines.append(f"{a}{op}{b}={result}")
        values.append(result)
    # Each step after the first opens with a freely chosen separator: formatting freedom that any answer survives,
    # as a real model's has (what decides the reward is the order of steps and the digits).
    thoughts = lines[0] + "".join(rng.choice(BASE_SEPARATORS) + line for line in lines[1:])
    return _format([thoughts], values[0])


# A slip: (index of the arithmetic step, the digit written there instead of the right one).
Slip = tuple[int, int]


class _Writer:
    """Writes the demonstration's arithmetic steps, counting them and putting in the slip when its step comes."""

    def __init__(self, slip: Slip | None):
        self.slip, self.steps, self.lines = slip, [], []

    def result(self, value: int, leading: bool) -> int:
        """The value written for a step whose right result is `value` (`leading`: its last digit leads the number)."""
        self.steps.append((value % 10, leading))
        if self.slip is not None and self.slip[0] == len(self.steps) - 1:
            return value - value % 10 + self.slip[1]
        return value


def _demo(problem: ExpressionProblem, slip: Slip | None = None) -> tuple[list[str], int, list[tuple[int, int]]]:
    """The demonstration's lines, its final value and its steps' (right last digit, leads the number)."""
    writer = _Writer(slip)
    values = []
    for term in problem.terms:
        if len(term) == 2:
            product = writer.result(term[0] * term[1], leading=term[0] * term[1] < 10)
            writer.lines.append(f"{term[0]}*{term[1]}={product}")
            values.append(product)
        else:
            values.append(term[0])
    total = values[0]
    for value in values[1:]:
        # The running total is stated once, by the next addition's header (or the closing `so` line).
        writer.lines.append(f"{total}+{value}")
        width = max(len(str(total)), len(str(value)))
        top, bottom = str(total).zfill(width)[::-1], str(value).zfill(width)[::-1]
        digits, carry = [], 0
        for column, (x, y) in enumerate(zip(top, bottom)):
            right = int(x) + int(y) + carry
            s = writer.result(right, leading=column == width - 1 and right < 10)
            # A carry is written only when there is one: the longest 4-term demonstration stays under the
            # 160 new tokens the held-out evaluation generates by default.
            writer.lines.append(f"{x}+{y}+{carry}={s}" if carry else f"{x}+{y}={s}")
            digits.append(s % 10)
            carry = s // 10
        total = int(str(carry or "") + "".join(map(str, reversed(digits))))
    writer.lines.append(f"so {total}")
    return writer.lines, total, writer.steps


def demonstration(problem: ExpressionProblem, slip: Slip | None = None) -> str:
    """
    A demonstration-style solution: products left to right, then additions left to right, column by column.

    Args:
        problem ([`ExpressionProblem`]):
            The problem.
        slip (`tuple[int, int]`, *optional*):
            `(step, digit)`: write `digit` as the last digit of arithmetic step `step` (products first, then the
            columns in order) instead of the right one, and carry the wrong value through. `None` writes it right.

    Returns:
        `str`: the completion in the paper's format, its final value boxed (wrong when a slip changed a digit).
    """
    lines, total, _ = _demo(problem, slip)
    return _format(lines, total)


def sample_slip(problem: ExpressionProblem, rng: random.Random) -> Slip:
    """A slip for [`demonstration`]: a uniformly chosen step and a wrong digit (no leading zero)."""
    steps = _demo(problem)[2]
    step = rng.randrange(len(steps))
    right, leading = steps[step]
    return step, rng.choice([d for d in range(10) if d != right and not (leading and d == 0)])


def sample_expressions(
    levels: tuple[int, ...], per_level: int, rng: random.Random, taken: set[str]
) -> list[ExpressionProblem]:
    """
    Draws `per_level` distinct problems for each level (number of terms), none of whose question is in `taken`.

    Args:
        levels (`tuple[int, ...]`):
            Numbers of terms.
        per_level (`int`):
            Problems per level.
        rng (`random.Random`):
            The random generator.
        taken (`set[str]`):
            Questions not to draw; the drawn ones are added to it.

    Returns:
        `list[ExpressionProblem]`: the problems, level by level.
    """
    problems = []
    for level in levels:
        drawn = 0
        for _ in range(100 * per_level + 1000):  # >= 4 million problems per level: the bound is never reached
            if drawn == per_level:
                break
            problem = sample_expression(level, rng)
            if problem.question not in taken:
                taken.add(problem.question)
                problems.append(problem)
                drawn += 1
        else:
            raise ValueError(f"Could not draw {per_level} distinct problems of {level} terms: ask for fewer.")
    return problems


def make_expression_splits(
    seed: int = 0,
    train_per_level: int = 2000,
    heldout_per_level: int = 100,
    ood_per_level: int = 100,
    pretrain_per_level: int = 0,
    demo_error_rate: float = 0.25,
    base_error_rate: float = 0.0,
    system_prompt: str | None = TOY_SYSTEM_PROMPT,
    demo_style: str = "column",
) -> DatasetDict:
    """
    Builds the splits of the `expressions` task deterministically from `seed`, with no question in two splits.

    Problems are drawn in the order held-out, OOD held-out, train, pretrain from one generator; the slips and the
    base-style orders come from generators of their own. So the first three splits do not depend on
    `pretrain_per_level`.

    Args:
        seed (`int`, *optional*, defaults to `0`):
            Seed of the generators.
        train_per_level (`int`, *optional*, defaults to `2000`):
            Train problems per level of [`ID_LEVELS`], with demonstration-style completions.
        heldout_per_level (`int`, *optional*, defaults to `100`):
            In-distribution held-out problems per level of [`ID_LEVELS`].
        ood_per_level (`int`, *optional*, defaults to `100`):
            Out-of-distribution held-out problems per level of [`OOD_LEVELS`]; `0` leaves the split out.
        pretrain_per_level (`int`, *optional*, defaults to `0`):
            Problems per level of [`ID_LEVELS`] for a `"pretrain"` split with base-style completions; `0` leaves it
            out.
        demo_error_rate (`float`, *optional*, defaults to `0.25`):
            Fraction of the train demonstrations that have one slip (rounded to a whole number of rows).
        base_error_rate (`float`, *optional*, defaults to `0.0`):
            Per-step probability of a wrong last digit in the `"pretrain"` split's base-style completions (see
            [`base_completion`]).
        system_prompt (`str` or `None`, *optional*, defaults to [`TOY_SYSTEM_PROMPT`]):
            The system message of every prompt; `None` leaves it out.
        demo_style (`str`, *optional*, defaults to `"column"`):
            The train demonstrations' style: `"column"` ([`demonstration`], another policy than the base's) or
            `"terse"` ([`base_completion`] without slips: the base's own style written by a solver that never errs,
            from a generator of its own, so the other splits do not change). `"terse"` needs `demo_error_rate=0`.

    Returns:
        [`~datasets.DatasetDict`]: `"train"`, `"heldout"`, `"heldout_ood"` and `"pretrain"` (the last two when
        asked for), each shuffled, with columns `prompt`, `completion` (a string), `solution` (the gold answer),
        `level` (the number of terms) and `demo_correct` (`False` only for the train rows with a slip).
    """
    if not 0.0 <= demo_error_rate <= 1.0:
        raise ValueError(f"`demo_error_rate` must be in [0, 1], got {demo_error_rate}.")
    if not 0.0 <= base_error_rate <= 1.0:
        raise ValueError(f"`base_error_rate` must be in [0, 1], got {base_error_rate}.")
    if demo_style not in DEMO_STYLES:
        raise ValueError(f"`demo_style` must be one of {list(DEMO_STYLES)}, got {demo_style!r}.")
    if demo_style == "terse" and demo_error_rate:
        raise ValueError(f"`demo_style='terse'` writes no slips: set `demo_error_rate=0`, got {demo_error_rate}.")
    rng, slips, orders = random.Random(seed), random.Random(f"{seed}:slips"), random.Random(f"{seed}:orders")
    taken: set[str] = set()
    plan = {
        "heldout": (ID_LEVELS, heldout_per_level),
        "heldout_ood": (OOD_LEVELS, ood_per_level),
        "train": (ID_LEVELS, train_per_level),
        "pretrain": (ID_LEVELS, pretrain_per_level),
    }
    splits = {}
    for name, (levels, per_level) in plan.items():
        if per_level > 0 or name in ("train", "heldout"):
            problems = sample_expressions(levels, per_level, rng, taken)
            rng.shuffle(problems)
            splits[name] = problems
    train = splits["train"]
    imperfect = set(slips.sample(range(len(train)), round(demo_error_rate * len(train))))
    columns = {}
    for name, problems in splits.items():
        if name == "pretrain":
            completions = [base_completion(p, orders, base_error_rate) for p in problems]
        elif name == "train" and demo_style == "terse":
            terse = random.Random(f"{seed}:terse-demos")
            completions = [base_completion(p, terse) for p in problems]
        elif name == "train":
            completions = [
                demonstration(p, sample_slip(p, slips) if i in imperfect else None) for i, p in enumerate(problems)
            ]
        else:
            completions = [demonstration(p) for p in problems]
        columns[name] = Dataset.from_dict(
            {
                "prompt": [make_prompt(f"What is {p.question}?", system_prompt) for p in problems],
                "completion": completions,
                "solution": [str(p.answer) for p in problems],
                "level": [p.level for p in problems],
                "demo_correct": [not (name == "train" and i in imperfect) for i in range(len(problems))],
            }
        )
    return DatasetDict(columns)
