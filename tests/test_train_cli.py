"""`srft train`: recipes parse, bad input fails before training with a message naming the key or path, runs finish."""

import json

import pytest
from trainer_utils import write_assets, write_recipe

from srft_trainer import cli
from srft_trainer.train import parse_args


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return write_assets(tmp_path_factory.mktemp("assets"))


def recipe(tmp_path, assets, **overrides):
    return write_recipe(tmp_path, assets, **overrides)


def test_recipe_parses_into_srft_config(tmp_path, assets):
    script_args, args, model_args = parse_args(["--config", recipe(tmp_path, assets), "--sft_coef", "0.25"])
    assert type(args).__name__ == "SRFTConfig"
    assert args.sft_coef == 0.25 and args.num_demos_per_group == 1  # CLI overrides the YAML, defaults kept
    assert model_args.model_name_or_path == str(assets / "model")
    assert script_args.reward_funcs == ["accuracy"]


def test_bad_recipe_key_fails_naming_it(tmp_path, assets):
    with pytest.raises(ValueError, match="learning_rat"):
        parse_args(["--config", recipe(tmp_path, assets, learning_rat=0.1)])


def test_missing_data_file_fails_before_training(tmp_path, assets):
    path = recipe(tmp_path, assets, dataset_name=str(tmp_path / "nope.jsonl"))
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        cli.main(["train", "--config", path])


def test_unknown_reward_fails_before_training(tmp_path, assets):
    with pytest.raises(ValueError, match="Unknown reward function 'acuracy'"):
        cli.main(["train", "--config", recipe(tmp_path, assets, reward_funcs=["acuracy"])])


def test_missing_recipe_file(tmp_path, capsys):
    assert cli.main(["train", "--config", str(tmp_path / "no-such.yaml")]) == 2
    assert "srft train: no such recipe file:" in capsys.readouterr().err


