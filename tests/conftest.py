"""Project-wide pytest setup. Keep this small and generic."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# Make `from _markers import requires_cuda` work in every test module, whatever
# the import mode or package layout of tests/.
_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

settings.register_profile("ci", deadline=None, max_examples=50)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``@pytest.mark.cuda`` when no CUDA device is present."""
    cuda_items = [item for item in items if item.get_closest_marker("cuda")]
    if not cuda_items:
        return
    from _markers import HAS_CUDA

    if HAS_CUDA:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in cuda_items:
        item.add_marker(skip)


@pytest.fixture
def cuda_device():
    """A ``torch.device("cuda")``; skips the test when no CUDA device is present."""
    from _markers import HAS_CUDA

    if not HAS_CUDA:
        pytest.skip("needs a CUDA device")
    import torch

    return torch.device("cuda")
