"""Every recipe under recipes/ passes `srft check` for its header's launch size; each check catches its problem."""

import json
import re
from pathlib import Path

import pytest
import yaml
from tiny import tiny_model, tiny_tokenizer
from trainer_utils import demo_for
from transformers import AutoTokenizer

from srft_trainer import cli
from srft_trainer.check import check_recipe, prepared_outputs


ROOT = Path(__file__).resolve().parents[1]
# Training recipes (arena files, `arena.yaml`, are `srft arena`'s: tests/test_arena.py).
RECIPES = sorted(p for p in (ROOT / "recipes").rglob("*.yaml") if p.name != "arena.yaml")
QWEN = ROOT / "recipes" / "qwen2.5-math-7b"
QWEN_NAMES = (
    "srft", "srft_official", "srft_no_wsft", "srft_no_wrl", "grpo", "luffy", "sft", "sft_kl", "sft_then_grpo",
)  # fmt: skip


def declared_world(recipe: Path) -> tuple[int, int]:
    """(processes, machines) from the header's `srft check ... --num-processes N --num-machines M` line (default 1)."""
    for line in recipe.read_text().splitlines():
        if line.startswith("#") and "srft check" in line:
            processes = re.search(r"--num-processes (\d+)\b", line)
            machines = re.search(r"--num-machines (\d+)\b", line)
            return int(processes.group(1)) if processes else 1, int(machines.group(1)) if machines else 1
    return 1, 1


def header_text(recipe: Path) -> str:
    comments = [line[1:].strip() for line in recipe.read_text().splitlines() if line.startswith("#")]
    return re.sub(r"\s*\\\s+", " ", " ".join(comments))


def facts(report) -> dict[str, str]:
    return dict(report.facts)


@pytest.fixture(autouse=True)
def at_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # recipes name their files relative to the repository root, where they are launched


# ------------------------------------------------------------------------------------------------ the recipes


def test_all_qwen_recipes_exist():
    assert sorted(p.stem for p in QWEN.glob("*.yaml")) == sorted(QWEN_NAMES)


@pytest.mark.parametrize("recipe", RECIPES, ids=[str(p.relative_to(ROOT / "recipes")) for p in RECIPES])
def test_recipe_passes_check_for_its_declared_launch(recipe):
    processes, machines = declared_world(recipe)
    if recipe.parent == QWEN:
        assert (processes, machines) == (8, 1)
    report = check_recipe(recipe.relative_to(ROOT), processes, machines)
    assert report.ok, report.format()
    assert "global batch" in facts(report)


@pytest.mark.parametrize("name", QWEN_NAMES)
def test_qwen_recipe_header(name):
    recipe = QWEN / f"{name}.yaml"
    header = header_text(recipe)
    for label in ("Reproduces:", "Hardware:", "Data:", "Check:", "Launch:", "Wall time:"):
        assert label in header, f"{name}: header lacks {label}"
    launch = (
        "accelerate launch --config_file accelerate_configs/zero3.yaml -m srft_trainer.train "
        f"--config recipes/qwen2.5-math-7b/{name}.yaml"
    )
    assert launch in header
    assert re.search(r"Table [23], row .*avg \d+\.\d", header), "the paper's number for the row"
    assert prepared_outputs(recipe.read_text()) == ["data/openr1-math-46k-8192.parquet"]
    assert yaml.safe_load(recipe.read_text())["dataset_name"] == "data/openr1-math-46k-8192.parquet"


def test_every_recipes_data_is_what_a_documented_prepare_data_command_writes():
    """A recipe's local data path is the default output of `srft prepare-data` for its layout, the README's command."""
    from srft_trainer.data.cli import DEFAULT_IO

    readme = (ROOT / "README.md").read_text()
    for recipe in sorted(ROOT.glob("recipes/**/*.yaml")):
        data = yaml.safe_load(recipe.read_text()).get("dataset_name")
        if not data or not data.startswith("data/"):
            continue
        layouts = [layout for layout, (_, output) in DEFAULT_IO.items() if output == data]
        assert layouts, f"{recipe}: {data} is no prepare-data default output"
        assert f"srft prepare-data --layout {layouts[0]}" in readme, f"the README does not show how {data} is made"
        assert prepared_outputs(recipe.read_text()) == [data]  # and the recipe's header command writes it too


