# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
Writes the one-shot sums task: the SmolLM2 arena's data (docs/arena.md, `recipes/custom/smollm2_arena.yaml`).

    python scripts/make_oneshot_sums.py                 # examples/data/oneshot_sums/{train,validation,test}.jsonl

Each prompt asks for a sum of two numbers from 1 to `--max-operand` and shows one worked example in the answer's
format, so a small instruct model answers in it; the demonstration is that format with the true sum, and `solution`
is the sum. No pair appears in two splits (either order). SmolLM2-135M-Instruct answers 10-60% of them greedily before
training: it often adds wrongly and often runs on into further questions of its own, whose last `\\boxed{}` is graded.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


EXAMPLE = "Q: What is 4 + 1?\nA: 4 + 1 = 5. The answer is \\boxed{5}.\n\n"


def row(a: int, b: int) -> dict:
    """One problem: the one-shot prompt, the demonstration in the example's format and the sum as `solution`."""
    return {
        "prompt": [{"role": "user", "content": f"{EXAMPLE}Q: What is {a} + {b}?\nA:"}],
        "completion": f"{a} + {b} = {a + b}. The answer is \\boxed{{{a + b}}}.",
        "solution": str(a + b),
    }


def make_splits(sizes: dict[str, int], max_operand: int, seed: int) -> dict[str, list[dict]]:
    """Disjoint splits of unordered operand pairs (the example's pair left out), shuffled with `seed`."""
    pairs = [(a, b) for a in range(1, max_operand + 1) for b in range(a, max_operand + 1) if {a, b} != {1, 4}]
    if sum(sizes.values()) > len(pairs):
        raise ValueError(f"{sum(sizes.values())} problems asked for, {len(pairs)} distinct pairs up to {max_operand}")
    rng = random.Random(seed)
    rng.shuffle(pairs)
    splits, start = {}, 0
    for name, size in sizes.items():
        chosen = pairs[start : start + size]
        splits[name] = [row(*(p if rng.random() < 0.5 else p[::-1])) for p in chosen]
        start += size
    return splits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default="examples/data/oneshot_sums")
    parser.add_argument("--max-operand", type=int, default=30)
    parser.add_argument("--train", type=int, default=128)
    parser.add_argument("--validation", type=int, default=40)
    parser.add_argument("--test", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = {"train": args.train, "validation": args.validation, "test": args.test}
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in make_splits(sizes, args.max_operand, args.seed).items():
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"{out / name}.jsonl: {len(rows)} problems")


if __name__ == "__main__":
    main()
