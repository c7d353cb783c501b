"""Data preparation: LUFFY/verl and OpenR1-Math-220k layouts to the SRFT layout, on fixtures written here."""

import json
import os
from pathlib import Path

import datasets
import pytest
from datasets import Dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny import CHAT_TEMPLATE, tiny_tokenizer

from srft_trainer import cli
from srft_trainer.data import (
    convert_luffy_row,
    convert_openr1_row,
    generation_prompt_opens_think,
    load_source,
    prepare_dataset,
    strip_think_open,
)
from srft_trainer.data.layouts import DEMO_DROPS, FILTERED, MALFORMED
from srft_trainer.prompts import SYSTEM_PROMPT, make_prompt


datasets.disable_progress_bars()
# The same ChatML template, but its generation prompt opens the thought block (like LUFFY's "-think" models).
THINK_TEMPLATE = CHAT_TEMPLATE.replace("assistant\n{% endif %}", "assistant\n<think>\n{% endif %}")
assert THINK_TEMPLATE != CHAT_TEMPLATE
BENCHMARKS = Path(os.environ.get("SRFT_BENCHMARKS_DIR", Path(__file__).resolve().parents[2] / "shared" / "benchmarks"))


def think_tokenizer():
    tokenizer = tiny_tokenizer()
    tokenizer.chat_template = THINK_TEMPLATE
    return tokenizer


def luffy_row(question, demo, answer, system=SYSTEM_PROMPT):
    prompt = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    return {
        "data_source": "openr1",
        "prompt": prompt,
        "target": [{"role": "assistant", "content": demo}],
        "ability": "math",
        "reward_model": {"ground_truth": answer, "style": "rule"},
    }


def openr1_row(problem, answer, generations, correct, complete=None):
    complete = [True] * len(generations) if complete is None else complete
    return {
        "problem": problem,
        "answer": answer,
        "generations": generations,
        "correctness_math_verify": correct,
        "is_reasoning_complete": complete,
    }


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


GOOD_LUFFY = [
    luffy_row("What is 1+1?", "<think>\nadd</think>\n\\boxed{2}", "2"),
    luffy_row("Solve x+1=3.", "<think>\nsubtract</think>\nx = \\boxed{2}", "x=2"),
    luffy_row("Area of a unit circle?", "<think>\npi r^2</think>\n\\boxed{\\pi}", "\\pi", system="Be brief."),
]


