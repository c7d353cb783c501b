# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""`srft eval`: evaluate a checkpoint on the paper's benchmarks with its protocol."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from ..data_checks import HUB_ID
from .benchmarks import BENCHMARKS, PAPER_BENCHMARKS, find_source, register_data_file
from .generation import SamplingSettings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="srft eval",
        description="Evaluate a checkpoint on the SRFT paper's benchmarks (temperature 0.6, avg@32 on AIME24/AMC, "
        "pass@1 elsewhere, math-verify grading, shuffled options for multiple choice).",
    )
    parser.add_argument("--model", help="Hub id or local path of the checkpoint (and its tokenizer).")
    parser.add_argument("--tokenizer", help="Hub id or local path of the tokenizer (default: the model's).")
    parser.add_argument("--output-dir", help="Where samples.jsonl, summary.json and results.md go.")
    parser.add_argument(
        "--export-benchmarks",
        metavar="DIR",
        help="Write each benchmark of --benchmarks, read from --data-dir/--benchmark-file or the Hub, to "
        "DIR/<name>.jsonl and stop; later runs read them offline with --data-dir DIR.",
    )
    parser.add_argument(
        "--benchmarks",
        help=f"Comma-separated, from: {', '.join(BENCHMARKS)} (default: the paper's eight; none with --data).",
    )
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="FILE",
        help="Your own file in the training layout (`prompt` messages, `solution`; .jsonl/.json/.parquet), scored "
        "with the `accuracy` reward's grader (or --reward/--recipe) and reported under the file's name "
        "(repeatable). Greedy unless --temperature is given; --samples k reports avg@k.",
    )
    parser.add_argument(
        "--n",
        "--samples",
        dest="n",
        type=int,
        help="Samples per problem, all benchmarks (default: 32 for AIME/AMC, 1 else).",
    )
    parser.add_argument(
        "--reward",
        action="append",
        default=[],
        metavar="NAME",
        help="Score --data files with these reward functions (registry names such as `accuracy`, or dotted import "
        "paths; repeatable) instead of the math grader: a sample is correct when its total reward is > 0, and the "
        "mean reward is reported too.",
    )
    parser.add_argument(
        "--recipe",
        help="Score --data files with this training recipe's `reward_funcs` (and `reward_weights`).",
    )
    parser.add_argument(
        "--temperature", type=float, help="0 for greedy decoding (default: 0.6; 0 when only --data is scored)."
    )
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=8192)
    parser.add_argument("--seed", type=int, default=0, help="Sampling and options-shuffling seed.")
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("SRFT_BENCHMARKS_DIR"),
        help="Directory with local benchmark files (LUFFY's math_id.parquet, arc_c.parquet, gpqa_diamond.parquet, or "
        "<benchmark>.parquet/.jsonl); benchmarks not found there load from the Hub. Default: $SRFT_BENCHMARKS_DIR.",
    )
    parser.add_argument(
        "--benchmark-file",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="Source of one benchmark: a file, a local copy of its Hub data set, or a Hub id (repeatable).",
    )
    parser.add_argument("--no-shuffle-options", action="store_true", help="Keep multiple-choice options in order.")
    parser.add_argument("--limit", type=int, help="Only the first LIMIT problems of each benchmark (smoke tests).")
    parser.add_argument(
        "--backend",
        choices=["auto", "vllm", "transformers"],
        default="auto",
        help="auto: vLLM when a GPU is visible and vLLM is installed, or when vLLM's CPU build is installed; else "
        "transformers.",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="transformers: sequences per generate call.")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--device", help="transformers: cpu, cuda, cuda:1, ... (default: cuda when available).")
    parser.add_argument(
        "--tensor-parallel-size", type=int, default=1, help="vLLM: GPUs (or CPU processes) per model replica."
    )
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="vLLM.")
    parser.add_argument("--max-model-len", type=int, help="vLLM: context length (default: the model's).")
    parser.add_argument(
        "--data-parallel-size",
        type=int,
        default=1,
        help="Number of shards; run one process per shard, then --report-only to merge.",
    )
    parser.add_argument("--data-parallel-rank", type=int, default=0, help="This process's shard.")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="Only (re)build summary.json and results.md from the JSONL in --output-dir.",
    )
    return parser


def missing_local_model(model: str) -> str | None:
    """
    Why `--model` names a local folder that is not there (`None` otherwise), so a typo is not sent to the Hub as an id:
    a path starting with `.`, `/` or `~`, more than one `/`, or an `owner/name` whose `owner` is a local folder (a
    bare name such as `gpt2` is a Hub id).
    """
    path = Path(model).expanduser()
    if path.exists():
        return None
    looks_local = (
        model.startswith((".", "/", "~")) or model.count("/") > 1 or ("/" in model and not HUB_ID.match(model))
    )
    if looks_local or (path.parent != Path(".") and path.parent.is_dir()):
        return f"--model {model!r}: no such local folder (nothing was asked of the Hub)"
    return None


def _reward_graders(args: argparse.Namespace, own: dict[str, str]) -> dict[str, tuple[list, list[float] | None]]:
    """`--reward`/`--recipe`: the reward functions (and weights) each --data file is scored with; empty: the grader."""
    names, weights = list(args.reward), None
    if args.recipe:
        import yaml

        if not Path(args.recipe).is_file():
            raise FileNotFoundError(f"--recipe {args.recipe!r}: no such recipe file")
        recipe = yaml.safe_load(Path(args.recipe).read_text()) or {}
        names = names or list(recipe.get("reward_funcs") or ["accuracy"])
        weights = recipe.get("reward_weights")
    if not names or not own:
        return {}
    from ..rewards import resolve_reward_funcs

    funcs = resolve_reward_funcs(names)
    if weights is not None and len(weights) != len(funcs):
        raise ValueError(f"the recipe has {len(weights)} reward_weights for {len(funcs)} reward_funcs")
    return {name: (funcs, weights) for name in own}


