# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""`srft prepare-data`: convert a LUFFY/verl or OpenR1-Math-220k data set to the SRFT layout."""

from __future__ import annotations

import argparse
import sys

from ..prompts import SYSTEM_PROMPT
from .layouts import CONVERTERS
from .prepare import DEMO_FORMATS, STRIP_THINK, check_output_path, load_source, prepare_dataset, save_dataset


# Each layout's usual source and the file the recipes read (recipes/qwen2.5-math-7b/*.yaml: `dataset_name`), so that
# `srft prepare-data --layout luffy --tokenizer Qwen/Qwen2.5-Math-7B --max-demo-tokens 8192` makes the paper's data.
DEFAULT_IO = {
    "luffy": ("Elliott/Openr1-Math-46k-8192", "data/openr1-math-46k-8192.parquet"),
    "openr1": ("open-r1/OpenR1-Math-220k", "data/openr1-math-220k.parquet"),
}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="srft prepare-data",
        description="Convert a data set to the SRFT layout: `prompt` (chat messages with the paper's system prompt), "
        "the demonstration column and `solution` (ground truth for the accuracy reward).",
    )
    parser.add_argument("--layout", required=True, choices=list(CONVERTERS), help="Layout of the input.")
    parser.add_argument(
        "--input",
        help="Hub id, or a local .json/.jsonl/.parquet file or directory. Default: "
        + "; ".join(f"{layout}: {source}" for layout, (source, _) in DEFAULT_IO.items()),
    )
    parser.add_argument(
        "--output",
        help="Output file: .parquet, or .jsonl/.json (JSON lines). Default, the path the recipes read: "
        + "; ".join(f"{layout}: {output}" for layout, (_, output) in DEFAULT_IO.items()),
    )
    parser.add_argument("--split", default="train", help="Split to read from a Hub id or directory.")
    parser.add_argument("--config-name", default=None, help="Hub configuration of the input (e.g. 'default').")
    parser.add_argument("--max-demos", type=int, default=1, help="Demonstrations kept per problem (>1: a list).")
    parser.add_argument("--max-demo-tokens", type=int, default=None, help="Drop longer demonstrations (paper: 8192).")
    parser.add_argument("--tokenizer", default=None, help="Tokenizer (Hub id or path) for --max-demo-tokens.")
    parser.add_argument(
        "--strip-think",
        choices=STRIP_THINK,
        default="auto",
        help="Strip a leading '<think>\\n' from demonstrations: auto = when the tokenizer's generation prompt ends "
        "with it.",
    )
    parser.add_argument(
        "--system-prompt", default=SYSTEM_PROMPT, help="System message (default: the paper's); '' for none."
    )
    parser.add_argument("--demo-column", default="completion", help="Name of the demonstration column.")
    parser.add_argument(
        "--demo-format",
        choices=DEMO_FORMATS,
        default="text",
        help="text: strings; messages: [{'role': 'assistant', ...}] (TRL SFTTrainer's prompt-completion format).",
    )
    parser.add_argument("--num-proc", type=int, default=None, help="Processes for datasets map/filter.")
    parser.add_argument("--strict", action="store_true", help="Fail on malformed rows instead of counting skips.")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    source, output = DEFAULT_IO.get(args.layout, (None, None))
    args.input, args.output = args.input or source, args.output or output
    if not (args.input and args.output):
        print(f"srft prepare-data: error: --layout {args.layout} needs --input and --output", file=sys.stderr)
        return 2
    try:
        check_output_path(args.output)
        tokenizer = None
        if args.tokenizer:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
        elif args.max_demo_tokens is not None:
            raise ValueError("--max-demo-tokens needs --tokenizer (the policy's tokenizer) to count tokens.")
        dataset = load_source(args.input, split=args.split, name=args.config_name)
        prepared, summary = prepare_dataset(
            dataset,
            args.layout,
            max_demos=args.max_demos,
            max_demo_tokens=args.max_demo_tokens,
            tokenizer=tokenizer,
            system_prompt=args.system_prompt or None,
            strip_think=args.strip_think,
            demo_column=args.demo_column,
            demo_format=args.demo_format,
            num_proc=args.num_proc,
            on_error="raise" if args.strict else "skip",
        )
        save_dataset(prepared, args.output)
    except (ValueError, FileNotFoundError) as err:
        print(f"srft prepare-data: error: {err}", file=sys.stderr)
        return 2
    print(summary.format())
    print(f"wrote {len(prepared)} rows to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