@pytest.mark.parametrize(
    "overrides, extra",
    [
        ({"num_generation": 4}, []),  # a typo in the recipe
        ({}, ["--num_generations", "eight"]),  # a value argparse rejects, on the command line
        ({"num_demos_per_group": 4}, []),  # a config SRFTConfig refuses
    ],
)
def test_train_reports_recipe_problems_in_check_words_without_traceback(tmp_path, assets, capsys, overrides, extra):
    from srft_trainer.check import check_recipe

    path = recipe(tmp_path, assets, **overrides)
    assert cli.main(["train", "--config", path, *extra]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    checked = check_recipe(path, overrides=extra)
    assert checked.problems and all(f"srft train: {message}" in err for _, message in checked.problems), err


@pytest.mark.parametrize("trainer", ["srft", "grpo", "sft"])
def test_short_runs_save_model_card_and_curves(tmp_path, assets, trainer):
    extra = {"trainer": trainer}
    if trainer == "sft":  # SFTConfig has no GRPO fields
        extra.update(num_generations=None, max_completion_length=None, max_length=64)
    assert cli.main(["train", "--config", recipe(tmp_path, assets, **extra)]) == 0
    out = tmp_path / "out"
    assert (out / "config.json").exists() and (out / "tokenizer.json").exists()
    card = (out / "README.md").read_text()
    assert ("2506.19767" in card) == (trainer == "srft")  # the SRFT paper only on SRFT's card
    assert f"- trainer: {'SRFT' if trainer == 'srft' else trainer.upper()}" in card and "None" not in card
    assert (out / "training_curves.png").stat().st_size > 1000


def test_world_size_decides_the_generation_batch(tmp_path, assets):
    """TRL derives generation_batch_size from the number of processes: `parse_args(world_size=)` builds it so."""
    path = recipe(tmp_path, assets, trainer="grpo", per_device_train_batch_size=4, num_generations=8)
    with pytest.raises(ValueError, match=r"generation_batch_size \(4\) must be divisible by num_generations \(8\)"):
        parse_args(["--config", path])
    _, args, _ = parse_args(["--config", path], world_size=2)
    assert args.generation_batch_size == 8 and args.steps_per_generation == 1 and args.world_size == 2
    _, args, _ = parse_args(["--config", path, "--gradient_accumulation_steps", "3"], world_size=4)
    assert args.generation_batch_size == 4 * 4 * 3 and args.steps_per_generation == 3


def test_sft_kl_recipe_parses_into_sft_kl_config(tmp_path, assets):
    path = recipe(tmp_path, assets, trainer="sft_kl", num_generations=None, max_completion_length=None, kl_coef=0.5)
    _, args, _ = parse_args(["--config", path])
    assert type(args).__name__ == "SFTKLConfig" and args.kl_coef == 0.5


def test_colocated_vllm_gets_the_config_overrides(tmp_path, assets, monkeypatch):
    """`model_config_overrides` reach TRL's colocated vLLM engine as `hf_overrides` (vLLM itself is faked)."""
    from trl.generation import vllm_generation

    from srft_trainer.train import build_trainer, load_split

    built = []

    class FakeLLM:
        def __init__(self, **kwargs):
            built.append(kwargs)

    monkeypatch.setattr(vllm_generation, "is_vllm_available", lambda: True)
    monkeypatch.setattr(vllm_generation, "LLM", FakeLLM, raising=False)
    monkeypatch.setattr("srft_trainer.trainer.check_vllm_setup", lambda args: None)  # a GPU build, as it were
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):  # set by TRL's colocate mode
        monkeypatch.delenv(var, raising=False)
    overrides = {"rope_theta": 40000.0, "max_position_embeddings": 1024}
    path = recipe(tmp_path, assets, use_vllm=True, vllm_mode="colocate", model_config_overrides=overrides)
    script_args, args, model_args = parse_args(["--config", path])
    trainer = build_trainer(script_args, args, model_args, load_split(script_args.dataset_name, "train"), None)
    assert len(built) == 1 and built[0]["model"] == str(assets / "model")
    hf = built[0]["hf_overrides"]
    assert hf["max_position_embeddings"] == 1024 and hf["rope_parameters"]["rope_theta"] == 40000.0
    assert trainer.model.config.rope_parameters["rope_theta"] == 40000.0  # the policy trains with the same
    assert vllm_generation.LLM is FakeLLM  # the hook is gone once the trainer is built
    assert vllm_generation.VLLMGeneration._init_vllm.__module__ == "trl.generation.vllm_generation"
    assert "dtype" not in built[0] and "kv_cache_memory_bytes" not in built[0]  # CPU-only arguments stay out


def test_sft_kl_short_run(tmp_path, assets):
    path = recipe(tmp_path, assets, trainer="sft_kl", num_generations=None, max_completion_length=None, max_length=64)
    assert cli.main(["train", "--config", path, "--kl_coef", "0.2"]) == 0
    state = json.loads((tmp_path / "out" / "trainer_state.json").read_text())
    kls = [entry["kl"] for entry in state["log_history"] if "kl" in entry]
    assert len(kls) == 2 and kls[0] == pytest.approx(0.0, abs=1e-6) and kls[1] > 0  # policy == base at step 0


def test_sft_then_grpo_starts_from_the_sft_output(tmp_path, assets):
    from transformers import AutoModelForCausalLM

    sft_out = tmp_path / "sft"
    sft = recipe(
        tmp_path / "a",
        assets,
        trainer="sft",
        num_generations=None,
        max_completion_length=None,
        max_length=64,
        output_dir=str(sft_out),
        learning_rate=0.05,
    )
    assert cli.main(["train", "--config", sft]) == 0
    grpo = recipe(
        tmp_path / "b",
        assets,
        trainer="grpo",
        model_name_or_path=str(sft_out),
        max_steps=1,
        max_completion_length=12,
        reward_funcs=["trainer_utils.length_reward"],  # varies among rollouts
    )
    assert cli.main(["train", "--config", grpo]) == 0

    def distance(a, b):
        return max((x - y).abs().max().item() for x, y in zip(a.parameters(), b.parameters()))

    base = AutoModelForCausalLM.from_pretrained(assets / "model")
    after_sft = AutoModelForCausalLM.from_pretrained(sft_out)
    after_rl = AutoModelForCausalLM.from_pretrained(tmp_path / "b" / "out")
    # SFT moved the weights (2 Adam steps of lr 0.05); GRPO moved them further by about one step of lr 0.01
    assert distance(after_sft, base) > 0.05
    assert 0 < distance(after_rl, after_sft) < 0.02 < distance(after_rl, base)


