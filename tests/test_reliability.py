"""Long runs die: resume after SIGKILL, checkpoint on SIGTERM, unwritable or full output dirs, failed Hub pushes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_train_cli import assets, recipe  # noqa: F401 - the fixture and recipe writer are shared
from trainer_utils import config, contains_solution, make_dataset, tiny_pair

from srft_trainer import SRFTTrainer, cli
from srft_trainer.callbacks import check_output_dir


def _train_cmd(recipe_path, *extra):
    return [sys.executable, "-m", "srft_trainer.train", "--config", recipe_path, *extra]


def _env():
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONUNBUFFERED": "1"}


def _losses(output_dir):
    state = json.loads((Path(output_dir) / "trainer_state.json").read_text())
    return {h["step"]: (h["loss"], h["reward"]) for h in state["log_history"] if "loss" in h}


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, assets):  # noqa: F811
    common = dict(max_steps=6, save_strategy="steps", save_steps=3, learning_rate=0.05, plot_curves=False)
    full = recipe(tmp_path / "full", assets, output_dir=str(tmp_path / "full"), **common)
    subprocess.run(_train_cmd(full), env=_env(), check=True, capture_output=True, timeout=600)

    killed = recipe(tmp_path / "killed", assets, output_dir=str(tmp_path / "killed"), **common)
    proc = subprocess.Popen(_train_cmd(killed), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "killed" / "checkpoint-3"
    deadline = time.monotonic() + 600
    while not (checkpoint / "trainer_state.json").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (checkpoint / "trainer_state.json").exists()

    subprocess.run(_train_cmd(killed, "--resume_from_checkpoint", str(checkpoint)), env=_env(), check=True,
                   capture_output=True, timeout=600)  # fmt: skip
    reference, resumed = _losses(tmp_path / "full"), _losses(tmp_path / "killed")
    assert sorted(resumed) == sorted(reference) == [1, 2, 3, 4, 5, 6]
    for step in (4, 5, 6):  # after the resume point: same data order, same RNG, same updates (CPU, float32)
        assert resumed[step] == pytest.approx(reference[step], rel=1e-4, abs=1e-6), step


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path, assets):  # noqa: F811
    path = recipe(tmp_path, assets, max_steps=10_000, save_strategy="steps", save_steps=10_000, plot_curves=False)
    proc = subprocess.Popen(_train_cmd(path), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:  # wait until training is under way
        if "'loss'" in line:
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    checkpoints = list((tmp_path / "out").glob("checkpoint-*"))
    assert len(checkpoints) == 1 and int(checkpoints[0].name.split("-")[1]) < 10_000
    assert (checkpoints[0] / "trainer_state.json").exists() and (checkpoints[0] / "model.safetensors").exists()


def test_unwritable_output_dir_fails_at_construction(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    tok, model = tiny_pair()
    with pytest.raises(OSError, match="a-file/out"):  # the path that cannot be written
        SRFTTrainer(model=model, reward_funcs=[contains_solution], args=config(blocker / "out"),
                    train_dataset=make_dataset(), processing_class=tok)  # fmt: skip


def test_full_disk_fails_before_training(tmp_path, monkeypatch):
    import shutil

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=1000))
    with pytest.raises(OSError, match="GiB free but one checkpoint needs"):
        check_output_dir(str(tmp_path), needed_bytes=10**6)
    check_output_dir(str(tmp_path), needed_bytes=0)  # nothing to save: no space needed
    tok, model = tiny_pair()
    with pytest.raises(OSError, match="save_only_model"):
        SRFTTrainer(model=model, reward_funcs=[contains_solution], args=config(tmp_path, save_strategy="steps"),
                    train_dataset=make_dataset(), processing_class=tok)  # fmt: skip


def test_failed_hub_push_keeps_the_local_model_and_says_so(tmp_path, assets, monkeypatch, capsys):  # noqa: F811
    def no_network(self, *args, **kwargs):
        raise ConnectionError("Hub unreachable")

    monkeypatch.setattr(SRFTTrainer, "init_hf_repo", lambda self, *a, **k: None)
    monkeypatch.setattr(SRFTTrainer, "push_to_hub", no_network)
    path = recipe(tmp_path, assets, push_to_hub=True, hub_model_id="someone/tiny-srft", plot_curves=False)
    assert cli.main(["train", "--config", path]) == 1
    err = capsys.readouterr().err
    assert "Push to the Hub failed" in err and "intact" in err
    assert (tmp_path / "out" / "model.safetensors").exists()
    assert yaml.safe_load(Path(path).read_text())["push_to_hub"] is True
