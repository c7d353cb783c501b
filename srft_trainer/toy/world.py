# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
The toy world on disk: a base model folder plus train/held-out files, built once and cached. Two tasks share it:
`arithmetic` ([`ToyWorldSettings`], the default) and `expressions` ([`ExpressionsWorldSettings`]).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

from datasets import Dataset, load_dataset

from .expressions import make_expression_splits
from .model import ToyModelSettings, pretrain_base
from .task import TOY_SYSTEM_PROMPT, make_splits
from .tokenizer import build_char_tokenizer


logger = logging.getLogger(__name__)

# Bump when the task's text format or levels change: it invalidates cached worlds and the shipped base model.
TASK_VERSION = 1
MANIFEST = "toy_world.json"
# The base model made by `scripts/build_toy_base.py` with the default settings, shipped inside the package.
SHIPPED_BASE_DIR = Path(__file__).parent / "base_model"
SHIPPED_BASE_INFO = "build_info.json"
# Bump when the `expressions` task's text format or levels change.
EXPRESSIONS_TASK_VERSION = 3
TASKS = ("arithmetic", "expressions", "expressions_terse")
# `expressions_terse` shares the `expressions` base: the same pretraining split, only the demonstrations differ.
SHIPPED_BASE_DIRS = {
    "arithmetic": SHIPPED_BASE_DIR,
    "expressions": Path(__file__).parent / "base_model_expressions",
    "expressions_terse": Path(__file__).parent / "base_model_expressions",
}


@dataclass(frozen=True)
class ToyWorldSettings:
    """
    Everything the toy world is made from. Two worlds with equal settings are identical.

    Args:
        seed (`int`): Seed of the problem generator, the model initialisation and the pretraining data order.
        train_per_level (`int`): Train problems per difficulty level.
        heldout_per_level (`int`): Held-out problems per difficulty level.
        system_prompt (`str` or `None`): System message of every prompt (see [`TOY_SYSTEM_PROMPT`]).
        model ([`ToyModelSettings`]): Shape of the model and schedule of the base pretraining.
    """

    task: ClassVar[str] = "arithmetic"  # a class constant, so not part of the settings' dict and fingerprint

    seed: int = 0
    train_per_level: int = 2000
    heldout_per_level: int = 100
    system_prompt: str | None = TOY_SYSTEM_PROMPT
    model: ToyModelSettings = field(default_factory=ToyModelSettings)

    def to_dict(self) -> dict:
        return {"task_version": TASK_VERSION, **asdict(self)}

    def fingerprint(self) -> str:
        """A short hash of the settings (and of [`TASK_VERSION`]), used to name and check cached worlds."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def tokenizer(self):
        """The task's tokenizer: [`build_char_tokenizer`], one token per character."""
        return build_char_tokenizer()


# The pretraining of the shipped `expressions` base (made by `scripts/build_toy_base.py --task expressions`).
# Chosen with `scripts/sweep_toy_base.py` (README, "Second toy task"): 1600 steps x 32 sequences, ~1.07 passes over
# 48,000 problems, is where the base meets issue 14's targets (sampled accuracy 10-30%, entropy on its samples >= 0.4
# nats).
EXPRESSIONS_MODEL = ToyModelSettings(pretrain_steps=1600, pretrain_learning_rate=1e-3, pretrain_per_level=24000)


@dataclass(frozen=True)
class ExpressionsWorldSettings:
    """
    Everything a toy world of the `expressions` task ([`srft_trainer.toy.expressions`]) is made from.

    Args:
        seed (`int`): Seed of the problem generator, the model initialisation and the pretraining data order.
        train_per_level (`int`): Train problems per number of terms (3 and 4).
        heldout_per_level (`int`): In-distribution held-out problems per number of terms (3 and 4).
        ood_per_level (`int`): Out-of-distribution held-out problems per number of terms (5 and 6).
        demo_error_rate (`float`): Fraction of the train demonstrations with one arithmetic slip.
        base_error_rate (`float`): Per-step probability of a wrong last digit in the base model's pretraining data
            (a sloppy calculator: it puts part of the base's uncertainty on the digits that decide the reward).
        system_prompt (`str` or `None`): System message of every prompt (see [`TOY_SYSTEM_PROMPT`]).
        model ([`ToyModelSettings`]): Shape of the model and schedule of the base pretraining (on base-style
            completions: `pretrain_per_level` problems per number of terms).
    """

    task: ClassVar[str] = "expressions"

    seed: int = 0
    train_per_level: int = 2000
    heldout_per_level: int = 250
    ood_per_level: int = 100
    demo_error_rate: float = 0.25
    base_error_rate: float = 0.3
    system_prompt: str | None = TOY_SYSTEM_PROMPT
    model: ToyModelSettings = field(default_factory=lambda: EXPRESSIONS_MODEL)

    def to_dict(self) -> dict:
        return {"task": self.task, "task_version": EXPRESSIONS_TASK_VERSION, **asdict(self)}

    def fingerprint(self) -> str:
        """A short hash of the settings (and of [`EXPRESSIONS_TASK_VERSION`]), naming and checking cached worlds."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def tokenizer(self):
        """The task's tokenizer: one token per character, and one for each answer-format marker ([`FORMAT_TOKENS`])."""
        return build_char_tokenizer(format_tokens=True)


