# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
`srft analyze trajectory`: checkpoints as points in probability space, seen from reference models (paper Fig. 3,
Appendix E).

Each reference model `R` generates a fixed set of responses `D_R` (one per prompt, or read from a file). The distance
of a model `M` to `R` is the token-pooled mean absolute difference of the probabilities the two models give to the
tokens of `R`'s own responses:

    d_R(M) = Σ_{(x, y) ∈ D_R} Σ_t |p_M(y_t | x, y_<t) − p_R(y_t | x, y_<t)|  /  Σ_{(x, y) ∈ D_R} |y|

so `d_R(R) = 0`, `0 ≤ d_R(M) ≤ 1`, and `(d_R1(M), ..., d_Rk(M))` is the model's position (Eq. A11).
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib


matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from . import scoring  # noqa: E402


METRIC = "d_R(M) = sum over R's responses and their tokens of |p_M(y_t|x,y_<t) - p_R(y_t|x,y_<t)| / number of tokens"


def distance(p_model: Sequence[torch.Tensor], p_reference: Sequence[torch.Tensor]) -> float:
    """Token-pooled mean of `|p_model − p_reference|` over responses (lists of per-token probabilities)."""
    total = sum(float((m - r).abs().sum()) for m, r in zip(p_model, p_reference, strict=True))
    return total / sum(len(r) for r in p_reference)


def expand_checkpoints(spec: str) -> list[str]:
    """
    `PATH[,PATH...]` to model folders, in order; a folder without `config.json` stands for its `checkpoint-<step>`
    sub-folders in step order, followed by the folder's own final model if it has one.
    """
    paths: list[str] = []
    for item in filter(None, spec.split(",")):
        root = Path(item)
        checkpoints = (
            sorted(
                (p for p in root.glob("checkpoint-*") if scoring.checkpoint_step(str(p)) is not None),
                key=lambda p: scoring.checkpoint_step(str(p)),
            )
            if root.is_dir()
            else []
        )
        if checkpoints:
            paths += [str(p) for p in checkpoints]
        if (root / "config.json").is_file() or not root.exists():  # a model folder, or a Hub id
            paths.append(item)
        elif not checkpoints:
            raise ValueError(
                f"--run {item}: neither a model folder (config.json) nor a folder of checkpoint-* folders."
            )
    return paths


def plot_trajectory(result: dict, path: Path) -> None:
    """3 references: a 3-D plot; 2: a 2-D plot. Runs are lines from their first to last checkpoint."""
    refs = list(result["references"])
    three_d = len(refs) == 3
    fig = plt.figure(figsize=(6.4, 5.4) if three_d else (6.0, 5.0), dpi=110)
    ax = fig.add_subplot(projection="3d") if three_d else fig.add_subplot()
    for label, points in result["runs"].items():
        coords = np.array([[p["distances"][r] for r in refs] for p in points])
        line = ax.plot(*coords.T, marker="o", markersize=3, label=label)[0]
        ax.scatter(*coords[-1:].T, color=line.get_color(), marker="D", s=30)
        ax.text(*coords[-1], f" {label}", color=line.get_color(), fontsize=8)
    for label, ref in result["references"].items():
        xyz = [ref["coordinates"][r] for r in refs]
        ax.scatter(*[[c] for c in xyz], marker="*", s=140, color="black")
        ax.text(*xyz, f" {label}", fontsize=9, fontweight="bold")
    labels = [f"d to {r}" for r in refs]
    axes = [ax.xaxis, ax.yaxis] + ([ax.zaxis] if three_d else [])
    for axis, text in zip(axes, labels):
        axis.set_major_locator(MaxNLocator(4))
        axis.set_label_text(text, fontsize=8)
        axis.set_tick_params(labelsize=7)
    if not three_d:
        ax.grid(alpha=0.3)
        ax.margins(0.12)
    ax.set_title("Learning trajectory in probability space (★: references, ◆: last checkpoint)", fontsize=9)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reference", required=True, action="append", metavar="LABEL=PATH", help="2 or 3 reference models."
    )
    parser.add_argument(
        "--run",
        required=True,
        action="append",
        metavar="LABEL=PATH[,PATH...]",
        help="A series of checkpoints (folders of checkpoint-* expand in step order); repeat to compare runs.",
    )
    parser.add_argument("--tokenizer", help="Tokenizer folder or Hub id (default: the first reference's).")
    parser.add_argument("--data", help="Prompts for the references to answer (.jsonl/.json/.parquet/.csv or Hub id).")
    parser.add_argument("--split", default="train", help="Split, when --data is a Hub data set.")
    parser.add_argument("--prompt-column", default="prompt", help="A string or a list of chat messages.")
    parser.add_argument(
        "--reference-responses",
        action="append",
        default=[],
        metavar="LABEL=FILE",
        help="Use these responses (prompt/response columns, e.g. a previous run's responses_<LABEL>.jsonl) instead "
        "of generating them with reference LABEL.",
    )
    parser.add_argument("--num-prompts", type=int, default=64, help="Prompts taken from --data (the first N).")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=1.0, help="Sampling temperature (0: greedy).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--logit-chunk", type=int, default=1024)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--output-dir", required=True)


