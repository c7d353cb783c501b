"""The offline toy world: task, tokenizer, world building and the shipped base model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from srft_trainer.grading import accuracy_reward
from srft_trainer.toy import (
    LEVELS,
    ToyModelSettings,
    ToyWorldSettings,
    build_char_tokenizer,
    build_toy_world,
    evaluate_heldout,
    make_splits,
    pretrain_base,
)
from srft_trainer.toy.task import sample_problems
from srft_trainer.toy.world import SHIPPED_BASE_DIR, shipped_base_info


STEP = re.compile(r"^(\d+)([-+*])(\d+)\+(\d+)=(\d+)$|^(\d+)-(\d+)-(\d+)=(\d+)$")


def check_demo(question: str, demo: str, answer: int) -> None:
    """Independent check of one demonstration: format, every column step's arithmetic, and the final answer."""
    assert demo.startswith("<think>\n ") and "</think>\n\\boxed{" in demo
    assert demo.endswith(f"\\boxed{{{answer}}}")
    assert eval(question) == answer  # noqa: S307 - questions are generated digit strings and + - *
    body = demo[len("<think>\n ") : demo.index(" </think>")]
    for step in body.split("\n "):
        if step.startswith("so "):
            continue
        if re.fullmatch(r"\d+\+\d+", step):  # the "p+c" line that opens the addition of a mul-add
            continue
        lhs, rhs = step.split("=")
        assert eval(lhs) == int(rhs), step  # noqa: S307


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_demonstrations_are_correct(level):
    import random

    for problem in sample_problems(level, 200, random.Random(level)):
        check_demo(problem.question, problem.demonstration, problem.answer)
        # The reward the recipes train with scores the demonstration 1 and a wrong answer 0.
        assert accuracy_reward([problem.demonstration], [str(problem.answer)]) == [1.0]


def test_reward_rejects_wrong_answer():
    assert accuracy_reward(["<think>\n 1+1+0=2\n so 2 </think>\n\\boxed{3}"], ["2"]) == [0.0]


def test_splits_are_deterministic_and_disjoint():
    a = make_splits(seed=3, train_per_level=50, heldout_per_level=20, pretrain_per_level=30)
    b = make_splits(seed=3, train_per_level=50, heldout_per_level=20, pretrain_per_level=30)
    assert a["train"].to_list() == b["train"].to_list() and a["heldout"].to_list() == b["heldout"].to_list()
    questions = {name: {row[-1]["content"] for row in a[name]["prompt"]} for name in a}
    assert len(questions["train"]) == 50 * len(LEVELS) and len(questions["heldout"]) == 20 * len(LEVELS)
    assert not questions["train"] & questions["heldout"]
    assert not questions["pretrain"] & (questions["train"] | questions["heldout"])
    assert make_splits(seed=4, train_per_level=50, heldout_per_level=20)["heldout"]["prompt"] != a["heldout"]["prompt"]


def test_tokenizer_roundtrips_through_a_qwen2_folder(tmp_path):
    """Saved next to a qwen2 config, the tokenizer reloads with AutoTokenizer and keeps every space and newline."""
    tokenizer = build_char_tokenizer()
    text = "<think>\n 8+5+0=13\n so 13 </think>\n\\boxed{13} é ✓"
    ids = tokenizer(text)["input_ids"]
    assert len(ids) == len(text.encode())  # one token per byte
    model = AutoModelForCausalLM.from_config(
        __import__("srft_trainer.toy", fromlist=["toy_model_config"]).toy_model_config(tokenizer)
    )
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded(text)["input_ids"] == ids
    assert reloaded.decode(ids) == text
    chat = reloaded.apply_chat_template(
        [{"role": "user", "content": "What is 1+2?"}], tokenize=False, add_generation_prompt=True
    )
    assert chat == "<|im_start|>user\nWhat is 1+2?<|im_end|>\n<|im_start|>assistant\n"
    assert reloaded.eos_token == "<|im_end|>" and reloaded.padding_side == "left"


def test_build_toy_world_uses_the_shipped_base(tmp_path):
    info = shipped_base_info()
    assert info is not None, f"the shipped base model is missing from {SHIPPED_BASE_DIR}"
    assert info["fingerprint"] == ToyWorldSettings().fingerprint(), "rebuild it: python scripts/build_toy_base.py"
    world = build_toy_world(tmp_path / "w")
    assert world.base_origin == "shipped"
    assert (world.model_dir / "model.safetensors").is_file() and (world.model_dir / "config.json").is_file()
    assert len(world.load_train()) == 2000 * len(LEVELS) and len(world.load_heldout()) == 100 * len(LEVELS)
    manifest = json.loads((world.root / "toy_world.json").read_text())
    assert manifest["fingerprint"] == ToyWorldSettings().fingerprint()
    again = build_toy_world(tmp_path / "w")  # reused, not rebuilt
    assert again == world
    with pytest.raises(ValueError, match="other settings"):
        build_toy_world(tmp_path / "w", seed=1)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a toy world"):
        build_toy_world(tmp_path / "busy")