@dataclass(frozen=True)
class ExpressionsTerseWorldSettings(ExpressionsWorldSettings):
    """
    The `expressions_terse` task: the `expressions` problems, base model and splits, with demonstrations in the paper's
    regime. A stronger solver wrote them: the base's own terse style (random valid order, random separators) without
    the base's slips, every one correct (`demo_error_rate` 0). SFT on them is within the 1M base's reach, unlike the
    `expressions` demonstrations; the criteria the task is built to meet are in [`srft_trainer.arena.regime`]. Same
    fields as [`ExpressionsWorldSettings`].
    """

    task: ClassVar[str] = "expressions_terse"

    demo_error_rate: float = 0.0

    def to_dict(self) -> dict:
        return {**super().to_dict(), "demo_style": "terse"}

    def base_fingerprint(self) -> str:
        """The fingerprint of the `expressions` settings whose base model this world uses (the demos aside)."""
        fields = {k: v for k, v in asdict(self).items() if k not in ("demo_error_rate", "model")}
        return ExpressionsWorldSettings(**fields, model=self.model).fingerprint()


WorldSettings = ToyWorldSettings | ExpressionsWorldSettings
SETTINGS_CLASSES: dict[str, type] = {
    "arithmetic": ToyWorldSettings,
    "expressions": ExpressionsWorldSettings,
    "expressions_terse": ExpressionsTerseWorldSettings,
}


