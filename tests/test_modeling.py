"""Config overrides at load time (the paper's RoPE/context extension) on a tiny random Qwen2 saved to disk."""

import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file
from tiny import tiny_model, tiny_tokenizer
from transformers import AutoConfig

from srft_trainer.modeling import PAPER_CONTEXT_OVERRIDES, load_config, load_model, override_config, vllm_hf_overrides


def snapshot(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny Qwen2 checkpoint in the transformers 5 format (`rope_parameters`)."""
    folder = tmp_path_factory.mktemp("tiny-qwen2")
    tiny_model(tiny_tokenizer()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def saved_v4(tmp_path_factory, saved):
    """The same weights with a config.json written like Qwen2.5-Math-7B's (transformers 4.x keys)."""
    folder = tmp_path_factory.mktemp("tiny-qwen2-v4")
    (folder / "model.safetensors").write_bytes((saved / "model.safetensors").read_bytes())
    config = json.loads((saved / "config.json").read_text())
    for key in ("rope_parameters", "layer_types", "dtype"):
        config.pop(key)
    config.update(
        rope_theta=10000.0,
        rope_scaling=None,
        max_position_embeddings=4096,
        sliding_window=4096,
        use_sliding_window=False,
        torch_dtype="float32",
        transformers_version="4.40.0",
    )
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def expected_inv_freq(theta, config):
    dim = config.hidden_size // config.num_attention_heads
    return 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)


@pytest.mark.parametrize("fixture", ["saved", "saved_v4"])
def test_paper_overrides_change_the_config_and_rope_not_the_weights(fixture, request):
    folder = request.getfixturevalue(fixture)
    before = snapshot(folder)
    model = load_model(str(folder), PAPER_CONTEXT_OVERRIDES)
    assert model.config.rope_parameters["rope_theta"] == 40000.0
    assert model.config.max_position_embeddings == 16384
    # The rotary embedding is built from the new base (setting `config.rope_theta` alone would not do this).
    torch.testing.assert_close(model.model.rotary_emb.inv_freq, expected_inv_freq(40000.0, model.config))
    saved_weights = load_file(folder / "model.safetensors")
    state = model.state_dict()
    for name, tensor in saved_weights.items():
        assert torch.equal(state[name], tensor), name
    assert snapshot(folder) == before  # the checkpoint on disk is untouched
    assert AutoConfig.from_pretrained(folder).rope_parameters["rope_theta"] == 10000.0


def test_new_rope_changes_outputs_after_the_first_position(saved):
    original = load_model(str(saved))
    extended = load_model(str(saved), PAPER_CONTEXT_OVERRIDES)
    torch.testing.assert_close(original.model.rotary_emb.inv_freq, expected_inv_freq(10000.0, original.config))
    ids = torch.arange(3, 40).unsqueeze(0)
    with torch.no_grad():
        a, b = original(ids).logits, extended(ids).logits
    torch.testing.assert_close(a[:, 0], b[:, 0])  # RoPE is the identity at position 0
    assert not torch.allclose(a[:, 1:], b[:, 1:])


def test_model_kwargs_pass_through(saved):
    model = load_model(str(saved), {"rope_theta": 40000}, dtype="bfloat16")
    assert model.dtype == torch.bfloat16
    assert model.config.rope_parameters["rope_theta"] == 40000.0  # YAML int converted to the config's float
    assert isinstance(model.config.rope_parameters["rope_theta"], float)


def test_override_config_copies_and_merges_rope_parameters(saved):
    config = AutoConfig.from_pretrained(saved)
    new = override_config(config, {"rope_parameters": {"rope_theta": 5e5}, "use_cache": False})
    assert new.rope_parameters == {"rope_theta": 5e5, "rope_type": "default"} and new.use_cache is False
    assert config.rope_parameters["rope_theta"] == 10000.0 and config.use_cache is True


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rope_thetta": 40000.0}, r"Unknown config override\(s\) for Qwen2Config: `rope_thetta` \(did you mean"),
        ({"max_position_embedding": 16384}, "did you mean max_position_embeddings"),
        ({"not_a_key": 1}, "must be existing keys"),
        ({"max_position_embeddings": 16384.0}, "`max_position_embeddings` must be of type int"),
        ({"rope_theta": "40000"}, r"`rope_parameters.rope_theta` must be of type float"),
        ({"use_cache": 1}, "`use_cache` must be of type bool"),
        ({"rope_parameters": 4.0}, "`rope_parameters` must be a mapping"),
    ],
)
def test_bad_overrides_are_clear_errors(saved, overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(str(saved), overrides)


def test_config_and_overrides_together_are_rejected(saved):
    with pytest.raises(ValueError, match="either `config`"):
        load_model(str(saved), PAPER_CONTEXT_OVERRIDES, config=AutoConfig.from_pretrained(saved))


def test_vllm_overrides_match_the_loaded_config(saved_v4):
    config = AutoConfig.from_pretrained(saved_v4)
    overrides = vllm_hf_overrides(config, PAPER_CONTEXT_OVERRIDES)
    assert overrides == {
        "rope_parameters": {"rope_theta": 40000.0, "rope_type": "default"},
        "max_position_embeddings": 16384,
    }
    json.dumps(overrides)  # usable as `vllm serve --hf-overrides '<json>'`
