"""SRFTTrainer on a tiny random Qwen2 (CPU, no Hub): drop-in equivalence, group composition, learning, options."""

import inspect
import math

import pytest
import torch
from datasets import Dataset
from trainer_utils import clone, config, contains_solution, demo_for, length_reward, make_dataset, params_of, tiny_pair
from trl import GRPOConfig, GRPOTrainer

from srft_trainer import SRFTConfig, SRFTTrainer
from srft_trainer.losses import SUPPORTED_LOSS_TYPES


@pytest.mark.parametrize("loss_type", SUPPORTED_LOSS_TYPES)
def test_drop_in_equivalence_with_grpo(tmp_path, loss_type):
    """With no demos and w_RL = 1, the first step's loss and update equal GRPOTrainer's."""
    tok, model = tiny_pair()
    common = dict(loss_type=loss_type, optim="sgd", learning_rate=0.5)
    srft_args = config(tmp_path / "srft", num_demos_per_group=0, rl_entropy_weighting=False, rl_pos_coef=1.0, **common)
    grpo_args = config(tmp_path / "grpo", cls=GRPOConfig, **common)
    ds = make_dataset()
    runs = {}
    for name, cls, args in (("grpo", GRPOTrainer, grpo_args), ("srft", SRFTTrainer, srft_args)):
        m = clone(model)
        trainer = cls(model=m, reward_funcs=[length_reward], args=args, train_dataset=ds, processing_class=tok)
        trainer.train()
        runs[name] = (trainer.state.log_history[0]["loss"], params_of(m))
    assert runs["srft"][0] == pytest.approx(runs["grpo"][0], rel=1e-5, abs=1e-7)
    assert runs["grpo"][0] != 0.0
    before = params_of(model)
    moved = 0
    for name, p in runs["grpo"][1].items():
        torch.testing.assert_close(runs["srft"][1][name], p, rtol=1e-5, atol=1e-7)
        moved += int(not torch.equal(p, before[name]))
    assert moved > 0


# Released-code options with no demos (or that TRL has itself): SRFT reduced to GRPO stays GRPO. Each entry is
# (SRFT-only options, options both trainers get).
GRPO_COVERED_VARIANTS = {
    "group_stats_from_rollouts": ({"group_stats_from": "rollouts"}, {}),
    "group_stats_from_rollouts_batch_std": ({"group_stats_from": "rollouts"}, {"scale_rewards": "batch"}),
    "entropy_bonus": ({}, {"entropy_coef": 0.01}),
    "released_code": (
        {"sft_weight_sign": "code", "entropy_granularity": "token", "demo_policy_shaping": 0.1},
        {"entropy_coef": 0.001, "scale_rewards": "none", "loss_type": "dr_grpo"},
    ),
    "released_code_two_updates_per_generation": (
        {"sft_weight_sign": "code", "entropy_granularity": "sequence", "demo_policy_shaping": 0.1},
        {
            "entropy_coef": 0.001,
            "scale_rewards": "none",
            "loss_type": "dr_grpo",
            "steps_per_generation": 2,
            "per_device_train_batch_size": 4,
            "num_generations": 4,
            "max_steps": 2,
        },
    ),  # fmt: skip
}


@pytest.mark.parametrize("variant", list(GRPO_COVERED_VARIANTS))
def test_drop_in_equivalence_with_grpo_for_released_code_options(tmp_path, variant):
    srft_only, shared = GRPO_COVERED_VARIANTS[variant]
    tok, model = tiny_pair()
    common = dict(optim="sgd", learning_rate=0.5, **shared)
    srft_args = config(tmp_path / "srft", num_demos_per_group=0, rl_entropy_weighting=False, rl_pos_coef=1.0,
                       **srft_only, **common)  # fmt: skip
    grpo_args = config(tmp_path / "grpo", cls=GRPOConfig, **common)
    runs = {}
    for name, cls, args in (("grpo", GRPOTrainer, grpo_args), ("srft", SRFTTrainer, srft_args)):
        m = clone(model)
        trainer = cls(model=m, reward_funcs=[length_reward], args=args, train_dataset=make_dataset(),
                      processing_class=tok)  # fmt: skip
        trainer.train()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        runs[name] = (losses, params_of(m))
    assert runs["srft"][0] == pytest.approx(runs["grpo"][0], rel=1e-5, abs=1e-7)
    for name, p in runs["grpo"][1].items():
        torch.testing.assert_close(runs["srft"][1][name], p, rtol=1e-5, atol=1e-7)
    assert any(not torch.equal(p, params_of(model)[n]) for n, p in runs["grpo"][1].items())


