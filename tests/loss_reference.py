"""The slow, token-by-token SRFT loss and the batch makers shared by the loss tests, and TRL's own GRPO loss."""

import math
from collections import defaultdict
from types import SimpleNamespace

import torch


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

    def aggregate(rows):  # TRL's aggregation over the given rows; every row of the batch counts in row denominators
        sums = [row_sums[pg_rows.index(i)] for i in rows if i in pg_rows]
        counts = [row_counts[pg_rows.index(i)] for i in rows if i in pg_rows]
        if not sums:
            return zero
        if loss_type == "grpo":
            return sum((s / max(c, 1) for s, c in zip(sums, counts)), zero) / B
        if loss_type == "bnpo":
            return sum(sums, zero) / max(sum(counts), 1)
        if loss_type == "dr_grpo":
            return sum(sums, zero) / (B * max_len)
        return sum(sums, zero) / (max(sum(counts), 1) if num_items is None else num_items)

    rollouts = [i for i in range(B) if not bool(is_demo[i])]
    demos = [i for i in range(B) if bool(is_demo[i])]
    pg = aggregate(rollouts) + aggregate(demos)
    sft = sft_sum / sft_count if sft_count else zero
    bonus = zero
    if entropy_coef:  # over the rollout tokens, as GRPO's bonus over the rows of its loss
        tokens = [token_entropy[i, t] for i in rollouts for t in range(T) if mask[i, t]]
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


BATCH_KINDS = {"mixed": (1, 3), "only_demo": (0, 1, 2, 3, 4), "no_demo": ()}


def trl_grpo_loss(loss_type, logps, old, adv, mask, max_len, num_items, entropy_coef=0.0, entropies=None):
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
