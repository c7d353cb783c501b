"""
Pushes to the Hub, end to end, against the stand-in of tests/hub_standin.py: the real huggingface_hub client uploads
(preupload, LFS batch and upload, NDJSON commit) and downloads (tree listing, HEAD and GET resolve). The client reads
HF_ENDPOINT and HF_HUB_OFFLINE when it is imported, so every push and download runs in a subprocess with its own
environment (`HubStandin.client_env`).
"""

import json
import logging
import os
import subprocess
import sys
import textwrap
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from hub_standin import HubStandin, hub_standin  # noqa: F401 - the fixture
from trainer_utils import write_assets, write_recipe

from srft_trainer.check import check_recipe
from srft_trainer.hub import PushWatch


TESTS = Path(__file__).resolve().parent
REPO = "srft-tester/srft-test"  # `hub_model_id: srft-test` lands in the stand-in's user namespace
MODEL_FILES = {"config.json", "generation_config.json", "model.safetensors"}
TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja"}
CHECKPOINT_FILES = {"model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"}
# transformers' `_push_from_checkpoint` commit messages, and `push_to_hub`'s default one.
STEP, FINAL = "Training in progress, step {}", "End of training"


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return write_assets(tmp_path_factory.mktemp("assets"))


def recipe(root: Path, assets: Path, **overrides) -> str:
    """A two-step run that saves (and, with the Hub settings, pushes) after every step; constant LR, so a 2-step run
    is the first two steps of a 3-step one."""
    hub = dict(lr_scheduler_type="constant", save_strategy="steps", save_steps=1, plot_curves=False,
               push_to_hub=True, hub_model_id="srft-test")  # fmt: skip
    return write_recipe(root, assets, **{**hub, **overrides})


