# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
The paper's Table 2/3 in miniature, on the offline toy world: every method from the same base model with the same
budget (optimizer steps x 64 sequences per step, the toy recipes' learning rate and schedule), several seeds.

    python benchmarks/paper_table.py                        # 9 rows x 3 seeds x 40 steps: ~30 min on 2 CPU cores
    python benchmarks/paper_table.py --ci                   # base, grpo, srft; 1 seed, 2 steps (what CI runs)
    python benchmarks/paper_table.py --rows srft,grpo --seeds 0 --steps 100

Rows are the toy recipes (`recipes/toy/*.yaml`) plus the overrides in `ROWS`, trained through `srft train`'s own
plumbing (`srft_trainer.train`). Held-out accuracy is greedy, on the first `--heldout-size` held-out problems, scored
every `--eval-every` steps for the curves and at the end for the table. SFT -> GRPO spends half the steps on each.
Writes `paper_table.md`, `paper_table.png` (accuracy and entropy curves, mean over seeds) and `paper_table.json`
(every run's curve) into `--output-dir`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from transformers import TrainerCallback


RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "toy"
# row -> list of (recipe, overrides) stages; the paper's row names. Weights as in recipes/qwen2.5-math-7b/.
ROWS: dict[str, tuple[str, list[tuple[str, dict]]]] = {
    "base": ("Base model", []),
    "sft": ("SFT", [("sft", {})]),
    "grpo": ("RL (GRPO)", [("grpo", {})]),
    "sft_grpo": ("SFT → RL", [("sft", {}), ("grpo", {})]),
    "luffy": ("LUFFY-style (demos in group, no SFT, no w_RL)",
              [("srft", {"sft_coef": 0.0, "rl_pos_coef": 1.0, "rl_entropy_weighting": False})]),
    "sft_rl_const": ("SFT + RL, constant weights",
                     [("srft", {"sft_coef": 1.0, "sft_entropy_weighting": False, "rl_pos_coef": 1.0,
                                "rl_entropy_weighting": False})]),
    "srft": ("SRFT", [("srft", {})]),
    "srft_no_wsft": ("SRFT w/o w_SFT", [("srft", {"sft_coef": 1.0, "sft_entropy_weighting": False})]),
    "srft_no_wrl": ("SRFT w/o w_RL", [("srft", {"rl_pos_coef": 1.0, "rl_entropy_weighting": False})]),
}  # fmt: skip


class HeldoutCurve(TrainerCallback):
    """Scores greedy held-out accuracy every `every` steps (and at the end) into `points` as (step, accuracy)."""

    def __init__(self, trainer, heldout, every: int, offset: int, points: list):
        self.trainer, self.heldout, self.every, self.offset, self.points = trainer, heldout, every, offset, points

    def _score(self, step: int) -> None:
        from srft_trainer.toy import heldout_accuracy

        model = self.trainer.accelerator.unwrap_model(self.trainer.model)
        self.points.append((self.offset + step, heldout_accuracy(model, self.trainer.processing_class, self.heldout)))

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every == 0 and state.global_step < state.max_steps:
            self._score(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        self._score(state.global_step)


def train_stage(recipe: str, overrides: dict, model: str | None, out: Path, a, seed: int, steps: int, offset: int,
                heldout, points: list) -> tuple[Path, float | None]:  # fmt: skip
    """Trains one stage through `srft train`'s plumbing; returns its output folder and final logged entropy."""
    from srft_trainer.train import apply_toy_world, build_trainer, load_split, parse_args

    argv = ["--config", str(RECIPES / f"{recipe}.yaml"), "--toy_world", str(a.output_dir / "toy-world"),
            "--output_dir", str(out), "--max_steps", str(steps), "--seed", str(seed), "--logging_steps", "1",
            "--disable_tqdm", "true"]  # fmt: skip
    if model:
        argv += ["--model_name_or_path", model]
    for key, value in overrides.items():
        argv += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    script_args, training_args, model_args = parse_args(argv)
    apply_toy_world(script_args, model_args)
    train = load_split(script_args.dataset_name, script_args.dataset_train_split)
    trainer = build_trainer(script_args, training_args, model_args, train, None)
    trainer.add_callback(HeldoutCurve(trainer, heldout, a.eval_every, offset, points))
    trainer.train()
    trainer.save_model(str(out))
    entropies = [log["entropy"] for log in trainer.state.log_history if "entropy" in log]
    return out, (entropies[-1] if entropies else None)


def run_row(row: str, seed: int, a, heldout) -> dict:
    from srft_trainer.toy import heldout_accuracy

    stages = ROWS[row][1]
    points: list[tuple[int, float]] = []
    start, model, entropy = time.perf_counter(), None, None
    if not stages:
        base = str(build_world(a).model_dir)
        points.append((0, heldout_accuracy(base, None, heldout)))
        return {"row": row, "seed": seed, "curve": points, "final": points[-1][1], "entropy": None, "seconds": 0.0}
    steps = [a.steps // len(stages)] * len(stages)
    steps[-1] += a.steps - sum(steps)
    offset = 0
    for i, ((recipe, overrides), n) in enumerate(zip(stages, steps)):
        out = a.output_dir / "runs" / f"{row}-seed{seed}-stage{i}"
        out, entropy = train_stage(recipe, overrides, model, out, a, seed, n, offset, heldout, points)
        model, offset = str(out), offset + n
    return {"row": row, "seed": seed, "curve": points, "final": points[-1][1], "entropy": entropy,
            "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip


def build_world(a):
    from srft_trainer.toy import build_toy_world

    return build_toy_world(a.output_dir / "toy-world")


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {std:.1f}"


def table(results: list[dict], rows: list[str]) -> str:
    srft = [r["final"] for r in results if r["row"] == "srft"]
    target = 0.5 * statistics.mean(srft) if srft else None
    lines = ["| method | held-out accuracy (%) | final entropy | steps to 50% of SRFT's final accuracy | seeds |",
             "|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        runs = [r for r in results if r["row"] == row]
        acc = mean_std([100 * r["final"] for r in runs])
        ent = [r["entropy"] for r in runs if r["entropy"] is not None]
        ent_s = f"{statistics.mean(ent):.3f}" if ent else "–"
        reached = []
        for r in runs:
            hit = [step for step, acc_ in r["curve"] if target is not None and acc_ >= target]
            reached.append(str(hit[0]) if hit else "not reached")
        lines.append(f"| {ROWS[row][0]} | {acc} | {ent_s} | {', '.join(reached) if target else '–'} | {len(runs)} |")
    return "\n".join(lines)


def plot(results: list[dict], rows: list[str], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_ent) = plt.subplots(1, 2, figsize=(12, 4.5))
    for row in rows:
        runs = [r for r in results if r["row"] == row]
        steps = sorted({s for r in runs for s, _ in r["curve"]})
        mean = [statistics.mean(acc for r in runs for s, acc in r["curve"] if s == step) for step in steps]
        ax_acc.plot(steps, [100 * m for m in mean], marker="o", label=ROWS[row][0])
        ent = [r["entropy"] for r in runs if r["entropy"] is not None]
        if ent:
            ax_ent.bar(ROWS[row][0], statistics.mean(ent))
    ax_acc.set(xlabel="optimizer step", ylabel="held-out accuracy (%)", title="Held-out accuracy (mean over seeds)")
    ax_acc.legend(fontsize=7)
    ax_ent.set(ylabel="entropy (nats)", title="Final policy entropy (mean over seeds)")
    ax_ent.tick_params(axis="x", labelrotation=60, labelsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, from: {', '.join(ROWS)}")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--heldout-size", type=int, default=200)
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--output-dir", type=Path, default=Path("outputs/paper_table"))
    p.add_argument("--ci", action="store_true", help="base, grpo, srft; one seed; 2 steps; 8 held-out problems")
    a = p.parse_args(argv)
    if a.ci:
        a.rows, a.seeds, a.steps, a.heldout_size, a.eval_every = "base,grpo,srft", "0", 2, 8, 1
    rows = [r.strip() for r in a.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        p.error(f"unknown row(s) {unknown} in --rows; choose from: {', '.join(ROWS)}")
    seeds = [int(s) for s in a.seeds.split(",")]
    a.output_dir.mkdir(parents=True, exist_ok=True)
    heldout = build_world(a).load_heldout().select(range(a.heldout_size))
    results, start = [], time.perf_counter()
    for row in rows:
        for seed in seeds if ROWS[row][1] else seeds[:1]:  # greedy scoring of the base is the same for every seed
            results.append(run_row(row, seed, a, heldout))
            print(f"{row} seed {seed}: {100 * results[-1]['final']:.1f}% ({results[-1]['seconds']} s)", flush=True)
    md = table(results, rows)
    header = (f"{a.steps} optimizer steps x 64 sequences per trained row, seeds {a.seeds}, greedy held-out accuracy "
              f"on {a.heldout_size} problems; {time.perf_counter() - start:.0f} s in all\n\n")  # fmt: skip
    (a.output_dir / "paper_table.md").write_text(header + md + "\n")
    (a.output_dir / "paper_table.json").write_text(json.dumps(results, indent=2))
    plot(results, rows, a.output_dir / "paper_table.png")
    print(header + md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
