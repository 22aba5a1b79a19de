"""The notebooks: committed without outputs, and executed end to end with tiny settings.

Each notebook reads ``RELCOMM_NOTEBOOK_TINY``: ``1`` swaps in sklearn digits and the tiny
encoders of ``notebooks/tiny.yaml`` (the same as ``tests/conftest.py``'s, so the session's
trained encoders are reused), briefly trained heads and short runs; results go to
``RELCOMM_NOTEBOOK_RESULTS``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.conftest import TINY

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ("quickstart", "alignment", "tradeoff", "text")
# What each notebook leaves in its results folder when it has run to the end.
PRODUCES = {"quickstart": "quickstart/plots/timeseries.png", "alignment": "mismatch/plots/accuracy_vs_snr.png",
            "tradeoff": "tradeoff/K64-b16/summary.json", "text": "text-mismatch/plots/retrieval.png"}


def _read(name: str):
    nbformat = pytest.importorskip("nbformat")
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def test_every_notebook_is_listed():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_have_no_outputs(name):
    book = _read(name)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: strip the outputs before committing"


def test_tiny_settings_share_the_test_fixtures_encoders():
    tiny = yaml.safe_load((NOTEBOOKS / "tiny.yaml").read_text())
    for section in ("data", "encoders", "anchors"):
        assert tiny[section] == TINY[section], section


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_with_tiny_settings(name, tmp_path, tiny_zoo, monkeypatch):
    pytest.importorskip("ipykernel")
    nbclient = pytest.importorskip("nbclient")
    if name == "text":  # pretrained models: `make setup` installs them (pyproject's models extra)
        pytest.importorskip("sentence_transformers")
    book = _read(name)
    monkeypatch.setenv("RELCOMM_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("RELCOMM_NOTEBOOK_RESULTS", str(tmp_path))
    if os.environ.get("PYTEST_XDIST_WORKER"):
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the other worker has the other core
    client = nbclient.NotebookClient(book, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    assert (tmp_path / PRODUCES[name]).is_file()
    assert not any(o.get("output_type") == "error" for c in book.cells for o in c.get("outputs", []))
