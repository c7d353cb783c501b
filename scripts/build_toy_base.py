# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
Makes the toy base model shipped in `srft_trainer/toy/base_model/` (and records how, in `build_info.json`).

    python scripts/build_toy_base.py                      # rewrite the shipped model (default settings)
    python scripts/build_toy_base.py --output-dir /tmp/b  # build elsewhere, e.g. to check it reproduces

It pretrains the default `ToyModelSettings` with TRL's `SFTTrainer` on the toy world's `pretrain` split (disjoint from
the train and held-out splits), then measures the held-out accuracy greedily and sampled at temperature 1.0.
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

from srft_trainer.toy import ToyWorldSettings, build_char_tokenizer, evaluate_heldout, make_splits, pretrain_base
from srft_trainer.toy.world import SHIPPED_BASE_DIR, SHIPPED_BASE_INFO


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", type=Path, default=SHIPPED_BASE_DIR, help="where to write the model folder")
    args = parser.parse_args(argv)

    settings = ToyWorldSettings()
    splits = make_splits(
        seed=settings.seed,
        train_per_level=settings.train_per_level,
        heldout_per_level=settings.heldout_per_level,
        pretrain_per_level=settings.model.pretrain_per_level,
        system_prompt=settings.system_prompt,
    )
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        pretrain_base(scratch, build_char_tokenizer(), splits["pretrain"], settings.model, settings.seed)
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
            "versions": {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "trl": trl.__version__,
                "python": platform.python_version(),
                "torch_threads": torch.get_num_threads(),
            },
        }
        (Path(scratch) / SHIPPED_BASE_INFO).write_text(json.dumps(info, indent=2) + "\n")
        args.output_dir.mkdir(parents=True, exist_ok=True)
        for path in Path(scratch).iterdir():
            shutil.copy2(path, args.output_dir / path.name)
    print(json.dumps({k: v for k, v in info.items() if k != "settings"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
