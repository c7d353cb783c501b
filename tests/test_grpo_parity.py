"""
GRPOTrainer is the oracle: every GRPOConfig option, with demonstrations off and SRFT's weights neutral, gives
GRPOTrainer's losses, logged metrics and weights; with demonstrations on, every option still acts on the rollouts.

The list of options is `srft_trainer.grpo_options`, checked here against the fields of the installed `GRPOConfig`.
"""

import math
from dataclasses import fields

import pytest
import torch
from datasets import IterableDataset
from tiny import tiny_model, tiny_tokenizer
from trainer_utils import config, contains_solution, length_reward, make_dataset, params_of
from transformers import Qwen2MoeConfig, Qwen2MoeForCausalLM, TrainingArguments
from trl import GRPOConfig, GRPOTrainer

from srft_trainer import SRFTTrainer
from srft_trainer.grpo_options import (
    GRPO_OPTIONS,
    LOSS,
    STEPS,
    TRAINER_ARGUMENTS,
    TRAINING_ARGUMENTS_USED_BY_GRPO,
    all_options,
)
from srft_trainer.losses import DEMO_AGGREGATION


NEUTRAL = dict(num_demos_per_group=0, rl_entropy_weighting=False, rl_pos_coef=1.0)
# Keys whose values are wall-clock measurements, not training results.
TIMING = ("runtime", "per_second", "time")


def test_every_grpo_config_field_is_classified():
    """A field a later TRL adds fails here until grpo_options.py says what SRFT does with it."""
    training_arguments = {f.name for f in fields(TrainingArguments)}
    grpo_fields = {f.name for f in fields(GRPOConfig)} - training_arguments
    assert grpo_fields - set(GRPO_OPTIONS) == set(), "classify these GRPOConfig fields in grpo_options.py"
    assert set(GRPO_OPTIONS) - grpo_fields == set(), "these classified options are no longer GRPOConfig fields"
    assert set(TRAINING_ARGUMENTS_USED_BY_GRPO) <= training_arguments
    for name, option in all_options().items():
        assert option.with_demos and option.parity, name
        if option.parity in (STEPS, LOSS):
            assert option.settings, f"{name} is parity-tested but names no setting"
        else:
            assert not option.settings and len(option.parity) > 20, f"{name}: say why it is not parity-tested"


def test_every_trl_loss_type_composes_with_demonstrations():
    """The loss types GRPOConfig documents are exactly those SRFT knows how to add its demo terms to."""
    help_text = GRPOConfig.__dataclass_fields__["loss_type"].metadata["help"]
    documented = set(help_text.split("Supported values are")[1].split(".")[0].replace("and", ",").split(","))
    documented = {name.strip().strip("'") for name in documented if name.strip()}
    assert documented == set(DEMO_AGGREGATION)


def test_signature_is_grpo_trainers():
    import inspect

    grpo = list(inspect.signature(GRPOTrainer.__init__).parameters)
    srft = list(inspect.signature(SRFTTrainer.__init__).parameters)
    assert srft == grpo


def tiny_moe(tokenizer):
    torch.manual_seed(0)
    cfg = Qwen2MoeConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=32, moe_intermediate_size=16,
        shared_expert_intermediate_size=16, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        num_experts=4, num_experts_per_tok=2, max_position_embeddings=512, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, output_router_logits=True,
    )  # fmt: skip
    model = Qwen2MoeForCausalLM(cfg)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.do_sample = True
    return model


def build(cls, settings, tmp_path, demos: int = 0, train_dataset=None):
    """A trainer of `cls` on the tiny model with `settings` (plus SRFT's neutral weights, or `demos` demo slots)."""
    settings = dict(settings)
    kind = settings.pop("model", "dense")
    tok = tiny_tokenizer()
    model = tiny_moe(tok) if kind == "moe" else tiny_model(tok, seed=0)
    if kind == "path":
        model.save_pretrained(tmp_path / "model")
        tok.save_pretrained(tmp_path / "model")
        model = str(tmp_path / "model")
    common = dict(optim="sgd", learning_rate=0.5, max_steps=2, **settings)
    if cls is GRPOTrainer:
        args = config(tmp_path / "grpo", cls=GRPOConfig, **common)
    else:
        srft = dict(NEUTRAL) if demos == 0 else dict(num_demos_per_group=demos)
        args = config(tmp_path / "srft", **srft, **common)
    eval_dataset = make_dataset(4) if settings.get("eval_strategy") else None
    train_dataset = make_dataset() if train_dataset is None else train_dataset
    # Positional, as a GRPOTrainer user writes it.
    return cls(model, [length_reward, contains_solution], args, train_dataset, eval_dataset, tok)


