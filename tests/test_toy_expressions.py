"""The `expressions` toy task: demonstrations, base-style completions, splits, world, shipped base and recipes."""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from srft_trainer.grading import accuracy_reward
from srft_trainer.toy import (
    OOD_MAX_NEW_TOKENS,
    ExpressionsWorldSettings,
    ToyWorldSettings,
    build_char_tokenizer,
    build_toy_world,
    completion_entropy,
    evaluate_heldout,
    make_expression_splits,
)
from srft_trainer.toy.expressions import (
    BASE_SEPARATORS,
    ID_LEVELS,
    OOD_LEVELS,
    ExpressionProblem,
    base_completion,
    demonstration,
    sample_expression,
    sample_slip,
)
from srft_trainer.toy.model import init_toy_model
from srft_trainer.toy.tokenizer import FORMAT_TOKENS
from srft_trainer.toy.world import SHIPPED_BASE_DIRS, shipped_base_info


ROOT = Path(__file__).parents[1]
RECIPE_DIR = ROOT / "recipes" / "toy" / "expressions"
RECIPES = sorted(p for p in RECIPE_DIR.glob("*.yaml") if p.name != "arena.yaml")  # arena files: test_arena.py
needs_expressions_base = pytest.mark.skipif(
    shipped_base_info("expressions") is None,
    reason="no expressions base model yet (issue 14): python scripts/build_toy_base.py --task expressions",
)


# ------------------------------------------------------------------ an independent reading of the completions


def parse_question(question: str) -> list[tuple[int, ...]]:
    assert re.fullmatch(r"\d+(\*\d+)?(\+\d+(\*\d+)?)*", question), question
    return [tuple(int(x) for x in term.split("*")) for term in question.split("+")]


def split_completion(completion: str) -> tuple[list[str], int]:
    """The thought lines and the boxed integer of a completion in the paper's format."""
    match = re.fullmatch(r"<think>\n (.*) </think>\n\\boxed\{(\d+)\}", completion, flags=re.S)
    assert match, completion
    return match.group(1).split("\n "), int(match.group(2))


def check_demo(question: str, demo: str) -> int:
    """
    Reads a demonstration as the documented procedure (products left to right, then left-to-right additions worked
    column by column, each header's first operand being the number the previous columns wrote) and returns how many
    steps have a wrong result. Raises if the procedure or the bookkeeping is off anywhere.
    """
    terms = parse_question(question)
    lines, boxed = split_completion(demo)
    wrong, values = 0, []
    for term in terms:  # products first, in question order
        if len(term) == 2:
            a, b, c = map(int, re.fullmatch(r"(\d)\*(\d)=(\d+)", lines.pop(0)).groups())
            assert (a, b) == term
            wrong += c != a * b
            values.append(c)
        else:
            values.append(term[0])
    total = values[0]
    for value in values[1:]:
        assert lines.pop(0) == f"{total}+{value}"
        width = max(len(str(total)), len(str(value)))
        digits, carry = [], 0
        for x, y in zip(str(total).zfill(width)[::-1], str(value).zfill(width)[::-1]):
            step = lines.pop(0)
            expected = f"{x}+{y}+{carry}=" if carry else f"{x}+{y}="
            assert step.startswith(expected), (step, expected)
            s = int(step[len(expected) :])
            assert s // 10 == (int(x) + int(y) + carry) // 10, "a slip changes one digit, never the carry"
            wrong += s != int(x) + int(y) + carry
            digits.append(s % 10)
            carry = s // 10
        total = int(str(carry or "") + "".join(map(str, reversed(digits))))
    assert lines == [f"so {total}"] and boxed == total
    return wrong


def check_base_completion(question: str, completion: str) -> list[str]:
    """Replays a base-style completion on the multiset of pending products and values; returns its lines."""
    terms = parse_question(question)
    products = Counter(tuple(sorted(t)) for t in terms if len(t) == 2)
    values = Counter(t[0] for t in terms if len(t) == 1)
    lines, boxed = split_completion(completion)
    lines = [step for line in lines for step in re.split(r"[ ,;.|]+", line)]  # the base's separators within a line
    for line in lines:
        a, op, b, c = re.fullmatch(r"(\d+)([*+])(\d+)=(\d+)", line).groups()
        a, b, c = int(a), int(b), int(c)
        if op == "*":
            assert products[tuple(sorted((a, b)))] > 0, line
            products[tuple(sorted((a, b)))] -= 1
            assert c == a * b, line
        else:
            values[a] -= 1
            values[b] -= 1
            assert values[a] >= 0 and values[b] >= 0, line
            assert c == a + b, line
        values[c] += 1
    assert +products == Counter() and +values == Counter({eval(question): 1})  # noqa: S307 - digits, + and *
    assert boxed == eval(question)  # noqa: S307
    return lines


