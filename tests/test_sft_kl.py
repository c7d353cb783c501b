"""SFT_KL (paper Eq. A1): loss = TRL's SFT loss + kl_coef * KL(policy || frozen base), on completion tokens."""

import pytest
import torch
from datasets import Dataset
from tiny import tiny_model, tiny_tokenizer
from trainer_utils import demo_for
from trl import SFTConfig, SFTTrainer

from srft_trainer.sft_kl import SFTKLConfig, SFTKLTrainer, token_kl


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("base")
    tok = tiny_tokenizer()
    tiny_model(tok, seed=1).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def perturbed_dir(tmp_path_factory, base_dir):
    """The base model with every weight moved: what the policy looks like after some training."""
    path = tmp_path_factory.mktemp("perturbed")
    tok = tiny_tokenizer()
    model = tiny_model(tok, seed=1)
    torch.manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def dataset() -> Dataset:
    rows = [
        {
            "prompt": [{"role": "user", "content": f"{a}+{a + 1}="}],
            "completion": [{"role": "assistant", "content": demo_for(a, a + 1)}],
        }
        for a in range(6)
    ]
    return Dataset.from_list(rows)


def args(tmp_path, cls=SFTKLConfig, **kw):
    kwargs = dict(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=3,
        max_length=64,
        max_steps=1,
        learning_rate=0.01,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        seed=0,
    )
    kwargs.update(kw)
    return cls(**kwargs)


def first_batch(trainer):
    trainer.model.train()  # metrics go to the "train" bucket (the tiny model has no dropout)
    batch = next(iter(trainer.get_train_dataloader()))
    return trainer._prepare_inputs(batch)


def independent_kl(policy, ref, batch) -> tuple[torch.Tensor, int]:
    """Sum over label positions of KL(policy || ref), token by token in float64, and the label-token count."""
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        p_logits = policy(**inputs).logits.double()
        r_logits = ref(**inputs).logits.double()
    total, count = torch.zeros((), dtype=torch.float64), 0
    labels = batch["labels"]
    for i in range(labels.shape[0]):
        for t in range(1, labels.shape[1]):
            if labels[i, t] == -100:
                continue
            p = torch.distributions.Categorical(logits=p_logits[i, t - 1])
            r = torch.distributions.Categorical(logits=r_logits[i, t - 1])
            total += torch.distributions.kl_divergence(p, r)
            count += 1
    return total, count


def test_token_kl_matches_torch_distributions():
    torch.manual_seed(0)
    a, b = torch.randn(5, 11), torch.randn(5, 11)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Categorical(logits=a), torch.distributions.Categorical(logits=b)
    )
    torch.testing.assert_close(token_kl(a, b), expected)
    assert torch.all(token_kl(a, a).abs() < 1e-6)


def test_kl_is_zero_at_step_zero_and_loss_equals_trl_sft(tmp_path, base_dir):
    tok = tiny_tokenizer()
    trainer = SFTKLTrainer(str(base_dir), args=args(tmp_path / "kl"), train_dataset=dataset(), processing_class=tok)
    plain = SFTTrainer(
        str(base_dir), args=args(tmp_path / "sft", cls=SFTConfig), train_dataset=dataset(), processing_class=tok
    )
    batch = first_batch(trainer)
    plain.model.train()
    assert batch["labels"].eq(-100).any() and batch["labels"].ne(-100).any()  # completion-only labels
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, dict(batch))
        sft = plain.compute_loss(plain.model, dict(batch))
    assert trainer._metrics["train"]["kl"][-1] == pytest.approx(0.0, abs=1e-7)
    assert loss.item() == pytest.approx(sft.item(), rel=1e-5)
    assert trainer._metrics["train"]["nll"][-1] == pytest.approx(sft.item(), rel=1e-5)


@pytest.mark.parametrize("num_items_in_batch", [None, 97])
def test_perturbed_policy_loss_is_sft_plus_lambda_kl(tmp_path, base_dir, perturbed_dir, num_items_in_batch):
    tok = tiny_tokenizer()
    trainer = SFTKLTrainer(
        str(perturbed_dir),
        args=args(tmp_path / "kl", kl_coef=0.2),
        ref_model=str(base_dir),
        train_dataset=dataset(),
        processing_class=tok,
    )
    plain = SFTTrainer(
        str(perturbed_dir), args=args(tmp_path / "sft", cls=SFTConfig), train_dataset=dataset(), processing_class=tok
    )
    batch = first_batch(trainer)
    plain.model.train()
    kl_sum, count = independent_kl(plain.model, trainer.ref_model, batch)
    assert kl_sum.item() > 1e-3  # the perturbation is visible
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=num_items_in_batch)
        sft = plain.compute_loss(plain.model, dict(batch), num_items_in_batch=num_items_in_batch)
    denominator = count if num_items_in_batch is None else num_items_in_batch
    assert trainer._metrics["train"]["kl"][-1] == pytest.approx(kl_sum.item() / count, rel=1e-4)
    assert loss.item() == pytest.approx(sft.item() + 0.2 * kl_sum.item() / denominator, rel=1e-5)


def test_kl_gradient_pulls_towards_reference(tmp_path, base_dir, perturbed_dir):
    """With the NLL switched off by a huge kl_coef, a few steps shrink the KL to the reference."""
    tok = tiny_tokenizer()
    trainer = SFTKLTrainer(
        str(perturbed_dir),
        args=args(tmp_path / "kl", kl_coef=50.0, max_steps=6, learning_rate=0.003, lr_scheduler_type="constant"),
        ref_model=str(base_dir),
        train_dataset=dataset(),
        processing_class=tok,
    )
    trainer.train()
    kls = [entry["kl"] for entry in trainer.state.log_history if "kl" in entry]
    assert len(kls) == 6 and kls[-1] < 0.8 * kls[0]


def test_config_rejects_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="kl_coef"):
        args(tmp_path, kl_coef=-0.1)
    with pytest.raises(ValueError, match="loss_type='nll'"):
        args(tmp_path, loss_type="dft")


def test_trainer_needs_sft_kl_config(tmp_path, base_dir):
    with pytest.raises(ValueError, match="SFTKLConfig"):
        SFTKLTrainer(
            str(base_dir),
            args=args(tmp_path, cls=SFTConfig),
            train_dataset=dataset(),
            processing_class=tiny_tokenizer(),
        )


def test_peft_reference_is_the_adapter_disabled_base(tmp_path, base_dir):
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM

    trainer = SFTKLTrainer(
        str(base_dir),
        args=args(tmp_path),
        train_dataset=dataset(),
        processing_class=tiny_tokenizer(),
        peft_config=LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.0),
    )
    assert trainer.ref_model is None
    batch = first_batch(trainer)
    with torch.no_grad():
        trainer.compute_loss(trainer.model, dict(batch))
        assert trainer._metrics["train"]["kl"][-1] == pytest.approx(0.0, abs=1e-7)  # LoRA starts at B = 0
        torch.manual_seed(3)
        for name, p in trainer.model.named_parameters():
            if "lora_B" in name:
                p.add_(torch.randn_like(p))
        trainer.compute_loss(trainer.model, dict(batch))
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    kl_sum, count = independent_kl(trainer.model, base, batch)
    assert kl_sum.item() > 1e-3
    assert trainer._metrics["train"]["kl"][-1] == pytest.approx(kl_sum.item() / count, rel=1e-4)