def run(args: argparse.Namespace) -> int:
    references = dict(scoring.parse_labelled(v, "") for v in args.reference)
    if "" in references or len(references) != len(args.reference):
        raise ValueError("--reference must be LABEL=PATH with a unique LABEL for each reference.")
    if len(references) not in (2, 3):
        raise ValueError(f"Give 2 or 3 --reference models (2-D or 3-D plot), not {len(references)}.")
    runs = {}
    for value in args.run:
        label, spec = scoring.parse_labelled(value, "")
        if not label or label in runs:
            raise ValueError(f"--run {value}: use LABEL=PATH[,PATH...] with a unique LABEL.")
        runs[label] = expand_checkpoints(spec)
    given = dict(scoring.parse_labelled(v, "") for v in args.reference_responses)
    unknown = set(given) - set(references)
    if unknown:
        raise ValueError(f"--reference-responses for unknown reference(s) {sorted(unknown)}.")
    if set(references) - set(given) and not args.data:
        raise ValueError(
            "--data (prompts) is needed to generate the responses of references without --reference-responses."
        )

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = scoring.resolve_device(args.device)
    tokenizers = {label: scoring.load_tokenizer(path) for label, path in references.items()}
    tokenizer = scoring.load_tokenizer(args.tokenizer) if args.tokenizer else None
    tokenizer = tokenizer or next((t for t in tokenizers.values() if t is not None), None)
    if tokenizer is None:
        raise ValueError("None of the --reference folders has tokenizer files: pass --tokenizer.")
    for label, other in tokenizers.items():
        if other is not None:
            scoring.check_same_vocab(tokenizer, other, f"--reference {label}")

    # The fixed response sets, one per reference, written out so that later runs can reuse them.
    examples = {}
    for label, path in references.items():
        if label in given:
            rows = scoring.load_rows(given[label])
            prompts = [r["prompt"] for r in rows]
            responses = [scoring.response_text(r["response"], "response") for r in rows]
        else:
            prompts = [r[args.prompt_column] for r in scoring.load_rows(args.data, args.split, args.num_prompts)]
            model = scoring.load_model(path, device, args.dtype)
            responses = scoring.generate_responses(
                model, tokenizer, prompts, args.max_new_tokens, args.temperature, args.batch_size, args.seed
            )
            del model
            scoring.release_memory()
        scoring.write_jsonl(
            out / f"responses_{label}.jsonl", [{"prompt": p, "response": r} for p, r in zip(prompts, responses)]
        )
        examples[label] = scoring.encode(tokenizer, prompts, responses)

    # Each distinct model is loaded once and scores every reference's responses.
    probs: dict[str, dict[str, list[torch.Tensor]]] = {}
    for path in dict.fromkeys([*references.values(), *(p for ps in runs.values() for p in ps)]):
        model = scoring.load_model(path, device, args.dtype)
        probs[path] = {
            ref: [lp.double().exp() for lp in scoring.response_logprobs(model, ex, args.batch_size, args.logit_chunk)]
            for ref, ex in examples.items()
        }
        del model
        scoring.release_memory()
        print(f"scored {path}")

    def position(path: str) -> dict[str, float]:
        return {ref: distance(probs[path][ref], probs[references[ref]][ref]) for ref in references}

    result = {
        "metric": METRIC,
        "references": {
            label: {
                "path": path,
                "n_responses": len(examples[label]),
                "n_tokens": sum(len(e.response_ids) for e in examples[label]),
                "coordinates": position(path),
            }
            for label, path in references.items()
        },
        "runs": {
            label: [{"path": p, "step": scoring.checkpoint_step(p), "distances": position(p)} for p in paths]
            for label, paths in runs.items()
        },
    }
    (out / "trajectory.json").write_text(json.dumps(result, indent=2) + "\n")
    with open(out / "trajectory.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["kind", "label", "index", "step", "path", *(f"d_{r}" for r in references)])
        for label, ref in result["references"].items():
            writer.writerow(["reference", label, "", "", ref["path"], *ref["coordinates"].values()])
        for label, points in result["runs"].items():
            for i, p in enumerate(points):
                writer.writerow(["checkpoint", label, i, p["step"], p["path"], *p["distances"].values()])
    plot_trajectory(result, out / "trajectory.png")
    print(json.dumps(result, indent=2))
    return 0
