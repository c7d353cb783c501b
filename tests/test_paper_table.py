"""The miniature paper table runs (CI preset: base, GRPO, SRFT, one seed, two steps) and rejects unknown rows."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest


SCRIPT = Path(__file__).parents[1] / "benchmarks" / "paper_table.py"


def load_script():
    spec = importlib.util.spec_from_file_location("paper_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ci_preset_writes_the_table_the_plot_and_the_runs(tmp_path, capsys):
    paper_table = load_script()
    assert paper_table.main(["--ci", "--output-dir", str(tmp_path)]) == 0
    md = (tmp_path / "paper_table.md").read_text()
    rows = {m.group(1): float(m.group(2)) for m in re.finditer(r"^\| ([^|]+?) \| ([\d.]+) ± [\d.]+ \|", md, re.M)}
    assert set(rows) == {"Base model", "RL (GRPO)", "SRFT"}
    assert all(0.0 <= v <= 100.0 for v in rows.values())
    runs = json.loads((tmp_path / "paper_table.json").read_text())
    assert [r["row"] for r in runs] == ["base", "grpo", "srft"]
    for run in runs[1:]:  # trained rows: a curve point per step (eval every step) and a logged entropy
        assert [step for step, _ in run["curve"]] == [1, 2] and run["entropy"] > 0
        assert run["final"] == run["curve"][-1][1]
    assert (tmp_path / "paper_table.png").stat().st_size > 10_000
    assert "| SRFT |" in capsys.readouterr().out  # printed as well


def test_unknown_row_names_the_valid_ones(tmp_path, capsys):
    with pytest.raises(SystemExit):
        load_script().main(["--rows", "srft,ppo", "--output-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert "ppo" in err and "sft_grpo" in err and "srft_no_wrl" in err
