# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
The paper's Tables 2 and 3 in miniature, on the offline toy world: every method trained from the same base model with
the same budget (`--steps` optimizer steps x 64 sequences per step, the toy recipes' lr 2e-4 with a cosine schedule
and 5 warmup steps), over several seeds, and scored on the same held-out problems.

    python benchmarks/paper_table.py             # 9 rows, 3 seeds, 60 steps: about 45 min on 2 CPU cores
    python benchmarks/paper_table.py --task expressions   # 10 rows, 3 seeds, 50 steps, ID and OOD: 53 min
    python benchmarks/paper_table.py --ci        # base, grpo, srft; 1 seed, 2 steps, 8 problems (what CI runs)
    python benchmarks/paper_table.py --rows srft,grpo --seeds 0 --steps 100

Tasks (`--task`): `arithmetic`, the toy world of the README's quick start (recipes/toy/*.yaml), and `expressions`
(recipes/toy/expressions/*.yaml): sums of products with several correct derivations, demonstrations in another style
than the base's with a fraction of them wrong, and an out-of-distribution held-out split with more terms than
training shows, scored at the end of every run (`--ood-size` problems). Its default rows add SRFT with the imperfect
demonstrations filtered out (`min_demo_reward: 1.0`), and the report says which rows differ from SRFT by more than
two standard deviations.

Default budget (`DEFAULT_STEPS`): 60 steps per trained row on `arithmetic`, 50 on `expressions` (9 trained rows and an
OOD scoring per run), chosen so that the default rows x 3 seeds fit ~45 minutes on 2 CPU cores (an RL step of 64
sequences takes ~1.5-2 s there, an SFT step ~0.4 s, a 100-problem greedy scoring a few seconds). The expressions
table took 53 min: policies pulled into the demonstrations' style ramble to the length limit, which slows their
steps and scoring.

Rows (`ROWS`) are the toy recipes (`recipes/toy/{sft,grpo,srft}.yaml`) plus the same key overrides as the paper-scale
recipes in `recipes/qwen2.5-math-7b/`, trained through `srft train`'s own plumbing (`srft_trainer.train.parse_args`,
`apply_toy_world`, `load_split`, `build_trainer`). SFT -> RL spends half of the steps on SFT and the rest on GRPO from
the SFT model (each stage with the recipe's own warmup and cosine schedule). The base model is scored once: greedy
decoding makes its score the same for every seed, and it is step 0 of every trained row's curve.

Measured for each run, every `--eval-every` steps and at the end, on the first `--heldout-size` held-out problems:
- held-out accuracy: greedy decoding, graded by the training reward (`srft_trainer.toy.evaluate_heldout`);
- held-out entropy: the policy's mean token entropy (nats) along its own greedy completions of those problems, the
  same measurement for every row;
- training entropy: the `entropy` each trainer logs (TRL's GRPOTrainer: rollout tokens; SRFTTrainer: rollout and
  demonstration tokens; SFTTrainer: demonstration tokens), so it compares loosely across trainers; the table gives the
  mean over the last 5 logged steps.

Writes into `--output-dir`: `paper_table.md` (also printed), `paper_table.png` (accuracy, training entropy and
held-out entropy curves, mean over seeds per row) and `paper_table.json` (every run's curves and logged metrics).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import PrinterCallback, TrainerCallback


RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "toy"
RECIPE_DIRS = {"arithmetic": RECIPES, "expressions": RECIPES / "expressions"}
OOD_MAX_NEW_TOKENS = 256  # a 6-term solution in the demonstrations' style is up to 189 characters
FINAL_ENTROPY_STEPS = 5  # the table's training entropy: mean over this many last logged steps (one step is noisy)
LOGGED_KEYS = ("loss", "entropy", "reward", "frac_reward_zero_std", "srft/w_sft", "srft/w_rl", "mean_token_accuracy")


@dataclass(frozen=True)
class Row:
    """
    One method of the table.

    Args:
        label (`str`): The method's name in the table (the paper's row name).
        stages (`tuple`): `(toy recipe, key overrides)` pairs trained one after another; empty for the base model.
    """

    label: str
    stages: tuple[tuple[str, dict[str, Any]], ...]


# Overrides as in recipes/qwen2.5-math-7b/{luffy,srft_no_wsft,srft_no_wrl}.yaml. "SFT + RL, constant weights" is the
# paper's single-stage L_SFT + L_RL (Sec. 3.2.2): SRFT with both entropy weights set to 1 (both ablations at once).
ROWS: dict[str, Row] = {
    "base": Row("Base model", ()),
    "sft": Row("SFT", (("sft", {}),)),
    "grpo": Row("RL (GRPO)", (("grpo", {}),)),
    "sft_grpo": Row("SFT → RL (GRPO)", (("sft", {}), ("grpo", {}))),
    "luffy": Row("LUFFY-style", (("srft", {"sft_coef": 0.0, "rl_pos_coef": 1.0, "rl_entropy_weighting": False}),)),
    "sft_rl_const": Row(
        "SFT + RL, constant weights",
        (
            (
                "srft",
                {"sft_coef": 1.0, "sft_entropy_weighting": False, "rl_pos_coef": 1.0, "rl_entropy_weighting": False},
            ),
        ),
    ),
    "srft": Row("SRFT", (("srft", {}),)),
    "srft_no_wsft": Row("SRFT w/o w_SFT", (("srft", {"sft_coef": 1.0, "sft_entropy_weighting": False}),)),
    "srft_no_wrl": Row("SRFT w/o w_RL", (("srft", {"rl_pos_coef": 1.0, "rl_entropy_weighting": False}),)),
    # Demonstrations the reward scores below 1 (the imperfect ones) give their slot back to a rollout.
    "srft_filtered": Row("SRFT, imperfect demos filtered", (("srft", {"min_demo_reward": 1.0}),)),
}
PAPER_ROWS = [row for row in ROWS if row != "srft_filtered"]
DEFAULT_ROWS = {"arithmetic": PAPER_ROWS, "expressions": list(ROWS)}
DEFAULT_STEPS = {"arithmetic": 60, "expressions": 50}


# ------------------------------------------------------------------------------------------------------- scoring
def score(model, tokenizer, heldout) -> tuple[float, float]:
    """Greedy held-out accuracy (a fraction) and the entropy along those greedy completions."""
    from srft_trainer.toy.evaluation import completion_entropy, evaluate_heldout

    result = evaluate_heldout(model, tokenizer, heldout)
    return result.accuracy, completion_entropy(model, tokenizer, heldout["prompt"], result.completions)


class HeldoutCurve(TrainerCallback):
    """Scores the trainer's model every `every` steps and at the end, into `points` as {step, accuracy, entropy}."""

    def __init__(self, trainer, heldout, every: int, offset: int, points: list[dict]):
        self.trainer, self.heldout, self.every, self.offset, self.points = trainer, heldout, every, offset, points

    def _score(self, step: int) -> None:
        model = self.trainer.accelerator.unwrap_model(self.trainer.model)
        accuracy, entropy = score(model, self.trainer.processing_class, self.heldout)
        self.points.append({"step": self.offset + step, "accuracy": accuracy, "entropy": entropy})

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every == 0 and state.global_step < state.max_steps:
            self._score(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        self._score(state.global_step)


# ------------------------------------------------------------------------------------------------------ training
def stage_argv(
    recipe: str, overrides: dict, model: str | None, out: Path, world: Path, seed: int, steps: int, task="arithmetic"
):
    """The `srft train` command line of one stage (recipe, budget, seed and the row's overrides)."""
    argv = ["--config", str(RECIPE_DIRS[task] / f"{recipe}.yaml"), "--toy_world", str(world), "--output_dir", str(out),
            "--max_steps", str(steps), "--seed", str(seed), "--logging_steps", "1",
            "--disable_tqdm", "true"]  # fmt: skip
    if model:
        argv += ["--model_name_or_path", model]
    for key, value in overrides.items():
        argv += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return argv


def train_stage(argv: list[str], heldout, every: int, offset: int, points: list[dict], logs: list[dict]):
    """
    Trains one stage through `srft train`'s plumbing, scoring it on the way; adds its logged metrics to `logs` and
    returns the trainer.
    """
    from srft_trainer.train import apply_toy_world, build_trainer, load_split, parse_args

    script_args, training_args, model_args = parse_args(argv)
    apply_toy_world(script_args, model_args)
    train = load_split(script_args.dataset_name, script_args.dataset_train_split)
    trainer = build_trainer(script_args, training_args, model_args, train, None)
    trainer.remove_callback(PrinterCallback)  # one line per run instead of a metrics dict per step
    trainer.add_callback(HeldoutCurve(trainer, heldout, every, offset, points))
    trainer.train()
    trainer.save_model(training_args.output_dir)  # the next stage of SFT -> RL starts from it
    for log in trainer.state.log_history:
        if "entropy" in log:
            logs.append({"step": offset + log["step"], **{k: float(log[k]) for k in LOGGED_KEYS if k in log}})
    return trainer


def stage_steps(total: int, stages: int) -> list[int]:
    """Splits the step budget over the stages (the last stage takes the remainder)."""
    steps = [total // stages] * stages
    steps[-1] += total - sum(steps)
    return steps


def run_row(row: str, seed: int, a: argparse.Namespace, heldout, base: dict, ood=None) -> dict:
    """Trains one row with one seed; its curve starts at the base model's score (step 0)."""
    from srft_trainer.toy import heldout_accuracy

    start, model, offset = time.perf_counter(), None, 0
    points: list[dict] = [{"step": 0, "accuracy": base["accuracy"], "entropy": base["entropy"]}]
    logs: list[dict] = []
    argvs = []
    for i, ((recipe, overrides), steps) in enumerate(
        zip(ROWS[row].stages, stage_steps(a.steps, len(ROWS[row].stages)))
    ):
        out = a.output_dir / "runs" / f"{row}-seed{seed}-stage{i}"
        argv = stage_argv(recipe, overrides, model, out, a.output_dir / "toy-world", seed, steps, a.task)
        trainer = train_stage(argv, heldout, a.eval_every, offset, points, logs)
        argvs.append(argv)
        model, offset = str(out), offset + steps
    ood_accuracy = None
    if ood is not None:  # the final model only: more terms than any training problem
        final = trainer.accelerator.unwrap_model(trainer.model)
        ood_accuracy = heldout_accuracy(final, trainer.processing_class, ood, max_new_tokens=OOD_MAX_NEW_TOKENS)
    entropies = [log["entropy"] for log in logs]
    return {
        "row": row,
        "seed": seed,
        "curve": points,
        "logs": logs,
        "final_accuracy": points[-1]["accuracy"],
        "final_ood_accuracy": ood_accuracy,
        "final_heldout_entropy": points[-1]["entropy"],
        "final_train_entropy": statistics.mean(entropies[-FINAL_ENTROPY_STEPS:]) if entropies else None,
        "seconds": round(time.perf_counter() - start, 1),
        "argv": argvs,
    }


# ------------------------------------------------------------------------------------------------------- report
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


def table(results: list[dict], rows: list[str], base: dict) -> str:
    """The Markdown table: one line per row, mean ± std over its runs (OOD column when the task has one)."""
    half, half_gain = targets(results, base)
    pct = lambda x: "–" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    with_ood = base.get("final_ood_accuracy") is not None
    ood_head, ood_rule = (" OOD accuracy (%) |", "---|") if with_ood else ("", "")
    lines = [
        f"| method | held-out accuracy (%) |{ood_head} training entropy | held-out entropy | steps to 50% of SRFT's "
        f"accuracy ({pct(half)}) | steps to half of SRFT's gain ({pct(half_gain)}) | runs |",
        f"|---|---|{ood_rule}---|---|---|---|---|",
    ]
    for row in rows:
        runs = runs_of(row, results, base)
        ood = f" {mean_std(values(runs, 'final_ood_accuracy', 100))} |" if with_ood else ""
        lines.append(
            f"| {ROWS[row].label} | {mean_std(values(runs, 'final_accuracy', 100))} |{ood} "
            f"{mean_std(values(runs, 'final_train_entropy'), 3)} "
            f"| {mean_std(values(runs, 'final_heldout_entropy'), 3)} | {steps_to(runs, half)} "
            f"| {steps_to(runs, half_gain)} | {len(runs)} |"
        )
    return "\n".join(lines)


def separation(results: list[dict], rows: list[str], base: dict, reference: str = "srft") -> str:
    """
    Whether each row's mean differs from the reference row's by more than two standard deviations (the larger of the
    two rows' std over seeds), in-distribution and, when scored, out-of-distribution.
    """
    keys = [("final_accuracy", "held-out")]
    if base.get("final_ood_accuracy") is not None:
        keys.append(("final_ood_accuracy", "OOD"))
    ref = runs_of(reference, results, base)
    if not ref:
        return ""
    head = " | ".join(f"{name}: Δ vs {ROWS[reference].label} (points), 2 std, separated?" for _, name in keys)
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
        lines.append(f"| {ROWS[row].label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def legend(rows: list[str], task: str = "arithmetic") -> str:
    """What each row trains: recipes, overrides and step split."""
    lines = []
    for row in rows:
        stages = ROWS[row].stages
        if not stages:
            lines.append(f"- {ROWS[row].label}: the toy base model, untrained (scored once: greedy decoding).")
            continue
        parts = []
        for recipe, overrides in stages:
            keys = ", ".join(f"`{k}: {str(v).lower() if isinstance(v, bool) else v}`" for k, v in overrides.items())
            folder = RECIPE_DIRS[task].relative_to(RECIPES.parents[1])
            parts.append(f"`{folder}/{recipe}.yaml`" + (f" with {keys}" if keys else ""))
        split = " then ".join(parts) + (" (half of the steps each)" if len(stages) > 1 else "")
        lines.append(f"- {ROWS[row].label}: {split}.")
    return "\n".join(lines)


def mean_curve(runs: list[dict], series: str, key: str) -> tuple[list[int], list[float]]:
    """Mean over runs of `key` at each step of `series` (steps that every run has)."""
    steps = sorted(set.intersection(*({p["step"] for p in r[series] if key in p} for r in runs)))
    values = [statistics.mean(next(p[key] for p in r[series] if p["step"] == s) for r in runs) for s in steps]
    return steps, values


def plot(results: list[dict], rows: list[str], base: dict, png: Path, task: str = "arithmetic") -> None:
    """Accuracy, training entropy and held-out entropy against optimizer steps, mean over seeds per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_train, ax_held) = plt.subplots(1, 3, figsize=(17, 5))
    colors = plt.get_cmap("tab10")
    for i, row in enumerate(rows):
        color, label = colors(i % 10), ROWS[row].label
        if row == "base":
            ax_acc.axhline(100 * base["accuracy"], color=color, linestyle="--", label=label)
            ax_held.axhline(base["entropy"], color=color, linestyle="--", label=label)
            continue
        runs = [r for r in results if r["row"] == row]
        steps, acc = mean_curve(runs, "curve", "accuracy")
        ax_acc.plot(steps, [100 * v for v in acc], marker="o", markersize=3, color=color, label=label)
        steps, ent = mean_curve(runs, "curve", "entropy")
        ax_held.plot(steps, ent, marker="o", markersize=3, color=color, label=label)
        steps, ent = mean_curve(runs, "logs", "entropy")
        ax_train.plot(steps, ent, color=color, label=label, linewidth=1.2)
    ax_acc.set(xlabel="optimizer step", ylabel="held-out accuracy (%)", title="Held-out accuracy (greedy)")
    ax_train.set(xlabel="optimizer step", ylabel="nats per token", title="Training entropy (as each trainer logs it)")
    ax_held.set(xlabel="optimizer step", ylabel="nats per token", title="Held-out entropy (along greedy completions)")
    ax_acc.legend(fontsize=7)
    for ax in (ax_acc, ax_train, ax_held):
        ax.grid(alpha=0.3)
    fig.suptitle(f"Toy world ({task} task), mean over seeds", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------------- main
def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=list(RECIPE_DIRS), default="arithmetic", help="which toy world")
    p.add_argument("--rows", default=None, help=f"comma-separated, from: {', '.join(ROWS)} (default: the task's)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per trained row (64 sequences each; "
                   f"default: {', '.join(f'{t} {n}' for t, n in DEFAULT_STEPS.items())})")  # fmt: skip
    p.add_argument("--heldout-size", type=int, default=100, help="held-out problems scored (the first N)")
    p.add_argument("--ood-size", type=int, default=200, help="out-of-distribution problems scored at the end")
    p.add_argument("--eval-every", type=int, default=10, help="score the held-out problems every N steps")
    p.add_argument("--output-dir", type=Path, default=None, help="default: outputs/paper_table[-<task>]")
    p.add_argument("--ci", action="store_true", help="base, grpo, srft; seed 0; 2 steps; 8 problems, scored each step")
    a = p.parse_args(argv)
    if a.ci:
        a.rows, a.seeds, a.steps, a.heldout_size, a.eval_every, a.ood_size = "base,grpo,srft", "0", 2, 8, 1, 8
    if a.steps is None:
        a.steps = DEFAULT_STEPS[a.task]
    if a.output_dir is None:
        a.output_dir = Path("outputs/paper_table" + ("" if a.task == "arithmetic" else f"-{a.task}"))
    a.rows = DEFAULT_ROWS[a.task] if a.rows is None else [r.strip() for r in a.rows.split(",") if r.strip()]
    unknown = [r for r in a.rows if r not in ROWS]
    if unknown or not a.rows:
        p.error(f"--rows: unknown row(s) {unknown or a.rows}; choose from: {', '.join(ROWS)}")
    try:
        a.seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    except ValueError:
        p.error(f"--seeds: expected comma-separated integers such as 0,1,2, got {a.seeds!r}")
    if not a.seeds:
        p.error("--seeds: give at least one seed, e.g. --seeds 0")
    stages = max(len(ROWS[r].stages) for r in a.rows)
    if a.steps < max(stages, 1):
        p.error(f"--steps must be >= {max(stages, 1)} (every training stage needs a step), got {a.steps}")
    for flag in ("heldout_size", "eval_every", "ood_size"):
        if getattr(a, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(a, flag)}")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    from srft_trainer.toy import build_toy_world

    start = time.perf_counter()
    a.output_dir.mkdir(parents=True, exist_ok=True)
    world = build_toy_world(a.output_dir / "toy-world", task=a.task)
    heldout = world.load_heldout()
    if a.heldout_size > len(heldout):
        raise SystemExit(f"--heldout-size {a.heldout_size} is larger than the held-out split ({len(heldout)}).")
    heldout = heldout.select(range(a.heldout_size))
    ood = world.load_heldout_ood()
    if ood is not None:
        if a.ood_size > len(ood):
            raise SystemExit(f"--ood-size {a.ood_size} is larger than the out-of-distribution split ({len(ood)}).")
        ood = ood.shuffle(seed=0).select(range(a.ood_size))  # every number of terms, not only the first

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from srft_trainer.toy import heldout_accuracy

    # Greedy decoding: the base model's score is the same for every seed, so it is computed once.
    base_model, base_tokenizer = (
        cls.from_pretrained(world.model_dir) for cls in (AutoModelForCausalLM, AutoTokenizer)
    )
    accuracy, entropy = score(base_model, base_tokenizer, heldout)
    base_ood = (
        None if ood is None else heldout_accuracy(base_model, base_tokenizer, ood, max_new_tokens=OOD_MAX_NEW_TOKENS)
    )
    base = {"row": "base", "final_accuracy": accuracy, "final_heldout_entropy": entropy, "accuracy": accuracy,
            "entropy": entropy, "curve": [{"step": 0, "accuracy": accuracy, "entropy": entropy}],
            "final_ood_accuracy": base_ood}  # fmt: skip
    print(f"base: {100 * accuracy:.1f}% (scored once)", flush=True)
    results = []
    for row in (r for r in a.rows if ROWS[r].stages):
        for seed in a.seeds:
            results.append(run_row(row, seed, a, heldout, base, ood))
            r = results[-1]
            print(f"{row} seed {seed}: {100 * r['final_accuracy']:.1f}% ({r['seconds']} s)", flush=True)
    seconds = time.perf_counter() - start
    ood_note = "" if ood is None else f"; out-of-distribution accuracy on {a.ood_size} problems at the end"
    header = (
        f"Task `{a.task}`: {a.steps} optimizer steps x 64 sequences per trained row, seeds "
        f"{','.join(map(str, a.seeds))}; greedy held-out accuracy on the first {a.heldout_size} held-out problems, "
        f"scored every {a.eval_every} steps{ood_note}; {seconds / 60:.1f} min in all.\n"
        f"`python benchmarks/paper_table.py {' '.join(argv or sys.argv[1:])}`\n\n"
    )
    sep = separation(results, a.rows, base)
    sep = f"\n\nDifference from SRFT, and whether it exceeds two standard deviations:\n\n{sep}" if sep else ""
    md = header + table(results, a.rows, base) + sep + "\n\n" + legend(a.rows, a.task) + "\n"
    (a.output_dir / "paper_table.md").write_text(md)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}
    payload = {"settings": settings, "seconds": round(seconds, 1), "base": base, "runs": results}
    (a.output_dir / "paper_table.json").write_text(json.dumps(payload, indent=2))
    plot(results, a.rows, base, a.output_dir / "paper_table.png", a.task)
    print(md, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
