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
    write_jsonl(inp / "web" / "a.jsonl", records[:80])
    write_jsonl(inp / "b.jsonl.gz", records[80:], gz=True)
    (inp / "c.jsonl").write_text('{"text": "마지막 문서"}\nnot json\n', encoding="utf-8")
    a_size = (inp / "web" / "a.jsonl").stat().st_size
    prefix = tmp_path / "out" / "corpus"
    # several inputs (IN… OUT_PREFIX, like `filter`), read in the order given: a directory, then two files
    ins = [str(inp / "web"), str(inp / "b.jsonl.gz"), str(inp / "c.jsonl")]
    args = ["tokenize", *ins, str(prefix), "--tokenizer", str(tokenizer_dir), "--workers", "2",
            "--shard-mb", str(a_size / 3 / 1e6), "--batch-docs", "16"]  # default progress bar
    assert main(args + ["--keep-shards"]) == 0
    summary = json.loads(Path(f"{prefix}.summary.json").read_text())
    assert summary["documents"] == len(records) + 1 and summary["malformed_skipped"] == 1
    assert summary["dtype"] == "uint16" and summary["shards"] == 5  # a.jsonl in 3 byte ranges, b.gz, c
    from tokenizer.fingerprint import fingerprint

    assert summary["tokenizer_fingerprint"] == fingerprint(tokenizer_dir)  # what trainers compare

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


def test_tokenizer_trained_again_in_place_is_not_resumed(tmp_path, sample_mixed, tokenizer_dir):
    """Shards kept (or left by an interrupted run) under one tokenizer are not resumed when the same
    --tokenizer path now holds another tokenizer (`midm tokenizer train --overwrite` into tok/): they
    would be merged as the new tokenizer's ids, under its fingerprint."""
    import shutil

    from tokenizer.fingerprint import fingerprint

    tok = tmp_path / "tok"
    shutil.copytree(tokenizer_dir, tok)
    prefix = tmp_path / "out" / "corpus"
    args = ["tokenize", str(sample_mixed), str(prefix), "--tokenizer", str(tok), "--keep-shards"]
    assert main(args) == 0
    # the same directory, another tokenizer of the same size: two learned pieces trade ids
    data = json.loads((tok / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    a, b = [p for p in vocab if len(p) > 1 and vocab[p] > 300][:2]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    (tok / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    assert fingerprint(tok) != fingerprint(tokenizer_dir)
    assert main(args) == 0
    summary = json.loads(Path(f"{prefix}.summary.json").read_text())
    assert summary["tokenizer_fingerprint"] == fingerprint(tok) and summary["resumed_documents"] == 0
    fresh = tmp_path / "fresh" / "corpus"  # what the new tokenizer makes of the same input
    assert main(["tokenize", str(sample_mixed), str(fresh), "--tokenizer", str(tok)]) == 0
    assert Path(f"{prefix}.bin").read_bytes() == Path(f"{fresh}.bin").read_bytes()


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
    # As from a terminal: SIGINT at its default. A pytest-xdist worker (execnet) ignores SIGINT, and an
    # ignored SIGINT is inherited — Python then never raises KeyboardInterrupt, as for `cmd &` in a script.
    proc = subprocess.Popen(argv + ["--batch-docs", "1"], env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while not list(Path(f"{prefix}.shards").glob("*.idx")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "finished before it could be interrupted: give it more input"
    os.killpg(proc.pid, signal.SIGINT)
    t0 = time.monotonic()
    proc.wait(timeout=60)
    assert time.monotonic() - t0 < 30 and proc.returncode == 130  # 128 + SIGINT
    err = proc.stderr.read()
    assert "midm data: interrupted" in err and "Traceback" not in err, err  # one line, from no process
    assert subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True).stdout == b""  # no worker left
    assert not list(prefix.parent.rglob("*.tmp"))
    done = len(list(Path(f"{prefix}.shards").glob("*.idx")))
    assert subprocess.run(argv, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True).returncode == 0
    summary = json.loads(Path(f"{prefix}.summary.json").read_text())
    assert summary["documents"] == 12 * 20 * len(lines) and summary["resumed_documents"] == done * 20 * len(lines)


def test_shards_are_byte_identical_to_megatrons_builder(tmp_path):
    """The writer in data_prep/tokenization/indexed.py produces exactly what Megatron-Core's
    IndexedDatasetBuilder writes for the same documents (one document per sequence)."""
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    from data_prep.tokenization.indexed import ShardWriter, read_index

    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 60000, size=n) for n in (5, 1, 300, 17, 2)]
    for dtype in (np.uint16, np.int32):
        ref = IndexedDatasetBuilder(str(tmp_path / "ref.bin"), dtype=dtype)
        for d in docs:
            ref.add_document(d, [len(d)])
        ref.finalize(str(tmp_path / "ref.idx"))
        ours = ShardWriter(str(tmp_path / "ours"), dtype)
        ours.add_batch(np.concatenate(docs[:2]), np.array([5, 1]))
        ours.add_batch(np.concatenate(docs[2:]), np.array([300, 17, 2]))
        ours.close()
        for ext in (".bin", ".idx"):
            assert (tmp_path / f"ours{ext}").read_bytes() == (tmp_path / f"ref{ext}").read_bytes(), (dtype, ext)
        got_dtype, lengths, doc_index = read_index(str(tmp_path / "ours.idx"))
        assert got_dtype == np.dtype(dtype) and lengths.tolist() == [5, 1, 300, 17, 2]
        assert doc_index.tolist() == [0, 1, 2, 3, 4, 5]


def test_tokenize_imports_no_torch(tmp_path, tokenizer_dir):
    """`midm data …` stays torch-free, tokenize included (the .bin/.idx writer is ours)."""
    import subprocess
    import sys

    from tests.conftest import REPO

    (tmp_path / "in.jsonl").write_text('{"text": "안녕하세요 반갑습니다"}\n', encoding="utf-8")
    code = ("import sys; from data_prep.cli import main\n"
            f"assert main(['tokenize', {str(tmp_path / 'in.jsonl')!r}, {str(tmp_path / 'o')!r}, '--tokenizer', "
            f"{str(tokenizer_dir)!r}]) == 0\n"
            "print(sorted(m for m in ('torch', 'megatron', 'datatrove') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}).stdout
    assert out.strip().splitlines()[-1] == "[]"
