r"""Small convolutional autoencoders for 1-D signals, 2-D fields and 3-D volumes.

:class:`ConvAutoencoder` takes the **compression ratio** as a parameter: the number of input
values divided by the number of latent values. The encoder has ``depth`` stride-2 stages, each
halving every spatial axis, and ends in ``latent_channels`` channels, so for an input with
``C`` channels and ``S`` spatial values

.. math::

    \text{ratio} = \frac{C \cdot S}{\text{latent\_channels} \cdot S / 2^{d \cdot
    \text{depth}}} = \frac{C \cdot 2^{d \cdot \text{depth}}}{\text{latent\_channels}},

for every valid input size (the model is fully convolutional). A ratio ``r`` is realised
exactly by ``latent_channels = C * 2**(d * depth) / r``, which must be a whole number >= 1; with
one input channel that means ``r`` is a power of two (4, 8, 16, 32, 64, ...). Without an
explicit ``depth`` the smallest depth >= 2 that realises ``r`` is used: the latent with the
finest resolution and the fewest channels. Inputs must have every spatial size a multiple of
``2**depth``; other sizes are rejected with a :class:`ValueError` that says which are valid.

The networks are deliberately small (about 10k-450k parameters with ``base_channels`` 8-16) so
that 1-D 256, 2-D 32x32 or 3-D 16^3 data trains in seconds on a CPU, and larger sizes in
minutes on a GPU. :func:`model_config` and :func:`model_from_config` turn a model into a JSON
dict of its constructor arguments and back, for checkpoints.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from dsl_explore._validation import check_int

__all__ = [
    "ConvAutoencoder",
    "build_model",
    "model_config",
    "model_from_config",
    "valid_compressions",
]

MAX_DEPTH = 8
"""The deepest encoder (number of stride-2 stages) a model may have."""

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_T = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_CONFIG_KEYS = ("spatial_dims", "in_channels", "compression", "base_channels", "depth")
_MODEL_NAME = "ConvAutoencoder"



def _check_spatial_dims(spatial_dims: object) -> int:
    if isinstance(spatial_dims, bool) or not isinstance(spatial_dims, numbers.Integral):
        raise TypeError(f"spatial_dims must be 1, 2 or 3, got {type(spatial_dims).__name__}")
    if spatial_dims not in (1, 2, 3):
        raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
    return int(spatial_dims)


def _latent_channels(spatial_dims: int, in_channels: int, compression: int, depth: int) -> int:
    """Latent channels realising ``compression`` exactly at ``depth``; 0 if none does."""
    total = in_channels * 2 ** (spatial_dims * depth)
    return total // compression if total % compression == 0 else 0


def valid_compressions(
    spatial_dims: int, *, in_channels: int = 1, depth: int | None = None, limit: int = 4096
) -> list[int]:
    """The compression ratios up to ``limit`` that :class:`ConvAutoencoder` realises exactly.

    Parameters
    ----------
    spatial_dims
        1, 2 or 3.
    in_channels
        Input channels.
    depth
        A fixed number of stride-2 stages, or ``None`` for any depth in ``1..MAX_DEPTH``.
    limit
        Largest ratio listed.

    Returns
    -------
    list of int
        Increasing ratios ``r <= limit``.

    Examples
    --------
    >>> valid_compressions(1, limit=64)
    [1, 2, 4, 8, 16, 32, 64]
    >>> valid_compressions(2, depth=1)
    [1, 2, 4]
    >>> valid_compressions(1, in_channels=3, limit=16)
    [1, 2, 3, 4, 6, 8, 12, 16]
    """
    spatial_dims = _check_spatial_dims(spatial_dims)
    in_channels = check_int(in_channels, "in_channels", minimum=1)
    limit = check_int(limit, "limit", minimum=1)
    depths = (
        range(1, MAX_DEPTH + 1)
        if depth is None
        else (check_int(depth, "depth", minimum=1, maximum=MAX_DEPTH),)
    )
    return [
        r
        for r in range(1, limit + 1)
        if any(_latent_channels(spatial_dims, in_channels, r, d) for d in depths)
    ]


def _compression_error(spatial_dims: int, in_channels: int, compression: int, depth: int | None):
    valid = valid_compressions(spatial_dims, in_channels=in_channels, depth=depth)
    at = "" if depth is None else f" with depth={depth}"
    return ValueError(
        f"compression={compression} cannot be realised exactly by a {spatial_dims}-D "
        f"autoencoder with in_channels={in_channels}{at}: it needs in_channels * "
        f"2**(spatial_dims * depth) / compression to be a whole number of latent channels. "
        f"Valid ratios up to 4096: {', '.join(str(r) for r in valid)}"
    )


def _stage_channels(base_channels: int, depth: int) -> list[int]:
    return [min(base_channels * 2 ** (i + 1), base_channels * 4) for i in range(depth)]


class ConvAutoencoder(nn.Module):
    """A convolutional autoencoder with an exact compression ratio, for 1-D, 2-D or 3-D data.

    Encoder: a 3-wide conv to ``base_channels``, then ``depth`` stages of (stride-2 conv, GELU,
    conv, GELU) doubling the channels up to ``4 * base_channels``, then a linear 1-wide conv to
    ``latent_channels``. Decoder: the mirror image with transposed convolutions (kernel 4,
    stride 2, exact doubling), ending in a linear conv to ``in_channels`` (no sigmoid, no
    clamping).

    Parameters
    ----------
    spatial_dims
        1, 2 or 3: inputs are ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``.
    in_channels
        Channels ``C`` of the input (and the output).
    compression
        Input values per latent value (an int >= 1). It must be realisable: see the module
        docstring and :func:`valid_compressions` (with one channel: powers of two).
    base_channels
        Width of the first and last layers (>= 1); 8-16 keeps the model small.
    depth
        Number of stride-2 stages (1..8), or ``None`` for the smallest depth >= 2 that realises
        ``compression``. Inputs need spatial sizes that are multiples of ``2**depth``.

    Raises
    ------
    ValueError
        For a ratio that cannot be realised (the message lists the valid ones) or an argument
        out of range.
    TypeError
        For arguments of the wrong type.

    Examples
    --------
    >>> import torch
    >>> model = ConvAutoencoder(2, compression=16, base_channels=8)
    >>> model.depth, model.latent_channels, model.size_multiple
    (2, 1, 4)
    >>> model.latent_shape((32, 32))
    (1, 8, 8)
    >>> model(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 1, 32, 32])
    >>> model(torch.zeros(2, 1, 30, 32))
    Traceback (most recent call last):
    ...
    ValueError: input spatial size (30, 32) is not valid for this model: ...
    """

    def __init__(
        self,
        spatial_dims: int,
        *,
        in_channels: int = 1,
        compression: int = 16,
        base_channels: int = 16,
        depth: int | None = None,
    ) -> None:
        super().__init__()
        d = _check_spatial_dims(spatial_dims)
        in_channels = check_int(in_channels, "in_channels", minimum=1)
        compression = check_int(compression, "compression", minimum=1)
        base_channels = check_int(base_channels, "base_channels", minimum=1)
        if depth is None:
            found = [
                k
                for k in range(1, MAX_DEPTH + 1)
                if _latent_channels(d, in_channels, compression, k)
            ]
            if not found:
                raise _compression_error(d, in_channels, compression, None)
            depth = max(2, found[0])
        else:
            depth = check_int(depth, "depth", minimum=1, maximum=MAX_DEPTH)
        latent = _latent_channels(d, in_channels, compression, depth)
        if not latent:
            raise _compression_error(d, in_channels, compression, depth)

        self._spatial_dims = d
        self._in_channels = in_channels
        self._compression = compression
        self._base_channels = base_channels
        self._depth = depth
        self._latent_channels = latent

        conv, conv_t = _CONV[d], _CONV_T[d]
        chans = _stage_channels(base_channels, depth)
        enc: list[nn.Module] = [conv(in_channels, base_channels, 3, padding=1), nn.GELU()]
        prev = base_channels
        for c in chans:
            enc += [
                conv(prev, c, 3, stride=2, padding=1),
                nn.GELU(),
                conv(c, c, 3, padding=1),
                nn.GELU(),
            ]
            prev = c
        enc.append(conv(prev, latent, 1))
        dec: list[nn.Module] = [conv(latent, prev, 3, padding=1), nn.GELU()]
        for i in reversed(range(depth)):
            nxt = chans[i - 1] if i > 0 else base_channels
            dec += [
                conv_t(chans[i], nxt, 4, stride=2, padding=1),
                nn.GELU(),
                conv(nxt, nxt, 3, padding=1),
                nn.GELU(),
            ]
        dec.append(conv(base_channels, in_channels, 3, padding=1))
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    # -- properties ----------------------------------------------------------------------------

    @property
    def spatial_dims(self) -> int:
        """Number of spatial axes (1, 2 or 3)."""
        return self._spatial_dims

    @property
    def in_channels(self) -> int:
        """Channels of the input and the output."""
        return self._in_channels

    @property
    def compression(self) -> int:
        """Input values per latent value, exact for every valid input size."""
        return self._compression

    @property
    def base_channels(self) -> int:
        """Width of the first and last layers."""
        return self._base_channels

    @property
    def depth(self) -> int:
        """Number of stride-2 stages."""
        return self._depth

    @property
    def latent_channels(self) -> int:
        """Channels of the latent code."""
        return self._latent_channels

    @property
    def size_multiple(self) -> int:
        """Every spatial size of the input must be a multiple of this (``2**depth``)."""
        return 2**self._depth

    @property
    def min_size(self) -> int:
        """The smallest valid spatial size (``2**depth``)."""
        return 2**self._depth

    def extra_repr(self) -> str:
        return (
            f"spatial_dims={self.spatial_dims}, in_channels={self.in_channels}, "
            f"compression={self.compression}, base_channels={self.base_channels}, "
            f"depth={self.depth}, latent_channels={self.latent_channels}"
        )

    # -- shapes --------------------------------------------------------------------------------

    def _check_spatial(self, spatial: tuple[int, ...]) -> None:
        m = self.size_multiple
        if len(spatial) != self.spatial_dims or any(s < m or s % m for s in spatial):
            raise ValueError(
                f"input spatial size {spatial} is not valid for this model: it needs "
                f"{self.spatial_dims} spatial axes, each a positive multiple of "
                f"2**depth = {m} (e.g. {m}, {2 * m}, {4 * m}, ...); resize or crop the data, "
                f"or build the model with a smaller depth"
            )

    def check_input_shape(self, shape: Sequence[int]) -> None:
        """Raise ValueError unless ``shape`` is a valid input shape ``(N, C, *spatial)``.

        Valid: ``2 + spatial_dims`` axes, ``C == in_channels``, every spatial size a positive
        multiple of :attr:`size_multiple`.

        Examples
        --------
        >>> ConvAutoencoder(1, compression=8).check_input_shape((4, 1, 64))
        >>> ConvAutoencoder(1, compression=8).check_input_shape((4, 1, 60))
        Traceback (most recent call last):
        ...
        ValueError: input spatial size (60,) is not valid for this model: ...
        """
        shape = tuple(int(s) for s in shape)
        want = 2 + self.spatial_dims
        names = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}[self.spatial_dims]
        if len(shape) != want:
            raise ValueError(
                f"input must have shape {names} ({want} axes) for a {self.spatial_dims}-D model, "
                f"got shape {shape}"
            )
        if shape[1] != self.in_channels:
            raise ValueError(
                f"input must have in_channels={self.in_channels} channels on axis 1, "
                f"got shape {shape}"
            )
        self._check_spatial(shape[2:])

    def latent_shape(self, input_spatial_size: int | Sequence[int]) -> tuple[int, ...]:
        """Per-sample latent shape ``(latent_channels, *spatial)`` for an input spatial size.

        Parameters
        ----------
        input_spatial_size
            One size for every spatial axis (an ``int``) or one per axis.

        Examples
        --------
        >>> ConvAutoencoder(3, compression=8).latent_shape(16)
        (8, 4, 4, 4)
        """
        if isinstance(input_spatial_size, numbers.Integral) and not isinstance(
            input_spatial_size, bool
        ):
            spatial = (int(input_spatial_size),) * self.spatial_dims
        elif isinstance(input_spatial_size, Sequence) and not isinstance(
            input_spatial_size, (str, bytes)
        ):
            spatial = tuple(int(s) for s in input_spatial_size)
        else:
            raise TypeError(
                "input_spatial_size must be an int or a sequence of ints, "
                f"got {type(input_spatial_size).__name__}"
            )
        self._check_spatial(spatial)
        m = self.size_multiple
        return (self.latent_channels, *(s // m for s in spatial))

    # -- forward -------------------------------------------------------------------------------

    def _check_input(self, x: object) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        self.check_input_shape(x.shape)
        return x

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent code ``(N, latent_channels, *spatial / 2**depth)`` of ``x``."""
        return self.encoder(self._check_input(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``(N, in_channels, *spatial * 2**depth)`` from a latent code."""
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"z must be a torch.Tensor, got {type(z).__name__}")
        if z.ndim != 2 + self.spatial_dims or z.shape[1] != self.latent_channels:
            raise ValueError(
                f"z must have shape (N, {self.latent_channels}, *spatial) with "
                f"{self.spatial_dims} spatial axes, got {tuple(z.shape)}"
            )
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``x``; the output has the shape of ``x``."""
        return self.decoder(self.encoder(self._check_input(x)))


def build_model(spatial_dims: int, *, compression: int = 16, **kw: Any) -> ConvAutoencoder:
    """Build a :class:`ConvAutoencoder`; ``kw`` are its other keyword arguments.

    Examples
    --------
    >>> build_model(1, compression=32, base_channels=8).latent_shape(256)
    (1, 8)
    """
    return ConvAutoencoder(spatial_dims, compression=compression, **kw)


def model_config(model: ConvAutoencoder) -> dict[str, Any]:
    """The JSON-serialisable constructor arguments of ``model`` (``depth`` resolved).

    Examples
    --------
    >>> model_config(ConvAutoencoder(2, compression=8, base_channels=8))
    {'name': 'ConvAutoencoder', 'spatial_dims': 2, 'in_channels': 1, 'compression': 8,
     'base_channels': 8, 'depth': 2}
    """
    if not isinstance(model, ConvAutoencoder):
        raise TypeError(f"model must be a ConvAutoencoder, got {type(model).__name__}")
    return {
        "name": _MODEL_NAME,
        "spatial_dims": model.spatial_dims,
        "in_channels": model.in_channels,
        "compression": model.compression,
        "base_channels": model.base_channels,
        "depth": model.depth,
    }


def model_from_config(cfg: Mapping[str, Any]) -> ConvAutoencoder:
    """A new (freshly initialised) model from a :func:`model_config` dict.

    ``"name"`` is optional but must be ``"ConvAutoencoder"`` when present; ``spatial_dims`` is
    required; unknown keys are rejected.

    Examples
    --------
    >>> model = ConvAutoencoder(3, compression=32, base_channels=8)
    >>> model_config(model_from_config(model_config(model))) == model_config(model)
    True
    """
    if not isinstance(cfg, Mapping):
        raise TypeError(f"cfg must be a mapping (dict), got {type(cfg).__name__}")
    args = dict(cfg)
    name = args.pop("name", _MODEL_NAME)
    if name != _MODEL_NAME:
        raise ValueError(f"cfg['name'] must be {_MODEL_NAME!r}, got {name!r}")
    unknown = sorted(set(args) - set(_CONFIG_KEYS), key=str)
    if unknown:
        raise ValueError(
            f"cfg has unknown keys {unknown}; expected 'name' and {', '.join(_CONFIG_KEYS)}"
        )
    if "spatial_dims" not in args:
        raise ValueError("cfg must have a 'spatial_dims' entry (1, 2 or 3)")
    spatial_dims = args.pop("spatial_dims")
    return ConvAutoencoder(spatial_dims, **args)
