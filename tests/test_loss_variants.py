"""Tests of `srft_loss`'s released-code variants (issue 13) against the slow reference and TRL's GRPO loss."""

import math

import pytest
import torch
from loss_reference import BATCH_KINDS, make_batch, slow_srft_loss, trl_grpo_loss

from srft_trainer.losses import SUPPORTED_LOSS_TYPES, srft_loss


# --------------------------------------------------------------------------------- released-code variants (#13)
def variant_entropy(kind, B=5, T=6, seed=0):
    """`H` of each granularity: one scalar, one per row, one per token (values a real policy could have)."""
    g = torch.Generator().manual_seed(seed)
    if kind == "micro_batch":
        return torch.tensor(0.3, dtype=torch.float64)
    if kind == "sequence":
        return torch.rand(B, generator=g, dtype=torch.float64) * 2
    return torch.rand(B, T, generator=g, dtype=torch.float64) * 2


def variant_rewards(B=5):
    # Binary rewards, plus one unscorable (NaN) row, which must contribute nothing.
    return torch.tensor([1.0, 0.0, 1.0, float("nan"), 0.0][:B], dtype=torch.float64)


@pytest.mark.parametrize("loss_type", SUPPORTED_LOSS_TYPES)
@pytest.mark.parametrize("batch_kind", list(BATCH_KINDS))
@pytest.mark.parametrize("sign", ["paper", "code"])
@pytest.mark.parametrize("granularity", ["micro_batch", "sequence", "token"])
@pytest.mark.parametrize("gamma", [None, 0.1])
@pytest.mark.parametrize("objective", ["clipped", "reinforce"])
def test_variants_match_slow_reference_values_and_gradients(
    loss_type, batch_kind, sign, granularity, gamma, objective
):
    logps, old, adv, mask, is_demo = make_batch(23, demo_rows=BATCH_KINDS[batch_kind])
    H = variant_entropy(granularity)
    rewards = variant_rewards()
    loss, metrics = srft_loss(
        logps, old, adv, mask, is_demo, H, loss_type=loss_type, epsilon_high=0.28, max_completion_length=6,
        num_items_in_batch=19.0, sft_weight_sign=sign, demo_policy_shaping=gamma, rollout_objective=objective,
        rewards=rewards,
    )  # fmt: skip
    expected = slow_srft_loss(
        logps, old, adv, mask, is_demo, H, loss_type=loss_type, eps_high=0.28, max_len=6, num_items=19.0, sign=sign,
        gamma=gamma, objective=objective, rewards=rewards,
    )  # fmt: skip
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    (g_fast,) = torch.autograd.grad(loss, logps)
    (g_slow,) = torch.autograd.grad(expected, logps)
    torch.testing.assert_close(g_fast, g_slow, rtol=1e-10, atol=1e-12)
    assert torch.isfinite(loss) and torch.isfinite(g_fast).all()
    assert g_fast.abs().sum() > 0
    assert torch.all(g_fast[mask == 0] == 0)
    if objective == "reinforce" and batch_kind == "no_demo":  # the unscorable row (index 3) gets no gradient
        assert torch.all(g_fast[3] == 0)
    assert all(torch.isfinite(m) and not m.requires_grad for m in metrics.values())


@pytest.mark.parametrize("loss_type", SUPPORTED_LOSS_TYPES)
@pytest.mark.parametrize("granularity", ["micro_batch", "token"])
def test_entropy_bonus_matches_slow_reference(loss_type, granularity):
    logps, old, adv, mask, is_demo = make_batch(29)
    g = torch.Generator().manual_seed(1)
    token_entropy = (torch.rand(5, 6, generator=g, dtype=torch.float64) * 2).requires_grad_(True)
    H = token_entropy.detach() if granularity == "token" else torch.tensor(0.4, dtype=torch.float64)
    kwargs = dict(loss_type=loss_type, max_completion_length=6)
    loss, _ = srft_loss(
        logps, old, adv, mask, is_demo, H, entropy_coef=0.01, per_token_entropy=token_entropy, **kwargs
    )
    expected = slow_srft_loss(
        logps,
        old,
        adv,
        mask,
        is_demo,
        H,
        loss_type=loss_type,
        max_len=6,
        entropy_coef=0.01,
        token_entropy=token_entropy,
    )
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    g_fast = torch.autograd.grad(loss, [logps, token_entropy])
    g_slow = torch.autograd.grad(expected, [logps, token_entropy])
    for a, b in zip(g_fast, g_slow):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    # The bonus pulls every real rollout token's entropy up by the same amount (GRPO's bonus over the rows of its
    # loss), and never touches padding or demonstration tokens.
    real = mask.bool() & ~is_demo.unsqueeze(1)
    torch.testing.assert_close(g_fast[1][real], torch.full_like(g_fast[1][real], -0.01 / real.sum()))
    assert torch.all(g_fast[1][~real] == 0)


