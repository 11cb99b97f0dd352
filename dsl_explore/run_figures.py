"""Every figure of a saved training run, regenerated from its files: ``dsl-explore export RUN_DIR``.

A run directory written by :class:`dsl_explore.training.TrainingRun` (``dsl-explore train``)
holds ``config.toml``, ``history.json`` and ``checkpoints/step_*.pt``. From those this module
rebuilds

- ``history``: the curves of :func:`dsl_explore.plots.plot_history` (loss terms, sign-mismatch
  rate, Betti error, mismatched critical points, with the live setting changes as events);
  a history written before the rate was defined in [0, 1] is rescaled on reading
  (:func:`dsl_explore.training.metrics.upgrade_history`);
- ``reconstruction``: the reconstruction of one sample of the run's *fixed validation batch*
  next to its target, with the mismatched critical points marked and the exact and DSL maps
  (1D: lines, 2D: heatmaps, 3D: the panels of one slice with the 3D critical points on it);
- ``reconstruction_3d`` (3D runs only): a rotatable plotly rendering of the volume.

The model is rebuilt from the newest checkpoint (:func:`dsl_explore.training.load_checkpoint`,
which reads with ``torch.load(weights_only=True)``, and
:func:`dsl_explore.models.model_from_config`); the validation batch is recomputed exactly as
training builds it (:func:`dsl_explore.training.make_training_data`, first ``eval_samples``
validation samples), so the figure shows what the live dashboard showed at that step. The DSL
map uses the run's *live* k, weights and surrogate at the checkpoint.

:func:`reconstruction_figure` builds the figure of :mod:`dsl_explore.plots.recon`, which the
live :class:`~dsl_explore.widgets.TrainingDashboard` shares, so a live view and its exported file
look the same.

Examples
--------
>>> import tempfile, pathlib
>>> from dsl_explore.training import TrainingConfig, train
>>> from dsl_explore.run_figures import export_run
>>> cfg = TrainingConfig(spatial_dims=1, size=32, n_samples=12, steps=2, eval_every=1,
...                      batch_size=4, base_channels=2, compression=4, device="cpu")
>>> with tempfile.TemporaryDirectory() as tmp:
...     _ = train(cfg, run_dir=pathlib.Path(tmp) / "run", progress=False)
...     paths = export_run(pathlib.Path(tmp) / "run", formats=("html",))
...     print([p.name for p in paths])
['history.html', 'reconstruction.html']
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "RunDirError",
    "SavedRun",
    "add_parser",
    "export_run",
    "load_run",
    "reconstruction_figure",
    "run",
    "run_figures",
]

_DATA_FIELDS = (
    "data", "data_path", "data_key", "data_options", "n_samples", "size", "spatial_dims",
    "val_fraction", "data_seed", "compression", "base_channels", "eval_samples",
)
"""Config fields that define the data, the model and the validation batch; config.toml and
the checkpoint must agree on them."""


class RunDirError(ValueError):
    """A run directory is missing, incomplete or corrupt (nothing was written)."""


# --------------------------------------------------------------------------------------------
# the reconstruction figure (shared with the live dashboard)


def reconstruction_figure(
    target: Any,
    recon: Any,
    *,
    k: float = 20.0,
    weights: Sequence[float] | None = None,
    surrogate: str = "tanh",
    slice_index: int | None = None,
    title_prefix: str | None = None,
    max_display: int | None = 512,
    max_markers: int | None = 5000,
    width: int | None = None,
    height: int | None = None,
) -> Any:
    """Reconstruction vs target of one sample, with its mismatched critical points marked.

    - 1D: the two lines with the critical points by kind, the difference-sign strips and the
      per-difference DSL terms (the layout of :func:`dsl_explore.plots.plot_1d`);
    - 2D: target and reconstruction heatmaps with markers, the exact mismatch map and the DSL
      contribution map (the layout of :func:`dsl_explore.plots.plot_2d`);
    - 3D: the same 2D panels for the slice ``slice_index`` along axis 0 (default: the middle),
      with the critical points *of the volume* that lie on that slice; the title gives the
      volume's DSL, exact count and critical-point counts and the slice's counts.

    Parameters
    ----------
    target, recon : numpy.ndarray or torch.Tensor
        A 1-3D field each, of one shape; leading axes of length 1 (batch, channel) are dropped.
    k, weights, surrogate
        The DSL settings of the maps (e.g. a training run's live ones).
    slice_index : int, optional
        3D only: the axis-0 slice shown.
    title_prefix : str, optional
        The first line of the title (e.g. ``"step 200 · validation sample 0"``); the second
        gives DSL, the exact count and the critical-point counts.
    max_display, max_markers
        As in :func:`dsl_explore.plots.plot_2d`.
    width, height : int, optional
        Default size in px (used by export).

    Returns
    -------
    plotly.graph_objects.Figure
        Traces carry ``meta`` roles like :func:`~dsl_explore.plots.plot_1d` /
        :func:`~dsl_explore.plots.plot_2d`.

    Examples
    --------
    >>> import numpy as np
    >>> from dsl_explore.plots import find_traces
    >>> y = np.array([0.0, 1.0, 0.0, 1.0, 0.0]); x = np.array([0.0, 1.0, 2.0, 1.0, 0.0])
    >>> fig = reconstruction_figure(y[None, None], x[None, None], k=50.0, title_prefix="demo")
    >>> fig.layout.title.text.split("<br>")[0]
    'demo'
    >>> [t.name for t in find_traces(fig, role="critical")]
    ['matched (2)', 'spurious (0)', 'lost (2)', 'changed (1)']
    """
    from dsl_explore.plots.recon import build_recon, recon_parts

    p = recon_parts(target, recon, k=k, weights=weights, surrogate=surrogate,
                    slice_index=slice_index, title_prefix=title_prefix,
                    max_display=max_display, max_markers=max_markers)
    return build_recon(p, width=width, height=height)


# --------------------------------------------------------------------------------------------
# reading a run directory


@dataclass
class SavedRun:
    """A run directory read back: config, history, checkpoint and the reconstructed batch.

    Attributes
    ----------
    run_dir : pathlib.Path
        The directory.
    config : TrainingConfig
        From ``config.toml``.
    live_config : TrainingConfig
        The config at the checkpoint (with the live changes of lambda, k, weights, lr).
    history : dict
        From ``history.json`` (or the checkpoint's copy when that file is missing).
    step : int
        The checkpoint's step.
    checkpoint : pathlib.Path
        The checkpoint file read.
    target, reconstruction : numpy.ndarray
        The fixed validation batch ``(n, C, *spatial)`` and the model's reconstruction of it.
    """

    run_dir: Path
    config: Any
    live_config: Any
    history: dict[str, Any]
    step: int
    checkpoint: Path
    target: np.ndarray
    reconstruction: np.ndarray


def _read_config(run_dir: Path) -> Any:
    from dsl_explore.training import TrainingConfig

    path = run_dir / "config.toml"
    if not path.is_file():
        raise RunDirError(
            f"{str(run_dir)!r} is not a training run directory: it has no config.toml "
            "(expected config.toml, history.json and checkpoints/step_*.pt, as written by "
            "`dsl-explore train --run-dir`)"
        )
    try:
        return TrainingConfig.from_toml(path)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise RunDirError(f"run directory {str(run_dir)!r}: config.toml is invalid: {exc}") from exc


def _read_history(run_dir: Path, ckpt: Mapping[str, Any], spatial_dims: int) -> dict[str, Any]:
    """``history.json`` (verified against ``history.json.sha256`` when there is one), or the
    checkpoint's history when the file is missing."""
    from dsl_explore.io import verify_checksum
    from dsl_explore.training.metrics import upgrade_history

    path = run_dir / "history.json"
    raw: bytes | None = None
    if path.is_file():
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise RunDirError(
                f"run directory {str(run_dir)!r}: history.json is corrupt: {exc}"
            ) from exc
        if verify_checksum(path, raw) is False:
            raise RunDirError(
                f"run directory {str(run_dir)!r}: history.json is corrupt: its SHA-256 does not "
                "match history.json.sha256 (it changed after it was written)"
            )
    if raw is None:
        hist = ckpt.get("history")
        if isinstance(hist, dict) and "steps" in hist:
            upgrade_history(hist, spatial_dims=spatial_dims,
                            version=int(ckpt.get("metrics_version", 1)))
            return hist
        raise RunDirError(f"run directory {str(run_dir)!r} has no history.json")
    try:
        hist = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(
            f"run directory {str(run_dir)!r}: history.json is corrupt: {exc}"
        ) from exc
    if not isinstance(hist, dict) or not isinstance(hist.get("steps"), (dict, list)) or \
            not isinstance(hist.get("evals", {}), (dict, list)):
        raise RunDirError(
            f"run directory {str(run_dir)!r}: history.json does not hold a training history "
            "(a JSON object with 'steps' and 'evals')"
        )
    upgrade_history(hist, spatial_dims=spatial_dims, version=int(hist.get("metrics_version", 1)))
    return hist


def load_run(
    run_dir: str | os.PathLike[str], *, data: Any = None, device: str = "cpu"
) -> SavedRun:
    """Read a run directory and reconstruct its fixed validation batch with the saved model.

    Parameters
    ----------
    run_dir : str or os.PathLike
        A directory written by a :class:`~dsl_explore.training.TrainingRun` with a run
        directory (``dsl-explore train --run-dir``).
    data : array, optional
        The training data of a run trained on in-memory data (``config.data == "array"``);
        ignored otherwise.
    device : str
        Where to run the model (``"cpu"``, ``"cuda"``, ``"auto"``).

    Returns
    -------
    SavedRun

    Raises
    ------
    RunDirError
        A missing directory or ``config.toml``, a corrupt ``config.toml`` or ``history.json``,
        no readable checkpoint, a checkpoint from another run, or data that cannot be rebuilt.
    """
    import torch

    from dsl_explore.models import model_from_config
    from dsl_explore.training import (
        CheckpointError,
        TrainingConfig,
        load_checkpoint,
        make_training_data,
        resolve_device,
    )

    root = Path(run_dir)
    if not root.exists():
        raise RunDirError(f"run directory {str(root)!r} does not exist")
    if not root.is_dir():
        raise RunDirError(f"run directory {str(root)!r} is not a directory")
    cfg = _read_config(root)
    try:
        ckpt = load_checkpoint(root)
    except CheckpointError as exc:
        raise RunDirError(f"run directory {str(root)!r}: {exc}") from exc
    history = _read_history(root, ckpt, cfg.spatial_dims)
    try:
        live = TrainingConfig.from_dict(ckpt["config"])
        initial = TrainingConfig.from_dict(ckpt.get("initial_config", ckpt["config"]))
    except (TypeError, ValueError) as exc:
        raise RunDirError(
            f"run directory {str(root)!r}: the checkpoint holds an invalid config: {exc}"
        ) from exc
    mine, theirs = cfg.to_dict(), initial.to_dict()
    differ = [f for f in _DATA_FIELDS if mine[f] != theirs[f]]
    if differ:
        raise RunDirError(
            f"run directory {str(root)!r}: config.toml and the checkpoint "
            f"{Path(ckpt['path']).name} disagree on {', '.join(differ)} (e.g. {differ[0]}: "
            f"{mine[differ[0]]!r} vs {theirs[differ[0]]!r}); the checkpoint is from another run"
        )
    try:
        model = model_from_config(ckpt["model_config"])
        model.load_state_dict(ckpt["model_state"], strict=True)
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunDirError(
            f"run directory {str(root)!r}: cannot rebuild the model from checkpoint "
            f"{Path(ckpt['path']).name}: {first}"
        ) from exc
    if cfg.data == "array" and cfg.data_path is None and data is None:
        raise RunDirError(
            f"run directory {str(root)!r}: the run trained on in-memory data (data = 'array'); "
            "pass the same data (export_run(..., data=array)) to rebuild its validation batch"
        )
    try:
        _, val = make_training_data(cfg, data if cfg.data == "array" else None)
    except (ValueError, TypeError, OSError) as exc:
        raise RunDirError(
            f"run directory {str(root)!r}: cannot rebuild the validation data: {exc}"
        ) from exc
    target = np.ascontiguousarray(val[: min(cfg.eval_samples, val.shape[0])])
    dev = resolve_device(device)
    model = model.to(dev).eval()
    with torch.no_grad():
        rec = model(torch.from_numpy(target).to(dev)).float().cpu().numpy()
    return SavedRun(
        run_dir=root, config=cfg, live_config=live, history=history, step=int(ckpt["step"]),
        checkpoint=Path(ckpt["path"]), target=target, reconstruction=rec,
    )


# --------------------------------------------------------------------------------------------
# figures and export


def _history_title(run: SavedRun) -> str:
    c = run.live_config
    parts = [f"training history · {run.run_dir.name}", f"loss {c.loss}"]
    if c.loss != "mse":
        parts.append(f"λ={c.lam:g}")
    if c.loss == "mse+dsl":
        parts.append(f"k={c.k:g}")
    parts.append(f"{c.spatial_dims}D {'x'.join(map(str, c.size))}")
    return " · ".join(parts)


def run_figures(
    run_dir: str | os.PathLike[str] | SavedRun,
    *,
    sample: int = 0,
    data: Any = None,
    slice_index: int | None = None,
) -> dict[str, Any]:
    """Every figure of a saved run, as ``{file_stem: plotly figure}`` (nothing is written).

    Parameters
    ----------
    run_dir : path or SavedRun
        The run directory (or what :func:`load_run` returned for it).
    sample : int
        Which sample of the fixed validation batch to draw (0 is the one the dashboard shows
        by default).
    data : array, optional
        See :func:`load_run`.
    slice_index : int, optional
        3D runs: the axis-0 slice of the reconstruction figure (default: the middle).

    Returns
    -------
    dict
        ``"history"``, ``"reconstruction"`` and, for 3D runs, ``"reconstruction_3d"``.
    """
    from dsl_explore.plots import plot_history, plot_volume_plotly

    saved = run_dir if isinstance(run_dir, SavedRun) else load_run(run_dir, data=data)
    n = saved.target.shape[0]
    if isinstance(sample, bool) or not isinstance(sample, int) or not 0 <= sample < n:
        raise ValueError(f"sample must be an int in [0, {n - 1}], got {sample!r}")
    live = saved.live_config
    prefix = f"step {saved.step} · validation sample {sample}"
    figs: dict[str, Any] = {
        "history": plot_history(saved.history, title=_history_title(saved)),
        "reconstruction": reconstruction_figure(
            saved.target[sample, 0], saved.reconstruction[sample, 0], k=live.k,
            weights=live.weights, surrogate=live.surrogate, slice_index=slice_index,
            title_prefix=prefix,
        ),
    }
    if saved.target.ndim == 5:
        fig3 = plot_volume_plotly(saved.target[sample, 0], saved.reconstruction[sample, 0])
        fig3.layout.title.text = f"{prefix} · {fig3.layout.title.text}"
        figs["reconstruction_3d"] = fig3
    return figs


def export_run(
    run_dir: str | os.PathLike[str],
    *,
    formats: str | Sequence[str] = ("png",),
    out_dir: str | os.PathLike[str] | None = None,
    sample: int = 0,
    data: Any = None,
    slice_index: int | None = None,
    scale: float | None = None,
) -> list[Path]:
    """Regenerate every figure of a saved training run and write it in each format.

    Everything is read and every figure built before anything is written; the files are then
    written by one :func:`dsl_explore.export.save_figures` call (one browser for all static
    images, each file atomic).

    Parameters
    ----------
    run_dir : str or os.PathLike
        The run directory (``config.toml``, ``history.json``, ``checkpoints/step_*.pt``).
    formats : str or sequence of str
        Any of ``"png"``, ``"svg"``, ``"pdf"``, ``"html"`` (a comma-separated string works
        too). Static formats need Chrome/Chromium; HTML needs nothing.
    out_dir : str or os.PathLike, optional
        Where the files go; default ``run_dir/figures``. Created when missing, and removed
        again (with what was written into it) when the export fails, e.g. on a full disk.
    sample, data, slice_index
        See :func:`run_figures`.
    scale : float, optional
        Resolution factor of the static images.

    Returns
    -------
    list of pathlib.Path
        The files written: ``history.<fmt>``, ``reconstruction.<fmt>`` (and
        ``reconstruction_3d.<fmt>`` for 3D runs), figure by figure.

    Raises
    ------
    RunDirError
        A missing, incomplete or corrupt run directory (see :func:`load_run`); nothing is
        written.
    ValueError
        An unknown format or a bad ``sample``; nothing is written.
    dsl_explore.export.BrowserNotFoundError
        Static formats without a browser (nothing is written).

    Examples
    --------
    >>> export_run("runs/demo", formats=("png", "pdf"))  # doctest: +SKIP
    [PosixPath('runs/demo/figures/history.png'), PosixPath('runs/demo/figures/history.pdf'), ...]
    """
    from dsl_explore.export import FIGURE_FORMATS, save_figures

    fmts = _parse_formats(formats, FIGURE_FORMATS)
    figs = run_figures(run_dir, sample=sample, data=data, slice_index=slice_index)
    out = Path(run_dir) / "figures" if out_dir is None else Path(out_dir)
    created = _missing_dirs(out)
    try:
        return save_figures(figs, out, formats=fmts, scale=scale)
    except BaseException:
        _undo_created(created, [f"{name}.{fmt}" for name in figs for fmt in fmts])
        raise


def _missing_dirs(d: Path) -> list[Path]:
    """``d`` and those of its parents that do not exist yet, deepest first."""
    missing: list[Path] = []
    while not d.exists() and d != d.parent:
        missing.append(d)
        d = d.parent
    return missing


def _undo_created(created: list[Path], names: list[str]) -> None:
    """After a failed export: remove the directories it created (deepest first) with the
    files it wrote into the newest one, so that no empty or half-filled output is left."""
    from dsl_explore.io import is_temp_name

    if not created:
        return
    with contextlib.suppress(OSError):
        for f in created[0].iterdir():
            if f.name in names or is_temp_name(f.name):
                f.unlink()
    for d in created:
        with contextlib.suppress(OSError):
            d.rmdir()  # only when empty


def _parse_formats(formats: str | Sequence[str], allowed: Sequence[str]) -> tuple[str, ...]:
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    out: list[str] = []
    for f in items:
        if not isinstance(f, str):
            raise TypeError(f"formats must hold str, got {type(f).__name__}")
        f = f.strip().lower().lstrip(".")
        if not f:
            continue
        if f not in allowed:
            raise ValueError(
                f"unknown format {f!r}; choose from {', '.join(allowed)}"
            )
        if f not in out:
            out.append(f)
    if not out:
        raise ValueError(f"no format given; choose from {', '.join(allowed)}")
    return tuple(out)


# --------------------------------------------------------------------------------------------
# command line


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``export RUN_DIR --format png,svg,pdf,html [--out DIR]`` to a subparsers object."""
    p = subparsers.add_parser(
        "export",
        help="regenerate every figure of a saved training run (history, reconstruction)",
        description=(
            "Regenerate every figure of a training run directory from its config.toml, "
            "history.json and newest checkpoint: the history curves and the reconstruction of "
            "the fixed validation sample (and a 3D view for 3D runs). Static formats need "
            "Chrome/Chromium (apt-get install chromium)."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="the run directory")
    p.add_argument("--format", dest="formats", default="png",
                   help="comma-separated formats among png,svg,pdf,html (default: png)")
    p.add_argument("--out", type=Path, default=None,
                   help="output directory (default: RUN_DIR/figures)")
    p.add_argument("--sample", type=int, default=0,
                   help="sample of the fixed validation batch to draw (default: 0)")
    p.add_argument("--slice", dest="slice_index", type=int, default=None,
                   help="3D runs: the axis-0 slice of the reconstruction figure (default: middle)")
    p.add_argument("--scale", type=float, default=None, help="resolution factor of the images")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Handle ``dsl-explore export``: print the files written; returns the exit status.

    Bad input (:class:`RunDirError`, an unknown format) is raised as ``ValueError`` for the
    CLI's one-line error (status 2); an export failure (no browser, a crashed browser) prints
    one line and returns 1.
    """
    from dsl_explore.export import ExportError

    try:
        paths = export_run(args.run_dir, formats=args.formats, out_dir=args.out,
                           sample=args.sample, slice_index=args.slice_index, scale=args.scale)
    except ExportError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"dsl-explore: export failed: {first}", file=sys.stderr)
        return 1
    for p in paths:
        print(p)
    return 0

