"""
The toy world's fair arena (`benchmarks/paper_table.py`, the toy preset of `srft arena`): its CI preset runs the whole
protocol end to end (base, SFT -> RL with each stage tuned, SRFT; two rates, one test seed, two steps) as `srft train`
command lines, its rows carry the paper-scale recipes' objective settings, its entropy and table arithmetic match
hand-computed values, and bad flags fail with messages naming the fix before anything is written.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
from pathlib import Path

import pytest
import torch
import yaml

from srft_trainer.arena import report
from srft_trainer.arena.rows import LABELS, LR_GRID, RELEASED_CODE, ROWS, choose, stage_steps
from srft_trainer.toy.world import shipped_base_info


ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "paper_table.py"


@pytest.fixture(scope="module")
def paper_table():
    spec = importlib.util.spec_from_file_location("paper_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["paper_table"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("paper_table", None)


def table_rows(md: str) -> dict[str, list[str]]:
    """Method name -> the other cells of each line of the first table (the separation table may follow it)."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| method")) + 2  # header and |---| rule
    rows = {}
    for line in lines[start:]:
        if not line.startswith("| "):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.slow
def test_ci_preset_runs_the_protocol_end_to_end(paper_table, tmp_path, capsys):
    from srft_trainer.toy import build_toy_world, heldout_accuracy

    assert paper_table.main(["--ci", "--output-dir", str(tmp_path)]) == 0
    md = (tmp_path / "arena.md").read_text()
    rows = table_rows(md)
    assert list(rows) == ["Base model", "SFT → RL (GRPO)", "SRFT"]
    for cells in rows.values():  # rate, validation, test, entropy, steps to 50%, steps to half the gain, runs
        accuracy = re.fullmatch(r"([\d.]+) ± ([\d.]+)", cells[2])
        assert accuracy and 0.0 <= float(accuracy.group(1)) <= 100.0 and float(accuracy.group(2)) == 0.0  # one seed
    assert rows["Base model"][0] == "–" and rows["Base model"][3] == "–"  # no rate, no training entropy
    out = capsys.readouterr().out
    assert "| SRFT |" in out and "Toy task `arithmetic`" in out  # printed as well
    # A two-point grid: every choice sits at an edge, and the report says to widen the grid for every row.
    assert re.fullmatch(r"1e-(5|3) \(edge\) → 1e-(5|3) \(edge\)", rows["SFT → RL (GRPO)"][0])
    assert "Chosen at an edge of the grid: " in md and "Widen `grid` for every row" in md
    assert "`recipes/toy/sft.yaml` as `trainer: sft` then" in md.replace(str(ROOT) + "/", "")  # the legend

    payload = json.loads((tmp_path / "arena.json").read_text())
    assert payload["grid"] == [1e-5, 1e-3] and payload["steps"] == 2 and payload["scoring"] == "transformers"
    # Validation and test are the two halves of the world's held-out split; the base is scored on each.
    world = build_toy_world(tmp_path / "toy-world")
    test = heldout_accuracy(world.model_dir, None, world.load_test(), n=8)
    assert payload["base"]["accuracy"] == pytest.approx(test)
    validation = heldout_accuracy(world.model_dir, None, world.load_validation(), n=8)
    assert payload["base"]["validation_accuracy"] == pytest.approx(validation)
    tuned = {(t["row"], t["stage"], t["learning_rate"]) for t in payload["tuning"]}
    assert tuned == {(row, stage, lr) for row, stage in [("sft_grpo", 0), ("sft_grpo", 1), ("srft", 0)]
                     for lr in (1e-5, 1e-3)}  # fmt: skip
    for row, choice in payload["chosen"].items():  # each stage's rate is its best on validation (ties: smaller)
        for stage, lr in enumerate(choice["learning_rates"]):
            grid = {t["learning_rate"]: t["validation_accuracy"] for t in payload["tuning"]
                    if (t["row"], t["stage"]) == (row, stage)}  # fmt: skip
            assert lr == choose(grid, [1e-5, 1e-3])[0], (row, stage)
    # SFT -> RL's RL stage was tuned from the chosen SFT stage's model.
    sft_lr = report.rate(payload["chosen"]["sft_grpo"]["learning_rates"][0])
    rl_runs = sorted(p for p in (tmp_path / "runs" / "tune").glob("sft_grpo-lr*-stage1-*") if p.is_dir())
    assert len(rl_runs) == 2 and all(r.name.startswith(f"sft_grpo-lr{sft_lr}-stage1-") for r in rl_runs)
    assert [(r["row"], r["seed"]) for r in payload["runs"]] == [("sft_grpo", 1), ("srft", 1)]
    for run in payload["runs"]:  # scored at step 0 (the base) and after each step
        assert run["learning_rates"] == payload["chosen"][run["row"]]["learning_rates"]
        assert [p["step"] for p in run["curve"]] == [0, 1, 2]
        assert run["curve"][0]["accuracy"] == payload["base"]["accuracy"]
        assert run["final_accuracy"] == run["curve"][-1]["accuracy"]
    # Test runs train with the test seed at the chosen rate, from the task's own recipe; logged every step.
    (srft_run,) = (tmp_path / "runs" / "test").glob("srft-lr*-seed1")
    state = json.loads((srft_run / "stage0" / "trainer_state.json").read_text())
    logs = [h for h in state["log_history"] if "entropy" in h]
    assert [h["step"] for h in logs] == [1, 2]
    srft = payload["runs"][1]
    assert srft["final_train_entropy"] == pytest.approx((logs[0]["entropy"] + logs[1]["entropy"]) / 2)
    assert 0.0 < logs[0]["srft/w_sft"] <= 0.5 and logs[0]["srft/w_rl"] >= 0.1  # 0.5 exp(-H), 0.1 exp(H)
    assert (tmp_path / "arena.png").stat().st_size > 10_000
    # The arena file this run used is written beside its report: `srft arena --collect` on it rebuilds the report.
    from srft_trainer import cli

    assert cli.main(["arena", "--config", str(tmp_path / "arena.yaml"), "--collect"]) == 0
    assert json.loads((tmp_path / "arena.json").read_text())["chosen"] == payload["chosen"]


