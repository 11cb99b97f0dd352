"""Shared skip markers: ``from _markers import requires_cuda``."""

from __future__ import annotations

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()

requires_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