def test_variants_hand_worked_example():
    # The rows of test_hand_worked_example (rollout A=+1, p=0.5 x2; demo A=-1, p=(0.5, 0.25, 1.0)), bnpo, H = ln 2.
    logps = torch.log(torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.25, 1.0]], dtype=torch.float64))
    args = (None, torch.tensor([1.0, -1.0]), torch.tensor([[1, 1, 0], [1, 1, 1]]), torch.tensor([False, True]))
    H = math.log(2.0)
    # Released-code SFT weight: 0.5 * exp(+ln 2) = 1.0, so the SFT term is the plain NLL ln 2; pg as before:
    # bnpo takes each term's own token mean, rollouts -0.4 / 2 tokens and demos 1.75 / 3 tokens.
    pg = -0.4 / 2 + 1.75 / 3
    loss, m = srft_loss(logps, *args, H, loss_type="bnpo", sft_weight_sign="code")
    assert m["w_sft"].item() == pytest.approx(1.0)
    assert loss.item() == pytest.approx(pg + math.log(2.0), abs=1e-12)
    # Policy shaping, gamma 0.1: the demo's tokens give p / (p + 0.1) = 5/6, 5/7, 10/11 instead of p.
    #   pg = -0.4 / 2 + (5/6 + 5/7 + 10/11) / 3 tokens; SFT 0.25 ln 2 as before.
    loss, _ = srft_loss(logps, *args, H, loss_type="bnpo", demo_policy_shaping=0.1)
    assert loss.item() == pytest.approx(-0.2 + (5 / 6 + 5 / 7 + 10 / 11) / 3 + 0.25 * math.log(2.0), abs=1e-12)
    # REINFORCE (Eq. 12) with reward 1 on the rollout: w_rl * (-log 0.5) = 0.2 ln 2 per token, two tokens; with
    # reward 0: +log 0.5 = -ln 2 per token.
    base = 1.75 / 3 + 0.25 * math.log(2.0)  # the demo's pg (token mean) and the SFT term, unchanged
    for reward, per_token in ((1.0, 0.2 * math.log(2.0)), (0.0, -math.log(2.0))):
        rewards = torch.tensor([reward, 1.0])
        loss, _ = srft_loss(logps, *args, H, loss_type="bnpo", rollout_objective="reinforce", rewards=rewards)
        assert loss.item() == pytest.approx(base + 2 * per_token / 2, abs=1e-12)
    # Per-token entropy: the demo's three tokens with H = 0, ln 2, ln 4 get w_sft = 0.5, 0.25, 0.125 (paper sign).
    #   sft = (0.5 ln 2 + 0.25 ln 4 + 0.125 * 0) / 3 = ln 2 / 3; logged w_sft = mean over demo tokens = 0.875 / 3.
    H_tok = torch.tensor([[0.0, 0.0, 0.0], [0.0, math.log(2.0), math.log(4.0)]], dtype=torch.float64)
    loss, m = srft_loss(logps, *args, H_tok, loss_type="bnpo", rl_entropy_weighting=False, rl_pos_coef=1.0)
    assert m["w_sft"].item() == pytest.approx(0.875 / 3)
    assert m["sft_loss"].item() == pytest.approx(math.log(2.0) / 3, abs=1e-12)
    assert loss.item() == pytest.approx(-2.0 / 2 + 1.75 / 3 + math.log(2.0) / 3, abs=1e-12)


