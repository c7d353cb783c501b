"""
A few SRFT steps with TRL's colocated vLLM engine (the real one: vLLM's CPU build), then the engine checked against
the trained policy. Run by tests/test_vllm_cpu.py directly or under `accelerate launch` (ZeRO-3, tensor parallel).

Usage: python vllm_colocate_run.py OUT.json --model toy|MODEL_DIR [--steps N] [--tp N] [--lr LR]

Writes, from the main process, facts about the run: sequences generated per process, the gradient that reached the
demonstration rows, the logged metrics, and the largest difference between the engine's log-probabilities of fixed
completions and the trained model's (after a last sync) and the base model's.
"""

import argparse
import json
import os
import sys
from pathlib import Path


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

import srft_trainer.objective as objective_module  # noqa: E402
from srft_trainer import SRFTConfig, SRFTTrainer  # noqa: E402
from srft_trainer.rewards import resolve_reward_funcs  # noqa: E402


# Small arithmetic for a real chat model: prompts it can answer, demonstrations in the reward's \boxed{} format.
CHAT_ROWS = [(a, b) for a, b in ((2, 3), (7, 5), (12, 9), (6, 8))]


def chat_dataset() -> Dataset:
    return Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": f"What is {a} + {b}? Give the answer in \\boxed{{}}."}],
                "completion": f"{a} + {b} = {a + b}, so the answer is \\boxed{{{a + b}}}.",
                "solution": str(a + b),
            }
            for a, b in CHAT_ROWS
        ]
    )


def sequence_ids(tokenizer, prompt, completion: str) -> tuple[list[int], int]:
    """Prompt (rendered with its generation prompt) + completion tokens, and where the completion starts."""
    prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)
    prompt_ids = list(prompt_ids["input_ids"])
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    return prompt_ids + completion_ids, len(prompt_ids)


def hf_logprobs(model, sequences) -> list[torch.Tensor]:
    out = []
    with torch.no_grad():
        for ids, start in sequences:
            logits = model(torch.tensor([ids])).logits[0].float()
            logps = torch.log_softmax(logits[:-1], dim=-1).gather(1, torch.tensor(ids[1:]).unsqueeze(1))[:, 0]
            out.append(logps[start - 1 :])
    return out


def engine_logprobs(llm, sequences) -> list[torch.Tensor]:
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=1.0)
    outputs = llm.generate([{"prompt_token_ids": ids} for ids, _ in sequences], params, use_tqdm=False)
    out = []
    for (ids, start), output in zip(sequences, outputs):
        logps = [output.prompt_logprobs[i][ids[i]].logprob for i in range(start, len(ids))]
        out.append(torch.tensor(logps))
    return out


def max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--model", default="toy")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--tp", type=int, default=1)
    parser.add_argument("--lr", type=float, default=2e-4)
    cli = parser.parse_args()
    out = Path(cli.out)
    world = int(os.environ.get("WORLD_SIZE", "1"))

    if cli.model == "toy":
        from accelerate import PartialState

        from srft_trainer.toy import build_toy_world

        # One process builds the world, the others then read it (`cpu=True`: without it a CUDA-less machine's state
        # is single-process and both processes would build at once).
        with PartialState(cpu=True).main_process_first():
            toy = build_toy_world(out.parent / "toy-world")
        model_dir, train = toy.model_dir, toy.load_train().select(range(256))
        heldout = toy.load_heldout().select(range(6))
        fixed = [(row["prompt"], row["completion"]) for row in heldout]
        group, per_device, completion_length = 8, 16, 160
    else:
        model_dir, train = Path(cli.model), chat_dataset()
        fixed = [(row["prompt"], row["completion"]) for row in train]
        group, per_device, completion_length = 4, 8 // world, 32
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    sequences = [sequence_ids(tokenizer, prompt, completion) for prompt, completion in fixed]
    # Before the config exists: under ZeRO-3 it switches on sharding at load for every model loaded after it.
    base = hf_logprobs(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32), sequences)
    args = SRFTConfig(
        output_dir=str(out.parent / "run"),
        use_cpu=True,
        bf16=False,
        use_vllm=True,
        vllm_mode="colocate",
        vllm_tensor_parallel_size=cli.tp,
        vllm_max_model_length=512,
        num_generations=group,
        num_demos_per_group=1,
        per_device_train_batch_size=per_device,
        max_completion_length=completion_length,
        max_steps=cli.steps,
        learning_rate=cli.lr,
        lr_scheduler_type="constant",
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        gradient_checkpointing=False,
        seed=0,
    )

    demo_grads: list[float] = []
    original_loss = objective_module.demo_loss

    def recording_loss(per_token_logps, advantages, mask, is_demo, *rest, **kwargs):
        # The gradient that reaches the demonstration rows: TRL's importance-sampling correction must not mask it.
        if per_token_logps.requires_grad and is_demo.any():
            per_token_logps.register_hook(lambda grad: demo_grads.append(float(grad[is_demo].abs().sum())))
        return original_loss(per_token_logps, advantages, mask, is_demo, *rest, **kwargs)

    objective_module.demo_loss = recording_loss
    trainer = SRFTTrainer(
        str(model_dir),
        reward_funcs=resolve_reward_funcs(["accuracy"]),
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
    )
    trainer.train()

    generation = trainer.vllm_generation
    generation.sync_weights()  # the engine synced before each generation; push the last update as well
    engine = engine_logprobs(generation.llm, sequences)
    from trl.models import unwrap_model_for_generation

    with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator) as policy:  # gathers ZeRO-3 shards
        trained = hf_logprobs(policy, sequences)

    history = trainer.state.log_history
    facts = {
        "world": world,
        "tp": cli.tp,
        "zero_stage": getattr(trainer.accelerator.state.deepspeed_plugin, "zero_stage", None),
        "steps": trainer.state.global_step,
        "rows_per_process": per_device,
        "group": group,
        "generated_per_process": trainer.num_generated_sequences,
        "demos_used": [h["srft/demos_used"] for h in history if "srft/demos_used" in h],
        "sampling_logp_difference_mean": [
            h["sampling/sampling_logp_difference/mean"]
            for h in history
            if "sampling/sampling_logp_difference/mean" in h
        ],
        "sft_nll": [h["srft/sft_nll"] for h in history if "srft/sft_nll" in h],
        "demo_grad_abs_sum": demo_grads,
        "engine_vs_trained": max_diff(engine, trained),
        "engine_vs_base": max_diff(engine, base),
        "trained_vs_base": max_diff(trained, base),
        "tokens_compared": sum(len(t) for t in engine),
        "engine_dtype": str(generation.llm.llm_engine.model_config.dtype),
    }
    if trainer.accelerator.is_main_process:
        out.write_text(json.dumps(facts, indent=2))
    trainer.accelerator.wait_for_everyone()
    trainer.end()  # shuts the engine down, then the process group: no traceback at exit
    print("done", file=sys.stderr)


if __name__ == "__main__":
    main()
