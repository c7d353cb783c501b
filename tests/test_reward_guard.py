"""Faulty reward functions become counted, unscorable rows instead of a dead or stalled run."""

import math
import threading
import time

import pytest
from trainer_utils import config, make_dataset, tiny_pair

from srft_trainer import SRFTTrainer
from srft_trainer.reward_guard import GuardedReward, guard_reward_funcs


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
    assert guard.failures["exception"] == 2
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
