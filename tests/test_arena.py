"""`srft arena`: the fair protocol on a user's own recipe and .jsonl, run as `srft train` command lines."""

import json
import random
import shlex
from pathlib import Path

import pytest
import yaml

import srft_trainer.arena.cli as arena_cli
import srft_trainer.toy as toy
from srft_trainer import cli
from srft_trainer.arena.config import ArenaError, load_arena, make_splits
from srft_trainer.arena.rows import choose
from srft_trainer.toy.task import problems_to_dataset, sample_problems


BASE = Path(toy.__file__).parent / "base_model"


def write_rows(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    rows = problems_to_dataset(sample_problems(1, n // 2, rng) + sample_problems(2, n - n // 2, rng))
    rows.remove_columns("level").to_json(str(path), lines=True)
    return path


@pytest.fixture
def arena_file(tmp_path):
    """A user's SRFT recipe on the toy base and a 72-row .jsonl, and an arena file over it (fractions for splits)."""
    data = write_rows(tmp_path / "mine.jsonl", 72, 3)
    recipe = tmp_path / "srft.yaml"
    recipe.write_text(yaml.safe_dump({
        "model_name_or_path": str(BASE), "dataset_name": str(data), "reward_funcs": ["accuracy"],
        "num_generations": 4, "num_demos_per_group": 1, "max_completion_length": 128, "use_cpu": True, "bf16": False,
        "gradient_checkpointing": False, "lr_scheduler_type": "constant", "logging_steps": 1,
    }))  # fmt: skip
    arena = tmp_path / "arena.yaml"
    arena.write_text(yaml.safe_dump({
        "recipe": str(recipe), "rows": ["base", "sft_grpo", "srft"], "grid": [1e-5, 1e-3], "test_seeds": [1],
        "budget": {"steps": 2, "sequences": 4}, "splits": {"validation": 0.3, "test": 0.2}, "max_problems": 4,
        "output_dir": str(tmp_path / "arena"),
    }))  # fmt: skip
    return arena


@pytest.mark.slow
def test_user_arena_end_to_end_killed_then_resumed(arena_file, monkeypatch, capsys):
    ran = []
    real = arena_cli.run_job

    def killed_after_three(plan, job):
        if not job.done():
            if len(ran) == 3:
                raise RuntimeError("killed")  # as if the machine went away mid-arena
            ran.append(job.out)
        real(plan, job)

    monkeypatch.setattr(arena_cli, "run_job", killed_after_three)
    assert cli.main(["arena", "--config", str(arena_file)]) == 2
    assert len(ran) == 3
    first = list(ran)

    def counting(plan, job):
        if not job.done():
            ran.append(job.out)
        real(plan, job)

    monkeypatch.setattr(arena_cli, "run_job", counting)
    assert cli.main(["arena", "--config", str(arena_file)]) == 0
    again = ran[3:]
    assert not set(first) & set(again), "a finished run was trained again"
    # base: 2 evals; tune0: 2 rows x 2 rates; tune1: 2 rates; test: srft 1 run + SFT -> RL 2 stages
    assert len(first) + len(again) == 2 + 4 + 2 + 3

    out = arena_file.parent / "arena"
    report = json.loads((out / "arena.json").read_text())
    grid = report["grid"]
    for row in ("srft", "sft_grpo"):
        stages = 2 if row == "sft_grpo" else 1
        rates = report["chosen"][row]["learning_rates"]
        assert len(rates) == stages
        for stage in range(stages):
            scores = {t["learning_rate"]: t["validation_accuracy"] for t in report["tuning"]
                      if (t["row"], t["stage"]) == (row, stage)}  # fmt: skip
            assert set(scores) == set(grid) and rates[stage] == choose(scores, grid)[0]
        assert [r["seed"] for r in report["runs"] if r["row"] == row] == [1]
    assert 0 <= report["base"]["accuracy"] <= 1 and report["base"]["validation_accuracy"] is not None
    md = (out / "arena.md").read_text()
    assert "| SRFT |" in md and "Regime (what this result speaks for)" in md and (out / "arena.png").stat().st_size
    # Every run was an `srft train` command line on the arena's own split files.
    logs = capsys.readouterr().out
    assert "-m srft_trainer.train --config" in logs and str(out / "splits" / "train.jsonl") in logs


def test_splits_are_disjoint_and_overlaps_are_refused(arena_file, tmp_path):
    config = load_arena(arena_file)
    recipe = yaml.safe_load(config.recipe.read_text())
    paths = make_splits(config, recipe["dataset_name"])
    prompts = {name: {json.dumps(json.loads(line)["prompt"]) for line in path.read_text().splitlines()}
               for name, path in paths.items()}  # fmt: skip
    assert len(prompts["validation"]) == 22 and len(prompts["test"]) == 14 and len(prompts["train"]) == 36
    assert not (prompts["train"] & prompts["validation"] or prompts["train"] & prompts["test"])
    assert not prompts["validation"] & prompts["test"]
    # A test file that repeats training rows is refused, naming both splits.
    (tmp_path / "test.jsonl").write_text("\n".join(Path(recipe["dataset_name"]).read_text().splitlines()[:3]) + "\n")
    config.test = str(tmp_path / "test.jsonl")
    with pytest.raises(ArenaError, match="the train and test splits share"):
        make_splits(config, recipe["dataset_name"])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"rows": ["base", "srft", "ppo"]}, "unknown row"),
        ({"grid": [1e-5, 1e-4]}, "at least 2 decades"),
        ({"splits": {"validation": 0.1, "test": 0.2}}, "at least 20 are needed"),
        ({"test_seeds": [0, 1]}, "must not include the tuning seed"),
        ({"colour": "blue"}, "unknown key"),
    ],
)
def test_bad_arena_files_fail_before_any_run(arena_file, capsys, change, message):
    body = yaml.safe_load(arena_file.read_text())
    body.update(change)
    arena_file.write_text(yaml.safe_dump(body))
    assert cli.main(["arena", "--config", str(arena_file)]) == 2
    assert message in capsys.readouterr().err
    assert not (arena_file.parent / "arena" / "runs" / "tune").exists()


