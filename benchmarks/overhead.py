"""
SRFTTrainer's overhead against TRL's GRPOTrainer, measured side by side in one run (ratios, not absolute times).

    python benchmarks/overhead.py                       # CPU, ~3M-parameter Qwen2 shape
    python benchmarks/overhead.py --tiny                # seconds; what CI runs so the script does not rot
    python benchmarks/overhead.py --device cuda --bf16 --hidden 896 --layers 24 --heads 14 --kv-heads 2 \
        --intermediate 4864 --vocab 151936 --completion-len 2048   # ~0.5B Qwen2 shape on one GPU (benchmarks/gpu.sh)

Measured, each as the median of `--reps` alternating repetitions:
1. loss path: `compute_loss` + backward on identical inputs (same rows and tokens; SRFT marks one row per group as a
   demonstration). Target <= 1.05.
2. full step: `training_step` including generation, SRFT with G-1 rollouts + 1 demonstration per group against GRPO
   with G rollouts. Target <= 1.00 (a demonstration costs no generation).
3. peak memory: CUDA `max_memory_allocated` on GPU; on CPU the peak RSS of a fresh child process per trainer
   (alternating), since a process's peak RSS never goes down. Target <= 1.05.
4. forward passes per micro-batch in the loss path (a forward hook counts them). Target: equal.
5. loss path of the released code's variant (`OFFICIAL`: the objective of recipes/qwen2.5-math-7b/srft_official.yaml)
   against the same GRPOTrainer, on the same inputs. Printed beside the default's; the 1.05 target is the default's.

With `--vllm` (vLLM installed: its CPU build here, README "Generation with vLLM"), instead:
1. full step with TRL's colocated vLLM engine for both trainers (weight sync included: the step counter moves before
   each step), each trainer in its own child process (one engine per process), alternating grpo, srft, srft, grpo.
   Target <= 1.00; SRFT generates (G-1)/G of GRPO's sequences.
2. generation alone on the same prompts and lengths: vLLM's engine against transformers' `generate` (ratio < 1 means
   vLLM is faster).
3. engine start-up (building the trainer with its engine), reported on its own, never inside a step.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import string
import subprocess
import sys
import time


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers  # noqa: E402
from transformers import GenerationConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from srft_trainer import SRFTConfig, SRFTTrainer  # noqa: E402
from srft_trainer.vllm_colocate import shutdown_colocated_engine, vllm_colocate_overrides  # noqa: E402


CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tokenizer() -> PreTrainedTokenizerFast:
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    vocab = {t: i for i, t in enumerate(specials + sorted(set(string.printable)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(specials)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   padding_side="left")  # fmt: skip
    fast.chat_template = CHAT_TEMPLATE
    return fast


def model(tok, a: argparse.Namespace) -> Qwen2ForCausalLM:
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=max(a.vocab, len(tok)), hidden_size=a.hidden, intermediate_size=a.intermediate,
        num_hidden_layers=a.layers, num_attention_heads=a.heads, num_key_value_heads=a.kv_heads,
        max_position_embeddings=a.completion_len + 256, tie_word_embeddings=True,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
    )  # fmt: skip
    m = Qwen2ForCausalLM(config)
    # Never stop early: every rollout is completion_len tokens, so SRFT and GRPO process the same token counts.
    m.generation_config = GenerationConfig(pad_token_id=tok.pad_token_id, eos_token_id=None, do_sample=True,
                                           min_new_tokens=a.completion_len)  # fmt: skip
    return m.to(torch.bfloat16 if a.bf16 else torch.float32)


def dataset(a: argparse.Namespace) -> Dataset:
    demo = ("1+1=2 " * a.completion_len)[: a.completion_len - 1]  # + EOS = completion_len tokens
    return Dataset.from_list(
        [{"prompt": [{"role": "user", "content": f"{i}+{i}=?"}], "completion": demo, "solution": str(2 * i)}
         for i in range(64)]
    )  # fmt: skip


def reward(completions, **kwargs):
    return [float(len(c[0]["content"]) % 3) for c in completions]


# The released code's objective (recipes/qwen2.5-math-7b/srft_official.yaml), for the loss-path row of its own.
OFFICIAL = dict(
    sft_weight_sign="code", entropy_granularity="token", demo_policy_shaping=0.1, scale_rewards="none",
    loss_type="dr_grpo", entropy_coef=0.001,
)  # fmt: skip


MODEL_DIR = "/tmp/srft-overhead-model"


def make_trainer(kind: str, tok, a: argparse.Namespace):
    common = dict(
        output_dir=f"/tmp/srft-overhead-{kind}", per_device_train_batch_size=a.batch, num_generations=a.group,
        max_completion_length=a.completion_len, report_to="none", save_strategy="no", logging_steps=10**6,
        use_cpu=a.device == "cpu", bf16=a.bf16, gradient_checkpointing=False, seed=0,
    )  # fmt: skip
    m = model(tok, a).to(a.device)
    if a.vllm:  # the colocated engine loads the model from its folder; every rollout runs to the length limit
        m.save_pretrained(MODEL_DIR)
        tok.save_pretrained(MODEL_DIR)
        m = Qwen2ForCausalLM.from_pretrained(MODEL_DIR, dtype=m.dtype).to(a.device)
        m.generation_config = model(tok, a).generation_config
        common.update(use_vllm=True, vllm_mode="colocate", vllm_max_model_length=a.completion_len + 64,
                      generation_kwargs={"ignore_eos": True})  # fmt: skip
    if kind.startswith("srft"):
        args = SRFTConfig(**common, **(OFFICIAL if kind == "srft_official" else {}))
        trainer = SRFTTrainer(
            model=m, reward_funcs=[reward], args=args, train_dataset=dataset(a), processing_class=tok
        )
    else:
        args = GRPOConfig(**common)
        with vllm_colocate_overrides():  # TRL's own trainer on vLLM's CPU build needs the same engine adaptation
            trainer = GRPOTrainer(
                model=m, reward_funcs=[reward], args=args, train_dataset=dataset(a), processing_class=tok
            )
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop, which this benchmark bypasses
    return trainer


def rows(a: argparse.Namespace) -> list[dict]:
    ds = dataset(a)
    return [ds[i] for i in range(a.batch // a.group) for _ in range(a.group)]


def loss_inputs(trainer, a: argparse.Namespace) -> dict:
    """The same rows and tokens for both trainers: one generation, then fixed tensors."""
    torch.manual_seed(1)
    inputs = trainer._generate_and_score_completions(rows(a))
    inputs["advantages"] = torch.randn_like(inputs["advantages"])
    return inputs


def sync(a):
    if a.device == "cuda":
        torch.cuda.synchronize()


def time_loss(trainer, inputs, a) -> float:
    trainer.model.zero_grad(set_to_none=True)
    sync(a)
    start = time.perf_counter()
    trainer.compute_loss(trainer.model, inputs).backward()
    sync(a)
    return time.perf_counter() - start


def time_step(trainer, a) -> float:
    trainer._buffered_inputs, trainer._step = None, 0  # force a fresh generation
    trainer.model.zero_grad(set_to_none=True)
    sync(a)
    start = time.perf_counter()
    trainer.training_step(trainer.model, rows(a), None)
    sync(a)
    return time.perf_counter() - start


def count_forwards(trainer, inputs) -> int:
    calls = []
    handle = trainer.model.register_forward_hook(lambda *_: calls.append(1))
    try:
        trainer.compute_loss(trainer.model, inputs).backward()
    finally:
        handle.remove()
    return len(calls)


def memory_child(kind: str, a: argparse.Namespace) -> None:
    tok = tokenizer()
    trainer = make_trainer(kind, tok, a)
    for _ in range(2):
        time_step(trainer, a)
    if a.device == "cuda":
        print(json.dumps({"peak": torch.cuda.max_memory_allocated()}))
    else:
        print(json.dumps({"peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def peak_memory(kind: str, argv: list[str]) -> int:
    out = subprocess.run([sys.executable, __file__, *argv, "--memory-child", kind], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])["peak"]


def vllm_child(kind: str, a: argparse.Namespace) -> None:
    """One trainer with its colocated engine: start-up, full steps, and (SRFT) generation vLLM vs transformers."""
    tok = tokenizer()
    start = time.perf_counter()
    trainer = make_trainer(kind, tok, a)
    startup = time.perf_counter() - start
    engine, generated = trainer.vllm_generation.llm, []
    engine_generate = engine.generate

    def counting_generate(*args, **kwargs):  # sequences the engine really produced, for both trainers
        outputs = engine_generate(*args, **kwargs)
        generated.append(sum(len(output.outputs) for output in outputs))
        return outputs

    engine.generate = counting_generate
    steps = []
    for rep in range(a.reps + 1):  # the first is a warm-up
        trainer.state.global_step += 1  # a new policy: TRL syncs the weights into the engine, as in training
        elapsed = time_step(trainer, a)
        if rep:
            steps.append(elapsed)
    engine.generate = engine_generate
    result = {"startup": startup, "steps": steps, "generated": sum(generated) / (a.reps + 1)}
    if kind == "srft":
        result.update(generation_times(trainer, tok, a))
    shutdown_colocated_engine(trainer)  # before the process group goes
    trainer.end()
    print(json.dumps(result))


def generation_times(trainer, tok, a: argparse.Namespace) -> dict:
    """vLLM's engine and transformers' `generate` on the same prompts, each to `completion_len` new tokens."""
    from vllm import SamplingParams

    prompts = [row["prompt"] for row in rows(a)]
    ids = [tok.apply_chat_template(p, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
           for p in prompts]  # fmt: skip
    params = SamplingParams(max_tokens=a.completion_len, ignore_eos=True, temperature=1.0)
    batch = tok.pad({"input_ids": ids}, return_tensors="pt").to(a.device)
    model = trainer.accelerator.unwrap_model(trainer.model)
    times: dict[str, list[float]] = {"vllm_generate": [], "hf_generate": []}
    for rep in range(a.reps + 1):
        start = time.perf_counter()
        trainer.vllm_generation.llm.generate([{"prompt_token_ids": i} for i in ids], params, use_tqdm=False)
        vllm_time = time.perf_counter() - start
        start = time.perf_counter()
        with torch.no_grad():
            model.generate(**batch, max_new_tokens=a.completion_len, do_sample=True)
        hf_time = time.perf_counter() - start
        if rep:  # the first is a warm-up
            times["vllm_generate"].append(vllm_time)
            times["hf_generate"].append(hf_time)
    return times


def vllm_main(a: argparse.Namespace, argv: list[str]) -> None:
    results: dict[str, list[dict]] = {"grpo": [], "srft": []}
    order = ["grpo", "srft"] if a.tiny else ["grpo", "srft", "srft", "grpo"]
    for kind in order:
        out = subprocess.run([sys.executable, __file__, *argv, "--vllm-child", kind], capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(out.stderr[-4000:])
        results[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = statistics.median

    def all_of(kind: str, key: str) -> list[float]:
        return [value for run in results[kind] for value in (run[key] if isinstance(run[key], list) else [run[key]])]

    srft_step, grpo_step = med(all_of("srft", "steps")), med(all_of("grpo", "steps"))
    srft_gen, grpo_gen = med(all_of("srft", "generated")), med(all_of("grpo", "generated"))
    vllm_gen, hf_gen = med(all_of("srft", "vllm_generate")), med(all_of("srft", "hf_generate"))
    print(
        f"\nmodel: Qwen2 shape, hidden {a.hidden}, {a.layers} layers; device {a.device}; batch {a.batch} rows, "
        f"groups of {a.group}; completion {a.completion_len} tokens (every rollout to the limit); colocated vLLM "
        f"engine, one per trainer process; median of {a.reps} steps x {len(results['srft'])} process(es) each"
    )
    print("\n| measure | SRFT | GRPO | SRFT / GRPO | target |\n|---|---|---|---|---|")
    ratio = srft_step / grpo_step
    ok = "ok" if ratio <= 1.0 + 1e-9 else "MISSED"
    print(
        f"| full step with vLLM (sync + generation + loss + backward) | {srft_step:.4g} s | {grpo_step:.4g} s | "
        f"{ratio:.3f} | <= 1.00 ({ok}) |"
    )
    expected = (a.group - 1) / a.group
    print(
        f"| sequences generated per step | {srft_gen:.0f} | {grpo_gen:.0f} | {srft_gen / grpo_gen:.3f} | "
        f"{expected:.3f} ((G-1)/G) |"
    )
    print(
        f"| engine start-up (trainer construction, not in any step) | {med(all_of('srft', 'startup')):.1f} s | "
        f"{med(all_of('grpo', 'startup')):.1f} s | | reported |"
    )
    print(
        "\n| generation of the same prompts and lengths | vLLM | transformers generate | vLLM / transformers |"
        "\n|---|---|---|---|"
    )
    print(
        f"| {a.batch} sequences x {a.completion_len} tokens | {vllm_gen:.4g} s | {hf_gen:.4g} s | "
        f"{vllm_gen / hf_gen:.3f} |"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--intermediate", type=int, default=1024)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--vocab", type=int, default=2048)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--group", type=int, default=8)
    p.add_argument("--completion-len", type=int, default=128)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--tiny", action="store_true", help="a seconds-long smoke run (CI)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="dense peak of the device (989 for H100 SXM bf16): prints MFU of the loss path")  # fmt: skip
    p.add_argument("--vllm", action="store_true", help="full step and generation with TRL's colocated vLLM engine")
    p.add_argument("--memory-child", choices=["srft", "grpo"], help=argparse.SUPPRESS)
    p.add_argument("--vllm-child", choices=["srft", "grpo"], help=argparse.SUPPRESS)
    argv = list(sys.argv[1:] if argv is None else argv)
    a = p.parse_args(argv)
    if a.tiny:
        # vLLM's CPU attention needs a head size it has kernels for (32 here: hidden 128, 4 heads).
        hidden, intermediate = (128, 256) if a.vllm else (32, 64)
        a.hidden, a.intermediate, a.layers, a.vocab, a.batch, a.group, a.completion_len, a.reps = (
            hidden, intermediate, 1, 128, 8, 4, 16, 3
        )  # fmt: skip
        argv = [x for x in argv if x != "--tiny"] + ["--hidden", str(hidden), "--intermediate", str(intermediate),
                                                     "--layers", "1", "--vocab", "128", "--batch", "8", "--group",
                                                     "4", "--completion-len", "16", "--reps", "3"]  # fmt: skip
    if a.memory_child:
        return memory_child(a.memory_child, a)
    if a.vllm_child:
        return vllm_child(a.vllm_child, a)
    if a.vllm:
        return vllm_main(a, argv)

    tok = tokenizer()
    kinds = ("grpo", "srft", "srft_official")
    trainers = {kind: make_trainer(kind, tok, a) for kind in kinds}
    params = sum(p.numel() for p in trainers["grpo"].model.parameters())
    inputs = loss_inputs(trainers["grpo"], a)
    srft_inputs = dict(inputs, is_demo=torch.arange(a.batch, device=a.device) % a.group == a.group - 1)
    per_kind_inputs = {"grpo": inputs, "srft": srft_inputs, "srft_official": srft_inputs}
    forwards = {k: count_forwards(t, per_kind_inputs[k]) for k, t in trainers.items()}
    loss_t, step_t = {k: [] for k in kinds}, {"grpo": [], "srft": []}
    for kind in kinds:  # warm-up
        time_loss(trainers[kind], per_kind_inputs[kind], a)
    for kind in ("grpo", "srft"):
        time_step(trainers[kind], a)
    for rep in range(a.reps):
        order = kinds[rep % 3 :] + kinds[: rep % 3]  # rotate, so no trainer always runs first
        for kind in order:
            loss_t[kind].append(time_loss(trainers[kind], per_kind_inputs[kind], a))
        for kind in (k for k in order if k in step_t):
            step_t[kind].append(time_step(trainers[kind], a))
    generated = {k: t.num_generated_sequences for k, t in trainers.items() if hasattr(t, "num_generated_sequences")}
    memory = {}
    for kind in ("grpo", "srft") if a.tiny else ("grpo", "srft", "grpo", "srft"):
        memory.setdefault(kind, []).append(peak_memory(kind, argv))

    med = statistics.median
    rows_out = [
        ("loss path (compute_loss + backward)", med(loss_t["srft"]), med(loss_t["grpo"]), 1.05, "s"),
        ("full step (generation + loss + backward)", med(step_t["srft"]), med(step_t["grpo"]), 1.00, "s"),
        ("peak memory" + (" (CUDA allocated)" if a.device == "cuda" else " (RSS)"),
         min(memory["srft"]) / 2**20, min(memory["grpo"]) / 2**20, 1.05, "MiB"),
        ("forward passes per micro-batch (loss path)", forwards["srft"], forwards["grpo"], 1.00, ""),
        # No target of its own: it computes more than GRPO (per-token entropy weights, an entropy bonus that
        # backpropagates through the entropy, policy shaping); the issue asks for the figure, not a bound.
        ("loss path, released-code variant (srft_official)", med(loss_t["srft_official"]), med(loss_t["grpo"]),
         None, "s"),
        ("forward passes per micro-batch, released-code variant", forwards["srft_official"], forwards["grpo"], 1.00,
         ""),
    ]  # fmt: skip
    print(f"\nmodel: Qwen2 shape, {params / 1e6:.1f}M parameters, {a.layers} layers, hidden {a.hidden}; "
          f"device {a.device}{' bf16' if a.bf16 else ''}; batch {a.batch} rows, groups of {a.group} "
          f"(SRFT: {a.group - 1} rollouts + 1 demo), completion {a.completion_len} tokens; median of {a.reps} "
          f"alternating repetitions; SRFT generated {generated.get('srft', '?')} sequences in total")  # fmt: skip
    # Throughput of the training computation (loss path: one forward + backward over prompt and completion tokens).
    # MFU counts 6 * parameters FLOPs per token (forward + backward, attention's quadratic term left out).
    tokens = int(inputs["prompt_mask"].sum() + inputs["completion_mask"].sum())
    for kind in kinds:
        tps = tokens / med(loss_t[kind])
        mfu = f", MFU {6 * params * tps / (a.peak_tflops * 1e12):.1%}" if a.peak_tflops else ""
        print(f"{kind}: {tokens} tokens per micro-batch, {tps:,.0f} tokens/s in the loss path{mfu}")
    print("\n| measure | SRFT | GRPO | SRFT / GRPO | target |\n|---|---|---|---|---|")
    for name, srft, grpo, target, unit in rows_out:
        ratio = srft / grpo
        if target is None:
            goal = "none (reported)"
        else:
            goal = f"<= {target:.2f} ({'ok' if ratio <= target + 1e-9 else 'MISSED'})"
        print(f"| {name} | {srft:.4g} {unit} | {grpo:.4g} {unit} | {ratio:.3f} | {goal} |")


if __name__ == "__main__":
    main()
