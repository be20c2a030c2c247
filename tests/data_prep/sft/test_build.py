"""`midm data sft`: every conversation accounted for, truncation at whole exchanges, packing that
never splits or overfills, atomic output, and a torch-free CLI."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from data_prep.sft.build import build, pack
from data_prep.sft.chat import load_chat_tokenizer, render
from data_prep.sft.records import parse_line
from data_prep.sft.shards import SFTDataError, SFTSplit
from tests.conftest import REPO, TEST_DATA

SFT = TEST_DATA / "sft"
ALL = [str(SFT / n) for n in ("chatbot.jsonl", "edge_cases.jsonl", "bad.jsonl")]


def _split_conversations(root, split) -> list[tuple[list[int], list[int]]]:
    data = SFTSplit(root, split)
    return [(ids.tolist(), mask.tolist()) for i in range(len(data)) for ids, mask in data.sample(i)]


def test_accounting_and_every_conversation_stored_once(chat_tokenizer_dir, tmp_path):
    stats = build(ALL, tmp_path / "out", str(chat_tokenizer_dir), seq_length=256, valid_fraction=0.1)
    assert stats["conversations_read"] == 75 + 10 + 14
    assert stats["dropped"] == {"malformed_json": 1, "unknown_format": 3, "empty": 3, "unknown_role": 1,
                                "no_assistant_turn": 1, "bad_role_order": 4, "too_long": 2}
    assert stats["balanced"] and stats["conversations_read"] == stats["kept"] + sum(stats["dropped"].values())
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["kept"] == stats["kept"] == 84
    # the stored conversations are exactly the rendered kept ones (as a multiset), split train/valid
    tok = load_chat_tokenizer(chat_tokenizer_dir)
    expected = []
    for name in ALL[:2]:
        for line in open(name, encoding="utf-8"):
            ids, mask = render(parse_line(line), tok)
            if len(ids) <= 256:
                expected.append((ids, mask))
    stored = _split_conversations(tmp_path / "out", "train") + _split_conversations(tmp_path / "out", "valid")
    assert sorted(stored) == sorted(expected)
    assert stats["splits"]["valid"]["conversations"] == 8
    data = SFTSplit(tmp_path / "out", "train")
    sizes = [sum(len(ids) for ids, _ in data.sample(i)) for i in range(len(data))]
    assert max(sizes) <= 256 and stats["splits"]["train"]["fill"] > 0.9  # packed densely, never overfilled


def test_truncation_keeps_whole_exchanges(chat_tokenizer_dir, tmp_path):
    line = (SFT / "edge_cases.jsonl").read_text(encoding="utf-8").splitlines()[1]  # 3 exchanges
    messages = parse_line(line)
    tok = load_chat_tokenizer(chat_tokenizer_dir)
    two, _ = render(messages[:4], tok)
    whole, _ = render(messages, tok)
    src = tmp_path / "in.jsonl"
    src.write_text(line + "\n", encoding="utf-8")
    stats = build([str(src)], tmp_path / "t", str(chat_tokenizer_dir), seq_length=len(whole) - 1, valid_fraction=0)
    assert (stats["kept"], stats["truncated"]) == (1, 1)
    (ids, mask), = _split_conversations(tmp_path / "t", "train")
    assert ids == two and ids[-1] == tok.piece_to_id("<|eot_id|>") and mask[-1] == 1
    with pytest.raises(SFTDataError, match="too_long"):  # nothing left: a clear error, not an empty output
        build([str(src)], tmp_path / "d", str(chat_tokenizer_dir), seq_length=len(whole) - 1, overlong="drop")


def test_no_pack_is_one_conversation_per_sample(chat_tokenizer_dir, tmp_path, capsys, monkeypatch):
    import data_prep.sft.build as sft_build

    monkeypatch.setattr(sft_build, "PROGRESS_EVERY", 1)  # the default progress lines, one per conversation
    stats = build(ALL[:1], tmp_path / "u", str(chat_tokenizer_dir), seq_length=256, packed=False, valid_fraction=0)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == stats["conversations_read"] and lines[-1].startswith(
        f"[midm data sft] {stats['conversations_read']} read, {stats['kept']} kept")
    data = SFTSplit(tmp_path / "u", "train")
    assert len(data) == stats["kept"] == 75 and all(len(data.sample(i)) == 1 for i in range(len(data)))


def test_best_fit_decreasing_pack():
    lengths = [90, 70, 60, 40, 30, 10, 100]
    bins = pack(lengths, 100)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 100 for b in bins) and len(bins) == 4


def test_output_is_replaced_atomically_and_foreign_dirs_refused(chat_tokenizer_dir, tmp_path):
    out = tmp_path / "o"
    build(ALL[:1], out, str(chat_tokenizer_dir), seq_length=256)
    build(ALL[1:2], out, str(chat_tokenizer_dir), seq_length=512)  # a previous output is replaced whole
    assert json.loads((out / "index.json").read_text())["seq_length"] == 512
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.tmp")]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(SFTDataError, match="not a `midm data sft` output"):
        build(ALL[:1], foreign, str(chat_tokenizer_dir))


def test_cli_is_torch_free_and_bad_input_exits_2(chat_tokenizer_dir, tmp_path):
    code = ("import sys; from midm.cli import main; rc = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules, 'midm data sft imported torch'; sys.exit(rc)")
    env_py = [sys.executable, "-c", code, "data", "sft"]
    ok = subprocess.run(env_py + [ALL[0], str(tmp_path / "c"), "--tokenizer", str(chat_tokenizer_dir),
                                  "--seq-length", "128", "--no-pack"], cwd=REPO, capture_output=True, text=True,
                        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout.strip().splitlines()[-1])["balanced"] is True
    bad = subprocess.run(env_py + [str(tmp_path / "missing.jsonl"), str(tmp_path / "d"), "--tokenizer",
                                   str(chat_tokenizer_dir)], cwd=REPO, capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert bad.returncode == 2 and "missing.jsonl: no such file or directory" in bad.stderr
    assert np.load(tmp_path / "c" / "train-00000" / "tokens.npy").dtype == np.uint16
