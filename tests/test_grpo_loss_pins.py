"""
Pins of what srft_trainer/grpo_loss.py relies on inside the installed TRL's `GRPOTrainer._compute_loss`. Each test
names the fact; a TRL release that changes one fails here, loudly, before SRFT's loss silently changes meaning.
"""

import inspect

import pytest
import torch
from test_grpo_parity import batch_and_trainers, loss_and_grads
from trl import GRPOTrainer

from srft_trainer.grpo_loss import grpo_rollout_loss, rollout_only_inputs
from srft_trainer.losses import DEMO_AGGREGATION


def test_one_forward_pass_then_advantages_read():
    """The forward pass comes before TRL reads `inputs["advantages"]` (SRFT rewrites them from the entropy)."""
    source = inspect.getsource(GRPOTrainer._compute_loss)
    forward = source.index("self._get_per_token_logps_and_entropies(")
    assert source.count("self._get_per_token_logps_and_entropies(") == 1
    assert forward < source.index('inputs["advantages"]')
    # The loss mask takes `tool_mask`; the attention mask of the forward pass does not.
    assert 'completion_mask * inputs["tool_mask"]' in source
    assert "attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)" in source


@pytest.mark.parametrize("loss_type", sorted(DEMO_AGGREGATION))
def test_positive_advantages_scale_only_the_positive_rows_policy_term(tmp_path, loss_type):
    """
    For every TRL loss type, loss(w * A+ + A-) = w * loss(A+) + loss(A-) with KL and entropy bonus off: scaling the
    positive advantages by w_RL > 0 weights exactly the positive rollouts' policy term (Eq. 12).
    """
    settings = {"loss_type": loss_type, "old_logps_shift": -0.3}
    if loss_type == "luspo":
        settings["importance_sampling_level"] = "sequence"
    batch, _, grpo = batch_and_trainers(tmp_path, settings)
    adv = batch["advantages"]
    assert (adv > 0).any() and (adv < 0).any()

    def loss_with(advantages):
        return loss_and_grads(grpo, {**batch, "advantages": advantages})[0]

    positive, negative = adv.clamp(min=0), adv.clamp(max=0)
    w = 0.37
    torch.testing.assert_close(
        loss_with(w * positive + negative), w * loss_with(positive) + loss_with(negative), rtol=1e-5, atol=1e-7
    )


def test_the_wrapper_restores_the_trainer_and_counts_forwards(tmp_path):
    batch, srft, _ = batch_and_trainers(tmp_path, {})
    seen = []
    loss = grpo_rollout_loss(srft, srft.model, rollout_only_inputs(batch, batch["is_demo"]), lambda *a: seen.append(a))
    assert torch.isfinite(loss) and len(seen) == 1
    assert "_get_per_token_logps_and_entropies" not in srft.__dict__
    srft._get_per_token_logps_and_entropies = lambda *a, **k: (_ for _ in ()).throw(AssertionError("stand-in"))
    with pytest.raises(AssertionError, match="stand-in"):
        grpo_rollout_loss(srft, srft.model, batch, lambda *a: None)
    assert "_get_per_token_logps_and_entropies" in srft.__dict__  # an instance-level stand-in survives
