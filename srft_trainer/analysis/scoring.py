# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""Shared by the analysis commands: loading models and responses, generating responses, scoring response tokens."""

from __future__ import annotations

import gc
import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)
from trl.trainer.utils import selective_log_softmax


logger = logging.getLogger(__name__)

_DATA_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


@dataclass
class Example:
    """One prompt and response, as text and as the token ids that are scored."""

    prompt: Any
    response: str
    prompt_ids: list[int]
    response_ids: list[int]


def parse_labelled(value: str, default_label: str) -> tuple[str, str]:
    """Splits `label=path` into `(label, path)`; a value without a label (or a Hub id) gets `default_label`."""
    label, sep, path = value.partition("=")
    if sep and label and "/" not in label:
        return label, path
    return default_label, value


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_model(path: str, device: torch.device, dtype: str = "float32") -> PreTrainedModel:
    """Loads a causal LM (local folder or Hub id) in eval mode; `dtype="auto"` keeps the checkpoint's dtype."""
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype if dtype == "auto" else getattr(torch, dtype))
    return model.to(device).eval()


def release_memory() -> None:
    """Returns freed model memory (call after `del model`): only one model is held at a time."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
_GENERIC_TOKENIZER_CLASSES = ("TokenizersBackend", "PreTrainedTokenizerFast")


def load_tokenizer(path: str) -> PreTrainedTokenizerBase | None:
    """The checkpoint's tokenizer; `None` for a local folder without tokenizer files (e.g. a bare checkpoint)."""
    local = Path(path)
    if local.is_dir() and not any((local / name).is_file() for name in _TOKENIZER_FILES):
        return None
    tokenizer = AutoTokenizer.from_pretrained(path)
    # transformers 5 forces its own tokenizer class for some model types (e.g. qwen2 -> byte-level Qwen2Tokenizer),
    # even when the folder saved a generic `tokenizers` one (such as the toy character-level tokenizer): honour the
    # saved class then, or spaces and newlines are lost.
    config_file = local / "tokenizer_config.json"
    if config_file.is_file() and (local / "tokenizer.json").is_file():
        saved_class = json.loads(config_file.read_text()).get("tokenizer_class")
        if saved_class in _GENERIC_TOKENIZER_CLASSES and type(tokenizer).__name__ not in _GENERIC_TOKENIZER_CLASSES:
            tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
    return tokenizer


def check_same_vocab(reference: PreTrainedTokenizerBase, other: PreTrainedTokenizerBase, other_name: str) -> None:
    """Token probabilities are only comparable between models that share one vocabulary."""
    if reference.get_vocab() != other.get_vocab():
        raise ValueError(
            f"The tokenizer of {other_name} has a different vocabulary from the first model's: token probabilities "
            "can only be compared between models that share a tokenizer (pass checkpoints of the same base model)."
        )


def load_rows(path: str, split: str = "train", limit: int | None = None) -> list[dict[str, Any]]:
    """Reads a local `.jsonl`/`.json`/`.parquet`/`.csv` file, or a Hub data set by name, into a list of rows."""
    from datasets import load_dataset

    local = Path(path)
    if local.is_file():
        builder = _DATA_BUILDERS.get(local.suffix.lower())
        if builder is None:
            raise ValueError(
                f"--data {path}: unsupported file type {local.suffix!r}; use one of {sorted(_DATA_BUILDERS)}."
            )
        dataset = load_dataset(builder, data_files=str(local), split="train")
    else:
        dataset = load_dataset(path, split=split)
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    return dataset.to_list()


def response_text(value: Any, column: str) -> str:
    """A response cell as text: a string, or a list of chat messages whose last message is the assistant's turn."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(m, dict) and "content" in m for m in value):
        if value[-1].get("role", "assistant") != "assistant":
            raise ValueError(f"Column `{column}`: a message-list response must end with an assistant message.")
        return value[-1]["content"]
    raise ValueError(
        f"Column `{column}` holds a {type(value).__name__}; a response must be a string or a list of chat messages."
    )


def prompt_ids(tokenizer: PreTrainedTokenizerBase, prompt: Any, column: str = "prompt") -> list[int]:
    """Tokenises a prompt: chat messages through the tokenizer's chat template (opening the assistant turn)."""
    if isinstance(prompt, str):
        return tokenizer(prompt)["input_ids"]
    if isinstance(prompt, list) and prompt and all(isinstance(m, dict) and "role" in m for m in prompt):
        text = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        # The template already holds any BOS token.
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    raise ValueError(
        f"Column `{column}` holds a {type(prompt).__name__}; a prompt must be a string or a list of chat messages."
    )


