"""`rollout_group_advantages` (LUFFY's grpo_split) against a loop over groups, and its corner cases."""

import math
import statistics

import pytest
import torch

from srft_trainer.advantages import rollout_group_advantages


def slow_advantages(rewards, is_demo, G, scale):
    """Group by group, in plain Python: baseline and std from the scorable rollouts; std 0 or undefined -> 1."""
    rewards, is_demo = rewards.tolist(), is_demo.tolist()
    all_rollouts = [r for r, d in zip(rewards, is_demo) if not d and not math.isnan(r)]
    out = []
    for start in range(0, len(rewards), G):
        group = list(zip(rewards[start : start + G], is_demo[start : start + G]))
        rollouts = [r for r, d in group if not d and not math.isnan(r)]
        mean = statistics.mean(rollouts) if rollouts else float("nan")
        pool = rollouts if scale == "group" else all_rollouts
        std = statistics.stdev(pool) if len(pool) > 1 else 0.0
        std = 1.0 if std == 0 else std
        for r, _ in group:
            a = r - mean
            if scale != "none":
                a = a / (std + 1e-4)
            out.append(0.0 if math.isnan(a) else a)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_matches_a_loop_over_groups(scale):
    g = torch.Generator().manual_seed(0)
    rewards = torch.randint(0, 3, (24,), generator=g).double() / 2
    rewards[5] = float("nan")  # an unscorable rollout
    rewards[8:12] = torch.tensor([1.0, 1.0, 1.0, 0.0])  # equal rollouts: std 0 -> 1
    is_demo = torch.zeros(24, dtype=torch.bool)
    is_demo[3::4] = True
    is_demo[10] = True  # two demos in one group
    ours = rollout_group_advantages(rewards, is_demo, 4, scale)
    # TRL's nanstd (reused, as TRL's own advantages use it) applies Bessel's correction n / (n - 1) in float32.
    torch.testing.assert_close(ours, slow_advantages(rewards, is_demo, 4, scale), rtol=1e-7, atol=1e-7)
    assert ours[5] == 0.0


def test_correct_demo_next_to_wrong_rollouts_gets_about_one():
    rewards = torch.tensor([0.0, 0.0, 0.0, 1.0])
    is_demo = torch.tensor([False, False, False, True])
    adv = rollout_group_advantages(rewards, is_demo, 4)
    assert adv[:3].tolist() == [0.0, 0.0, 0.0]
    assert adv[3].item() == pytest.approx(1 / (1 + 1e-4))


def test_without_demos_it_is_trls_group_normalisation():
    g = torch.Generator().manual_seed(1)
    rewards = torch.rand(16, generator=g)
    grouped = rewards.view(4, 4)
    trl_like = (grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-4)
    ours = rollout_group_advantages(rewards, torch.zeros(16, dtype=torch.bool), 4)
    torch.testing.assert_close(ours, trl_like.view(-1))


def test_errors():
    with pytest.raises(ValueError, match="whole groups of 4"):
        rollout_group_advantages(torch.zeros(6), torch.zeros(6, dtype=torch.bool), 4)
    with pytest.raises(ValueError, match="`scale_rewards`"):
        rollout_group_advantages(torch.zeros(4), torch.zeros(4, dtype=torch.bool), 4, "median")
