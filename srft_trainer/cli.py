# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""The `srft` console script: `srft <command> [args...]`, each command implemented in its own module."""

from __future__ import annotations

import importlib
import sys


# name -> (module, function, one-line help). Modules are imported only when their command runs, so `srft eval`
# does not pay for the trainer's imports and vice versa. Each function takes the remaining argv list.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": ("srft_trainer.train", "main", "train with a recipe: srft train --config recipes/toy/srft.yaml"),
    "check": ("srft_trainer.check", "main", "validate a recipe offline for a launch size: batch, vLLM, model, data"),
    "prepare-data": ("srft_trainer.data.cli", "main", "convert LUFFY/OpenR1-Math data to the SRFT layout"),
    "analyze": ("srft_trainer.analysis.cli", "main", "plots of what training did: token probs, dynamics, trajectory"),
    "eval": ("srft_trainer.evaluation.cli", "main", "Evaluate a checkpoint on the paper's benchmarks"),
    "arena": ("srft_trainer.arena.cli", "main", "compare SFT, GRPO, SFT -> RL and SRFT fairly on your model and data"),
}


def version() -> str:
    """`srft-trainer X (TRL Y, transformers Z, torch W)`."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    def of(name: str) -> str:
        try:
            return installed(name)
        except PackageNotFoundError:
            return "not installed"

    return (
        f"srft-trainer {of('srft-trainer')} (TRL {of('trl')}, transformers {of('transformers')}, torch {of('torch')})"
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["--version"], ["-V"]):
        print(version())
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: srft <command> [args...]   (srft <command> --help for its options; srft --version)\n\ncommands:")
        for name, (_, _, help_text) in COMMANDS.items():
            print(f"  {name:<13} {help_text}")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"srft: unknown command {name!r}; choose from: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module, function, _ = COMMANDS[name]
    result = getattr(importlib.import_module(module), function)(rest)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
