"""`midm data tokenize` → Megatron-Core .bin/.idx: exact ids, EOD, dtype, shards, resume."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data_prep.cli import main
from tests.data_prep.conftest import write_jsonl


def train_test_tokenizer(d: Path) -> Path:
    """A small byte-level BPE trained on the sample, in the layout `tokenizer.load_tokenizer` reads."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from tests.data_prep.conftest import SAMPLES

    texts = [json.loads(line)["text"] for line in (SAMPLES / "sample_mixed.jsonl").read_text(encoding="utf-8").splitlines()]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<pad>", "<|end_of_text|>"]
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=1500, special_tokens=specials,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    d.mkdir(parents=True, exist_ok=True)
    tok.save(str(d / "tokenizer.json"))
    meta = {"bos_id": 0, "pad_id": 1, "eos_id": 2, "vocab_size": tok.get_vocab_size(), "padded_vocab_size": 1536,
            "special_tokens": {s: i for i, s in enumerate(specials)}, "byte_ids": [None, None]}
    (d / "midm_tokenizer.json").write_text(json.dumps(meta), encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    return train_test_tokenizer(tmp_path_factory.mktemp("tok"))


def test_tokenize_matches_reference_and_resumes(tmp_path, sample_mixed, tokenizer_dir):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    from tokenizer import load_tokenizer

    records = [json.loads(line) for line in sample_mixed.read_text(encoding="utf-8").splitlines()]
    inp = tmp_path / "in"
    write_jsonl(inp / "a.jsonl", records[:80])
    write_jsonl(inp / "b.jsonl.gz", records[80:], gz=True)
    (inp / "c.jsonl").write_text('{"text": "마지막 문서"}\nnot json\n', encoding="utf-8")
    a_size = (inp / "a.jsonl").stat().st_size
    prefix = tmp_path / "out" / "corpus"
    args = ["tokenize", str(inp), str(prefix), "--tokenizer", str(tokenizer_dir), "--workers", "2",
            "--shard-mb", str(a_size / 3 / 1e6), "--batch-docs", "16"]  # default progress bar
    assert main(args + ["--keep-shards"]) == 0
    summary = json.loads(Path(f"{prefix}.summary.json").read_text())
    assert summary["documents"] == len(records) + 1 and summary["malformed_skipped"] == 1
    assert summary["dtype"] == "uint16" and summary["shards"] == 5  # a.jsonl in 3 byte ranges, b.gz, c

    ref = load_tokenizer(tokenizer_dir)
    ds = IndexedDataset(str(prefix))
    assert len(ds) == len(records) + 1
    texts = [r["text"] for r in records] + ["마지막 문서"]
    for i in (0, 1, 57, len(texts) - 1):
        assert ds[i].tolist() == ref.encode(texts[i]) + [ref.eos_id]  # one document per sequence, EOD last
    assert ds.index.dtype == np.uint16
    assert summary["tokens"] == int(ds.sequence_lengths.sum())

    # resume: drop one finished shard and the merged output; only that shard is recomputed
    original = Path(f"{prefix}.bin").read_bytes()
    shard1 = IndexedDataset(f"{prefix}.shards/000001")
    for ext in (".bin", ".idx"):
        Path(f"{prefix}.shards/000001{ext}").unlink()
        Path(f"{prefix}{ext}").unlink()
    assert main(args) == 0
    again = json.loads(Path(f"{prefix}.summary.json").read_text())
    assert 0 < len(shard1) < 80 and again["resumed_documents"] == len(texts) - len(shard1)
    assert Path(f"{prefix}.bin").read_bytes() == original
    assert not Path(f"{prefix}.shards").exists()


@pytest.mark.slow
def test_ctrl_c_stops_every_worker_and_leaves_no_tmp(tmp_path, tokenizer_dir):
    """Ctrl-C (SIGINT to the process group) mid-run: the command exits promptly, its workers with
    it, and no `*.tmp` remains; running again resumes from the finished shards."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO
    from tests.data_prep.conftest import SAMPLES

    lines = (SAMPLES / "sample_mixed.jsonl").read_text(encoding="utf-8").splitlines()
    for k in range(12):
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / f"{k:02d}.jsonl").write_text("\n".join(lines * 20) + "\n", encoding="utf-8")
    prefix = tmp_path / "out" / "x"
    argv = [sys.executable, "-m", "midm", "data", "tokenize", str(tmp_path / "in"), str(prefix),
            "--tokenizer", str(tokenizer_dir), "--workers", "2"]
    proc = subprocess.Popen(argv + ["--batch-docs", "1"], env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    while not list(Path(f"{prefix}.shards").glob("*.idx")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "finished before it could be interrupted: give it more input"
    os.killpg(proc.pid, signal.SIGINT)
    t0 = time.monotonic()
    proc.wait(timeout=60)
    assert time.monotonic() - t0 < 30 and proc.returncode != 0
    assert "KeyboardInterrupt" in proc.stderr.read()
    assert subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True).stdout == b""  # no worker left
    assert not list(prefix.parent.rglob("*.tmp"))
    done = len(list(Path(f"{prefix}.shards").glob("*.idx")))
    assert subprocess.run(argv, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True).returncode == 0
    summary = json.loads(Path(f"{prefix}.summary.json").read_text())
    assert summary["documents"] == 12 * 20 * len(lines) and summary["resumed_documents"] == done * 20 * len(lines)
