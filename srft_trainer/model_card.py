# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
The model card `srft train` and `SRFTTrainer.create_model_card` write: the base model (Hub id or local path), the data,
the settings that differ from the defaults, the held-out accuracy when it was measured, a licence, the citations.

TRL's card leaves the base model out for local checkpoints (then prints "None"), has a placeholder licence and an
unrelated example prompt; [`ModelCardMixin`] replaces `create_model_card` for every trainer `srft train` runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

from datasets import Dataset

from .data_checks import HUB_ID


# Fields that always go in the card (what a reader needs to place the run), whether default or not.
ALWAYS = (
    "learning_rate",
    "max_steps",
    "num_train_epochs",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
)
# Bookkeeping fields that say nothing about the training itself.
IGNORED = {
    "output_dir", "logging_dir", "run_name", "report_to", "logging_steps", "save_steps", "save_strategy",
    "save_total_limit", "hub_model_id", "push_to_hub", "hub_token", "resume_from_checkpoint", "use_cpu", "seed",
    "data_seed", "overwrite_output_dir", "logging_first_step", "dataloader_num_workers", "disable_tqdm",
    "log_completions", "num_completions_to_print", "project", "trackio_space_id", "local_rank", "deepspeed",
    "accelerator_config", "ddp_backend", "eval_strategy", "eval_steps", "per_device_eval_batch_size",
    "model_init_kwargs", "debug", "dataloader_pin_memory", "pad_to_multiple_of", "generation_batch_size",
    "gradient_checkpointing", "gradient_checkpointing_kwargs", "activation_checkpointing",
    "activation_checkpointing_kwargs",
}  # fmt: skip
SRFT_CITATION = """@inproceedings{fu2026srft,
  title     = {{SRFT}: A Single-Stage Method with Supervised and Reinforcement Fine-Tuning for Reasoning},
  author    = {Fu, Yuqian and Chen, Tinghong and Chai, Jiajun and Wang, Xihuai and Tu, Songjun and Yin, Guojun and
               Lin, Wei and Zhang, Qichao and Zhu, Yuanheng and Zhao, Dongbin},
  booktitle = {International Conference on Learning Representations},
  year      = {2026},
  eprint    = {2506.19767},
  archivePrefix = {arXiv}
}"""  # the README's, character for character (tests/test_user_guide.py)
TRL_BIBTEX = """@software{vonwerra2020trl,
    title   = {{TRL: Transformers Reinforcement Learning}},
    author  = {von Werra, Leandro and others},
    license = {Apache-2.0},
    url     = {https://github.com/huggingface/trl},
    year    = {2020}
}"""


def changed_settings(args: Any) -> dict[str, Any]:
    """The config's fields whose value differs from the config class's default (plus a few always shown)."""
    out = {}
    for field in dataclasses.fields(type(args)):
        if field.name in IGNORED or field.name.startswith("_"):
            continue
        value = getattr(args, field.name, None)
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = object()
        value = getattr(value, "value", value)  # enums
        default = getattr(default, "value", default)
        if field.name in ALWAYS or value != default:
            out[field.name] = value
    if (out.get("max_steps") or 0) > 0:  # the number of epochs does not limit the run then
        out.pop("num_train_epochs", None)
    if out.get("steps_per_generation") == getattr(args, "gradient_accumulation_steps", None):  # TRL's derived default
        out.pop("steps_per_generation")
    return out


def dataset_name_of(dataset: Any) -> str | None:
    """
    What a card can say about a training set it was handed from Python: its Hub name, the local files it was loaded
    from, or its size and columns (an in-memory or streaming set).
    """
    if dataset is None:
        return None
    info = getattr(dataset, "info", None)
    builder = getattr(info, "builder_name", None)
    name = getattr(info, "dataset_name", None)
    if name and builder not in ("json", "csv", "parquet", "text", "arrow", "generator", None):
        return name  # loaded from the Hub by name
    files = sorted({Path(f).name for f in (getattr(info, "download_checksums", None) or {}) if f})
    columns = ", ".join(getattr(dataset, "column_names", None) or [])
    if files:
        return f"local file(s) {', '.join(files)} (columns: {columns})"
    if isinstance(dataset, Dataset):
        return f"a data set of {len(dataset)} rows passed from Python (columns: {columns})"
    return f"a streaming data set (columns: {columns})" if columns else "a streaming data set"


def base_model_of(model: Any) -> str | None:
    """The Hub id or local path the trained model was loaded from."""
    config = getattr(model, "config", None)
    name = getattr(config, "_name_or_path", None) or getattr(model, "name_or_path", None)
    return str(name) if name else None


def license_of(base_model: str | None) -> str:
    """The base model's licence from its local card (README.md front matter), else `"other"`."""
    if base_model and Path(base_model).is_dir():
        readme = Path(base_model) / "README.md"
        if readme.is_file():
            match = re.search(r"^licen[cs]e:\s*(\S+)", readme.read_text(errors="replace"), re.MULTILINE)
            if match:
                return match.group(1)
        info = Path(base_model) / "build_info.json"  # a toy world's base: made by this project's code
        if info.is_file() and "fingerprint" in json.loads(info.read_text()):
            return "apache-2.0"
    return "other"


def _link(name: str | None, kind: str = "") -> str:
    if not name:
        return "unknown"
    if HUB_ID.match(name) and not Path(name).exists():
        return f"[{name}](https://huggingface.co/{kind}{name})"
    return f"`{name}` (local)" if Path(name).exists() else name