def malformed_luffy():
    """One malformed row per case, with the reason each must be counted under."""
    missing_key = luffy_row("q1", "d", "1")
    del missing_key["target"]
    no_reward = luffy_row("q7", "d", "1")
    del no_reward["reward_model"]
    rows = [
        (luffy_row("q0", "d", "1") | {"target": None}, "missing_demo"),
        (missing_key, "missing_demo"),
        (luffy_row("q2", "d", "1") | {"prompt": [{"role": "user", "content": 5}]}, "bad_prompt"),
        (luffy_row("q3", "d", ""), "bad_answer"),
        (luffy_row("q4", "d", "1") | {"target": [[{"role": "assistant", "content": "d"}]]}, "bad_demo"),
        (luffy_row("q5", "d", "1") | {"target": [{"role": "assistant", "content": [{"text": "d"}]}]}, "bad_demo"),
        (luffy_row("q6", "d", "  "), "bad_answer"),
        (no_reward, "bad_answer"),
        (
            luffy_row("q8", "d", "1")
            | {"prompt": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
            "bad_prompt",
        ),
        (luffy_row("", "d", "1"), "bad_prompt"),
    ]
    return rows


class TestLuffyLayout:
    def test_good_rows(self):
        out, summary = prepare_dataset(Dataset.from_list(GOOD_LUFFY), "luffy")
        assert out.column_names == ["prompt", "completion", "solution"]
        assert out["prompt"] == [make_prompt(r["prompt"][-1]["content"]) for r in GOOD_LUFFY]
        assert out["completion"] == [r["target"][0]["content"] for r in GOOD_LUFFY]
        assert out["solution"] == ["2", "x=2", "\\pi"]
        assert (summary.rows_in, summary.rows_out, summary.demos_out) == (3, 3, 3)
        assert summary.prompts_with_other_system == 1  # "Be brief." was replaced by the paper's prompt
        assert not summary.rows_skipped and not summary.demos_dropped

    def test_system_prompt_none_and_custom(self):
        out, _ = prepare_dataset(Dataset.from_list(GOOD_LUFFY[:1]), "luffy", system_prompt=None)
        assert out["prompt"][0] == [{"role": "user", "content": "What is 1+1?"}]
        out, _ = prepare_dataset(Dataset.from_list(GOOD_LUFFY[:1]), "luffy", system_prompt="S")
        assert out["prompt"][0][0] == {"role": "system", "content": "S"}

    def test_malformed_rows_are_counted_from_a_jsonl_file(self, tmp_path):
        bad = malformed_luffy()
        rows = GOOD_LUFFY + [row for row, _ in bad]
        dataset = load_source(str(write_jsonl(tmp_path / "luffy.jsonl", rows)))
        out, summary = prepare_dataset(dataset, "luffy")
        assert out["solution"] == ["2", "x=2", "\\pi"]
        expected = {}
        for index, (_, reason) in enumerate(bad, start=len(GOOD_LUFFY)):
            expected.setdefault(reason, []).append(index)
        assert dict(summary.rows_skipped) == {reason: len(rows) for reason, rows in expected.items()}
        assert summary.skipped_examples == expected
        assert summary.rows_in == summary.rows_out + sum(summary.rows_skipped.values()) == len(rows)
        text = summary.format()
        for reason, count in summary.rows_skipped.items():
            assert f"skipped {count} rows [{reason}]" in text

    def test_strict_mode_raises_naming_reason_and_rows(self):
        rows = GOOD_LUFFY + [malformed_luffy()[3][0]]
        with pytest.raises(ValueError, match=r"1 rows \[bad_answer\] \(e\.g\. rows \[3\]\)"):
            prepare_dataset(Dataset.from_list(rows), "luffy", on_error="raise")

    def test_numeric_answers_from_mixed_json_are_kept_as_text(self, tmp_path):
        # datasets reads a mixed-type JSON column with its `Json` feature, which decodes the string "2" as 2.
        rows = [luffy_row("q", "d", "2"), luffy_row("r", "d", "1") | {"reward_model": {"ground_truth": 3}}]
        out, summary = prepare_dataset(load_source(str(write_jsonl(tmp_path / "m.jsonl", rows))), "luffy")
        assert out["solution"] == ["2", "3"] and summary.rows_out == 2

    def test_plain_string_target_and_string_prompt(self):
        row = {"prompt": "What is 2+2?", "target": "<think>\n4</think>", "reward_model": {"ground_truth": "4"}}
        record = convert_luffy_row(row, SYSTEM_PROMPT)
        assert record["_skip"] == "" and record["demos"] == ["<think>\n4</think>"]
        assert record["prompt"] == make_prompt("What is 2+2?")

    def test_wrong_layout_is_a_clear_error(self):
        with pytest.raises(ValueError, match=r"'openr1' layout needs the column\(s\).*Check `--layout`"):
            prepare_dataset(Dataset.from_list(GOOD_LUFFY), "openr1")


OPENR1 = [
    (
        openr1_row(
            "p0", "1", ["<think>\na</think>1", "<think>\nb</think>2", "<think>\nc</think>1"], [True, False, True]
        ),
        "",
    ),
    (openr1_row("p1", "2", ["x", "y"], [False, False]), "no_verified_demo"),
    (openr1_row("p2", "3", ["<think>\nd", "<think>\ne</think>3"], [True, True], [False, True]), ""),
    (openr1_row("p3", "", ["<think>\nf</think>"], [True]), "bad_answer"),
    (openr1_row("p4", "4", ["g", "h"], [True], [True, True]), "bad_verification"),
    (openr1_row("p5", "5", [], []), "missing_demo"),
    (openr1_row("p6", "6", ["i", "<think>\nj</think>6"], [None, True]), ""),
    (openr1_row("p7", "7", ["", "<think>\nk</think>7"], [True, True]), ""),
    (openr1_row(None, "8", ["l"], [True]), "bad_prompt"),
]


class TestOpenR1Layout:
    @pytest.fixture
    def parquet(self, tmp_path):
        path = tmp_path / "openr1.parquet"
        Dataset.from_list([row for row, _ in OPENR1]).to_parquet(str(path))
        return str(path)

    def test_one_demo_per_problem(self, parquet):
        out, summary = prepare_dataset(load_source(parquet), "openr1")
        assert out["solution"] == ["1", "3", "6", "7"]
        assert out["completion"] == [
            "<think>\na</think>1",
            "<think>\ne</think>3",
            "<think>\nj</think>6",
            "<think>\nk</think>7",
        ]
        assert out["prompt"][0] == make_prompt("p0")
        skipped = {}
        for _, reason in OPENR1:
            if reason:
                skipped[reason] = skipped.get(reason, 0) + 1
        assert dict(summary.rows_skipped) == skipped
        # p0: 1 unverified, 1 over max; p1: 2 unverified; p2: 1 incomplete; p6: 1 unverified (None); p7: 1 empty.
        assert dict(summary.demos_dropped) == {"unverified": 4, "over_max_demos": 1, "incomplete": 1, "empty": 1}
        assert summary.demos_out == 4

    def test_several_demos_per_problem(self, parquet):
        out, summary = prepare_dataset(load_source(parquet), "openr1", max_demos=3, num_proc=2)
        assert out["completion"][0] == ["<think>\na</think>1", "<think>\nc</think>1"]
        assert [len(demos) for demos in out["completion"]] == [2, 1, 1, 1]
        assert summary.demos_out == 5 and "over_max_demos" not in summary.demos_dropped

    def test_messages_format_works_with_trl_chat_template(self, parquet):
        from trl.data_utils import apply_chat_template

        out, _ = prepare_dataset(load_source(parquet), "openr1", demo_format="messages")
        example = out[0]
        assert example["completion"] == [{"role": "assistant", "content": "<think>\na</think>1"}]
        rendered = apply_chat_template(example, tiny_tokenizer())
        assert rendered["completion"].startswith("<think>\na</think>1<|im_end|>")

    def test_all_rows_skipped_gives_an_empty_dataset_with_the_schema(self):
        out, summary = prepare_dataset(Dataset.from_list([OPENR1[1][0]]), "openr1", demo_column="demo")
        assert len(out) == 0 and out.column_names == ["prompt", "demo", "solution"]
        assert summary.rows_skipped == {"no_verified_demo": 1}


class TestThinkConvention:
    def test_detects_generation_prompt_ending_with_think(self):
        assert generation_prompt_opens_think(think_tokenizer())
        assert not generation_prompt_opens_think(tiny_tokenizer())

    def test_tokenizer_without_template_is_a_clear_error(self):
        tokenizer = tiny_tokenizer()
        tokenizer.chat_template = None
        with pytest.raises(ValueError, match="has no chat template"):
            generation_prompt_opens_think(tokenizer)

    def test_strip_only_a_leading_think(self):
        assert strip_think_open("<think>\nabc</think>") == "abc</think>"
        assert strip_think_open("abc <think>\n") == "abc <think>\n"
        assert strip_think_open("<think>abc") == "<think>abc"

    @pytest.mark.parametrize(
        ("tokenizer", "mode", "stripped"),
        [
            (think_tokenizer, "auto", True),
            (tiny_tokenizer, "auto", False),
            (None, "auto", False),
            (tiny_tokenizer, "always", True),
            (think_tokenizer, "never", False),
        ],
    )
    def test_demos_are_stripped_when_the_template_opens_think(self, tokenizer, mode, stripped):
        tok = tokenizer() if tokenizer else None
        out, summary = prepare_dataset(Dataset.from_list(GOOD_LUFFY), "luffy", tokenizer=tok, strip_think=mode)
        expected = [r["target"][0]["content"] for r in GOOD_LUFFY]
        if stripped:
            expected = [text.removeprefix("<think>\n") for text in expected]
        assert out["completion"] == expected
        assert summary.demos_stripped == (3 if stripped else 0)

    def test_demo_that_is_only_think_becomes_empty(self):
        row = luffy_row("q", "<think>\n", "1")
        out, summary = prepare_dataset(Dataset.from_list([row]), "luffy", tokenizer=think_tokenizer())
        assert len(out) == 0 and summary.rows_skipped == {"missing_demo": 1}
        assert summary.demos_dropped == {"empty": 1}


class TestTokenLengthFilter:
    def test_cap_counts_the_eos_token(self):
        # The tiny tokenizer has one token per character; a demo of n characters is n + 1 tokens with EOS.
        rows = [
            openr1_row("p", "1", ["a" * 9, "b" * 10, "c" * 8], [True, True, True]),
            openr1_row("q", "2", ["d" * 11], [True]),
        ]
        out, summary = prepare_dataset(
            Dataset.from_list(rows), "openr1", max_demos=4, max_demo_tokens=10, tokenizer=tiny_tokenizer()
        )
        assert out["completion"] == [["a" * 9, "c" * 8]]
        assert summary.demos_dropped == {"too_long": 2}
        assert summary.rows_skipped == {"all_demos_too_long": 1}
        assert "dropped 2 demonstrations [too_long]" in summary.format()

    def test_cap_needs_a_tokenizer(self):
        with pytest.raises(ValueError, match="needs a tokenizer"):
            prepare_dataset(Dataset.from_list(GOOD_LUFFY), "luffy", max_demo_tokens=10)


class TestLoadSource:
    def test_directory_and_saved_dataset(self, tmp_path):
        (tmp_path / "raw").mkdir()
        write_jsonl(tmp_path / "raw" / "train.jsonl", GOOD_LUFFY)
        assert len(load_source(str(tmp_path / "raw"))) == 3
        Dataset.from_list(GOOD_LUFFY).save_to_disk(str(tmp_path / "saved"))
        assert load_source(str(tmp_path / "saved"))["prompt"][0] == GOOD_LUFFY[0]["prompt"]

    def test_missing_file_and_unknown_suffix(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nope.jsonl"):
            load_source(str(tmp_path / "nope.jsonl"))
        (tmp_path / "x.csv").write_text("a\n1\n")
        with pytest.raises(ValueError, match=r"use a \.json, \.jsonl or \.parquet file"):
            load_source(str(tmp_path / "x.csv"))


class TestCli:
    def test_prepare_data_end_to_end(self, tmp_path, capsys):
        source = write_jsonl(tmp_path / "in.jsonl", GOOD_LUFFY + [row for row, _ in malformed_luffy()])
        tiny_tokenizer().save_pretrained(str(tmp_path / "tok"))
        output = tmp_path / "out" / "train.parquet"
        args = [
            "prepare-data",
            "--layout",
            "luffy",
            "--input",
            str(source),
            "--output",
            str(output),
            "--max-demo-tokens",
            "36",
            "--tokenizer",
            str(tmp_path / "tok"),
        ]
        assert cli.main(args) == 0
        printed = capsys.readouterr().out
        # Demos of 29, 38 and 34 characters are 30, 39 and 35 tokens with EOS: the second is over the cap of 36.
        assert "luffy: 13 rows in, 2 kept" in printed and "skipped 1 rows [all_demos_too_long]" in printed
        assert "skipped 2 rows [missing_demo]" in printed and f"wrote 2 rows to {output}" in printed
        written = Dataset.from_parquet(str(output))
        assert written["solution"] == ["2", "\\pi"] and written.column_names == ["prompt", "completion", "solution"]

    def test_jsonl_output_round_trips(self, tmp_path):
        source = write_jsonl(tmp_path / "in.jsonl", GOOD_LUFFY)
        output = tmp_path / "out.jsonl"
        assert cli.main(["prepare-data", "--layout", "luffy", "--input", str(source), "--output", str(output)]) == 0
        lines = [json.loads(line) for line in output.read_text().splitlines()]
        assert [line["completion"] for line in lines] == [r["target"][0]["content"] for r in GOOD_LUFFY]

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            (["--output", "x.csv"], "must end in .parquet"),
            (["--output", "x.parquet", "--max-demo-tokens", "5"], "needs --tokenizer"),
            (["--output", "x.parquet", "--strict"], "Malformed rows"),
            (["--output", "x.parquet", "--layout", "openr1"], "layout needs the column"),
        ],
    )
    def test_errors_are_messages_not_tracebacks(self, tmp_path, capsys, extra, message):
        source = write_jsonl(tmp_path / "in.jsonl", GOOD_LUFFY + [malformed_luffy()[0][0]])
        args = ["prepare-data", "--layout", "luffy", "--input", str(source), *extra]
        args = [str(tmp_path / a) if a.startswith("x.") else a for a in args]
        assert cli.main(args) == 2
        assert message in capsys.readouterr().err


