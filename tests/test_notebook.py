"""notebooks/quickstart.ipynb runs end to end (a small slice of WebNLG, a tiny model), so it cannot rot."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

from tfds_builders import casrel

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks")


def _run(tmp_path, **parameters):
    notebook = nbformat.read(os.path.join(NOTEBOOKS, "quickstart.ipynb"), as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "\n# Injected by the test:\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": NOTEBOOKS}}).execute()
    return notebook


def _text(cell) -> str:
    return "".join(o.get("text", "") + "".join(o.get("data", {}).get("text/plain", "")) for o in cell.outputs)


@pytest.mark.skipif(not os.path.exists(casrel.default_manual_dir()), reason="needs ../shared/data")
def test_quickstart_runs_on_a_webnlg_slice(tmp_path):
    notebook = _run(
        tmp_path, TFDS_DATA_DIR=str(tmp_path / "tfds"), EPOCHS=2, MAX_TRAIN_SENTENCES=100, PRETRAINED="none",
        MODEL_SIZE={"word_dim": 16, "lstm_units": 8, "hidden_dim": 8, "rounds": 1}, WORK_DIR=str(tmp_path / "model"),
    )
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert "webnlg/exact" in _text(code[2]) and "'train': 5019" in _text(code[2])
    assert "epoch 2: dev partial" in _text(code[4])  # One dev score per epoch.
    assert any("image/png" in o.get("data", {}) for o in code[5].outputs)  # The dev-F1 plot.
    assert "Alan Bean was born in Wheeler, Texas." in _text(code[6]) and "exact" in _text(code[6])
    assert os.path.exists(tmp_path / "model" / "extractor.keras")
    assert os.path.exists(tmp_path / "model" / "serving" / "1" / "saved_model.pb")