def test_entropy_bonus_reaches_the_update(tmp_path):
    """The token entropies carry their gradient into the loss: the bonus changes the update."""
    tok, model = tiny_pair()
    updates = {}
    for coef in (0.0, 0.5):
        m = clone(model)
        args = config(tmp_path / str(coef), entropy_coef=coef, optim="sgd", learning_rate=0.5)
        SRFTTrainer(model=m, reward_funcs=[length_reward], args=args, train_dataset=make_dataset(),
                    processing_class=tok).train()  # fmt: skip
        updates[coef] = params_of(m)
    assert any(not torch.allclose(updates[0.0][n], p) for n, p in updates[0.5].items())


def _score_batch(trainer, dataset, group_size):
    """One generation batch as the sampler builds it: every row repeated `group_size` times."""
    inputs = [dataset[i] for i in range(len(dataset)) for _ in range(group_size)]
    trainer.model.train()
    return inputs, trainer._generate_and_score_completions(inputs)


def test_group_composition_demo_tokens_and_advantages(tmp_path):
    tok, model = tiny_pair()
    rows = [
        {"prompt": [{"role": "user", "content": "1+2="}], "completion": demo_for(1, 2), "solution": "3"},
        {"prompt": [{"role": "user", "content": "2+3="}], "completion": None, "solution": "5"},  # no demo
        {"prompt": [{"role": "user", "content": "3+4="}], "completion": "x" * 200, "solution": "7"},  # too long
        {  # three demos, two slots
            "prompt": [{"role": "user", "content": "4+5="}],
            "completion": [demo_for(4, 5), "<think>\nno</think>\n\\boxed{9}", "\\boxed{9}"],
            "solution": "9",
        },
    ]
    ds = Dataset.from_list([{**r, "completion": r["completion"]} for r in rows[:2]])
    args = config(
        tmp_path, num_generations=4, num_demos_per_group=2, per_device_train_batch_size=16, max_completion_length=40
    )
    trainer = SRFTTrainer(model=model, reward_funcs=[contains_solution], args=args, train_dataset=ds,
                          processing_class=tok)  # fmt: skip
    inputs, out = _score_batch(trainer, rows, 4)
    is_demo = out["is_demo"].view(4, 4)
    assert is_demo.sum(1).tolist() == [1, 0, 0, 2]  # min(2, usable demos) per group, in the last slots
    assert is_demo[:, -2:].sum() == 3 and is_demo[:, :2].sum() == 0
    assert trainer.num_generated_sequences == 16 - 3  # demo slots cost no generation

    # Demo rows hold the demo tokens followed by the end-of-turn token, like a completion of that prompt.
    ids, mask = out["completion_ids"], out["completion_mask"].bool()
    expected = {3: demo_for(1, 2), 14: demo_for(4, 5), 15: "<think>\nno</think>\n\\boxed{9}"}
    for row, text in expected.items():
        row_ids = ids[row][mask[row]].tolist()
        assert row_ids == tok(text, add_special_tokens=False).input_ids + [tok.eos_token_id]
        assert row_ids == trainer._demo_tokenizer(inputs[row]["prompt"], _prompt_ids(tok, inputs[row]), text)

    # Advantages are TRL's group normalisation of the rewards, demos included (Eq. 7).
    texts = tok.batch_decode([ids[i][mask[i]] for i in range(16)], skip_special_tokens=True)
    rewards = torch.tensor([float(f"{{{inputs[i]['solution']}}}" in texts[i]) for i in range(16)]).view(4, 4)
    by_hand = (rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-4)
    torch.testing.assert_close(out["advantages"], by_hand.view(-1), rtol=1e-5, atol=1e-5)
    assert out["advantages"][is_demo.view(-1)].min() > 0
    metrics = trainer._metrics["train"]
    assert metrics["srft/demos_used"][-1] == 3
    assert metrics["srft/demos_dropped"][-1] == 1  # the 200-character demo
    assert metrics["srft/demos_missing"][-1] == 1
    assert metrics["srft/demo_reward_mean"][-1] == 1.0