def test_srft_recipe_has_the_paper_settings_and_budget():
    report = check_recipe("recipes/qwen2.5-math-7b/srft.yaml", 8, 1)
    got = facts(report)
    assert got["global batch"].startswith("128 prompts x 8 = 1,024 sequences per optimizer step")
    assert got["rollouts"].startswith("896 on-policy rollouts + 128 demonstration slots per step")
    assert got["tokens"].startswith("<= 8,388,608 completion tokens per step")
    assert got["length"] == "500 optimizer steps"
    assert got["vllm"].startswith("colocate, tensor parallel 1, 50% of each GPU")
    recipe = yaml.safe_load((QWEN / "srft.yaml").read_text())
    expected = {
        "learning_rate": 1e-6,
        "lr_scheduler_type": "constant",
        "max_steps": 500,
        "num_generations": 8,
        "num_demos_per_group": 1,
        "max_completion_length": 8192,
        "temperature": 1.0,
        "beta": 0.0,
        "use_vllm": True,
        "vllm_mode": "colocate",
        "bf16": True,
        "gradient_checkpointing": True,
        "model_config_overrides": {"rope_theta": 40000.0, "max_position_embeddings": 16384},
        "sft_coef": 0.5,
        "rl_pos_coef": 0.1,
    }
    assert {k: recipe[k] for k in expected} == expected


def test_official_recipe_mirrors_the_released_training_script():
    """srft_official.yaml: the released script's batch (128 prompts generated, updates of 64) and its objective."""
    got = facts(check_recipe("recipes/qwen2.5-math-7b/srft_official.yaml", 8, 1))
    assert got["global batch"].startswith("64 prompts x 8 = 512 sequences per optimizer step")
    assert got["generation"].startswith("1,024 sequences generated together every 64 micro-batches (2 optimizer")
    assert got["length"] == "1,000 optimizer steps"
    released = {
        "sft_weight_sign": (None, "code"),
        "entropy_granularity": (None, "token"),
        "demo_policy_shaping": (None, 0.1),
        "scale_rewards": (None, "none"),
        "group_stats_from": (None, "all"),
        "rollout_objective": (None, "clipped"),
        "loss_type": ("dapo", "dr_grpo"),
        "entropy_coef": (None, 0.001),
        "gradient_accumulation_steps": (64, 32),
        "steps_per_generation": (None, 64),
        "max_steps": (500, 1000),
    }
    changed = {k: v for k, v in changed_keys("srft", "srft_official").items() if k not in NAMING}
    assert changed == released
    header = header_text(QWEN / "srft_official.yaml")
    for source in ("train.sh L59", "train.sh L63", "mix_core_alg.py L134", "mix_core_alg.py L162-163", "p_div_p_0.1"):
        assert source in recipe_text("srft_official"), source
    assert "cannot express" in header and "Not confirmed" in header


def recipe_text(name: str) -> str:
    return (QWEN / f"{name}.yaml").read_text()


def changed_keys(a: str, b: str) -> dict[str, tuple]:
    left = yaml.safe_load((QWEN / f"{a}.yaml").read_text())
    right = yaml.safe_load((QWEN / f"{b}.yaml").read_text())
    return {k: (left.get(k), right.get(k)) for k in set(left) | set(right) if left.get(k) != right.get(k)}


NAMING = {"output_dir", "hub_model_id"}