@pytest.mark.skipif(not BENCHMARKS.is_dir(), reason="benchmark files not present beside the checkout")
def test_real_luffy_prompts_are_rebuilt_identically():
    # The evaluation files share the training data's verl layout (without a target): give each row a demo.
    rows = Dataset.from_parquet(str(BENCHMARKS / "math_id.parquet")).select(range(0, 5000, 25))
    rows = rows.add_column("target", [[{"role": "assistant", "content": "<think>\nx</think>"}]] * len(rows))
    out, summary = prepare_dataset(rows, "luffy")
    assert summary.rows_out == len(rows) and summary.prompts_with_other_system == 0
    original = [[{"role": m["role"], "content": m["content"]} for m in prompt] for prompt in rows["prompt"]]
    assert out["prompt"] == original
    assert out["solution"] == [r["ground_truth"].strip() for r in rows["reward_model"]]


# ---- property tests: arbitrary (malformed) values never raise and never vanish uncounted ----

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["", " ", "<think>\n", "∫ x² dx = ?", "🙂" * 3, "\x00"]),
    st.integers(2000, 20000).map(lambda n: "ü" * n),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(["role", "content", "ground_truth", "text"]), children, max_size=3),
    ),
    max_leaves=8,
)
messages = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant", "tool"]), "content": values}),
    max_size=3,
)