def test_a_process_that_loses_the_build_race_keeps_the_winners_world(tmp_path, monkeypatch):
    """Two processes build one world at once: the one that finishes second must not delete the world the first one
    already reads (this failed a two-process vLLM test: rank 0's train.jsonl vanished under it)."""
    from srft_trainer.toy import world as world_module

    real_splits, winner = world_module.world_splits, []

    def splits_while_another_process_finishes(*args, **kwargs):
        if not winner:  # the other process starts after us and renames its world into place before we finish
            winner.append(None)
            winner[0] = build_toy_world(tmp_path / "w")
            winner.append(winner[0].train_file.stat().st_ino)
        return real_splits(*args, **kwargs)

    monkeypatch.setattr(world_module, "world_splits", splits_while_another_process_finishes)
    loser = build_toy_world(tmp_path / "w")
    first, inode = winner
    assert loser == first and first.train_file.stat().st_ino == inode, "the first process's files were replaced"
    assert [p.name for p in tmp_path.iterdir()] == ["w"], "the losing build's staging folder was left behind"


def test_replacing_a_world_never_shows_a_half_deleted_folder(tmp_path):
    from srft_trainer.toy.world import _replace

    root, staging = tmp_path / "w", tmp_path / ".w-new"
    root.mkdir()
    (root / "toy_world.json").write_text("{}")
    staging.mkdir()
    (staging / "toy_world.json").write_text('{"new": 1}')
    _replace(root, staging)
    assert json.loads((root / "toy_world.json").read_text()) == {"new": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["w"]


def test_apply_toy_world_builds_under_the_training_arguments_main_process_first(tmp_path, monkeypatch):
    """Under a two-process CPU launch only the training arguments' state knows there are two processes."""
    from contextlib import contextmanager

    from srft_trainer.train import apply_toy_world, parse_args

    script_args, training_args, model_args = parse_args(
        ["--config", "recipes/toy/grpo.yaml", "--toy_world", str(tmp_path / "w"), "--output_dir", str(tmp_path / "o")]
    )
    entered = []

    @contextmanager
    def recording(self, local=True, desc="work"):
        entered.append(desc)
        yield

    monkeypatch.setattr(type(training_args), "main_process_first", recording)
    apply_toy_world(script_args, training_args, model_args)
    assert entered == ["toy world"]
    assert model_args.model_name_or_path == str(tmp_path / "w" / "base")


def test_shipped_base_accuracy_is_in_the_documented_range():
    """README: greedy held-out accuracy of the base model is between 5% and 30%, and not the same on every level."""
    world_heldout = make_splits(seed=0, train_per_level=1, heldout_per_level=100)["heldout"]
    result = evaluate_heldout(SHIPPED_BASE_DIR, None, world_heldout.select(range(200)))
    assert 0.05 <= result.accuracy <= 0.30, result.accuracy
    recorded = shipped_base_info()["heldout_accuracy_greedy"]  # on all 500, when the model was built
    assert abs(result.accuracy - recorded) < 0.08
    assert max(result.per_level.values()) > min(result.per_level.values())


def test_pretrain_base_writes_a_loadable_model_folder(tmp_path):
    splits = make_splits(seed=0, train_per_level=1, heldout_per_level=1, pretrain_per_level=8)
    settings = ToyModelSettings(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=32,
        pretrain_steps=2,
        pretrain_batch_size=4,
    )
    out = pretrain_base(tmp_path / "base", build_char_tokenizer(), splits["pretrain"], settings)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.hidden_size == 16 and model.generation_config.eos_token_id == model.config.eos_token_id
    result = evaluate_heldout(out, None, splits["heldout"], max_new_tokens=8)
    assert result.n == len(LEVELS) and set(result.per_level) == set(LEVELS)
    assert all(r in (0.0, 1.0) for r in result.rewards)


def test_pretrain_checkpoints_are_the_bases_of_shorter_runs(tmp_path):
    """scripts/sweep_toy_base.py relies on it: checkpoint k of a long run is the model `pretrain_steps=k` gives."""
    import torch

    splits = make_splits(seed=0, train_per_level=1, heldout_per_level=1, pretrain_per_level=8)
    tiny = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1)
    tiny["intermediate_size"] = 32
    tokenizer = build_char_tokenizer()
    long = ToyModelSettings(**tiny, pretrain_steps=3, pretrain_batch_size=4)
    out = pretrain_base(tmp_path / "long", tokenizer, splits["pretrain"], long, checkpoint_every=2)
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]
    short = ToyModelSettings(**tiny, pretrain_steps=2, pretrain_batch_size=4)
    short_dir = pretrain_base(tmp_path / "short", tokenizer, splits["pretrain"], short)
    at_2 = AutoModelForCausalLM.from_pretrained(out / "checkpoints" / "checkpoint-2").state_dict()
    final_short = AutoModelForCausalLM.from_pretrained(short_dir).state_dict()
    final_long = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert all(torch.allclose(at_2[k], final_short[k]) for k in final_short)
    assert not all(torch.equal(at_2[k], final_long[k]) for k in final_long)  # the third step did change the model
    with pytest.raises(ValueError, match="checkpoint_every"):
        pretrain_base(tmp_path / "x", tokenizer, splits["pretrain"], short, checkpoint_every=0)


