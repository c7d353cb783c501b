# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
The paper's benchmarks: a registry (Hub ids and local file names) and loaders that turn any supported source into a
list of [`Problem`]s, de-duplicated, with multiple-choice options shuffled.

Supported sources for each benchmark:
- a local file in the LUFFY/verl layout (`data_source`, `prompt` chat messages, `reward_model.ground_truth`), e.g.
  LUFFY's `math_id.parquet`, which holds several benchmarks told apart by `data_source`;
- a local plain file (`.parquet`, `.jsonl`, `.json`) with a `problem` (or `question`) and an `answer` column, plus an
  `options` list column for multiple choice;
- the benchmark's Hub data set (or a local copy of it: a directory `datasets.load_dataset` can read);
- a file in this project's training layout (`prompt` chat messages, `solution`), such as the toy world's
  `heldout.jsonl` (benchmark `toy`: `srft eval --benchmarks toy --data-dir outputs/toy-world`); its prompts are used
  as they are.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..prompts import SYSTEM_PROMPT, make_prompt
from .choices import LETTERS, shuffle_options


logger = logging.getLogger(__name__)

# The instruction LUFFY's GPQA file puts before each question; reused for multiple-choice rows built from the Hub.
CHOICE_INSTRUCTION = (
    "Answer the following multiple choice question. The last line of your response should be of the following "
    "format: 'ANSWER: $LETTER' (without quotes) where LETTER is one of {letters}. Think step by step before "
    "answering.\n\n"
)


@dataclass
class Problem:
    """
    One evaluation problem, ready for generation and grading.

    Args:
        benchmark (`str`): Registry name, e.g. `"aime24"`.
        problem_id (`str`): Stable id within the benchmark (`"<benchmark>/<index>"`).
        prompt (`list[dict[str, str]]`): Chat messages (system prompt + user question).
        gold (`str`): Gold answer (math expression, or choice label after shuffling).
        labels (`str` or `None`): Valid choice labels for multiple choice, `None` for math.
        copies (`int`): How many identical rows the source had for this problem (LUFFY repeats AIME/AMC 32 times).
        options_error (`str` or `None`): Why the options could not be shuffled (then they are left as they are).
    """

    benchmark: str
    problem_id: str
    prompt: list[dict[str, str]]
    gold: str
    labels: str | None = None
    copies: int = 1
    options_error: str | None = None


@dataclass(frozen=True)
class BenchmarkSpec:
    """
    A registry entry.

    Args:
        name (`str`): Registry name used on the command line.
        title (`str`): Column title in the report (as in the paper's Table 2).
        kind (`str`): `"math"` (graded with math-verify) or `"choice"` (graded on the option label).
        group (`str`): `"id"` (in-distribution math) or `"ood"`, for the two averages.
        default_n (`int`): Samples per problem in the paper's protocol (32 for avg@32, 1 for pass@1).
        data_sources (`tuple[str, ...]`): `data_source` values of this benchmark in LUFFY/verl files.
        files (`tuple[str, ...]`): File names looked for in a benchmark directory, in order.
        hub_id, hub_config, hub_split: The Hub data set.
        from_hub_row: Maps a Hub row to `(question, gold, options or None)`.
    """

    name: str
    title: str
    kind: str
    group: str
    default_n: int
    data_sources: tuple[str, ...]
    files: tuple[str, ...]
    hub_id: str
    hub_config: str | None
    hub_split: str
    from_hub_row: Callable[[dict], tuple[str, str, list[str] | None]] = field(repr=False)


def _column(row: dict, names: tuple[str, ...]) -> Any:
    for name in names:
        if name in row and row[name] is not None:
            return row[name]
    raise KeyError(f"none of the columns {names} in row with columns {sorted(row)}")


def _math_row(row: dict) -> tuple[str, str, None]:
    answer = _column(row, ("answer", "final_answer", "gold", "solution"))
    if isinstance(answer, (list, tuple)):  # OlympiadBench: `final_answer` is a list of strings
        answer = ", ".join(str(a).strip().strip("$") for a in answer)
    return str(_column(row, ("problem", "question", "Question"))), str(answer), None


def _arc_row(row: dict) -> tuple[str, str, list[str]]:
    labels = list(row["choices"]["label"])
    return row["question"], LETTERS[labels.index(row["answerKey"])], list(row["choices"]["text"])


def _gpqa_row(row: dict) -> tuple[str, str, list[str]]:
    options = [row["Correct Answer"], row["Incorrect Answer 1"], row["Incorrect Answer 2"], row["Incorrect Answer 3"]]
    return row["Question"].strip(), "A", [str(o).strip() for o in options]  # shuffled afterwards like every MC set


def _mmlu_pro_row(row: dict) -> tuple[str, str, list[str]]:
    return row["question"], LETTERS[int(row["answer_index"])], list(row["options"])