def logged(trainer) -> list[dict]:
    return [{k: v for k, v in h.items() if not any(t in k for t in TIMING)} for h in trainer.state.log_history]


def assert_same_logs(srft_logs, grpo_logs):
    assert len(srft_logs) == len(grpo_logs)
    for ours, theirs in zip(srft_logs, grpo_logs):
        missing = set(theirs) - set(ours)
        assert not missing, f"GRPOTrainer logs {sorted(missing)}, SRFTTrainer does not"
        for key, value in theirs.items():
            if value is None or ours[key] is None:
                assert ours[key] is value, key
            elif isinstance(value, float) and math.isnan(value):
                assert math.isnan(ours[key]), key
            else:
                assert ours[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


STEP_CASES = [
    pytest.param(name, settings, id=f"{name}-{i}")
    for name, option in {**GRPO_OPTIONS, **TRAINING_ARGUMENTS_USED_BY_GRPO}.items()
    if option.parity == STEPS
    for i, settings in enumerate(option.settings)
]


@pytest.mark.parametrize("name, settings", STEP_CASES)
def test_steps_match_grpo_trainer(tmp_path, name, settings):
    """Two optimizer steps: the same loss, every metric GRPOTrainer logs with its value, and the same weights."""
    runs = {}
    for cls in (GRPOTrainer, SRFTTrainer):
        trainer = build(cls, settings, tmp_path)
        trainer.train()
        runs[cls] = (logged(trainer), params_of(trainer.model))
    assert_same_logs(runs[SRFTTrainer][0], runs[GRPOTrainer][0])
    losses = [h["loss"] for h in runs[GRPOTrainer][0] if "loss" in h]
    assert losses and any(loss != 0.0 for loss in losses), "a parity run with no loss signal shows nothing"
    for key, value in runs[GRPOTrainer][1].items():
        torch.testing.assert_close(runs[SRFTTrainer][1][key], value, rtol=1e-5, atol=1e-6)


COMPOSED_CASES = [
    pytest.param(name, settings, id=f"{name}-{i}")
    for name, option in GRPO_OPTIONS.items()
    if option.parity == STEPS and "eval_strategy" not in option.settings[0]
    for i, settings in enumerate(option.settings)
]


@pytest.mark.parametrize("name, settings", COMPOSED_CASES)
def test_every_option_trains_with_demonstrations(tmp_path, name, settings):
    """With one demonstration per group, every option runs, uses the demos and keeps a finite, moving loss."""
    settings = dict(settings)
    if settings.get("max_completion_length", 40) < 40:  # the demos are longer: cut them rather than drop them
        settings["demo_too_long"] = "truncate"
    trainer = build(SRFTTrainer, settings, tmp_path, demos=1)
    before = params_of(trainer.model)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert logs and all(math.isfinite(h["loss"]) for h in logs)
    assert sum(h.get("srft/demos_used", 0) for h in logs) > 0
    assert any(not torch.equal(p, before[n]) for n, p in params_of(trainer.model).items())


# ---------------------------------------------------------------------------------------- one batch, both losses
def batch_and_trainers(tmp_path, settings, demos=0):
    """A generation batch made by SRFTTrainer, and both trainers with the same weights, ready for `_compute_loss`."""
    settings = dict(settings)
    ratio_kind = settings.pop("importance_sampling_ratio", None)
    shift = settings.pop("old_logps_shift", None)
    srft = build(SRFTTrainer, settings, tmp_path / "s", demos=demos)
    grpo = build(GRPOTrainer, settings, tmp_path / "g")
    grpo.model.load_state_dict(srft.model.state_dict())
    dataset = make_dataset()
    inputs = [dataset[i] for i in range(2) for _ in range(srft.num_generations)]
    for trainer in (srft, grpo):
        trainer.model.train()
        trainer.current_gradient_accumulation_steps = 1  # set by train(); the loss is called directly here
    torch.manual_seed(0)
    batch = srft._generate_and_score_completions(inputs)
    with torch.no_grad():
        logps, _, _ = srft._get_per_token_logps_and_entropies(
            srft.model,
            torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1),
            torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1),
            batch["completion_ids"].size(1),
        )
    if shift is not None:  # old log-probs far from the current ones: ratios of exp(3) ~ 20, as in the issue
        batch["old_per_token_logps"] = logps + shift
    if ratio_kind is not None:  # the vLLM IS correction as GRPOTrainer's generation code leaves it in the batch
        g = torch.Generator().manual_seed(1)
        shape = batch["completion_mask"].shape if ratio_kind == "token" else (batch["completion_mask"].size(0), 1)
        batch["importance_sampling_ratio"] = 0.5 + torch.rand(shape, generator=g)
        for trainer in (srft, grpo):
            trainer.use_vllm, trainer.vllm_importance_sampling_correction = True, True
    return batch, srft, grpo


