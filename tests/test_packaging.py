"""Packaging, environment and tooling checks (Makefile, scripts/, .ci/run, environment.yml)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]

# conda-forge name -> PyPI name, where they differ.
CONDA_TO_PYPI = {
    "pytorch": "torch",
    "python-kaleido": "kaleido",
    "playwright-python": "playwright",
}
# Entries of environment.yml that are not dependencies of the package.
CONDA_ONLY = {"python", "pip"}
# Extras whose requirements environment.yml must carry (besides `dependencies`).
EXTRAS = ("ui", "kernels", "chunked", "tensorboard", "torchmetrics", "real", "test")
# Modules that `import dsl_explore` must not pull in (they are slow or optional).
HEAVY_MODULES = ("plotly", "ipywidgets", "pyvista", "kaleido", "vtk", "vtkmodules", "triton")


# --------------------------------------------------------------------------- helpers


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pyproject_requirements() -> dict[str, Requirement]:
    project = _pyproject()["project"]
    own_name = canonicalize_name(project["name"])
    lines = list(project["dependencies"])
    for extra in EXTRAS:
        lines += project["optional-dependencies"][extra]
    reqs: dict[str, Requirement] = {}
    for line in lines:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        if name == own_name:  # e.g. "dsl-explore[ui,kernels]" inside `test`
            continue
        assert name not in reqs, f"{name} listed twice in pyproject.toml"
        reqs[name] = req
    return reqs


def _environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _conda_spec(entry: str) -> tuple[str, SpecifierSet]:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", entry)
    assert match, f"cannot parse conda spec {entry!r}"
    return match.group(1).lower(), SpecifierSet(match.group(2).replace(" ", ""))


def _environment_requirements() -> tuple[dict[str, SpecifierSet], list[str], dict[str, str]]:
    """(PyPI name -> specifier, pip option lines, PyPI name -> where it was listed)."""
    specs: dict[str, SpecifierSet] = {}
    where: dict[str, str] = {}
    pip_options: list[str] = []
    for entry in _environment()["dependencies"]:
        if isinstance(entry, dict):
            assert set(entry) == {"pip"}, f"unexpected mapping in dependencies: {entry}"
            for line in entry["pip"]:
                line = line.strip()
                if line.startswith("-"):
                    pip_options.append(line)
                    continue
                req = Requirement(line)
                name = canonicalize_name(req.name)
                assert name not in specs, f"{name} listed twice in environment.yml"
                specs[name], where[name] = req.specifier, "pip"
            continue
        conda_name, spec = _conda_spec(entry)
        if conda_name in CONDA_ONLY:
            specs[conda_name], where[conda_name] = spec, "conda"
            continue
        name = canonicalize_name(CONDA_TO_PYPI.get(conda_name, conda_name))
        assert name not in specs, f"{name} listed twice in environment.yml"
        specs[name], where[name] = spec, "conda"
    return specs, pip_options, where


def _lower_bound(spec: SpecifierSet) -> Version | None:
    bounds = [Version(s.version) for s in spec if s.operator in (">=", "==", "~=")]
    return max(bounds) if bounds else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _jupyter_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR"):
        d = tmp_path / var.lower()
        d.mkdir(parents=True, exist_ok=True)
        env[var] = str(d)
    env.pop("JUPYTER_TOKEN", None)
    env["VENV"] = sys.prefix  # run jupyter from the interpreter running the tests
    env.update(extra)
    return env


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


# --------------------------------------------------------------- environment.yml


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    pyproject = _pyproject_requirements()
    env_specs, _, _ = _environment_requirements()
    env_names = set(env_specs) - CONDA_ONLY
    assert env_names == set(pyproject), (
        f"only in environment.yml: {sorted(env_names - set(pyproject))}; "
        f"only in pyproject.toml: {sorted(set(pyproject) - env_names)}"
    )


def test_environment_yml_lower_bounds_agree_with_pyproject():
    pyproject = _pyproject_requirements()
    env_specs, _, _ = _environment_requirements()
    mismatches = {
        name: (str(req.specifier), str(env_specs[name]))
        for name, req in pyproject.items()
        if name in env_specs and _lower_bound(req.specifier) != _lower_bound(env_specs[name])
    }
    assert not mismatches, f"lower bounds differ (pyproject, environment.yml): {mismatches}"


def test_environment_yml_python_channel_and_editable_install():
    env = _environment()
    assert env["channels"] == ["conda-forge"]
    specs, pip_options, _ = _environment_requirements()
    requires_python = SpecifierSet(_pyproject()["project"]["requires-python"])
    assert _lower_bound(specs["python"]) == _lower_bound(requires_python)
    assert "pip" in specs
    assert any(re.fullmatch(r"(-e|--editable)\s+\.", opt) for opt in pip_options), pip_options


def test_environment_yml_uses_conda_forge_names():
    _, _, where = _environment_requirements()
    for pypi_name in CONDA_TO_PYPI.values():
        # torch/kaleido/playwright come from conda-forge under their conda names.
        assert where.get(pypi_name) == "conda", f"{pypi_name} should be a conda-forge package"


# ------------------------------------------------------------------ import cost


def test_import_dsl_explore_does_not_import_heavy_optional_modules():
    code = "import json, sys; import dsl_explore; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    modules = json.loads(proc.stdout.strip().splitlines()[-1])
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY_MODULES)
    assert not heavy, f"`import dsl_explore` imported {heavy}"


# ------------------------------------------------------------------- scripts/lab


def test_lab_script_generates_a_token_when_empty(tmp_path):
    env = _jupyter_env(tmp_path, PORT="18765", TOKEN="")
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "lab"), "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    url = re.search(r"http://127\.0\.0\.1:18765/lab\?token=(\S*)", proc.stdout)
    assert url, proc.stdout
    assert re.fullmatch(r"[0-9a-f]{48}", url.group(1)), url.group(1)
    command = proc.stdout.split("command:", 1)[1]
    assert "--ip=127.0.0.1" in command
    assert url.group(1) not in command, "the token must not be on the command line"
    assert "token" not in command.lower()
    assert "environment: JUPYTER_TOKEN (set, 48 characters)" in proc.stdout
    assert "--ServerApp.port_retries=0" in command
    assert "0.0.0.0" not in command
    assert ("--allow-root" in command) == (os.geteuid() == 0)


def test_lab_script_keeps_a_given_token(tmp_path):
    env = _jupyter_env(tmp_path, PORT="18766", TOKEN="abc123")
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "lab"), "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "http://127.0.0.1:18766/lab?token=abc123" in proc.stdout


@pytest.mark.slow
def test_lab_script_serves_on_loopback_with_token(tmp_path):
    psutil = pytest.importorskip("psutil")
    port = _free_port()
    token = "t" + os.urandom(12).hex()
    env = _jupyter_env(tmp_path, PORT=str(port), TOKEN=token)
    log_path = tmp_path / "lab.log"
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "lab")],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, _ = _get(f"{base}/api/status?token={token}")
                if status == 200:
                    ready = True
                    break
            except OSError:
                pass
            time.sleep(0.5)
        log_text = log_path.read_text(errors="replace")
        assert ready, f"JupyterLab did not come up (exit={proc.poll()}):\n{log_text[-4000:]}"
        assert f"{base}/lab?token={token}" in log_text

        # Without the token the API refuses; with it (query or header) it answers.
        status, _ = _get(f"{base}/api/status")
        assert status == 403
        status, _ = _get(f"{base}/api/status?token=wrong{token}")
        assert status == 403
        status, body = _get(f"{base}/api/status", {"Authorization": f"token {token}"})
        assert status == 200
        assert "started" in json.loads(body)

        # Every listening socket of the server (and of anything it started) is
        # bound to 127.0.0.1, and one of them is our port.
        server = psutil.Process(proc.pid)
        listening = []
        for p in [server, *server.children(recursive=True)]:
            conns = p.net_connections(kind="inet")
            listening += [c.laddr for c in conns if c.status == psutil.CONN_LISTEN]
        assert port in {addr.port for addr in listening}, listening
        assert {addr.ip for addr in listening} == {"127.0.0.1"}, listening

        # The token is in no process's command line (world-readable in /proc), only in
        # the environment, which /proc shows to the owner alone.
        for p in [server, *server.children(recursive=True)]:
            try:
                cmdline = p.cmdline()  # what /proc/PID/cmdline shows every local user
            except psutil.NoSuchProcess:  # a short-lived child that has already exited
                continue
            assert not any(token in arg for arg in cmdline), cmdline
        assert stat.S_IMODE(os.stat(f"/proc/{proc.pid}/environ").st_mode) & 0o077 == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
    assert proc.returncode is not None


# ------------------------------------------------------- Makefile, .ci/run, scripts


def _executable(path: Path) -> bool:
    return path.is_file() and bool(path.stat().st_mode & stat.S_IXUSR)


@pytest.mark.parametrize("script", [".ci/run", "scripts/lab", "scripts/ensure-browser"])
def test_scripts_are_executable_bash(script):
    path = ROOT / script
    assert _executable(path), f"{script} is not executable"
    assert path.read_text().startswith("#!/usr/bin/env bash\n")
    subprocess.run(["bash", "-n", str(path)], check=True, timeout=30)


def test_ci_run_invokes_make_test_and_propagates_failure():
    text = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in text
    assert re.search(r"^\s*make test\b", text, re.MULTILINE)
    assert "scripts/ensure-browser" in text
    assert not re.search(r"make test[^\n]*\|\|\s*(true|:)", text), "make test failure swallowed"


def test_lab_binds_loopback_only():
    lab = (ROOT / "scripts" / "lab").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "IP=127.0.0.1" in lab and '--ip="$IP"' in lab
    for text in (lab, makefile):
        assert not re.search(r"--(ServerApp\.)?ip[= ]+[\"']?(0\.0\.0\.0|\*|::)", text)
    recipe = re.search(r"^lab:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe and "scripts/lab" in recipe.group(1)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_dry_run_targets(tmp_path):
    # A fake, up-to-date venv so that `make -n` shows only the target's own recipe.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    stamp = venv / ".installed"
    stamp.touch()
    later = (ROOT / "pyproject.toml").stat().st_mtime + 10
    os.utime(stamp, (later, later))

    # Do not inherit an outer `make test`'s flags and command-line variables.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}

    def dry(*args: str) -> str:
        proc = subprocess.run(
            ["make", "-n", "-C", str(ROOT), f"VENV={venv}", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return proc.stdout

    test = dry("test")
    assert "scripts/ensure-browser" in test
    assert 'ruff" check .' in test
    assert "-m pytest -n 2 --dist load" in test
    for var in ("DSL_EXPLORE_QUICK=1", "MPLBACKEND=Agg", "PYVISTA_OFF_SCREEN=true"):
        assert var in test
    lab = dry("lab", "PORT=9123")
    assert 'PORT="9123"' in lab and "scripts/lab" in lab

    os.utime(stamp, (0, 0))  # stale stamp: the install recipe appears
    install = dry("install")
    assert "pip install --no-index --no-deps torch" in install
    assert 'pip install -e ".[test]"' in install


# --------------------------------------------------------------- constraints.txt (the lock)

# Left unpinned on purpose: each machine takes the torch build that suits it.
UNPINNED = {"torch", "triton"}


def _lock() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"constraints.txt: {line!r} is not an exact pin"
        name = canonicalize_name(req.name)
        assert name not in pins, f"{name} pinned twice in constraints.txt"
        pins[name] = Version(spec.version)
    return pins


def test_lock_pins_every_requirement_within_its_range():
    pins = _lock()
    for name, req in _pyproject_requirements().items():
        if name in UNPINNED:
            assert name not in pins, f"{name} must stay unpinned (machine-specific builds)"
            continue
        assert name in pins, f"{name} (pyproject.toml) is not pinned in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject's {req.specifier}")


def test_make_installs_the_lock_by_default_and_unpinned_on_request():
    def dry_run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["make", "-n", "-B", "install", *extra], cwd=ROOT,
                              capture_output=True, text=True)

    pinned, unpinned = dry_run(), dry_run("LOCK=")
    pinned_lines = [ln for ln in pinned.stdout.splitlines() if "pip install -e" in ln]
    unpinned_lines = [ln for ln in unpinned.stdout.splitlines() if "pip install -e" in ln]
    assert pinned_lines, pinned.stdout + pinned.stderr
    assert all('-c "constraints.txt"' in ln for ln in pinned_lines), pinned_lines
    assert unpinned_lines and all("-c" not in ln.split("-e", 1)[1] for ln in unpinned_lines)


def test_make_lab_ensures_a_browser_for_export_like_make_test():
    """PNG/SVG/PDF export from the lab's widgets needs Chromium: `make lab` runs
    scripts/ensure-browser before starting the server, as `make test` does."""
    makefile = (ROOT / "Makefile").read_text()
    for target in ("lab", "test"):
        recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
        assert recipe, target
        lines = recipe.group(1).splitlines()
        assert any("scripts/ensure-browser" in line for line in lines), target
    lab = re.search(r"^lab:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE).group(1)
    assert lab.index("scripts/ensure-browser") < lab.index("scripts/lab")


def test_make_lab_passes_the_quick_switch_to_the_kernels(tmp_path):
    """`DSL_EXPLORE_QUICK=1 make lab` (README): the variable reaches scripts/lab's server,
    whose kernels inherit it; make passes the environment on and scripts/lab keeps it."""
    proc = subprocess.run(
        ["make", "-n", "lab", "VENV=" + str(tmp_path / "venv")], cwd=ROOT, capture_output=True,
        text=True, timeout=60, env={**os.environ, "DSL_EXPLORE_QUICK": "1"}, check=False,
    )
    assert "scripts/ensure-browser" in proc.stdout and "scripts/lab" in proc.stdout, proc.stdout
    assert "env -i" not in (ROOT / "scripts" / "lab").read_text()  # the environment is kept
