# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""Runs the protocol: load benchmarks, sample `n` completions per problem, grade, write per-sample JSONL."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..grading import grade_choice, grade_math
from .benchmarks import Problem, get_spec, load_benchmark
from .generation import SamplingSettings


logger = logging.getLogger(__name__)


def grade_problem_samples(problem: Problem, completions: list[str]) -> list[dict]:
    """
    Grades the completions of one problem and returns one record per sample.

    Args:
        problem ([`Problem`]): The problem (multiple choice when it has `labels`).
        completions (`list[str]`): Its sampled completions.

    Returns:
        `list[dict]`: records with `benchmark`, `problem_id`, `sample_index`, `prompt`, `completion`, `extracted`,
        `gold`, `correct`, `no_answer`, `error`, `copies`, `options_error`.
    """
    records = []
    for index, completion in enumerate(completions):
        if problem.labels is not None:
            result = grade_choice(completion, problem.gold, problem.labels)
        else:
            result = grade_math(completion, problem.gold)
        records.append(
            {
                "benchmark": problem.benchmark,
                "problem_id": problem.problem_id,
                "sample_index": index,
                "prompt": problem.prompt,
                "completion": completion,
                "extracted": result.extracted,
                "gold": problem.gold,
                "correct": result.correct,
                "no_answer": result.no_answer,
                "error": result.error,
                "copies": problem.copies,
                "options_error": problem.options_error,
            }
        )
    return records


def grade_with_rewards(
    problem: Problem, completions: list[str], reward_funcs: list, reward_weights: list[float] | None = None
) -> list[dict]:
    """
    Scores the completions of one problem with training reward functions (as TRL calls them, `solution` = the gold)
    and returns [`grade_problem_samples`]'s records plus `reward` (the weighted total; `None` where no function could
    score the sample). A sample counts as correct when its total reward is > 0.
    """
    from ..rewards import reward_totals

    n = len(completions)
    totals = reward_totals(reward_funcs, [problem.prompt] * n, completions, {"solution": [problem.gold] * n},
                           reward_weights)  # fmt: skip
    records = grade_problem_samples(problem, completions)
    for record, total in zip(records, totals):
        record["reward"] = total
        record["correct"] = total is not None and total > 0
        record["error"] = record["error"] if total is not None else "unscorable_reward"
    return records


def samples_path(output_dir: str | Path, rank: int = 0, world_size: int = 1) -> Path:
    """`samples.jsonl`, or `samples.rank{R}-of-{S}.jsonl` for one data-parallel shard."""
    name = "samples.jsonl" if world_size == 1 else f"samples.rank{rank}-of-{world_size}.jsonl"
    return Path(output_dir) / name


def evaluate(
    backend,
    benchmarks: list[str],
    output_dir: str | Path,
    sampling: SamplingSettings,
    n: int | None = None,
    sources: dict[str, str | None] | None = None,
    shuffle_options: bool = True,
    limit: int | None = None,
    rank: int = 0,
    world_size: int = 1,
    reward_funcs: dict[str, tuple[list, list[float] | None]] | None = None,
) -> list[dict]:
    """
    Evaluates a generation backend on benchmarks and writes the per-sample JSONL.

    Args:
        backend: A [`TransformersBackend`] or [`VLLMBackend`] (anything with `generate(prompts, n, sampling)`).
        benchmarks (`list[str]`): Registry names.
        output_dir (`str` or `Path`): Where `samples*.jsonl` goes.
        sampling ([`SamplingSettings`]): Temperature, top-p, max new tokens, seed.
        n (`int`, *optional*): Samples per problem for every benchmark; defaults to each benchmark's protocol
            (32 for AIME/AMC, 1 elsewhere).
        sources (`dict[str, str | None]`, *optional*): Benchmark -> local file, directory or Hub id (see
            [`load_benchmark`]); missing benchmarks load from the Hub.
        shuffle_options (`bool`, *optional*, defaults to `True`): Shuffle multiple-choice options (seeded by
            `sampling.seed`).
        limit (`int`, *optional*): Evaluate only the first `limit` problems of each benchmark.
        rank, world_size (`int`, *optional*): Data-parallel shard to evaluate (problems `rank::world_size`).
        reward_funcs (`dict`, *optional*): Benchmark -> (reward functions, weights) to score it with instead of the
            math/choice grader (`srft eval --data FILE --reward ...` or `--recipe`), see [`grade_with_rewards`].

    Returns:
        `list[dict]`: all records of this shard (also written to the JSONL).
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"data-parallel rank must be in [0, {world_size}), got {rank}")
    if n is not None and n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    sources = sources or {}
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    # Load everything first, so that a missing or malformed benchmark fails before any generation time is spent.
    loaded = {
        name: load_benchmark(name, sources.get(name), seed=sampling.seed, shuffle=shuffle_options, limit=limit)
        for name in benchmarks
    }
    all_records = []
    with open(samples_path(output_dir, rank, world_size), "w", encoding="utf-8") as f:
        for name, problems in loaded.items():
            problems = problems[rank::world_size]
            k = n or get_spec(name).default_n
            logger.info("%s: %d problems x %d samples", name, len(problems), k)
            completions = backend.generate([p.prompt for p in problems], k, sampling)
            for problem, samples in zip(problems, completions, strict=True):
                if len(samples) != k:
                    raise RuntimeError(f"{problem.problem_id}: backend returned {len(samples)} samples, expected {k}")
                if reward_funcs and name in reward_funcs:
                    records = grade_with_rewards(problem, samples, *reward_funcs[name])
                else:
                    records = grade_problem_samples(problem, samples)
                for record in records:
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
                all_records.extend(records)
    return all_records
