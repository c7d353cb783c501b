# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
The report of `srft arena` (and of `benchmarks/paper_table.py`, its toy preset): Markdown tables (results on test, the
learning-rate grid on validation, separations), the legend and the PNG. Pure functions of the runs' records; `labels`
maps a row's key to its name in the table.
"""

from __future__ import annotations

import statistics
from pathlib import Path


# ------------------------------------------------------------------------------------------------------- numbers
def mean_std(values: list[float], digits: int = 1) -> str:
    """`mean ± std` (sample std; 0 for one value), or `–` for no values."""
    if not values:
        return "–"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def first_step(curve: list[dict], target: float) -> int | None:
    """The first scored step whose accuracy reaches `target`, or `None`."""
    return next((p["step"] for p in curve if p["accuracy"] >= target), None)


def steps_to(runs: list[dict], target: float | None) -> str:
    """Steps to reach `target` over the runs: `mean ± std`, with how many runs never reached it."""
    if target is None:
        return "–"
    hits = [first_step(r["curve"], target) for r in runs]
    reached = [h for h in hits if h is not None]
    if not reached:
        return "not reached"
    text = mean_std([float(h) for h in reached], digits=0)
    return text if len(reached) == len(hits) else f"{text} ({len(hits) - len(reached)}/{len(hits)} not reached)"


def targets(results: list[dict], base: dict) -> tuple[float | None, float | None]:
    """50% of SRFT's final mean accuracy, and the base accuracy plus half of SRFT's mean gain over it."""
    srft = [r["final_accuracy"] for r in results if r["row"] == "srft"]
    if not srft:
        return None, None
    final = statistics.mean(srft)
    return 0.5 * final, (base["accuracy"] + 0.5 * (final - base["accuracy"]) if final > base["accuracy"] else None)


def runs_of(row: str, results: list[dict], base: dict) -> list[dict]:
    return [base] if row == "base" else [r for r in results if r["row"] == row]


def values(runs: list[dict], key: str, scale: float = 1.0) -> list[float]:
    return [scale * r[key] for r in runs if r.get(key) is not None]


def rate(value: float) -> str:
    """A learning rate as the grid writes it: `3e-4`."""
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def chosen_rates(choice: dict | None) -> str:
    """The chosen rate of each stage (`1e-4 → 3e-4` for two stages), `(edge)` after one at the grid's edge."""
    if not choice:
        return "–"
    return " → ".join(
        rate(lr) + (" (edge)" if edge else "") for lr, edge in zip(choice["learning_rates"], choice["edge"])
    )


# -------------------------------------------------------------------------------------------------------- tables
def table(results: list[dict], rows: list[str], base: dict, labels: dict[str, str], chosen: dict | None = None) -> str:
    """The Markdown results table: one line per row, mean ± std over its runs (OOD column when the task has one)."""
    chosen = chosen or {}
    half, half_gain = targets(results, base)
    pct = lambda x: "–" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    with_ood = base.get("final_ood_accuracy") is not None
    ood_head, ood_rule = (" OOD accuracy (%) |", "---|") if with_ood else ("", "")
    lines = [
        f"| method | learning rate (chosen on validation) | test accuracy (%) |{ood_head} training entropy "
        f"| held-out entropy | steps to 50% of SRFT's accuracy ({pct(half)}) | steps to half of SRFT's gain "
        f"({pct(half_gain)}) | runs |",
        f"|---|---|---|{ood_rule}---|---|---|---|---|",
    ]
    for row in rows:
        runs = runs_of(row, results, base)
        ood = f" {mean_std(values(runs, 'final_ood_accuracy', 100))} |" if with_ood else ""
        lines.append(
            f"| {labels[row]} | {chosen_rates(chosen.get(row))} | {mean_std(values(runs, 'final_accuracy', 100))} "
            f"|{ood} {mean_std(values(runs, 'final_train_entropy'), 3)} "
            f"| {mean_std(values(runs, 'final_heldout_entropy'), 3)} | {steps_to(runs, half)} "
            f"| {steps_to(runs, half_gain)} | {len(runs)} |"
        )
    return "\n".join(lines)