def loss_and_grads(trainer, batch):
    trainer.model.zero_grad()
    trainer._metrics["train"].clear()
    loss = trainer._compute_loss(trainer.model, {k: v.clone() if torch.is_tensor(v) else v for k, v in batch.items()})
    loss.backward()
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    return loss.detach(), grads, set(trainer._metrics["train"])


LOSS_CASES = [
    pytest.param(name, settings, id=f"{name}-{i}")
    for name, option in GRPO_OPTIONS.items()
    if option.parity == LOSS
    for i, settings in enumerate(option.settings)
]


@pytest.mark.parametrize("name, settings", LOSS_CASES)
def test_loss_matches_grpo_trainer_on_the_same_batch(tmp_path, name, settings):
    batch, srft, grpo = batch_and_trainers(tmp_path, settings)
    ours, our_grads, our_keys = loss_and_grads(srft, batch)
    theirs, their_grads, their_keys = loss_and_grads(grpo, batch)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)
    assert their_keys <= our_keys
    assert our_grads.keys() == their_grads.keys()
    for key, grad in their_grads.items():
        torch.testing.assert_close(our_grads[key], grad, rtol=1e-5, atol=1e-7)


def test_delta_is_honoured(tmp_path):
    """The issue's case: ratios of ~20 on negative advantages; two-sided clipping caps them at `delta`."""
    values = {}
    for delta in (None, 2.0):
        batch, srft, grpo = batch_and_trainers(tmp_path / str(delta), {"delta": delta, "old_logps_shift": -3.0})
        values[delta] = (loss_and_grads(srft, batch)[0], loss_and_grads(grpo, batch)[0])
    for ours, theirs in values.values():
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)
    assert values[2.0][0] != pytest.approx(values[None][0].item(), rel=1e-3)


LOSS_OPTIONS_WITH_DEMOS = [
    {},
    {"loss_type": "grpo"},
    {"loss_type": "bnpo"},
    {"loss_type": "dr_grpo"},
    {"loss_type": "cispo"},
    {"loss_type": "sapo"},
    {"loss_type": "vespo"},
    {"loss_type": "luspo", "importance_sampling_level": "sequence"},
    {"importance_sampling_level": "sequence"},
    {"delta": 2.0, "old_logps_shift": -3.0},
    {"off_policy_mask_threshold": 0.0, "old_logps_shift": 0.5},
    {"top_entropy_quantile": 0.5},
    {"beta": 0.04, "model": "path"},
    {"entropy_coef": 0.01},
    {"importance_sampling_ratio": "token"},
    {"importance_sampling_ratio": "sequence", "loss_type": "vespo"},
]


