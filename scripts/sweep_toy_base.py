# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
Scores a range of pretraining lengths of the `expressions` toy base in one run, to choose the shipped base's settings
(issue 14: sampled T=1 in-distribution accuracy 10-30%, mean token entropy on its own samples >= 0.4 nats).

    python scripts/sweep_toy_base.py --steps 1800 --every 100 --min-step 1000 --heldout-size 300

It pretrains once with `pretrain_base(..., checkpoint_every=...)` (constant learning rate after warmup, so checkpoint
`k` is the base that `pretrain_steps=k` gives) and prints, per checkpoint, one JSON line: greedy and sampled accuracy
on the first `--heldout-size` held-out problems, and the mean token entropy along the samples.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

from transformers import AutoModelForCausalLM

from srft_trainer.toy import (
    ExpressionsWorldSettings,
    completion_entropy,
    evaluate_heldout,
    pretrain_base,
)
from srft_trainer.toy.world import world_splits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-error-rate", type=float, default=ExpressionsWorldSettings.base_error_rate)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--steps", type=int, default=1800)
    parser.add_argument("--every", type=int, default=200)
    parser.add_argument("--pretrain-per-level", type=int, default=ExpressionsWorldSettings().model.pretrain_per_level)
    parser.add_argument("--heldout-size", type=int, default=120, help="score the first N held-out problems")
    parser.add_argument("--min-step", type=int, default=0, help="score only the checkpoints from this step on")
    args = parser.parse_args(argv)

    default = ExpressionsWorldSettings()
    model = replace(
        default.model,
        pretrain_steps=args.steps,
        pretrain_learning_rate=args.learning_rate,
        pretrain_per_level=args.pretrain_per_level,
    )
    # Only the pretraining settings change: the splits' sizes stay the world's, so the pretraining data (drawn after
    # the held-out problems) is the data the shipped base is built from.
    settings = replace(default, base_error_rate=args.base_error_rate, model=model)
    splits = world_splits(settings)
    tokenizer, heldout = settings.tokenizer(), splits["heldout"].select(range(args.heldout_size))
    with tempfile.TemporaryDirectory() as scratch:
        pretrain_base(scratch, tokenizer, splits["pretrain"], model, settings.seed, checkpoint_every=args.every)
        checkpoints = Path(scratch, "checkpoints").glob("checkpoint-*")
        checkpoints = sorted(checkpoints, key=lambda p: int(p.name.split("-")[1]))
        checkpoints = [p for p in checkpoints if int(p.name.split("-")[1]) >= args.min_step]
        for checkpoint in checkpoints:
            policy = AutoModelForCausalLM.from_pretrained(checkpoint)
            sampled = evaluate_heldout(policy, tokenizer, heldout, temperature=1.0, seed=0)
            greedy = evaluate_heldout(policy, tokenizer, heldout, temperature=0.0)
            record = {
                "step": int(checkpoint.name.split("-")[1]),
                "base_error_rate": args.base_error_rate,
                "learning_rate": args.learning_rate,
                "accuracy_sampled_t1": sampled.accuracy,
                "accuracy_greedy": greedy.accuracy,
                "entropy_sampled_t1": completion_entropy(policy, tokenizer, heldout["prompt"], sampled.completions),
                "n": sampled.n,
            }
            print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