def test_heldout_size_zero_skips_the_scoring(tmp_path, assets, caplog):
    """`--heldout_size 0` is the way to skip the held-out score: no table, no heldout_accuracy.json, one line."""
    path = recipe(tmp_path, assets, heldout_dataset=str(assets / "train.jsonl"), max_steps=1)
    with caplog.at_level("WARNING", logger="srft_trainer.train"):
        assert cli.main(["train", "--config", path, "--heldout_size", "0"]) == 0
    assert not (tmp_path / "out" / "heldout_accuracy.json").exists()
    assert any("Held-out scoring skipped" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="`heldout_size` must be >= 0"):
        parse_args(["--config", path, "--heldout_size", "-1"])


def test_heldout_split_smaller_than_processes_is_scored(tmp_path, assets):
    """One held-out problem still scores (and a split of fewer problems than processes gives empty shares)."""
    (tmp_path / "one.jsonl").write_text((assets / "train.jsonl").read_text().splitlines()[0] + "\n")
    path = recipe(tmp_path, assets, heldout_dataset=str(tmp_path / "one.jsonl"), max_steps=1)
    assert cli.main(["train", "--config", path]) == 0
    result = json.loads((tmp_path / "out" / "heldout_accuracy.json").read_text())
    assert result["heldout_size"] == 1 and 0.0 <= result["before"] <= 1.0


# Each of `srft train`'s own fields at 0 / empty / its smallest value: it runs, or fails before step 1 naming it.
EDGE_VALUES = {
    "dataset_name": [""],
    "dataset_config": [""],
    "dataset_train_split": ["", "nope"],
    "dataset_test_split": [""],
    "dataset_streaming": [True],
    "ignore_bias_buffers": [True],
    "trainer": [""],
    "reward_funcs": [[]],
    "eval_dataset_name": [""],
    "model_config_overrides": ["", "{}", "[]"],
    "toy_world": [""],
    "toy_task": [""],
    "heldout_dataset": [""],
    "heldout_fraction": [0.0, 1e-9, 1.0],
    "heldout_size": [0, -1, 1],
    "heldout_before": [False],
    "heldout_every": [0, -1, 1],
    "plot_curves": [False],
}


def test_every_own_field_has_edge_values():
    from dataclasses import fields

    from srft_trainer.recipe import SRFTScriptArguments

    assert {f.name for f in fields(SRFTScriptArguments)} == set(EDGE_VALUES)


@pytest.mark.parametrize(
    "name, value", [(name, value) for name, values in EDGE_VALUES.items() for value in values], ids=str
)
def test_own_fields_at_their_edges_run_or_fail_naming_the_field(tmp_path, assets, capsys, monkeypatch, name, value):
    import srft_trainer.train as train_module

    started = []
    monkeypatch.setattr(train_module, "build_trainer", lambda *a, **k: started.append(1) or pytest.skip("reached"))
    path = recipe(tmp_path, assets, **{"heldout_dataset": str(assets / "train.jsonl"), name: value})
    try:
        code = cli.main(["train", "--config", path])
    except pytest.skip.Exception:
        return  # the run would start: the value is accepted (build_trainer is where the weights load)
    except (ValueError, FileNotFoundError, TypeError, OSError) as err:
        message = str(err)
    else:
        message = capsys.readouterr().err
        assert code != 0 or started, "a run that neither started nor failed"
    # A refusal names the field (or, for a value that names something, the thing it named).
    assert name in message or (isinstance(value, str) and value and value in message), message
