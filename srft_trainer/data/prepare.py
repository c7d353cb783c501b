# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""Loading a source data set, converting it to the SRFT layout with counted skips, and writing it out."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, Features, List, Value, load_dataset, load_from_disk

from ..prompts import SYSTEM_PROMPT
from .chat_template import generation_prompt_opens_think
from .layouts import CONVERTER_DROPS, CONVERTERS, DEMO_DROPS, FILTERED, MALFORMED, REQUIRED_COLUMNS


logger = logging.getLogger(__name__)

LOADERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}
STRIP_THINK = ("auto", "always", "never")
DEMO_FORMATS = ("text", "messages")
_MESSAGES = List({"role": Value("string"), "content": Value("string")})
_FEATURES = Features(
    {
        "prompt": _MESSAGES,
        "demos": List(Value("string")),
        "solution": Value("string"),
        "_skip": Value("string"),
        "_other_system": Value("bool"),
        "_stripped": Value("int64"),
        **{f"_drop_{reason}": Value("int64") for reason in (*CONVERTER_DROPS, "too_long", "over_max_demos")},
        "_row": Value("int64"),
        "_n_demos": Value("int64"),
    }
)


@dataclass
class PrepareSummary:
    """
    What [`prepare_dataset`] kept, skipped and dropped, and why; `format()` renders it for the console.

    Args:
        layout (`str`): the source layout.
        rows_in (`int`) / rows_out (`int`): rows read / rows written.
        rows_skipped (`Counter`): skipped rows per reason (`layouts.MALFORMED` or `layouts.FILTERED`).
        skipped_examples (`dict[str, list[int]]`): up to five source row indices per reason.
        demos_out (`int`): demonstrations written.
        demos_dropped (`Counter`): demonstrations left out per reason (`layouts.DEMO_DROPS`).
        demos_stripped (`int`): candidate demonstrations of kept rows whose leading `"<think>\\n"` was removed.
        strip_think (`bool`): whether the `<think>\\n` stripping was on.
        prompts_with_other_system (`int`): kept rows whose source system message differed from the one written.
    """

    layout: str
    rows_in: int = 0
    rows_out: int = 0
    rows_skipped: Counter = field(default_factory=Counter)
    skipped_examples: dict[str, list[int]] = field(default_factory=dict)
    demos_out: int = 0
    demos_dropped: Counter = field(default_factory=Counter)
    demos_stripped: int = 0
    strip_think: bool = False
    prompts_with_other_system: int = 0

    def format(self) -> str:
        lines = [f"{self.layout}: {self.rows_in} rows in, {self.rows_out} kept, {self.demos_out} demonstrations"]
        for reason, count in sorted(self.rows_skipped.items()):
            why = MALFORMED.get(reason) or FILTERED[reason]
            rows = ", ".join(map(str, self.skipped_examples.get(reason, [])))
            lines.append(f"  skipped {count} rows [{reason}]: {why} (e.g. rows {rows})")
        for reason, count in sorted(self.demos_dropped.items()):
            lines.append(f"  dropped {count} demonstrations [{reason}]: {DEMO_DROPS[reason]}")
        if self.strip_think:
            lines.append(
                f"  stripped a leading '<think>\\n' from {self.demos_stripped} candidate demonstrations of kept rows "
                "(the chat template's generation prompt ends with it)"
            )
        if self.prompts_with_other_system:
            lines.append(f"  replaced a different system prompt in {self.prompts_with_other_system} rows")
        return "\n".join(lines)


def json_error(path: Path) -> str | None:
    """Where a `.json`/`.jsonl` file stops being valid JSON ("line 3: Expecting ',' delimiter ..."), if it does."""
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        json.loads(text)  # a .json file holding one document (a list of rows)
        return None
    except json.JSONDecodeError as whole:
        if path.suffix == ".json" and text.lstrip().startswith("["):
            return f"line {whole.lineno}, column {whole.colno}: {whole.msg}"
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except json.JSONDecodeError as err:
            return f"line {number}, column {err.colno}: {err.msg}"
    return None


