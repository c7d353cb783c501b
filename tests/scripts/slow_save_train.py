"""
`srft train` whose checkpoint saves take `SLOW_SAVE` seconds from step `SLOW_SAVE_FROM` on (a sleep after the RNG
state is written, before the trainer state), so that tests/test_reliability.py can kill the process during a save.

Usage: SLOW_SAVE=30 SLOW_SAVE_FROM=6 python slow_save_train.py --config recipe.yaml [--key value ...]
"""

import os
import sys
import time

from transformers import Trainer


original = Trainer._save_rng_state


def slow_rng_state(self, output_dir):
    original(self, output_dir)
    if self.state.global_step >= int(os.environ.get("SLOW_SAVE_FROM", "0")):
        time.sleep(float(os.environ.get("SLOW_SAVE", "30")))


Trainer._save_rng_state = slow_rng_state

from srft_trainer.train import main  # noqa: E402


sys.exit(main(sys.argv[1:]))