def check_record(record, max_demos_text=None):
    if record["_skip"]:
        assert record["_skip"] in MALFORMED or record["_skip"] in FILTERED
        assert record["prompt"] == [] and record["demos"] == []
        return
    user = [m for m in record["prompt"] if m["role"] == "user"]
    assert len(user) == 1 and isinstance(user[0]["content"], str) and user[0]["content"].strip()
    assert record["demos"] and all(isinstance(d, str) and d.strip() for d in record["demos"])
    assert isinstance(record["solution"], str) and record["solution"].strip() == record["solution"] != ""


@settings(max_examples=150, deadline=None)
@given(
    prompt=st.one_of(values, messages),
    target=st.one_of(values, messages),
    reward_model=st.one_of(values, st.fixed_dictionaries({"ground_truth": values})),
    strip=st.booleans(),
)
def test_luffy_converter_never_raises(prompt, target, reward_model, strip):
    check_record(convert_luffy_row({"prompt": prompt, "target": target, "reward_model": reward_model}, "S", strip))


@settings(max_examples=150, deadline=None)
@given(
    problem=values,
    answer=values,
    generations=st.one_of(values, st.lists(st.one_of(st.none(), st.text(max_size=10), values), max_size=4)),
    correct=st.one_of(values, st.lists(st.one_of(st.none(), st.booleans()), max_size=4)),
    complete=st.one_of(st.none(), values, st.lists(st.booleans(), max_size=4)),
)
def test_openr1_converter_never_raises(problem, answer, generations, correct, complete):
    row = {
        "problem": problem,
        "answer": answer,
        "generations": generations,
        "correctness_math_verify": correct,
        "is_reasoning_complete": complete,
    }
    record = convert_openr1_row(row, None)
    check_record(record)
    if not record["_skip"] or record["_skip"] == "no_verified_demo":
        # Every generation is either a kept demonstration or a counted drop.
        drops = sum(record[f"_drop_{reason}"] for reason in ("unverified", "incomplete", "empty"))
        assert len(record["demos"]) + drops == len(generations)


