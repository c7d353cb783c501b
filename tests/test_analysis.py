"""`srft analyze ...`: token-probability change, training dynamics and trajectory, on tiny models built here."""

import csv
import json
import sys

import numpy as np
import pytest
import torch
from tiny import tiny_model, tiny_tokenizer

from srft_trainer import cli
from srft_trainer.analysis import dynamics, scoring, token_probs, trajectory


ROWS = [
    {"prompt": [{"role": "user", "content": "What is 2+3?"}], "response": "2+3=5, so the answer is \\boxed{5}."},
    {"prompt": "Q: 7*6?\nA:", "response": " 42\nDone."},
    {
        "prompt": [{"role": "system", "content": "Think."}, {"role": "user", "content": "Say hi"}],
        "response": [{"role": "assistant", "content": "hi there"}],
    },
]


def _is_png(path):
    return path.is_file() and path.stat().st_size > 2000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Saved tiny checkpoints: `base`, `same` (identical copy), `sft` (base after one SFT step on ROWS[0], saved
    without tokenizer files), and two unrelated models `other`, `third`; the tokenizer alone; the data file."""
    root = tmp_path_factory.mktemp("analysis")
    tokenizer = tiny_tokenizer()
    paths = {}
    paths["tokenizer_dir"] = root / "tokenizer"
    tokenizer.save_pretrained(paths["tokenizer_dir"])
    for name, seed in [("base", 0), ("same", 0), ("other", 1), ("third", 2)]:
        paths[name] = root / name
        tiny_model(tokenizer, seed=seed).save_pretrained(paths[name])
        tokenizer.save_pretrained(paths[name])
    model = tiny_model(tokenizer, seed=0)
    example = scoring.encode(tokenizer, [ROWS[0]["prompt"]], [ROWS[0]["response"]])[0]
    input_ids = torch.tensor([example.prompt_ids + example.response_ids])
    labels = input_ids.clone()
    labels[:, : len(example.prompt_ids)] = -100  # loss on the response only, as SFT on a completion
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(input_ids=input_ids, labels=labels).loss.backward()
    optimizer.step()
    paths["sft"] = root / "sft"
    model.save_pretrained(paths["sft"])
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    return {"root": root, "tokenizer": tokenizer, "data": data, **{k: str(v) for k, v in paths.items()}}


def test_logprobs_batched_and_chunked_equal_one_sequence_at_a_time(world, monkeypatch):
    tokenizer = world["tokenizer"]
    model = scoring.load_model(world["sft"], torch.device("cpu"))
    prompts = [row["prompt"] for row in ROWS]
    examples = scoring.encode(tokenizer, prompts, [scoring.response_text(r["response"], "response") for r in ROWS])
    expected = []
    for ex in examples:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ex.prompt_ids + ex.response_ids])).logits[0].float()
        positions = torch.arange(len(ex.prompt_ids) - 1, len(ex.prompt_ids) + len(ex.response_ids) - 1)
        expected.append(logits.log_softmax(-1)[positions, torch.tensor(ex.response_ids)])
    got = scoring.response_logprobs(model, examples, batch_size=2, logit_chunk=3)  # padding and chunk borders
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(scoring, "_head_is_separable", lambda model, device: False)  # the full-logits fallback
    for e, g in zip(expected, scoring.response_logprobs(model, examples, batch_size=2, logit_chunk=4)):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


def test_prompt_messages_go_through_the_chat_template(world):
    tokenizer = world["tokenizer"]
    ids = scoring.prompt_ids(tokenizer, ROWS[0]["prompt"])
    assert tokenizer.decode(ids) == "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
    with pytest.raises(ValueError, match="Column `prompt`"):
        scoring.prompt_ids(tokenizer, 3)


def test_saved_character_tokenizer_reloads_from_a_qwen2_checkpoint(world):
    # transformers 5 would load a byte-level Qwen2Tokenizer here, which drops spaces and newlines.
    text = "<think>\n 8+5=13 </think>\n\\boxed{13}"
    tokenizer = scoring.load_tokenizer(world["base"])
    assert tokenizer(text, add_special_tokens=False)["input_ids"] == world["tokenizer"](text)["input_ids"]
    assert scoring.load_tokenizer(world["sft"]) is None  # no tokenizer files


def test_summary_and_histogram_numbers():
    deltas = np.array([-0.5, -0.05, 0.0, 0.2, 0.35, 1.0])
    summary = token_probs.summarize(deltas, thresholds=(0.1, 0.3))
    assert summary["n_tokens"] == 6
    assert summary["mean_abs_delta"] == pytest.approx(2.1 / 6)
    assert summary["frac_abs_delta_gt_0.1"] == pytest.approx(4 / 6)
    assert summary["frac_abs_delta_gt_0.3"] == pytest.approx(3 / 6)
    assert summary["frac_increased"] == pytest.approx(3 / 6) and summary["frac_decreased"] == pytest.approx(2 / 6)
    counts, edges = token_probs.histogram(deltas, bins=4)  # [-1,-.5) [-.5,0) [0,.5) [.5,1]
    assert counts.tolist() == [0, 2, 3, 1] and edges.tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]


def test_token_probs_identical_model_zero_and_sft_step_increases(world, tmp_path):
    out = tmp_path / "tp"
    argv = ["analyze", "token-probs", "--base", world["base"], "--finetuned", f"same={world['same']}"]
    argv += ["--finetuned", f"SFT={world['sft']}", "--data", str(world["data"]), "--output-dir", str(out)]
    assert cli.main(argv + ["--batch-size", "2", "--heatmaps", "2"]) == 0

    rows = [json.loads(line) for line in (out / "tokens.jsonl").read_text().splitlines()]
    assert [r["response"] for r in rows] == ["2+3=5, so the answer is \\boxed{5}.", " 42\nDone.", "hi there"]
    n_tokens = sum(len(r["tokens"]) for r in rows)
    assert "".join(rows[2]["tokens"]) == "hi there"
    summary = json.loads((out / "summary.json").read_text())
    same, sft = summary["models"]["same"], summary["models"]["SFT"]
    assert same["n_tokens"] == sft["n_tokens"] == n_tokens
    assert same["mean_abs_delta"] == 0.0 and same["frac_abs_delta_gt_0.1"] == 0.0
    assert all(r["p"]["same"] == r["p_base"] for r in rows)

    # The SFT step was on response 0: its tokens became more likely.
    # (A random 100-token model gives each token p ~ 0.01, so the changes are small in absolute terms.)
    deltas = [np.array(r["p"]["SFT"]) - np.array(r["p_base"]) for r in rows]
    assert (deltas[0] > 0).mean() > 0.9 and deltas[0].mean() > 0
    assert sft["mean_abs_delta"] > 0

    with open(out / "histogram.csv") as f:
        hist = list(csv.DictReader(f))
    for label in ("same", "SFT"):
        assert sum(int(r["count"]) for r in hist if r["label"] == label) == n_tokens
    assert [int(r["count"]) for r in hist if r["label"] == "same" and r["bin_left"] == "0"] == [n_tokens]
    with open(out / "summary.csv") as f:
        assert {r["label"]: float(r["mean_abs_delta"]) for r in csv.DictReader(f)}["SFT"] == sft["mean_abs_delta"]

    assert _is_png(out / "histogram.png")
    assert sorted(p.name for p in (out / "heatmaps").iterdir()) == [
        "SFT_0000.png",
        "SFT_0001.png",
        "same_0000.png",
        "same_0001.png",
    ]
    assert all(_is_png(p) for p in (out / "heatmaps").iterdir())
    page = (out / "heatmaps.html").read_text()
    assert page.count("<span") == 2 * n_tokens and "Δp" in page


def test_token_probs_generates_responses(world, tmp_path):
    out = tmp_path / "gen"
    argv = ["token-probs", "--base", world["base"], "--finetuned", world["sft"], "--data", str(world["data"])]
    argv += ["--tokenizer", world["tokenizer_dir"]]
    argv += ["--generate-with", "finetuned", "--max-new-tokens", "8", "--output-dir", str(out), "--html-max", "0"]
    from srft_trainer.analysis import cli as analysis_cli

    assert analysis_cli.main(argv) == 0
    generated = [json.loads(line) for line in (out / "responses.jsonl").read_text().splitlines()]
    assert [g["prompt"] for g in generated] == [r["prompt"] for r in ROWS]
    rows = [json.loads(line) for line in (out / "tokens.jsonl").read_text().splitlines()]
    assert [r["response"] for r in rows] == [g["response"] for g in generated if g["response"]]
    assert all(1 <= len(r["tokens"]) <= 8 for r in rows)
    assert not (out / "heatmaps.html").exists()


def test_token_probs_names_a_missing_column(world, tmp_path):
    from srft_trainer.analysis import cli as analysis_cli

    argv = ["token-probs", "--finetuned", world["same"], "--data", str(world["data"]), "--output-dir", str(tmp_path)]
    with pytest.raises(ValueError, match="has no tokenizer files: pass --tokenizer"):
        analysis_cli.main(argv + ["--base", world["sft"]])
    with pytest.raises(ValueError, match="no column 'answer'"):
        analysis_cli.main(argv + ["--base", world["base"], "--response-column", "answer"])


def _trainer_state(path, entries):
    path.mkdir(parents=True, exist_ok=True)
    (path / "trainer_state.json").write_text(json.dumps({"global_step": entries[-1]["step"], "log_history": entries}))


def test_dynamics_plots_known_values_and_skips_missing_metrics(tmp_path, capsys):
    srft = [
        {
            "step": s,
            "loss": 0.1,
            "reward": 0.1 * s,
            "completions/mean_length": 100 + s,
            "entropy": 1.0 - 0.01 * s,
            "srft/entropy": 0.9,
            "srft/w_sft": 0.5 + 0.01 * s,
            "srft/w_rl": 2.0,
            "srft/sft_nll": 3.0 / s,
        }
        for s in (1, 2, 3)
    ]
    srft.append({"step": 3, "train_runtime": 12.0, "total_flos": 0})
    grpo = [{"step": s, "reward": 0.05 * s, "completions/mean_length": 90.0, "entropy": None} for s in (2, 4)]
    # GRPO's state lives in its last checkpoint only (an older one has fewer steps).
    _trainer_state(tmp_path / "grpo" / "checkpoint-2", grpo[:1])
    _trainer_state(tmp_path / "grpo" / "checkpoint-4", grpo)
    _trainer_state(tmp_path / "srft", srft)
    out = tmp_path / "dyn"
    argv = ["analyze", "dynamics", "--run", f"SRFT={tmp_path / 'srft'}", "--run", f"GRPO={tmp_path / 'grpo'}"]
    assert cli.main(argv + ["--output-dir", str(out)]) == 0
    assert _is_png(out / "dynamics.png")
    with open(out / "dynamics.csv") as f:
        rows = list(csv.DictReader(f))
    got = {(r["run"], r["metric"], float(r["step"])): float(r["value"]) for r in rows}
    assert got[("SRFT", "reward", 2.0)] == pytest.approx(0.2)
    assert got[("SRFT", "srft/sft_nll", 3.0)] == pytest.approx(1.0)
    assert got[("GRPO", "reward", 4.0)] == pytest.approx(0.2)
    assert got[("GRPO", "completions/mean_length", 2.0)] == 90.0
    assert {m for r, m, _ in got if r == "GRPO"} == {"reward", "completions/mean_length"}  # entropy was None
    assert {m for r, m, _ in got if r == "SRFT"} == {
        "reward",
        "completions/mean_length",
        "entropy",
        "srft/entropy",
        "srft/w_sft",
        "srft/w_rl",
        "srft/sft_nll",
    }
    assert len(rows) == 7 * 3 + 2 * 2

    # A panel that no run has is skipped with a message; --metric picks panels; smoothing is a trailing mean.
    assert cli.main(["analyze", "dynamics", "--run", str(tmp_path / "grpo"), "--output-dir", str(out)]) == 0
    assert "Skipping panel 'w_SFT'" in capsys.readouterr().out
    argv = ["analyze", "dynamics", "--run", str(tmp_path / "srft"), "--metric", "srft/w_sft", "--smooth", "2"]
    assert cli.main(argv + ["--output-dir", str(out)]) == 0
    with open(out / "dynamics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["run"], float(r["smoothed"])) for r in rows] == [
        ("srft", pytest.approx(0.51)),
        ("srft", pytest.approx(0.515)),
        ("srft", pytest.approx(0.525)),
    ]
    with pytest.raises(ValueError, match="no trainer_state.json"):
        dynamics.load_run(str(out))


def test_dynamics_tensorboard_without_the_package_is_skipped(tmp_path, monkeypatch, capsys):
    _trainer_state(tmp_path / "run", [{"step": 1, "reward": 0.5}])
    (tmp_path / "run" / "runs").mkdir()
    (tmp_path / "run" / "runs" / "events.out.tfevents.1.host").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # makes `import tensorboard...` raise ImportError
    assert dynamics.load_run(str(tmp_path / "run")) == {"reward": {1.0: 0.5}}
    assert "pip install tensorboard" in capsys.readouterr().out


def test_dynamics_reads_tensorboard_events(tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    _trainer_state(tmp_path / "run", [{"step": 1, "reward": 0.5}])
    writer = SummaryWriter(str(tmp_path / "run" / "runs" / "x"))
    for step in (1, 2):
        writer.add_scalar("train/reward", 9.0 * step, step)  # step 1 is in trainer_state.json, which wins
        writer.add_scalar("train/srft/w_sft", 0.25 * step, step)
        writer.add_scalar("eval/reward", 0.75, step)
    writer.close()
    series = dynamics.load_run(str(tmp_path / "run"))
    assert series["reward"] == {1.0: 0.5, 2.0: 18.0}
    assert series["srft/w_sft"] == {1.0: 0.25, 2.0: 0.5}
    assert series["eval_reward"] == {1.0: 0.75, 2.0: 0.75}


def test_expand_checkpoints_in_step_order(tmp_path):
    for name in ("checkpoint-10", "checkpoint-2", "checkpoint-x"):
        (tmp_path / "run" / name).mkdir(parents=True)
    (tmp_path / "run" / "config.json").write_text("{}")
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "config.json").write_text("{}")
    paths = trajectory.expand_checkpoints(f"{tmp_path / 'base'},{tmp_path / 'run'}")
    assert paths == [str(tmp_path / p) for p in ("base", "run/checkpoint-2", "run/checkpoint-10", "run")]
    with pytest.raises(ValueError, match="neither a model folder"):
        trajectory.expand_checkpoints(str(tmp_path / "run" / "checkpoint-x"))


def test_trajectory_distances_3d_then_2d_on_the_same_responses(world, tmp_path):
    out3 = tmp_path / "t3"
    refs = ["--reference", f"A={world['base']}"]
    refs += ["--reference", f"B={world['other']}"]
    argv = ["analyze", "trajectory", *refs, "--reference", f"C={world['third']}"]
    argv += ["--run", f"SFT={world['same']},{world['sft']}", "--data", str(world["data"]), "--max-new-tokens", "12"]
    assert cli.main(argv + ["--output-dir", str(out3)]) == 0
    result = json.loads((out3 / "trajectory.json").read_text())
    coords = {label: ref["coordinates"] for label, ref in result["references"].items()}
    for label in "ABC":
        assert coords[label][label] == 0.0  # a reference is at distance 0 from itself
        assert all(0.0 < coords[label][other] < 1.0 for other in "ABC" if other != label)
    same, sft = result["runs"]["SFT"]
    assert same["distances"] == coords["A"]  # an identical copy of A sits exactly on A
    assert sft["distances"]["A"] > 0.0
    assert _is_png(out3 / "trajectory.png")

    # Distances recomputed by hand from the written response set and the scored probabilities.
    tokenizer = world["tokenizer"]
    saved = [json.loads(line) for line in (out3 / "responses_B.jsonl").read_text().splitlines()]
    examples = scoring.encode(tokenizer, [s["prompt"] for s in saved], [s["response"] for s in saved])
    assert result["references"]["B"]["n_tokens"] == sum(len(e.response_ids) for e in examples)
    p_b = scoring.token_probs_under(world["other"], examples, torch.device("cpu"))
    p_sft = scoring.token_probs_under(world["sft"], examples, torch.device("cpu"))
    by_hand = np.abs(np.concatenate(p_sft) - np.concatenate(p_b)).mean()
    assert sft["distances"]["B"] == pytest.approx(by_hand, rel=1e-9)

    # Two references, reusing the 3-D run's responses: same coordinates on those two axes, a 2-D plot.
    out2 = tmp_path / "t2"
    argv = ["analyze", "trajectory", *refs, "--run", f"SFT={world['same']},{world['sft']}"]
    argv += ["--reference-responses", f"A={out3 / 'responses_A.jsonl'}"]
    argv += ["--reference-responses", f"B={out3 / 'responses_B.jsonl'}", "--output-dir", str(out2)]
    assert cli.main(argv) == 0
    result2 = json.loads((out2 / "trajectory.json").read_text())
    assert result2["runs"]["SFT"][1]["distances"] == {k: sft["distances"][k] for k in "AB"}
    assert _is_png(out2 / "trajectory.png")
    with open(out2 / "trajectory.csv") as f:
        assert [r["kind"] for r in csv.DictReader(f)] == ["reference", "reference", "checkpoint", "checkpoint"]
    with pytest.raises(ValueError, match="2 or 3 --reference"):
        cli.main(
            [
                "analyze",
                "trajectory",
                "--reference",
                f"A={world['base']}",
                "--run",
                f"X={world['sft']}",
                "--data",
                str(world["data"]),
                "--output-dir",
                str(out2),
            ]
        )


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny matrices: one thread is fastest, and avoids spinning threads fighting over a shared 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
