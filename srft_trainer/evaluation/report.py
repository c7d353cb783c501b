# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""Scores from per-sample records: the JSON summary and the Markdown tables (computed from the JSONL, nothing else)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from .benchmarks import BENCHMARKS


def read_records(output_dir: str | Path) -> list[dict]:
    """All per-sample records in `output_dir` (`samples.jsonl`, or the `samples.rank*-of-*.jsonl` shards)."""
    paths = sorted(Path(output_dir).glob("samples*.jsonl"))
    if not paths:
        raise FileNotFoundError(f"no samples*.jsonl in {output_dir}")
    records = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            records.extend(json.loads(line) for line in f if line.strip())
    return records


def summarize(records: list[dict]) -> dict:
    """
    Scores per benchmark and the in-distribution / OOD averages.

    Accuracy is the mean of `correct` over all samples of a benchmark: with k samples for every problem this is
    avg@k (the mean over problems of each problem's mean), and pass@1 when k is 1. Samples without a final answer and
    samples whose gold cannot be parsed ("unscorable") count as wrong and are reported separately.

    Args:
        records (`list[dict]`): Per-sample records as written by [`evaluate`].

    Returns:
        `dict` with `benchmarks` (name -> scores) and `averages` (`id`, `ood`: mean accuracy and benchmarks used).
    """
    by_benchmark: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_benchmark[record["benchmark"]].append(record)
    # The paper's benchmarks in the registry's order, then the user's own files (`srft eval --data`), by name.
    order = [name for name in BENCHMARKS if name in by_benchmark]
    order += sorted(name for name in by_benchmark if name not in order)
    benchmarks = {}
    for name in order:
        rows = by_benchmark[name]
        spec = BENCHMARKS.get(name)
        title, group = (spec.title, spec.group) if spec else (name, "own")
        per_problem: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            per_problem[row["problem_id"]].append(row)
        counts = sorted({len(v) for v in per_problem.values()})
        if len(counts) != 1:
            raise ValueError(f"{name}: problems have different sample counts {counts}; the records are incomplete.")
        n = counts[0]
        benchmarks[name] = {
            "title": title,
            "group": group,
            "metric": f"avg@{n}" if n > 1 else "pass@1",
            "n": n,
            "problems": len(per_problem),
            "samples": len(rows),
            "correct": sum(bool(r["correct"]) for r in rows),
            "accuracy": 100.0 * sum(bool(r["correct"]) for r in rows) / len(rows),
            **_mean_reward(rows),
            "no_answer": sum(bool(r["no_answer"]) for r in rows),
            "unscorable": sum(r.get("error") == "gold_unparseable" for r in rows),
            "timeouts": sum(r.get("error") == "timeout" for r in rows),
            "options_unparsed": sum(bool(v[0].get("options_error")) for v in per_problem.values()),
        }
    averages = {}
    for group in ("id", "ood"):
        names = [name for name in order if benchmarks[name]["group"] == group]
        if names:
            averages[group] = {
                "accuracy": sum(benchmarks[name]["accuracy"] for name in names) / len(names),
                "benchmarks": names,
            }
    return {"benchmarks": benchmarks, "averages": averages}


def _pct(value: float) -> str:
    return f"{value:.1f}"


def markdown_table(summary: dict) -> str:
    """
    The results as Markdown: one row per benchmark plus the two averages, then a one-line row in the column
    order of the paper's Table 2 (for pasting beside it).
    """
    lines = [
        "| Benchmark | Group | Metric | Problems | Samples | Accuracy (%) | No answer (%) | Unscorable |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for scores in summary["benchmarks"].values():
        lines.append(
            f"| {scores['title']} | {scores['group'].upper()} | {scores['metric']} | {scores['problems']} | "
            f"{scores['samples']} | {_pct(scores['accuracy'])} | {_pct(100 * scores['no_answer'] / scores['samples'])}"
            f" | {scores['unscorable']} |"
        )
    labels = {"id": "In-distribution avg", "ood": "OOD avg"}
    for group, average in summary["averages"].items():
        titles = ", ".join(summary["benchmarks"][name]["title"] for name in average["benchmarks"])
        lines.append(f"| **{labels[group]}** ({titles}) | {group.upper()} | | | | {_pct(average['accuracy'])} | | |")
    # Paper layout: math benchmarks, their average, OOD benchmarks, their average.
    header, values = [], []
    for group in ("id", "ood"):
        if group not in summary["averages"]:
            continue
        for name in summary["averages"][group]["benchmarks"]:
            header.append(summary["benchmarks"][name]["title"])
            values.append(_pct(summary["benchmarks"][name]["accuracy"]))
        header.append("Avg.")
        values.append(_pct(summary["averages"][group]["accuracy"]))
    if not header:  # no paper benchmark (e.g. the toy held-out split alone)
        return "\n".join(lines) + "\n"
    paper = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header), "| " + " | ".join(values) + " |"]
    return "\n".join(lines) + "\n\n" + "\n".join(paper) + "\n"


def write_report(output_dir: str | Path, records: list[dict] | None = None, header: dict | None = None) -> dict:
    """
    Writes `summary.json` and `results.md` in `output_dir` from the records (read from its JSONL when not given).

    `header` (the run settings) defaults to the run's `settings.json` in `output_dir` when there is one.

    Returns:
        `dict`: the summary, with the Markdown under `"markdown"` and `header` (run settings) under `"settings"`.
    """
    output_dir = Path(output_dir)
    records = read_records(output_dir) if records is None else records
    if header is None and (output_dir / "settings.json").is_file():
        header = json.loads((output_dir / "settings.json").read_text(encoding="utf-8"))
    summary = summarize(records)
    table = markdown_table(summary)
    settings = ""
    if header:
        settings = "\n".join(f"- {key}: `{value}`" for key, value in header.items()) + "\n\n"
    (output_dir / "results.md").write_text(settings + table, encoding="utf-8")
    summary["settings"] = header or {}
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    summary["markdown"] = table
    return summary


def _mean_reward(rows: list[dict]) -> dict[str, float]:
    """`mean_reward` over the scorable samples when they were scored with reward functions (`srft eval --reward`)."""
    rewards = [r["reward"] for r in rows if r.get("reward") is not None]
    return {"mean_reward": sum(rewards) / len(rewards)} if rewards else {}
