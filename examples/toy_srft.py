# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
# %% [markdown]
# # SRFT from Python on the offline toy world
#
# A notebook in percent format (open it in VS Code or Jupyter with jupytext, or run it as a script):
#
#     python examples/toy_srft.py                   # 150 steps, ~8 minutes on 2 CPU cores
#     python examples/toy_srft.py --max-steps 2     # what CI runs
#
# It builds the toy world (multi-digit arithmetic, a ~1M-parameter Qwen2 base model shipped with the package),
# trains it with `SRFTTrainer` exactly as one would train with TRL's `GRPOTrainer`, and compares held-out accuracy
# before and after.

# %%
import argparse
import tempfile

from transformers import AutoTokenizer

from srft_trainer import SRFTConfig, SRFTTrainer
from srft_trainer.grading import accuracy_reward
from srft_trainer.toy import build_toy_world, heldout_accuracy


parser = argparse.ArgumentParser()
parser.add_argument("--max-steps", type=int, default=150)
parser.add_argument("--heldout-size", type=int, default=200)
parser.add_argument("--output-dir", default=None)
args, _ = parser.parse_known_args()  # tolerate a notebook kernel's own argv
output_dir = args.output_dir or tempfile.mkdtemp(prefix="toy-srft-")

# %% [markdown]
# ## The toy world
# Everything is files on disk: the base model is an ordinary Hugging Face model folder, the splits are JSON lines.

# %%
world = build_toy_world(f"{output_dir}/toy-world")
train_dataset = world.load_train()
heldout = world.load_heldout().select(range(args.heldout_size))
tokenizer = AutoTokenizer.from_pretrained(world.model_dir)
print(train_dataset[0]["prompt"][-1]["content"], "->", repr(train_dataset[0]["completion"]))

# %% [markdown]
# ## Train with SRFT
# Each group of 8 holds 7 rollouts and 1 demonstration (the data set's `completion` column). The reward is the
# math-verify accuracy reward the real math recipes use.

# %%
config = SRFTConfig(
    output_dir=f"{output_dir}/model",
    num_generations=8,
    num_demos_per_group=1,
    per_device_train_batch_size=64,
    max_completion_length=160,
    max_steps=args.max_steps,
    learning_rate=2e-4,
    lr_scheduler_type="cosine",
    warmup_steps=5,
    logging_steps=5,
    save_strategy="no",
    report_to=[],
    use_cpu=True,
    bf16=False,
)
trainer = SRFTTrainer(
    model=str(world.model_dir),
    reward_funcs=accuracy_reward,
    args=config,
    train_dataset=train_dataset,
    processing_class=tokenizer,
)
before = heldout_accuracy(trainer.model, tokenizer, heldout)
trainer.train()
after = heldout_accuracy(trainer.model, tokenizer, heldout)

# %%
print(f"held-out accuracy ({len(heldout)} problems, greedy): before {100 * before:.1f}%, after {100 * after:.1f}%")
logged = [log for log in trainer.state.log_history if "srft/w_sft" in log]
print("last logged:", {k: round(v, 4) for k, v in logged[-1].items() if k.startswith(("srft/", "reward"))})
