# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
Makes the toy base models shipped in `srft_trainer/toy/base_model/` (`arithmetic` task) and
`srft_trainer/toy/base_model_expressions/` (`expressions` task), and records how, in their `build_info.json`.

    python scripts/build_toy_base.py                      # rewrite the shipped arithmetic model (default settings)
    python scripts/build_toy_base.py --task expressions   # rewrite the shipped expressions model
    python scripts/build_toy_base.py --output-dir /tmp/b  # build elsewhere, e.g. to check it reproduces
    python scripts/build_toy_base.py --task expressions_terse   # check the paper-regime criteria (no pretraining)

`expressions_terse` shares the shipped `expressions` base, so for it (and for any task with `--criteria`) the script
pretrains nothing: it measures the paper-regime criteria of `srft_trainer.arena.regime` on the task's world (two short
training runs, SFT and GRPO), records them in the base's `build_info.json` under `regime` -> task, and exits 1 naming
every criterion that fails, so no arena row runs on a task outside the paper's regime.

It pretrains the task's default `ToyModelSettings` with TRL's `SFTTrainer` on the toy world's `pretrain` split
(disjoint from the train and held-out splits), then measures the held-out accuracy greedily and sampled at
temperature 1.0. For `expressions` it also scores the out-of-distribution split and measures the mean token entropy
of the model along its own sampled completions.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch
import transformers
import trl

from srft_trainer.toy import (
    OOD_MAX_NEW_TOKENS,
    ExpressionsWorldSettings,
    ToyWorldSettings,
    completion_entropy,
    evaluate_heldout,
    pretrain_base,
)
from srft_trainer.toy.world import SHIPPED_BASE_DIRS, SHIPPED_BASE_INFO, world_splits


def versions() -> dict:
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
    }


def build_expressions(output_dir: Path) -> dict:
    """Pretrains the `expressions` base into `output_dir` and returns its build record."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = ExpressionsWorldSettings()
    splits = world_splits(settings)
    start = time.perf_counter()
    pretrain_base(output_dir, settings.tokenizer(), splits["pretrain"], settings.model, settings.seed)
    seconds = time.perf_counter() - start
    model, tokenizer = AutoModelForCausalLM.from_pretrained(output_dir), AutoTokenizer.from_pretrained(output_dir)
    info = {"fingerprint": settings.fingerprint(), "settings": settings.to_dict()}
    info["pretrain_seconds"] = round(seconds, 1)
    for name, max_new_tokens in (("heldout", 160), ("heldout_ood", OOD_MAX_NEW_TOKENS)):
        data = splits[name]
        greedy = evaluate_heldout(model, tokenizer, data, temperature=0.0, max_new_tokens=max_new_tokens)
        sampled = evaluate_heldout(model, tokenizer, data, temperature=1.0, max_new_tokens=max_new_tokens, seed=0)
        info |= {
            f"{name}_accuracy_greedy": greedy.accuracy,
            f"{name}_accuracy_greedy_per_level": greedy.per_level,
            f"{name}_accuracy_sampled_t1": sampled.accuracy,
            f"{name}_accuracy_sampled_t1_per_level": sampled.per_level,
            # Teacher-forced along the model's own completions: what the entropy-aware weights see in training.
            f"{name}_entropy_sampled_t1": completion_entropy(model, tokenizer, data["prompt"], sampled.completions),
            f"{name}_entropy_greedy": completion_entropy(model, tokenizer, data["prompt"], greedy.completions),
            f"{name}_n": greedy.n,
            f"{name}_max_new_tokens": max_new_tokens,
        }
    train = splits["train"]
    info |= {
        "train_n": len(train),
        "train_imperfect_demos": len(train) - sum(train["demo_correct"]),
        "train_longest_demo_chars": max(map(len, train["completion"])),
        "pretrain_n": len(splits["pretrain"]),
        "versions": versions(),
    }
    return info


def record_criteria(task: str, base_dir: Path) -> int:
    """Measures the regime criteria of `task` and records them in `base_dir`'s build record; 1 when one fails."""
    from srft_trainer.arena.regime import failed_criteria, measure_regime
    from srft_trainer.toy import build_toy_world

    with tempfile.TemporaryDirectory() as scratch:
        world = build_toy_world(Path(scratch) / "world", task=task)
        if world.base_origin != "shipped":
            raise SystemExit(f"The {task} world did not use the shipped base in {base_dir}: rebuild that base first.")
        start = time.perf_counter()
        record = measure_regime(world)
        record["seconds"] = round(time.perf_counter() - start, 1)
        record["versions"] = versions()
    info_path = base_dir / SHIPPED_BASE_INFO
    info = json.loads(info_path.read_text())
    info.setdefault("regime", {})[task] = record
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    failed = failed_criteria(record)
    for text in failed:
        print(f"FAILED: {text}")
    print(f"{task}: {'outside' if failed else 'in'} the paper's regime; recorded in {info_path}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=sorted(SHIPPED_BASE_DIRS), default="arithmetic", help="the toy task")
    parser.add_argument("--output-dir", type=Path, help="where to write the model folder (default: the shipped one)")
    parser.add_argument("--criteria", action="store_true", help="measure and record the paper-regime criteria of "
                        "the task's shipped base instead of pretraining (implied for expressions_terse)")  # fmt: skip
    args = parser.parse_args(argv)
    output_dir = args.output_dir or SHIPPED_BASE_DIRS[args.task]
    if args.criteria or args.task == "expressions_terse":
        return record_criteria(args.task, SHIPPED_BASE_DIRS[args.task])

    if args.task == "expressions":
        with tempfile.TemporaryDirectory() as scratch:
            info = build_expressions(Path(scratch))
            (Path(scratch) / SHIPPED_BASE_INFO).write_text(json.dumps(info, indent=2) + "\n")
            output_dir.mkdir(parents=True, exist_ok=True)
            for path in Path(scratch).iterdir():
                shutil.copy2(path, output_dir / path.name)
        print(json.dumps({k: v for k, v in info.items() if k != "settings"}, indent=2))
        return 0

    settings = ToyWorldSettings()
    splits = world_splits(settings)
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        pretrain_base(scratch, settings.tokenizer(), splits["pretrain"], settings.model, settings.seed)
        seconds = time.perf_counter() - start
        greedy = evaluate_heldout(scratch, None, splits["heldout"], temperature=0.0)
        sampled = evaluate_heldout(scratch, None, splits["heldout"], temperature=1.0, seed=0)
        info = {
            "fingerprint": settings.fingerprint(),
            "settings": settings.to_dict(),
            "pretrain_seconds": round(seconds, 1),
            "heldout_accuracy_greedy": greedy.accuracy,
            "heldout_accuracy_greedy_per_level": greedy.per_level,
            "heldout_accuracy_sampled_t1": sampled.accuracy,
            "heldout_accuracy_sampled_t1_per_level": sampled.per_level,
            "heldout_n": greedy.n,
            "versions": versions(),
        }
        (Path(scratch) / SHIPPED_BASE_INFO).write_text(json.dumps(info, indent=2) + "\n")
        output_dir.mkdir(parents=True, exist_ok=True)
        for path in Path(scratch).iterdir():
            shutil.copy2(path, output_dir / path.name)
    print(json.dumps({k: v for k, v in info.items() if k != "settings"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
