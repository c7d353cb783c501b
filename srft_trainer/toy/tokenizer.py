# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
A character-level (byte-level) tokenizer with a ChatML chat template, built offline as a Qwen2 tokenizer.

It is a `Qwen2Tokenizer` (byte-level BPE, Qwen2's pre-tokenizer) whose vocabulary is the 256 byte symbols plus the
ChatML specials and which has *no merges*, so every byte is one token. Being a real `Qwen2Tokenizer` matters:
`AutoTokenizer.from_pretrained` on a folder whose `config.json` says `model_type: qwen2` always builds a
`Qwen2Tokenizer` (transformers 5 ignores the saved `tokenizer_class` for that model type), so a tokenizer of any other
kind (e.g. a `WordLevel` one) would come back with Qwen2's byte-level pipeline and lose its spaces and newlines.
"""

from __future__ import annotations

from transformers.convert_slow_tokenizer import bytes_to_unicode
from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer


# ChatML like Qwen2.5's: `add_generation_prompt` opens the assistant turn, `<|im_end|>` closes every turn and is EOS.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
PAD_TOKEN = "<|endoftext|>"
EOS_TOKEN = "<|im_end|>"
SPECIAL_TOKENS = [PAD_TOKEN, "<|im_start|>", EOS_TOKEN]
# The answer format's markers, one token each with `format_tokens=True` (ids 259-261), as a real model's BPE
# vocabulary spends 1-3 tokens on them; spelled byte by byte they are ~20 always-certain tokens per completion, which
# would make up a third of a short solution and dilute its mean token entropy.
FORMAT_TOKENS = ["<think>", "</think>", "\\boxed{"]


def build_char_tokenizer(format_tokens: bool = False) -> Qwen2Tokenizer:
    """
    Builds the toy tokenizer: one token per byte (so one per character of ASCII text) plus the ChatML specials.

    The vocabulary (259 tokens: the 3 specials, then the 256 byte symbols in byte order) is fixed, so the tokenizer
    is the same on every machine, and any text round-trips. Prompts are padded on the left, as generation needs.

    Args:
        format_tokens (`bool`, *optional*, defaults to `False`):
            Also make each of [`FORMAT_TOKENS`] (`<think>`, `</think>`, `\\boxed{`) one (non-special) token, after the
            259 others. The `expressions` task's tokenizer does; the `arithmetic` task's (and its shipped base) does
            not.

    Returns:
        [`~transformers.Qwen2Tokenizer`]: the tokenizer, with `chat_template` set; save it with `save_pretrained`
        and load it with `AutoTokenizer.from_pretrained`.
    """
    byte_symbols = bytes_to_unicode()
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + [byte_symbols[b] for b in range(256)])}
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=[],
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=None,  # every byte is in the vocabulary
        extra_special_tokens=["<|im_start|>"],
        padding_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    if format_tokens:
        tokenizer.add_tokens(FORMAT_TOKENS)
    return tokenizer
