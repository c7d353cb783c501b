"""`srft train`: recipes parse, bad input fails before training with a message naming the key or path, runs finish."""

import json

import pytest
import yaml
from tiny import tiny_model, tiny_tokenizer
from trainer_utils import demo_for

from srft_trainer import cli
from srft_trainer.train import parse_args


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("assets")
    tok = tiny_tokenizer()
    tiny_model(tok).save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    rows = [
        {"prompt": [{"role": "user", "content": f"{a}+{a}="}], "completion": demo_for(a, a), "solution": str(2 * a)}
        for a in range(1, 9)
    ]
    with open(root / "train.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return root


def recipe(tmp_path, assets, **overrides):
    body = dict(
        model_name_or_path=str(assets / "model"),
        dataset_name=str(assets / "train.jsonl"),
        output_dir=str(tmp_path / "out"),
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=40,
        max_steps=2,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        learning_rate=0.01,
    )
    body.update(overrides)
    body = {k: v for k, v in body.items() if v is not None}
    path = tmp_path / "recipe.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(body))
    return str(path)


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


def test_missing_recipe_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such.yaml"):
        cli.main(["train", "--config", str(tmp_path / "no-such.yaml")])


@pytest.mark.parametrize("trainer", ["srft", "grpo", "sft"])
def test_short_runs_save_model_card_and_curves(tmp_path, assets, trainer):
    extra = {"trainer": trainer}
    if trainer == "sft":  # SFTConfig has no GRPO fields
        extra.update(num_generations=None, max_completion_length=None, max_length=64)
    assert cli.main(["train", "--config", recipe(tmp_path, assets, **extra)]) == 0
    out = tmp_path / "out"
    assert (out / "config.json").exists() and (out / "tokenizer.json").exists()
    card = (out / "README.md").read_text()
    assert ("srft" in card) == (trainer == "srft")
    assert (out / "training_curves.png").stat().st_size > 1000
