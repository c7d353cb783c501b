# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
Makes the placeholder analysis pictures in this folder from tiny models and synthetic logs (CPU, ~1 minute):

    python docs/images/make_examples.py /tmp/srft-analysis-demo

It builds tiny checkpoints trained by plain SFT steps on arithmetic demonstrations (a strong run and a light one,
with checkpoints), writes two synthetic `trainer_state.json` files, runs the three `srft analyze` commands (printed
as it goes) and copies one picture of each into `docs/images/`. Replace them with pictures from real runs by running
the same commands on real checkpoints and `trainer_state.json` files.
"""

from __future__ import annotations

import json
import math
import random
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import torch


ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from tiny import tiny_model, tiny_tokenizer  # noqa: E402


def problems(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        response = f"<think>\n{a}+{b}: {a % 10}+{b % 10}={a % 10 + b % 10}, so {a + b} </think>\n\\boxed{{{a + b}}}"
        rows.append({"prompt": [{"role": "user", "content": f"What is {a}+{b}?"}], "response": response})
    return rows


def sft(model, tokenizer, rows, steps, lr, save_every, out: Path) -> None:
    """Plain full-batch SFT on the responses (loss on response tokens only), saving `checkpoint-<step>` folders."""
    from srft_trainer.analysis.scoring import encode

    examples = encode(tokenizer, [r["prompt"] for r in rows], [r["response"] for r in rows])
    width = max(len(e.prompt_ids) + len(e.response_ids) for e in examples)
    ids = torch.full((len(examples), width), tokenizer.pad_token_id)
    labels = torch.full_like(ids, -100)
    mask = torch.zeros_like(ids)
    for i, e in enumerate(examples):
        seq = e.prompt_ids + e.response_ids
        ids[i, : len(seq)], mask[i, : len(seq)] = torch.tensor(seq), 1
        labels[i, len(e.prompt_ids) : len(seq)] = torch.tensor(e.response_ids)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        if step % save_every == 0:
            model.save_pretrained(out / f"checkpoint-{step}")
            tokenizer.save_pretrained(out / f"checkpoint-{step}")


def trainer_state(path: Path, srft: bool, seed: int) -> None:
    """Synthetic curves shaped like the paper's Fig. 6 (RL: entropy collapses, shorter answers; SRFT: steadier)."""
    rng = random.Random(seed)
    history = []
    for step in range(1, 201):
        t = step / 200
        entropy = (0.55 - 0.15 * t if srft else 0.6 * math.exp(-3 * t) + 0.05) + rng.gauss(0, 0.02)
        entry = {
            "step": step,
            "reward": (0.25 + 0.45 * (1 - math.exp(-4 * t)) if srft else 0.2 + 0.3 * (1 - math.exp(-3 * t)))
            + rng.gauss(0, 0.04),
            "completions/mean_length": (600 + 300 * t if srft else 600 - 200 * t) + rng.gauss(0, 25),
            "entropy": entropy,
        }
        if srft:
            entry |= {
                "srft/entropy": entropy + 0.05,
                "srft/w_sft": 0.5 * math.exp(-(entropy + 0.05)),
                "srft/w_rl": 0.1 * math.exp(entropy + 0.05),
                "srft/sft_nll": 0.9 * math.exp(-2.5 * t) + 0.25 + rng.gauss(0, 0.02),
            }
        history.append(entry)
    path.mkdir(parents=True, exist_ok=True)
    (path / "trainer_state.json").write_text(json.dumps({"global_step": 200, "log_history": history}))


def run(argv: list[str]) -> None:
    print("$", shlex.join(argv), flush=True)
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def main(work: Path) -> None:
    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    rows = problems(24, seed=0)
    work.mkdir(parents=True, exist_ok=True)
    (work / "demos.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = tiny_model(tokenizer, seed=0, hidden_size=64)
    base.save_pretrained(work / "base")
    tokenizer.save_pretrained(work / "base")
    # Two reference models trained elsewhere: one on the demos for long ("teacher"), one on other sums ("other").
    for name, data, seed in [("teacher", rows, 0), ("other", problems(24, seed=7), 3)]:
        model = tiny_model(tokenizer, seed=seed, hidden_size=64)
        sft(model, tokenizer, data, steps=150, lr=3e-3, save_every=150, out=work / name)
    # Two runs from the base: strong SFT and a light run (few small steps), with checkpoints.
    sft(tiny_model(tokenizer, seed=0, hidden_size=64), tokenizer, rows, 60, 3e-3, 10, work / "run_strong")
    sft(tiny_model(tokenizer, seed=0, hidden_size=64), tokenizer, rows, 60, 3e-4, 10, work / "run_light")
    trainer_state(work / "logs_srft", srft=True, seed=1)
    trainer_state(work / "logs_grpo", srft=False, seed=2)

    srft = [sys.executable, "-m", "srft_trainer.cli", "analyze"]
    w, out = str(work), str(work / "out")
    run(srft + ["token-probs", "--base", f"{w}/base", "--data", f"{w}/demos.jsonl",
                "--finetuned", f"strong={w}/run_strong/checkpoint-60",
                "--finetuned", f"light={w}/run_light/checkpoint-60",
                "--output-dir", f"{out}/token_probs"])  # fmt: skip
    run(srft + ["dynamics", "--run", f"SRFT={w}/logs_srft", "--run", f"GRPO={w}/logs_grpo", "--smooth", "10",
                "--output-dir", f"{out}/dynamics"])  # fmt: skip
    run(srft + ["trajectory", "--reference", f"base={w}/base",
                "--reference", f"teacher={w}/teacher/checkpoint-150",
                "--reference", f"other={w}/other/checkpoint-150",
                "--run", f"strong={w}/base,{w}/run_strong", "--run", f"light={w}/base,{w}/run_light",
                "--data", f"{w}/demos.jsonl", "--num-prompts", "16", "--max-new-tokens", "48",
                "--output-dir", f"{out}/trajectory"])  # fmt: skip

    images = Path(__file__).resolve().parent
    for src, dst in [
        ("token_probs/heatmaps/strong_0000.png", "token_probs_heatmap.png"),
        ("token_probs/histogram.png", "token_probs_histogram.png"),
        ("dynamics/dynamics.png", "dynamics.png"),
        ("trajectory/trajectory.png", "trajectory.png"),
    ]:
        shutil.copy(f"{out}/{src}", images / dst)
    print(f"Copied 4 pictures to {images}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/srft-analysis-demo"))
