"""`srft arena`: the fair protocol on a user's own recipe and .jsonl, run as `srft train` command lines."""

import json
import shlex
from pathlib import Path

import pytest
import yaml
from trainer_utils import write_user_arena

import srft_trainer.arena.cli as arena_cli
import srft_trainer.toy as toy
from srft_trainer import cli
from srft_trainer.arena.config import ArenaError, load_arena, make_splits
from srft_trainer.arena.plan import ARENA_KEYS
from srft_trainer.arena.rows import choose


@pytest.fixture
def arena_file(tmp_path):
    """A user's SRFT recipe on the toy base and a 72-row .jsonl, and an arena file over it (fractions for splits)."""
    return write_user_arena(tmp_path)


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
    # Test curves (eval_every defaults to 1 here): SRFT scored at step 1 in process and at its end; SFT -> RL at the
    # end of its SFT stage (step 1) and of its RL stage (step 2); both start from the base's test score.
    for row in ("srft", "sft_grpo"):
        (run,) = [r for r in report["runs"] if r["row"] == row]
        assert [p["step"] for p in run["curve"]] == [0, 1, 2]
        assert run["curve"][0]["accuracy"] == report["base"]["accuracy"]
        assert run["curve"][-1]["accuracy"] == run["final_accuracy"]
    (stage0,) = (out / "runs" / "test").glob("sft_grpo-*/stage0")
    sft_stage = json.loads((stage0 / "heldout_accuracy.json").read_text())
    assert sft_stage["curve"] == [{"step": 1, "accuracy": sft_stage["after"]}]
    assert run["curve"][1]["accuracy"] == sft_stage["after"]
    md = (out / "arena.md").read_text()
    assert "| SRFT |" in md and "Regime (what this result speaks for)" in md and (out / "arena.png").stat().st_size
    assert "steps to 50% of SRFT's accuracy" in md and "scored with transformers" in md
    assert "- SRFT: `" in md and "as `trainer: srft`" in md  # the legend: what each row trained
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


def test_shipped_arena_files_load():
    root = Path(__file__).resolve().parents[1]
    config = load_arena(root / "recipes" / "custom" / "arena.yaml")
    assert config.rows == ["base", "sft", "grpo", "sft_grpo", "srft"] and config.recipe.name == "srft.yaml"
    assert config.steps * config.sequences > 0 and len(config.grid) == 3
    shipped = sorted((root / "recipes").rglob("arena.yaml"))
    assert len(shipped) == 5  # custom, smollm2 and the three toy tasks
    for path in shipped:
        config = load_arena(path)
        assert "srft" in config.rows and all(recipe.is_file() for recipe in config.recipes.values()), path
    smollm2 = load_arena(root / "recipes" / "smollm2" / "arena.yaml")
    assert smollm2.rows == ["base", "sft", "grpo", "srft"] and len(smollm2.test_seeds) == 2
    assert smollm2.model_name_or_path == str(Path("~/.cache/srft_trainer/smollm2-135m-instruct").expanduser())