# -------------------------------------------------------------------------------------------------- the task


@pytest.mark.parametrize("num_terms", ID_LEVELS + OOD_LEVELS)
def test_demonstrations_are_right_and_slips_are_one_wrong_step(num_terms):
    rng = random.Random(num_terms)
    for _ in range(300):
        problem = sample_expression(num_terms, rng)
        answer = eval(problem.question)  # noqa: S307
        assert problem.answer == answer and problem.level == num_terms
        demo = demonstration(problem)
        assert check_demo(problem.question, demo) == 0
        assert accuracy_reward([demo], [str(answer)]) == [1.0]
        imperfect = demonstration(problem, sample_slip(problem, rng))
        assert check_demo(problem.question, imperfect) == 1
        assert split_completion(imperfect)[1] != answer
        assert accuracy_reward([imperfect], [str(answer)]) == [0.0]


@pytest.mark.parametrize("num_terms", ID_LEVELS + OOD_LEVELS)
def test_base_completions_are_right_in_every_random_order(num_terms):
    rng, seen = random.Random(100 + num_terms), set()
    for _ in range(100):
        problem = sample_expression(num_terms, rng)
        orders = {base_completion(problem, rng) for _ in range(20)}
        for completion in orders:
            check_base_completion(problem.question, completion)
            assert accuracy_reward([completion], [str(problem.answer)]) == [1.0]
            assert len(completion) < len(demonstration(problem))  # the terse style is the shorter one
        assert len(orders) > 1, "a problem of 3+ terms has several orders"
        thoughts = [re.fullmatch(r"<think>\n (.*) </think>\n.*", c, flags=re.S).group(1) for c in orders]
        seen.update(sep for t in thoughts for sep in re.findall(r"(?<=\d)[^\d*+=]+(?=\d)", t))
    assert seen == set(BASE_SEPARATORS)


def test_a_known_problem():
    problem = ExpressionProblem(((7, 6), (23,), (4, 5)))
    assert problem.question == "7*6+23+4*5" and problem.answer == 85
    assert demonstration(problem) == (
        "<think>\n 7*6=42\n 4*5=20\n 42+23\n 2+3=5\n 4+2=6\n 65+20\n 5+0=5\n 6+2=8\n so 85 </think>\n\\boxed{85}"
    )
    # A wrong last digit in the second product (step 1), carried through both additions.
    assert demonstration(problem, (1, 9)) == (
        "<think>\n 7*6=42\n 4*5=29\n 42+23\n 2+3=5\n 4+2=6\n 65+29\n 5+9=14\n 6+2+1=9\n so 94 </think>\n\\boxed{94}"
    )


def test_splits_are_deterministic_disjoint_and_count_the_slips():
    kwargs = dict(seed=3, train_per_level=200, heldout_per_level=30, ood_per_level=20, pretrain_per_level=50)
    a, b = make_expression_splits(**kwargs), make_expression_splits(**kwargs)
    assert set(a) == {"train", "heldout", "heldout_ood", "pretrain"}
    assert all(a[name].to_list() == b[name].to_list() for name in a)
    assert make_expression_splits(**{**kwargs, "seed": 4})["train"]["prompt"] != a["train"]["prompt"]
    # the pretrain size changes only the pretrain split
    fewer = make_expression_splits(**{**kwargs, "pretrain_per_level": 10})
    assert all(fewer[name].to_list() == a[name].to_list() for name in ("train", "heldout", "heldout_ood"))
    questions = {name: [row[-1]["content"] for row in a[name]["prompt"]] for name in a}
    assert all(len(set(q)) == len(q) for q in questions.values())
    names = sorted(questions)
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            assert not set(questions[x]) & set(questions[y]), (x, y)
    assert set(a["train"]["level"]) == set(a["heldout"]["level"]) == set(a["pretrain"]["level"]) == set(ID_LEVELS)
    assert set(a["heldout_ood"]["level"]) == set(OOD_LEVELS) and min(OOD_LEVELS) > max(a["train"]["level"])
    for name in a:
        for row in a[name]:
            question = row["prompt"][-1]["content"].removeprefix("What is ").removesuffix("?")
            assert len(parse_question(question)) == row["level"] and row["solution"] == str(eval(question))  # noqa: S307
            if name == "pretrain":
                assert row["demo_correct"]
                check_base_completion(question, row["completion"])
            else:
                assert check_demo(question, row["completion"]) == (0 if row["demo_correct"] else 1)
    assert len(a["train"]) - sum(a["train"]["demo_correct"]) == 100  # 0.25 of 400
    assert all(a[name]["demo_correct"] == [True] * len(a[name]) for name in ("heldout", "heldout_ood"))
    rewards = accuracy_reward(a["train"]["completion"], a["train"]["solution"])
    assert rewards == [float(ok) for ok in a["train"]["demo_correct"]]  # min_demo_reward=1.0 drops exactly those