def load_source(source: str, split: str = "train", name: str | None = None) -> Dataset:
    """
    Loads a source data set from a Hub id, a local `.json`/`.jsonl`/`.parquet` file, or a local directory (a
    `save_to_disk` folder or data files that `datasets.load_dataset` recognises).

    Args:
        source (`str`): the Hub id or the local path.
        split (`str`, *optional*, defaults to `"train"`): the split to read (Hub ids and directories).
        name (`str`, *optional*): the Hub configuration (e.g. `"default"` for OpenR1-Math-220k).

    Returns:
        [`~datasets.Dataset`]: the rows.
    """
    path = Path(source)
    if path.is_file() and path.suffix not in LOADERS:
        raise ValueError(f"Cannot read {source}: use a .json, .jsonl or .parquet file, or a directory.")
    try:
        if path.is_file():
            return load_dataset(LOADERS[path.suffix], data_files=str(path), split="train")
        if path.is_dir():
            if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
                loaded = load_from_disk(str(path))
                return loaded[split] if isinstance(loaded, DatasetDict) else loaded
            return load_dataset(str(path), split=split)
    except Exception as err:  # pyarrow/datasets errors: say which file, the line when it is JSON, the usual cause
        if path.is_file() and path.suffix in (".json", ".jsonl"):
            where = json_error(path)
            if where:
                hint = "one JSON object per line" if path.suffix == ".jsonl" else "one JSON document"
                raise ValueError(f"Cannot read {source}: {where}. Fix the file there ({hint}).") from None
        raise ValueError(
            f"Cannot read {source}: {type(err).__name__}: {err}. A column must hold the same type in every row "
            "(e.g. message `content` always a string): fix the file or convert it to parquet with a fixed schema."
        ) from err
    if path.suffix in LOADERS or source.startswith((".", "/")):
        raise FileNotFoundError(f"No such file or directory: {source}")
    return load_dataset(source, name, split=split)


def _convert(row: dict[str, Any], index: int, layout: str, system_prompt: str | None, strip: bool) -> dict:
    record = CONVERTERS[layout](row, system_prompt, strip)
    record.update(_row=index, _drop_too_long=0, _drop_over_max_demos=0, _n_demos=0)
    return record


def _limit_demos(batch: dict[str, list], tokenizer: Any, max_demo_tokens: int | None, max_demos: int) -> dict:
    """Drops demonstrations over the token cap, then keeps the first `max_demos` (both counted per row)."""
    demos = batch["demos"]
    if max_demo_tokens is not None:
        flat = [demo for row in demos for demo in row]
        # +1: the end-of-sequence token that closes the completion, so a kept demo fits max_completion_length.
        lengths = iter(len(ids) + 1 for ids in tokenizer(flat, add_special_tokens=False)["input_ids"]) if flat else []
        fits = [[next(lengths) <= max_demo_tokens for _ in row] for row in demos]
        batch["_drop_too_long"] = [fit.count(False) for fit in fits]
        demos = [[d for d, ok in zip(row, fit, strict=True) if ok] for row, fit in zip(demos, fits, strict=True)]
        batch["_skip"] = [
            "all_demos_too_long" if not skip and not row else skip
            for skip, row in zip(batch["_skip"], demos, strict=True)
        ]
    batch["_drop_over_max_demos"] = [max(len(row) - max_demos, 0) for row in demos]
    batch["demos"] = [row[:max_demos] for row in demos]
    batch["_n_demos"] = [len(row) for row in batch["demos"]]
    return batch