def render_model_card(
    model_name: str,
    trainer_name: str,
    base_model: str | None,
    dataset_name: str | None,
    settings: dict[str, Any],
    license_id: str,
    heldout: dict | None = None,
    example_prompt: Any = None,
    model_path: str | None = None,
    tags: list[str] | None = None,
    weights_in: str | None = None,
) -> str:
    """The card as Markdown with YAML front matter (`base_model`/`datasets` only when they are Hub ids)."""
    import yaml

    meta: dict[str, Any] = {"library_name": "transformers", "license": license_id}
    if base_model and HUB_ID.match(base_model) and not Path(base_model).exists():
        meta["base_model"] = base_model
    if dataset_name and HUB_ID.match(dataset_name) and not Path(dataset_name).exists():
        meta["datasets"] = [dataset_name]
    meta["tags"] = sorted(set(tags or []) | {"trl", "srft-trainer"})
    method = "SRFT ([arXiv 2506.19767](https://arxiv.org/abs/2506.19767))" if trainer_name == "SRFT" else trainer_name
    lines = [
        "---",
        yaml.safe_dump(meta, sort_keys=False).strip(),
        "---",
        "",
        f"# {model_name}",
        "",
        f"Fine-tuned from {_link(base_model)} on {_link(dataset_name, 'datasets/')} with {method}, using",
        "srft-trainer on [TRL](https://github.com/huggingface/trl).",
        "",
        "## Training",
        "",
        f"- trainer: {trainer_name}",
        f"- base model: {base_model or 'unknown'}",
        f"- data: {dataset_name or 'unknown'}",
    ]
    if weights_in:  # written with a checkpoint: the folder holding the card may hold no final model (yet)
        lines.append(f"- weights: in `{weights_in}/` (the checkpoint this card was written with)")
    lines += [
        f"- `{key}`: {value!r}" if isinstance(value, str) else f"- `{key}`: {value}" for key, value in settings.items()
    ]
    if heldout:
        n = heldout.get("heldout_size")
        source = f" of {heldout['heldout']}" if heldout.get("heldout") else ""
        lines += [
            "",
            "## Results",
            "",
            f"Held-out accuracy (greedy, {n} problems{source}): "
            + ("" if heldout.get("before") is None else f"{100 * heldout['before']:.1f}% before training, ")
            + f"{100 * heldout['after']:.1f}% after.",
        ]
    prompt = json.dumps(example_prompt, ensure_ascii=False) if example_prompt is not None else '"What is 12 + 30?"'
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        f'generator = pipeline("text-generation", model="{model_path or model_name}")',
        f'print(generator({prompt}, max_new_tokens=256, return_full_text=False)[0]["generated_text"])',
        "```",
        "",
        f"Licence: `{license_id}`"
        + (
            " (the base model's licence was not recorded in its folder: check it before sharing)"
            if license_id == "other"
            else ""
        ),
        "",
        "## Citation",
        "",
        "```bibtex",
        *([SRFT_CITATION, ""] if trainer_name == "SRFT" else []),
        TRL_BIBTEX,
        "```",
        "",
    ]
    return "\n".join(lines)


class ModelCardMixin:
    """
    Mixin for the trainers `srft train` runs: `create_model_card` writes [`render_model_card`]'s card into
    `output_dir/README.md` (what `push_to_hub` uploads). `srft train` sets `card_dataset_name`, `card_base_model` and,
    when it scored the model, `card_heldout`.
    """

    card_dataset_name: str | None = None
    card_base_model: str | None = None
    card_heldout: dict | None = None
    _card_checkpoint: str | None = None

    def _save_checkpoint(self, model, trial):
        # TRL writes the card into output_dir before each checkpoint. A run stopped by SIGTERM exits right after this
        # save, its weights only in the checkpoint folder, so that card says which. Other saves leave the card as it
        # is: a background Hub push of output_dir may be reading it.
        from .callbacks import SaveOnSigterm

        if any(isinstance(cb, SaveOnSigterm) and cb.requested for cb in self.callback_handler.callbacks):
            self._card_checkpoint = f"checkpoint-{self.state.global_step}"
        try:
            return super()._save_checkpoint(model, trial)
        finally:
            self._card_checkpoint = None

    def create_model_card(
        self, model_name: str | None = None, dataset_name: str | None = None, tags=None, **_
    ) -> None:
        if not self.is_world_process_zero():
            return
        base = self.card_base_model or base_model_of(self.accelerator.unwrap_model(self.model))
        dataset = dataset_name or self.card_dataset_name or dataset_name_of(self.train_dataset)
        prompt = None
        # A streaming (iterable) data set has no row 0 to index: its card shows no example prompt.
        if isinstance(self.train_dataset, Dataset) and "prompt" in self.train_dataset.column_names:
            prompt = self.train_dataset[0]["prompt"]
        name = model_name or self.args.hub_model_id or Path(self.args.output_dir).name
        card = render_model_card(
            model_name=name,
            trainer_name=self._name,
            base_model=base,
            dataset_name=dataset,
            settings=changed_settings(self.args),
            license_id=license_of(base),
            heldout=self.card_heldout,
            example_prompt=prompt,
            # The full repo id (`trainer.hub_model_id` has the namespace transformers resolved), else the folder.
            model_path=getattr(self, "hub_model_id", None) or self.args.hub_model_id or self.args.output_dir,
            tags=[*(self._tag_names or []), *([tags] if isinstance(tags, str) else tags or [])],
            weights_in=self._card_checkpoint,
        )
        os.makedirs(self.args.output_dir, exist_ok=True)
        path = Path(self.args.output_dir, "README.md")
        if path.is_file() and path.read_text(encoding="utf-8") == card:
            return  # unchanged: leave the file a running push may be uploading alone
        staged = path.with_name(".README.md.tmp")
        staged.write_text(card, encoding="utf-8")
        os.replace(staged, path)  # whole or not at all, for a reader in another thread