@pytest.mark.parametrize(
    "settings", LOSS_OPTIONS_WITH_DEMOS, ids=lambda s: "-".join(map(str, s.values())) or "default"
)
def test_with_demonstrations_options_act_on_the_rollouts_as_in_grpo(tmp_path, settings):
    """
    SRFT's loss on a batch with demonstrations (w_RL = 1, no SFT term, no demo RL term) equals GRPOTrainer's loss on
    the same batch with the demonstration rows' tokens left out of its mask: the option acts on the rollouts exactly as
    in GRPO, demonstrations neither change its statistics nor receive it.
    """
    batch, srft, grpo = batch_and_trainers(tmp_path, settings, demos=1)
    is_demo = batch["is_demo"].bool()
    assert is_demo.any() and (~is_demo).any()
    srft.args.rl_entropy_weighting, srft.args.rl_pos_coef = False, 1.0
    srft.args.sft_coef, srft.args.demo_rl = 0.0, False
    ours, our_grads, _ = loss_and_grads(srft, batch)
    rollouts_only = dict(batch)
    rollouts_only["completion_mask"] = batch["completion_mask"]  # the forward pass still sees the demo tokens
    rollouts_only["tool_mask"] = (~is_demo).long().unsqueeze(1).expand_as(batch["completion_mask"])
    theirs, their_grads, _ = loss_and_grads(grpo, rollouts_only)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)
    for key, grad in their_grads.items():
        torch.testing.assert_close(our_grads[key], grad, rtol=1e-5, atol=1e-7)
    # And the demonstration terms are added on top: with them on, the loss moves.
    srft.args.sft_coef, srft.args.demo_rl = 0.5, True
    assert loss_and_grads(srft, batch)[0].item() != pytest.approx(ours.item(), abs=1e-6)


def test_streaming_training_set_trains_and_saves(tmp_path):
    """An IterableDataset trains (as in GRPOTrainer) and every checkpoint save writes the model card."""
    rows = make_dataset().to_list()
    stream = IterableDataset.from_generator(lambda: iter(rows))
    trainer = build(SRFTTrainer, {"save_strategy": "steps", "save_steps": 1}, tmp_path, demos=1, train_dataset=stream)
    trainer.train()
    assert (tmp_path / "srft" / "checkpoint-2" / "model.safetensors").exists()
    card = (tmp_path / "srft" / "README.md").read_text()
    assert "srft" in card.lower()
    assert sum(h.get("srft/demos_used", 0) for h in trainer.state.log_history) > 0


def test_w_rl_above_one_is_reported_once_and_can_be_capped(tmp_path, caplog):
    """A random-initialised model's entropy is ~ln(vocab) = 4.6 nats: w_RL = 0.1 * exp(4.6) ~ 10."""
    trainer = build(SRFTTrainer, {}, tmp_path / "free", demos=1)
    with caplog.at_level("WARNING", logger="srft_trainer.objective"):
        trainer.train()
    warnings = [r.getMessage() for r in caplog.records if "w_RL" in r.getMessage()]
    assert len(warnings) == 1 and "w_rl_max" in warnings[0] and "nats" in warnings[0]
    assert max(h.get("srft/w_rl", 0) for h in trainer.state.log_history) > 1.0
    capped = build(SRFTTrainer, {"w_rl_max": 1.0}, tmp_path / "capped", demos=1)
    capped.args.w_rl_max = 1.0
    capped.train()
    assert max(h["srft/w_rl"] for h in capped.state.log_history if "srft/w_rl" in h) <= 1.0 + 1e-6


@pytest.mark.parametrize("name", sorted(set(TRAINER_ARGUMENTS) - {"peft_config"}))
def test_refusals_with_demonstrations_say_why(tmp_path, name):
    value = {"tools": [len], "environment_factory": lambda: None, "rollout_func": lambda prompts, trainer: {}}[name]
    tok = tiny_tokenizer()
    args = config(tmp_path, num_demos_per_group=1)
    with pytest.raises(ValueError, match=f"`{name}`") as error:
        SRFTTrainer(tiny_model(tok), [length_reward], args, make_dataset(), processing_class=tok, **{name: value})
    assert "num_demos_per_group=0" in str(error.value) and "because" in str(error.value)


def test_demo_rows_never_leak_into_grpo_statistics(tmp_path):
    """Demonstration rows with NaN sampling log-probs (vLLM gives none) keep the loss finite."""
    batch, srft, _ = batch_and_trainers(tmp_path, {"importance_sampling_ratio": "token"}, demos=1)
    is_demo = batch["is_demo"].bool()
    batch["sampling_per_token_logps"] = torch.where(is_demo.unsqueeze(1), torch.nan, batch["completion_mask"] * 0.0)
    srft.off_policy_mask_threshold = 0.1
    loss, grads, _ = loss_and_grads(srft, batch)
    assert torch.isfinite(loss) and all(torch.isfinite(g).all() for g in grads.values())


def test_compatibility_doc_is_generated_from_this_list():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "scripts/compat_table.py", "--check"], cwd=root, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    text = (root / "docs" / "compatibility.md").read_text()
    for name in all_options():
        assert f"| `{name}` |" in text