@pytest.mark.parametrize("scale_rewards", ["group", "none"])
def test_group_stats_from_rollouts_scores_demos_against_the_rollouts(tmp_path, scale_rewards):
    """LUFFY's grpo_split: each group's baseline (and scale) come from its rollouts; demos are scored against it."""
    tok, model = tiny_pair()
    ds = make_dataset(2)
    outs = {}
    for stats in ("all", "rollouts"):
        args = config(tmp_path / stats, per_device_train_batch_size=8, group_stats_from=stats,
                      scale_rewards=scale_rewards, generation_kwargs={"do_sample": False})  # fmt: skip
        trainer = SRFTTrainer(model=clone(model), reward_funcs=[length_reward], args=args, train_dataset=ds,
                              processing_class=tok)  # fmt: skip
        _, outs[stats] = _score_batch(trainer, [ds[0], ds[1]], 4)
    out = outs["rollouts"]
    ids, mask = out["completion_ids"], out["completion_mask"].bool()
    texts = tok.batch_decode([ids[i][mask[i]] for i in range(8)], skip_special_tokens=True)
    rewards = torch.tensor([(len(t) % 7) / 6.0 for t in texts]).view(2, 4)
    is_demo = out["is_demo"].view(2, 4)
    assert is_demo[:, -1].all() and not is_demo[:, :-1].any()
    rollouts = rewards[:, :-1]
    expected = rewards - rollouts.mean(1, keepdim=True)
    if scale_rewards == "group":
        std = rollouts.std(1, keepdim=True)
        expected = expected / (torch.where(std == 0, torch.ones_like(std), std) + 1e-4)
    torch.testing.assert_close(out["advantages"], expected.view(-1), rtol=1e-5, atol=1e-6)
    # The rollouts' advantages sum to zero within each group; with "all" it is the whole group that does.
    torch.testing.assert_close(out["advantages"].view(2, 4)[:, :-1].sum(1), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(outs["all"]["advantages"].view(2, 4).sum(1), torch.zeros(2), atol=1e-5, rtol=0)
    assert "rewards" not in out  # attached only for the REINFORCE objective


def test_reinforce_objective_learns_from_all_wrong_groups(tmp_path):
    """Eq. 12 pushes down wrong rollouts even when the whole group is wrong, where GRPO's advantages are all 0."""
    tok, model = tiny_pair()
    ds = make_dataset(4)
    base = params_of(model)
    moved = {}
    for objective in ("clipped", "reinforce"):
        m = clone(model)
        args = config(tmp_path / objective, num_demos_per_group=0, rollout_objective=objective, max_steps=2)
        trainer = SRFTTrainer(model=m, reward_funcs=[contains_solution], args=args, train_dataset=ds,
                              processing_class=tok)  # fmt: skip
        inputs, out = _score_batch(trainer, [ds[0]], 4)
        if objective == "reinforce":
            assert out["rewards"].tolist() == [0.0] * 4  # a random model never writes the boxed answer
        trainer.train()
        moved[objective] = any(not torch.equal(p, base[n]) for n, p in params_of(m).items())
    assert moved == {"clipped": False, "reinforce": True}


def _prompt_ids(tok, row):
    return tok.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True)[
        "input_ids"
    ]


def test_truncate_keeps_a_cut_demo_and_mask_truncated_spares_it(tmp_path):
    tok, model = tiny_pair()
    rows = [{"prompt": [{"role": "user", "content": "1+2="}], "completion": "y" * 60, "solution": "3"}]
    args = config(tmp_path, demo_too_long="truncate", mask_truncated_completions=True, max_completion_length=24)
    trainer = SRFTTrainer(model=model, reward_funcs=[contains_solution], args=args,
                          train_dataset=Dataset.from_list(rows), processing_class=tok)  # fmt: skip
    _, out = _score_batch(trainer, rows, 4)
    assert out["is_demo"].tolist() == [False, False, False, True]
    assert out["completion_mask"][3].sum() == 24  # cut to max_completion_length, still trained on
    assert trainer._metrics["train"]["srft/demos_truncated"][-1] == 1
    assert out["num_items_in_batch"] == out["completion_mask"].sum()


