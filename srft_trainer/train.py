# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
Training entry point: `srft train --config recipe.yaml [--key value ...]`, or under accelerate:

    accelerate launch --config_file accelerate_configs/zero3.yaml -m srft_trainer.train --config recipe.yaml

The recipe is parsed by TRL's `TrlParser` over ([`SRFTScriptArguments`], the trainer's config class, TRL's
`ModelConfig`), like `trl grpo` and open-r1; command-line flags override the YAML. `trainer: srft` (default) runs
[`SRFTTrainer`]; `trainer: grpo` TRL's `GRPOTrainer`, `trainer: sft` TRL's `SFTTrainer` and `trainer: sft_kl`
[`SFTKLTrainer`] (SFT plus a KL term to the base model) on the same data, for baselines with identical plumbing.
Check a recipe offline first with `srft check --config recipe.yaml --num-processes N`.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainingArguments
from trl import ModelConfig

from .recipe import (  # noqa: F401 (re-exported: `srft_trainer.train.parse_args` and friends)
    DATA_SUFFIXES,
    TRAINERS,
    SRFTScriptArguments,
    check_local_path,
    config_class,
    config_class_for_world_size,
    config_overrides,
    load_split,
    make_parser,
    parse_args,
    peek_trainer,
    recipe_problems,
)


logger = logging.getLogger("srft_trainer.train")  # not "__main__" under `python -m srft_trainer.train`


def sft_view(dataset, demo_column: str):
    """One prompt-completion row per demonstration, for TRL's SFTTrainer; rows without a demo are counted."""
    from datasets import Dataset

    from .demos import normalize_demos

    rows, missing = [], 0
    for row in dataset:
        demos = normalize_demos(row.get(demo_column), demo_column)
        missing += not demos
        for demo in demos:
            completion = demo if isinstance(demo, list) else demo
            if isinstance(row["prompt"], list) and isinstance(completion, str):
                completion = [{"role": "assistant", "content": completion}]
            rows.append({"prompt": row["prompt"], "completion": completion})
    if missing:
        logger.warning(
            "SFT: %d of %d rows have no demonstration in `%s` and are skipped.", missing, len(dataset), demo_column
        )
    if not rows:
        raise ValueError(f"No row of the data set has a demonstration in column `{demo_column}`: nothing to train on.")
    return Dataset.from_list(rows)


