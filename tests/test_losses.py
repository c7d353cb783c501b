"""Tests of `srft_loss` against a slow loop implementation, hand-worked numbers and TRL's own GRPO loss."""

import itertools
import math

import pytest
import torch
from loss_reference import BATCH_KINDS, make_batch, slow_srft_loss, trl_grpo_loss

from srft_trainer.losses import SUPPORTED_LOSS_TYPES, srft_loss


TOGGLES = list(itertools.product([True, False], repeat=3))  # sft_w, rl_w, demo_rl


@pytest.mark.parametrize("loss_type", SUPPORTED_LOSS_TYPES)
@pytest.mark.parametrize("batch_kind", list(BATCH_KINDS))
@pytest.mark.parametrize("toggles", TOGGLES)
@pytest.mark.parametrize("with_old", [True, False])
def test_matches_slow_reference_values_and_gradients(loss_type, batch_kind, toggles, with_old):
    sft_w, rl_w, demo_rl = toggles
    logps, old, adv, mask, is_demo = make_batch(7, demo_rows=BATCH_KINDS[batch_kind], with_old=with_old)
    kwargs = dict(
        loss_type=loss_type,
        sft_entropy_weighting=sft_w,
        rl_entropy_weighting=rl_w,
        demo_rl=demo_rl,
        epsilon_low=0.2,
        epsilon_high=0.28,
        max_completion_length=6,
        num_items_in_batch=17.0,
    )
    H = torch.tensor(0.7, dtype=torch.float64)
    loss, metrics = srft_loss(logps, old, adv, mask, is_demo, H, **kwargs)
    expected = slow_srft_loss(
        logps,
        old,
        adv,
        mask,
        is_demo,
        H,
        loss_type=loss_type,
        eps_high=0.28,
        sft_w=sft_w,
        rl_w=rl_w,
        demo_rl=demo_rl,
        max_len=6,
        num_items=17.0,
    )
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    (g_fast,) = torch.autograd.grad(loss, logps)
    (g_slow,) = torch.autograd.grad(expected, logps)
    torch.testing.assert_close(g_fast, g_slow, rtol=1e-10, atol=1e-12)
    assert g_fast.abs().sum() > 0
    # Padding never receives gradient.
    assert torch.all(g_fast[mask == 0] == 0)
    assert set(metrics) >= {"w_sft", "w_rl", "sft_nll", "pg_loss"}
    assert all(not m.requires_grad for m in metrics.values())


@pytest.mark.parametrize("loss_type", SUPPORTED_LOSS_TYPES)
def test_advantage_signs_and_zero(loss_type):
    """Positive, negative and zero advantages on rollouts and demos, with dapo's default denominator."""
    logps, old, adv, mask, is_demo = make_batch(3, B=6, demo_rows=(4, 5), adv_values=[1.5, -0.7, 0.0, 2.0, -1.0, 0.5])
    loss, _ = srft_loss(logps, old, adv, mask, is_demo, 1.3, loss_type=loss_type, max_completion_length=6)
    expected = slow_srft_loss(logps, old, adv, mask, is_demo, 1.3, loss_type=loss_type, max_len=6)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    (g1,) = torch.autograd.grad(loss, logps)
    (g2,) = torch.autograd.grad(expected, logps)
    torch.testing.assert_close(g1, g2, rtol=1e-10, atol=1e-12)


def test_hand_worked_example():
    # Row 0: rollout, A=+1, every token prob 0.5, old = None (ratio 1), mask [1, 1, 0].
    # Row 1: demo, A=-1, token probs (0.5, 0.25, 1.0), mask [1, 1, 1].  H = ln 2.
    #   w_rl  = 0.1 * exp(ln 2)  = 0.2;   w_sft = 0.5 * exp(-ln 2) = 0.25
    #   row 0 per token: -min(1 * 1, clip(1) * 1) * w_rl = -0.2, two tokens      -> sum -0.4
    #   row 1 per token: -A * p = p = 0.5, 0.25, 1.0                             -> sum  1.75
    #   bnpo, each term its own token mean: rollouts -0.4 / 2 = -0.2, demos 1.75 / 3 = 0.5833333
    #   sft_nll = -(ln 0.5 + ln 0.25 + ln 1) / 3 = 3 ln 2 / 3 = ln 2 = 0.6931472
    #   sft = 0.25 * 0.6931472 = 0.1732868;  total = -0.2 + 0.5833333 + 0.1732868 = 0.5566201
    #   dapo with num_items_in_batch=10: 1.35 / 10 + 0.1732868 = 0.3082868
    #   grpo: mean(-0.4 / 2, 1.75 / 3) = mean(-0.2, 0.5833333) = 0.1916667 -> 0.3649535
    logps = torch.log(torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.25, 1.0]], dtype=torch.float64))
    args = (None, torch.tensor([1.0, -1.0]), torch.tensor([[1, 1, 0], [1, 1, 1]]), torch.tensor([False, True]))
    H = math.log(2.0)
    loss, m = srft_loss(logps, *args, H, loss_type="bnpo")
    assert loss.item() == pytest.approx(0.5566201, abs=1e-7)
    assert m["w_rl"].item() == pytest.approx(0.2)
    assert m["w_sft"].item() == pytest.approx(0.25)
    assert m["sft_nll"].item() == pytest.approx(0.6931472, abs=1e-7)
    assert m["pg_loss"].item() == pytest.approx(-0.2)
    assert m["demo_pg_loss"].item() == pytest.approx(1.75 / 3)
    assert srft_loss(logps, *args, H, loss_type="dapo", num_items_in_batch=10)[0].item() == pytest.approx(
        0.3082868, abs=1e-7
    )
    assert srft_loss(logps, *args, H, loss_type="grpo")[0].item() == pytest.approx(0.3649535, abs=1e-7)