def _summarize(converted: Dataset, layout: str, strip: bool) -> PrepareSummary:
    summary = PrepareSummary(layout=layout, rows_in=len(converted), strip_think=strip)
    for index, reason in zip(converted["_row"], converted["_skip"], strict=True):
        if reason:
            summary.rows_skipped[reason] += 1
            examples = summary.skipped_examples.setdefault(reason, [])
            if len(examples) < 5:
                examples.append(index)
    for reason in DEMO_DROPS:
        if count := sum(converted[f"_drop_{reason}"]):
            summary.demos_dropped[reason] = count
    summary.rows_out = summary.rows_in - sum(summary.rows_skipped.values())
    # Only the small bookkeeping columns are read here: the demonstrations themselves can be gigabytes.
    kept = [not skip for skip in converted["_skip"]]
    summary.demos_out = sum(n for n, k in zip(converted["_n_demos"], kept, strict=True) if k)
    summary.demos_stripped = sum(n for n, k in zip(converted["_stripped"], kept, strict=True) if k)
    summary.prompts_with_other_system = sum(o for o, k in zip(converted["_other_system"], kept, strict=True) if k)
    return summary


def prepare_dataset(
    dataset: Dataset,
    layout: str,
    *,
    max_demos: int = 1,
    max_demo_tokens: int | None = None,
    tokenizer: Any = None,
    system_prompt: str | None = SYSTEM_PROMPT,
    strip_think: str = "auto",
    demo_column: str = "completion",
    demo_format: str = "text",
    num_proc: int | None = None,
    on_error: str = "skip",
) -> tuple[Dataset, PrepareSummary]:
    """
    Converts a data set in a source layout to the SRFT layout: `prompt` (chat messages), the demonstration column and
    `solution` (the ground truth read by the accuracy reward).

    Args:
        dataset ([`~datasets.Dataset`]):
            The source rows.
        layout (`str`):
            `"luffy"` (verl layout of `Elliott/Openr1-Math-46k-8192`) or `"openr1"` (`open-r1/OpenR1-Math-220k`).
        max_demos (`int`, *optional*, defaults to `1`):
            Demonstrations kept per problem. `1` writes one demonstration per row; more writes a list per row.
        max_demo_tokens (`int`, *optional*):
            Drop demonstrations longer than this many tokens (including the closing EOS token); needs `tokenizer`.
            The paper uses 8192.
        tokenizer ([`~transformers.PreTrainedTokenizerBase`], *optional*):
            The policy's tokenizer, for the length cap and the `<think>\\n` convention.
        system_prompt (`str` or `None`, *optional*, defaults to [`~srft_trainer.prompts.SYSTEM_PROMPT`]):
            System message of every prompt; `None` leaves it out.
        strip_think (`str`, *optional*, defaults to `"auto"`):
            `"auto"` strips a leading `"<think>\\n"` from demonstrations when the tokenizer's generation prompt ends
            with it (no stripping without a tokenizer); `"always"` / `"never"` force it.
        demo_column (`str`, *optional*, defaults to `"completion"`):
            Name of the demonstration column (`SRFTConfig.demo_column`).
        demo_format (`str`, *optional*, defaults to `"text"`):
            `"text"`: each demonstration is a string; `"messages"`: a list with one assistant message (the
            conversational prompt-completion format that TRL's `SFTTrainer` expects).
        num_proc (`int`, *optional*):
            Processes for `datasets.map`/`filter`.
        on_error (`str`, *optional*, defaults to `"skip"`):
            `"skip"` counts and logs malformed rows and leaves them out; `"raise"` raises on them instead.

    Returns:
        `tuple[Dataset, PrepareSummary]`: the converted rows and the counts of what was kept, skipped and dropped.
    """
    if layout not in CONVERTERS:
        raise ValueError(f"Unknown layout {layout!r}: choose from {', '.join(CONVERTERS)}.")
    missing = [column for column in REQUIRED_COLUMNS[layout] if column not in dataset.column_names]
    if missing:
        raise ValueError(
            f"The {layout!r} layout needs the column(s) {missing}; the data set has {dataset.column_names}. "
            f"Check `--layout` (choose from {', '.join(CONVERTERS)})."
        )
    if demo_column in ("prompt", "solution"):
        raise ValueError(f"`demo_column` must not be 'prompt' or 'solution', got {demo_column!r}.")
    if max_demos < 1:
        raise ValueError(f"`max_demos` must be >= 1, got {max_demos}.")
    if max_demo_tokens is not None and (tokenizer is None or max_demo_tokens < 1):
        raise ValueError("`max_demo_tokens` needs a tokenizer (`--tokenizer`) and a positive value.")
    if strip_think not in STRIP_THINK or demo_format not in DEMO_FORMATS or on_error not in ("skip", "raise"):
        raise ValueError(
            f"Expected strip_think in {STRIP_THINK}, demo_format in {DEMO_FORMATS}, on_error in ('skip', 'raise'); "
            f"got {strip_think!r}, {demo_format!r}, {on_error!r}."
        )
    if strip_think == "auto":
        strip = tokenizer is not None and generation_prompt_opens_think(tokenizer)
    else:
        strip = strip_think == "always"

    # No cache reuse: a cached result would survive a change of this package's converters.
    converted = dataset.map(
        _convert,
        with_indices=True,
        fn_kwargs={"layout": layout, "system_prompt": system_prompt, "strip": strip},
        remove_columns=dataset.column_names,
        features=_FEATURES,
        num_proc=num_proc,
        load_from_cache_file=False,
        desc=f"Converting the {layout} layout",
    )
    converted = converted.map(
        _limit_demos,
        batched=True,
        fn_kwargs={"tokenizer": tokenizer, "max_demo_tokens": max_demo_tokens, "max_demos": max_demos},
        features=_FEATURES,
        num_proc=num_proc,
        load_from_cache_file=False,
        desc="Limiting demonstrations",
    )
    summary = _summarize(converted, layout, strip)
    malformed = {reason: count for reason, count in summary.rows_skipped.items() if reason in MALFORMED}
    if malformed and on_error == "raise":
        raise ValueError(
            f"Malformed rows in the {layout!r} data (on_error='skip', i.e. no --strict, leaves them out):\n"
            + "\n".join(
                f"  {count} rows [{r}] (e.g. rows {summary.skipped_examples[r]}): {MALFORMED[r]}"
                for r, count in malformed.items()
            )
        )
    logger.info("Prepared data: %s", summary.format())

    def finalize(row: dict[str, Any]) -> dict[str, Any]:
        demos = row["demos"]
        if demo_format == "messages":
            demos = [[{"role": "assistant", "content": demo}] for demo in demos]
        return {demo_column: demos[0] if max_demos == 1 else demos}

    demo_feature = _MESSAGES if demo_format == "messages" else Value("string")
    features = Features(
        {
            "prompt": _MESSAGES,
            demo_column: demo_feature if max_demos == 1 else List(demo_feature),
            "solution": Value("string"),
        }
    )
    kept = converted.filter(
        lambda skip: not skip,
        input_columns="_skip",
        num_proc=num_proc,
        load_from_cache_file=False,
        desc="Skipping rows",
    )
    internal = [c for c in _FEATURES if c.startswith("_") or c == "demos"]
    kept = kept.map(
        finalize,
        remove_columns=internal,
        features=features,
        num_proc=num_proc,
        load_from_cache_file=False,
        desc="Writing the demonstrations",
    )
    if len(kept) == 0:  # `map` adds no column to an empty data set: build the empty result with its schema
        kept = Dataset.from_dict({name: [] for name in features}, features=features)
    return kept.select_columns(list(features)), summary


def check_output_path(output: str) -> Path:
    """The output path, checked before any work is done: it must end in `.parquet`, `.jsonl` or `.json`."""
    path = Path(output)
    if path.suffix not in LOADERS:
        raise ValueError(f"Cannot write {output}: the output must end in .parquet, .jsonl or .json.")
    return path


def save_dataset(dataset: Dataset, output: str) -> None:
    """Writes the prepared rows to a `.parquet` or `.jsonl`/`.json` (one JSON object per line) file."""
    path = check_output_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        dataset.to_parquet(str(path))
    else:
        dataset.to_json(str(path), lines=True, force_ascii=False)