def train(env: dict[str, str], path: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "srft_trainer.train", "--config", path, *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def offline_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def run_client(hub: HubStandin, home: Path, script: str) -> str:
    """Runs a huggingface_hub script against the stand-in in a fresh process; returns its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=hub.client_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def download(hub: HubStandin, root: Path, repo_id: str, *patterns: str) -> Path:
    """`snapshot_download` of the repo (or of the files matching `patterns`) into a fresh folder, by the client."""
    target = root / "download"
    run_client(
        hub,
        root / "hf-home-download",
        f"""
        from huggingface_hub import snapshot_download

        snapshot_download({repo_id!r}, local_dir={str(target)!r}, allow_patterns={list(patterns) or None!r})
        """,
    )
    return target


def losses(output_dir: Path) -> dict[int, tuple[float, float]]:
    state = json.loads((output_dir / "trainer_state.json").read_text())
    return {h["step"]: (h["loss"], h["reward"]) for h in state["log_history"] if "loss" in h}


def titles(hub: HubStandin, repo_id: str = REPO) -> list[str]:
    return [commit.title for commit in hub.commits(repo_id)]


@dataclass
class Run:
    hub: HubStandin
    root: Path
    done: subprocess.CompletedProcess

    @property
    def out(self) -> Path:
        return self.root / "out"


@pytest.fixture(scope="module")
def pushed(tmp_path_factory, assets):
    """`pushed(strategy)`: `srft train` with that `hub_strategy`, run once per module, each on its own stand-in."""
    runs: dict[str, Run] = {}

    def run(strategy: str) -> Run:
        if strategy not in runs:
            root = tmp_path_factory.mktemp(f"push-{strategy}")
            hub = HubStandin(root / "hub").start()
            done = train(hub.client_env(root / "hf-home"), recipe(root, assets, hub_strategy=strategy))
            runs[strategy] = Run(hub, root, done)
        return runs[strategy]

    yield run
    for done in runs.values():
        done.hub.stop()


# ------------------------------------------------------------------------------------------------ the raw client


def test_client_round_trip_through_the_standin(tmp_path, hub_standin):  # noqa: F811
    """create_repo, upload_folder (regular and LFS files), snapshot_download: the same bytes come back."""
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "model.safetensors").write_bytes(os.urandom(300))  # LFS by extension
    (folder / "notes.txt").write_bytes(os.urandom(4000))  # LFS by size
    (folder / "sub" / "small.txt").write_text("regular")
    out = run_client(
        hub_standin,
        tmp_path / "hf-home",
        f"""
        import json
        from huggingface_hub import HfApi

        api = HfApi()
        user = api.whoami()["name"]
        url = api.create_repo("round-trip")
        again = api.create_repo("round-trip", exist_ok=True)
        first = api.upload_folder(repo_id=url.repo_id, folder_path={str(folder)!r})
        second = api.upload_folder(repo_id=url.repo_id, folder_path={str(folder)!r})  # nothing changed: no commit
        print(json.dumps({{"user": user, "repo": url.repo_id, "again": again.repo_id, "first": first.oid,
                          "second": second.oid}}))
        """,
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert result["user"] == hub_standin.user
    assert result["repo"] == result["again"] == f"{hub_standin.user}/round-trip"  # the namespace comes from the token
    assert result["first"] == result["second"]
    repo = result["repo"]
    assert titles(hub_standin, repo) == ["initial commit", "Upload folder using huggingface_hub"]
    stored = hub_standin.files(repo)
    assert stored["model.safetensors"].lfs and stored["notes.txt"].lfs
    assert not stored["config.json"].lfs and not stored["sub/small.txt"].lfs

    local = download(hub_standin, tmp_path, repo)
    for path in ("config.json", "model.safetensors", "notes.txt", "sub/small.txt"):
        assert (local / path).read_bytes() == (folder / path).read_bytes(), path
    assert hub_standin.storage_auth == []  # the token stays on the Hub host, as with the real CDN and S3
    assert hub_standin.unhandled == []
    methods = {(method, path.split("/")[1]) for method, path in hub_standin.requests}
    assert ("PUT", "lfs") in methods  # the LFS path was taken (not only inline base64)


# ------------------------------------------------------------------------------------------------ srft train pushes


@pytest.mark.slow
@pytest.mark.parametrize(
    "strategy",
    [
        "end",
        "every_save",
        "checkpoint",
    ],
)
def test_srft_train_pushes_what_the_hub_strategy_promises(tmp_path, assets, pushed, strategy):
    run = pushed(strategy)
    assert run.done.returncode == 0, run.done.stderr[-4000:]
    assert "Push of" not in run.done.stderr, run.done.stderr[-4000:]  # PushWatch reported no failed push
    # transformers skips a checkpoint's push while the previous one is still uploading (`hub_always_push: false`,
    # the default), so step 2's push may be missing; step 1's (nothing in flight yet) and the final one never are.
    every = {
        "end": [],
        "every_save": [STEP.format(1), STEP.format(2)],
        "checkpoint": [
            STEP.format(1),
            STEP.format(1) + ", checkpoint",
            STEP.format(2),
            STEP.format(2) + ", checkpoint",
        ],
    }[strategy]
    got = titles(run.hub)
    assert got[0] == "initial commit" and got[-1] == FINAL, got
    assert got[1:-1] == [t for t in every if t in got[1:-1]], got  # a subsequence, in order
    assert got[1:-1][: 2 if strategy == "checkpoint" else 1] == every[: 2 if strategy == "checkpoint" else 1], got

    files = set(run.hub.files(REPO))
    assert MODEL_FILES | TOKENIZER_FILES | {"README.md"} <= files
    assert not any(f.startswith(("checkpoint-", ".staging", "_")) for f in files), sorted(files)  # local only
    checkpoint = {f.split("/", 1)[1] for f in files if f.startswith("last-checkpoint/")}
    if strategy == "checkpoint":
        assert CHECKPOINT_FILES <= checkpoint
        state = json.loads(run.hub.read(REPO, "last-checkpoint/trainer_state.json"))
        pushed_steps = [step for step in (1, 2) if STEP.format(step) + ", checkpoint" in got]
        assert state["global_step"] == pushed_steps[-1]
    else:
        assert not checkpoint

    local = download(run.hub, tmp_path, REPO, "*.json", "*.safetensors", "README.md")
    assert (local / "model.safetensors").read_bytes() == (run.out / "model.safetensors").read_bytes()
    card = (local / "README.md").read_text()
    assert f"- base model: {assets / 'model'}" in card and f"- data: {assets / 'train.jsonl'}" in card
    assert "- trainer: SRFT" in card
    assert run.hub.cards and run.hub.cards[-1] == card  # the card the client validated is the one committed
    assert run.hub.storage_auth == [] and run.hub.unhandled == []


@pytest.mark.slow
def test_resume_from_the_hubs_last_checkpoint_matches_an_uninterrupted_run(tmp_path, assets, pushed):
    """A fresh machine: download `last-checkpoint` and resume; step 3 matches a 3-step run that was never cut."""
    run = pushed("checkpoint")
    assert run.done.returncode == 0, run.done.stderr[-4000:]
    checkpoint = download(run.hub, tmp_path, REPO, "last-checkpoint/*") / "last-checkpoint"
    assert CHECKPOINT_FILES <= {p.name for p in checkpoint.iterdir()}

    resumed = tmp_path / "resumed"
    path = recipe(resumed, assets, max_steps=3, push_to_hub=False, hub_model_id=None)
    done = train(offline_env(), path, "--resume_from_checkpoint", str(checkpoint))
    assert done.returncode == 0, done.stderr[-4000:]
    full = tmp_path / "full"
    path = recipe(full, assets, max_steps=3, push_to_hub=False, hub_model_id=None)
    done = train(offline_env(), path)
    assert done.returncode == 0, done.stderr[-4000:]

    got, reference = losses(resumed / "out"), losses(full / "out")
    assert sorted(got) == sorted(reference) == [1, 2, 3]
    for step in (1, 2, 3):  # 1-2 come from the downloaded trainer state; 3 is trained after the resume
        assert got[step] == pytest.approx(reference[step], rel=1e-4, abs=1e-6), step


@pytest.mark.slow
def test_trainer_push_to_hub_from_python(tmp_path, assets, hub_standin):  # noqa: F811
    """`SRFTTrainer.push_to_hub()` (the Python API, no `srft train`): creates the repo, pushes weights and card."""
    out = tmp_path / "out"
    script = f"""
        import json
        import sys

        sys.path.insert(0, {str(TESTS)!r})
        from datasets import load_dataset
        from trainer_utils import config

        from srft_trainer import SRFTTrainer
        from srft_trainer.rewards import resolve_reward_funcs

        data = {str(assets / "train.jsonl")!r}
        trainer = SRFTTrainer(
            model={str(assets / "model")!r},
            reward_funcs=resolve_reward_funcs(["accuracy"]),
            args=config({str(out)!r}, hub_model_id="srft-python"),
            train_dataset=load_dataset("json", data_files=data, split="train"),
        )
        trainer.train()
        info = trainer.push_to_hub(dataset_name=data)
        print(json.dumps({{"repo": trainer.hub_model_id, "oid": info.oid}}))
    """
    result = json.loads(run_client(hub_standin, tmp_path / "hf-home", script).strip().splitlines()[-1])
    repo = "srft-tester/srft-python"
    assert result["repo"] == repo
    commits = hub_standin.commits(repo)
    assert [c.title for c in commits] == ["initial commit", FINAL] and commits[-1].oid == result["oid"]
    assert MODEL_FILES | TOKENIZER_FILES | {"README.md"} <= set(hub_standin.files(repo))
    assert hub_standin.read(repo, "model.safetensors") == (out / "model.safetensors").read_bytes()
    card = hub_standin.read(repo, "README.md").decode()
    assert f"- base model: {assets / 'model'}" in card and f"- data: {assets / 'train.jsonl'}" in card
    assert "2506.19767" in card  # SRFT's own card, not transformers' generic one


# ------------------------------------------------------------------------------------------------ failed pushes


@pytest.mark.slow
def test_failed_pushes_are_named_and_the_command_fails(tmp_path, assets, hub_standin):  # noqa: F811
    """Every commit refused: each checkpoint push is reported as it fails, training finishes and saves locally, and
    `srft train` exits 1 naming the final push."""
    hub_standin.fail_commits = True
    out = tmp_path / "out"
    # `hub_always_push`: queue step 2's push behind step 1's instead of skipping it, so that both fail and are named.
    path = recipe(tmp_path, assets, hub_strategy="every_save", hub_always_push=True)
    done = train(hub_standin.client_env(tmp_path / "hf-home"), path)
    assert done.returncode == 1, done.stderr[-4000:]
    err = done.stderr
    for step in (1, 2):  # as they happen, from the upload thread
        assert f"Push of checkpoint-{step} (model files) to the Hub failed" in err, err[-4000:]
    summary = "2 of 2 checkpoint pushes to srft-tester/srft-test failed: checkpoint-1 (model files) ("
    assert summary in err and f"\nAlso: {summary}" in err  # at the end of training, and again in the final message
    final = f"Push to the Hub failed: the final push of {out} to srft-tester/srft-test (HfHubHTTPError: Server error"
    assert final in err and "'500 Internal Server Error'" in err
    assert "the stand-in Hub refuses commits" in err  # the Hub's own message reaches the user
    assert f"intact in {out}" in err and f"hf upload srft-tester/srft-test {out}" in err
    assert "Model saved to" in done.stdout and losses(out)[2]  # training ran to the end
    assert MODEL_FILES | TOKENIZER_FILES | {"README.md"} <= {p.name for p in out.iterdir()}
    assert titles(hub_standin) == ["initial commit"]


@pytest.mark.slow
def test_failed_checkpoint_pushes_are_reported_when_the_final_push_succeeds(tmp_path, assets, hub_standin):  # noqa: F811
    hub_standin.fail_commit_messages = "Training in progress"
    path = recipe(tmp_path, assets, hub_strategy="every_save", hub_always_push=True)  # both checkpoint pushes run
    done = train(hub_standin.client_env(tmp_path / "hf-home"), path)
    assert done.returncode == 0, done.stderr[-4000:]  # the model is on the Hub: the run did its job
    assert "Push of checkpoint-1 (model files) to the Hub failed" in done.stderr
    assert "2 of 2 checkpoint pushes to srft-tester/srft-test failed" in done.stderr
    assert titles(hub_standin) == ["initial commit", FINAL]


def test_push_watch_names_each_failed_job_and_the_skipped_checkpoints(caplog):
    """In process, with futures standing in for transformers' background uploads."""
    trainer = SimpleNamespace(push_in_progress=None, hub_model_id="someone/run", is_world_process_zero=lambda: True)
    watch = PushWatch(trainer)
    args = SimpleNamespace(push_to_hub=True, hub_strategy="checkpoint")
    model_job, checkpoint_job = Future(), Future()
    trainer.push_in_progress = SimpleNamespace(jobs=[model_job, checkpoint_job])
    with caplog.at_level(logging.INFO, logger="srft_trainer.hub"):
        watch.on_save(args, SimpleNamespace(global_step=5), None)
        model_job.set_result(None)
        checkpoint_job.set_exception(OSError("disk\nfull"))  # reported when it fails, on one line
        watch.on_save(args, SimpleNamespace(global_step=6), None)  # the same jobs: transformers skipped this push
        watch.on_train_end(args, SimpleNamespace(global_step=6), None)
    assert "Push of checkpoint-5 (checkpoint folder) to the Hub failed (OSError: disk full)" in caplog.text
    assert watch.skipped == ["checkpoint-6"] and "checkpoint-6 was not pushed" in caplog.text
    summary = "1 of 2 checkpoint pushes to someone/run failed: checkpoint-5 (checkpoint folder) (OSError)"
    assert watch.summary() == summary and summary in caplog.text
    watch.on_save(SimpleNamespace(push_to_hub=True, hub_strategy="end"), SimpleNamespace(global_step=7), None)
    assert len(watch.pushes) == 2 and watch.skipped == ["checkpoint-6"]  # `end` pushes nothing in the background


# ------------------------------------------------------------------------------------------------ srft check


def test_check_says_whether_a_hub_token_is_configured(tmp_path, assets, monkeypatch):
    from huggingface_hub import constants

    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token-file"))
    path = recipe(tmp_path, assets)

    report = check_recipe(path, 1, 1)
    assert report.ok, report.format()  # a note, not a problem: the recipe may be checked away from the trainer
    assert "hub token" not in dict(report.facts)
    assert any(note.startswith("no Hub token: set HF_TOKEN or run `hf auth login`") for note in report.notes)
    assert dict(report.facts)["hub"] == "pushes to srft-test (hub_strategy: every_save)"

    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    report = check_recipe(path, 1, 1)
    assert dict(report.facts)["hub token"].startswith("configured (HF_TOKEN")
    assert "hf_not_a_real_token" not in report.format()  # never printed
    assert not any("no Hub token" in note for note in report.notes)

    monkeypatch.delenv("HF_TOKEN")
    (tmp_path / "token").write_text("hf_from_the_token_file\n")
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "token"))
    assert dict(check_recipe(path, 1, 1).facts)["hub token"].startswith("configured (token file")

    no_push = recipe(tmp_path, assets, push_to_hub=False, hub_model_id=None)
    assert "hub token" not in dict(check_recipe(no_push, 1, 1).facts)


@pytest.mark.slow
def test_without_a_token_srft_train_stops_before_training(tmp_path, assets, hub_standin):  # noqa: F811
    """What `srft check`'s note warns of: transformers creates the repo when the trainer is built."""
    env = hub_standin.client_env(tmp_path / "hf-home")
    del env["HF_TOKEN"]
    done = train(env, recipe(tmp_path, assets, hub_strategy="end"))
    assert done.returncode != 0
    assert "401 Unauthorized" in done.stderr and "/api/repos/create" in done.stderr
    assert not (tmp_path / "out" / "trainer_state.json").exists() and "Model saved" not in done.stdout
    assert hub_standin.repos == {}
