"""Your own data, measured: a held-out score for any recipe, `srft eval --data`, a card naming what it trained on."""

import json
import os
import random
import signal
from pathlib import Path

import pytest
import yaml
from datasets import Dataset
from tiny import tiny_model, tiny_tokenizer
from trainer_utils import config, length_reward, make_dataset
from transformers import TrainerCallback

import srft_trainer.toy as toy
import srft_trainer.train as train_module
from srft_trainer import SRFTTrainer, cli
from srft_trainer.data.heldout import split_heldout
from srft_trainer.data_checks import DataError, check_columns
from srft_trainer.toy.task import problems_to_dataset, sample_problems


BASE = Path(toy.__file__).parent / "base_model"  # the shipped toy base: a real model that solves some sums


@pytest.fixture(scope="module")
def user_file(tmp_path_factory):
    """A user-style .jsonl in the training layout (prompt messages, completion, solution), 40 rows."""
    rng = random.Random(7)
    rows = problems_to_dataset(sample_problems(1, 20, rng) + sample_problems(2, 20, rng)).remove_columns("level")
    path = tmp_path_factory.mktemp("data") / "sums.jsonl"
    rows.to_json(str(path), lines=True)
    return path


def _recipe(tmp_path, user_file, **overrides):
    body = dict(
        model_name_or_path=str(BASE),
        dataset_name=str(user_file),
        output_dir=str(tmp_path / "out"),
        heldout_fraction=0.25,
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=64,
        max_steps=1,
        learning_rate=1e-5,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
    )
    body.update(overrides)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(body))
    return str(path)


