"""The user's path: the README's Python snippet as written, the "your own model" recipe on a real checkpoint, the
model card, the console, `--help` and `--version`."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from srft_trainer import cli
from srft_trainer.console import compact_line


ROOT = Path(__file__).resolve().parents[1]


def _env():
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONPATH": str(ROOT)}


def _run(cmd, cwd, timeout=900):
    result = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return result.stdout, result.stderr


def readme_python_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("**From Python**") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_python_snippet_runs_as_written(tmp_path):
    snippet = readme_python_snippet()
    assert "import" in snippet and "trainer.train()" in snippet
    (tmp_path / "snippet.py").write_text(snippet + '\nprint("trained steps:", trainer.state.global_step)\n')
    stdout, stderr = _run([sys.executable, "snippet.py"], tmp_path)
    assert "trained steps: 10" in stdout
    assert "FutureWarning" not in stderr, stderr[-3000:]  # none for the settings the snippet (and SRFTConfig) chose
    assert (tmp_path / "outputs" / "python-srft" / "model.safetensors").exists()


def _card_problems(card: str) -> list[str]:
    return [word for word in ("None", "licence: license", "time machine") if word in card]


@pytest.mark.slow
def test_quick_start_console_card_and_scores(tmp_path):
    """The quick-start recipe, shortened: a compact line per logging step, no FutureWarning, a card that says what."""
    out = tmp_path / "toy-srft"
    stdout, stderr = _run(
        ["srft", "train", "--config", str(ROOT / "recipes" / "toy" / "srft.yaml"), "--toy_world", str(tmp_path / "w"),
         "--max_steps", "2", "--logging_steps", "1", "--heldout_size", "8", "--output_dir", str(out)],
        tmp_path,
    )  # fmt: skip
    said = stdout + stderr
    assert re.search(r"step 1/2 \| loss [\d.]+ \| reward [\d.]+ .*\| w_sft [\d.]+ \| w_rl [\d.]+", said), said[-3000:]
    assert "{'loss'" not in said and "'srft/w_sft'" not in said  # the metrics dict went to trainer_state.json only
    assert "FutureWarning" not in said
    card = (out / "README.md").read_text()
    assert _card_problems(card) == [], card
    assert f"- base model: {tmp_path / 'w' / 'base'}" in card and f"- data: {tmp_path / 'w' / 'train.jsonl'}" in card
    assert "license: apache-2.0" in card and "2506.19767" in card and "@inproceedings{fu2026srft" in card
    assert re.search(
        r"Held-out accuracy \(greedy, 8 problems of \S+heldout.jsonl\): [\d.]+% before training, [\d.]+% after", card
    )
    assert "What is " in card  # the example prompt is one of the training prompts
    assert "srft/w_sft" in json.dumps(json.loads((out / "trainer_state.json").read_text())["log_history"])


@pytest.mark.slow
def test_own_model_recipe_on_smollm2(smollm2, tmp_path):
    """recipes/custom/srft.yaml on a real pretrained checkpoint: demos used, no chat-template fallback, a real card."""
    out = tmp_path / "custom"
    _run(
        ["srft", "train", "--config", "recipes/custom/srft.yaml", "--model_name_or_path", str(smollm2),
         "--max_steps", "1", "--max_completion_length", "32", "--output_dir", str(out)],
        ROOT,
    )  # fmt: skip
    logged = json.loads((out / "trainer_state.json").read_text())["log_history"][0]
    assert logged["srft/demos_used"] == 2  # 2 prompts x 4 slots, one demonstration each
    assert logged["srft/demo_template_fallbacks"] == 0  # demos tokenised through SmolLM2's own ChatML template
    card = (out / "README.md").read_text()
    assert _card_problems(card) == [], card
    assert f"- base model: {smollm2}" in card and "license: apache-2.0" in card  # the GGUF's own licence


def test_version_and_help():
    assert cli.version().startswith("srft-trainer ") and "TRL 1.16" in cli.version()
    from srft_trainer.console import short_help

    text = short_help("srft")
    lines = text.splitlines()
    assert lines[0] == "usage: srft train --config RECIPE [--key value ...]"
    assert len(lines) < 120
    assert text.index("--toy_world") < text.index("--num_demos_per_group") < text.index("--help-all")
    assert "--max_unscorable_steps" in text and "--learning_rate" in text


def test_version_and_help_from_the_command_line(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("srft-trainer ")
    assert cli.main(["train", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: srft train --config RECIPE")


def test_compact_line():
    logs = {"loss": 0.15625, "reward": 0.125, "srft/w_sft": 0.3513, "srft/demos_used": 8.0, "learning_rate": 4e-05,
            "srft/reward_failures": 0.0, "clip_ratio/low_mean": 0.0}  # fmt: skip
    assert compact_line(5, 150, logs) == "step 5/150 | loss 0.1562 | reward 0.125 | w_sft 0.3513 | demos 8 | lr 4e-05"
    assert "reward failures 3" in compact_line(5, 150, dict(logs, **{"srft/reward_failures": 3.0}))
    assert compact_line(150, 150, {"train_runtime": 212.4, "train_steps_per_second": 0.706}).startswith(
        "done in 212 s"
    )


def test_one_citation_the_readmes():
    """The model card's SRFT citation is the README's, character for character."""
    from srft_trainer.model_card import SRFT_CITATION

    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Citation\n\n```bibtex\n(.*?)\n```", text, re.S).group(1)
    assert block == SRFT_CITATION
