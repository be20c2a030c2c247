"""Shared fixtures: one tiny tokenizer trained once per test session on the committed sample."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "tokenizer"
# The published special-token ids (Mi:dm 2.0 release, MIT), committed so the check runs in a fresh clone.
PUBLISHED_SPECIALS = Path(__file__).resolve().parents[1] / "data" / "tokenizer" / "midm2_special_tokens.json"


@pytest.fixture(scope="session")
def sample_inputs() -> list[str]:
    return [str(DATA / "ko_train.jsonl.gz"), str(DATA / "en_train.txt")]


@pytest.fixture(scope="session")
def heldout() -> dict[str, Path]:
    return {"ko": DATA / "ko_heldout.jsonl", "en": DATA / "en_heldout.txt"}


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, sample_inputs) -> Path:
    from tokenizer.config import TrainConfig
    from tokenizer.train import train

    out = tmp_path_factory.mktemp("tok") / "tiny"
    train(sample_inputs, out, TrainConfig(vocab_size=2048))
    return out


@pytest.fixture(scope="session")
def sample_lines(heldout) -> list[str]:
    lines = [json.loads(l)["text"] for l in heldout["ko"].read_text(encoding="utf-8").splitlines() if l.strip()]
    lines += [l for l in heldout["en"].read_text(encoding="utf-8").split("\n") if l]
    return lines
