# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
Generation backends for evaluation: transformers `generate` (CPU or GPU, batched) and vLLM (GPU, or vLLM's CPU build;
lazily imported).

Both take chat prompts and return `n` completions per prompt, decoded without special tokens; everything after
generation (grading, files, report) is shared, so both backends give the same results format.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass


logger = logging.getLogger(__name__)


def backend_name(name: str = "auto") -> str:
    """
    The backend `name` stands for: `"auto"` is vLLM when it is installed and has a device to run on (a GPU, or vLLM's
    CPU build), else transformers; `"vllm"` and `"transformers"` are themselves.
    """
    if name != "auto":
        return name
    import importlib.util

    import torch

    from ..vllm_colocate import vllm_on_cpu

    installed = importlib.util.find_spec("vllm") is not None
    return "vllm" if installed and (torch.cuda.is_available() or vllm_on_cpu()) else "transformers"


@dataclass(frozen=True)
class SamplingSettings:
    """
    The generation protocol (paper: temperature 0.6, up to 8192 new tokens).

    Args:
        temperature (`float`): Sampling temperature; `0` means greedy decoding.
        top_p (`float`): Nucleus sampling threshold (LUFFY evaluates with 1.0).
        max_new_tokens (`int`): Maximum completion length in tokens.
        seed (`int`): Seed for sampling.
    """

    temperature: float = 0.6
    top_p: float = 1.0
    max_new_tokens: int = 8192
    seed: int = 0

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