text = st.one_of(
    st.sampled_from(["", "  ", "<think>\n", "<think>\nok</think>", "√2 ≈ 1.41", "答案"]),
    st.text(max_size=30),
    st.integers(500, 3000).map(lambda n: "x" * n),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "problem": st.one_of(st.none(), text),
                "answer": st.one_of(st.none(), text),
                "generations": st.lists(st.one_of(st.none(), text), max_size=4),
                "correctness_math_verify": st.lists(st.one_of(st.none(), st.booleans()), max_size=4),
            }
        ),
        min_size=1,
        max_size=8,
    ),
    max_demos=st.integers(1, 3),
    cap=st.one_of(st.none(), st.integers(1, 2000)),
)
def test_prepared_dataset_accounts_for_every_row_and_demo(rows, max_demos, cap):
    tokenizer = tiny_tokenizer() if cap else None
    out, summary = prepare_dataset(
        Dataset.from_list(rows), "openr1", max_demos=max_demos, max_demo_tokens=cap, tokenizer=tokenizer
    )
    assert summary.rows_in == len(rows) == len(out) + sum(summary.rows_skipped.values())
    assert set(summary.rows_skipped) <= set(MALFORMED) | set(FILTERED)
    assert set(summary.demos_dropped) <= set(DEMO_DROPS)
    demos = [[d] if max_demos == 1 else d for d in out["completion"]]
    assert summary.demos_out == sum(map(len, demos))
    for row, kept in zip(out, demos, strict=True):
        assert 1 <= len(kept) <= max_demos and all(d.strip() for d in kept)
        assert row["solution"].strip() and row["prompt"][-1]["content"].strip()
        if cap:
            assert all(len(d) + 1 <= cap for d in kept)  # one token per ASCII/unknown character, plus EOS
    # Candidate generations of well-formed rows: kept, or dropped for a counted reason.
    well_formed = [
        r
        for r in rows
        if isinstance(r["problem"], str)
        and r["problem"].strip()
        and isinstance(r["answer"], str)
        and r["answer"].strip()
        and r["generations"]
        and len(r["generations"]) == len(r["correctness_math_verify"])
    ]
    assert sum(len(r["generations"]) for r in well_formed) == summary.demos_out + sum(summary.demos_dropped.values())
