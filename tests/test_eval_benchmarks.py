"""Benchmark loading (LUFFY/verl and plain files, Hub row adapters), de-duplication, options shuffling, the report."""

import json

import pytest
from datasets import Dataset

from srft_trainer.evaluation import BENCHMARKS, load_benchmark, markdown_table, summarize
from srft_trainer.evaluation.benchmarks import find_source
from srft_trainer.evaluation.choices import parse_options, shuffle_options
from srft_trainer.prompts import SYSTEM_PROMPT, make_prompt


ARC = "Which is a mammal?\n\nA) shark\nB) whale\nC) trout\nD) eel\n"
GPQA = (
    "Answer the following multiple choice question. The last line of your response should be of the following "
    "format: 'ANSWER: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before answering.\n\n"
    "Order these:\n1) benzene\n2) toluene\n\nA) 1. NaNH2\n2. H2/Pd\nB) 2<1\n\nC) 1=2\nD) none of\nthese"
)


class TestOptions:
    def test_parses_letters_with_stem_and_trailing_newline(self):
        parsed = parse_options(ARC)
        assert parsed.labels == "ABCD" and parsed.options == ["shark", "whale", "trout", "eel"]
        assert parsed.stem == "Which is a mammal?\n\n" and parsed.render() == ARC

    def test_multiline_options_and_numbered_stem(self):
        parsed = parse_options(GPQA)
        assert parsed.labels == "ABCD"
        # Multi-line options are kept whole; blank lines between options are dropped.
        assert parsed.options == ["1. NaNH2\n2. H2/Pd", "2<1", "1=2", "none of\nthese"]
        assert "1) benzene\n2) toluene" in parsed.stem

    def test_digit_labels(self):
        parsed = parse_options("Q?\n\n1) a\n2) b\n3) c\n")
        assert parsed.labels == "123" and parsed.options == ["a", "b", "c"]

    def test_unparseable(self):
        assert parse_options("What is 2+2?") is None
        assert parse_options("Q?\nA) only one option") is None
        assert shuffle_options(ARC, "E", seed=0) is None  # gold not among the options

    @pytest.mark.parametrize("text, gold", [(ARC, "B"), (GPQA, "C"), ("Q?\n\n1) a\n2) b\n3) c\n", "3")])
    def test_shuffle_is_seeded_and_remaps_the_gold(self, text, gold):
        original = parse_options(text)
        gold_text = original.options[original.labels.index(gold)]
        results = {shuffle_options(text, gold, seed=f"s/{i}") for i in range(12)}
        assert len({r[0] for r in results}) > 1  # different seeds, different orders
        for new_text, new_gold, labels in results:
            shuffled = parse_options(new_text)
            assert labels == original.labels == shuffled.labels
            assert sorted(shuffled.options) == sorted(original.options)
            assert shuffled.options[labels.index(new_gold)] == gold_text
            assert shuffled.stem == original.stem
        assert shuffle_options(text, gold, seed="x") == shuffle_options(text, gold, seed="x")


def verl_row(source, question, gold):
    return {
        "data_source": source,
        "prompt": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}],
        "ability": "math",
        "reward_model": {"ground_truth": gold, "style": "rule"},
        "extra_info": {"index": 0, "split": "test"},
    }