def encode(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Any],
    responses: Sequence[str],
    max_response_tokens: int | None = None,
) -> list[Example]:
    """
    Tokenises prompt/response pairs for scoring (prompt and response separately, as TRL does).

    Responses are re-tokenised from their text, so scores computed from a saved responses file equal those computed
    right after generation. Empty responses are left out and counted in a warning; longer ones are cut to
    `max_response_tokens` (also counted).
    """
    examples, empty, truncated = [], 0, 0
    for prompt, response in zip(prompts, responses, strict=True):
        ids = tokenizer(response, add_special_tokens=False)["input_ids"]
        if not ids:
            empty += 1
            continue
        if max_response_tokens is not None and len(ids) > max_response_tokens:
            ids, truncated = ids[:max_response_tokens], truncated + 1
        p_ids = prompt_ids(tokenizer, prompt)
        if not p_ids:
            raise ValueError("A prompt tokenised to zero tokens: the first response token needs a preceding token.")
        examples.append(Example(prompt, response, p_ids, ids))
    if empty:
        logger.warning("Skipped %d empty response(s) of %d.", empty, len(responses))
    if truncated:
        logger.warning("Cut %d response(s) to --max-response-tokens=%d tokens.", truncated, max_response_tokens)
    if not examples:
        raise ValueError("No non-empty responses to score.")
    return examples


def _batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    # Longest first, so padding is small and a too-large first batch fails early (out of memory) rather than late.
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def _head_is_separable(model: PreTrainedModel, device: torch.device) -> bool:
    """Whether `logits == lm_head(base_model(...).last_hidden_state)` (no soft-capping or scaling in between)."""
    head = model.get_output_embeddings()
    if head is None or model.base_model is model:
        return False
    ids = torch.arange(min(8, model.config.vocab_size), device=device).unsqueeze(0)
    with torch.inference_mode():
        full = model(input_ids=ids).logits.float()
        split = head(model.base_model(input_ids=ids).last_hidden_state).float()
    return bool(torch.allclose(full, split, rtol=1e-3, atol=1e-3))


