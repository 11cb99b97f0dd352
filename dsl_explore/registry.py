r"""The named choices of the kit, each defined once: sign surrogates, reductions, loss kinds.

Sign surrogates
    :data:`SIGN_SURROGATES` maps a name to a :class:`Surrogate`: the integer id that the fused C
    and Triton kernels (:mod:`dsl_explore.kernels`) switch on, the torch function and its formula.
    Every other table is derived from it (:data:`SURROGATES`, :data:`SURROGATE_IDS`), so adding a
    surrogate is one entry here; the torch path takes it at once, and the fused kernels refuse an
    id they have no code for (see :data:`dsl_explore.kernels.FUSED_SURROGATES`).
Reductions
    :data:`REDUCTIONS` for the losses (DSL, its kernels, the persistent-homology loss) and
    :data:`COUNT_REDUCTIONS` for the exact count (the same three names, its default ``"sum"``
    first).
Loss kinds
    :data:`LOSS_KINDS`: the training objectives of :mod:`dsl_explore.training`.

Examples
--------
>>> from dsl_explore.registry import SIGN_SURROGATES, SURROGATES, surrogate_id
>>> list(SURROGATES)
['tanh', 'softsign', 'arctan', 'erf', 'sigmoid']
>>> surrogate_id("erf"), SIGN_SURROGATES["erf"].formula
(3, 'erf(t)')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch
import torch.nn.functional as F

from dsl_explore._validation import check_choice

__all__ = [
    "COUNT_REDUCTIONS",
    "LOSS_KINDS",
    "REDUCTIONS",
    "SIGN_SURROGATES",
    "SURROGATES",
    "SURROGATE_IDS",
    "Surrogate",
    "get_surrogate",
    "surrogate_id",
]

SurrogateFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Surrogate:
    """One smooth sign ``s: R -> (-1, 1)``: odd, increasing, ``s(t) -> sign(t)`` as ``|t|`` grows.

    Attributes
    ----------
    name : str
        The name users pass (``surrogate="tanh"``).
    id : int
        The integer the fused kernels switch on (a ``#define`` in the C source, a ``constexpr``
        in the Triton source). Unique; never reuse one for another function.
    fn : callable
        The torch function, elementwise, differentiable (autograd gives ``s'``).
    formula : str
        ``s(t)`` in words, for documentation and widgets.
    """

    name: str
    id: int
    fn: SurrogateFn
    formula: str


def _arctan(t: torch.Tensor) -> torch.Tensor:
    return torch.atan(t) * (2.0 / math.pi)


def _sigmoid(t: torch.Tensor) -> torch.Tensor:
    return 2.0 * torch.sigmoid(t) - 1.0


def _softsign(t: torch.Tensor) -> torch.Tensor:
    # t = k * D x overflows to +-inf for huge k; inf / (1 + inf) is NaN, so clamp to the finite
    # range first (s(+-max) = +-1 and s'(+-max) = 0, the limits). NaN stays NaN.
    big = torch.finfo(t.dtype).max
    return F.softsign(t.clamp(-big, big))


def _table(*entries: Surrogate) -> Mapping[str, Surrogate]:
    names = [e.name for e in entries]
    ids = [e.id for e in entries]
    if len(set(names)) != len(names) or len(set(ids)) != len(ids):
        raise ValueError(f"surrogate names and ids must be unique, got {names} and {ids}")
    return MappingProxyType({e.name: e for e in entries})


SIGN_SURROGATES: Mapping[str, Surrogate] = _table(
    Surrogate("tanh", 0, torch.tanh, "tanh(t)"),
    Surrogate("softsign", 1, _softsign, "t / (1 + |t|)"),
    Surrogate("arctan", 2, _arctan, "(2/pi) atan(t)"),
    Surrogate("erf", 3, torch.erf, "erf(t)"),
    Surrogate("sigmoid", 4, _sigmoid, "2 sigma(t) - 1 = tanh(t/2)"),
)
"""Every sign surrogate, by name (read-only). The one place to add one."""

SURROGATES: dict[str, SurrogateFn] = {name: e.fn for name, e in SIGN_SURROGATES.items()}
"""Smooth sign surrogates ``s: R -> (-1, 1)``, odd, increasing, tending to ``sign(t)``:
``tanh(t)``, ``softsign(t) = t / (1 + |t|)``, ``arctan(t) = (2/pi) atan(t)``, ``erf(t)`` and
``sigmoid(t) = 2 sigma(t) - 1`` (which equals ``tanh(t/2)``). Name -> torch function, derived from
:data:`SIGN_SURROGATES`."""

SURROGATE_IDS: dict[str, int] = {name: e.id for name, e in SIGN_SURROGATES.items()}
"""Name -> kernel id, derived from :data:`SIGN_SURROGATES`."""

REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")
"""Reductions of the losses (DSL, its fused kernels, the persistent-homology loss): ``"mean"``
averages, ``"sum"`` sums, ``"none"`` keeps one value per sample."""

COUNT_REDUCTIONS: tuple[str, ...] = ("sum", "mean", "none")
"""Reductions of the exact count: the names of :data:`REDUCTIONS`, its default ``"sum"`` first."""

LOSS_KINDS: tuple[str, ...] = ("mse", "mse+dsl", "mse+ph")
"""Training objectives: MSE alone, MSE plus DSL, MSE plus the persistent-homology loss."""


def get_surrogate(name: object) -> Surrogate:
    """The registry entry called ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`SIGN_SURROGATES`.

    Returns
    -------
    Surrogate

    Raises
    ------
    ValueError
        If ``name`` is not a registered surrogate (the message lists them).

    Examples
    --------
    >>> import torch
    >>> get_surrogate("softsign").fn(torch.tensor([1.0, -3.0]))
    tensor([ 0.5000, -0.7500])
    >>> get_surrogate("relu")
    Traceback (most recent call last):
    ...
    ValueError: surrogate must be one of 'tanh', 'softsign', 'arctan', 'erf', 'sigmoid', got 'relu'
    """
    table = SIGN_SURROGATES
    return table[check_choice(name, "surrogate", tuple(table))]


def surrogate_id(name: object) -> int:
    """The kernel id of the surrogate called ``name`` (see :func:`get_surrogate`).

    Raises
    ------
    ValueError
        If ``name`` is not a registered surrogate.

    Examples
    --------
    >>> surrogate_id("tanh")
    0
    """
    return get_surrogate(name).id
