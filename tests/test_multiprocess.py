"""SRFT across processes: DDP on 2 CPU processes gives the 1-process update; ZeRO-3 on CPU really shards."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch


ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "scripts" / "one_step.py"
pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]


def _run(cmd, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]


def _accelerate(config_name, *args):
    accelerate = shutil.which("accelerate") or "accelerate"
    return [accelerate, "launch", "--config_file", str(ROOT / "accelerate_configs" / config_name), str(SCRIPT), *args]


def test_two_processes_give_the_single_process_update(tmp_path):
    # Greedy generation and equal-length demos: the only difference left is how the batch is split.
    _run([sys.executable, str(SCRIPT), str(tmp_path / "one.pt"), "8"], tmp_path)
    _run(_accelerate("cpu_ddp.yaml", str(tmp_path / "two.pt"), "8"), tmp_path)
    one, two = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert one["facts"]["world"] == 1 and two["facts"]["world"] == 2
    assert two["facts"]["loss"] == pytest.approx(one["facts"]["loss"], rel=1e-5)
    for name, value in one["params"].items():  # SGD step: float32 reduction order is the only difference
        torch.testing.assert_close(two["params"][name], value, rtol=1e-5, atol=1e-6)


def test_deepspeed_zero3_on_cpu(tmp_path):
    pytest.importorskip("deepspeed")
    _run(_accelerate("cpu_zero3.yaml", str(tmp_path / "z3.pt"), "8", "--zero3"), tmp_path)
    facts = torch.load(tmp_path / "z3.pt")["facts"]
    assert facts["world"] == 2
    assert facts["zero_stage"] == 3
    assert facts["partitioned"]  # parameters carry DeepSpeed's ZeRO-3 partition ids
    assert torch.isfinite(torch.tensor(facts["loss"]))


def test_held_out_scoring_under_accelerate_launch(tmp_path):
    """Two processes share out the held-out problems; the table is printed once, the JSON written, warnings once."""
    accelerate = shutil.which("accelerate") or "accelerate"
    cmd = [accelerate, "launch", "--config_file", str(ROOT / "accelerate_configs" / "cpu_ddp.yaml"), "-m",
           "srft_trainer.train", "--config", str(ROOT / "recipes" / "toy" / "srft.yaml"), "--toy_world",
           str(tmp_path / "w"), "--max_steps", "1", "--per_device_train_batch_size", "32", "--heldout_size", "10",
           "--output_dir", str(tmp_path / "out"), "--save_steps", "7", "--plot_curves", "false"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    said = result.stdout + result.stderr
    assert result.returncode == 0, said[-6000:]
    scored = json.loads((tmp_path / "out" / "heldout_accuracy.json").read_text())
    assert scored["heldout_size"] == 10 and 0 <= scored["before"] <= 1 and 0 <= scored["after"] <= 1
    assert said.count("| held-out accuracy (10 problems) | before | after |") == 1
    assert said.count("`save_steps: 7` has no effect") == 1  # our warning, from the main process only


def test_deepspeed_has_the_gradient_accumulation_fix(monkeypatch):
    """setup.cfg and the installed DeepSpeed are at least the release with deepspeedai/DeepSpeed#7967; older fails."""
    from importlib.metadata import version

    from packaging.version import Version

    from srft_trainer import versions

    assert Version(version("deepspeed")) >= Version(versions.DEEPSPEED_MIN) == Version("0.19.0")
    assert f"deepspeed>={versions.DEEPSPEED_MIN}" in (ROOT / "setup.cfg").read_text()
    args = type("Args", (), {"deepspeed": None})()
    versions.check_deepspeed(args)  # no DeepSpeed in this run: nothing to check
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setattr(versions, "version", lambda name: "0.18.9")
    with pytest.raises(RuntimeError, match=r"DeepSpeed 0.18.9 drops gradients.*#7967.*deepspeed>=0.19.0"):
        versions.check_deepspeed(args)