def _spec(name, title, kind, group, n, sources, files, hub_id, hub_config, hub_split, adapter=_math_row):
    return BenchmarkSpec(name, title, kind, group, n, sources, files, hub_id, hub_config, hub_split, adapter)


# LUFFY's files: `math_id.parquet` (AIME24, AIME25, AMC, MATH500, Minerva, OlympiadBench), `arc_c.parquet`,
# `gpqa_diamond.parquet`; `valid.*.parquet` is the same layout under LUFFY's own file names.
_MATH_FILES = ("math_id.parquet", "valid.all.parquet")
BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        _spec("aime24", "AIME24", "math", "id", 32, ("aime", "aime24", "aime2024"), _MATH_FILES,
              "HuggingFaceH4/aime_2024", None, "train"),
        _spec("amc", "AMC", "math", "id", 32, ("amc", "amc23"), _MATH_FILES,
              "AI-MO/aimo-validation-amc", None, "train"),
        _spec("math500", "MATH500", "math", "id", 1, ("math", "math500", "math_500"), _MATH_FILES,
              "HuggingFaceH4/MATH-500", None, "test"),
        _spec("minerva", "Minerva", "math", "id", 1, ("minerva", "minerva_math"), _MATH_FILES,
              "math-ai/minervamath", None, "test"),
        _spec("olympiad", "Olympiad", "math", "id", 1, ("olympiad_bench", "olympiadbench", "olympiad"), _MATH_FILES,
              "Hothan/OlympiadBench", "OE_TO_maths_en_COMP", "train"),
        _spec("aime25", "AIME25", "math", "id", 32, ("aime25", "aime2025"), _MATH_FILES,
              "yentinglin/aime_2025", None, "train"),
        _spec("arc_c", "ARC-C", "choice", "ood", 1, ("arc_c",), ("arc_c.parquet",),
              "allenai/ai2_arc", "ARC-Challenge", "test", _arc_row),
        _spec("gpqa_diamond", "GPQA-D", "choice", "ood", 1, ("gpqa", "gpqa_diamond"), ("gpqa_diamond.parquet",),
              "Idavidrein/gpqa", "gpqa_diamond", "train", _gpqa_row),
        _spec("mmlu_pro", "MMLU-Pro", "choice", "ood", 1, ("mmlu_pro", "mmlu-pro"), ("mmlu_pro.parquet",),
              "TIGER-Lab/MMLU-Pro", None, "test", _mmlu_pro_row),
        # The offline toy world's held-out split (no Hub copy): a toy world folder or its heldout.jsonl.
        _spec("toy", "Toy", "math", "toy", 1, ("toy",), ("heldout.jsonl",), "", None, "train"),
    )
}  # fmt: skip
# The paper's eight (Table 2); AIME25 is available on request.
PAPER_BENCHMARKS = ("aime24", "amc", "math500", "minerva", "olympiad", "arc_c", "gpqa_diamond", "mmlu_pro")