@torch.inference_mode()
def response_logprobs(
    model: PreTrainedModel,
    examples: Sequence[Example],
    batch_size: int = 8,
    logit_chunk: int = 1024,
) -> list[torch.Tensor]:
    """
    Log-probability of every response token under `model`, `log p(y_t | x, y_<t)`, in bounded memory.

    Each micro-batch of `batch_size` sequences (right-padded) runs through the model body once; the output head
    and log-softmax are then applied to at most `logit_chunk` response positions at a time, so no full-vocabulary
    tensor larger than `(logit_chunk, vocab)` exists, and none outlives its chunk. Models whose logits are not the
    plain head of the last hidden state (e.g. logit soft-capping) fall back to the model's own logits, one
    micro-batch at a time.

    Args:
        model (`PreTrainedModel`):
            A causal LM in eval mode.
        examples (`Sequence[Example]`):
            Tokenised prompt/response pairs.
        batch_size (`int`, *optional*, defaults to `8`):
            Sequences per forward pass.
        logit_chunk (`int`, *optional*, defaults to `1024`):
            Response positions per head/log-softmax call.

    Returns:
        `list[torch.Tensor]`: one float32 CPU tensor of shape `(len(response_ids),)` per example, in input order.
    """
    device = next(model.parameters()).device
    separable = _head_is_separable(model, device)
    if not separable:
        logger.warning("%s: logits are not the plain output head; using full logits per micro-batch.", type(model))
    head = model.get_output_embeddings()
    results: list[torch.Tensor | None] = [None] * len(examples)
    lengths = [len(e.prompt_ids) + len(e.response_ids) for e in examples]
    for batch in _batches(lengths, batch_size):
        width = max(lengths[i] for i in batch)
        input_ids = torch.zeros(len(batch), width, dtype=torch.long)
        attention_mask = torch.zeros(len(batch), width, dtype=torch.long)
        rows, cols, targets = [], [], []
        for row, i in enumerate(batch):
            ex = examples[i]
            seq = ex.prompt_ids + ex.response_ids
            input_ids[row, : len(seq)] = torch.tensor(seq)
            attention_mask[row, : len(seq)] = 1
            # The logits at position j predict token j + 1.
            start = len(ex.prompt_ids) - 1
            rows += [row] * len(ex.response_ids)
            cols += range(start, start + len(ex.response_ids))
            targets += ex.response_ids
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        rows_t, cols_t = torch.tensor(rows, device=device), torch.tensor(cols, device=device)
        targets_t = torch.tensor(targets, device=device)
        if separable:
            hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            selected = hidden[rows_t, cols_t]  # (response tokens in batch, hidden)
            del hidden
        else:
            selected = model(input_ids=input_ids, attention_mask=attention_mask).logits[rows_t, cols_t]
        logps = torch.empty(len(targets), dtype=torch.float32)
        for s in range(0, len(targets), logit_chunk):
            chunk = selected[s : s + logit_chunk]
            logits = (head(chunk) if separable else chunk).float()
            logps[s : s + logit_chunk] = selective_log_softmax(logits[None], targets_t[None, s : s + logit_chunk])[
                0
            ].cpu()
            del logits
        del selected
        offset = 0
        for i in batch:
            n = len(examples[i].response_ids)
            results[i] = logps[offset : offset + n].clone()
            offset += n
    return results  # type: ignore[return-value]


@torch.inference_mode()
def generate_responses(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Any],
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    batch_size: int = 8,
    seed: int = 0,
) -> list[str]:
    """
    Samples one response per prompt (`temperature=0`: greedy), stopping at EOS.

    Returns:
        `list[str]`: each response's text, up to (not including) the first EOS or pad token.
    """
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    eos = model.generation_config.eos_token_id
    stop_ids = set(eos if isinstance(eos, list) else [eos]) | {tokenizer.eos_token_id, tokenizer.pad_token_id}
    stop_ids.discard(None)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    # Plain temperature sampling (no top-k/top-p), whatever the checkpoint's generation_config says.
    sampling = {"temperature": temperature, "top_p": 1.0, "top_k": 0} if temperature > 0 else {}
    responses = []
    for start in range(0, len(prompts), batch_size):
        encoded = [prompt_ids(tokenizer, p) for p in prompts[start : start + batch_size]]
        padded = tokenizer.pad({"input_ids": encoded}, padding_side="left", return_tensors="pt").to(device)
        out = model.generate(
            **padded,
            max_new_tokens=max_new_tokens,
            do_sample=temperature > 0,
            pad_token_id=pad_id,
            **sampling,
        )
        for row in out[:, padded["input_ids"].shape[1] :].tolist():
            cut = next((j for j, t in enumerate(row) if t in stop_ids), len(row))
            responses.append(tokenizer.decode(row[:cut], skip_special_tokens=False))
    return responses


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def checkpoint_step(path: str) -> int | None:
    """The step of a `checkpoint-<step>` folder, else `None`."""
    match = re.fullmatch(r"checkpoint-(\d+)", Path(path).name)
    return int(match.group(1)) if match else None


def token_probs_under(
    model_path: str,
    examples: Sequence[Example],
    device: torch.device,
    dtype: str = "float32",
    batch_size: int = 8,
    logit_chunk: int = 1024,
) -> list[torch.Tensor]:
    """Loads one model, returns `p(y_t | x, y_<t)` (float64) for every response token of every example, frees it."""
    model = load_model(model_path, device, dtype)
    try:
        logps = response_logprobs(model, examples, batch_size=batch_size, logit_chunk=logit_chunk)
    finally:
        del model
        release_memory()
    return [lp.double().exp() for lp in logps]
