"""The data checks `srft train` runs before step 1 and `srft check` offline: columns, demo types, JSON lines."""

import json
import time

import pytest
import yaml
from datasets import Dataset
from tiny import tiny_model, tiny_tokenizer

from srft_trainer import cli
from srft_trainer.check import check_recipe
from srft_trainer.data import load_source
from srft_trainer.data_checks import DataError, check_demo_types, check_training_data, required_columns, reward_columns
from srft_trainer.grading import accuracy_reward


ROW = {"prompt": [{"role": "user", "content": "1+1="}], "completion": "\\boxed{2}", "solution": "2"}


def _from_jsonl(tmp_path, demos):
    path = tmp_path / f"demos-{len(list(tmp_path.iterdir()))}.jsonl"
    path.write_text("".join(json.dumps({"prompt": "p", "completion": demo}) + "\n" for demo in demos))
    return load_source(str(path))


def test_reward_columns_come_from_the_reward_signatures():
    def needs_two(completions, solution, difficulty, weight=1.0, **kwargs):
        return [0.0] * len(completions)

    def needs_none(prompts, completions, completion_ids, trainer_state, **kwargs):
        return [0.0] * len(completions)

    assert reward_columns([accuracy_reward, needs_two, needs_none]) == {
        "solution": ["accuracy_reward", "needs_two"],
        "difficulty": ["needs_two"],
    }
    assert required_columns("srft", "demo", [accuracy_reward]) == {
        "prompt": "every trainer",
        "demo": "the demonstrations (`demo_column: demo`)",
        "solution": "reward function `accuracy_reward`",
    }
    assert "demo" not in required_columns("srft", "demo", [], demos=False)  # num_demos_per_group: 0
    assert required_columns("sft", "completion", [accuracy_reward]) == {
        "prompt": "every trainer",
        "completion": "the demonstrations (`demo_column: completion`)",
    }


def test_missing_columns_are_named_with_who_needs_them():
    data = Dataset.from_list([{"prompt": "1+1=", "completion": "2"}])
    with pytest.raises(
        DataError, match=r"lacks column\(s\) `solution` \(needed by reward function `accuracy_reward`\)"
    ):
        check_training_data(data, "train.jsonl", "srft", "completion", [accuracy_reward])
    check_training_data(data, "train.jsonl", "sft", "completion", [])  # SFT reads no reward column


@pytest.mark.parametrize(
    "values, rows",
    [
        (["a", 5, "c", 7], "rows 1, 3"),  # mixed types: datasets' Json feature, read row by row
        ([[{"role": "assistant", "content": "a"}], [{"content": "no role"}]], "rows 1"),
        (["a", ["b", 3]], "rows 1"),  # a list of several demonstrations with a number among them
    ],
)
def test_a_wrong_demonstration_is_named_by_its_row(tmp_path, values, rows):
    data = _from_jsonl(tmp_path, values)  # as a user's file loads (mixed types only load from JSON)
    with pytest.raises(DataError, match=rf"{rows};"):
        check_demo_types(data, "completion", "train.jsonl")


def test_a_column_of_numbers_is_not_demonstrations(tmp_path):
    data = _from_jsonl(tmp_path, [None, 3])
    with pytest.raises(DataError, match=r"holds int64 values \(row 1: 3\)"):
        check_demo_types(data, "completion", "train.jsonl")


def test_good_demonstrations_pass(tmp_path):
    messages = [{"role": "assistant", "content": "a"}]
    for values in (["a", None, ""], [messages, messages], [["a", "b"], []], [[messages, messages], [messages]]):
        check_demo_types(_from_jsonl(tmp_path, values), "completion", "x")


def test_the_check_is_cheap_on_a_paper_sized_file(capsys):
    """46k rows (the paper's data set) of message-list demonstrations, checked row by row; strings cost nothing."""
    messages = [{"role": "assistant", "content": "<think>\n" + "step\n" * 200 + "</think>\n\\boxed{1}"}]
    rows = [{"prompt": [{"role": "user", "content": f"{i}"}], "completion": messages, "solution": "1"}
            for i in range(46_000)]  # fmt: skip
    data = Dataset.from_list(rows)
    start = time.perf_counter()
    check_training_data(data, "46k rows", "srft", "completion", [accuracy_reward])
    elapsed = time.perf_counter() - start
    strings = Dataset.from_list([dict(row, completion=messages[0]["content"]) for row in rows])
    start = time.perf_counter()
    check_training_data(strings, "46k rows", "srft", "completion", [accuracy_reward])
    with capsys.disabled():
        print(f"\n46,000 rows: message lists {elapsed:.2f} s, strings {time.perf_counter() - start:.3f} s")


def test_invalid_json_is_reported_with_its_line(tmp_path):
    lines = [json.dumps(ROW), json.dumps(ROW), '{"prompt": "x", "completion": "y" "solution": "1"}', json.dumps(ROW)]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"train.jsonl: line 3, column 35: Expecting ',' delimiter"):
        load_source(str(path))
    array = tmp_path / "train.json"
    array.write_text("[\n" + json.dumps(ROW) + ",\n" + json.dumps(ROW) + "\n\n")  # the closing bracket is missing
    with pytest.raises(ValueError, match=r"train.json: line 5, column 1: Expecting ',' delimiter"):  # at the end
        load_source(str(array))


@pytest.fixture
def model_dir(tmp_path):
    tok = tiny_tokenizer()
    tiny_model(tok).save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def _recipe(tmp_path, model_dir, data_rows, raw_lines=None) -> str:
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(raw_lines or [json.dumps(r) for r in data_rows]) + "\n")
    body = dict(model_name_or_path=str(model_dir), dataset_name=str(data), output_dir=str(tmp_path / "out"),
                use_cpu=True, bf16=False, per_device_train_batch_size=4, num_generations=4, max_completion_length=16,
                max_steps=1, report_to="none", save_strategy="no")  # fmt: skip
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(body))
    return str(tmp_path / "recipe.yaml")


@pytest.mark.parametrize(
    "rows, raw, message",
    [
        ([{k: v for k, v in ROW.items() if k != "solution"}] * 4, None, r"lacks column\(s\) `solution`"),
        ([ROW, ROW, dict(ROW, completion=7), ROW], None, r"rows 2;"),
        (None, [json.dumps(ROW), json.dumps(ROW), "{not json}"], r"line 3, column 2"),
    ],
    ids=["no-solution", "demo-type", "bad-json"],
)
def test_train_and_check_stop_before_loading_weights(tmp_path, model_dir, rows, raw, message):
    path = _recipe(tmp_path, model_dir, rows, raw)
    (model_dir / "model.safetensors").unlink()  # any attempt to load weights would fail with another error
    with pytest.raises(ValueError, match=message):
        cli.main(["train", "--config", path])
    report = check_recipe(path)
    assert [name for name, _ in report.problems] == ["data"], report.format()
    assert __import__("re").search(message, report.problems[0][1])
