"""The package's shape: what importing the maths pulls in, and the import contracts.

The contracts themselves live in ``pyproject.toml`` (``[tool.importlinter]``) and run in
``make lint``; this module checks them from pytest too, plus what ``sys.modules`` holds after
importing each maths module in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

MATHS = ["loss", "counting", "critical", "topology", "phloss", "registry"]
HIGHER = ("training", "experiments", "plots", "export", "widgets", "notebook", "cli", "run_figures")
UI_LIBRARIES = ("plotly", "ipywidgets", "pyvista", "IPython")


def _modules_after_import(module: str) -> list[str]:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("name", MATHS)
def test_maths_module_imports_no_higher_layer(name):
    loaded = _modules_after_import(f"dsl_explore.{name}")
    higher = [m for m in loaded if m.split(".")[:2][-1] in HIGHER and m.startswith("dsl_explore.")]
    assert higher == [], f"import dsl_explore.{name} loaded {higher}"
    ui = [m for m in loaded if m.split(".")[0] in UI_LIBRARIES]
    assert ui == [], f"import dsl_explore.{name} loaded UI libraries {ui}"


def test_import_contracts_hold():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    if not lint_imports.exists():
        pytest.skip("lint-imports is not installed beside this interpreter")
    out = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_private_names_contract_sees_a_violation(tmp_path, monkeypatch):
    """The custom contract is not vacuous: it reports a private import in a tiny package."""
    pkg = tmp_path / "pkg_priv"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("_hidden = 1\npublic = 2\n")
    (pkg / "b.py").write_text("from pkg_priv.a import _hidden, public\nimport pkg_priv.a as A\n"
                              "x = A._hidden\n")
    (pkg / "c.py").write_text("from pkg_priv.a import public\nfrom . import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.path.insert(0, str(ROOT))
    try:
        from scripts.lint_private_names import private_name_imports
    finally:
        sys.path.remove(str(ROOT))
    mods = {"pkg_priv", "pkg_priv.a", "pkg_priv.b", "pkg_priv.c"}
    assert [t for _, t in private_name_imports("pkg_priv.b", mods)] == [
        "from pkg_priv.a import _hidden", "A._hidden"]
    assert private_name_imports("pkg_priv.c", mods) == []
