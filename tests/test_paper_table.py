"""
The miniature paper table (`benchmarks/paper_table.py`): its CI preset runs end to end (base, GRPO, SRFT; one seed,
two steps), its rows carry the paper-scale recipes' objective settings, its entropy and table arithmetic match
hand-computed values, and bad flags fail with messages naming the fix.
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

from srft_trainer.toy.world import shipped_base_info


ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "paper_table.py"


@pytest.fixture(scope="module")
def paper_table():
    spec = importlib.util.spec_from_file_location("paper_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["paper_table"] = module  # dataclasses look their module up while the script is being executed
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
def test_ci_preset_writes_the_table_the_plot_and_the_runs(paper_table, tmp_path, capsys):
    from srft_trainer.toy import build_toy_world, heldout_accuracy

    assert paper_table.main(["--ci", "--output-dir", str(tmp_path)]) == 0
    md = (tmp_path / "paper_table.md").read_text()
    rows = table_rows(md)
    assert list(rows) == ["Base model", "RL (GRPO)", "SRFT"]
    for cells in rows.values():
        accuracy = re.fullmatch(r"([\d.]+) ± ([\d.]+)", cells[0])
        assert accuracy and 0.0 <= float(accuracy.group(1)) <= 100.0 and float(accuracy.group(2)) == 0.0  # one seed
    assert rows["Base model"][1] == "–"  # no training, no training entropy
    assert "| SRFT |" in capsys.readouterr().out  # printed as well

    payload = json.loads((tmp_path / "paper_table.json").read_text())
    # The base row, scored once in-process, equals an independent scoring of the model folder on the same problems.
    world = build_toy_world(tmp_path / "toy-world")
    base = heldout_accuracy(world.model_dir, None, world.load_heldout(), n=8)
    assert payload["base"]["accuracy"] == pytest.approx(base)
    assert rows["Base model"][0] == f"{100 * base:.1f} ± 0.0"
    assert [(r["row"], r["seed"]) for r in payload["runs"]] == [("grpo", 0), ("srft", 0)]
    for run in payload["runs"]:  # scored at step 0 (the base), after each step, and logged every step
        assert [p["step"] for p in run["curve"]] == [0, 1, 2]
        assert run["curve"][0]["accuracy"] == payload["base"]["accuracy"]
        assert run["final_accuracy"] == run["curve"][-1]["accuracy"]
        assert [log["step"] for log in run["logs"]] == [1, 2]
        assert run["final_train_entropy"] == pytest.approx((run["logs"][0]["entropy"] + run["logs"][1]["entropy"]) / 2)
        assert all(p["entropy"] > 0 for p in run["curve"])
    srft_logs = payload["runs"][1]["logs"][0]
    assert 0.0 < srft_logs["srft/w_sft"] <= 0.5 and srft_logs["srft/w_rl"] >= 0.1  # 0.5 exp(-H), 0.1 exp(H)
    assert (tmp_path / "paper_table.png").stat().st_size > 10_000


def test_rows_carry_the_paper_scale_recipes_objective(paper_table, tmp_path):
    """Each ablation row trains with the same SRFT objective keys as its recipe in recipes/qwen2.5-math-7b/."""
    from srft_trainer.train import parse_args

    keys = ("sft_coef", "rl_pos_coef", "rl_entropy_weighting", "demo_rl")
    for row, recipe in [("luffy", "luffy"), ("srft", "srft"), ("srft_no_wsft", "srft_no_wsft"),
                        ("srft_no_wrl", "srft_no_wrl")]:  # fmt: skip
        ((toy_recipe, overrides),) = paper_table.ROWS[row].stages
        argv = paper_table.stage_argv(toy_recipe, overrides, None, tmp_path / row, tmp_path / "world", 3, 7)
        _, args, _ = parse_args(argv)
        paper = yaml.safe_load((ROOT / "recipes" / "qwen2.5-math-7b" / f"{recipe}.yaml").read_text())
        assert {k: getattr(args, k) for k in keys} == {k: paper[k] for k in keys}, row
        if paper["sft_coef"]:  # with sft_coef 0 (LUFFY) the SFT weighting is moot
            assert args.sft_entropy_weighting == paper["sft_entropy_weighting"], row
        assert (args.max_steps, args.seed, args.per_device_train_batch_size, args.num_generations) == (7, 3, 64, 8)
    _, args, _ = parse_args(paper_table.stage_argv(*paper_table.ROWS["sft_rl_const"].stages[0], None, tmp_path,
                                                   tmp_path / "world", 0, 5))  # fmt: skip
    assert (args.sft_coef, args.rl_pos_coef, args.sft_entropy_weighting, args.rl_entropy_weighting) == (
        1.0, 1.0, False, False)  # fmt: skip
    assert paper_table.stage_steps(60, 2) == [30, 30] and paper_table.stage_steps(5, 2) == [2, 3]


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


def test_table_arithmetic_on_hand_made_runs(paper_table):
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
    assert paper_table.targets(results, base) == pytest.approx((0.275, 0.425))
    md = paper_table.table(results, ["base", "grpo", "srft"], base)
    assert "(27.5%)" in md and "(42.5%)" in md
    rows = table_rows(md)
    assert rows["Base model"] == ["30.0 ± 0.0", "–", "0.500 ± 0.000", "0 ± 0", "not reached", "1"]
    assert rows["RL (GRPO)"] == ["27.5 ± 24.7", "0.050 ± 0.000", "0.200 ± 0.000", "0 ± 0",
                                 "20 ± 0 (1/2 not reached)", "2"]  # fmt: skip
    assert rows["SRFT"] == ["55.0 ± 7.1", "0.200 ± 0.141", "0.200 ± 0.000", "0 ± 0", "15 ± 7", "2"]
    # Without an SRFT row there is no target; an SRFT that does not beat the base has no gain to halve.
    assert paper_table.targets(results[2:], base) == (None, None)
    assert paper_table.targets([run("srft", [(0, 0.3), (10, 0.2)], 0.1)], base) == (pytest.approx(0.1), None)


def test_ood_column_and_separation_by_hand(paper_table):
    def run(row, accuracy, ood):
        return {"row": row, "curve": [{"step": 0, "accuracy": 0.3}, {"step": 10, "accuracy": accuracy}],
                "final_accuracy": accuracy, "final_ood_accuracy": ood, "final_heldout_entropy": 0.4,
                "final_train_entropy": 0.5}  # fmt: skip

    base = {"row": "base", "accuracy": 0.3, "final_accuracy": 0.3, "final_heldout_entropy": 0.5,
            "final_ood_accuracy": 0.1, "curve": [{"step": 0, "accuracy": 0.3, "entropy": 0.5}]}  # fmt: skip
    results = [run("srft", 0.50, 0.20), run("srft", 0.54, 0.22), run("srft", 0.52, 0.24),
               run("sft", 0.60, 0.21), run("sft", 0.62, 0.23), run("sft", 0.64, 0.19),
               run("grpo", 0.40, 0.05)]  # fmt: skip
    rows = table_rows(paper_table.table(results, ["base", "sft", "grpo", "srft"], base))
    assert rows["SFT"][:2] == ["62.0 ± 2.0", "21.0 ± 2.0"]  # held-out, then OOD
    assert rows["Base model"][:2] == ["30.0 ± 0.0", "10.0 ± 0.0"]
    sep = table_rows(paper_table.separation(results, ["base", "sft", "grpo", "srft"], base))
    # SFT - SRFT: +10.0 points held-out, both stds 2.0 -> threshold 4.0: separated; OOD -1.0 vs 4.0: not.
    assert sep["SFT"] == ["+10.0, 4.0, yes", "-1.0, 4.0, no"]
    # GRPO has one run (std 0): the threshold is twice SRFT's std.
    assert sep["RL (GRPO)"] == ["-12.0, 4.0, yes", "-17.0, 4.0, yes"]
    assert sep["Base model"] == ["-22.0, 4.0, yes", "-12.0, 4.0, yes"]
    assert "SRFT" not in sep
    assert paper_table.separation(results[3:], ["sft"], base) == ""  # no SRFT row, no reference


def test_tasks_pick_their_recipes_and_rows(paper_table, tmp_path):
    from srft_trainer.train import parse_args

    argv = paper_table.stage_argv(
        "srft", {"min_demo_reward": 1.0}, None, tmp_path, tmp_path / "w", 0, 3, "expressions"
    )
    assert argv[1] == str(ROOT / "recipes" / "toy" / "expressions" / "srft.yaml")
    script_args, args, _ = parse_args(argv)
    assert script_args.toy_task == "expressions" and args.min_demo_reward == 1.0
    assert paper_table.DEFAULT_ROWS["expressions"] == [*paper_table.DEFAULT_ROWS["arithmetic"], "srft_filtered"]
    assert "srft_filtered" not in paper_table.DEFAULT_ROWS["arithmetic"]
    assert "`recipes/toy/expressions/srft.yaml` with `min_demo_reward: 1.0`" in paper_table.legend(
        ["srft_filtered"], "expressions"
    )
    # Each task has its own default budget (the README's tables); --steps and --ci override it.
    assert paper_table.parse([]).steps == 60 and paper_table.parse(["--task", "expressions"]).steps == 50
    assert paper_table.parse(["--task", "expressions", "--steps", "7"]).steps == 7
    assert paper_table.parse(["--task", "expressions", "--ci"]).steps == 2


@pytest.mark.slow
@pytest.mark.skipif(
    shipped_base_info("expressions") is None,
    reason="no expressions base model yet (issue 14); without it the world would pretrain one for minutes",
)
def test_ci_preset_on_the_expressions_task_scores_ood(paper_table, tmp_path):
    assert paper_table.main(["--ci", "--task", "expressions", "--output-dir", str(tmp_path)]) == 0
    payload = json.loads((tmp_path / "paper_table.json").read_text())
    assert payload["settings"]["task"] == "expressions"
    assert 0.0 <= payload["base"]["final_ood_accuracy"] <= 1.0
    assert all(0.0 <= run["final_ood_accuracy"] <= 1.0 for run in payload["runs"])
    md = (tmp_path / "paper_table.md").read_text()
    assert "OOD accuracy (%)" in md and "exceeds two standard deviations" in md
    assert "recipes/toy/expressions/srft.yaml" in md


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--rows", "srft,ppo"],
            "unknown row(s) ['ppo']; choose from: base, sft, grpo, sft_grpo, luffy, sft_rl_const,",
        ),
        (["--rows", "sft_grpo", "--steps", "1"], "--steps must be >= 2"),
        (["--seeds", "0,one"], "--seeds: expected comma-separated integers"),
        (["--eval-every", "0"], "--eval-every must be >= 1"),
    ],
)
def test_bad_flags_fail_with_the_fix(paper_table, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        paper_table.main([*argv, "--output-dir", str(tmp_path)])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # failed before building or training anything