SIGNS = ("paper", "code")


def test_readme_weight_examples():
    """The README's table of differences quotes these weights at H = 0.3 nats; they come from `srft_loss` itself."""
    logps, old, adv, mask, is_demo = make_batch(3)
    paper = srft_loss(logps, old, adv, mask, is_demo, 0.3)[1]
    code = srft_loss(logps, old, adv, mask, is_demo, 0.3, sft_weight_sign="code")[1]
    assert f"{paper['w_sft'].item():.2f}" == "0.37" and f"{code['w_sft'].item():.2f}" == "0.67"
    assert f"{paper['w_rl'].item():.3f}" == f"{code['w_rl'].item():.3f}" == "0.135"
    for H, expected in ((0.0, ("0.500", "0.500")), (1.0, ("0.184", "1.359")), (2.0, ("0.068", "3.695"))):
        weights = [srft_loss(logps, old, adv, mask, is_demo, H, sft_weight_sign=s)[1]["w_sft"] for s in SIGNS]
        assert tuple(f"{w.item():.3f}" for w in weights) == expected, H
    # Advantages of a group of 7 wrong rollouts and 1 correct demonstration (Eq. 7 with and without the std, and
    # LUFFY's rollout-only statistics).
    from srft_trainer.advantages import rollout_group_advantages

    rewards, demo = torch.tensor([0.0] * 7 + [1.0]), torch.tensor([False] * 7 + [True])
    eq7 = (rewards - rewards.mean()) / (rewards.std() + 1e-4)
    assert (f"{eq7[-1].item():.2f}", f"{eq7[0].item():.2f}") == ("2.47", "-0.35")
    no_std = rewards - rewards.mean()
    assert (f"{no_std[-1].item():.3f}", f"{no_std[0].item():.3f}") == ("0.875", "-0.125")
    split = rollout_group_advantages(rewards, demo, 8)
    assert (f"{split[-1].item():.3f}", split[0].item()) == ("1.000", 0.0)
    # Policy shaping: the gradient of -A p / (p + 0.1) w.r.t. log p is A * 0.1 p / (p + 0.1)^2, against A * p plain.
    p = torch.tensor([0.01, 0.5, 0.9], dtype=torch.float64)
    lp = p.log().requires_grad_(True)
    (plain,) = torch.autograd.grad(lp.exp().sum(), lp)
    (shaped,) = torch.autograd.grad((lp.exp() / (lp.exp() + 0.1)).sum(), lp)
    assert [f"{x:.3f}" for x in plain.tolist()] == ["0.010", "0.500", "0.900"]
    assert [f"{x:.3f}" for x in shaped.tolist()] == ["0.083", "0.139", "0.090"]


