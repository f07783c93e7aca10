"""notebooks/quickstart.ipynb runs end to end (a small slice of WebNLG, a tiny model), so it cannot rot."""

import os
import site
import subprocess
import sys

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
    assert "epoch 2: dev exact" in _text(code[4])  # One dev score per epoch, the selecting one first.
    assert any("image/png" in o.get("data", {}) for o in code[5].outputs)  # The dev-F1 plot.
    assert "Alan Bean was born in Wheeler, Texas." in _text(code[6]) and "exact" in _text(code[6])
    assert os.path.exists(tmp_path / "model" / "extractor.keras")
    assert os.path.exists(tmp_path / "model" / "serving" / "1" / "saved_model.pb")


def test_install_cell_makes_the_package_importable_in_the_same_kernel(tmp_path):
    """A kernel without rin-keras installs it and imports it at once: an editable install is only read when an
    interpreter starts, so the cell puts the checkout on the path itself."""
    notebook = nbformat.read(os.path.join(NOTEBOOKS, "quickstart.ipynb"), as_version=4)
    install = next(c.source for c in notebook.cells if c.cell_type == "code" and "pip" in c.source)
    code = "\n".join([
        "import subprocess, sys",
        f"sys.path += {site.getsitepackages()!r}",  # The dependencies, without the editable install's path.
        "assert __import__('importlib.util').util.find_spec('rin_keras') is None",
        "subprocess.check_call = lambda command: None  # pip, already done.",
        f"REPO_DIR = {os.path.dirname(NOTEBOOKS)!r}",
        install,
        "import rin_keras, serving.contract; print('imported')",
    ])
    run = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.strip() == "imported", run.stderr


def test_install_cell_installs_from_a_kernel_whose_working_folder_is_the_checkout(tmp_path):
    """A checkout in the working folder is importable (a kernel's path holds ""), but not installed: the cell
    still installs the package and its dependencies."""
    os.symlink(os.path.join(os.path.dirname(NOTEBOOKS), "rin_keras"), tmp_path / "rin_keras")  # A fresh clone's.
    notebook = nbformat.read(os.path.join(NOTEBOOKS, "quickstart.ipynb"), as_version=4)
    install = next(c.source for c in notebook.cells if c.cell_type == "code" and "pip" in c.source)
    code = "\n".join([
        "import subprocess, sys",
        "sys.path.insert(0, '')",
        "assert __import__('importlib.util').util.find_spec('rin_keras') is not None",
        "calls = []",
        "subprocess.check_call = calls.append",
        "REPO_DIR = '.'",
        install,
        "print(calls[0][-3:])",
    ])
    run = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.strip() == "['-q', '-e', '.']", run.stderr