def test_entropy_carries_no_gradient_and_weights_move_as_documented():
    logps, old, adv, mask, is_demo = make_batch(11)
    H = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    loss, _ = srft_loss(logps, old, adv, mask, is_demo, H)
    loss.backward()
    assert H.grad is None
    weights = [srft_loss(logps, old, adv, mask, is_demo, h)[1] for h in (0.0, 0.5, 2.0)]
    w_sft = [w["w_sft"].item() for w in weights]
    w_rl = [w["w_rl"].item() for w in weights]
    assert w_sft[0] == pytest.approx(0.5) and w_rl[0] == pytest.approx(0.1)
    assert w_sft[0] > w_sft[1] > w_sft[2]  # more entropy -> less SFT
    assert w_rl[0] < w_rl[1] < w_rl[2]  # more entropy -> more weight on positive rollouts
    # Turning the weighting off gives the constant coefficients whatever H is.
    m = srft_loss(logps, old, adv, mask, is_demo, 2.0, sft_entropy_weighting=False, rl_entropy_weighting=False)[1]
    assert m["w_sft"].item() == 0.5 and m["w_rl"].item() == pytest.approx(0.1)


def test_nan_old_logps_of_demo_rows_are_ignored():
    logps, old, adv, mask, is_demo = make_batch(5)
    clean, _ = srft_loss(logps, old, adv, mask, is_demo, 0.3)
    old = old.clone()
    old[is_demo] = float("nan")
    dirty, _ = srft_loss(logps, old, adv, mask, is_demo, 0.3)
    torch.testing.assert_close(clean, dirty)
    (g,) = torch.autograd.grad(dirty, logps)
    assert torch.isfinite(g).all()


def test_no_pg_rows_gives_only_sft():
    logps, old, adv, mask, is_demo = make_batch(2, demo_rows=(0, 1, 2, 3, 4))
    loss, m = srft_loss(logps, old, adv, mask, is_demo, 0.0, demo_rl=False, loss_type="grpo")
    assert m["pg_loss"].item() == 0.0
    torch.testing.assert_close(loss, 0.5 * m["sft_nll"])


def test_errors_name_the_problem():
    logps, old, adv, mask, is_demo = make_batch(1)
    with pytest.raises(ValueError, match="grpo, bnpo, dr_grpo, dapo"):
        srft_loss(logps, old, adv, mask, is_demo, 0.1, loss_type="cispo")
    with pytest.raises(ValueError, match="max_completion_length"):
        srft_loss(logps, old, adv, mask, is_demo, 0.1, loss_type="dr_grpo")
    with pytest.raises(ValueError, match="`completion_mask`"):
        srft_loss(logps, old, adv, mask[:, :-1], is_demo, 0.1)
    with pytest.raises(ValueError, match="`advantages`"):
        srft_loss(logps, old, adv[:-1], mask, is_demo, 0.1)
    with pytest.raises(ValueError, match="`old_per_token_logps`"):
        srft_loss(logps, old[:, 1:], adv, mask, is_demo, 0.1)
    with pytest.raises(ValueError, match="`is_demo`"):
        srft_loss(logps, old, adv, mask, is_demo[:2], 0.1)
    with pytest.raises(ValueError, match="scalar"):
        srft_loss(logps, old, adv, mask, is_demo, torch.ones(2))


@pytest.mark.parametrize("loss_type", SUPPORTED_LOSS_TYPES)
@pytest.mark.parametrize("with_old", [True, False])
def test_plain_grpo_settings_equal_trl(loss_type, with_old):
    logps, old, adv, mask, is_demo = make_batch(13, demo_rows=(), with_old=with_old)
    ours, _ = srft_loss(
        logps,
        old,
        adv,
        mask,
        is_demo,
        0.9,
        loss_type=loss_type,
        rl_entropy_weighting=False,
        rl_pos_coef=1.0,
        epsilon_high=0.28,
        max_completion_length=6,
        num_items_in_batch=21.0,
    )
    theirs = trl_grpo_loss(loss_type, logps, old, adv, mask, 6, 21.0)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    (g1,) = torch.autograd.grad(ours, logps)
    (g2,) = torch.autograd.grad(theirs, logps)
    torch.testing.assert_close(g1, g2, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("loss_type", SUPPORTED_LOSS_TYPES)
@pytest.mark.parametrize("weight_shape", ["token", "sequence"])
def test_rollout_token_weights_and_penalty_touch_rollouts_only(loss_type, weight_shape):
    logps, old, adv, mask, is_demo = make_batch(17)
    g = torch.Generator().manual_seed(0)
    weights = torch.rand(5, 6 if weight_shape == "token" else 1, generator=g, dtype=torch.float64)
    penalty = 0.05 * logps.detach().exp() - logps  # depends on logps, like beta * KL
    kwargs = dict(loss_type=loss_type, max_completion_length=6)
    loss, _ = srft_loss(
        logps, old, adv, mask, is_demo, 0.4, rollout_token_weights=weights, rollout_token_penalty=penalty, **kwargs
    )
    expected = slow_srft_loss(
        logps, old, adv, mask, is_demo, 0.4, weights=weights, penalty=penalty, loss_type=loss_type, max_len=6
    )
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    (g1,) = torch.autograd.grad(loss, logps)
    (g2,) = torch.autograd.grad(expected, logps)
    torch.testing.assert_close(g1, g2, rtol=1e-10, atol=1e-12)
    # Demo rows are untouched by either.
    (g_plain,) = torch.autograd.grad(srft_loss(logps, old, adv, mask, is_demo, 0.4, **kwargs)[0], logps)
    torch.testing.assert_close(g1[is_demo], g_plain[is_demo])
    assert not torch.allclose(g1[~is_demo], g_plain[~is_demo])
