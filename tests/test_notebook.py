"""examples/notebooks/srft_quickstart.ipynb, executed as a user runs it (nbclient, a real kernel), with a few steps."""

import json
from pathlib import Path

import pytest


NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "notebooks" / "srft_quickstart.ipynb"


def test_notebook_is_stored_without_outputs():
    notebook = json.loads(NOTEBOOK.read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code and all(not cell["outputs"] and cell["execution_count"] is None for cell in code)
    assert any("parameters" in cell["metadata"].get("tags", []) for cell in code)
    assert any("push_to_hub" in "".join(cell["source"]) for cell in code)


@pytest.mark.slow
def test_notebook_runs_end_to_end(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = next(cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", []))
    parameters.source = (
        f"MAX_STEPS = 2\nHELDOUT_PROBLEMS = 8\nWORLD_DIR = {str(tmp_path / 'world')!r}\n"
        f"OUTPUT_DIR = {str(tmp_path / 'out')!r}"
    )
    nbclient.NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    printed = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "held-out accuracy:" in printed and "(2 steps)" in printed
    images = [o for cell in notebook.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 1  # the curves, drawn inline
    assert (tmp_path / "out" / "model.safetensors").exists()
