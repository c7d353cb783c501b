"""Tests of `srft_loss` against a slow loop implementation, hand-worked numbers and TRL's own GRPO loss."""

import itertools
import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from srft_trainer.losses import SUPPORTED_LOSS_TYPES, srft_loss


def slow_srft_loss(
    logps,
    old,
    adv,
    mask,
    is_demo,
    H,
    *,
    loss_type,
    eps_low=0.2,
    eps_high=0.2,
    sft_coef=0.5,
    rl_pos_coef=0.1,
    weights=None,
    penalty=None,
    sft_w=True,
    rl_w=True,
    demo_rl=True,
    max_len=None,
    num_items=None,
    sign="paper",
    gamma=None,
    objective="clipped",
    rewards=None,
    entropy_coef=0.0,
    token_entropy=None,
):
    """
    Independent restatement of the contract of issues #2 and #13, one token at a time. `H` is a number or a 0-d
    tensor (one entropy), a (B,) tensor (one per row) or a (B, T) tensor (one per token).
    """

    def h(i, t):
        if torch.is_tensor(H) and H.dim() == 2:
            return float(H[i, t])
        if torch.is_tensor(H) and H.dim() == 1:
            return float(H[i])
        return float(H)

    B, T = logps.shape
    row_sums, row_counts, pg_rows = [], [], []
    sft_sum, sft_count = 0.0, 0
    for i in range(B):
        a = float(adv[i])
        demo = bool(is_demo[i])
        is_pg_row = (not demo) or demo_rl
        s, c = 0.0, 0
        for t in range(T):
            if mask[i, t] == 0:
                continue
            lp = logps[i, t]
            e = math.exp(-h(i, t)) if sign == "paper" else math.exp(h(i, t))
            w_sft = sft_coef * e if sft_w else sft_coef
            w_rl = rl_pos_coef * math.exp(h(i, t)) if rl_w else rl_pos_coef
            if demo:
                sft_sum = sft_sum - w_sft * lp
                sft_count += 1
                p = torch.exp(lp)
                term = -a * (p if gamma is None else p / (p + gamma))
            else:
                if objective == "clipped":
                    o = lp.detach() if old is None else old[i, t]
                    r = torch.exp(lp - o)
                    rc = torch.clamp(r, 1 - eps_low, 1 + eps_high)
                    term = -torch.minimum(r * a, rc * a)
                    if a > 0:
                        term = term * w_rl
                else:
                    reward = float(rewards[i])
                    if reward > 0:
                        term = -w_rl * lp
                    elif reward <= 0:
                        term = lp
                    else:  # NaN: unscorable
                        term = lp * 0.0
                if weights is not None:
                    term = term * weights[i, t if weights.shape[1] > 1 else 0]
                if penalty is not None:
                    term = term + penalty[i, t]
            if is_pg_row:
                s = s + term
                c += 1
        if is_pg_row:
            row_sums.append(s)
            row_counts.append(c)
            pg_rows.append(i)
    zero = logps.sum() * 0.0
    total = sum(row_sums, zero)
    count = sum(row_counts)
    if not pg_rows:
        pg = zero
    elif loss_type == "grpo":
        pg = sum((s / max(c, 1) for s, c in zip(row_sums, row_counts)), zero) / len(pg_rows)
    elif loss_type == "bnpo":
        pg = total / max(count, 1)
    elif loss_type == "dr_grpo":
        pg = total / (len(pg_rows) * max_len)
    else:
        pg = total / (max(count, 1) if num_items is None else num_items)
    sft = sft_sum / sft_count if sft_count else zero
    bonus = zero
    if entropy_coef:
        tokens = [token_entropy[i, t] for i in range(B) for t in range(T) if mask[i, t]]
        bonus = sum(tokens, zero) / max(len(tokens), 1)
    return pg + sft - entropy_coef * bonus


