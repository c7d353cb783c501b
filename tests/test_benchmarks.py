"""The benchmark scripts run end to end in their tiny modes, so they do not rot (their numbers are not asserted)."""

import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_overhead_script_tiny():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "overhead.py"), "--tiny"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    table = [line for line in out.stdout.splitlines() if line.startswith("| ") and "SRFT / GRPO" not in line]
    assert [line.split(" | ")[0] for line in table] == [
        "| loss path (compute_loss + backward)",
        "| full step (generation + loss + backward)",
        "| peak memory (RSS)",
        "| forward passes per micro-batch (loss path)",
        "| loss path, released-code variant (srft_official)",
        "| forward passes per micro-batch, released-code variant",
    ]
    assert "| 1  | 1  | 1.000 |" in table[3] and "| 1  | 1  | 1.000 |" in table[5]  # one forward pass each
