"""The notebooks in ``notebooks/``: committed without outputs, and every one runs headless.

Each notebook is executed in process with nbclient, in quick mode (``DSL_EXPLORE_QUICK=1``), in a
kernel started from *this* interpreter (a kernelspec written to a temporary directory whose argv
is ``sys.executable -m ipykernel_launcher``, so the venv's kernel runs whatever ``python`` on
PATH is). Any cell error fails the test; the committed file is read, never written, and its bytes
are checked unchanged afterwards. Figures the notebooks export go to a temporary directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import AsyncKernelManager  # noqa: E402
from jupyter_core.utils import run_sync  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL_NAME = "dsl-explore-test"
CELL_TIMEOUT_S = 300


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_there_are_notebooks():
    names = {p.stem for p in NOTEBOOKS}
    assert {"01_dsl_in_1d", "02_heatmaps_2d", "03_volumes_3d"} <= names, sorted(names)


# --------------------------------------------------------------------------- committed form


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_committed_without_outputs(path: Path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    dirty = [
        (i, cell.get("execution_count"), len(cell.get("outputs", [])))
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    assert not dirty, (
        f"{path.name}: code cells with outputs or execution counts (cell, count, outputs): "
        f"{dirty}; clear them before committing (JupyterLab: Edit > Clear Outputs of All Cells, "
        "or `jupyter nbconvert --clear-output --inplace`)"
    )
    assert "widgets" not in nb.metadata, f"{path.name}: saved widget state in the metadata"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_reads_the_size_switch(path: Path):
    """Every notebook picks its sizes through dsl_explore.notebook (DSL_EXPLORE_QUICK)."""
    source = "\n".join(c.source for c in nbformat.read(str(path), as_version=4).cells
                       if c.cell_type == "code")
    assert "sizes(" in source or "quick_mode(" in source, (
        f"{path.name} should read the size switch through dsl_explore.notebook.sizes/quick_mode"
    )


# ------------------------------------------------------------------------------- execution


@pytest.fixture(scope="module")
def kernel_spec_dir(tmp_path_factory) -> Path:
    """A kernelspec that runs this interpreter's ipykernel, whatever `python` is on PATH."""
    root = tmp_path_factory.mktemp("kernels")
    spec = root / KERNEL_NAME
    spec.mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "dsl_explore test kernel",
        "language": "python",
    }))
    return root


def _kernel_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR"):
        d = tmp / var.lower()
        d.mkdir(parents=True, exist_ok=True)
        env[var] = str(d)
    figures = tmp / "figures"
    figures.mkdir(exist_ok=True)
    env.update(
        DSL_EXPLORE_QUICK="1",
        DSL_EXPLORE_FIGURES=str(figures),
        DSL_EXPLORE_RESULTS_DIR=str(ROOT / "docs" / "results"),  # the committed results (05)
        MPLBACKEND="Agg",
        PYVISTA_OFF_SCREEN="true",
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    return env


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_executes_in_quick_mode(path: Path, tmp_path: Path, kernel_spec_dir: Path):
    before = _sha256(path)
    nb = nbformat.read(str(path), as_version=4)
    ksm = KernelSpecManager(kernel_dirs=[str(kernel_spec_dir)])
    km = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)
    workdir = tmp_path / "run"
    workdir.mkdir()
    client = nbclient.NotebookClient(
        nb, km=km, timeout=CELL_TIMEOUT_S, allow_errors=False, record_timing=True,
        resources={"metadata": {"path": str(workdir)}},
    )
    t0 = time.perf_counter()
    try:
        client.execute(env=_kernel_env(tmp_path))
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{path.name} failed in quick mode:\n{err}", pytrace=False)
    finally:  # the client shuts down only kernels it created itself
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
    elapsed = time.perf_counter() - t0
    print(f"{path.name}: executed in {elapsed:.1f} s (quick mode)")

    # nothing went to stderr as an error, and every code cell ran
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "some code cells did not run"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    # nor as a warning: no cell printed to stderr (VTK's X-server warning, a deprecation, ...)
    stderr = [
        (i, "".join(o.get("text", ""))[:300])
        for i, c in enumerate(nb.cells) if c.cell_type == "code"
        for o in c.outputs if o.output_type == "stream" and o.get("name") == "stderr"
    ]
    assert not stderr, f"{path.name}: stderr output in cells (index, text): {stderr}"
    # the export at the end wrote files
    exported = list((tmp_path / "figures").rglob("*.*"))
    assert exported, f"{path.name} exported no figures"
    assert _sha256(path) == before, f"executing {path.name} changed the committed file"
