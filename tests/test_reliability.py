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


RESUME_RUN = dict(max_steps=6, save_strategy="steps", save_steps=3, learning_rate=0.05, plot_curves=False)
SCRIPTS = Path(__file__).resolve().parent / "scripts"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, assets):  # noqa: F811
    """The 6-step run every kill/resume test compares with."""
    root = tmp_path_factory.mktemp("full")
    subprocess.run(_train_cmd(recipe(root, assets, output_dir=str(root / "out"), **RESUME_RUN)), env=_env(),
                   check=True, capture_output=True, timeout=600)  # fmt: skip
    return _losses(root / "out")


def _wait_for(path: Path, proc, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), f"{path} never appeared"


def _resume_matches(output_dir: Path, reference: dict) -> str:
    """Resumes with `--resume_from_checkpoint true` from the command line; returns what the run printed."""
    path = str(output_dir.parent / "recipe.yaml")
    done = subprocess.run(_train_cmd(path, "--resume_from_checkpoint", "true"), env=_env(), check=True,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    resumed = _losses(output_dir)
    assert sorted(resumed) == sorted(reference) == [1, 2, 3, 4, 5, 6]
    for step in (4, 5, 6):  # after the resume point: same data order, same RNG, same updates (CPU, float32)
        assert resumed[step] == pytest.approx(reference[step], rel=1e-4, abs=1e-6), step
    return done.stdout + done.stderr


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, assets, uninterrupted):  # noqa: F811
    killed = recipe(tmp_path, assets, output_dir=str(tmp_path / "out"), **RESUME_RUN)
    proc = subprocess.Popen(_train_cmd(killed), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(tmp_path / "out" / "checkpoint-3", proc)  # renamed into place once complete
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (tmp_path / "out" / "checkpoint-3" / "trainer_state.json").exists()
    _resume_matches(tmp_path / "out", uninterrupted)


@pytest.mark.slow
def test_sigkill_during_a_save_leaves_no_partial_checkpoint_in_view(tmp_path, assets, uninterrupted):  # noqa: F811
    killed = recipe(tmp_path, assets, output_dir=str(tmp_path / "out"), **RESUME_RUN)
    env = {**_env(), "SLOW_SAVE": "60", "SLOW_SAVE_FROM": "6"}  # checkpoint-6's save takes a minute
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "slow_save_train.py"), "--config", killed], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    staging = tmp_path / "out" / ".staging" / "checkpoint-6"
    _wait_for(staging / "rng_state.pth", proc)  # weights, optimizer and RNG written; trainer state not yet
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3"]  # the cut-off save is out of view
    assert not (staging / "trainer_state.json").exists()
    _resume_matches(out, uninterrupted)  # from checkpoint-3, the newest complete one
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]
    assert not (out / ".staging").exists()  # cleared by the next save


@pytest.mark.slow
def test_resume_true_skips_a_partial_checkpoint_and_names_it(tmp_path, assets):  # noqa: F811
    path = recipe(tmp_path, assets, output_dir=str(tmp_path / "out"), **dict(RESUME_RUN, max_steps=3))
    subprocess.run(_train_cmd(path), env=_env(), check=True, capture_output=True, timeout=600)
    partial = tmp_path / "out" / "checkpoint-5"  # as an in-place save cut off by a kill leaves it (older runs)
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"")
    done = subprocess.run(_train_cmd(path, "--max_steps", "4", "--resume_from_checkpoint", "true"), env=_env(),
                          check=True, capture_output=True, text=True, timeout=600)  # fmt: skip
    said = done.stdout + done.stderr
    assert "Skipping partial checkpoint" in said and "checkpoint-5 (no trainer_state.json)" in said
    assert sorted(_losses(tmp_path / "out")) == [1, 2, 3, 4]  # steps 1-3 from checkpoint-3's history, then step 4


def test_resume_from_an_explicit_partial_checkpoint_names_the_fix(tmp_path):
    from srft_trainer.checkpoints import resolve_resume

    (tmp_path / "checkpoint-2").mkdir()
    with pytest.raises(ValueError, match=r"checkpoint-2' cannot be resumed from \(no trainer_state.json\).*`true`"):
        resolve_resume(str(tmp_path / "checkpoint-2"), tmp_path)
    with pytest.raises(ValueError, match="is not a folder"):
        resolve_resume(str(tmp_path / "checkpoint-9"), tmp_path)
    assert resolve_resume("true", tmp_path / "empty") is None  # nothing saved yet: step 0 (with a warning)
    assert resolve_resume("false", tmp_path) is None and resolve_resume(None, tmp_path) is None


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_without_scoring(tmp_path, assets):  # noqa: F811
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text((assets / "train.jsonl").read_text())
    path = recipe(tmp_path, assets, max_steps=10_000, save_strategy="steps", save_steps=10_000, plot_curves=False,
                  heldout_dataset=str(heldout))  # fmt: skip
    proc = subprocess.Popen(_train_cmd(path), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:  # wait until training is under way (the first compact log line)
        if "| loss " in line:
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    checkpoints = list((tmp_path / "out").glob("checkpoint-*"))
    assert len(checkpoints) == 1 and int(checkpoints[0].name.split("-")[1]) < 10_000
    assert (checkpoints[0] / "trainer_state.json").exists() and (checkpoints[0] / "model.safetensors").exists()
    assert "Stopped by SIGTERM" in out and "--resume_from_checkpoint true" in out
    # No post-training scoring, no "final" model: a pre-emption grace period is short.
    assert "held-out accuracy" not in out.split("Stopped by SIGTERM")[-1]
    assert not (tmp_path / "out" / "heldout_accuracy.json").exists()
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_a_save_setting_the_recipe_ignores_is_a_warning(tmp_path, assets, caplog):  # noqa: F811
    path = recipe(tmp_path, assets, max_steps=1, plot_curves=False)  # save_strategy: "no"
    assert cli.main(["train", "--config", path, "--save_steps", "6"]) == 0
    assert '`save_steps: 6` has no effect: `save_strategy` is "no"' in caplog.text


def test_output_dir_under_a_file_gets_our_message_at_check_and_train(tmp_path, assets):  # noqa: F811
    from srft_trainer.check import check_recipe

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    path = recipe(tmp_path, assets, output_dir=str(blocker / "out"))
    with pytest.raises(NotADirectoryError, match=r"a-file/out' is under .*a-file', which is a file: choose a folder"):
        cli.main(["train", "--config", path])
    report = check_recipe(path)
    assert [name for name, _ in report.problems] == ["output_dir"]
    assert "which is a file" in report.problems[0][1]


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
