# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""The toy world on disk: a base model folder plus train/held-out files, built once and cached."""

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

from datasets import Dataset, load_dataset

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


@dataclass(frozen=True)
class ToyWorld:
    """
    A built toy world.

    Args:
        root (`Path`): The folder holding everything below.
        model_dir (`Path`): The base model (an ordinary Hugging Face model folder, tokenizer included).
        train_file (`Path`): The train split (JSON lines: `prompt`, `completion`, `solution`, `level`).
        heldout_file (`Path`): The held-out split, same columns.
        settings ([`ToyWorldSettings`]): What the world was built from.
        base_origin (`str`): `"shipped"` (copied from the package) or `"pretrained"` (pretrained on this machine).
    """

    root: Path
    model_dir: Path
    train_file: Path
    heldout_file: Path
    settings: ToyWorldSettings
    base_origin: str

    def load_train(self) -> Dataset:
        """The train split as a [`~datasets.Dataset`]."""
        return load_dataset("json", data_files=str(self.train_file), split="train")

    def load_heldout(self) -> Dataset:
        """The held-out split as a [`~datasets.Dataset`]."""
        return load_dataset("json", data_files=str(self.heldout_file), split="train")


def default_cache_dir() -> Path:
    """`$SRFT_TRAINER_CACHE`, else `$XDG_CACHE_HOME/srft_trainer`, else `~/.cache/srft_trainer`."""
    if os.environ.get("SRFT_TRAINER_CACHE"):
        return Path(os.environ["SRFT_TRAINER_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "srft_trainer"


def shipped_base_info() -> dict | None:
    """The build record of the base model shipped with the package, or `None` when it is not installed."""
    info = SHIPPED_BASE_DIR / SHIPPED_BASE_INFO
    if not (info.is_file() and (SHIPPED_BASE_DIR / "model.safetensors").is_file()):
        return None
    return json.loads(info.read_text())


def _world(root: Path, manifest: dict) -> ToyWorld:
    settings = dict(manifest["settings"])
    settings.pop("task_version")
    settings["model"] = ToyModelSettings(**settings["model"])
    return ToyWorld(
        root=root,
        model_dir=root / "base",
        train_file=root / "train.jsonl",
        heldout_file=root / "heldout.jsonl",
        settings=ToyWorldSettings(**settings),
        base_origin=manifest["base_origin"],
    )


def _read_manifest(root: Path) -> dict | None:
    path = root / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def build_toy_world(
    output_dir: str | Path | None = None,
    seed: int = 0,
    settings: ToyWorldSettings | None = None,
    pretrain: bool = False,
) -> ToyWorld:
    """
    Builds the offline toy world, or returns it if it is already built.

    The world is a folder with the base model (`base/`, loadable with `from_pretrained`), `train.jsonl`,
    `heldout.jsonl` and a manifest of the settings. With the default settings the base model is the one shipped in
    the package (made by `scripts/build_toy_base.py`) and building takes a second; with other settings (e.g. another
    `seed`, whose held-out split could overlap the shipped model's pretraining data) a base model is pretrained here,
    ~5 minutes on 2 CPU cores. Nothing is downloaded.

    The folder is written under a temporary name and renamed when complete, so an interrupted build leaves nothing
    half-made and processes building the same world at once (e.g. under `accelerate launch`) all end up with one.

    Args:
        output_dir (`str` or `Path`, *optional*):
            Where to build the world; defaults to `<cache>/toy-world-<fingerprint>` with the cache folder of
            [`default_cache_dir`]. An existing folder is reused when its manifest has the same settings.
        seed (`int`, *optional*, defaults to `0`):
            Seed of everything; ignored when `settings` is given.
        settings ([`ToyWorldSettings`], *optional*):
            All settings; defaults to `ToyWorldSettings(seed=seed)`.
        pretrain (`bool`, *optional*, defaults to `False`):
            Pretrain the base model here even when the shipped one fits the settings.

    Returns:
        [`ToyWorld`]: the paths of the world's files.

    Raises:
        `ValueError`: `output_dir` holds a toy world built from other settings.
    """
    settings = settings or ToyWorldSettings(seed=seed)
    fingerprint = settings.fingerprint()
    root = Path(output_dir) if output_dir is not None else default_cache_dir() / f"toy-world-{fingerprint}"
    manifest = _read_manifest(root)
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
        info = shipped_base_info()
        use_shipped = not pretrain and info is not None and info.get("fingerprint") == fingerprint
        splits = make_splits(
            seed=settings.seed,
            train_per_level=settings.train_per_level,
            heldout_per_level=settings.heldout_per_level,
            pretrain_per_level=0 if use_shipped else settings.model.pretrain_per_level,
            system_prompt=settings.system_prompt,
        )
        splits["train"].to_json(staging / "train.jsonl")
        splits["heldout"].to_json(staging / "heldout.jsonl")
        if use_shipped:
            shutil.copytree(SHIPPED_BASE_DIR, staging / "base", ignore=shutil.ignore_patterns("__*", "*.py"))
        else:
            logger.warning("Pretraining the toy base model (about 5 minutes on 2 CPU cores) into %s", root / "base")
            pretrain_base(staging / "base", build_char_tokenizer(), splits["pretrain"], settings.model, settings.seed)
        manifest = {
            "fingerprint": fingerprint,
            "settings": settings.to_dict(),
            "base_origin": "shipped" if use_shipped else "pretrained",
            "build_seconds": round(time.perf_counter() - start, 1),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if root.exists():  # a cached world being replaced by a locally pretrained one (`pretrain=True`)
            shutil.rmtree(root)
        try:
            staging.rename(root)
        except OSError:  # another process finished the same world first: use theirs
            if _read_manifest(root) is None:
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _world(root, _read_manifest(root))