def test_choice_breaks_ties_towards_the_smaller_rate_and_flags_edges():
    grid = [1e-5, 1e-4, 1e-3]
    assert choose({1e-5: 0.2, 1e-4: 0.5, 1e-3: 0.5}, grid) == (1e-4, False)
    assert choose({1e-5: 0.2, 1e-4: 0.3, 1e-3: 0.5}, grid) == (1e-3, True)
    assert choose({1e-5: 0.6, 1e-4: 0.3, 1e-3: 0.5}, grid) == (1e-5, True)
    assert math.log10(max(LR_GRID) / min(LR_GRID)) >= 2  # two decades


def test_rows_carry_the_paper_scale_recipes_objective(paper_table, tmp_path):
    """Each ablation row trains with the same SRFT objective keys as its recipe in recipes/qwen2.5-math-7b/."""
    from srft_trainer.arena.cli import build_parser, prepare
    from srft_trainer.train import parse_args

    path = paper_table.arena_file(paper_table.parse(["--output-dir", str(tmp_path)]))
    _, plan = prepare(build_parser().parse_args(["--config", str(path)]))

    def args_of(row):
        argv = plan.train_argv(row, 0, 5e-4, 3, tmp_path / row, 7)
        return parse_args(argv)[1]

    keys = ("sft_coef", "rl_pos_coef", "rl_entropy_weighting", "demo_rl")
    for row, recipe in [("luffy", "luffy"), ("srft", "srft"), ("srft_no_wsft", "srft_no_wsft"),
                        ("srft_no_wrl", "srft_no_wrl")]:  # fmt: skip
        args = args_of(row)
        paper = yaml.safe_load((ROOT / "recipes" / "qwen2.5-math-7b" / f"{recipe}.yaml").read_text())
        assert {k: getattr(args, k) for k in keys} == {k: paper[k] for k in keys}, row
        if paper["sft_coef"]:  # with sft_coef 0 (LUFFY) the SFT weighting is moot
            assert args.sft_entropy_weighting == paper["sft_entropy_weighting"], row
        assert (args.max_steps, args.seed, args.per_device_train_batch_size, args.num_generations) == (7, 3, 64, 8)
        assert args.learning_rate == 5e-4
    args = args_of("sft_rl_const")
    assert (args.sft_coef, args.rl_pos_coef, args.sft_entropy_weighting, args.rl_entropy_weighting) == (
        1.0, 1.0, False, False)  # fmt: skip
    # The released-code row sets what recipes/toy/srft_official.yaml changes on top of srft.yaml, nothing else.
    official = yaml.safe_load((ROOT / "recipes" / "toy" / "srft_official.yaml").read_text())
    default = yaml.safe_load((ROOT / "recipes" / "toy" / "srft.yaml").read_text())
    changed = {k: v for k, v in official.items() if default.get(k) != v and k != "output_dir"}
    released = args_of("srft_released")
    assert {k: getattr(released, k) for k in changed} == changed
    assert set(RELEASED_CODE) == set(changed)
    assert stage_steps(60, 2) == [30, 30] and stage_steps(5, 2) == [2, 3]


