"""
The toy quick-start recipe trained with TRL's colocated vLLM engine against transformers' `generate`, at the same
budget and seeds, with a deliberately stale engine as a control (its weights synced once, never again).

    python benchmarks/vllm_behaviour.py                  # 40 steps, seeds 0 1 2, stale control on seed 0 (~15 min)
    python benchmarks/vllm_behaviour.py --steps 150      # the quick start's full budget

Needs vLLM (its CPU build here: README, "Generation with vLLM"). Prints, per run, the greedy held-out accuracy after
training (first `--heldout-size` problems) and the largest per-step mean difference between the engine's sampling
log-probabilities and the policy's (TRL's `sampling/sampling_logp_difference/mean`), then each backend's mean and
standard deviation over seeds. The stale control shows what the accuracy alone can and cannot tell.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "toy" / "srft.yaml"


def stale_child(argv: list[str]) -> int:
    """`srft train` with TRL's weight sync made to run once (the base weights), never again."""
    from trl.generation import vllm_generation

    original = vllm_generation.VLLMGeneration.sync_weights
    synced: list[bool] = []

    def sync_once(self):
        if not synced:
            synced.append(True)
            original(self)

    vllm_generation.VLLMGeneration.sync_weights = sync_once
    from srft_trainer.train import main

    return main(argv)


def run(kind: str, seed: int, a: argparse.Namespace) -> dict:
    out = Path(a.output_dir) / f"{kind}-{seed}"
    train = ["--config", str(RECIPE), "--toy_world", str(Path(a.output_dir) / "toy-world"), "--seed", str(seed),
             "--max_steps", str(a.steps), "--heldout_size", str(a.heldout_size), "--output_dir", str(out),
             "--plot_curves", "false"]  # fmt: skip
    if kind != "hf":
        train += ["--use_vllm", "true", "--vllm_mode", "colocate"]
    if kind == "stale":
        cmd = [sys.executable, __file__, "--stale-child", *train]
    else:
        cmd = [sys.executable, "-m", "srft_trainer.cli", "train", *train]
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{kind} seed {seed} failed:\n{result.stderr[-4000:]}")
    accuracy = json.loads((out / "heldout_accuracy.json").read_text())
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    diffs = [
        h["sampling/sampling_logp_difference/mean"] for h in history if "sampling/sampling_logp_difference/mean" in h
    ]
    return {
        "kind": kind,
        "seed": seed,
        "before": accuracy["before"],
        "after": accuracy["after"],
        "max_sampling_logp_difference": max(diffs) if diffs else None,
        "traceback": "Traceback" in result.stderr,
        "seconds": time.perf_counter() - start,
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--stale-child"]:
        return stale_child(argv[1:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--heldout-size", type=int, default=200)
    p.add_argument("--output-dir", default="outputs/vllm-behaviour")
    a = p.parse_args(argv)
    runs = []
    for seed in a.seeds:  # alternate backends, so that a slow patch of the machine hits both
        for kind in ("hf", "vllm", "stale") if seed == a.seeds[0] else ("hf", "vllm"):
            runs.append(run(kind, seed, a))
            r = runs[-1]
            accuracy = f"{100 * r['before']:.1f}% -> {100 * r['after']:.1f}%"
            diff = r["max_sampling_logp_difference"]
            print(f"{kind} seed {seed}: {accuracy}, max sampling log-prob difference {diff}, {r['seconds']:.0f} s")
    print(f"\n{a.steps} steps, held-out accuracy (greedy, first {a.heldout_size} problems)\n")
    print("| generation | seeds | after training, mean +- std | max sampling log-prob difference | wall time |")
    print("|---|---|---|---|---|")
    for kind, name in (("hf", "transformers generate"), ("vllm", "vLLM colocate"), ("stale", "stale vLLM (control)")):
        rows = [r for r in runs if r["kind"] == kind]
        after = [100 * r["after"] for r in rows]
        spread = (
            f"{statistics.mean(after):.1f} +- {statistics.stdev(after):.1f}" if len(after) > 1 else f"{after[0]:.1f}"
        )
        diffs = [r["max_sampling_logp_difference"] for r in rows if r["max_sampling_logp_difference"] is not None]
        diff = f"{max(diffs):.2g}" if diffs else "n/a (no engine)"
        seconds = statistics.mean(r["seconds"] for r in rows)
        print(f"| {name} | {', '.join(str(r['seed']) for r in rows)} | {spread} | {diff} | {seconds:.0f} s |")
    if any(r["traceback"] for r in runs):
        print("\nA run printed a traceback.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
