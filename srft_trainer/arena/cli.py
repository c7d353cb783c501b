# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
`srft arena`: the fair comparison on your own model and data. One protocol for every method: each row's learning rate
chosen on validation from one grid with the tuning seed, reported on test over the test seeds, at an equal budget
(docs/arena.md). Every run is an `srft train` command line (printed before it runs).

    srft arena --config recipes/custom/arena.yaml               # run locally, one run after another (resumable)
    srft arena --config recipes/custom/arena.yaml --smoke       # the whole protocol at its smallest, to check it
    srft arena --config recipes/custom/arena.yaml --emit slurm  # job arrays for a cluster (no scheduler of ours)
    srft arena --config recipes/custom/arena.yaml --collect     # the report from the finished run folders
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .config import ArenaConfig, ArenaError, load_arena, make_splits
from .plan import PHASES, ArenaNotReady, Job, Plan
from .report import (
    chosen_rates,
    legend,
    mean_std,
    rate,
    separation,
    steps_to,
    targets,
    tuning_table,
    values,
)
from .rows import LABELS, ROWS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="srft arena",
        description="Compare SFT, GRPO, SFT -> RL and SRFT on your own model and data, every method tuned by one "
        "protocol: learning rate chosen on validation, reported on test (docs/arena.md).",
    )
    parser.add_argument("--config", required=True, help="the arena file (see recipes/custom/arena.yaml)")
    parser.add_argument("--smoke", action="store_true", help="2 grid points, 1 test seed, 2 steps, 8 problems")
    parser.add_argument("--emit", choices=["slurm"], help="write job-array scripts instead of running")
    parser.add_argument("--collect", action="store_true", help="only build the report from finished runs")
    parser.add_argument("--dry-run", action="store_true", help="print the runs that would run, run nothing")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)  # one array task of --emit slurm
    parser.add_argument("--index", type=int, help=argparse.SUPPRESS)
    return parser


def prepare(args: argparse.Namespace) -> tuple[ArenaConfig, Plan]:
    """The checked arena file, its split files, and every row's recipe checked as `srft check` checks it."""
    config = load_arena(args.config, smoke=args.smoke)
    from .config import recipe_values

    world = None
    if config.toy_task is not None:  # toy-world recipes: the arena builds its own world (its base ships: seconds)
        from ..toy import build_toy_world

        world = build_toy_world(config.output_dir / "toy-world", task=config.toy_task)
        train_file = str(world.train_file)
    else:
        train_file = recipe_values(config.recipe).get("dataset_name")
        if not train_file or not Path(str(train_file)).is_file():
            raise ArenaError(f"{config.recipe}: `dataset_name` must be a local file for an arena, got {train_file!r}")
    plan = Plan(config, make_splits(config, str(train_file), world), world)
    if not plan.base_model:
        raise ArenaError(f"{config.recipe}: `model_name_or_path` is required")
    check_rows(plan)
    return config, plan


def check_rows(plan: Plan) -> None:
    """Each row's stage recipe with the arena's arguments must pass `srft check` (before any run)."""
    from ..check import check_recipe

    for row in plan.config.trained_rows:
        for stage in range(len(ROWS[row].stages)):
            out = plan.config.output_dir / "runs" / "check"
            argv = plan.train_argv(row, stage, plan.config.grid[0], 0, out, 2, None, plan.splits["validation"])
            report = check_recipe(argv[1], overrides=argv[2:])
            if not report.ok:
                problems = "; ".join(f"[{name}] {message}" for name, message in report.problems)
                raise ArenaError(f"row `{row}` stage {stage} ({argv[1]}): srft check rejects it: {problems}")


