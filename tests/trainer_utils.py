"""Shared pieces of the trainer tests: a toy prompt-completion data set, rewards and configs."""

from __future__ import annotations

import copy

import torch
from datasets import Dataset
from tiny import tiny_model, tiny_tokenizer

from srft_trainer import SRFTConfig


def demo_for(a: int, b: int) -> str:
    return f"<think>\n{a}+{b}</think>\n\\boxed{{{a + b}}}"


def make_dataset(n: int = 8) -> Dataset:
    rows = [
        {
            "prompt": [{"role": "user", "content": f"{a}+{b}="}],
            "completion": demo_for(a, b),
            "solution": str(a + b),
        }
        for a, b in [(i, 2 * i + 1) for i in range(n)]
    ]
    return Dataset.from_list(rows)


def contains_solution(completions, solution, **kwargs):
    """1.0 when the completion contains the gold answer: demos score 1, a random model's rollouts 0."""
    return [float(f"{{{sol}}}" in c[0]["content"]) for c, sol in zip(completions, solution)]


def length_reward(completions, **kwargs):
    """A reward that varies among a random model's rollouts, so advantages are non-zero."""
    return [(len(c[0]["content"]) % 7) / 6.0 for c in completions]


def config(tmp_path, cls=SRFTConfig, **overrides) -> SRFTConfig:
    kwargs = dict(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=40,
        max_steps=1,
        learning_rate=0.05,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        gradient_checkpointing=False,
        seed=0,
        data_seed=0,
    )
    kwargs.update(overrides)
    if cls is not SRFTConfig:  # the same settings for a plain TRL config (SRFT's own fields left out)
        kwargs = {k: v for k, v in kwargs.items() if k in cls.__dataclass_fields__}
    return cls(**kwargs)


def tiny_pair(seed: int = 0):
    tok = tiny_tokenizer()
    return tok, tiny_model(tok, seed=seed)


def params_of(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def clone(model):
    return copy.deepcopy(model)


def none_reward(completions, **kwargs):
    """A reward that can score nothing (e.g. the column it needs is empty)."""
    return [None] * len(completions)


def raising_reward(completions, **kwargs):
    """A reward that raises on every call."""
    raise KeyError("solution")


def write_assets(root):
    """A local model folder (tiny model and tokenizer) and a train.jsonl of 8 sums, as a user's recipe points to."""
    import json

    tok = tiny_tokenizer()
    tiny_model(tok).save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    rows = [
        {"prompt": [{"role": "user", "content": f"{a}+{a}="}], "completion": demo_for(a, a), "solution": str(2 * a)}
        for a in range(1, 9)
    ]
    with open(root / "train.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return root


def write_recipe(folder, assets, **overrides) -> str:
    """`folder/recipe.yaml`: a 2-step SRFT run on `write_assets`' model and data (a key set to `None` is left out)."""
    import yaml

    body = dict(
        model_name_or_path=str(assets / "model"),
        dataset_name=str(assets / "train.jsonl"),
        output_dir=str(folder / "out"),
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=40,
        max_steps=2,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        learning_rate=0.01,
    )
    body.update(overrides)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in body.items() if v is not None}))
    return str(path)


def write_toy_rows(path, n: int, seed: int):
    """`n` toy arithmetic problems (levels 1 and 2) as a user's .jsonl: `prompt`, `completion`, `solution`."""
    import random

    from srft_trainer.toy.task import problems_to_dataset, sample_problems

    rng = random.Random(seed)
    rows = problems_to_dataset(sample_problems(1, n // 2, rng) + sample_problems(2, n - n // 2, rng))
    rows.remove_columns("level").to_json(str(path), lines=True)
    return path


def write_user_arena(folder, **changes):
    """
    A user's SRFT recipe on the toy base and a 72-row .jsonl, and an arena file over it (fractions for splits; rows
    base, SFT -> RL, SRFT; two rates, one test seed, 2 steps of 4 sequences, 4 problems scored); `changes` replace
    arena keys.
    """
    from pathlib import Path

    import yaml

    import srft_trainer.toy as toy

    folder = Path(folder)
    data = write_toy_rows(folder / "mine.jsonl", 72, 3)
    recipe = folder / "srft.yaml"
    recipe.write_text(yaml.safe_dump({
        "model_name_or_path": str(Path(toy.__file__).parent / "base_model"), "dataset_name": str(data),
        "reward_funcs": ["accuracy"], "num_generations": 4, "num_demos_per_group": 1, "max_completion_length": 128,
        "use_cpu": True, "bf16": False, "gradient_checkpointing": False, "lr_scheduler_type": "constant",
        "logging_steps": 1,
    }))  # fmt: skip
    arena = folder / "arena.yaml"
    arena.write_text(yaml.safe_dump({
        "recipe": str(recipe), "rows": ["base", "sft_grpo", "srft"], "grid": [1e-5, 1e-3], "test_seeds": [1],
        "budget": {"steps": 2, "sequences": 4}, "splits": {"validation": 0.3, "test": 0.2}, "max_problems": 4,
        "output_dir": str(folder / "arena"), **changes,
    }))  # fmt: skip
    return arena