VARIANTS = {
    "paper": {},
    "code_sign_token": {"sft_weight_sign": "code", "entropy": "token"},
    "sequence": {"entropy": "sequence"},
    "shaped": {"demo_policy_shaping": 0.1},
    "reinforce": {"rollout_objective": "reinforce"},
    "official": {"sft_weight_sign": "code", "entropy": "token", "demo_policy_shaping": 0.1, "entropy_coef": 0.001},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("loss_type", SUPPORTED_LOSS_TYPES)
@pytest.mark.parametrize("rows", ["only_demo", "no_demo", "all_padding", "demo_padding_only"])
def test_no_nan_without_demo_or_rollout_tokens(variant, loss_type, rows):
    """A micro-batch with no demo tokens, no rollout tokens, or no tokens at all gives a finite loss and gradient."""
    options = dict(VARIANTS[variant])
    kind = options.pop("entropy", "micro_batch")
    logps, old, adv, mask, is_demo = make_batch(31, demo_rows=BATCH_KINDS.get(rows, (1, 3)))
    if rows == "all_padding":
        mask = torch.zeros_like(mask)
    if rows == "demo_padding_only":  # demo rows present but every demo token is padding
        mask[is_demo] = 0
    entropies = variant_entropy("token").requires_grad_(True)
    H = entropies.detach() if kind == "token" else variant_entropy(kind)
    loss, metrics = srft_loss(
        logps, old, adv, mask, is_demo, H, loss_type=loss_type, max_completion_length=6, rewards=variant_rewards(),
        per_token_entropy=entropies, num_items_in_batch=mask.sum().item(), **options,
    )  # fmt: skip
    grads = torch.autograd.grad(loss, [logps, entropies], allow_unused=True)
    assert torch.isfinite(loss)
    assert all(g is None or torch.isfinite(g).all() for g in grads)
    assert all(torch.isfinite(m) for m in metrics.values()), metrics
    if rows == "all_padding":
        assert loss.item() == 0.0


def test_variant_errors_name_the_option():
    logps, old, adv, mask, is_demo = make_batch(1)
    with pytest.raises(ValueError, match=r"`sft_weight_sign` must be one of \('paper', 'code'\)"):
        srft_loss(logps, old, adv, mask, is_demo, 0.1, sft_weight_sign="plus")
    with pytest.raises(ValueError, match=r"`rollout_objective` must be one of \('clipped', 'reinforce'\)"):
        srft_loss(logps, old, adv, mask, is_demo, 0.1, rollout_objective="ppo")
    with pytest.raises(ValueError, match="`demo_policy_shaping` must be a positive gamma"):
        srft_loss(logps, old, adv, mask, is_demo, 0.1, demo_policy_shaping=0.0)
    with pytest.raises(ValueError, match="needs each row's `rewards`"):
        srft_loss(logps, old, adv, mask, is_demo, 0.1, rollout_objective="reinforce")
    with pytest.raises(ValueError, match="`per_token_entropy`"):
        srft_loss(logps, old, adv, mask, is_demo, 0.1, entropy_coef=0.01)
    with pytest.raises(ValueError, match="`rewards` has shape"):
        srft_loss(logps, old, adv, mask, is_demo, 0.1, rollout_objective="reinforce", rewards=torch.ones(2))
    with pytest.raises(ValueError, match=r"`entropy` must be a scalar, of shape \(5,\) or of shape \(5, 6\)"):
        srft_loss(logps, old, adv, mask, is_demo, torch.ones(2))


@pytest.mark.parametrize("loss_type", SUPPORTED_LOSS_TYPES)
@pytest.mark.parametrize(
    "options",
    [
        {"sft_weight_sign": "code"},
        {"entropy": "token"},
        {"entropy": "sequence"},
        {"demo_policy_shaping": 0.1},
        {"entropy_coef": 0.01},
        {"sft_weight_sign": "code", "entropy": "token", "demo_policy_shaping": 0.1, "entropy_coef": 0.001},
    ],
    ids=["code_sign", "token_entropy", "sequence_entropy", "shaping", "entropy_bonus", "official"],
)
def test_variants_without_demos_equal_trl(loss_type, options):
    """The released-code options that act on demos only (or that TRL has, the entropy bonus) keep the GRPO equality."""
    options = dict(options)
    kind = options.pop("entropy", "micro_batch")
    logps, old, adv, mask, is_demo = make_batch(37, demo_rows=())
    entropies = variant_entropy("token").requires_grad_(True)
    H = entropies.detach() if kind == "token" else variant_entropy(kind)
    ours, _ = srft_loss(
        logps, old, adv, mask, is_demo, H, loss_type=loss_type, rl_entropy_weighting=False, rl_pos_coef=1.0,
        epsilon_high=0.28, max_completion_length=6, num_items_in_batch=21.0, per_token_entropy=entropies, **options,
    )  # fmt: skip
    theirs = trl_grpo_loss(
        loss_type, logps, old, adv, mask, 6, 21.0, entropy_coef=options.get("entropy_coef", 0.0), entropies=entropies
    )
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    grads = [torch.autograd.grad(x, [logps, entropies], allow_unused=True) for x in (ours, theirs)]
    for a, b in zip(*grads):
        zero = torch.zeros_like(logps)
        torch.testing.assert_close(zero if a is None else a, zero if b is None else b, rtol=1e-10, atol=1e-12)