def test_skipping_demo_generation_changes_nothing_but_the_generated_count(tmp_path):
    tok, model = tiny_pair()
    ds = make_dataset(2)
    outs = {}
    for skip in (True, False):
        args = config(tmp_path, generation_kwargs={"do_sample": False}, per_device_train_batch_size=8)
        trainer = SRFTTrainer(model=clone(model), reward_funcs=[length_reward], args=args, train_dataset=ds,
                              processing_class=tok)  # fmt: skip
        trainer.skip_demo_generation = skip
        _, outs[skip] = _score_batch(trainer, [ds[0], ds[1]], 4)
        outs[skip]["generated"] = trainer.num_generated_sequences
    assert outs[True]["generated"] == 6 and outs[False]["generated"] == 8
    for key in ("completion_ids", "completion_mask", "advantages", "is_demo"):
        torch.testing.assert_close(outs[True][key], outs[False][key])


def _demo_nll(model, tok, rows):
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for row in rows:
            prompt = _prompt_ids(tok, row)
            demo = tok(row["completion"], add_special_tokens=False).input_ids + [tok.eos_token_id]
            ids = torch.tensor([prompt + demo])
            logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1]
            total += torch.nn.functional.cross_entropy(logits, torch.tensor(demo), reduction="sum").item()
            count += len(demo)
    return total / count


@pytest.mark.parametrize("constant_sft_weight", [False, True], ids=["paper_weights", "without_w_sft"])
def test_srft_learns_from_demos_where_grpo_cannot(tmp_path, constant_sft_weight):
    """A random model never earns a reward: GRPO's update is exactly zero, SRFT's is not.

    With the paper's weights a random model's entropy (~4.5 nats) makes w_SFT = 0.5 * exp(-H) ~ 0.005: the SFT pull
    is then smaller than the run-to-run noise of the rollouts' negative-advantage pushes (which on their own raise the
    demos' NLL), so only the logged weights are checked. The paper's "w/o w_SFT" ablation (constant weight 1) makes
    the demos' NLL fall outright.
    """
    tok, model = tiny_pair()
    ds = make_dataset(4)
    nll_before = _demo_nll(model, tok, ds)
    base = params_of(model)

    grpo_model = clone(model)
    grpo_args = config(tmp_path / "g", cls=GRPOConfig, max_steps=3)
    GRPOTrainer(model=grpo_model, reward_funcs=[contains_solution], args=grpo_args, train_dataset=ds,
                processing_class=tok).train()  # fmt: skip
    assert all(torch.equal(p, base[n]) for n, p in params_of(grpo_model).items())

    srft_model = clone(model)
    extra = dict(sft_entropy_weighting=False, sft_coef=1.0) if constant_sft_weight else {}
    args = config(tmp_path / "s", max_steps=30, learning_rate=0.01, lr_scheduler_type="constant", **extra)
    trainer = SRFTTrainer(model=srft_model, reward_funcs=[contains_solution], args=args, train_dataset=ds,
                          processing_class=tok)  # fmt: skip
    trainer.train()
    assert any(not torch.equal(p, base[n]) for n, p in params_of(srft_model).items())
    if constant_sft_weight:
        nll_after = _demo_nll(srft_model, tok, ds)
        assert nll_after < 0.8 * nll_before, (nll_before, nll_after)
    logged = [h for h in trainer.state.log_history if "srft/w_sft" in h]
    for h in logged:
        w_sft = 1.0 if constant_sft_weight else 0.5 * math.exp(-h["srft/entropy"])
        assert h["srft/w_sft"] == pytest.approx(w_sft, rel=1e-4)
        assert h["srft/w_rl"] == pytest.approx(0.1 * math.exp(h["srft/entropy"]), rel=1e-4)
    if constant_sft_weight:
        assert logged[-1]["srft/sft_nll"] < logged[0]["srft/sft_nll"]


@pytest.mark.parametrize(
    "overrides",
    [
        dict(gradient_accumulation_steps=2, per_device_train_batch_size=4),
        dict(steps_per_generation=2, per_device_train_batch_size=2, num_generations=4),  # old log-probs path
        dict(num_iterations=2),
        dict(beta=0.1, top_entropy_quantile=0.5, entropy_source="rollouts"),
        dict(loss_type="grpo", entropy_source="demos", demo_rl=False),
        dict(
            sft_weight_sign="code",
            entropy_granularity="token",
            demo_policy_shaping=0.1,
            scale_rewards="none",
            loss_type="dr_grpo",
            entropy_coef=0.001,
            steps_per_generation=2,
        ),  # fmt: skip
        dict(
            entropy_granularity="sequence",
            group_stats_from="rollouts",
            rollout_objective="reinforce",
            steps_per_generation=2,
        ),
    ],
    ids=[
        "grad_accum",
        "steps_per_generation",
        "num_iterations",
        "kl_entropy_mask",
        "grpo_no_demo_rl",
        "released_code",
        "sequence_split_reinforce",
    ],  # fmt: skip
)
def test_training_options_run_and_stay_finite(tmp_path, overrides):
    tok, model = tiny_pair()
    if overrides.get("beta"):  # the reference model is re-loaded from the model's path
        model.save_pretrained(tmp_path / "base")
        tok.save_pretrained(tmp_path / "base")
        model = str(tmp_path / "base")
    args = config(tmp_path / "out", max_steps=2, **overrides)
    trainer = SRFTTrainer(model=model, reward_funcs=[contains_solution, length_reward], args=args,
                          train_dataset=make_dataset(), processing_class=tok)  # fmt: skip
    before = params_of(trainer.model)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses and all(math.isfinite(v) for v in losses)
    assert any(not torch.equal(p, before[n]) for n, p in params_of(trainer.model).items())


