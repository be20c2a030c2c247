"""A tiny random Llama + a BPE tokenizer trained on the committed Korean samples (built per session).

The model is random: scores are near chance, which is fine — the tests check that our numbers
are exactly lm-eval's numbers for the same run, not that the model is good.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "evaluation"
BENCH_DIR = DATA / "benchmarks"


def sample_texts() -> list[str]:
    texts = []
    for path in BENCH_DIR.rglob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if "premise" in row:  # the NLI samples
                texts += [row["premise"], row["hypothesis"]]
    return texts + ["참", "알 수 없음", "거짓", "전제:", "가설:", "질문:", "정답:"]


def build_tiny_hf_model(out: Path, *, seed: int = 0, vocab: int = 400, chat: bool = False) -> Path:
    from evaluation.tiny_models import build_tiny_llama

    return build_tiny_llama(out, sample_texts(), vocab=vocab, chat=chat, seed=seed)


@pytest.fixture(scope="session")
def tiny_hf_model(tmp_path_factory) -> Path:
    return build_tiny_hf_model(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="session")
def tiny_chat_model(tmp_path_factory) -> Path:
    """The same tiny Llama with a Llama-3-style chat template: an "instruct" model to midm eval."""
    return build_tiny_hf_model(tmp_path_factory.mktemp("tiny_chat_llama"), chat=True)


@pytest.fixture(scope="session")
def bench_dir() -> Path:
    return BENCH_DIR


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models: one intra-op thread (shared fixture in tests/conftest.py)."""
