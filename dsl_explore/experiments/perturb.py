r"""Perturbations of targets for the proxy study: the four classic families, and two families
that decouple error size (MSE) from topology.

Classic families (:data:`PERTURBATIONS`, :func:`perturb`): Gaussian noise, Gaussian blur,
quantisation and smooth warps. Along each, MSE and topological damage grow together, so a
correlation of DSL with a topology metric there cannot tell topology from error size.

*Fixed MSE, topology varies* (:data:`FIXED_MSE_VARIANTS`, :func:`fixed_mse`): one RMS budget
``r`` spent as error fields ``e`` of different roughness,

.. math:: x = y + r\,\frac{e}{\sqrt{\overline{e^2}}}, \qquad \overline{(x - y)^2} = r^2

(to float64 rounding), with ``e`` the target's own contrast :math:`y - \bar y` (a monotone map,
no sign of any difference changes), Gaussian-smoothed white noise of correlation length
``sigma`` (large: few new extrema; small: many), white noise and a checkerboard (the roughest
field: every difference moves by :math:`\pm 2r`).

*Fixed topology, MSE varies* (:data:`FIXED_TOPOLOGY_VARIANTS`, :func:`monotone`): strictly
increasing maps of the values, :math:`x = g(y)`, so every finite difference keeps its sign
(exact count 0, the same axis-wise critical points) while MSE grows: offsets :math:`y + b`,
contrast :math:`\bar y + a (y - \bar y)` and gamma curves on the target's range,
:math:`\min y + (\max y - \min y)\,u^\gamma` with :math:`u = (y - \min y) / (\max y - \min y)`.

Examples
--------
>>> y = np.linspace(0.0, 1.0, 16) ** 2
>>> x = fixed_mse(y, "white", 0.0, rms=0.05, rng=np.random.default_rng(0))
>>> bool(np.isclose(np.mean((x - y) ** 2), 0.05**2, rtol=1e-12, atol=0))
True
>>> x = monotone(y, "gamma", 2.0)
>>> bool(np.all(np.sign(np.diff(x)) == np.sign(np.diff(y))))
True
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FIXED_MSE_VARIANTS",
    "FIXED_TOPOLOGY_VARIANTS",
    "PERTURBATIONS",
    "fixed_mse",
    "monotone",
    "perturb",
]

PERTURBATIONS: dict[str, tuple[float, ...]] = {
    "noise": (0.005, 0.01, 0.02, 0.05, 0.1),
    "blur": (0.5, 1.0, 2.0, 3.0),
    "quantise": (64, 16, 8, 4),
    "warp": (0.5, 1.0, 2.0, 4.0),
}
"""Perturbation families and their levels: Gaussian noise std (data in [0, 1]), Gaussian blur
sigma (pixels), quantisation levels, smooth-warp displacement amplitude (pixels)."""

FIXED_MSE_VARIANTS: tuple[tuple[str, float], ...] = (
    ("contrast", 0.0),
    ("smooth", 8.0),
    ("smooth", 4.0),
    ("smooth", 2.0),
    ("smooth", 1.0),
    ("smooth", 0.5),
    ("white", 0.0),
    ("checker", 0.0),
)
"""The error fields of the fixed-MSE family, ``(kind, sigma)``, from smoothest to roughest:
the target's contrast, smoothed white noise (correlation length ``sigma`` in pixels), white
noise, a checkerboard. ``sigma`` is used by ``"smooth"`` only."""

FIXED_TOPOLOGY_VARIANTS: tuple[tuple[str, float], ...] = (
    ("offset", 0.05),
    ("offset", 0.1),
    ("offset", 0.2),
    ("contrast", 1.25),
    ("contrast", 1.5),
    ("contrast", 2.0),
    ("gamma", 1.25),
    ("gamma", 1.5),
    ("gamma", 2.0),
    ("gamma", 3.0),
)
"""The monotone maps of the fixed-topology family, ``(kind, parameter)``: offset ``b``,
contrast gain ``a`` about the mean, gamma exponent."""


def perturb(y: np.ndarray, family: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """One classic perturbation of a target (a family of :data:`PERTURBATIONS` at a level).

    Parameters
    ----------
    y
        The target, a 1-3D float array (values in [0, 1] for the noise and quantise levels to
        mean what they say).
    family, level
        A key of :data:`PERTURBATIONS` and a level of it (any positive value works).
    rng
        Source of the noise and warp fields.

    Returns
    -------
    numpy.ndarray
        ``x``, same shape as ``y``.

    Raises
    ------
    ValueError
        If ``family`` is not one of :data:`PERTURBATIONS`.

    Examples
    --------
    >>> y = np.linspace(0.0, 1.0, 8)
    >>> perturb(y, "quantise", 2, np.random.default_rng(0)).tolist()
    [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    """
    from scipy import ndimage

    if family == "noise":
        return y + rng.normal(0.0, level, size=y.shape)
    if family == "blur":
        return ndimage.gaussian_filter(y, sigma=level, mode="nearest")
    if family == "quantise":
        n = int(level)
        return np.round(y * (n - 1)) / (n - 1)
    if family == "warp":
        # a smooth random displacement field (Gaussian-smoothed noise), amplitude in pixels
        smooth = max(2.0, min(y.shape) / 6)
        coords = np.meshgrid(*(np.arange(s, dtype=np.float64) for s in y.shape), indexing="ij")
        warped = []
        for c in coords:
            field = ndimage.gaussian_filter(rng.standard_normal(y.shape), smooth, mode="wrap")
            field *= level / max(np.abs(field).max(), 1e-12)
            warped.append(c + field)
        return ndimage.map_coordinates(y, warped, order=3, mode="nearest")
    raise ValueError(f"family must be one of {sorted(PERTURBATIONS)}, got {family!r}")


def _error_field(y: np.ndarray, kind: str, sigma: float, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage

    if kind == "contrast":
        return y - y.mean()
    if kind == "smooth":
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0 for a smooth error field, got {sigma!r}")
        return ndimage.gaussian_filter(rng.standard_normal(y.shape), sigma, mode="wrap")
    if kind == "white":
        return rng.standard_normal(y.shape)
    if kind == "checker":
        return (-1.0) ** np.indices(y.shape).sum(axis=0)
    kinds = sorted({k for k, _ in FIXED_MSE_VARIANTS})
    raise ValueError(f"kind must be one of {kinds}, got {kind!r}")


def fixed_mse(
    y: np.ndarray, kind: str, sigma: float, *, rms: float, rng: np.random.Generator
) -> np.ndarray:
    r"""``y`` plus an error field of kind ``kind`` scaled to RMS ``rms`` exactly.

    .. math:: x = y + \mathrm{rms}\, e / \sqrt{\overline{e^2}}

    so :math:`\overline{(x - y)^2} = \mathrm{rms}^2` to float64 rounding, whatever the kind.

    Parameters
    ----------
    y
        The target, a 1-3D float array, not constant (for ``"contrast"``).
    kind, sigma
        A variant of :data:`FIXED_MSE_VARIANTS`: ``"contrast"`` (:math:`e = y - \bar y`, a
        monotone map), ``"smooth"`` (white noise smoothed with a Gaussian of std ``sigma``
        pixels, periodic), ``"white"``, ``"checker"`` (:math:`\pm 1` alternating along every
        axis). ``sigma`` is used by ``"smooth"`` only.
    rms
        The RMS of the error, > 0 (data in [0, 1]: e.g. 0.02).
    rng
        Source of the noise fields.

    Returns
    -------
    numpy.ndarray
        ``x`` (float64), same shape as ``y``.

    Raises
    ------
    ValueError
        If ``kind`` is unknown, ``rms`` is not > 0, ``sigma`` is not > 0 for ``"smooth"`` or
        the error field is 0 (a constant target with ``"contrast"``).

    Examples
    --------
    >>> y = np.array([0.0, 0.5, 1.0, 0.5])
    >>> fixed_mse(y, "checker", 0.0, rms=0.1, rng=np.random.default_rng(0)).tolist()
    [0.1, 0.4, 1.1, 0.4]
    """
    if not (isinstance(rms, (int, float)) and rms > 0 and np.isfinite(rms)):
        raise ValueError(f"rms must be a finite number > 0, got {rms!r}")
    y = np.asarray(y, np.float64)
    e = _error_field(y, kind, sigma, rng)
    norm = float(np.sqrt(np.mean(e * e)))
    if not norm > 0:
        raise ValueError(f"the {kind!r} error field of this target is 0 (is the target constant?)")
    return y + e * (rms / norm)


def monotone(y: np.ndarray, kind: str, param: float) -> np.ndarray:
    r"""A strictly increasing map of the values of ``y``: every finite difference keeps its sign.

    ``"offset"``: :math:`y + b`; ``"contrast"``: :math:`\bar y + a (y - \bar y)`, ``a > 0``;
    ``"gamma"``: :math:`\min y + (\max y - \min y)\,u^\gamma`,
    :math:`u = (y - \min y)/(\max y - \min y)`, ``gamma > 0`` (the range is kept).

    Parameters
    ----------
    y
        The target, a 1-3D float array (not constant for ``"gamma"``).
    kind, param
        A variant of :data:`FIXED_TOPOLOGY_VARIANTS`.

    Returns
    -------
    numpy.ndarray
        ``x = g(y)`` (float64), same shape. The signs are kept exactly as long as float64
        rounding keeps distinct values distinct, which holds for data on a float32 grid in
        [0, 1] (the kit's data sets); two values closer than the rounding of ``g`` (e.g.
        ``1e-300`` and ``0`` under an offset) become equal.

    Raises
    ------
    ValueError
        If ``kind`` is unknown, ``param`` is not > 0 for ``"contrast"``/``"gamma"``, or the
        target is constant for ``"gamma"``.

    Examples
    --------
    >>> monotone(np.array([0.0, 0.25, 1.0]), "gamma", 2.0).tolist()
    [0.0, 0.0625, 1.0]
    """
    y = np.asarray(y, np.float64)
    if kind == "offset":
        return y + param
    if kind in ("contrast", "gamma") and not param > 0:
        raise ValueError(f"param must be > 0 for {kind!r}, got {param!r}")
    if kind == "contrast":
        m = y.mean()
        return m + param * (y - m)
    if kind == "gamma":
        lo, hi = float(y.min()), float(y.max())
        if not hi > lo:
            raise ValueError("y must not be constant for a gamma map")
        return lo + (hi - lo) * ((y - lo) / (hi - lo)) ** param
    kinds = sorted({k for k, _ in FIXED_TOPOLOGY_VARIANTS})
    raise ValueError(f"kind must be one of {kinds}, got {kind!r}")