def test_split_heldout_is_fixed_disjoint_and_complete():
    data = Dataset.from_list([{"prompt": str(i)} for i in range(40)])
    train, heldout = split_heldout(data, 0.25)
    again = split_heldout(data, 0.25)[1]
    assert len(heldout) == 10 and heldout["prompt"] == again["prompt"]
    assert set(train["prompt"]).isdisjoint(heldout["prompt"])
    assert set(train["prompt"]) | set(heldout["prompt"]) == set(data["prompt"])
    with pytest.raises(ValueError, match="heldout_fraction"):
        split_heldout(data.select(range(1)), 0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_heldout(data, 1.0)


@pytest.mark.slow
def test_heldout_fraction_scores_keeps_rows_out_and_eval_data_agrees(tmp_path, user_file, monkeypatch, capsys):
    trained_on = []
    build = train_module.build_trainer

    def recording_build(script_args, training_args, model_args, train_dataset, eval_dataset):
        trained_on.extend(json.dumps(p) for p in train_dataset["prompt"])
        return build(script_args, training_args, model_args, train_dataset, eval_dataset)

    monkeypatch.setattr(train_module, "build_trainer", recording_build)
    assert cli.main(["train", "--config", _recipe(tmp_path, user_file)]) == 0
    said = capsys.readouterr().out
    out = tmp_path / "out"
    assert "Scoring the model before training: 10 held-out problems" in said
    assert "| held-out accuracy (10 problems) | before | after |" in said
    result = json.loads((out / "heldout_accuracy.json").read_text())
    heldout = [json.loads(line) for line in (out / "heldout.jsonl").read_text().splitlines()]
    assert len(heldout) == 10 and len(trained_on) == 30
    assert {json.dumps(r["prompt"]) for r in heldout}.isdisjoint(trained_on)
    card = (out / "README.md").read_text()
    assert "10 problems of 10 rows cut from" in card and f"- data: {user_file}" in card

    # The same file through `srft eval --data`: the same grader, greedy, the same accuracy.
    code = cli.main(
        ["eval", "--model", str(out), "--data", str(out / "heldout.jsonl"), "--output-dir", str(tmp_path / "eval"),
         "--backend", "transformers", "--max-new-tokens", "160", "--batch-size", "64"]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    scores = summary["benchmarks"]["heldout"]
    assert scores["problems"] == 10 and scores["metric"] == "pass@1"
    assert scores["accuracy"] == pytest.approx(100 * result["after"])
    assert result["before"] > 0.0  # the toy base solves some of these: the comparison is not 0 == 0


def test_eval_data_and_missing_paths_say_what_is_wrong(tmp_path, capsys, monkeypatch):
    assert cli.main(["eval", "--model", str(tmp_path / "no-such-model"), "--data", "x.jsonl",
                     "--output-dir", str(tmp_path / "e")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "no such local folder" in err and "huggingface.co" not in err
    # `outputs/custom-srf` would be a valid Hub id, but `outputs/` is a local folder: a mistyped run folder.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").mkdir()
    assert cli.main(["eval", "--model", "outputs/custom-srf", "--output-dir", str(tmp_path / "e")]) == 2
    assert "'outputs/custom-srf': no such local folder" in capsys.readouterr().err
    assert cli.main(["eval", "--model", str(BASE), "--data", str(tmp_path / "none.jsonl"),
                     "--output-dir", str(tmp_path / "e")]) == 2  # fmt: skip
    assert "no such file" in capsys.readouterr().err
    assert cli.main(["eval", "--model", str(BASE), "--benchmarks", "sums", "--output-dir", str(tmp_path / "e")]) == 2
    assert "--data FILE" in capsys.readouterr().err


def test_greedy_scoring_of_a_model_with_top_k_zero_does_not_warn(tmp_path, caplog):
    """The toy base (like many checkpoints) saves `top_k: 0`; greedy scoring must not merge it in and warn."""
    assert json.loads((BASE / "generation_config.json").read_text())["top_k"] == 0
    rows = problems_to_dataset(sample_problems(1, 4, random.Random(0)))
    with caplog.at_level("WARNING"):
        toy.evaluate_heldout(str(BASE), None, rows, max_new_tokens=16)
    assert not [r for r in caplog.records if "generation flags" in r.getMessage()]


def test_missing_solution_names_a_similar_column():
    data = Dataset.from_list([{"prompt": "q", "answer": "4"}])
    with pytest.raises(DataError, match=r"rename `answer` -> `solution`"):
        check_columns(data, {"solution": "reward function `accuracy_reward`"}, "sums.jsonl")


class SigtermAtStep1(TrainerCallback):
    """Pre-emption, as Slurm sends it: SIGTERM during step 1."""

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == 0:
            os.kill(os.getpid(), signal.SIGTERM)


def test_card_from_python_names_the_data_and_the_checkpoint_weights(tmp_path):
    tok = tiny_tokenizer()
    model = tiny_model(tok)
    args = config(tmp_path, max_steps=3, save_strategy="steps", save_steps=10)
    trainer = SRFTTrainer(model, [length_reward], args, make_dataset(), processing_class=tok)
    trainer.add_callback(SigtermAtStep1())
    trainer.train()
    assert trainer.state.global_step == 1 and (tmp_path / "checkpoint-1").is_dir()
    card = (tmp_path / "README.md").read_text()
    # Written with checkpoint-1 at SIGTERM, when no final model follows: it says where the weights are.
    assert "- data: a data set of 8 rows passed from Python (columns: prompt, completion, solution)" in card
    assert "- weights: in `checkpoint-1/`" in card and "on a data set of 8 rows passed from Python" in card
    trainer.save_model(str(tmp_path / "final"))
    trainer.create_model_card()
    assert "- weights:" not in (tmp_path / "README.md").read_text()


def test_eval_data_with_the_recipes_reward_functions(tmp_path, user_file):
    """`--reward accuracy` (or a recipe's `reward_funcs`) scores as the math grader does, plus the mean reward."""
    common = ["eval", "--model", str(BASE), "--data", str(user_file), "--limit", "8", "--backend", "transformers",
              "--max-new-tokens", "96", "--batch-size", "8"]  # fmt: skip
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"reward_funcs": ["accuracy"], "reward_weights": [2.0]}))
    runs = {
        "grader": [],
        "reward": ["--reward", "accuracy"],
        "recipe": ["--recipe", str(recipe)],
    }
    scores = {}
    for name, extra in runs.items():
        assert cli.main([*common, *extra, "--output-dir", str(tmp_path / name)]) == 0
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        scores[name] = summary["benchmarks"]["sums"]
    assert scores["grader"]["accuracy"] == scores["reward"]["accuracy"] == scores["recipe"]["accuracy"]
    assert 0 < scores["grader"]["accuracy"]  # the toy base solves some: the agreement is not 0 == 0
    assert "mean_reward" not in scores["grader"]
    assert scores["recipe"]["mean_reward"] == pytest.approx(2 * scores["reward"]["mean_reward"])
    assert cli.main([*common, "--reward", "acuracy", "--output-dir", str(tmp_path / "bad")]) == 2


def test_heldout_every_scores_along_the_way_into_the_curve(tmp_path, user_file, capsys):
    """`heldout_every` scores the held-out problems during training: printed, and saved as `curve` from step 0."""
    assert cli.main(["train", "--config", _recipe(tmp_path, user_file, max_steps=3, heldout_every=2)]) == 0
    said = capsys.readouterr().out
    result = json.loads((tmp_path / "out" / "heldout_accuracy.json").read_text())
    assert [p["step"] for p in result["curve"]] == [0, 2, 3]
    assert result["curve"][0]["accuracy"] == result["before"] and result["curve"][-1]["accuracy"] == result["after"]
    assert f"Held-out accuracy at step 2: {100 * result['curve'][1]['accuracy']:.1f}%" in said
    # Without a before score the curve starts at the first step scored; a negative period fails before step 1.
    recipe = _recipe(tmp_path, user_file, max_steps=2, heldout_every=1, heldout_before=False)
    assert cli.main(["train", "--config", recipe]) == 0
    curve = json.loads((tmp_path / "out" / "heldout_accuracy.json").read_text())["curve"]
    assert [p["step"] for p in curve] == [1, 2]
    assert cli.main(["train", "--config", _recipe(tmp_path, user_file, heldout_every=-1)]) == 2
    assert "`heldout_every` must be >= 0" in capsys.readouterr().err


@pytest.mark.slow
def test_heldout_scored_with_the_recipes_own_reward_functions(tmp_path, user_file, capsys):
    """A recipe whose reward is not `accuracy` is scored with it (correct when the total is > 0), in process as by
    `srft eval --data --reward`: the same number for the same model and problems."""
    reward = "trainer_utils.contains_solution"
    assert cli.main(["train", "--config", _recipe(tmp_path, user_file, reward_funcs=[reward])]) == 0
    said = capsys.readouterr().out
    assert f"greedy, with the reward functions ['{reward}'] (correct when the total reward is > 0)" in said
    out = tmp_path / "out"
    result = json.loads((out / "heldout_accuracy.json").read_text())
    assert result["scored_with"].startswith("the reward functions")
    code = cli.main(["eval", "--model", str(out), "--data", str(out / "heldout.jsonl"), "--reward", reward,
                     "--output-dir", str(tmp_path / "eval"), "--max-new-tokens", "160"])  # fmt: skip
    assert code == 0
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())["benchmarks"]["heldout"]
    assert summary["accuracy"] == pytest.approx(100 * result["after"])