def register_data_file(path: str | Path) -> str:
    """
    Registers a file in the training layout (`prompt` messages, `solution`) as a benchmark named after the file,
    graded like the math benchmarks (math-verify on the last `\\boxed{}`, the `accuracy` reward's grader); returns
    the name.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"--data {str(path)!r}: no such file (a .jsonl, .json or .parquet in the training layout)"
        )
    name = re.sub(r"[^\w.-]", "_", path.stem) or "data"
    if name in BENCHMARKS and BENCHMARKS[name].group != "own":
        name = f"{name}_data"  # never shadow a paper benchmark
    BENCHMARKS[name] = _spec(name, path.name, "math", "own", 1, (name,), (path.name,), "", None, "train")
    return name


def get_spec(name: str) -> BenchmarkSpec:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose from: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


# ---------------------------------------------------------------------------------------------------------------
# Reading sources into raw rows: (prompt messages, gold, options or None)
# ---------------------------------------------------------------------------------------------------------------


def _read_table(path: Path) -> list[dict]:
    from datasets import load_dataset

    suffix = path.suffix.lower()
    builder = {".parquet": "parquet", ".jsonl": "json", ".json": "json"}.get(suffix)
    if builder is None:
        raise ValueError(f"{path}: unsupported benchmark file type {suffix!r}; use .parquet, .jsonl or .json")
    return load_dataset(builder, data_files=str(path), split="train").to_list()


def _is_verl(rows: list[dict]) -> bool:
    return bool(rows) and "prompt" in rows[0] and "reward_model" in rows[0]


def _is_training_layout(rows: list[dict]) -> bool:
    return bool(rows) and isinstance(rows[0].get("prompt"), list) and "solution" in rows[0]


def _training_rows(rows: list[dict], path: Path) -> list[tuple[list[dict], str, None]]:
    out = []
    for i, row in enumerate(rows):
        prompt, gold = row.get("prompt"), row.get("solution")
        if not isinstance(prompt, list) or not prompt or gold is None:
            raise ValueError(f"{path}: row {i} lacks `prompt` chat messages or a `solution`.")
        out.append(([{"role": m["role"], "content": m["content"]} for m in prompt], str(gold), None))
    return out


def _select_source(rows: list[dict], spec: BenchmarkSpec, path: Path) -> list[dict]:
    """Keeps the rows whose `data_source` belongs to `spec` (a file may hold several benchmarks)."""
    if not rows or "data_source" not in rows[0]:
        return rows
    sources = Counter(str(r.get("data_source")) for r in rows)
    selected = [r for r in rows if r.get("data_source") in spec.data_sources]
    if selected:
        return selected
    if len(sources) == 1:  # a single-benchmark file under another name: the caller chose it for this benchmark
        return rows
    raise ValueError(
        f"{path}: no rows with data_source in {spec.data_sources} for benchmark {spec.name!r}; "
        f"the file has {dict(sources)}."
    )


def _verl_rows(rows: list[dict], spec: BenchmarkSpec, path: Path) -> list[tuple[list[dict], str, None]]:
    out = []
    for i, row in enumerate(_select_source(rows, spec, path)):
        prompt, gold = row["prompt"], (row.get("reward_model") or {}).get("ground_truth")
        if not isinstance(prompt, list) or not prompt or gold is None:
            raise ValueError(f"{path}: row {i} lacks `prompt` chat messages or `reward_model.ground_truth`.")
        out.append(([{"role": m["role"], "content": m["content"]} for m in prompt], str(gold), None))
    return out


def _plain_rows(rows: list[dict], spec: BenchmarkSpec, path: Path) -> list[tuple[str, str, list | None]]:
    out = []
    for i, row in enumerate(_select_source(rows, spec, path)):
        try:
            question = str(_column(row, ("problem", "question", "Question")))
            gold = _column(row, ("answer", "final_answer", "gold"))
        except KeyError as e:
            raise ValueError(f"{path}: row {i}: {e.args[0]}; a plain file needs `problem` and `answer`.") from e
        options = row.get("options")
        if options is not None:
            options = [str(o) for o in options]
            label = str(gold).strip().strip("()").upper()
            if isinstance(gold, int):  # 0-based index of the right option
                gold = LETTERS[gold]
            elif len(label) == 1 and label in LETTERS[: len(options)]:
                gold = label
            elif str(gold) in options:  # the option's text
                gold = LETTERS[options.index(str(gold))]
            else:
                raise ValueError(f"{path}: row {i}: answer {gold!r} is neither an option label, index nor text.")
        out.append((question, str(gold), options))
    return out


def _choice_text(question: str, options: list[str], instruction: bool) -> str:
    letters = LETTERS[: len(options)]
    body = question.strip() + "\n\n" + "\n".join(f"{letter}) {text}" for letter, text in zip(letters, options))
    return (CHOICE_INSTRUCTION.format(letters=letters) if instruction else "") + body


def _to_messages(spec: BenchmarkSpec, question: str, options: list[str] | None) -> list[dict[str, str]]:
    if options is not None:
        # Same user text as LUFFY's files: ARC-C is the bare question + options, GPQA/MMLU-Pro add the instruction.
        question = _choice_text(question, options, instruction=spec.name != "arc_c")
    return make_prompt(question, SYSTEM_PROMPT)


def find_source(spec: BenchmarkSpec, data_dir: str | Path) -> Path | None:
    """The first file in `data_dir` that holds `spec`: `<name>.{parquet,jsonl,json}`, then the registry's names."""
    data_dir = Path(data_dir)
    for name in (f"{spec.name}.parquet", f"{spec.name}.jsonl", f"{spec.name}.json", *spec.files):
        if (data_dir / name).is_file():
            return data_dir / name
    return None


def read_source(spec: BenchmarkSpec, source: str | Path | None) -> list[tuple[list[dict], str, list | None]]:
    """
    Reads one benchmark's rows as `(prompt messages, gold, options or None)`.

    Args:
        spec ([`BenchmarkSpec`]): The benchmark.
        source (`str`, `Path` or `None`): A local file, a local copy of the Hub data set (a directory), another Hub
            id, or `None` for the registry's Hub id.
    """
    path = Path(source) if source is not None else None
    if path is not None and path.is_file():
        rows = _read_table(path)
        if not rows:
            raise ValueError(f"{path}: the file has no rows.")
        if _is_verl(rows):
            return _verl_rows(rows, spec, path)
        if _is_training_layout(rows):
            return _training_rows(rows, path)
        return [(_to_messages(spec, q, o), g, o) for q, g, o in _plain_rows(rows, spec, path)]
    from datasets import load_dataset

    if not (source or spec.hub_id):
        raise ValueError(
            f"{spec.name}: no Hub copy; pass a file with --benchmark-file {spec.name}=PATH or its folder with "
            "--data-dir."
        )
    repo = str(source or spec.hub_id)
    try:
        dataset = load_dataset(repo, spec.hub_config, split=spec.hub_split)
    except Exception as e:  # offline, gated (GPQA), renamed...: say what was tried and how to give a local file
        raise RuntimeError(
            f"{spec.name}: could not load {repo!r} (config {spec.hub_config!r}, split {spec.hub_split!r}) with "
            f"datasets: {e}. Pass a local file with --benchmark-file {spec.name}=PATH or a directory with --data-dir."
        ) from e
    out = []
    for row in dataset:
        question, gold, options = spec.from_hub_row(row)
        out.append((_to_messages(spec, question, options), gold, options))
    return out