def make_batch(seed, B=5, T=6, demo_rows=(1, 3), with_old=True, adv_values=None):
    g = torch.Generator().manual_seed(seed)
    logps = (-torch.rand(B, T, generator=g, dtype=torch.float64) * 3).requires_grad_(True)
    old = (logps.detach() + 0.3 * torch.randn(B, T, generator=g, dtype=torch.float64)) if with_old else None
    if adv_values is None:
        adv = torch.randn(B, generator=g, dtype=torch.float64)
        adv[0] = 0.0  # always exercise A == 0
    else:
        adv = torch.tensor(adv_values, dtype=torch.float64)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()
    if B > 2:
        mask[2] = 0  # a fully padded row
    is_demo = torch.zeros(B, dtype=torch.bool)
    is_demo[list(demo_rows)] = True
    return logps, old, adv, mask, is_demo


TOGGLES = list(itertools.product([True, False], repeat=3))  # sft_w, rl_w, demo_rl
BATCH_KINDS = {"mixed": (1, 3), "only_demo": (0, 1, 2, 3, 4), "no_demo": ()}


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
    #   bnpo pg = (-0.4 + 1.75) / 5 tokens = 0.27
    #   sft_nll = -(ln 0.5 + ln 0.25 + ln 1) / 3 = 3 ln 2 / 3 = ln 2 = 0.6931472
    #   sft = 0.25 * 0.6931472 = 0.1732868;  total = 0.27 + 0.1732868 = 0.4432868
    #   dapo with num_items_in_batch=10: 1.35 / 10 + 0.1732868 = 0.3082868
    #   grpo: mean(-0.4 / 2, 1.75 / 3) = mean(-0.2, 0.5833333) = 0.1916667 -> 0.3649535
    logps = torch.log(torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.25, 1.0]], dtype=torch.float64))
    args = (None, torch.tensor([1.0, -1.0]), torch.tensor([[1, 1, 0], [1, 1, 1]]), torch.tensor([False, True]))
    H = math.log(2.0)
    loss, m = srft_loss(logps, *args, H, loss_type="bnpo")
    assert loss.item() == pytest.approx(0.4432868, abs=1e-7)
    assert m["w_rl"].item() == pytest.approx(0.2)
    assert m["w_sft"].item() == pytest.approx(0.25)
    assert m["sft_nll"].item() == pytest.approx(0.6931472, abs=1e-7)
    assert m["pg_loss"].item() == pytest.approx(0.27)
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


def _trl_grpo_loss(loss_type, logps, old, adv, mask, max_len, num_items, entropy_coef=0.0, entropies=None):
    """Runs TRL's own `GRPOTrainer._compute_loss` on fixed tensors (forward pass stubbed out)."""
    from trl import GRPOTrainer

    trainer = object.__new__(GRPOTrainer)
    ident = SimpleNamespace(
        num_processes=1,
        reduce=lambda t, reduction="sum": t,
        gather=lambda t: t,
        gather_for_metrics=lambda t: t,
        sync_gradients=True,
    )
    trainer.__dict__.update(
        accelerator=ident,
        model=SimpleNamespace(training=True),
        loss_type=loss_type,
        beta=0.0,
        epsilon_low=0.2,
        epsilon_high=0.28,
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        importance_sampling_level="token",
        use_vllm=False,
        vllm_importance_sampling_correction=False,
        max_completion_length=max_len,
        current_gradient_accumulation_steps=1,
        _entropy_bonus_enabled=entropy_coef != 0.0,
        entropy_coef=entropy_coef,
        use_adaptive_entropy=False,
        aux_loss_enabled=False,
        _metrics={"train": defaultdict(list)},
        args=SimpleNamespace(delta=None, steps_per_generation=1, use_bias_correction_kl=False),
    )
    entropies = torch.zeros_like(logps) if entropies is None else entropies
    trainer._get_per_token_logps_and_entropies = lambda *a, **k: (logps, entropies, None)
    B, T = logps.shape
    inputs = {
        "prompt_ids": torch.zeros(B, 1, dtype=torch.long),
        "prompt_mask": torch.ones(B, 1, dtype=torch.long),
        "completion_ids": torch.zeros(B, T, dtype=torch.long),
        "completion_mask": mask,
        "advantages": adv,
        "num_items_in_batch": torch.tensor(num_items),
    }
    if old is not None:
        inputs["old_per_token_logps"] = old
    return trainer._compute_loss(None, inputs)


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
    theirs = _trl_grpo_loss(loss_type, logps, old, adv, mask, 6, 21.0)
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
    # The bonus pulls every real token's entropy up by the same amount, and never touches padding.
    real = mask.bool()
    torch.testing.assert_close(g_fast[1][real], torch.full_like(g_fast[1][real], -0.01 / real.sum()))
    assert torch.all(g_fast[1][~real] == 0)