class TransformersBackend:
    """
    Generates with `model.generate`, batched over prompts (left padding), on CPU or GPU.

    Args:
        model (`str` or `PreTrainedModel`): A model, or a Hub id / local path to load with `AutoModelForCausalLM`.
        tokenizer (`str` or `PreTrainedTokenizerBase`, *optional*): A tokenizer or its Hub id / local path; defaults to
            the model's own (loaded from `model`).
        batch_size (`int`, *optional*, defaults to `8`): Sequences generated at once (prompts x samples).
        device (`str`, *optional*): Defaults to CUDA when available, else CPU.
        dtype (`str`, *optional*, defaults to `"auto"`): Passed to `from_pretrained`.
        show_progress (`bool`, *optional*, defaults to `True`): Show a tqdm progress bar.
    """

    name = "transformers"

    def __init__(
        self,
        model,
        tokenizer=None,
        batch_size: int = 8,
        device: str | None = None,
        dtype: str = "auto",
        show_progress: bool = True,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if isinstance(model, str):
            tokenizer = tokenizer or model
            model = AutoModelForCausalLM.from_pretrained(model, dtype=dtype)
        if isinstance(tokenizer, str):
            tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        if tokenizer is None:
            raise ValueError("pass a tokenizer along with an already-loaded model")
        if tokenizer.chat_template is None:
            raise ValueError("the tokenizer has no chat_template; evaluation prompts are chat messages (see README).")
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"  # decoder-only batched generation
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.batch_size = batch_size
        self.show_progress = show_progress

    def generate(self, prompts: list[list[dict]], n: int, sampling: SamplingSettings) -> list[list[str]]:
        """Returns `n` completions for each chat prompt, in order."""
        import torch
        from tqdm.auto import tqdm
        from transformers import GenerationConfig, set_seed

        set_seed(sampling.seed)
        texts = [self.tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
        jobs = [(i, j) for i in range(len(texts)) for j in range(n)]  # prompt-major: a batch shares prompts
        greedy = sampling.temperature == 0
        # Greedy: transformers' neutral values, set explicitly; left `None`, generate() fills them from the model's own
        # generation config (e.g. `top_k: 0`), then warns at every call that greedy decoding ignores them.
        config = GenerationConfig(
            max_new_tokens=sampling.max_new_tokens,
            do_sample=not greedy,
            temperature=1.0 if greedy else sampling.temperature,
            top_p=1.0 if greedy else sampling.top_p,
            top_k=50 if greedy else 0,  # sampling: no top-k cut, the protocol is temperature + top-p only
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id,
        )
        out: list[list[str]] = [[] for _ in texts]
        bar = tqdm(total=len(jobs), desc="generating", unit="seq", disable=not self.show_progress)
        for start in range(0, len(jobs), self.batch_size):
            batch = jobs[start : start + self.batch_size]
            # Chat templates already contain the special tokens (e.g. `<|im_start|>`): don't add BOS twice.
            enc = self.tokenizer(
                [texts[i] for i, _ in batch], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(self.device)
            with torch.no_grad():
                generated = self.model.generate(**enc, generation_config=config)
            new_tokens = generated[:, enc["input_ids"].shape[1] :]
            completions = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            for (i, _), completion in zip(batch, completions):
                out[i].append(completion)
            bar.update(len(batch))
        bar.close()
        return out


class VLLMBackend:
    """
    Generates with vLLM's offline `LLM.chat`. vLLM is imported only here: install the `vllm` extra (GPU) or vLLM's
    CPU build (README, "Generation with vLLM"). On the CPU build, `dtype="auto"` means the checkpoint's own dtype (vLLM
    would otherwise run a float32 checkpoint in bfloat16) and the KV cache is sized unless `VLLM_CPU_KVCACHE_SPACE`
    is set ([`srft_trainer.vllm_colocate.cpu_engine_kwargs_for`]). Tested on the CPU build by the `vllm` stage of
    `.ci/run` (the same greedy accuracy as [`TransformersBackend`] on the toy held-out set); not run on GPUs here.

    Args:
        model (`str`): Hub id or local path.
        tokenizer (`str`, *optional*): Hub id or local path of the tokenizer; defaults to the model's.
        tensor_parallel_size (`int`, *optional*, defaults to `1`): GPUs per model replica.
        gpu_memory_utilization (`float`, *optional*, defaults to `0.9`): vLLM's memory fraction.
        dtype (`str`, *optional*, defaults to `"auto"`).
        max_model_len (`int`, *optional*): Context length (prompt + completion); defaults to the model's.
        seed (`int`, *optional*, defaults to `0`): vLLM's engine seed (sampling is seeded once, per engine).
        **llm_kwargs: Any other `vllm.LLM` engine argument.

    Data parallelism: run one process per replica with `--data-parallel-size S --data-parallel-rank R` (each
    evaluates its shard of the problems; see the README), the way vLLM's own offline data-parallel example shards
    prompts across processes.
    """

    name = "vllm"

    def __init__(
        self,
        model: str,
        tokenizer: str | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        dtype: str = "auto",
        max_model_len: int | None = None,
        seed: int = 0,
        **llm_kwargs,
    ):
        try:
            from vllm import LLM
        except ImportError as e:
            raise ImportError(
                "the vLLM backend needs vLLM: `pip install 'srft-trainer[vllm]'` on GPUs, vLLM's CPU build on a CPU "
                "machine (README, 'Generation with vLLM'), or use `--backend transformers`."
            ) from e
        from ..vllm_colocate import cpu_engine_kwargs_for, vllm_on_cpu

        if vllm_on_cpu():
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(model)
            torch_dtype = (getattr(config, "dtype", None) or "float32") if dtype == "auto" else dtype
            # 64 sequences at a time: on 2-16 cores more only grows the KV cache that has to be allocated.
            llm_kwargs.setdefault("max_num_seqs", 64)
            cpu = cpu_engine_kwargs_for(config, torch_dtype, max_model_len, llm_kwargs["max_num_seqs"])
            dtype = cpu.pop("dtype")
            llm_kwargs = {**cpu, **llm_kwargs}
        self.llm = LLM(
            model=model,
            tokenizer=tokenizer,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype,
            max_model_len=max_model_len,
            seed=seed,
            **llm_kwargs,
        )

    def generate(self, prompts: list[list[dict]], n: int, sampling: SamplingSettings) -> list[list[str]]:
        """Returns `n` completions for each chat prompt, in order."""
        from vllm import SamplingParams

        params = SamplingParams(
            n=n,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_new_tokens,
            skip_special_tokens=True,
        )
        outputs = self.llm.chat(prompts, params, use_tqdm=True)
        return [[c.text for c in output.outputs] for output in outputs]