# ---------------------------------------------------------------------------------------------------------------
# From rows to problems: de-duplication and options shuffling
# ---------------------------------------------------------------------------------------------------------------


def build_problems(
    spec: BenchmarkSpec, rows: list[tuple[list[dict], str, list | None]], seed: int = 0, shuffle: bool = True
) -> list[Problem]:
    """
    De-duplicates rows (same prompt and gold) and, for multiple choice, shuffles each problem's options.

    LUFFY's files repeat each AIME/AMC problem 32 times so that greedy-per-row scoring gives avg@32; here a problem
    appears once and avg@k comes from sampling it k times. The number of copies is kept on the problem.

    Args:
        spec ([`BenchmarkSpec`]): The benchmark.
        rows: As returned by [`read_source`].
        seed (`int`, *optional*, defaults to `0`): Seed of the options permutation (one per problem, derived from it).
        shuffle (`bool`, *optional*, defaults to `True`): Whether to shuffle multiple-choice options.

    Returns:
        `list[Problem]` in first-seen order.
    """
    unique: dict[tuple, int] = {}
    problems: list[Problem] = []
    for prompt, gold, _ in rows:
        key = (tuple((m["role"], m["content"]) for m in prompt), gold.strip())
        if key in unique:
            problems[unique[key]].copies += 1
            continue
        unique[key] = len(problems)
        problems.append(Problem(spec.name, f"{spec.name}/{len(problems)}", prompt, gold.strip()))
    copies = Counter(p.copies for p in problems)
    if len(problems) < len(rows):
        logger.info(
            "%s: %d rows -> %d unique problems (copies per problem: %s)",
            spec.name,
            len(rows),
            len(problems),
            dict(copies),
        )
    if spec.kind == "choice":
        for problem in problems:
            _prepare_choice(problem, seed, shuffle)
    return problems


def _prepare_choice(problem: Problem, seed: int, shuffle: bool) -> None:
    user = problem.prompt[-1]
    result = shuffle_options(user["content"], problem.gold, f"{seed}/{problem.problem_id}")
    if result is None:
        problem.options_error = "options or gold label not found in the question text"
        problem.labels = LETTERS if problem.gold in LETTERS else "123456789"
        logger.warning("%s: cannot parse the options; kept unshuffled.", problem.problem_id)
        return
    text, gold, labels = result
    problem.labels = labels
    if shuffle:
        problem.prompt = [*problem.prompt[:-1], {"role": user["role"], "content": text}]
        problem.gold = gold


def load_benchmark(
    name: str, source: str | Path | None = None, seed: int = 0, shuffle: bool = True, limit: int | None = None
) -> list[Problem]:
    """
    Loads a benchmark as de-duplicated [`Problem`]s.

    Args:
        name (`str`): Registry name (see `BENCHMARKS`).
        source (`str`, `Path` or `None`, *optional*): A local file or directory (see [`read_source`]), a Hub id, or
            `None` for the registry's Hub id. A directory that contains one of the registry's file names (e.g. LUFFY's
            `math_id.parquet`) is searched for it.
        seed (`int`, *optional*, defaults to `0`): Options-shuffling seed.
        shuffle (`bool`, *optional*, defaults to `True`): Shuffle multiple-choice options.
        limit (`int`, *optional*): Keep only the first `limit` problems (smoke tests).

    Returns:
        `list[Problem]`.
    """
    spec = get_spec(name)
    if source is not None and Path(source).is_dir():
        source = find_source(spec, source) or source
    rows = read_source(spec, source)
    system = {m["content"] for prompt, _, _ in rows for m in prompt if m["role"] == "system"}
    if system and system != {SYSTEM_PROMPT} and spec.name != "toy":  # the toy world has its own short prompt
        logger.warning("%s: the source's system prompt differs from the training one (srft_trainer.prompts).", name)
    problems = build_problems(spec, rows, seed=seed, shuffle=shuffle)
    return problems[:limit] if limit is not None else problems
