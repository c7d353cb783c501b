"""Faulty reward functions become counted, unscorable rows instead of a dead or stalled run."""

import math
import threading
import time

import pytest
import torch
from trainer_utils import config, make_dataset, none_reward, raising_reward, tiny_pair

from srft_trainer import SRFTTrainer, cli
from srft_trainer.reward_guard import GuardedReward, RewardSignalLost, RewardSignalWatch, guard_reward_funcs


def call(guard, completions):
    return guard(prompts=["p"] * len(completions), completions=completions, completion_ids=[[1]] * len(completions))


def test_a_raising_row_is_isolated_and_counted(caplog):
    def reward(completions, **kwargs):
        if "boom" in completions:
            raise RuntimeError("pathological input")
        return [float(len(c)) for c in completions]

    guard = GuardedReward(reward)
    assert call(guard, ["a", "boom", "abc"]) == [1.0, None, 3.0]
    assert call(guard, ["boom"]) == [None]
    assert dict(guard.failures) == {"exception": 2}  # once per row, not again as a None
    assert "pathological input" in guard.last_failure
    assert guard.__name__ == "reward"  # TRL names metrics after it
    warnings = [r for r in caplog.records if "pathological input" in r.getMessage()]
    assert len(warnings) == 1  # warned once, with the example
    assert "boom" in warnings[0].getMessage()


@pytest.mark.parametrize("bad, kind", [(None, "none"), (float("nan"), "nan"), ("high", "not_a_number")])
def test_none_nan_and_garbage_become_unscorable(bad, kind):
    guard = GuardedReward(lambda completions, **kw: [1.0, bad, 0])
    assert call(guard, ["a", "b", "c"]) == [1.0, None, 0.0]
    assert guard.failures == {kind: 1}


def test_a_hanging_reward_is_abandoned_after_the_timeout():
    release = threading.Event()

    def reward(completions, **kwargs):
        if "hang" in completions:
            release.wait(30)
        return [1.0] * len(completions)

    guard = GuardedReward(reward, timeout=0.5)
    start = time.monotonic()
    assert call(guard, ["x", "hang"]) == [None, None]
    assert time.monotonic() - start < 5
    assert guard.failures["timeout"] == 2
    assert call(guard, ["x"]) == [1.0]  # the next call gets a fresh worker
    release.set()


def test_wrong_number_of_rewards_is_a_bug_and_raises():
    guard = GuardedReward(lambda completions, **kw: [1.0])
    with pytest.raises(ValueError, match="returned 1 rewards for 2"):
        call(guard, ["a", "b"])


def test_models_and_async_functions_are_not_wrapped():
    async def async_reward(completions, **kwargs):
        return [1.0]

    def plain(completions, **kwargs):
        return [1.0]

    wrapped = guard_reward_funcs(["some/reward-model", async_reward, plain], timeout=None)
    assert wrapped[0] == "some/reward-model" and wrapped[1] is async_reward
    assert isinstance(wrapped[2], GuardedReward)


def test_training_survives_a_faulty_reward_and_counts_it(tmp_path):
    def flaky(completions, solution, **kwargs):
        out = []
        for c in completions:
            text = c[0]["content"]
            if "boxed" in text:
                raise ValueError("cannot parse")  # the demo rows
            out.append(math.nan if len(text) % 2 else 0.5)
        return out

    tok, model = tiny_pair()
    trainer = SRFTTrainer(model=model, reward_funcs=[flaky], args=config(tmp_path, max_steps=2),
                          train_dataset=make_dataset(), processing_class=tok)  # fmt: skip
    trainer.train()
    logged = [h["srft/reward_failures"] for h in trainer.state.log_history if "srft/reward_failures" in h]
    assert logged and sum(logged) > 0
    assert all(math.isfinite(h["loss"]) for h in trainer.state.log_history if "loss" in h)


def test_signal_watch_by_hand(caplog):
    nan = float("nan")
    is_rollout = torch.tensor([True, True, False])  # two rollouts and a demonstration
    unscorable = torch.tensor([[nan, nan], [nan, nan], [1.0, 1.0]])  # the demonstration scored, no rollout did
    one_scored = torch.tensor([[nan, 0.0], [nan, nan], [1.0, 1.0]])  # one reward function scored one rollout
    failing = GuardedReward(raising_reward)
    failing.last_failure = "raised KeyError: 'solution' on completion 'x'"
    watch = RewardSignalWatch(limit=2)
    watch.update(unscorable, is_rollout, ["a", "b"], [failing, none_reward], step=7)
    assert watch.consecutive == 1
    assert (
        "Step 7: none of the 2 rollouts could be scored" in caplog.text and "unscorable step 1 in a row" in caplog.text
    )
    watch.update(one_scored, is_rollout, ["a", "b"], [failing, none_reward], step=8)
    assert watch.consecutive == 0  # one scorable rollout is signal
    watch.update(unscorable, is_rollout, ["a", "b"], [failing, none_reward], step=9)
    with pytest.raises(RewardSignalLost, match=r"2 consecutive steps \(up to step 10\): `a`: raised KeyError.*"
                       r"`b`: returned None for every rollout"):  # fmt: skip
        watch.update(unscorable, is_rollout, ["a", "b"], [failing, none_reward], step=10)
    never = RewardSignalWatch(limit=0)
    for step in range(5):
        never.update(unscorable, is_rollout, ["a", "b"], [failing, none_reward], step=step)
    assert never.consecutive == 5


@pytest.mark.parametrize("reward", [raising_reward, none_reward])
def test_a_run_that_cannot_score_any_rollout_stops(tmp_path, reward):
    tok, model = tiny_pair()
    args = config(tmp_path, max_steps=20, max_unscorable_steps=2)
    trainer = SRFTTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=make_dataset(),
                          processing_class=tok)  # fmt: skip
    with pytest.raises(RewardSignalLost, match=f"2 consecutive steps.*`{reward.__name__}`"):
        trainer.train()
    assert trainer.state.global_step == 1  # stopped at the second generation, not after 20 steps of SFT alone


def test_the_grpo_baseline_stops_too(tmp_path):
    import yaml
    from tiny import tiny_model, tiny_tokenizer

    tok = tiny_tokenizer()
    tiny_model(tok).save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    make_dataset().to_json(tmp_path / "train.jsonl")
    recipe = dict(trainer="grpo", model_name_or_path=str(tmp_path / "model"),
                  dataset_name=str(tmp_path / "train.jsonl"), output_dir=str(tmp_path / "out"),
                  reward_funcs=["trainer_utils.none_reward"], use_cpu=True, bf16=False, per_device_train_batch_size=4,
                  num_generations=4, max_completion_length=16, max_steps=20,
                  report_to="none", save_strategy="no", gradient_checkpointing=False, plot_curves=False)  # fmt: skip
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.raises(RewardSignalLost, match="3 consecutive steps.*`none_reward`"):
        cli.main(["train", "--config", str(tmp_path / "r.yaml")])
