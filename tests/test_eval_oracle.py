"""
Oracle test on the real benchmark files (LUFFY/verl layout) beside the checkout: the gold answer written as a perfect
completion must score 100% on every benchmark, a wrong answer 0%, a completion without an answer 0% and "no answer".
Any row the grader cannot handle is listed in the failure message, not hidden. Skipped when the files are absent.
"""

import os
import re
from pathlib import Path

import pytest

from srft_trainer.evaluation import BENCHMARKS, load_benchmark, summarize
from srft_trainer.evaluation.benchmarks import find_source
from srft_trainer.evaluation.runner import grade_problem_samples


BENCHMARKS_DIR = Path(
    os.environ.get("SRFT_BENCHMARKS_DIR") or Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
)
# Unique problems per benchmark in LUFFY's files (AIME and AMC rows there are repeated 32 times).
EXPECTED = {"aime24": 30, "amc": 83, "aime25": 30, "math500": 500, "minerva": 272, "olympiad": 675, "arc_c": 1172,
            "gpqa_diamond": 198}  # fmt: skip
SLOW = {"math500", "minerva", "olympiad"}  # a few hundred math-verify parses each: ~5-25 s on 2 busy cores


def completions(problem):
    """(perfect, wrong, no answer) completions for a problem."""
    think = "<think>\nLet me work through it.\n</think>\n"
    if problem.labels is not None:
        wrong = problem.labels[(problem.labels.index(problem.gold) + 1) % len(problem.labels)]
        return f"{think}ANSWER: {problem.gold}", f"{think}ANSWER: {wrong}", f"{think}I am not sure."
    wrong = str(int(problem.gold) + 1) if re.fullmatch(r"-?\d+", problem.gold) else "-987654321.5"
    return (
        f"{think}The final answer is $\\boxed{{{problem.gold}}}$.",
        f"{think}The final answer is $\\boxed{{{wrong}}}$.",
        f"{think}The final answer is {problem.gold}.",  # not boxed: no final answer
    )


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in EXPECTED]
)  # fmt: skip
def test_oracle_on_shared_benchmark_files(name):
    source = find_source(BENCHMARKS[name], BENCHMARKS_DIR) if BENCHMARKS_DIR.is_dir() else None
    if source is None:
        pytest.skip(f"no file for {name} in {BENCHMARKS_DIR} (set SRFT_BENCHMARKS_DIR)")
    problems = load_benchmark(name, source)
    assert len(problems) == EXPECTED[name]
    unparsed = [(p.problem_id, p.prompt[-1]["content"][-200:]) for p in problems if p.options_error]
    assert not unparsed, f"{len(unparsed)} multiple-choice prompts whose options could not be parsed: {unparsed[:5]}"

    records = {"perfect": [], "wrong": [], "none": []}
    for problem in problems:
        for kind, completion in zip(records, completions(problem)):
            records[kind] += grade_problem_samples(problem, [completion])
    failures = [
        (r["problem_id"], r["gold"], r["extracted"], r["error"]) for r in records["perfect"] if not r["correct"]
    ]
    assert not failures, f"{len(failures)} gold answers not graded correct: {failures[:20]}"
    false_positives = [(r["problem_id"], r["gold"], r["extracted"]) for r in records["wrong"] if r["correct"]]
    assert not false_positives, f"wrong answers graded correct: {false_positives[:20]}"

    scores = {kind: summarize(rows)["benchmarks"][name] for kind, rows in records.items()}
    assert scores["perfect"]["accuracy"] == 100.0 and scores["perfect"]["unscorable"] == 0
    assert scores["wrong"]["accuracy"] == 0.0 and scores["wrong"]["no_answer"] == 0
    assert scores["none"]["accuracy"] == 0.0 and scores["none"]["no_answer"] == len(problems)