def _finish(folder: Path, accuracy: float | None = None, steps: int = 2) -> None:
    """Writes what a finished `srft train` (trainer_state.json) or `srft eval` (summary.json) leaves on disk, and the
    job's log beside its folder, as `srft arena` writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.with_name(folder.name + ".log").write_text("ran\n")
    if accuracy is None:
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": steps, "log_history": []}))
    else:
        (folder / "summary.json").write_text(json.dumps({"benchmarks": {"x": {"accuracy": 100 * accuracy}}}))


def test_scoring_through_vllm_scores_saved_models_and_checkpoints_with_srft_eval(arena_file):
    """With `scoring: vllm` a run trains without scoring, then `srft eval --backend vllm` scores its saved model (and,
    for a test curve, the checkpoints saved every `eval_every` steps); the choices and curves read those scores."""
    body = yaml.safe_load(arena_file.read_text())
    arena_file.write_text(yaml.safe_dump({**body, "rows": ["base", "srft"], "scoring": "vllm", "eval_every": 1}))
    config, plan = arena_cli.prepare(arena_cli.build_parser().parse_args(["--config", str(arena_file)]))
    assert plan.backend == "vllm" and not plan.in_training
    for (job,) in plan.jobs("base"):
        assert job.kind == "eval" and job.argv[job.argv.index("--backend") + 1] == "vllm"
        _finish(job.out, {"validation": 0.25, "test": 0.5}[job.out.name])
    accuracies = dict(zip(config.grid, (0.3, 0.6)))
    for train, score in plan.jobs("tune0"):
        assert train.argv[train.argv.index("--heldout_size") + 1] == "0" and "--heldout_dataset" not in train.argv
        assert train.argv[train.argv.index("--save_strategy") + 1] == "no"
        assert score.kind == "eval" and score.out == train.out / "scored"
        assert score.argv[score.argv.index("--model") + 1] == str(train.out)
        assert score.argv[score.argv.index("--data") + 1] == str(plan.splits["validation"])
        assert not train.done()
        _finish(train.out)
        assert train.done() and not score.done()
        lr = float(train.argv[train.argv.index("--learning_rate") + 1])
        _finish(score.out, accuracies[lr])
    assert plan.chosen("srft", 1) == [config.grid[1]]
    ((train, checkpoint, final),) = plan.jobs("test")
    argv = train.argv
    assert [argv[argv.index(k) + 1] for k in ("--save_strategy", "--save_steps", "--save_only_model")] == [
        "steps", "1", "true"]  # fmt: skip
    assert checkpoint.argv[checkpoint.argv.index("--model") + 1] == str(train.out / "checkpoint-1")
    assert (checkpoint.out, final.out) == (train.out / "scored-step1", train.out / "scored")
    _finish(train.out)
    _finish(checkpoint.out, 0.75)
    _finish(final.out, 1.0)
    (run,) = plan.results()["runs"]
    assert run["curve"] == [{"step": 0, "accuracy": 0.5}, {"step": 1, "accuracy": 0.75}, {"step": 2, "accuracy": 1.0}]
    assert run["final_accuracy"] == 1.0


def test_toy_arena_files_train_each_kind_from_the_tasks_own_recipe(tmp_path):
    """The toy presets (recipes/toy/[<task>/]arena.yaml): each trainer kind's recipe is the task's own toy recipe, on
    the arena's own world and base, and the splits are the world's."""
    root = Path(__file__).resolve().parents[1]
    for task, folder in [("arithmetic", "recipes/toy"), ("expressions_terse", "recipes/toy/expressions_terse")]:
        body = yaml.safe_load((root / folder / "arena.yaml").read_text())
        body.update(output_dir=str(tmp_path / task), recipe={k: str(root / v) for k, v in body["recipe"].items()})
        arena = tmp_path / f"{task}.yaml"
        arena.write_text(yaml.safe_dump(body))
        config, plan = arena_cli.prepare(arena_cli.build_parser().parse_args(["--config", str(arena), "--smoke"]))
        assert config.toy_task == task and plan.base_model == str(tmp_path / f"{task}-smoke" / "toy-world" / "base")
        world_dir = str(tmp_path / f"{task}-smoke" / "toy-world")
        for kind in ("sft", "grpo", "srft"):  # rows named as their trainer kind, no overrides
            own = yaml.safe_load((root / folder / f"{kind}.yaml").read_text())
            written = yaml.safe_load(plan.stage_recipe(kind, 0).read_text())
            assert written["trainer"] == kind and written["toy_world"] == world_dir
            kept = {k: v for k, v in own.items() if k not in ARENA_KEYS and k != "toy_world"}
            assert {k: written[k] for k in kept} == kept, (task, kind)
        validation = [json.loads(line) for line in plan.splits["validation"].read_text().splitlines()]
        world = toy.build_toy_world(tmp_path / f"{task}-smoke" / "toy-world", task=task)
        assert validation == world.load_validation().to_list()
        assert ("ood-0" in plan.splits) == (task != "arithmetic")
        assert (plan.max_new_tokens(), plan.max_new_tokens(ood=True)) == (160, 256)


@pytest.mark.slow
def test_one_smollm2_row_for_one_step(smollm2, tmp_path):
    """The SmolLM2 arena (recipes/smollm2/arena.yaml): its SRFT row's tuning run, cut to one step and four problems,
    runs as the arena runs it and is scored."""
    root = Path(__file__).resolve().parents[1]
    body = yaml.safe_load((root / "recipes" / "smollm2" / "arena.yaml").read_text())
    recipe = yaml.safe_load((root / body["recipe"]).read_text())
    recipe = {**recipe, "dataset_name": str(root / recipe["dataset_name"]), "max_completion_length": 24}
    (tmp_path / "srft.yaml").write_text(yaml.safe_dump(recipe))
    splits = {k: str(root / v) for k, v in body["splits"].items()}
    body.update(recipe=str(tmp_path / "srft.yaml"), model_name_or_path=str(smollm2), rows=["base", "srft"],
                budget={"steps": 1, "sequences": 8}, max_problems=4, output_dir=str(tmp_path / "arena"),
                splits=splits)  # fmt: skip
    (tmp_path / "arena.yaml").write_text(yaml.safe_dump(body))
    config, plan = arena_cli.prepare(arena_cli.build_parser().parse_args(["--config", str(tmp_path / "arena.yaml")]))
    job, *scoring = plan.jobs("tune0")[0]  # srft at the grid's first rate
    assert job.row == "srft" and scoring == []  # scored in process (no vLLM in the main suite)
    arena_cli.run_job(plan, job)
    assert job.done()
    state = json.loads((job.out / "trainer_state.json").read_text())
    assert state["global_step"] == 1 and state["log_history"][0]["srft/demos_used"] == 2
    scored = json.loads((job.out / "heldout_accuracy.json").read_text())
    assert scored["heldout_size"] == 4 and 0.0 <= scored["after"] <= 1.0


def test_oneshot_sums_are_the_generators_output_disjoint_and_correct(tmp_path):
    """The SmolLM2 arena's data: what scripts/make_oneshot_sums.py writes, no pair in two splits, every demo right."""
    import importlib.util

    from srft_trainer.grading import grade_math

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("make_oneshot_sums", root / "scripts" / "make_oneshot_sums.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--output-dir", str(tmp_path)])
    pairs = {}
    for name in ("train", "validation", "test"):
        shipped = root / "examples" / "data" / "oneshot_sums" / f"{name}.jsonl"
        assert (tmp_path / f"{name}.jsonl").read_text() == shipped.read_text(), name
        rows = [json.loads(line) for line in shipped.read_text().splitlines()]
        for row in rows:
            a, b = map(int, row["prompt"][0]["content"].rsplit("What is ", 1)[1].rstrip("?\nA:").split(" + "))
            assert row["solution"] == str(a + b) and grade_math(row["completion"], row["solution"]).correct
        pairs[name] = {frozenset(map(int, r["completion"].split(" = ")[0].split(" + "))) for r in rows}
        assert len(pairs[name]) == len(rows)
    assert not (pairs["train"] & pairs["validation"] or pairs["train"] & pairs["test"])
    assert not pairs["validation"] & pairs["test"]
    recipe = yaml.safe_load((root / "recipes" / "smollm2" / "srft.yaml").read_text())
    assert recipe["dataset_name"] == "examples/data/oneshot_sums/train.jsonl"


def test_a_recipe_with_its_own_reward_is_scored_with_it_in_every_row(arena_file):
    """Every row's recipe carries the SRFT recipe's reward functions (scored in process with them), and `srft eval`
    jobs score with the recipe (`--recipe`); with the `accuracy` reward alone they use its grader."""
    recipe = arena_file.parent / "srft.yaml"
    body = yaml.safe_load(recipe.read_text())
    args = arena_cli.build_parser().parse_args(["--config", str(arena_file)])
    _, plan = arena_cli.prepare(args)
    assert "--recipe" not in plan.jobs("base")[0][0].argv
    recipe.write_text(yaml.safe_dump({**body, "reward_funcs": ["trainer_utils.contains_solution"]}))
    _, plan = arena_cli.prepare(args)
    (job,) = plan.jobs("base")[0]
    assert job.argv[job.argv.index("--recipe") + 1] == str(recipe)
    for row in ("sft_grpo", "srft"):
        written = yaml.safe_load(plan.stage_recipe(row, 0).read_text())
        assert written["reward_funcs"] == ["trainer_utils.contains_solution"], row