@pytest.mark.parametrize("rate, imperfect", [(0.0, 0), (0.1, 7), (1.0, 66)])
def test_demo_error_rate_is_the_fraction_of_imperfect_demos(rate, imperfect):
    splits = make_expression_splits(train_per_level=33, heldout_per_level=1, ood_per_level=0, demo_error_rate=rate)
    assert "heldout_ood" not in splits
    assert len(splits["train"]) - sum(splits["train"]["demo_correct"]) == imperfect
    with pytest.raises(ValueError, match="demo_error_rate"):
        make_expression_splits(demo_error_rate=1.5)
    with pytest.raises(ValueError, match="base_error_rate"):
        make_expression_splits(base_error_rate=-0.1)


def boxed(completion: str) -> str:
    return re.search(r"\\boxed\{(\d+)\}", completion).group(1)


def test_base_error_rate_makes_wrong_last_digits_carried_through():
    problems = [sample_expression(4, random.Random(i)) for i in range(300)]
    assert all(boxed(base_completion(p, random.Random(i))) == str(p.answer) for i, p in enumerate(problems))
    wrong = 0
    for i, p in enumerate(problems):
        completion = base_completion(p, random.Random(i), error_rate=0.3)
        lines = re.findall(r"(\d+)([*+])(\d+)=(\d+)", completion)
        # Each step is right, or off only in its last digit; the boxed answer is the last step's result.
        for a, op, b, c in lines:
            right = int(a) * int(b) if op == "*" else int(a) + int(b)
            assert int(c) // 10 == right // 10, completion
        assert boxed(completion) == lines[-1][3]
        wrong += boxed(completion) != str(p.answer)
    # 4 terms take 3-5 steps, each wrong with probability 0.3 (a wrong digit can be undone only by a later one).
    assert 0.5 < wrong / len(problems) < 0.9


def test_expressions_tokenizer_makes_each_format_marker_one_token():
    plain, tokenizer = build_char_tokenizer(), ExpressionsWorldSettings().tokenizer()
    assert ToyWorldSettings().tokenizer().get_vocab() == plain.get_vocab()  # the arithmetic task's is unchanged
    vocab = tokenizer.get_vocab()
    assert {t: i for t, i in vocab.items() if i < len(plain)} == plain.get_vocab()
    assert [vocab[t] for t in FORMAT_TOKENS] == [len(plain), len(plain) + 1, len(plain) + 2]
    text = demonstration(ExpressionProblem(((6, 5), (13,), (4, 3))))
    ids = tokenizer(text)["input_ids"]
    assert len(ids) == len(plain(text)["input_ids"]) - sum(len(t) - 1 for t in FORMAT_TOKENS)
    assert tokenizer.convert_ids_to_tokens(ids)[0] == "<think>" and tokenizer.decode(ids) == text


def test_longest_demo_fits_the_default_evaluation_and_the_recipes():
    train = make_expression_splits(heldout_per_level=1, ood_per_level=1)["train"]
    longest = max(len(build_char_tokenizer()(c)["input_ids"]) for c in train["completion"])
    assert longest + 1 <= 160  # + EOS, within evaluate_heldout's default max_new_tokens
    for recipe in RECIPES:
        config = yaml.safe_load(recipe.read_text())
        assert config.get("max_completion_length", config.get("max_length")) >= longest + 1, recipe.name
    ood = make_expression_splits(heldout_per_level=1, ood_per_level=100)["heldout_ood"]
    assert max(map(len, ood["completion"])) + 1 <= OOD_MAX_NEW_TOKENS