def test_lora_peft_config(tmp_path):
    from peft import LoraConfig

    tok, model = tiny_pair()
    args = config(tmp_path, max_steps=2)
    peft_config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = SRFTTrainer(model=model, reward_funcs=[contains_solution], args=args, train_dataset=make_dataset(),
                          processing_class=tok, peft_config=peft_config)  # fmt: skip
    lora_before = {n: p.clone() for n, p in trainer.model.named_parameters() if "lora_B" in n}
    trainer.train()
    assert lora_before
    assert any(not torch.equal(p, lora_before[n]) for n, p in trainer.model.named_parameters() if n in lora_before)


def test_model_card_names_srft(tmp_path):
    tok, model = tiny_pair()
    trainer = SRFTTrainer(model=model, reward_funcs=[contains_solution], args=config(tmp_path),
                          train_dataset=make_dataset(), processing_class=tok)  # fmt: skip
    trainer.create_model_card()
    card = (tmp_path / "README.md").read_text()
    assert "srft" in card and "2506.19767" in card


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(num_demos_per_group=4), "a group of only demonstrations has no on-policy rollout"),
        (dict(num_demos_per_group=3, group_stats_from="rollouts"), "the std of 1 rollout is undefined"),
        (dict(num_demos_per_group=-1), "num_demos_per_group"),
        (dict(w_rl_max=0.0), "`w_rl_max` must be a positive cap"),
        (dict(rollout_objective="reinforce", loss_type="cispo"), "only the aggregations"),
        (dict(rollout_objective="reinforce", delta=2.0), "has no ratio"),
        (dict(rollout_objective="reinforce", importance_sampling_level="sequence"), "has no ratio"),
        (dict(rollout_objective="reinforce", off_policy_mask_threshold=0.5), "has no ratio"),
        (dict(rollout_objective="reinforce", use_adaptive_entropy=True), "use_adaptive_entropy"),
        (dict(rollout_objective="reinforce", entropy_coef=0.01, top_entropy_quantile=0.5), "top_entropy_quantile"),
        (dict(sft_weight_sign="plus"), r"`sft_weight_sign` must be one of \('paper', 'code'\), got 'plus'"),
        (
            dict(entropy_granularity="row"),
            r"`entropy_granularity` must be one of \('micro_batch', 'sequence', 'token'\), got 'row'",
        ),
        (dict(group_stats_from="demos"), r"`group_stats_from` must be one of \('all', 'rollouts'\), got 'demos'"),
        (dict(rollout_objective="ppo"), r"`rollout_objective` must be one of \('clipped', 'reinforce'\), got 'ppo'"),
        (dict(demo_policy_shaping=0.0), "`demo_policy_shaping` must be a positive gamma"),
        (dict(demo_policy_shaping=-0.1), "`demo_policy_shaping` must be a positive gamma"),
        (dict(entropy_granularity="token", entropy_source="rollouts"), "needs `entropy_granularity='micro_batch'`"),
        (
            dict(group_stats_from="rollouts", multi_objective_aggregation="normalize_then_sum"),
            "multi_objective_aggregation='sum_then_normalize'",
        ),
        (dict(remove_unused_columns=True), "remove_unused_columns"),
        (dict(entropy_source="tokens"), "entropy_source"),
        (dict(demo_too_long="skip"), "demo_too_long"),
        (dict(reward_timeout=0), "reward_timeout"),
        (dict(num_generations=6, per_device_train_batch_size=4), r"divisible by num_generations \(6\)"),
    ],
)
def test_config_errors(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        config(tmp_path, **overrides)


def test_groups_must_not_straddle_processes(tmp_path, monkeypatch):
    # 2 processes x 2 rows: TRL accepts the global batch of 4 = num_generations, but a group would span processes.
    monkeypatch.setattr(SRFTConfig, "world_size", property(lambda self: 2))
    with pytest.raises(ValueError, match="divisible by `num_generations`"):
        config(tmp_path, per_device_train_batch_size=2)


def test_trainer_errors(tmp_path):
    tok, model = tiny_pair()
    with pytest.raises(ValueError, match="no demonstration column `target`"):
        SRFTTrainer(model=model, reward_funcs=[contains_solution], args=config(tmp_path, demo_column="target"),
                    train_dataset=make_dataset(), processing_class=tok)  # fmt: skip
    with pytest.raises(TypeError, match="SRFTConfig"):
        SRFTTrainer(model=model, reward_funcs=[contains_solution], args=GRPOConfig(str(tmp_path), use_cpu=True),
                    train_dataset=make_dataset(), processing_class=tok)  # fmt: skip
    with pytest.raises(ValueError, match="`tools`"):
        SRFTTrainer(model=model, reward_funcs=[contains_solution], args=config(tmp_path),
                    train_dataset=make_dataset(), processing_class=tok, tools=[len])  # fmt: skip
    bad = Dataset.from_list([{"prompt": [{"role": "user", "content": "1+1="}], "completion": 7, "solution": "2"}])
    trainer = SRFTTrainer(model=model, reward_funcs=[contains_solution], args=config(tmp_path), train_dataset=bad,
                          processing_class=tok)  # fmt: skip
    with pytest.raises(ValueError, match="Column `completion` holds a int"):
        _score_batch(trainer, [bad[0]], 4)


def test_overridden_trl_hooks_keep_their_signatures():
    """Fails loudly when a TRL upgrade changes a private hook SRFTTrainer overrides or calls."""
    expected = {
        "_generate_single_turn": "(self, prompt_ids, images, multimodal_fields, num_generations, "
        "has_tool_images=False)",
        "_generate_and_score_completions": "(self, inputs: list[dict[str, torch.Tensor | typing.Any]]) -> "
        "dict[str, torch.Tensor | typing.Any]",
        "_calculate_rewards": "(self, inputs, prompts, completions, completion_ids_list)",
        "_compute_loss": "(self, model, inputs)",
        "_tokenize_prompts": "(self, prompts: list)",
        "get_high_entropy_mask": "(self, entropies: torch.Tensor, mask: torch.Tensor, threshold: float) -> "
        "torch.Tensor",
    }
    for name, signature in expected.items():
        assert str(inspect.signature(getattr(GRPOTrainer, name))) == signature, name
    logps_sig = inspect.signature(GRPOTrainer._get_per_token_logps_and_entropies)
    assert list(logps_sig.parameters)[:7] == [
        "self", "model", "input_ids", "attention_mask", "logits_to_keep", "batch_size", "compute_entropy",
    ]  # fmt: skip
    assert "compute_aux_loss" in logps_sig.parameters
    assert SRFTConfig.__mro__[1] is GRPOConfig


@pytest.mark.parametrize("where", ["logps", "entropies", "old_logps"])
def test_non_finite_values_stop_the_run_before_an_update(tmp_path, where):
    tok, model = tiny_pair()
    args = config(tmp_path, steps_per_generation=2, per_device_train_batch_size=2, num_generations=4)
    trainer = SRFTTrainer(model=model, reward_funcs=[contains_solution], args=args, train_dataset=make_dataset(),
                          processing_class=tok)  # fmt: skip
    original = trainer._get_per_token_logps_and_entropies

    def poisoned(*a, **k):
        logps, entropies, aux = original(*a, **k)
        if where == "logps" and torch.is_grad_enabled():
            logps = logps + float("nan")
        if where == "entropies" and entropies is not None:
            entropies = entropies + float("inf")
        if where == "old_logps" and not torch.is_grad_enabled():  # the no-grad pass that makes old log-probs
            logps = logps + float("nan")
        return logps, entropies, aux

    trainer._get_per_token_logps_and_entropies = poisoned
    before = params_of(trainer.model)
    with pytest.raises(FloatingPointError, match="non-finite"):
        trainer.train()
    assert all(torch.equal(p, before[n]) for n, p in params_of(trainer.model).items())