def build_trainer(
    script_args: SRFTScriptArguments, training_args, model_args: ModelConfig, train_dataset, eval_dataset
):
    """The trainer a recipe asks for, with the model loaded as TRL's scripts load it (plus config overrides)."""
    from transformers import AutoTokenizer
    from trl import get_peft_config, get_quantization_config

    from .modeling import load_config, load_model, vllm_hf_overrides
    from .vllm_colocate import vllm_colocate_overrides

    model_init_kwargs = dict(
        revision=model_args.model_revision,
        trust_remote_code=getattr(training_args, "trust_remote_code", None),
        attn_implementation=model_args.attn_implementation,
        dtype=model_args.dtype,
    )
    model_init_kwargs = {k: v for k, v in model_init_kwargs.items() if v is not None}
    model_init_kwargs.update(training_args.model_init_kwargs or {})
    model: Any = model_args.model_name_or_path
    overrides = config_overrides(script_args)
    if overrides:  # load here so the overrides apply; the checkpoint on disk is untouched
        model = load_model(model_args.model_name_or_path, overrides, **model_init_kwargs)
    else:
        training_args.model_init_kwargs = model_init_kwargs
    tokenizer = AutoTokenizer.from_pretrained(
        model_args.model_name_or_path,
        revision=model_args.model_revision,
        trust_remote_code=bool(getattr(training_args, "trust_remote_code", False)),
    )
    # TRL's colocated vLLM engine reads the checkpoint's own config.json: hand it the same overrides.
    hf_overrides = None
    if overrides and getattr(training_args, "use_vllm", False) and training_args.vllm_mode == "colocate":
        base_config = load_config(model_args.model_name_or_path, None, **model_init_kwargs)
        hf_overrides = vllm_hf_overrides(base_config, overrides)
    common = dict(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    if script_args.trainer in ("sft", "sft_kl"):
        from .baselines import SFTBaseline
        from .sft_kl import SFTKLTrainer

        demo_column = getattr(training_args, "demo_column", "completion")
        common["train_dataset"] = sft_view(train_dataset, demo_column)
        if eval_dataset is not None:
            common["eval_dataset"] = sft_view(eval_dataset, demo_column)
        return (SFTKLTrainer if script_args.trainer == "sft_kl" else SFTBaseline)(**common)
    from .rewards import resolve_reward_funcs

    reward_funcs = resolve_reward_funcs(script_args.reward_funcs)
    quantization = get_quantization_config(model_args)
    if script_args.trainer == "grpo":
        from .baselines import GRPOBaseline as trainer_cls
    else:
        from .trainer import SRFTTrainer as trainer_cls
    with vllm_colocate_overrides(hf_overrides):  # the engine is built inside the trainer's __init__
        return trainer_cls(reward_funcs=reward_funcs, quantization_config=quantization, **common)


def apply_toy_world(
    script_args: SRFTScriptArguments, training_args: TrainingArguments, model_args: ModelConfig
) -> None:
    """Builds (or reuses) the offline toy world and fills in whatever the recipe left unset."""
    from .toy import build_toy_world

    # Under accelerate launch one process builds it, the others then read it. The barrier is the training arguments'
    # (their state knows `use_cpu`): a `PartialState()` made before them is single-process on a CUDA-less machine.
    with training_args.main_process_first(desc="toy world"):
        world = build_toy_world(script_args.toy_world, task=script_args.toy_task)
    model_args.model_name_or_path = model_args.model_name_or_path or str(world.model_dir)
    script_args.dataset_name = script_args.dataset_name or str(world.train_file)
    script_args.heldout_dataset = script_args.heldout_dataset or str(world.heldout_file)


def max_new_tokens(training_args) -> int:
    """Held-out completion budget: the training completion length, and at least the toy worlds' 160 tokens."""
    return max(160, getattr(training_args, "max_completion_length", None) or 0)


def heldout_rewards(script_args, training_args) -> tuple[list, list[float] | None] | None:
    """
    What the held-out problems are scored with: `None` for the `accuracy` reward alone (its grader), else the recipe's
    reward functions and, where the trainer's config has them, `reward_weights` (correct when the total is > 0).
    """
    names = list(script_args.reward_funcs or ["accuracy"])
    if names in (["accuracy"], ["accuracy_reward"]):
        return None
    from .rewards import resolve_reward_funcs

    return resolve_reward_funcs(names), getattr(training_args, "reward_weights", None)


def scored_with(script_args) -> str:
    names = list(script_args.reward_funcs or ["accuracy"])
    if names in (["accuracy"], ["accuracy_reward"]):
        return "the `accuracy` reward"
    return f"the reward functions {names} (correct when the total reward is > 0)"


def evaluate_heldout(trainer, dataset, size: int, rewards: tuple | None = None) -> float | None:
    """
    Greedy held-out accuracy of the trainer's model on the first `size` problems, graded by the `accuracy` reward or
    by `rewards` ([`heldout_rewards`]). Under `accelerate launch` each process scores its share of the problems with
    the full model (gathered for the duration under ZeRO-3, as TRL gathers it for generation) and the rewards are
    gathered.
    """
    if dataset is None or size <= 0 or len(dataset) == 0:
        return None
    from accelerate.utils import gather_object
    from trl.models import unwrap_model_for_generation

    from .toy import evaluate_heldout as score

    accelerator = trainer.accelerator
    subset = dataset.select(range(min(size, len(dataset))))
    with (
        unwrap_model_for_generation(trainer.model_wrapped, accelerator) as model,
        accelerator.split_between_processes(list(range(len(subset)))) as mine,
    ):
        budget = max_new_tokens(trainer.args)
        mine = subset.select(mine) if mine else None
        funcs, weights = rewards or (None, None)
        scores = score(model, trainer.processing_class, mine, max_new_tokens=budget, reward_funcs=funcs,
                       reward_weights=weights).rewards if mine else []  # fmt: skip
    scores = gather_object(scores)
    return sum(scores) / len(scores)


class HeldoutCurve(TrainerCallback):
    """Scores the held-out problems every `every` optimizer steps (not at the last: that is the `after` score)."""

    def __init__(self, trainer, dataset, size: int, every: int, rewards: tuple | None = None):
        self.trainer, self.dataset, self.size, self.every, self.rewards = trainer, dataset, size, every, rewards
        self.points: list[dict] = []

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every == 0 and state.global_step < state.max_steps:
            accuracy = evaluate_heldout(self.trainer, self.dataset, self.size, self.rewards)
            self.points.append({"step": state.global_step, "accuracy": accuracy})
            if self.trainer.accelerator.is_main_process:
                print(f"Held-out accuracy at step {state.global_step}: {100 * accuracy:.1f}%", flush=True)


def write_curves(trainer, output_dir: str) -> Path | None:
    from .analysis.dynamics import DEFAULT_PANELS, plot_dynamics, read_trainer_state

    state = Path(output_dir) / "trainer_state.json"  # written by trainer.save_state()
    png = Path(output_dir) / "training_curves.png"
    try:
        plot_dynamics({"run": read_trainer_state(state)}, DEFAULT_PANELS, png, png.with_suffix(".csv"))
    except ValueError as err:  # nothing plottable was logged (e.g. max_steps below logging_steps)
        logger.warning("No training curves written: %s", err)
        return None
    return png


def _parse_or_report(argv: list[str]):
    """The parsed recipe, or `None` after printing its problems in `srft check`'s words (no traceback)."""
    import contextlib
    import io

    from .recipe import rejected_value_problem

    problems = recipe_problems(argv, parse=False)
    if not problems:
        said = io.StringIO()
        try:
            with contextlib.redirect_stderr(said):
                parsed = parse_args(argv)
        except SystemExit:
            problems = [rejected_value_problem(said.getvalue(), argv)]
        except (ValueError, TypeError) as err:
            problems = [str(err)]
        else:
            sys.stderr.write(said.getvalue())  # what the parse printed on its way (warnings) still shows
            return parsed
    for problem in problems:
        print(f"srft train: {problem}", file=sys.stderr)
    print("srft train: `srft check --config RECIPE` checks a whole recipe offline", file=sys.stderr)
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        from .console import short_help

        print(short_help(peek_trainer([a for a in argv if a not in ("-h", "--help")])))
        return 0
    if "--help-all" in argv:
        parser = make_parser(peek_trainer([a for a in argv if a != "--help-all"]))
        parser.prog = "srft train"
        parser.print_help()
        return 0
    from .versions import quiet_renamed_argument_warnings

    quiet_renamed_argument_warnings()
    parsed = _parse_or_report(argv)
    if parsed is None:
        return 2
    script_args, training_args, model_args = parsed
    from .callbacks import quiet_replicas

    quiet_replicas()  # under accelerate launch, our warnings print once (from the main process)
    if script_args.toy_world:
        apply_toy_world(script_args, training_args, model_args)
    if not model_args.model_name_or_path:
        raise ValueError("No model: set `model_name_or_path` (a Hub id or a local folder) or `toy_world`.")
    if not script_args.dataset_name:
        raise ValueError(
            "No data: set `dataset_name` (a Hub id or a local .json/.jsonl/.parquet file) or `toy_world`."
        )
    for key in ("dataset_name", "eval_dataset_name", "heldout_dataset"):
        check_local_path(getattr(script_args, key), key)
    check_local_path(model_args.model_name_or_path, "model_name_or_path")
    reward_funcs = []
    if script_args.trainer not in ("sft", "sft_kl"):
        from .rewards import resolve_reward_funcs
        from .vllm_colocate import check_vllm_setup

        reward_funcs = resolve_reward_funcs(script_args.reward_funcs)  # fail on a bad name before loading anything
        check_vllm_setup(training_args)
    from .callbacks import check_output_dir
    from .checkpoints import ignored_save_settings, resolve_resume
    from .versions import check_deepspeed

    check_deepspeed(training_args)

    check_output_dir(training_args.output_dir)  # creates it; the room for a checkpoint is checked once it is known
    resume = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
    for message in ignored_save_settings(training_args):
        logger.warning(message)

    train_dataset = load_split(script_args.dataset_name, script_args.dataset_train_split, script_args.dataset_config)
    heldout, heldout_name = None, script_args.heldout_dataset
    if script_args.heldout_fraction:
        from .data.heldout import HELDOUT_SEED, split_heldout

        train_dataset, heldout = split_heldout(train_dataset, script_args.heldout_fraction)
        saved = Path(training_args.output_dir) / "heldout.jsonl"
        heldout_name = f"{len(heldout)} rows cut from {script_args.dataset_name} with seed {HELDOUT_SEED}, in {saved}"
        if training_args.process_index == 0:  # the rows, for `srft eval --data` later
            heldout.to_json(str(saved), lines=True, force_ascii=False)
    from .data_checks import check_training_data

    check_training_data(  # every row, before any weights load: a bad demo must not surface hours in
        train_dataset,
        script_args.dataset_name,
        script_args.trainer,
        getattr(training_args, "demo_column", "completion"),
        reward_funcs,
        demos=getattr(training_args, "num_demos_per_group", 1) > 0,
    )
    eval_dataset = None
    if training_args.eval_strategy != "no":
        name = script_args.eval_dataset_name or script_args.dataset_name
        split = script_args.dataset_test_split if script_args.eval_dataset_name is None else "train"
        eval_dataset = load_split(name, split, script_args.dataset_config)
    if script_args.heldout_dataset:
        heldout = load_split(script_args.heldout_dataset, "train")
    if heldout is not None and script_args.heldout_size == 0:
        logger.warning("Held-out scoring skipped: `heldout_size` is 0 (no table, no heldout_accuracy.json).")
        heldout = None

    trainer = build_trainer(script_args, training_args, model_args, train_dataset, eval_dataset)
    if script_args.ignore_bias_buffers:  # as TRL's scripts do: DDP does not broadcast the model's boolean buffers
        import torch

        trainer.model._ddp_params_and_buffers_to_ignore = [
            name for name, buffer in trainer.model.named_buffers() if buffer.dtype == torch.bool
        ]
    from .console import use_compact_progress

    use_compact_progress(trainer)  # the bar and one short line per logging step; trackers get every metric
    push_watch = None
    if training_args.push_to_hub:  # background checkpoint pushes are otherwise never checked
        from .hub import PushWatch

        push_watch = PushWatch(trainer)
        trainer.add_callback(push_watch)
    from .callbacks import SaveOnSigterm

    if script_args.trainer != "srft":  # SRFTTrainer does this itself
        from .callbacks import estimated_checkpoint_bytes

        saves = training_args.save_strategy != "no"
        needed = estimated_checkpoint_bytes(trainer.model, training_args.save_only_model) if saves else 0
        check_output_dir(training_args.output_dir, needed)
        trainer.add_callback(SaveOnSigterm())
    rewards = heldout_rewards(script_args, training_args) if heldout is not None else None
    if heldout is not None and script_args.heldout_before and trainer.accelerator.is_main_process:
        n = min(script_args.heldout_size, len(heldout))
        print(
            f"Scoring the model before training: {n} held-out problems ({heldout_name}), greedy, with "
            f"{scored_with(script_args)}, up to {max_new_tokens(training_args)} new tokens...",
            flush=True,
        )
    before = (
        evaluate_heldout(trainer, heldout, script_args.heldout_size, rewards) if script_args.heldout_before else None
    )
    curve = None
    if heldout is not None and script_args.heldout_every:
        curve = HeldoutCurve(trainer, heldout, script_args.heldout_size, script_args.heldout_every, rewards)
        trainer.add_callback(curve)
    trainer.train(resume_from_checkpoint=resume)
    sigterm = next((cb for cb in trainer.callback_handler.callbacks if isinstance(cb, SaveOnSigterm)), None)
    if sigterm is not None and sigterm.requested:  # pre-empted: the checkpoint is saved; leave within the grace period
        if trainer.accelerator.is_main_process:
            print(
                f"Stopped by SIGTERM at step {trainer.state.global_step}: checkpoint saved in "
                f"{training_args.output_dir}. Resume with the same command and `--resume_from_checkpoint true`."
            )
        _end(trainer)
        return 0
    after = evaluate_heldout(trainer, heldout, script_args.heldout_size, rewards)

    output_dir = training_args.output_dir
    # Save without Trainer.save_model's built-in push: the push below may fail without losing the local copy.
    trainer.save_model(output_dir, _internal_call=True)
    trainer.card_base_model = model_args.model_name_or_path
    trainer.card_dataset_name = script_args.dataset_name
    if after is not None:
        n = min(script_args.heldout_size, len(heldout))
        trainer.card_heldout = {
            "trainer": script_args.trainer,
            "heldout_size": n,
            "heldout": heldout_name,
            "scored_with": scored_with(script_args),
            "before": before,
            "after": after,
        }
        if curve is not None:  # step 0 (when scored), every `heldout_every` steps, the end
            start = [{"step": 0, "accuracy": before}] if before is not None else []
            end = [{"step": trainer.state.global_step, "accuracy": after}]
            trainer.card_heldout["curve"] = start + curve.points + end
    if trainer.accelerator.is_main_process:
        trainer.save_state()
        trainer.create_model_card()
        if script_args.plot_curves and (png := write_curves(trainer, output_dir)):
            print(f"Training curves: {png}")
        if after is not None:
            shown = "not scored" if before is None else f"{100 * before:.1f}%"
            table = (
                f"| held-out accuracy ({n} problems) | before | after |\n|---|---|---|\n"
                f"| {script_args.trainer} | {shown} | {100 * after:.1f}% |"
            )
            print(table)
            (Path(output_dir) / "heldout_accuracy.json").write_text(json.dumps(trainer.card_heldout, indent=2))
        print(f"Model saved to {output_dir}")
    if training_args.push_to_hub:
        try:
            trainer.push_to_hub()
        except Exception as err:  # noqa: BLE001 - the run's result is on disk; say so and fail the command
            from .hub import one_line

            repo = trainer.hub_model_id or training_args.hub_model_id
            message = (
                f"Push to the Hub failed: the final push of {output_dir} to {repo} ({one_line(err)}). "
                f"The model, tokenizer and card are intact in {output_dir}: push them later with "
                f"`hf upload {repo} {output_dir}` or `trainer.push_to_hub()`."
            )
            if push_watch is not None and push_watch.summary():  # checkpoint pushes that failed before it
                message += f"\nAlso: {push_watch.summary()}."
            print(message, file=sys.stderr)
            _end(trainer)
            return 1
    _end(trainer)
    return 0


def _end(trainer) -> None:
    """Closes trackers and the process group (transformers >= 5.18), a colocated vLLM engine on CPU first."""
    from .vllm_colocate import shutdown_colocated_engine

    shutdown_colocated_engine(trainer)  # SRFTTrainer.end() does it too; TRL's GRPOTrainer does not
    trainer.end()


if __name__ == "__main__":
    sys.exit(main())