def run_job(plan: Plan, job: Job) -> None:
    """Runs one job unless it is finished; its output goes to `<folder>.log`."""
    if job.done():
        print(f"done already: {job.out}", flush=True)
        return
    command = plan.command(job)
    print(f"$ {shlex.join(command)}", flush=True)
    job.out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(job.out.with_name(job.out.name + ".log"), "w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"{job.phase} run failed (exit {done.returncode}): see {job.out}.log")
    print(f"  finished in {time.perf_counter() - start:.0f} s", flush=True)


def run_local(plan: Plan) -> None:
    """Every phase in order, one run after another; finished runs are skipped, so a killed arena continues."""
    for phase in PHASES:
        for task in plan.jobs(phase):
            for job in task:
                run_job(plan, job)


def run_task(plan: Plan, phase: str, index: int) -> None:
    """One array task of `--emit slurm`: the phase's `index`-th entry (its choices read from the finished runs)."""
    tasks = plan.jobs(phase)
    if not 0 <= index < len(tasks):
        raise ArenaError(f"--phase {phase} has {len(tasks)} tasks; --index {index} is out of range")
    for job in tasks[index]:
        run_job(plan, job)


def phase_sizes(config: ArenaConfig, plan: Plan) -> dict[str, int]:
    """How many array tasks each phase has (known from the arena file alone, before any choice is made)."""
    return {
        "base": 2 + len(config.ood),
        "tune0": len(config.trained_rows) * len(config.grid),
        "tune1": len(config.two_stage_rows) * len(config.grid),
        "test": len(config.trained_rows) * len(config.test_seeds),
    }


def emit_slurm(config: ArenaConfig, plan: Plan, args: argparse.Namespace) -> Path:
    """`arena/slurm/<phase>.sbatch` job arrays and `submit.sh`, which chains them with `afterok` dependencies."""
    folder = config.output_dir / "slurm"
    folder.mkdir(parents=True, exist_ok=True)
    arena = shlex.quote(str(Path(args.config).resolve()))
    smoke = " --smoke" if args.smoke else ""
    lines = ["#!/bin/bash", "# Submit the arena's job arrays in order (each phase after the previous one succeeded).",
             "set -euo pipefail", f"cd {shlex.quote(str(Path.cwd()))}", "previous="]  # fmt: skip
    for phase, size in phase_sizes(config, plan).items():
        if size == 0:
            continue
        script = folder / f"{phase}.sbatch"
        script.write_text(
            "\n".join([
                "#!/bin/bash",
                f"#SBATCH --job-name=arena-{phase}",
                f"#SBATCH --array=0-{size - 1}",
                f"#SBATCH --output={folder}/{phase}-%a.out",
                "# Add your partition, GPUs, time limit and environment activation here.",
                f"srft arena --config {arena}{smoke} --phase {phase} --index $SLURM_ARRAY_TASK_ID",
                "",
            ])
        )  # fmt: skip
        dependency = "${previous:+--dependency=afterok:$previous}"
        lines.append(f"previous=$(sbatch --parsable {dependency} {shlex.quote(str(script))})")
    collect = folder / "collect.sbatch"
    collect.write_text(
        f"#!/bin/bash\n#SBATCH --job-name=arena-collect\nsrft arena --config {arena}{smoke} --collect\n"
    )
    lines += [f"sbatch --dependency=afterok:$previous {shlex.quote(str(collect))}", ""]
    submit = folder / "submit.sh"
    submit.write_text("\n".join(lines))
    submit.chmod(0o755)
    return submit


# --------------------------------------------------------------------------------------------------------- report
def write_report(config: ArenaConfig, plan: Plan, argv: list[str]) -> str:
    """`arena.md` (printed), `arena.json` (every run) and `arena.png`, from the finished runs."""
    results = plan.results()
    base, tuning, chosen, runs = results["base"], results["tuning"], results["chosen"], results["runs"]
    rows = [row for row in config.rows if row == "base" or row in chosen]
    missing = [row for row in config.trained_rows if row not in chosen]
    regime = regime_facts(base, tuning)
    lines = [
        f"Arena `{config.path}` on `{config.recipe}` (model `{plan.base_model}`): {config.steps} optimizer steps x "
        f"{config.sequences} sequences per row (SFT -> RL: half each); learning rates from "
        f"{', '.join(map(rate, config.grid))}, chosen per row and stage on validation with seed "
        f"{config.tuning_seed}; test seeds {', '.join(map(str, config.test_seeds))}; greedy accuracy on up to "
        f"{config.max_problems} problems per split, scored with {plan.backend}"
        + (f", test also every {config.eval_every} steps." if config.eval_every else "."),
        f"`srft arena {' '.join(argv)}`",
        "",
        "Regime (what this result speaks for): " + regime,
        "",
        results_table(runs, rows, base, chosen),
    ]
    if missing:
        lines += ["", f"Not finished (no test result yet): {', '.join(LABELS[r] for r in missing)}."]
    edges = [LABELS[row] for row, choice in chosen.items() if any(choice["edge"])]
    if edges:
        lines += ["", f"Chosen at an edge of the grid: {', '.join(edges)}. Widen `grid` for every row and run the "
                  "arena again (finished runs are kept)."]  # fmt: skip
    sep = separation(runs, rows, base, LABELS)
    if sep and "srft" in chosen:
        lines += ["", "Difference from SRFT on test, and whether it exceeds two standard deviations:", "", sep]
    if tuning:
        val = base.get("validation_accuracy")
        lines += ["", f"Validation accuracy (%) over the grid, seed {config.tuning_seed} (chosen rate in bold"
                  + ("" if val is None else f"; base {100 * val:.1f}%") + "):", "",
                  tuning_table(tuning, config.grid, LABELS, chosen)]  # fmt: skip
    lines += ["", "Rows:", "", legend(rows, config.recipe_for, lambda row: ROWS[row].stages, LABELS)]
    text = "\n".join(lines) + "\n"
    config.output_dir.mkdir(parents=True, exist_ok=True)
    (config.output_dir / "arena.md").write_text(text)
    payload = {"arena": str(config.path), "recipe": str(config.recipe), "model": plan.base_model,
               "grid": config.grid, "tuning_seed": config.tuning_seed, "test_seeds": config.test_seeds,
               "steps": config.steps, "sequences": config.sequences, "scoring": plan.backend,
               "eval_every": config.eval_every,
               "splits": {k: str(v) for k, v in plan.splits.items()}, "regime": regime, **results}  # fmt: skip
    (config.output_dir / "arena.json").write_text(json.dumps(payload, indent=2))
    plot(config, results, rows, config.output_dir / "arena.png")
    return text


def results_table(runs: list[dict], rows: list[str], base: dict, chosen: dict) -> str:
    """
    One line per row: chosen rate(s), validation accuracy there, test accuracy (and OOD) over the test seeds, training
    entropy, and the optimizer steps each row's test curve took to reach two targets set by SRFT's final accuracy.
    """
    with_ood = base.get("final_ood_accuracy") is not None
    half, half_gain = targets(runs, base) if base.get("accuracy") is not None else (None, None)
    pct = lambda x: "–" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    lines = [
        "| method | learning rate (chosen on validation) | validation accuracy (%) | test accuracy (%) |"
        + (" OOD accuracy (%) |" if with_ood else "")
        + f" training entropy | steps to 50% of SRFT's accuracy ({pct(half)}) | steps to half of SRFT's gain "
        f"({pct(half_gain)}) | test runs |",
        "|---|---|---|---|" + ("---|" if with_ood else "") + "---|---|---|---|",
    ]
    for row in rows:
        mine = [base] if row == "base" else [r for r in runs if r["row"] == row]
        if row == "base":
            val = base.get("validation_accuracy")
        else:  # at the chosen rate of the last stage
            val = ((chosen.get(row) or {}).get("validation_accuracy") or [None])[-1]
        val = "–" if val is None else f"{100 * val:.1f}"
        test = mean_std(values(mine, "final_accuracy", 100))
        ood = f" {mean_std(values(mine, 'final_ood_accuracy', 100))} |" if with_ood else ""
        entropy = mean_std(values(mine, "final_train_entropy"), 3)
        reach = "| – | – |" if row == "base" else f"| {steps_to(mine, half)} | {steps_to(mine, half_gain)} |"
        lines.append(
            f"| {LABELS[row]} | {chosen_rates(chosen.get(row))} | {val} | {test} |{ood} {entropy} {reach} "
            f"{0 if row == 'base' else len(mine)} |"
        )
    return "\n".join(lines)


def regime_facts(base: dict, tuning: list[dict]) -> str:
    """SFT vs base and GRPO vs base on validation (best grid point), and the base's entropy on its own samples."""

    def best(recipe):  # the best validation accuracy of any first stage of that kind (SFT -> RL's SFT stage too)
        scores = [t["validation_accuracy"] for t in tuning if t["recipe"] == recipe and t["stage"] == 0]
        return max(scores) if scores else None

    val = base.get("validation_accuracy")
    facts = []
    for recipe, name in (("sft", "SFT"), ("grpo", "GRPO")):
        if best(recipe) is not None and val is not None:
            facts.append(f"{name} {100 * val:.1f}% -> {100 * best(recipe):.1f}% on validation (best rate)")
    first = [t for t in tuning if (t["recipe"], t["stage"]) == ("grpo", 0)]  # from the base model, not from SFT
    entropies = [t["first_entropy"] for t in first if t.get("first_entropy") is not None]
    if entropies:
        facts.append(f"base entropy on its own samples {statistics.mean(entropies):.3f} nats (GRPO's first step)")
    return "; ".join(facts) + "." if facts else "not measured (no SFT or GRPO row finished)."


def plot(config: ArenaConfig, results: dict, rows: list[str], png: Path) -> None:
    """Test accuracy per row (mean and std over seeds) and validation accuracy over the grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    means, stds = [], []
    for row in rows:
        scores = ([results["base"]["accuracy"]] if row == "base" else
                  [r["final_accuracy"] for r in results["runs"] if r["row"] == row])  # fmt: skip
        scores = [100 * s for s in scores if s is not None]
        means.append(statistics.mean(scores) if scores else 0.0)
        stds.append(statistics.stdev(scores) if len(scores) > 1 else 0.0)
    left.bar(range(len(rows)), means, yerr=stds, capsize=4)
    left.set_xticks(range(len(rows)), [LABELS[r] for r in rows], rotation=30, ha="right")
    left.set_ylabel("test accuracy (%)")
    left.set_title(f"test seeds {', '.join(map(str, config.test_seeds))}")
    for row in config.trained_rows:
        for stage in range(len(ROWS[row].stages)):
            points = sorted((t["learning_rate"], 100 * t["validation_accuracy"]) for t in results["tuning"]
                            if (t["row"], t["stage"]) == (row, stage))  # fmt: skip
            if points:
                name = LABELS[row] + (f" (stage {stage + 1})" if len(ROWS[row].stages) > 1 else "")
                right.plot(*zip(*points), marker="o", label=name)
    right.set_xscale("log")
    right.set_xlabel("learning rate")
    right.set_ylabel("validation accuracy (%)")
    right.set_title(f"tuning, seed {config.tuning_seed}")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        config, plan = prepare(args)
        if args.emit:
            submit = emit_slurm(config, plan, args)
            print(f"wrote {submit.parent}/*.sbatch; submit with: bash {submit}")
            return 0
        if args.phase is not None:
            run_task(plan, args.phase, args.index if args.index is not None else -1)
            return 0
        if args.dry_run:
            for phase in PHASES:
                for task in _known_tasks(plan, phase):
                    for job in task:
                        print(("done  " if job.done() else "todo  ") + shlex.join(plan.command(job)))
            return 0
        if not args.collect:
            run_local(plan)
    except (ArenaError, ArenaNotReady, RuntimeError) as err:
        print(f"srft arena: {err}", file=sys.stderr)
        return 2
    print(write_report(config, plan, argv), flush=True)
    return 0


def _known_tasks(plan: Plan, phase: str) -> list[list[Job]]:
    try:
        return plan.jobs(phase)
    except ArenaNotReady as err:  # a later phase waits for choices: say so in a dry run
        print(f"later   {phase}: {err}")
        return []