@dataclass(frozen=True)
class ToyWorld:
    """
    A built toy world.

    Args:
        root (`Path`): The folder holding everything below.
        model_dir (`Path`): The base model (an ordinary Hugging Face model folder, tokenizer included).
        train_file (`Path`): The train split (JSON lines: `prompt`, `completion`, `solution`, `level`).
        heldout_file (`Path`): The (in-distribution) held-out split, same columns.
        settings ([`ToyWorldSettings`] or [`ExpressionsWorldSettings`]): What the world was built from.
        base_origin (`str`): `"shipped"` (copied from the package) or `"pretrained"` (pretrained on this machine).
        heldout_ood_file (`Path` or `None`): The out-of-distribution held-out split (`expressions` task: more terms
            than training shows), same columns; `None` for the `arithmetic` task.
    """

    root: Path
    model_dir: Path
    train_file: Path
    heldout_file: Path
    settings: WorldSettings
    base_origin: str
    heldout_ood_file: Path | None = None

    @property
    def task(self) -> str:
        """`"arithmetic"` or `"expressions"`."""
        return self.settings.task

    def load_train(self) -> Dataset:
        """The train split as a [`~datasets.Dataset`]."""
        return load_dataset("json", data_files=str(self.train_file), split="train")

    def load_heldout(self) -> Dataset:
        """The held-out split as a [`~datasets.Dataset`]."""
        return load_dataset("json", data_files=str(self.heldout_file), split="train")

    def load_validation(self) -> Dataset:
        """
        The first half of the held-out split: what `benchmarks/paper_table.py` chooses learning rates on and the
        task's regime criteria are measured on. Disjoint from [`load_test`] (no question is in two rows of the split).
        """
        heldout = self.load_heldout()
        return heldout.select(range(len(heldout) // 2))

    def load_test(self) -> Dataset:
        """The second half of the held-out split: what `benchmarks/paper_table.py` reports, never tuned on."""
        heldout = self.load_heldout()
        return heldout.select(range(len(heldout) // 2, len(heldout)))

    def load_heldout_ood(self) -> Dataset | None:
        """The out-of-distribution held-out split as a [`~datasets.Dataset`], or `None` when the task has none."""
        if self.heldout_ood_file is None:
            return None
        return load_dataset("json", data_files=str(self.heldout_ood_file), split="train")


def default_cache_dir() -> Path:
    """`$SRFT_TRAINER_CACHE`, else `$XDG_CACHE_HOME/srft_trainer`, else `~/.cache/srft_trainer`."""
    if os.environ.get("SRFT_TRAINER_CACHE"):
        return Path(os.environ["SRFT_TRAINER_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "srft_trainer"


def shipped_base_info(task: str = "arithmetic") -> dict | None:
    """The build record of the base model of `task` shipped with the package, or `None` when it is not installed."""
    base_dir = SHIPPED_BASE_DIRS[task]
    info = base_dir / SHIPPED_BASE_INFO
    if not (info.is_file() and (base_dir / "model.safetensors").is_file()):
        return None
    return json.loads(info.read_text())


def _world(root: Path, manifest: dict) -> ToyWorld:
    settings = dict(manifest["settings"])
    settings.pop("task_version")
    settings.pop("demo_style", None)  # implied by the task
    cls = SETTINGS_CLASSES[settings.pop("task", "arithmetic")]  # arithmetic manifests have no `task`
    settings["model"] = ToyModelSettings(**settings["model"])
    ood = root / "heldout_ood.jsonl"
    return ToyWorld(
        root=root,
        model_dir=root / "base",
        train_file=root / "train.jsonl",
        heldout_file=root / "heldout.jsonl",
        settings=cls(**settings),
        base_origin=manifest["base_origin"],
        heldout_ood_file=ood if ood.is_file() else None,
    )


def world_splits(settings: WorldSettings, pretrain: bool = True):
    """The splits a world of `settings` is made of (with its `pretrain` split unless `pretrain=False`)."""
    pretrain_per_level = settings.model.pretrain_per_level if pretrain else 0
    if isinstance(settings, ExpressionsWorldSettings):
        return make_expression_splits(
            seed=settings.seed,
            train_per_level=settings.train_per_level,
            heldout_per_level=settings.heldout_per_level,
            ood_per_level=settings.ood_per_level,
            pretrain_per_level=pretrain_per_level,
            demo_error_rate=settings.demo_error_rate,
            base_error_rate=settings.base_error_rate,
            system_prompt=settings.system_prompt,
            demo_style="terse" if isinstance(settings, ExpressionsTerseWorldSettings) else "column",
        )
    return make_splits(
        seed=settings.seed,
        train_per_level=settings.train_per_level,
        heldout_per_level=settings.heldout_per_level,
        pretrain_per_level=pretrain_per_level,
        system_prompt=settings.system_prompt,
    )


def world_settings(task: str = "arithmetic", seed: int = 0) -> WorldSettings:
    """The default settings of a task's world with the given seed."""
    if task not in SETTINGS_CLASSES:
        raise ValueError(f"`task` must be one of {list(TASKS)}, got {task!r}.")
    return SETTINGS_CLASSES[task](seed=seed)


def toy_world_paths(root: str | Path, task: str = "arithmetic") -> tuple[Path, Path | None]:
    """
    The base model folder and train file a toy world at `root` uses, without building it: the built world's own, or,
    before the first `srft train`, the base shipped with the package and no data yet (for `srft check`).
    """
    root = Path(root)
    if _read_manifest(root) is not None:
        return root / "base", root / "train.jsonl"
    return SHIPPED_BASE_DIRS[task], None


def _read_manifest(root: Path) -> dict | None:
    path = root / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def _replace(root: Path, staging: Path) -> None:
    """Swaps `staging` in for `root`; the old folder is moved aside first so `root` is never seen half-deleted."""
    old = Path(tempfile.mkdtemp(prefix=f".{root.name}-old-", dir=root.parent))
    old.rmdir()
    root.rename(old)
    try:
        staging.rename(root)
    except OSError:  # another process put its world there in between: keep theirs
        if _read_manifest(root) is None:
            raise
    shutil.rmtree(old, ignore_errors=True)


def build_toy_world(
    output_dir: str | Path | None = None,
    seed: int = 0,
    settings: WorldSettings | None = None,
    pretrain: bool = False,
    task: str | None = None,
) -> ToyWorld:
    """
    Builds the offline toy world, or returns it if it is already built.

    The world is a folder with the base model (`base/`, loadable with `from_pretrained`), `train.jsonl`,
    `heldout.jsonl` (and for the `expressions` task `heldout_ood.jsonl`) and a manifest of the settings. With a
    task's default settings the base model is the one shipped in the package (made by `scripts/build_toy_base.py`)
    and building takes a second; with other settings (e.g. another `seed`, whose held-out split could overlap the
    shipped model's pretraining data) a base model is pretrained here, a few minutes on 2 CPU cores. Nothing is
    downloaded.

    The folder is written under a temporary name and renamed when complete, so an interrupted build leaves nothing
    half-made and processes building the same world at once (e.g. under `accelerate launch`) all end up with one.

    Args:
        output_dir (`str` or `Path`, *optional*):
            Where to build the world; defaults to `<cache>/toy-world-<fingerprint>` (`arithmetic`) or
            `<cache>/toy-world-expressions-<fingerprint>` with the cache folder of [`default_cache_dir`]. An
            existing folder is reused when its manifest has the same settings.
        seed (`int`, *optional*, defaults to `0`):
            Seed of everything; ignored when `settings` is given.
        settings ([`ToyWorldSettings`] or [`ExpressionsWorldSettings`], *optional*):
            All settings (their class says the task); defaults to the default settings of `task` with `seed`.
        pretrain (`bool`, *optional*, defaults to `False`):
            Pretrain the base model here even when the shipped one fits the settings.
        task (`str`, *optional*):
            `"arithmetic"` (the default) or `"expressions"`; when `settings` is given it must be their task.

    Returns:
        [`ToyWorld`]: the paths of the world's files.

    Raises:
        `ValueError`: `output_dir` holds a toy world built from other settings, or `task` is unknown or is not the
        task of `settings`.
    """
    if settings is None:
        settings = world_settings(task or "arithmetic", seed)
    elif task is not None and task != settings.task:
        raise ValueError(f"`task={task!r}` but the settings are of the {settings.task!r} task.")
    fingerprint = settings.fingerprint()
    name = "toy-world" if settings.task == "arithmetic" else f"toy-world-{settings.task}"
    root = Path(output_dir) if output_dir is not None else default_cache_dir() / f"{name}-{fingerprint}"
    manifest = _read_manifest(root)
    replacing = manifest is not None
    if manifest is not None:
        if manifest.get("fingerprint") != fingerprint:
            raise ValueError(
                f"{root} holds a toy world built from other settings ({root / MANIFEST}): pass another `output_dir` "
                "or delete that folder."
            )
        if not pretrain or manifest["base_origin"] == "pretrained":
            return _world(root, manifest)
    elif root.exists() and any(root.iterdir()):
        raise ValueError(f"{root} exists and is not a toy world (no {MANIFEST}): pass an empty or new `output_dir`.")

    start = time.perf_counter()
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        info = shipped_base_info(settings.task)
        base_fingerprint = getattr(settings, "base_fingerprint", settings.fingerprint)()
        use_shipped = not pretrain and info is not None and info.get("fingerprint") == base_fingerprint
        splits = world_splits(settings, pretrain=not use_shipped)
        splits["train"].to_json(staging / "train.jsonl")
        splits["heldout"].to_json(staging / "heldout.jsonl")
        if "heldout_ood" in splits:
            splits["heldout_ood"].to_json(staging / "heldout_ood.jsonl")
        if use_shipped:
            base_dir = SHIPPED_BASE_DIRS[settings.task]
            shutil.copytree(base_dir, staging / "base", ignore=shutil.ignore_patterns("__*", "*.py"))
        else:
            logger.warning("Pretraining the toy base model (a few minutes on 2 CPU cores) into %s", root / "base")
            pretrain_base(staging / "base", settings.tokenizer(), splits["pretrain"], settings.model, settings.seed)
        manifest = {
            "fingerprint": fingerprint,
            "settings": settings.to_dict(),
            "base_origin": "shipped" if use_shipped else "pretrained",
            "build_seconds": round(time.perf_counter() - start, 1),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if replacing:  # a shipped-base world being replaced by a locally pretrained one (`pretrain=True`)
            _replace(root, staging)
        else:
            try:
                staging.rename(root)
            except OSError:  # another process finished the same world first: use theirs (never delete it)
                if _read_manifest(root) is None:
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _world(root, _read_manifest(root))
