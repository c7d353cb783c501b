"""One SRFT optimizer step on the tiny model, run directly or under `accelerate launch` by tests/test_multiprocess.py.

Usage: python one_step.py OUT_FILE GLOBAL_BATCH [--zero3]
Writes the updated parameters (and a few facts about the run) to OUT_FILE from the main process.
"""

import os
import sys
from pathlib import Path


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from tiny import tiny_model, tiny_tokenizer  # noqa: E402
from trainer_utils import config, contains_solution, make_dataset  # noqa: E402

from srft_trainer import SRFTTrainer  # noqa: E402


def main() -> None:
    out_file, global_batch = sys.argv[1], int(sys.argv[2])
    zero3 = "--zero3" in sys.argv
    world = int(os.environ.get("WORLD_SIZE", "1"))
    tok = tiny_tokenizer()
    model = tiny_model(tok, seed=0)
    args = config(
        Path(out_file).parent / "run",
        per_device_train_batch_size=global_batch // world,
        generation_kwargs={"do_sample": False},  # greedy: every process generates what one process would
        optim="adamw_torch" if zero3 else "sgd",
        learning_rate=0.5,
        shuffle_dataset=False,
    )
    # Equal-length demos, so that per-process token means average to the single-process token mean.
    trainer = SRFTTrainer(model=model, reward_funcs=[contains_solution], args=args,
                          train_dataset=make_dataset(2), processing_class=tok)  # fmt: skip
    trainer.train()
    loss = trainer.state.log_history[0]["loss"]
    facts = {"loss": loss, "world": world, "zero_stage": None, "partitioned": False}
    if zero3:
        facts["zero_stage"] = trainer.accelerator.state.deepspeed_plugin.zero_stage
        facts["partitioned"] = all(hasattr(p, "ds_id") for p in trainer.model_wrapped.parameters())
        params = {}
    else:
        params = {n: p.detach().cpu() for n, p in trainer.accelerator.unwrap_model(trainer.model).named_parameters()}
    if trainer.accelerator.is_main_process:
        torch.save({"facts": facts, "params": params}, out_file)
    trainer.accelerator.wait_for_everyone()
    if hasattr(trainer, "end"):  # transformers >= 5.18: closes trackers and the process group
        trainer.end()


if __name__ == "__main__":
    main()
