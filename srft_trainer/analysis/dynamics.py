# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
`srft analyze dynamics`: training curves of one or more runs, overlaid (paper Fig. 4 and 6).

A run is read from its `trainer_state.json` (`log_history`: one dict per logging step, with `step` and the logged
metrics) and, when the `tensorboard` package is installed, from TensorBoard event files under the run's folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib


matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .scoring import checkpoint_step, parse_labelled  # noqa: E402


logger = logging.getLogger(__name__)

# (panel title, metric keys) as logged by TRL's GRPOTrainer (`reward`, `completions/mean_length`, `entropy`) and by
# SRFTTrainer (`srft/...`). The first key of a panel is drawn solid, the others dashed.
DEFAULT_PANELS: list[tuple[str, list[str]]] = [
    ("Reward", ["reward"]),
    ("Response length (tokens)", ["completions/mean_length"]),
    ("Entropy", ["entropy", "srft/entropy"]),
    ("w_SFT", ["srft/w_sft"]),
    ("w_RL", ["srft/w_rl"]),
    ("Demo NLL", ["srft/sft_nll"]),
]

Series = dict[str, dict[float, float]]  # metric -> step -> value


def find_trainer_state(path: Path) -> Path | None:
    """`path` itself, `path/trainer_state.json`, or that of the last `checkpoint-<step>` folder in `path`."""
    if path.is_file():
        return path
    if (path / "trainer_state.json").is_file():
        return path / "trainer_state.json"
    checkpoints = [
        p for p in path.glob("checkpoint-*/trainer_state.json") if checkpoint_step(str(p.parent)) is not None
    ]
    return max(checkpoints, key=lambda p: checkpoint_step(str(p.parent)), default=None)


def read_trainer_state(path: Path) -> Series:
    """Every numeric metric of `log_history`, by step; `None`/NaN values (nothing logged) are left out."""
    state = json.loads(path.read_text())
    if "log_history" not in state:
        raise ValueError(f"{path} has no `log_history`: is it a transformers `trainer_state.json`?")
    series: Series = {}
    for entry in state["log_history"]:
        step = entry.get("step")
        if step is None:
            continue
        for key, value in entry.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                continue
            series.setdefault(key, {})[float(step)] = float(value)
    return series


def read_tensorboard(path: Path) -> Series | None:
    """
    Scalars from TensorBoard event files under `path` (transformers writes `train/<key>` and `eval/<key>` tags; they
    are renamed `<key>` and `eval_<key>` as in `trainer_state.json`). `None` when there are no event files, or when
    `tensorboard` is not installed (with a message).
    """
    event_dirs = sorted({p.parent for p in path.rglob("events.out.tfevents.*")}) if path.is_dir() else []
    if not event_dirs:
        return None
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        print(f"Skipping TensorBoard logs under {path}: `pip install tensorboard` to read them.")
        return None
    series: Series = {}
    for event_dir in event_dirs:
        accumulator = EventAccumulator(str(event_dir), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            key = tag.removeprefix("train/")
            key = "eval_" + key.removeprefix("eval/") if key.startswith("eval/") else key
            for event in accumulator.Scalars(tag):
                series.setdefault(key, {})[float(event.step)] = float(event.value)
    return series


def load_run(path: str) -> Series:
    """A run's metrics: `trainer_state.json` first; TensorBoard fills steps and metrics it does not have."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"--run {path}: no such file or folder.")
    state_file = find_trainer_state(root)
    series = read_trainer_state(state_file) if state_file else {}
    tensorboard = read_tensorboard(root if root.is_dir() else root.parent)
    if tensorboard:
        for key, values in tensorboard.items():
            series[key] = {**values, **series.get(key, {})}
    if not series:
        raise ValueError(f"--run {path}: found no trainer_state.json (nor readable TensorBoard logs) with metrics.")
    return series


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over `window` points (the first points average what exists so far)."""
    if window <= 1:
        return values
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (cumsum[1:] - cumsum[np.maximum(np.arange(1, len(values) + 1) - window, 0)]) / counts


def plot_dynamics(
    runs: dict[str, Series],
    panels: Sequence[tuple[str, Sequence[str]]],
    png_path: Path,
    csv_path: Path,
    window: int = 1,
    title: str | None = None,
) -> list[str]:
    """
    Draws one panel per metric group, runs overlaid, and writes the plotted numbers as CSV.

    Panels with no data in any run are left out; a run without a metric is missing from that panel only.

    Returns:
        `list[str]`: the titles of the panels drawn.
    """
    present = [(t, [k for k in keys if any(k in s for s in runs.values())]) for t, keys in panels]
    present = [(t, keys) for t, keys in present if keys]
    if not present:
        wanted = sorted({k for _, keys in panels for k in keys})
        raise ValueError(f"None of the runs logged any of {wanted}.")
    for t, keys in panels:
        if not any(t == p for p, _ in present):
            print(f"Skipping panel {t!r}: no run logged {', '.join(keys)}.")
    ncols = min(3, len(present))
    nrows = math.ceil(len(present) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.1 * nrows), dpi=90, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    rows = []
    for ax, (panel, keys) in zip(axes.flat, present):
        for r, (label, series) in enumerate(runs.items()):
            for k, key in enumerate(keys):
                if key not in series:
                    continue
                steps = np.array(sorted(series[key]))
                values = np.array([series[key][s] for s in steps])
                smoothed = smooth(values, window)
                color, style = colors[r % len(colors)], "-" if k == 0 else "--"
                name = label if len(keys) == 1 else f"{label}: {key}"
                if window > 1:
                    ax.plot(steps, values, color=color, linestyle=style, alpha=0.25, linewidth=0.8)
                ax.plot(steps, smoothed, color=color, linestyle=style, label=name, linewidth=1.5)
                rows += [[label, key, f"{s:g}", v, m] for s, v, m in zip(steps, values, smoothed)]
        ax.set_title(panel)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(present) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run", "metric", "step", "value", "smoothed"])
        writer.writerows(rows)
    return [t for t, _ in present]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run",
        required=True,
        action="append",
        metavar="[LABEL=]PATH",
        help="A run's output folder (or its trainer_state.json); repeat to overlay runs, e.g. --run SRFT=out/srft.",
    )
    parser.add_argument(
        "--metric",
        action="append",
        metavar="KEY",
        help="Plot these logged keys (one panel each) instead of the default panels; repeatable.",
    )
    parser.add_argument("--smooth", type=int, default=1, help="Trailing moving-average window in logged points.")
    parser.add_argument("--title", help="Figure title.")
    parser.add_argument("--output-dir", required=True)


def run(args: argparse.Namespace) -> int:
    runs: dict[str, Series] = {}
    for i, value in enumerate(args.run):
        folder = Path(value).parent if Path(value).is_file() else Path(value)
        label, path = parse_labelled(value, folder.name or f"run_{i}")
        if label in runs:
            raise ValueError(f"--run label {label!r} is used twice; give each run a unique LABEL=.")
        runs[label] = load_run(path)
    panels = [(key, [key]) for key in args.metric] if args.metric else DEFAULT_PANELS
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    drawn = plot_dynamics(runs, panels, out / "dynamics.png", out / "dynamics.csv", args.smooth, args.title)
    print(f"Wrote {out / 'dynamics.png'} ({', '.join(drawn)}) and {out / 'dynamics.csv'}.")
    return 0
