#!/usr/bin/env python
"""Regenerate the figure gallery in docs/gallery/ from seeded data.

    .venv/bin/python scripts/make_gallery.py [--out docs/gallery] [--only plot_1d,k_sweep]

Every figure comes from :mod:`dsl_explore.plots` on data from :mod:`dsl_explore.data`
(seeded), with a "reconstruction" made by blurring the target and adding a little smooth noise,
which is how an under-sized autoencoder errs: small extrema vanish (lost) and wiggles appear
(spurious). The history figure needs :mod:`dsl_explore.training` (a short real CPU run); it is
skipped with a message when that module is missing. Static export needs Chromium (kaleido).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from dsl_explore.data import bumps_1d, gaussian_blobs
from dsl_explore.export import export_session, save_figure, save_scene
from dsl_explore.plots import (
    plot_1d,
    plot_2d,
    plot_history,
    plot_k_sweep,
    plot_volume_plotly,
    plot_volume_pyvista,
)

NAMES = ("plot_1d", "plot_2d", "volume_pyvista", "volume_plotly", "history", "k_sweep")


def fake_reconstruction(target: np.ndarray, *, blur: float, noise: float, seed: int) -> np.ndarray:
    """Blur + smooth noise: a stand-in for an autoencoder's output (float32)."""
    rng = np.random.default_rng(seed)
    smooth = gaussian_filter(target.astype(np.float64), blur, mode="nearest")
    wiggle = gaussian_filter(rng.standard_normal(target.shape), max(1.0, blur / 2), mode="wrap")
    wiggle *= noise / max(wiggle.std(), 1e-12)
    return (smooth + wiggle).astype(np.float32)


def data_1d() -> tuple[np.ndarray, np.ndarray]:
    target = bumps_1d(1, 200, n_extrema=10, seed=4)[0, 0]
    return target, fake_reconstruction(target, blur=4.0, noise=0.02, seed=1)


def data_2d() -> tuple[np.ndarray, np.ndarray]:
    target = gaussian_blobs(1, (64, 64), n_blobs=14, sigma=(0.05, 0.12), seed=2)[0, 0]
    return target, fake_reconstruction(target, blur=2.0, noise=0.002, seed=2)


def data_3d() -> tuple[np.ndarray, np.ndarray]:
    target = gaussian_blobs(1, (40, 40, 40), n_blobs=10, sigma=(0.08, 0.16), seed=3)[0, 0]
    return target, fake_reconstruction(target, blur=1.5, noise=0.0, seed=3)


def history_figure():
    """A short real CPU training run's history, or None when dsl_explore.training is missing.

    1D bumps, MSE + lambda DSL with lambda = 0 (plain MSE, DSL still logged) for the first half;
    at the evaluation half-way a listener raises lambda to 1: the change is in the history as an
    event, and the figure marks it.
    """
    if importlib.util.find_spec("dsl_explore.training") is None:
        return None
    from dsl_explore.training import TrainingConfig, TrainingRun

    steps = 600
    cfg = TrainingConfig(
        data="bumps", spatial_dims=1, size=128, n_samples=96, data_options={"n_extrema": 10},
        compression=8, base_channels=8, loss="mse+dsl", lam=0.0, k=50.0, lr=3e-3,
        batch_size=16, steps=steps, eval_every=25, eval_samples=8, seed=0, device="cpu",
    )
    run = TrainingRun(cfg)

    def raise_lambda(snapshot: dict) -> None:
        if snapshot["step"] == steps // 2:
            run.set(lam=1.0)

    run.add_listener(raise_lambda)
    run.start().join()
    run.raise_if_failed()
    return plot_history(
        run.history,
        title=f"training history · 1D bumps, MSE + λ·DSL (k={cfg.k:g}), λ: 0 → 1 at step "
        f"{steps // 2} · CPU, {run.seconds_per_step * 1e3:.0f} ms/step",
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs"
                    / "gallery")
    ap.add_argument("--only", default=",".join(NAMES),
                    help=f"comma-separated subset of {', '.join(NAMES)}")
    args = ap.parse_args(argv)
    only = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(only) - set(NAMES))
    if unknown:
        ap.error(f"unknown figure(s): {', '.join(unknown)}")
    out: Path = args.out
    t1, r1 = data_1d()
    t2, r2 = data_2d()
    t3, r3 = data_3d()
    with export_session():
        for name in only:
            t0 = time.perf_counter()
            if name == "plot_1d":
                fig = plot_1d(t1, r1, k=30.0)
            elif name == "plot_2d":
                fig = plot_2d(t2, r2, k=300.0)
            elif name == "volume_plotly":
                fig = plot_volume_plotly(t3, r3, max_size=40)
            elif name == "k_sweep":
                fig = plot_k_sweep(t2, r2, surrogates=("tanh", "softsign", "arctan", "erf"))
            elif name == "history":
                fig = history_figure()
                if fig is None:
                    print("history: skipped (dsl_explore.training is not there yet)")
                    continue
            else:  # volume_pyvista
                pl = plot_volume_pyvista(t3, r3, window_size=(1400, 720))
                path = save_scene(pl, out / f"{name}.png")
                pl.close()
                print(f"{name}: {path} ({time.perf_counter() - t0:.1f} s)")
                continue
            path = save_figure(fig, out / f"{name}.png", scale=1)
            print(f"{name}: {path} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