def test_completion_entropy_matches_next_token_entropy_prefix_by_prefix():
    """Batched and padded, it equals the entropy of each next-token distribution computed one prefix at a time."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from srft_trainer.toy.evaluation import completion_entropy
    from srft_trainer.toy.world import SHIPPED_BASE_DIR

    model = AutoModelForCausalLM.from_pretrained(SHIPPED_BASE_DIR)
    tokenizer = AutoTokenizer.from_pretrained(SHIPPED_BASE_DIR)
    prompts = [[{"role": "user", "content": "What is 7*8?"}], [{"role": "user", "content": "What is 12345+6?"}]]
    completions = ["<think>\n 7*8", "\\boxed{12351}"]
    entropies = []
    for prompt, completion in zip(prompts, completions):
        text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        for token in tokenizer(completion, add_special_tokens=False)["input_ids"]:
            with torch.no_grad():
                p = torch.softmax(model(input_ids=torch.tensor([ids])).logits[0, -1].double(), -1)
            entropies.append(-(p * p.log()).sum().item())
            ids = ids + [token]
    model.train()
    got = completion_entropy(model, tokenizer, prompts, completions, batch_size=2)
    assert got == pytest.approx(sum(entropies) / len(entropies), rel=1e-5)
    assert len(entropies) == len(completions[0]) + len(completions[1])  # character tokens: one per character
    assert model.training  # put back as it was
    assert math.isnan(completion_entropy(model, tokenizer, prompts[:1], [""]))


def test_table_arithmetic_on_hand_made_runs():
    def run(row, curve, entropy):
        points = [{"step": s, "accuracy": a, "entropy": 0.2} for s, a in curve]
        return {"row": row, "curve": points, "final_accuracy": curve[-1][1], "final_heldout_entropy": 0.2,
                "final_train_entropy": entropy}  # fmt: skip

    base = {"row": "base", "accuracy": 0.3, "final_accuracy": 0.3, "final_heldout_entropy": 0.5,
            "curve": [{"step": 0, "accuracy": 0.3, "entropy": 0.5}]}  # fmt: skip
    results = [
        run("srft", [(0, 0.3), (10, 0.43), (20, 0.5)], 0.1),
        run("srft", [(0, 0.3), (10, 0.4), (20, 0.6)], 0.3),
        run("grpo", [(0, 0.3), (10, 0.2), (20, 0.45)], 0.05),
        run("grpo", [(0, 0.3), (10, 0.1), (20, 0.1)], 0.05),
    ]
    # SRFT's final mean is 0.55: 50% of it is 0.275, base + half its gain is 0.3 + 0.125 = 0.425.
    assert report.targets(results, base) == pytest.approx((0.275, 0.425))
    chosen = {"grpo": {"learning_rates": [3e-5], "edge": [True]}, "srft": {"learning_rates": [3e-4], "edge": [False]}}
    md = report.table(results, ["base", "grpo", "srft"], base, LABELS, chosen)
    assert "(27.5%)" in md and "(42.5%)" in md
    rows = table_rows(md)
    assert rows["Base model"] == ["–", "30.0 ± 0.0", "–", "0.500 ± 0.000", "0 ± 0", "not reached", "1"]
    assert rows["RL (GRPO)"] == ["3e-5 (edge)", "27.5 ± 24.7", "0.050 ± 0.000", "0.200 ± 0.000", "0 ± 0",
                                 "20 ± 0 (1/2 not reached)", "2"]  # fmt: skip
    assert rows["SRFT"] == ["3e-4", "55.0 ± 7.1", "0.200 ± 0.141", "0.200 ± 0.000", "0 ± 0", "15 ± 7", "2"]
    # Without an SRFT row there is no target; an SRFT that does not beat the base has no gain to halve.
    assert report.targets(results[2:], base) == (None, None)
    assert report.targets([run("srft", [(0, 0.3), (10, 0.2)], 0.1)], base) == (pytest.approx(0.1), None)
    assert [report.rate(x) for x in (3e-5, 1e-4, 0.003, 1e-3)] == ["3e-5", "1e-4", "3e-3", "1e-3"]
    assert report.chosen_rates({"learning_rates": [1e-3, 3e-5], "edge": [False, True]}) == "1e-3 → 3e-5 (edge)"


def test_ood_column_and_separation_by_hand():
    def run(row, accuracy, ood):
        return {"row": row, "curve": [{"step": 0, "accuracy": 0.3}, {"step": 10, "accuracy": accuracy}],
                "final_accuracy": accuracy, "final_ood_accuracy": ood, "final_heldout_entropy": 0.4,
                "final_train_entropy": 0.5}  # fmt: skip

    base = {"row": "base", "accuracy": 0.3, "final_accuracy": 0.3, "final_heldout_entropy": 0.5,
            "final_ood_accuracy": 0.1, "curve": [{"step": 0, "accuracy": 0.3, "entropy": 0.5}]}  # fmt: skip
    results = [run("srft", 0.50, 0.20), run("srft", 0.54, 0.22), run("srft", 0.52, 0.24),
               run("sft", 0.60, 0.21), run("sft", 0.62, 0.23), run("sft", 0.64, 0.19),
               run("grpo", 0.40, 0.05)]  # fmt: skip
    labels = LABELS
    rows = table_rows(report.table(results, ["base", "sft", "grpo", "srft"], base, labels))
    assert rows["SFT"][1:3] == ["62.0 ± 2.0", "21.0 ± 2.0"]  # test, then OOD
    assert rows["Base model"][1:3] == ["30.0 ± 0.0", "10.0 ± 0.0"]
    sep = table_rows(report.separation(results, ["base", "sft", "grpo", "srft"], base, labels))
    # SFT - SRFT: +10.0 points held-out, both stds 2.0 -> threshold 4.0: separated; OOD -1.0 vs 4.0: not.
    assert sep["SFT"] == ["+10.0, 4.0, yes", "-1.0, 4.0, no"]
    # GRPO has one run (std 0): the threshold is twice SRFT's std.
    assert sep["RL (GRPO)"] == ["-12.0, 4.0, yes", "-17.0, 4.0, yes"]
    assert sep["Base model"] == ["-22.0, 4.0, yes", "-12.0, 4.0, yes"]
    assert "SRFT" not in sep
    assert report.separation(results[3:], ["sft"], base, labels) == ""  # no SRFT row, no reference


def test_tuning_table_marks_the_chosen_rate():
    tuning = [{"row": "sft_grpo", "stage": s, "recipe": r, "learning_rate": lr, "validation_accuracy": acc}
              for s, r, lr, acc in [(0, "sft", 1e-4, 0.5), (0, "sft", 1e-3, 0.6), (1, "grpo", 1e-4, 0.62),
                                    (1, "grpo", 1e-3, 0.1)]]  # fmt: skip
    tuning += [{"row": "srft", "stage": 0, "recipe": "srft", "learning_rate": 1e-4, "validation_accuracy": 0.55}]
    chosen = {"sft_grpo": {"learning_rates": [1e-3, 1e-4]}, "srft": {"learning_rates": [1e-4]}}
    rows = table_rows(report.tuning_table(tuning, [1e-4, 1e-3], LABELS, chosen))
    assert rows == {"SFT → RL (GRPO), stage 1 (sft)": ["50.0", "**60.0**"],
                    "SFT → RL (GRPO), stage 2 (grpo)": ["**62.0**", "10.0"], "SRFT": ["**55.0**", "–"]}  # fmt: skip


def test_tasks_pick_their_arena_files_and_rows(paper_table, tmp_path):
    files = paper_table.ARENA_FILES
    rows = {task: yaml.safe_load(path.read_text())["rows"] for task, path in files.items()}
    assert rows["expressions"] == [*rows["arithmetic"], "srft_filtered"] and "srft_filtered" not in rows["arithmetic"]
    assert rows["expressions_terse"] == rows["arithmetic"] == [row for row in ROWS if row != "srft_filtered"]
    for task, path in files.items():
        arena = yaml.safe_load(path.read_text())
        assert arena["grid"] == list(LR_GRID) and arena["budget"] == {"steps": 40, "sequences": 64}
        assert arena["test_seeds"] == [1, 2, 3] and arena["tuning_seed"] == 0 and arena["max_problems"] == 200
        folder = "recipes/toy" + ("" if task == "arithmetic" else f"/{task}")
        assert arena["recipe"] == {kind: f"{folder}/{kind}.yaml" for kind in ("sft", "grpo", "srft")}
        assert ("ood" in arena["splits"]) == (task != "arithmetic")
    # Flags change a copy of the task's file, written beside the report; --ci is the smallest protocol.
    path = paper_table.arena_file(paper_table.parse(["--task", "expressions", "--steps", "7", "--output-dir",
                                                     str(tmp_path / "a")]))  # fmt: skip
    copy = yaml.safe_load(path.read_text())
    assert path == tmp_path / "a" / "arena.yaml" and copy["budget"]["steps"] == 7
    assert copy["rows"] == rows["expressions"]
    assert copy["recipe"]["srft"] == str(ROOT / "recipes" / "toy" / "expressions" / "srft.yaml")
    ci_file = paper_table.arena_file(paper_table.parse(["--ci", "--output-dir", str(tmp_path / "b")]))
    ci = yaml.safe_load(ci_file.read_text())
    assert (ci["rows"], ci["grid"], ci["test_seeds"], ci["budget"]["steps"], ci["max_problems"]) == (
        ["base", "sft_grpo", "srft"], [1e-5, 1e-3], [1], 2, 8)  # fmt: skip


def test_a_regime_task_without_a_passing_record_trains_nothing(paper_table, tmp_path, monkeypatch):
    # The shipped record passes, and was measured on the task as it is now.
    record, failed = paper_table.regime_status("expressions_terse")
    assert record is not None and failed == [] and record["passed"]
    monkeypatch.setattr(paper_table, "regime_status", lambda task: (None, ["the base's sampled entropy is ..."]))
    with pytest.raises(SystemExit, match="python scripts/build_toy_base.py --task expressions_terse"):
        paper_table.main(["--ci", "--task", "expressions_terse", "--output-dir", str(tmp_path)])
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.skipif(
    shipped_base_info("expressions") is None,
    reason="no expressions base model yet (issue 14); without it the world would pretrain one for minutes",
)
def test_ci_preset_on_the_expressions_task_scores_ood(paper_table, tmp_path):
    assert paper_table.main(["--ci", "--task", "expressions", "--output-dir", str(tmp_path)]) == 0
    payload = json.loads((tmp_path / "arena.json").read_text())
    assert "expressions" in payload["recipe"]
    assert 0.0 <= payload["base"]["final_ood_accuracy"] <= 1.0
    assert all(0.0 <= run["final_ood_accuracy"] <= 1.0 for run in payload["runs"])
    summary = json.loads(next((tmp_path / "runs" / "test").glob("srft-*/stage0/ood-0/settings.json")).read_text())
    assert summary["max_new_tokens"] == 256  # a 6-term solution is up to 189 characters
    md = (tmp_path / "arena.md").read_text()
    assert "OOD accuracy (%)" in md and "exceeds two standard deviations" in md
    assert "recipes/toy/expressions/srft.yaml" in md


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rows", "srft,ppo"], "unknown row(s) ['ppo'] in `rows`; choose from ['base', 'sft', 'grpo', 'sft_grpo',"),
        (["--rows", "sft_grpo,srft", "--steps", "1"], "`budget` needs `steps` >= 2"),
        (["--seeds", "1,one"], "--seeds: expected comma-separated numbers"),
        (["--seeds", "0,1,2"], "must not include the tuning seed 0"),
        (["--grid", "1e-4,3e-4,1e-3"], "`grid` must span at least 2 decades"),
        (["--grid", "1e-4,fast"], "--grid: expected comma-separated numbers"),
        (["--eval-every", "-1"], "`eval_every: -1` must be >= 0"),
    ],
)
def test_bad_flags_fail_with_the_fix(paper_table, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        paper_table.main([*argv, "--output-dir", str(tmp_path / "out")])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # failed before writing, building or training anything