def test_a_recipe_srft_check_rejects_fails_before_any_run(arena_file, capsys):
    recipe = arena_file.parent / "srft.yaml"
    body = yaml.safe_load(recipe.read_text())
    body["num_demos_per_group"] = 4  # a group of demonstrations only
    recipe.write_text(yaml.safe_dump(body))
    assert cli.main(["arena", "--config", str(arena_file)]) == 2
    err = capsys.readouterr().err
    assert "srft check rejects it" in err and "no on-policy rollout" in err


def test_emitted_slurm_arrays(arena_file, capsys):
    assert cli.main(["arena", "--config", str(arena_file), "--emit", "slurm"]) == 0
    folder = arena_file.parent / "arena" / "slurm"
    sizes = {"base": 2, "tune0": 4, "tune1": 2, "test": 2}
    for phase, size in sizes.items():
        text = (folder / f"{phase}.sbatch").read_text()
        assert f"#SBATCH --array=0-{size - 1}" in text
        command = next(line for line in text.splitlines() if line.startswith("srft arena"))
        words = shlex.split(command.replace("$SLURM_ARRAY_TASK_ID", str(size - 1)))  # as the last task runs it
        args = arena_cli.build_parser().parse_args(words[2:])
        assert args.phase == phase and args.index == size - 1 and Path(args.config) == arena_file.resolve()
        assert command.endswith("--index $SLURM_ARRAY_TASK_ID")
    submit = (folder / "submit.sh").read_text().splitlines()
    order = [line for line in submit if "sbatch" in line]
    assert [Path(shlex.split(line)[-1].rstrip(")")).stem for line in order] == [*sizes, "collect"]
    assert all("afterok:$previous" in line for line in order[1:])


def test_shipped_arena_file_loads():
    config = load_arena(Path(__file__).resolve().parents[1] / "recipes" / "custom" / "arena.yaml")
    assert config.rows == ["base", "sft", "grpo", "sft_grpo", "srft"] and config.recipe.name == "srft.yaml"
    assert config.steps * config.sequences > 0 and len(config.grid) == 3
