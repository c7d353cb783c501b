# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""`srft analyze {token-probs,dynamics,trajectory} ...`: each subcommand writes PNG plus the numbers behind it."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys


# name -> (module, help); imported only when run, so `srft analyze dynamics` does not import torch models.
SUBCOMMANDS = {
    "token-probs": ("token_probs", "Per-token probability change between a base and fine-tuned models (Fig. 2)."),
    "dynamics": ("dynamics", "Training curves (reward, length, entropy, w_sft, w_rl, demo NLL) of runs (Fig. 4, 6)."),
    "trajectory": ("trajectory", "Checkpoints' distances to 2-3 reference models, as a 2-D/3-D path (Fig. 3)."),
}


def build_parser(subcommand: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `subcommand`'s module is imported to add its arguments (all of them when `None`)."""
    parser = argparse.ArgumentParser(prog="srft analyze", description=__doc__)
    subparsers = parser.add_subparsers(dest="subcommand", required=True, metavar="{" + ",".join(SUBCOMMANDS) + "}")
    for name, (module, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if subcommand in (None, name):
            importlib.import_module(f"srft_trainer.analysis.{module}").add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    requested = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    args = build_parser(requested).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    module = importlib.import_module(f"srft_trainer.analysis.{SUBCOMMANDS[args.subcommand][0]}")
    return int(module.run(args) or 0)