def test_evaluate_heldout_restores_training_mode_and_rng(tmp_path):
    import torch

    splits = make_splits(seed=0, train_per_level=1, heldout_per_level=2)
    tokenizer = build_char_tokenizer()
    model = AutoModelForCausalLM.from_pretrained(SHIPPED_BASE_DIR)
    model.train()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    evaluate_heldout(model, tokenizer, splits["heldout"], temperature=1.0, max_new_tokens=16)
    assert model.training
    assert torch.equal(torch.rand(3), expected)
    with pytest.raises(ValueError, match="`solution` column"):
        evaluate_heldout(model, tokenizer, splits["heldout"].remove_columns("solution"))


RECIPE_DIR = Path(__file__).parents[1] / "recipes" / "toy"
TOY_RECIPES = sorted(p for p in RECIPE_DIR.glob("*.yaml") if p.name != "arena.yaml")  # arena files: test_arena.py


@pytest.mark.parametrize("recipe", TOY_RECIPES, ids=lambda p: p.stem)
def test_toy_recipe_runs_a_few_steps(recipe, tmp_path, capsys):
    """Each toy recipe parses and trains end to end through `srft train`, with a 2-step budget."""
    from srft_trainer.train import main

    out = tmp_path / "out"
    argv = [
        "--config",
        str(recipe),
        "--toy_world",
        str(tmp_path / "world"),
        "--output_dir",
        str(out),
        "--max_steps",
        "2",
        "--logging_steps",
        "1",
        "--heldout_size",
        "4",
        "--per_device_train_batch_size",
        "16",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    trainer = yaml.safe_load(recipe.read_text())["trainer"]
    assert f"| {trainer} |" in printed and "held-out accuracy (4 problems)" in printed
    result = json.loads((out / "heldout_accuracy.json").read_text())
    assert result["trainer"] == trainer and 0.0 <= result["after"] <= 1.0
    assert (out / "model.safetensors").is_file() and (out / "training_curves.png").is_file()
    assert (
        AutoTokenizer.from_pretrained(out).decode(AutoTokenizer.from_pretrained(out)("a b\nc")["input_ids"])
        == "a b\nc"
    )


def test_toy_recipes_share_one_budget():
    recipes = {p.stem: yaml.safe_load(p.read_text()) for p in TOY_RECIPES}
    assert set(recipes) == {"srft", "srft_official", "grpo", "sft"}
    for key in (
        "max_steps",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "learning_rate",
        "lr_scheduler_type",
        "seed",
        "heldout_size",
    ):
        assert len({r[key] for r in recipes.values()}) == 1, key


def test_example_notebook_runs(tmp_path):
    """examples/toy_srft.py (a percent-format notebook) runs top to bottom with a tiny budget."""
    import subprocess
    import sys

    script = Path(__file__).parents[1] / "examples" / "toy_srft.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--max-steps", "2", "--heldout-size", "4", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "held-out accuracy (4 problems, greedy): before" in proc.stdout


def test_sft_kl_and_sft_then_grpo_on_the_toy_world(tmp_path):
    """The two-model baselines of the paper table run on the toy world: SFT_KL, and GRPO from an SFT output."""
    from srft_trainer.train import main

    world = str(tmp_path / "world")
    common = ["--toy_world", world, "--max_steps", "2", "--logging_steps", "1", "--heldout_size", "4",
              "--per_device_train_batch_size", "16"]  # fmt: skip
    sft_kl = tmp_path / "sft_kl"
    sft_argv = ["--config", str(RECIPE_DIR / "sft.yaml"), "--trainer", "sft_kl", "--output_dir", str(sft_kl)]
    assert main([*sft_argv, *common]) == 0
    state = json.loads((sft_kl / "trainer_state.json").read_text())
    assert any("kl" in log for log in state["log_history"])
    grpo = tmp_path / "grpo"
    grpo_argv = ["--config", str(RECIPE_DIR / "grpo.yaml"), "--model_name_or_path", str(sft_kl)]
    grpo_argv += ["--output_dir", str(grpo)]
    assert main([*grpo_argv, *common]) == 0
    result = json.loads((grpo / "heldout_accuracy.json").read_text())
    assert result["trainer"] == "grpo" and (grpo / "model.safetensors").is_file()