@pytest.mark.parametrize(
    "base, variant, differences",
    [
        ("srft", "srft_no_wsft", {"sft_coef": (0.5, 1.0), "sft_entropy_weighting": (True, False)}),
        ("srft", "srft_no_wrl", {"rl_pos_coef": (0.1, 1.0), "rl_entropy_weighting": (True, False)}),
        ("srft", "luffy", {"sft_coef": (0.5, 0.0), "rl_pos_coef": (0.1, 1.0), "rl_entropy_weighting": (True, False)}),
        (
            "sft",
            "sft_kl",
            {
                "trainer": ("sft", "sft_kl"),
                "kl_coef": (None, 0.2),
                "per_device_train_batch_size": (2, 1),
                "gradient_accumulation_steps": (8, 16),
            },
        ),
    ],
)
def test_variants_differ_from_their_base_only_where_the_paper_row_does(base, variant, differences):
    changed = changed_keys(base, variant)
    assert {k: v for k, v in changed.items() if k not in NAMING} == differences


def test_grpo_recipes_share_the_srft_budget():
    srft_only = {
        "trainer",
        "num_demos_per_group",
        "demo_column",
        "demo_too_long",
        "sft_coef",
        "rl_pos_coef",
        "sft_entropy_weighting",
        "rl_entropy_weighting",
        "demo_rl",
        "entropy_source",
    }
    assert set(changed_keys("srft", "grpo")) - NAMING == srft_only
    # sft_then_grpo is grpo from the SFT output, whose saved config already carries the RoPE extension
    assert set(changed_keys("grpo", "sft_then_grpo")) - NAMING == {"model_name_or_path", "model_config_overrides"}
    assert (
        yaml.safe_load((QWEN / "sft_then_grpo.yaml").read_text())["model_name_or_path"]
        == yaml.safe_load((QWEN / "sft.yaml").read_text())["output_dir"]
    )


def test_sft_recipe_has_the_paper_settings():
    report = check_recipe("recipes/qwen2.5-math-7b/sft.yaml", 8, 1)
    assert facts(report)["global batch"].startswith("128 demonstrations per optimizer step")
    recipe = yaml.safe_load((QWEN / "sft.yaml").read_text())
    assert (
        recipe["learning_rate"],
        recipe["lr_scheduler_type"],
        recipe["warmup_steps"],
        recipe["num_train_epochs"],
    ) == (
        5e-6,
        "linear",
        0.1,
        3,
    )


def test_multi_node_launch_with_overrides():
    report = check_recipe(
        "recipes/qwen2.5-math-7b/srft.yaml", 16, 2, overrides=["--gradient_accumulation_steps", "32"]
    )
    assert report.ok, report.format()
    assert facts(report)["global batch"] == (
        "128 prompts x 8 = 1,024 sequences per optimizer step (2 per device x 32 accumulation x 16 processes)"
    )
    assert facts(report)["world"] == "16 processes on 2 machine(s), 8 per machine"
    report = check_recipe("recipes/qwen2.5-math-7b/srft.yaml", 8, 1, overrides=["--gradient_acumulation_steps", "2"])
    assert report.problems == [
        (
            "keys",
            "unknown key `gradient_acumulation_steps` for trainer srft (did you mean `gradient_accumulation_steps`?)",
        )
    ]