def tuning_table(tuning: list[dict], grid: list[float], labels: dict[str, str], chosen: dict) -> str:
    """Validation accuracy (%) at each rate of the grid, per row and stage; the chosen rate in bold."""
    lines = ["| method (stage) | " + " | ".join(rate(lr) for lr in grid) + " |", "|---|" + "---|" * len(grid)]
    keys = sorted({(t["row"], t["stage"]) for t in tuning}, key=lambda k: (list(labels).index(k[0]), k[1]))
    for row, stage in keys:
        stages = len(chosen.get(row, {}).get("learning_rates", [])) or 1
        name = labels[row] + (f", stage {stage + 1} ({tuning_stage_name(tuning, row, stage)})" if stages > 1 else "")
        cells = []
        for lr in grid:
            hit = [t for t in tuning if (t["row"], t["stage"], t["learning_rate"]) == (row, stage, lr)]
            text = f"{100 * hit[0]['validation_accuracy']:.1f}" if hit else "–"
            picked = row in chosen and len(chosen[row]["learning_rates"]) > stage
            cells.append(f"**{text}**" if hit and picked and chosen[row]["learning_rates"][stage] == lr else text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tuning_stage_name(tuning: list[dict], row: str, stage: int) -> str:
    return next(t["recipe"] for t in tuning if (t["row"], t["stage"]) == (row, stage))


def separation(results: list[dict], rows: list[str], base: dict, labels: dict[str, str], reference="srft") -> str:
    """
    Whether each row's mean differs from the reference row's by more than two standard deviations (the larger of the
    two rows' std over seeds), on test and, when scored, out-of-distribution.
    """
    keys = [("final_accuracy", "test")]
    if base.get("final_ood_accuracy") is not None:
        keys.append(("final_ood_accuracy", "OOD"))
    ref = runs_of(reference, results, base)
    if not ref:
        return ""
    head = " | ".join(f"{name}: Δ vs {labels[reference]} (points), 2 std, separated?" for _, name in keys)
    lines = [f"| method | {head} |", "|---|" + "---|" * len(keys)]
    for row in rows:
        if row == reference:
            continue
        cells = []
        for key, _ in keys:
            mine, theirs = values(runs_of(row, results, base), key, 100), values(ref, key, 100)
            if not mine or not theirs:
                cells.append("–")
                continue
            spread = 2 * max(statistics.stdev(v) if len(v) > 1 else 0.0 for v in (mine, theirs))
            delta = statistics.mean(mine) - statistics.mean(theirs)
            cells.append(f"{delta:+.1f}, {spread:.1f}, {'yes' if abs(delta) > spread else 'no'}")
        lines.append(f"| {labels[row]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------- plot
def mean_curve(runs: list[dict], series: str, key: str) -> tuple[list[int], list[float]]:
    """Mean over runs of `key` at each step of `series` (steps that every run has)."""
    steps = sorted(set.intersection(*({p["step"] for p in r[series] if key in p} for r in runs)))
    means = [statistics.mean(next(p[key] for p in r[series] if p["step"] == s) for r in runs) for s in steps]
    return steps, means


def plot(results, rows, base, png: Path, labels: dict[str, str], title: str, tuning: list[dict] | None = None):
    """
    Test accuracy, training entropy and held-out entropy against optimizer steps (mean over seeds per row), and the
    validation accuracy of every grid point against its learning rate.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_train, ax_held, ax_grid) = plt.subplots(1, 4, figsize=(23, 5))
    colors = plt.get_cmap("tab10")
    for i, row in enumerate(rows):
        color, label = colors(i % 10), labels[row]
        if row == "base":
            ax_acc.axhline(100 * base["accuracy"], color=color, linestyle="--", label=label)
            ax_held.axhline(base["entropy"], color=color, linestyle="--", label=label)
            continue
        runs = [r for r in results if r["row"] == row]
        if runs:
            steps, acc = mean_curve(runs, "curve", "accuracy")
            ax_acc.plot(steps, [100 * v for v in acc], marker="o", markersize=3, color=color, label=label)
            steps, ent = mean_curve(runs, "curve", "entropy")
            ax_held.plot(steps, ent, marker="o", markersize=3, color=color, label=label)
            steps, ent = mean_curve(runs, "logs", "entropy")
            ax_train.plot(steps, ent, color=color, label=label, linewidth=1.2)
        for stage in sorted({t["stage"] for t in tuning or [] if t["row"] == row}):
            points = sorted((t["learning_rate"], t["validation_accuracy"]) for t in tuning
                            if (t["row"], t["stage"]) == (row, stage))  # fmt: skip
            ax_grid.plot([p[0] for p in points], [100 * p[1] for p in points], marker="o", markersize=3,
                         color=color, linestyle="-" if stage == 0 else ":",
                         label=label + (f" (stage {stage + 1})" if stage else ""))  # fmt: skip
    if "base" in rows and base.get("validation_accuracy") is not None:
        ax_grid.axhline(100 * base["validation_accuracy"], color=colors(rows.index("base") % 10), linestyle="--")
    ax_acc.set(xlabel="optimizer step", ylabel="test accuracy (%)", title="Test accuracy (greedy), chosen rates")
    ax_train.set(xlabel="optimizer step", ylabel="nats per token", title="Training entropy (as each trainer logs it)")
    ax_held.set(xlabel="optimizer step", ylabel="nats per token", title="Held-out entropy (along greedy completions)")
    ax_grid.set(xscale="log", xlabel="peak learning rate", ylabel="validation accuracy (%)",
                title="Learning-rate grid (tuning seed, validation)")  # fmt: skip
    ax_acc.legend(fontsize=7)
    ax_grid.legend(fontsize=6)
    for ax in (ax_acc, ax_train, ax_held, ax_grid):
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def legend(rows: list[str], recipe_for, stages_of, labels: dict[str, str]) -> str:
    """
    What each row trains: for each stage, the recipe (`recipe_for(kind)`) and the row's key overrides.

    Args:
        rows (`list[str]`): Row keys.
        recipe_for (`Callable[[str], Path]`): The recipe a stage of that trainer kind starts from.
        stages_of (`Callable[[str], tuple]`): A row's `(kind, overrides)` stages.
        labels (`dict[str, str]`): A row's name in the table.
    """
    lines = []
    for row in rows:
        stages = stages_of(row)
        if not stages:
            lines.append(f"- {labels[row]}: untrained (scored once: greedy decoding).")
            continue
        parts = []
        for kind, overrides in stages:
            keys = ", ".join(f"`{k}: {str(v).lower() if isinstance(v, bool) else v}`" for k, v in overrides.items())
            parts.append(f"`{recipe_for(kind)}` as `trainer: {kind}`" + (f" with {keys}" if keys else ""))
        split = " then ".join(parts) + (" (half of the steps each, each stage tuned)" if len(stages) > 1 else "")
        lines.append(f"- {labels[row]}: {split}.")
    return "\n".join(lines)