# ------------------------------------------------------------------------------------ world and shipped base


@needs_expressions_base
def test_world_builds_from_the_shipped_base_and_has_an_ood_split(tmp_path):
    info = shipped_base_info("expressions")
    assert info["fingerprint"] == ExpressionsWorldSettings().fingerprint(), (
        "rebuild it: python scripts/build_toy_base.py --task expressions"
    )
    start = time.perf_counter()
    world = build_toy_world(tmp_path / "w", task="expressions")
    assert time.perf_counter() - start < 10  # ~1 s: nothing is pretrained
    assert world.base_origin == "shipped" and world.task == "expressions"
    assert (world.model_dir / "model.safetensors").is_file()
    train, heldout, ood = world.load_train(), world.load_heldout(), world.load_heldout_ood()
    assert len(train) == 4000 and len(heldout) == 500 and len(ood) == 200
    assert set(ood["level"]) == set(OOD_LEVELS) and set(heldout["level"]) == set(ID_LEVELS)
    assert len(train) - sum(train["demo_correct"]) == 1000
    assert build_toy_world(tmp_path / "w", task="expressions") == world  # reused
    with pytest.raises(ValueError, match="other settings"):
        build_toy_world(tmp_path / "w")  # an arithmetic world asked of an expressions folder
    with pytest.raises(ValueError, match="task"):
        build_toy_world(tmp_path / "x", settings=ToyWorldSettings(), task="expressions")
    with pytest.raises(ValueError, match="task"):
        build_toy_world(tmp_path / "x", task="algebra")


def test_arithmetic_world_is_unchanged(tmp_path):
    assert ToyWorldSettings().fingerprint() == "d2ed0721ef74"  # the shipped arithmetic base stays valid
    world = build_toy_world(tmp_path / "a")
    assert world.task == "arithmetic" and world.heldout_ood_file is None and world.load_heldout_ood() is None
    assert "task" not in json.loads((world.root / "toy_world.json").read_text())["settings"]


@needs_expressions_base
def test_shipped_base_numbers_are_in_the_documented_range():
    """README/issue 14: sampled (T=1) ID accuracy 10-30%, mean token entropy on its own samples >= 0.4 nats."""
    info = shipped_base_info("expressions")
    assert 0.10 <= info["heldout_accuracy_sampled_t1"] <= 0.30, info["heldout_accuracy_sampled_t1"]
    assert info["heldout_entropy_sampled_t1"] >= 0.4
    assert info["heldout_n"] == 500 and info["heldout_ood_n"] == 200
    assert set(info["heldout_accuracy_sampled_t1_per_level"]) == {str(level) for level in ID_LEVELS}
    assert info["train_imperfect_demos"] == 1000 and info["train_longest_demo_chars"] < 160
    # A cheap re-check on a subset: 96 held-out problems sampled at T=1.
    heldout = make_expression_splits(heldout_per_level=250, ood_per_level=0, train_per_level=1)["heldout"]
    model = AutoModelForCausalLM.from_pretrained(SHIPPED_BASE_DIRS["expressions"])
    tokenizer = AutoTokenizer.from_pretrained(SHIPPED_BASE_DIRS["expressions"])
    result = evaluate_heldout(model, tokenizer, heldout.select(range(96)), temperature=1.0, batch_size=96)
    assert 0.03 <= result.accuracy <= 0.40, result.accuracy
    entropy = completion_entropy(model, tokenizer, heldout["prompt"][:96], result.completions)
    assert entropy >= 0.3, entropy


