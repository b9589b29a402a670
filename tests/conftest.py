"""Shared fixtures; tests marked ``gpu`` are skipped where no CUDA device exists."""

from __future__ import annotations

import pytest
import torch

CUDA = torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if CUDA:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def one_thread():
    """One BLAS thread: small networks run fastest so, and a busy machine does not make the
    threads wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