def test_check_command_prints_and_exits_zero(capsys):
    assert cli.main(["check", "--config", "recipes/qwen2.5-math-7b/srft.yaml", "--num-processes", "8"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("PASS") and "128 prompts x 8 = 1,024 sequences" in out
    assert "Qwen/Qwen2.5-Math-7B is a Hub id" in out  # what it could not check offline is said


# -------------------------------------------------------------------------------- each check on a local recipe


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("check-assets")
    tok = tiny_tokenizer()
    tiny_model(tok).save_pretrained(root / "model")  # max_position_embeddings 512
    tok.save_pretrained(root / "model")
    bare = tiny_tokenizer()
    bare.chat_template = None
    tiny_model(bare).save_pretrained(root / "no-template")
    bare.save_pretrained(root / "no-template")
    (root / "not-a-model").mkdir()
    rows = [
        {"prompt": [{"role": "user", "content": f"{a}+{a}="}], "completion": demo_for(a, a), "solution": str(2 * a)}
        for a in range(1, 21)
    ]
    write_jsonl(root / "train.jsonl", rows)
    write_jsonl(root / "no-solution.jsonl", [{k: v for k, v in r.items() if k != "solution"} for r in rows])
    long_rows = [dict(r, completion=r["completion"] + " " + "x" * 200) if i < 4 else r for i, r in enumerate(rows)]
    write_jsonl(root / "some-long.jsonl", long_rows)
    return root


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def local_recipe(tmp_path, assets, header: str = "", **overrides) -> Path:
    body = dict(
        trainer="srft",
        model_name_or_path=str(assets / "model"),
        dataset_name=str(assets / "train.jsonl"),
        output_dir=str(tmp_path / "out"),
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=64,
        max_steps=10,
        report_to="none",
    )
    body.update(overrides)
    body = {k: v for k, v in body.items() if v is not None}
    path = tmp_path / "recipe.yaml"
    path.write_text(header + yaml.safe_dump(body))
    return path


def test_local_recipe_passes_and_measures_lengths(tmp_path, assets):
    report = check_recipe(local_recipe(tmp_path, assets), 2, 1)
    assert report.ok, report.format()
    got = facts(report)
    assert got["global batch"].startswith("4 prompts x 4 = 16 sequences per optimizer step")
    assert got["rollouts"].startswith("12 on-policy rollouts + 4 demonstration slots")
    assert got["data"].endswith("20 rows; 20 sampled")
    assert got["model"].endswith("(512 positions, chat template present)")
    # Independently: the demo text's tokens + <|im_end|>, with the tokenizer `srft train` loads from the model folder
    tokenizer = AutoTokenizer.from_pretrained(assets / "model")
    demo = len(tokenizer(demo_for(20, 20), add_special_tokens=False)["input_ids"]) + 1
    assert got["demo lengths"].startswith(f"demonstration tokens: max {demo},")
    prompt = [{"role": "user", "content": "20+20="}]
    longest_prompt = len(
        tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_dict=True)["input_ids"]
    )
    assert got["tokens"] == (
        f"<= {16 * (longest_prompt + 64):,} tokens per step (16 x ({longest_prompt} longest sampled prompt + 64 "
        "completion))"
    )


@pytest.mark.parametrize(
    "overrides, world, name, message",
    [
        (
            {"learning_rat": 0.1},
            (1, 1),
            "keys",
            r"unknown key `learning_rat` for trainer srft \(did you mean "
            r"`learning_rate`\?\)",
        ),
        ({"trainer": "ppo"}, (1, 1), "keys", r"`trainer: ppo` is not one of"),
        (
            {"per_device_train_batch_size": 2, "num_generations": 8, "trainer": "grpo"},
            (3, 1),
            "batch",
            r"generation_batch_size \(6\) must be divisible by num_generations \(8\)",
        ),
        ({"per_device_train_batch_size": 2}, (2, 1), "batch", r"Each process must hold whole groups"),
        ({"num_demos_per_group": 4}, (1, 1), "demos", r"a group of only demonstrations has no on-policy rollout"),
        (
            {"use_vllm": True, "vllm_mode": "server"},
            (1, 1),
            "vllm",
            r"`vllm_mode: server` with `use_cpu: true`: TRL's weight sync to a vLLM server needs CUDA",
        ),
        (
            {"use_vllm": True, "use_cpu": False, "vllm_tensor_parallel_size": 3},
            (8, 1),
            "vllm",
            r"`vllm_tensor_parallel_size` \(3\) must divide the number of processes \(8\)",
        ),
        (
            {"use_vllm": True, "use_cpu": False, "vllm_tensor_parallel_size": 4},
            (8, 4),
            "vllm",
            r"must divide the processes per machine \(2\): a tensor-parallel group must not span machines",
        ),
        (
            {"use_vllm": True, "use_cpu": False, "vllm_gpu_memory_utilization": 1.5},
            (1, 1),
            "vllm",
            r"`vllm_gpu_memory_utilization` must be in \(0, 1\), got 1.5",
        ),
        ({"reward_funcs": ["acuracy"]}, (1, 1), "rewards", r"acuracy"),
        (
            {"model_name_or_path": "./no-such-model"},
            (1, 1),
            "model",
            r"`model_name_or_path` './no-such-model' does "
            r"not exist",
        ),
        ({"model_name_or_path": "ASSETS/not-a-model"}, (1, 1), "model", r"has no config.json"),
        (
            {"max_completion_length": 1024},
            (1, 1),
            "context",
            r"`max_completion_length` \(1024\) exceeds the "
            r"model's context \(512 positions\)",
        ),
        (
            {"model_config_overrides": {"rope_thetta": 4.0}},
            (1, 1),
            "overrides",
            r"`rope_thetta` \(did you mean "
            r"rope_theta",
        ),
        ({"model_name_or_path": "ASSETS/no-template"}, (1, 1), "chat_template", r"has no chat template"),
        ({"dataset_name": "./missing.jsonl"}, (1, 1), "data", r"`dataset_name` './missing.jsonl' does not exist"),
        (
            {"dataset_name": "ASSETS/no-solution.jsonl"},
            (1, 1),
            "data",
            r"lacks column\(s\) `solution` \(needed by reward function `accuracy_reward`\)",
        ),
        (
            {"dataset_name": "ASSETS/train.jsonl", "demo_column": "demo"},
            (1, 1),
            "data",
            r"lacks column\(s\) `demo` \(needed by the demonstrations \(`demo_column: demo`\)\).*set `demo_column`",
        ),
        (
            {"dataset_name": "ASSETS/some-long.jsonl"},
            (1, 1),
            "demo_length",
            r"4 of 20 sampled demonstrations exceed max_completion_length \(64\); demo_too_long=drop: their slots go "
            r"to rollouts. More than 5%",
        ),
        (
            {
                "trainer": "sft",
                "num_generations": None,
                "max_completion_length": None,
                "max_length": 80,
                "dataset_name": "ASSETS/some-long.jsonl",
            },
            (1, 1),
            "demo_length",
            r"4 of 20 sampled demonstrations exceed max_length \(80\); they are truncated",
        ),
    ],
)
def test_each_check_names_its_problem(tmp_path, assets, overrides, world, name, message):
    overrides = {k: v.replace("ASSETS", str(assets)) if isinstance(v, str) else v for k, v in overrides.items()}
    report = check_recipe(local_recipe(tmp_path, assets, **overrides), *world)
    assert not report.ok
    assert [n for n, _ in report.problems] == [name], report.format()
    assert re.search(message, report.problems[0][1]), report.problems[0][1]
    assert f"[{name}]" in report.format() and "FAIL: 1 problem(s)" in report.format()


@pytest.mark.parametrize("cpu_build", [False, True])
def test_use_vllm_on_cpu_needs_the_cpu_build(tmp_path, assets, monkeypatch, cpu_build):
    monkeypatch.setattr("srft_trainer.vllm_colocate.vllm_on_cpu", lambda: cpu_build)
    report = check_recipe(local_recipe(tmp_path, assets, use_vllm=True), 1, 1)
    if cpu_build:
        assert report.ok, report.format()
        assert facts(report)["vllm"] == "colocate on CPU, tensor parallel 1"
        assert any("vLLM's CPU build is installed" in note for note in report.notes)
    else:
        assert [n for n, _ in report.problems] == ["vllm"]
        assert re.search(r"needs vLLM's CPU build, which is not installed here: `pip install", report.problems[0][1])


def test_check_command_exits_one_listing_the_problems(tmp_path, assets, capsys):
    path = local_recipe(tmp_path, assets, learning_rat=0.1, warmup_ratio=0.1)
    assert cli.main(["check", "--config", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL: 2 problem(s)" in out and "`learning_rat`" in out and "`warmup_ratio`" in out


def test_long_demos_within_tolerance_are_a_note(tmp_path, assets):
    report = check_recipe(
        local_recipe(tmp_path, assets, dataset_name=str(assets / "some-long.jsonl")), 1, 1, tolerance=0.25
    )
    assert report.ok
    assert "4 of 20 sampled demonstrations exceed max_completion_length (64)" in "\n".join(report.notes)


def test_overrides_fix_the_context(tmp_path, assets):
    path = local_recipe(
        tmp_path, assets, max_completion_length=1024, model_config_overrides={"max_position_embeddings": 2048}
    )
    report = check_recipe(path, 1, 1)
    assert report.ok, report.format()
    assert facts(report)["model"].endswith("(2048 positions, chat template present)")


def test_missing_inputs_are_fine_when_the_recipe_says_how_they_are_made(tmp_path, assets):
    data = str(tmp_path / "prepared.parquet")
    header = f"# Data: srft prepare-data --layout luffy --input x/y \\\n#   --output {data} --max-demo-tokens 64\n"
    (tmp_path / "first.yaml").write_text(yaml.safe_dump({"trainer": "sft", "output_dir": str(tmp_path / "sft-out")}))
    path = local_recipe(tmp_path, assets, header, dataset_name=data, model_name_or_path=str(tmp_path / "sft-out"))
    report = check_recipe(path, 1, 1)
    assert report.ok, report.format()
    notes = "\n".join(report.notes)
    assert f"the output of {tmp_path / 'first.yaml'}; run that first" in notes
    assert "made by the `srft prepare-data` command in the recipe's header" in notes


def test_hub_ids_are_skipped_with_a_note(tmp_path, assets):
    report = check_recipe(
        local_recipe(tmp_path, assets, model_name_or_path="Org/Some-Model", dataset_name="Org/some-data"), 1, 1
    )
    assert report.ok, report.format()
    notes = "\n".join(report.notes)
    assert "model_name_or_path Org/Some-Model is a Hub id: chat template, context length not checked" in notes
    assert "dataset_name Org/some-data is a Hub id: columns and demo lengths not checked offline" in notes


def test_toy_world_recipes_are_accepted_without_building_it(tmp_path, assets):
    path = local_recipe(tmp_path, assets, model_name_or_path=None, dataset_name=None, toy_world=str(tmp_path / "w"))
    report = check_recipe(path, 1, 1)
    assert report.ok, report.format()
    assert not (tmp_path / "w").exists()
    assert "its data is built by the first `srft train`" in "\n".join(report.notes)
    assert "toy/base_model (512 positions, chat template present)" in facts(report)["model"]  # the shipped base


def test_a_built_toy_world_is_checked_like_local_files(tmp_path, assets):
    from srft_trainer.toy import build_toy_world

    world = build_toy_world(tmp_path / "w")
    path = local_recipe(tmp_path, assets, model_name_or_path=None, dataset_name=None, toy_world=str(world.root),
                        max_completion_length=160)  # fmt: skip
    got = facts(check_recipe(path, 1, 1))
    assert got["data"].startswith(f"{world.train_file}: 10,000 rows; 256 sampled")
    assert got["demo lengths"].startswith("demonstration tokens: max")  # measured with the world's tokenizer


def test_vllm_server_mode_says_where_the_overrides_go(tmp_path, assets):
    path = local_recipe(
        tmp_path,
        assets,
        use_vllm=True,
        use_cpu=False,
        vllm_mode="server",
        vllm_tensor_parallel_size=2,
        model_config_overrides={"rope_theta": 40000.0},
    )
    report = check_recipe(path, 4, 1)
    assert report.ok, report.format()
    notes = "\n".join(report.notes)
    assert "server mode ignores vllm_tensor_parallel_size" in notes and "--hf-overrides" in notes
    assert "every group slot is generated" in notes


@pytest.mark.parametrize(
    "world, message",
    [((3, 2), r"--num-processes \(3\) must be a positive multiple of --num-machines \(2\)"), ((0, 1), r"\(0\)")],
)
def test_bad_world(tmp_path, assets, world, message):
    report = check_recipe(local_recipe(tmp_path, assets), *world)
    assert [n for n, _ in report.problems] == ["world"] and re.search(message, report.problems[0][1])


def test_missing_recipe(tmp_path):
    report = check_recipe(tmp_path / "nope.yaml")
    assert report.problems == [("recipe", f"no such recipe file: {tmp_path / 'nope.yaml'}")]