def test_completion_entropy_matches_a_prefix_by_prefix_computation():
    import torch

    tokenizer = build_char_tokenizer()
    model = init_toy_model(tokenizer, seed=0).eval()  # random weights: an entropy far from 0 at every position
    heldout = make_expression_splits(heldout_per_level=2, ood_per_level=0, train_per_level=1)["heldout"]
    prompts, completions = heldout["prompt"][:3], ["<think>\n 1+2=3", "", "<think>\n 7*6=42 </think>\n\\boxed{42}"]
    expected = []
    for prompt, completion in zip(prompts, completions):
        text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text + completion, add_special_tokens=False)["input_ids"]
        start = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        for end in range(start, len(ids)):
            with torch.no_grad():
                logps = model(input_ids=torch.tensor([ids[:end]])).logits[0, -1].log_softmax(-1)
            expected.append(-(logps.exp() * logps).sum().item())
    got = completion_entropy(model, tokenizer, prompts, completions, batch_size=2)
    assert got == pytest.approx(sum(expected) / len(expected), rel=1e-4)
    assert not model.training
    with pytest.raises(ValueError, match="one completion per prompt"):
        completion_entropy(model, tokenizer, prompts, completions[:2])


# ------------------------------------------------------------------------------------------------ recipes


def test_expressions_recipes_share_one_budget_and_schedule():
    recipes = {p.stem: yaml.safe_load(p.read_text()) for p in RECIPES}
    assert set(recipes) == {"srft", "grpo", "sft"}
    for key in (
        "max_steps",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "learning_rate",
        "lr_scheduler_type",
        "warmup_steps",
        "seed",
        "heldout_size",
        "toy_world",
        "toy_task",
    ):
        assert len({r[key] for r in recipes.values()}) == 1, key
    assert recipes["srft"]["toy_task"] == "expressions"


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory):
    return str(build_toy_world(tmp_path_factory.mktemp("world") / "w", task="expressions").root)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_expressions_recipe_runs_two_steps(recipe, shared_world, tmp_path, capsys):
    from srft_trainer.train import main

    out = tmp_path / "out"
    argv = ["--config", str(recipe), "--toy_world", shared_world, "--output_dir", str(out), "--max_steps", "2",
            "--logging_steps", "1", "--heldout_size", "4", "--per_device_train_batch_size", "16"]  # fmt: skip
    assert main(argv) == 0
    assert f"| {recipe.stem} |" in capsys.readouterr().out
    result = json.loads((out / "heldout_accuracy.json").read_text())
    assert result["trainer"] == recipe.stem and 0.0 <= result["after"] <= 1.0
    assert (out / "model.safetensors").is_file()


# ------------------------------------------------------------------- expressions_terse: the paper's regime


@needs_expressions_base
def test_terse_world_shares_the_problems_and_base_and_writes_correct_base_style_demos(tmp_path):
    from srft_trainer.toy import ExpressionsTerseWorldSettings

    start = time.perf_counter()
    terse = build_toy_world(tmp_path / "t", task="expressions_terse")
    assert time.perf_counter() - start < 10 and terse.base_origin == "shipped"  # the expressions base, not pretrained
    assert terse.task == "expressions_terse" and isinstance(terse.settings, ExpressionsTerseWorldSettings)
    assert terse.settings.base_fingerprint() == shipped_base_info("expressions")["fingerprint"]
    column = build_toy_world(tmp_path / "c", task="expressions")
    for load in ("load_heldout", "load_heldout_ood"):  # the same problems to score, in the same order
        assert getattr(terse, load)()["prompt"] == getattr(column, load)()["prompt"]
    train, other = terse.load_train(), column.load_train()
    assert train["prompt"] == other["prompt"] and train["solution"] == other["solution"]
    assert all(train["demo_correct"])
    for row in train.select(range(300)):
        question = row["prompt"][-1]["content"][len("What is ") : -1]
        check_base_completion(question, row["completion"])  # the base's style, every step right
        assert "so " not in row["completion"]  # none of the column style
    rewards = accuracy_reward(train["completion"][:200], solution=train["solution"][:200])
    assert rewards == [1.0] * 200
    assert build_toy_world(tmp_path / "t", task="expressions_terse") == terse  # reused from its manifest
    with pytest.raises(ValueError, match="demo_error_rate=0"):
        make_expression_splits(train_per_level=4, heldout_per_level=2, demo_style="terse")  # default rate 0.25
    with pytest.raises(ValueError, match="demo_style"):
        make_expression_splits(train_per_level=4, heldout_per_level=2, demo_error_rate=0, demo_style="verbose")


