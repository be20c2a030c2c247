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


@pytest.fixture(scope="session")
def chat_tokenizer_dir(tmp_path_factory) -> Path:
    """A 2,048-id tokenizer trained on the committed sample and exported with the chat template (~5 s)."""
    from tokenizer.config import TrainConfig
    from tokenizer.export import export
    from tokenizer.train import train

    root = tmp_path_factory.mktemp("chat_tok")
    sample = TEST_DATA / "tokenizer"
    train([str(sample / "ko_train.jsonl.gz"), str(sample / "en_train.txt")], root / "sp", TrainConfig(vocab_size=2048))
    export(root / "sp", root / "hf")
    return root / "hf"