class TestLoading:
    def test_verl_file_selects_data_source_and_deduplicates(self, tmp_path):
        rows = [verl_row("aime", f"p{i}", str(i)) for i in range(3)] * 32 + [verl_row("math", "m", "1")]
        Dataset.from_list(rows).to_parquet(tmp_path / "math_id.parquet")
        aime = load_benchmark("aime24", tmp_path)  # found in the directory under LUFFY's file name
        assert [p.gold for p in aime] == ["0", "1", "2"] and {p.copies for p in aime} == {32}
        assert aime[0].prompt[-1]["content"] == "p0" and aime[0].prompt[0]["content"] == SYSTEM_PROMPT
        assert [p.problem_id for p in aime] == ["aime24/0", "aime24/1", "aime24/2"]
        assert len(load_benchmark("math500", tmp_path / "math_id.parquet")) == 1
        with pytest.raises(ValueError, match=r"no rows with data_source .*'aime': 96"):
            load_benchmark("minerva", tmp_path / "math_id.parquet")

    def test_plain_jsonl_math_and_choice(self, tmp_path):
        (tmp_path / "m.jsonl").write_text(json.dumps({"question": "1+1?", "answer": "2"}) + "\n")
        [problem] = load_benchmark("math500", tmp_path / "m.jsonl")
        assert problem.prompt == make_prompt("1+1?") and problem.prompt[0]["content"] == SYSTEM_PROMPT
        assert problem.gold == "2" and problem.labels is None
        # The gold may be a letter, the option's text, or (in its own file: one type per column) a 0-based index.
        rows = [{"problem": "Pick.", "options": ["red", "green", "blue"], "answer": a} for a in ("b", "(B)", "green")]
        (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (tmp_path / "i.jsonl").write_text(json.dumps({**rows[0], "answer": 1}) + "\n")
        for name in ("c.jsonl", "i.jsonl"):
            problems = load_benchmark("gpqa_diamond", tmp_path / name, shuffle=False)
            assert len(problems) == 1 and problems[0].gold == "B" and problems[0].labels == "ABC"
        assert problems[0].prompt[-1]["content"].endswith("Pick.\n\nA) red\nB) green\nC) blue")
        assert "LETTER is one of ABC" in problems[0].prompt[-1]["content"]

    def test_plain_file_without_answer_column(self, tmp_path):
        (tmp_path / "bad.jsonl").write_text(json.dumps({"problem": "1+1?", "target": "2"}) + "\n")
        with pytest.raises(ValueError, match="needs `problem` and `answer`"):
            load_benchmark("math500", tmp_path / "bad.jsonl")

    def test_unparseable_options_are_reported_not_hidden(self, tmp_path):
        Dataset.from_list([verl_row("arc_c", "No options here", "B"), verl_row("arc_c", ARC, "B")]).to_parquet(
            tmp_path / "arc_c.parquet"
        )
        problems = load_benchmark("arc_c", tmp_path)
        assert problems[0].options_error and problems[0].gold == "B" and problems[0].labels
        assert problems[1].options_error is None and problems[1].labels == "ABCD"
        records = [
            {"benchmark": "arc_c", "problem_id": p.problem_id, "correct": False, "no_answer": True,
             "error": None, "options_error": p.options_error}
            for p in problems
        ]  # fmt: skip
        assert summarize(records)["benchmarks"]["arc_c"]["options_unparsed"] == 1

    def test_find_source_prefers_the_benchmark_name(self, tmp_path):
        (tmp_path / "math_id.parquet").write_bytes(b"")
        (tmp_path / "aime24.jsonl").write_text("")
        assert find_source(BENCHMARKS["aime24"], tmp_path).name == "aime24.jsonl"
        assert find_source(BENCHMARKS["amc"], tmp_path).name == "math_id.parquet"
        assert find_source(BENCHMARKS["mmlu_pro"], tmp_path) is None

    def test_hub_row_adapters(self):
        assert BENCHMARKS["olympiad"].from_hub_row({"question": "Q", "final_answer": ["$\\frac{1}{2}$"]}) == (
            "Q",
            "\\frac{1}{2}",
            None,
        )
        assert BENCHMARKS["math500"].from_hub_row({"problem": "P", "answer": "3", "solution": "..."}) == (
            "P",
            "3",
            None,
        )
        arc = {"question": "Q", "choices": {"text": ["a", "b", "c"], "label": ["1", "2", "3"]}, "answerKey": "3"}
        assert BENCHMARKS["arc_c"].from_hub_row(arc) == ("Q", "C", ["a", "b", "c"])
        gpqa = {"Question": " Q ", "Correct Answer": "r", "Incorrect Answer 1": "w1", "Incorrect Answer 2": "w2",
                "Incorrect Answer 3": "w3"}  # fmt: skip
        assert BENCHMARKS["gpqa_diamond"].from_hub_row(gpqa) == ("Q", "A", ["r", "w1", "w2", "w3"])
        mmlu = {"question": "Q", "options": list("abcdefghij"), "answer": "J", "answer_index": 9}
        assert BENCHMARKS["mmlu_pro"].from_hub_row(mmlu) == ("Q", "J", list("abcdefghij"))


class TestReport:
    def records(self):
        # aime24: 2 problems x 4 samples, 3/4 and 1/4 right -> avg@4 = 50; math500: 1/2 -> 50; arc_c: 1/1 -> 100.
        rows = []
        for pid, hits in [("aime24/0", [1, 1, 1, 0]), ("aime24/1", [0, 1, 0, 0])]:
            rows += [{"benchmark": "aime24", "problem_id": pid, "correct": bool(h), "no_answer": False} for h in hits]
        rows += [
            {"benchmark": "math500", "problem_id": "math500/0", "correct": True, "no_answer": False},
            {"benchmark": "math500", "problem_id": "math500/1", "correct": False, "no_answer": True,
             "error": "gold_unparseable"},
            {"benchmark": "arc_c", "problem_id": "arc_c/0", "correct": True, "no_answer": False},
        ]  # fmt: skip
        return rows

    def test_summary(self):
        summary = summarize(self.records())
        aime = summary["benchmarks"]["aime24"]
        assert (aime["metric"], aime["problems"], aime["samples"], aime["accuracy"]) == ("avg@4", 2, 8, 50.0)
        assert summary["benchmarks"]["math500"]["metric"] == "pass@1"
        assert (
            summary["benchmarks"]["math500"]["unscorable"] == 1 and summary["benchmarks"]["math500"]["no_answer"] == 1
        )
        assert summary["averages"]["id"] == {"accuracy": 50.0, "benchmarks": ["aime24", "math500"]}
        assert summary["averages"]["ood"] == {"accuracy": 100.0, "benchmarks": ["arc_c"]}

    def test_markdown(self):
        table = markdown_table(summarize(self.records()))
        assert "| AIME24 | ID | avg@4 | 2 | 8 | 50.0 | 0.0 | 0 |" in table
        assert "| MATH500 | ID | pass@1 | 2 | 2 | 50.0 | 50.0 | 1 |" in table
        assert "| **In-distribution avg** (AIME24, MATH500) | ID | | | | 50.0 | | |" in table
        assert (
            "| AIME24 | MATH500 | Avg. | ARC-C | Avg. |" in table and "| 50.0 | 50.0 | 50.0 | 100.0 | 100.0 |" in table
        )

    def test_incomplete_records_are_an_error(self):
        records = self.records()[:-2]  # math500/1 dropped: fine (one sample per problem); drop an AIME sample too
        records.pop(0)
        with pytest.raises(ValueError, match="different sample counts"):
            summarize(records)


def test_exported_benchmarks_load_as_the_source_did(tmp_path):
    """`srft eval --export-benchmarks DIR` writes files that `--data-dir DIR` reads back into the same problems."""
    from srft_trainer import cli

    rows = [
        {"problem": "1+1?", "answer": "2"},
        {"problem": "Which is even?", "answer": "B", "options": ["3", "4", "5", "7"]},
    ]
    Dataset.from_list(rows[:1]).to_json(tmp_path / "math500.jsonl")
    Dataset.from_list(rows[1:]).to_json(tmp_path / "gpqa_diamond.jsonl")
    out = tmp_path / "exported"
    assert cli.main(["eval", "--benchmarks", "math500,gpqa_diamond", "--data-dir", str(tmp_path),
                     "--export-benchmarks", str(out)]) == 0  # fmt: skip
    for name in ("math500", "gpqa_diamond"):
        assert load_benchmark(name, str(out), seed=3) == load_benchmark(name, str(tmp_path), seed=3)