@needs_expressions_base
def test_validation_and_test_are_disjoint_halves_of_the_heldout_split(tmp_path):
    world = build_toy_world(tmp_path / "t", task="expressions_terse")
    validation, test, heldout = world.load_validation(), world.load_test(), world.load_heldout()
    assert len(validation) == len(test) == 250
    questions = lambda d: [p[-1]["content"] for p in d["prompt"]]  # noqa: E731
    assert not set(questions(validation)) & set(questions(test))
    assert questions(validation) + questions(test) == questions(heldout)


@needs_expressions_base
def test_terse_task_meets_its_recorded_regime_criteria():
    """scripts/build_toy_base.py --task expressions_terse measured these on the task as it is now."""
    from srft_trainer.arena.regime import MIN_BASE_ENTROPY, REGIME_STEPS, failed_criteria
    from srft_trainer.toy import ExpressionsTerseWorldSettings

    record = shipped_base_info("expressions_terse")["regime"]["expressions_terse"]
    assert record["fingerprint"] == ExpressionsTerseWorldSettings().fingerprint(), (
        "re-measure: python scripts/build_toy_base.py --task expressions_terse"
    )
    assert failed_criteria(record) == [] and record["passed"] and record["steps"] == REGIME_STEPS
    assert record["sft_accuracy"] > record["base_accuracy"] and record["grpo_accuracy"] > record["base_accuracy"]
    assert record["base_entropy_sampled_t1"] >= MIN_BASE_ENTROPY and record["ood_n"] == 200
    assert record["validation_n"] == 250
    assert len(failed_criteria(None)) == 4
    assert failed_criteria({**record, "checks": {**record["checks"], "grpo_beats_base": False}}) == [
        "GRPO alone beats the base on validation accuracy within the budget"
    ]


def test_terse_recipes_match_the_expressions_recipes_but_for_the_task():
    for path in RECIPES:
        mine = yaml.safe_load((ROOT / "recipes" / "toy" / "expressions_terse" / path.name).read_text())
        theirs = yaml.safe_load(path.read_text())
        differ = {k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k)}
        assert differ == {"toy_world", "toy_task", "output_dir"}, path.name
        assert mine["toy_task"] == "expressions_terse"


@needs_expressions_base
@pytest.mark.slow
def test_regime_measurement_runs_sft_and_grpo_and_checks_what_it_measured(tmp_path):
    from srft_trainer.arena.regime import measure_regime

    world = build_toy_world(tmp_path / "t", task="expressions_terse")
    record = measure_regime(world, steps=1)
    assert record["steps"] == 1 and record["validation_n"] == 250 and record["ood_n"] == 200
    assert record["sft_learning_rate"] == record["grpo_learning_rate"] == 2e-4  # the recipes' own
    for key in ("base_accuracy", "sft_accuracy", "grpo_accuracy", "base_accuracy_sampled_t1"):
        assert 0.0 <= record[key] <= 1.0
    assert record["checks"] == {
        "sft_beats_base": record["sft_accuracy"] > record["base_accuracy"],
        "grpo_beats_base": record["grpo_accuracy"] > record["base_accuracy"],
        "base_entropy": record["base_entropy_sampled_t1"] >= 0.3,
        "ood_split": True,
    }
    assert record["passed"] == all(record["checks"].values())


@needs_expressions_base
def test_build_script_records_the_criteria_and_fails_when_one_fails(tmp_path, monkeypatch, capsys):
    import importlib.util
    import shutil

    from srft_trainer.arena import regime

    spec = importlib.util.spec_from_file_location("build_toy_base", ROOT / "scripts" / "build_toy_base.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    base = tmp_path / "base"
    shutil.copytree(SHIPPED_BASE_DIRS["expressions"], base)
    failing = {"passed": False, "checks": {"sft_beats_base": False, "grpo_beats_base": True, "base_entropy": True,
                                         "ood_split": True}}  # fmt: skip
    monkeypatch.setattr(regime, "measure_regime", lambda world: dict(failing))
    assert script.record_criteria("expressions_terse", base) == 1
    out = capsys.readouterr().out
    assert "FAILED: SFT alone beats the base on validation accuracy within the budget" in out
    info = json.loads((base / "build_info.json").read_text())
    assert info["regime"]["expressions_terse"]["checks"] == failing["checks"]
    assert info["fingerprint"] == shipped_base_info("expressions")["fingerprint"]  # the rest of the record kept
