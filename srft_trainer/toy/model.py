# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""The toy model: a ~1M-parameter `Qwen2ForCausalLM`, and the pretraining of its base checkpoint (TRL SFTTrainer)."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import GenerationConfig, PreTrainedTokenizerBase, Qwen2Config, Qwen2ForCausalLM


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToyModelSettings:
    """
    Shape of the toy model and how its base checkpoint is pretrained. The defaults make the shipped base model.

    Args:
        hidden_size (`int`): Width of the residual stream.
        num_hidden_layers (`int`): Decoder layers. Four is the fewest that learn the column-wise digit lookups of the
            task within a few hundred steps (two layers were still below 5% after 600 steps).
        num_attention_heads (`int`): Query heads.
        num_key_value_heads (`int`): Key/value heads (grouped-query attention, as in Qwen2.5).
        intermediate_size (`int`): MLP width.
        pretrain_steps (`int`): Optimizer steps of the base pretraining: few enough that the base is still weak.
        pretrain_batch_size (`int`): Sequences per step.
        pretrain_learning_rate (`float`): Peak learning rate (constant after a short warmup: the base is a snapshot of
            a run in progress, not an annealed model, so it keeps a high entropy to explore from).
        pretrain_warmup_steps (`int`): Linear warmup steps.
        pretrain_per_level (`int`): Problems per level in the pretraining split (one pass over it at the defaults).
    """

    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    intermediate_size: int = 512
    pretrain_steps: int = 400
    pretrain_batch_size: int = 32
    pretrain_learning_rate: float = 1e-3
    pretrain_warmup_steps: int = 20
    pretrain_per_level: int = 2600

    def to_dict(self) -> dict:
        return asdict(self)


def toy_model_config(tokenizer: PreTrainedTokenizerBase, settings: ToyModelSettings | None = None) -> Qwen2Config:
    """
    The `Qwen2Config` of the toy model for a given tokenizer.

    Args:
        tokenizer ([`~transformers.PreTrainedTokenizerBase`]):
            The toy tokenizer (sets the vocabulary size and the pad/EOS ids).
        settings ([`ToyModelSettings`], *optional*):
            The shape; defaults to [`ToyModelSettings()`].

    Returns:
        [`~transformers.Qwen2Config`]: a float32 config whose EOS is the tokenizer's (`<|im_end|>`).
    """
    settings = settings or ToyModelSettings()
    return Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=settings.hidden_size,
        intermediate_size=settings.intermediate_size,
        num_hidden_layers=settings.num_hidden_layers,
        num_attention_heads=settings.num_attention_heads,
        num_key_value_heads=settings.num_key_value_heads,
        max_position_embeddings=512,  # a prompt plus the longest completion is ~200 characters
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        dtype="float32",
    )


def toy_generation_config(tokenizer: PreTrainedTokenizerBase) -> GenerationConfig:
    """Plain sampling at temperature 1 (no top-k/top-p cut), stopping at `<|im_end|>`."""
    return GenerationConfig(
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        max_new_tokens=256,
    )


def init_toy_model(
    tokenizer: PreTrainedTokenizerBase, settings: ToyModelSettings | None = None, seed: int = 0
) -> Qwen2ForCausalLM:
    """
    A randomly initialised toy model (the starting point of the base pretraining).

    Args:
        tokenizer ([`~transformers.PreTrainedTokenizerBase`]):
            The toy tokenizer.
        settings ([`ToyModelSettings`], *optional*):
            The shape; defaults to [`ToyModelSettings()`].
        seed (`int`, *optional*, defaults to `0`):
            Seed of the initialisation.

    Returns:
        [`~transformers.Qwen2ForCausalLM`]: the model, with the toy generation config.
    """
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(toy_model_config(tokenizer, settings))
    model.generation_config = toy_generation_config(tokenizer)
    return model


def pretrain_base(
    output_dir: str | Path,
    tokenizer: PreTrainedTokenizerBase,
    pretrain_dataset,
    settings: ToyModelSettings | None = None,
    seed: int = 0,
    checkpoint_every: int | None = None,
) -> Path:
    """
    Pretrains the toy base model on demonstrations with TRL's `SFTTrainer` and saves it as a model folder.

    The run is short on purpose: the base learns the format and part of the arithmetic, so its held-out accuracy is
    low but not zero and every method (SFT, GRPO, SRFT) has something to start from.

    Args:
        output_dir (`str` or `Path`):
            Where to save the model and tokenizer (an ordinary Hugging Face model folder).
        tokenizer ([`~transformers.PreTrainedTokenizerBase`]):
            The toy tokenizer.
        pretrain_dataset ([`~datasets.Dataset`]):
            The `"pretrain"` split of [`make_splits`] (SRFT layout; converted here with [`to_sft_dataset`]).
        settings ([`ToyModelSettings`], *optional*):
            Shape and pretraining schedule; defaults to [`ToyModelSettings()`].
        seed (`int`, *optional*, defaults to `0`):
            Seed of the initialisation and of the data order.
        checkpoint_every (`int`, *optional*):
            Also keep a model folder every this many steps, as `output_dir/checkpoints/checkpoint-<step>` (the
            schedule is constant after warmup, so checkpoint `k` is the base a `pretrain_steps=k` run would give:
            one run scores a whole range of pretraining lengths, see `scripts/sweep_toy_base.py`).

    Returns:
        `Path`: `output_dir`.
    """
    from trl import SFTConfig, SFTTrainer

    from .task import to_sft_dataset

    settings = settings or ToyModelSettings()
    output_dir = Path(output_dir)
    model = init_toy_model(tokenizer, settings, seed)
    if checkpoint_every is not None and checkpoint_every < 1:
        raise ValueError(f"`checkpoint_every` must be a positive number of steps, got {checkpoint_every}.")
    with tempfile.TemporaryDirectory() as scratch:  # the trainer's own files (logs, RNG state) are not kept
        save = {"save_strategy": "no"}
        if checkpoint_every:
            save = {"save_strategy": "steps", "save_steps": checkpoint_every, "save_only_model": True}
        args = SFTConfig(
            output_dir=str(output_dir / "checkpoints") if checkpoint_every else scratch,
            **save,
            max_steps=settings.pretrain_steps,
            per_device_train_batch_size=settings.pretrain_batch_size,
            learning_rate=settings.pretrain_learning_rate,
            lr_scheduler_type="constant_with_warmup",
            warmup_steps=settings.pretrain_warmup_steps,
            weight_decay=0.0,
            max_grad_norm=1.0,
            seed=seed,
            data_seed=seed,
            logging_steps=50,
            report_to=[],
            use_cpu=True,
            bf16=False,
            gradient_checkpointing=False,  # nothing to save on a 1M-parameter model, and it costs a second forward
            dataloader_num_workers=0,
            dataset_num_proc=None,
            disable_tqdm=True,
        )
        trainer = SFTTrainer(
            model=model, args=args, train_dataset=to_sft_dataset(pretrain_dataset), processing_class=tokenizer
        )
        trainer.train()
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir
