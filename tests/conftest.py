"""Shared pytest setup: repository paths and markers."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~20 s (still part of make test)")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on a 2-core box: extra intra-op threads only spin (measured ~9x slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