def test_variants_hand_worked_example():
    # The rows of test_hand_worked_example (rollout A=+1, p=0.5 x2; demo A=-1, p=(0.5, 0.25, 1.0)), bnpo, H = ln 2.
    logps = torch.log(torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.25, 1.0]], dtype=torch.float64))
    args = (None, torch.tensor([1.0, -1.0]), torch.tensor([[1, 1, 0], [1, 1, 1]]), torch.tensor([False, True]))
    H = math.log(2.0)
    # Released-code SFT weight: 0.5 * exp(+ln 2) = 1.0, so the SFT term is the plain NLL ln 2; pg as before 0.27.
    loss, m = srft_loss(logps, *args, H, loss_type="bnpo", sft_weight_sign="code")
    assert m["w_sft"].item() == pytest.approx(1.0)
    assert loss.item() == pytest.approx(0.27 + math.log(2.0), abs=1e-12)
    # Policy shaping, gamma 0.1: the demo's tokens give p / (p + 0.1) = 5/6, 5/7, 10/11 instead of p.
    #   pg = (-0.4 + 5/6 + 5/7 + 10/11) / 5 tokens; SFT 0.25 ln 2 as before.
    loss, _ = srft_loss(logps, *args, H, loss_type="bnpo", demo_policy_shaping=0.1)
    assert loss.item() == pytest.approx((-0.4 + 5 / 6 + 5 / 7 + 10 / 11) / 5 + 0.25 * math.log(2.0), abs=1e-12)
    # REINFORCE (Eq. 12) with reward 1 on the rollout: w_rl * (-log 0.5) = 0.2 ln 2 per token, two tokens; with
    # reward 0: +log 0.5 = -ln 2 per token.
    base = (1.75) / 5 + 0.25 * math.log(2.0)  # the demo's pg sum 1.75 and the SFT term, unchanged
    for reward, per_token in ((1.0, 0.2 * math.log(2.0)), (0.0, -math.log(2.0))):
        rewards = torch.tensor([reward, 1.0])
        loss, _ = srft_loss(logps, *args, H, loss_type="bnpo", rollout_objective="reinforce", rewards=rewards)
        assert loss.item() == pytest.approx(base + 2 * per_token / 5, abs=1e-12)
    # Per-token entropy: the demo's three tokens with H = 0, ln 2, ln 4 get w_sft = 0.5, 0.25, 0.125 (paper sign).
    #   sft = (0.5 ln 2 + 0.25 ln 4 + 0.125 * 0) / 3 = ln 2 / 3; logged w_sft = mean over demo tokens = 0.875 / 3.
    H_tok = torch.tensor([[0.0, 0.0, 0.0], [0.0, math.log(2.0), math.log(4.0)]], dtype=torch.float64)
    loss, m = srft_loss(logps, *args, H_tok, loss_type="bnpo", rl_entropy_weighting=False, rl_pos_coef=1.0)
    assert m["w_sft"].item() == pytest.approx(0.875 / 3)
    assert m["sft_loss"].item() == pytest.approx(math.log(2.0) / 3, abs=1e-12)
    assert loss.item() == pytest.approx((-2.0 + 1.75) / 5 + math.log(2.0) / 3, abs=1e-12)


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
    theirs = _trl_grpo_loss(
        loss_type, logps, old, adv, mask, 6, 21.0, entropy_coef=options.get("entropy_coef", 0.0), entropies=entropies
    )
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    grads = [torch.autograd.grad(x, [logps, entropies], allow_unused=True) for x in (ours, theirs)]
    for a, b in zip(*grads):
        zero = torch.zeros_like(logps)
        torch.testing.assert_close(zero if a is None else a, zero if b is None else b, rtol=1e-10, atol=1e-12)
