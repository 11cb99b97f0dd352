"""Volumes larger than memory: the exact count, DSL and critical points on dask arrays.

The functions of this package take dask arrays, or anything ``dask.array.from_array`` wraps (a
zarr array, a ``numpy.memmap`` of a ``.npy`` file), and give the same results as the in-memory
functions of :mod:`dsl_explore` on the whole array: each block is handed to the in-memory
function with a one-sample halo (see :mod:`dsl_explore.chunked.counting` and
:mod:`dsl_explore.chunked.critical` for how each difference and each neighbour is seen exactly
once). They run on dask's threaded scheduler by default, and unchanged on a
``dask.distributed`` cluster once a ``Client`` is created. Needs the ``chunked`` extra:
``pip install "dsl-explore[chunked]"``.

- :func:`sign_mismatch_count`, :func:`directional_sign_loss`: values (numpy), computed;
- :func:`sign_mismatch_map`, :func:`critical_points`: lazy dask arrays chunked like the input;
- :func:`mismatched_critical_points` (coordinates, computed), :func:`compare_labels` (counts);
- :mod:`dsl_explore.chunked.compare`: stores on disk, the ``dsl-explore compare`` command.
"""

from dsl_explore.chunked.counting import (
    directional_sign_loss,
    sign_mismatch_count,
    sign_mismatch_map,
)
from dsl_explore.chunked.critical import (
    GROUPS,
    compare_labels,
    critical_points,
    mismatched_critical_points,
)

__all__ = [
    "GROUPS",
    "compare_labels",
    "critical_points",
    "directional_sign_loss",
    "mismatched_critical_points",
    "sign_mismatch_count",
    "sign_mismatch_map",
]