def _sources(args: argparse.Namespace, names: list[str]) -> dict[str, str | None]:
    # --data-dir serves the benchmarks it has a file for; the others come from the Hub (as --help says).
    sources: dict[str, str | None] = {}
    if args.data_dir:
        for name in names:
            found = find_source(BENCHMARKS[name], args.data_dir)
            sources[name] = str(found) if found else None
    for item in args.benchmark_file:
        name, sep, path = item.partition("=")
        if not sep or name not in BENCHMARKS:
            raise SystemExit(f"srft eval: --benchmark-file expects NAME=PATH with NAME in {', '.join(BENCHMARKS)}")
        sources[name] = path
    return sources


def _backend(args: argparse.Namespace):
    from .generation import TransformersBackend, VLLMBackend, backend_name

    if backend_name(args.backend) == "vllm":
        return VLLMBackend(
            args.model,
            tokenizer=args.tokenizer,
            tensor_parallel_size=args.tensor_parallel_size,
            gpu_memory_utilization=args.gpu_memory_utilization,
            dtype=args.dtype,
            max_model_len=args.max_model_len,
            seed=args.seed,
        )
    return TransformersBackend(
        args.model, args.tokenizer, batch_size=args.batch_size, device=args.device, dtype=args.dtype
    )


def export_benchmarks(args: argparse.Namespace) -> int:
    """`--export-benchmarks DIR`: each benchmark's rows, before de-duplication and shuffling, as DIR/<name>.jsonl."""
    from .benchmarks import get_spec, read_source

    names = [name.strip() for name in (args.benchmarks or ",".join(PAPER_BENCHMARKS)).split(",") if name.strip()]
    sources = _sources(args, names)
    os.makedirs(args.export_benchmarks, exist_ok=True)
    for name in names:
        try:
            rows = read_source(get_spec(name), sources.get(name))
        except (RuntimeError, ValueError, FileNotFoundError) as err:
            print(f"srft eval: error: {err}", file=sys.stderr)
            return 2
        path = os.path.join(args.export_benchmarks, f"{name}.jsonl")
        with open(path, "w", encoding="utf-8") as f:  # the training layout: prompt messages as they are, solution
            for prompt, gold, _ in rows:
                f.write(json.dumps({"prompt": prompt, "solution": gold}, ensure_ascii=False) + "\n")
        print(f"{name}: {len(rows)} rows -> {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .report import write_report
    from .runner import evaluate

    if args.report_only:
        print(write_report(args.output_dir)["markdown"])
        return 0
    if args.export_benchmarks:
        return export_benchmarks(args)
    if not args.output_dir:
        print("srft eval: --output-dir is required", file=sys.stderr)
        return 2
    if not args.model:
        print("srft eval: --model is required (or pass --report-only)", file=sys.stderr)
        return 2
    problem = missing_local_model(args.model)
    if problem:
        print(f"srft eval: {problem}", file=sys.stderr)
        return 2
    benchmarks = args.benchmarks if args.benchmarks is not None else "" if args.data else ",".join(PAPER_BENCHMARKS)
    names = [name.strip() for name in benchmarks.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(
            f"srft eval: unknown benchmark(s) {unknown}; choose from: {', '.join(BENCHMARKS)}, or score your own "
            "file with --data FILE",
            file=sys.stderr,
        )
        return 2
    try:
        own = {register_data_file(path): path for path in args.data}
    except FileNotFoundError as err:
        print(f"srft eval: {err}", file=sys.stderr)
        return 2
    try:
        graders = _reward_graders(args, own)
    except (ValueError, FileNotFoundError) as err:
        print(f"srft eval: {err}", file=sys.stderr)
        return 2
    if args.temperature is None:
        args.temperature = 0.0 if own and not names else 0.6
    names += list(own)
    sampling = SamplingSettings(args.temperature, args.top_p, args.max_new_tokens, args.seed)
    sources = {**_sources(args, names), **own}
    backend = _backend(args)
    settings = {
        "model": args.model,
        "tokenizer": args.tokenizer or args.model,
        "backend": backend.name,
        "benchmarks": ",".join(names),
        "temperature": args.temperature,
        "top_p": args.top_p,
        "max_new_tokens": args.max_new_tokens,
        "seed": args.seed,
        "n": args.n or "protocol (32 for AIME/AMC, 1 else)",
        "options_shuffled": not args.no_shuffle_options,
    }
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "settings.json"), "w", encoding="utf-8") as f:
        json.dump(settings, f, indent=2)
    try:
        records = evaluate(
            backend,
            names,
            args.output_dir,
            sampling,
            n=args.n,
            sources=sources,
            shuffle_options=not args.no_shuffle_options,
            limit=args.limit,
            rank=args.data_parallel_rank,
            world_size=args.data_parallel_size,
            reward_funcs=graders,
        )
    except (RuntimeError, ValueError, FileNotFoundError) as err:  # a benchmark that cannot be loaded: say which
        print(f"srft eval: error: {err}", file=sys.stderr)
        return 2
    if args.data_parallel_size > 1:
        print(
            f"wrote shard {args.data_parallel_rank} of {args.data_parallel_size}; when all shards are done run "
            f"`srft eval --report-only --output-dir {args.output_dir}`"
        )
        return 0
    print(write_report(args.output_dir, records, settings)["markdown"])
    return 0
