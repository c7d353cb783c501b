# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""Evaluation on the SRFT paper's benchmarks: registry and loaders, generation backends, grading runner, report."""

from .benchmarks import BENCHMARKS, PAPER_BENCHMARKS, BenchmarkSpec, Problem, load_benchmark
from .generation import SamplingSettings, TransformersBackend, VLLMBackend
from .report import markdown_table, read_records, summarize, write_report
from .runner import evaluate, grade_problem_samples


__all__ = [
    "BENCHMARKS",
    "PAPER_BENCHMARKS",
    "BenchmarkSpec",
    "Problem",
    "SamplingSettings",
    "TransformersBackend",
    "VLLMBackend",
    "evaluate",
    "grade_problem_samples",
    "load_benchmark",
    "markdown_table",
    "read_records",
    "summarize",
    "write_report",
]
