import gzip
import json

import pytest

from tokenizer.corpus import (build_training_file, expand_inputs, iter_documents, language_of,
                              language_weights, split_line)


def test_reads_jsonl_gz_plain_text_and_walks_directories(tmp_path):
    (tmp_path / "sub").mkdir()
    with gzip.open(tmp_path / "sub" / "a.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps({"text": "첫 문서\n둘째 줄", "id": 1}, ensure_ascii=False) + "\n\n")
        f.write(json.dumps({"text": "second doc"}) + "\n")
    (tmp_path / "b.txt").write_text("line one\n\nline two\n", encoding="utf-8")
    (tmp_path / "ignored.bin").write_bytes(b"\x00\xff")
    files = expand_inputs([tmp_path])
    assert [f.name for f in files] == ["b.txt", "a.jsonl.gz"]
    docs = [d for f in files for d in iter_documents(f)]
    assert docs == ["line one", "line two", "첫 문서\n둘째 줄", "second doc"]


def test_one_bad_record_is_counted_never_fatal(tmp_path):
    """A damaged record costs that record (counted by reason), not the tokenizer's training run."""
    from collections import Counter

    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"text": "ok"}\n{"body": "no text"}\n{"text": "unterminated\n\xff\xfe\n'
                    b'{"text": "lone \\ud800 surrogate"}\n{"text": "last"}\n')
    counts: Counter = Counter()
    assert list(iter_documents(bad, counts=counts)) == ["ok", "last"]
    assert {k: v for k, v in counts.items() if k.startswith("dropped:")} == {
        "dropped:missing_text": 1, "dropped:bad_json": 1, "dropped:invalid_utf8": 1, "dropped:invalid_unicode": 1}
    latin1 = tmp_path / "mixed.txt"
    latin1.write_bytes("caf\xe9\n".encode("latin-1") + "좋은 줄\n".encode())
    assert list(iter_documents(latin1)) == ["좋은 줄"]


def test_unreadable_or_foreign_format_names_the_format_expected(tmp_path):
    from data_prep.errors import DataError

    text = tmp_path / "comments.jsonl"
    text.write_text("그냥 댓글입니다\n또 다른 댓글\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"comments.jsonl: expected JSON Lines.*found plain text"):
        list(iter_documents(text))
    keys = tmp_path / "keys.jsonl"
    keys.write_text('{"body": "x"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"without a string 'text' field \(keys: body\)"):
        list(iter_documents(keys))
    zst = tmp_path / "a.jsonl"
    zst.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 20)
    with pytest.raises(DataError, match="zstd"):
        list(iter_documents(zst))
    binary = tmp_path / "latin1.txt"
    binary.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="none of its 1 lines is readable"):
        list(iter_documents(binary))
    with pytest.raises(DataError, match="no such file"):
        expand_inputs([tmp_path / "missing"])


def test_language_and_long_line_splitting():
    assert language_of("안녕하세요 hi") == "ko"
    assert language_of("hello 세계") == "en"
    assert language_of("12345 !!") == "other"
    parts = split_line("가나 " * 1000, 300)
    assert all(len(p) <= 300 for p in parts) and "".join(parts) == ("가나 " * 1000)


def test_ko_ratio_weighting_reaches_target(tmp_path):
    src = tmp_path / "mix.txt"
    src.write_text("\n".join(["한국어 문장 하나 입니다"] * 50 + [f"english sentence number {i}" for i in range(300)]),
                   encoding="utf-8")
    assert language_weights({"ko": 100, "en": 300, "other": 0}, 0.5) == {"ko": 3.0, "en": 1.0, "other": 1.0}
    capped = language_weights({"ko": 10, "en": 10_000, "other": 5}, 0.5, max_repeat=8.0)
    assert capped["ko"] == 8.0 and abs(capped["en"] - 0.008) < 1e-9 and capped["other"] == 1.0
    stats = build_training_file([src], tmp_path / "out.txt", ko_ratio=0.7)
    assert abs(stats.as_dict()["written_ko_ratio"] - 0.7) < 0.03
    assert stats.weights["ko"] == 8.0 and stats.weights["en"] < 1.0  # repeat capped, majority subsampled


def test_digit_marking_keeps_one_digit_per_piece(tmp_path):
    from tokenizer.kiwi_seg import DELIMITER

    src = tmp_path / "d.txt"
    src.write_text("In 2008 x86 3.5배\n", encoding="utf-8")
    build_training_file([src], tmp_path / "o.txt", mark_digits=DELIMITER)
    d = DELIMITER
    assert (tmp_path / "o.txt").read_text(encoding="utf-8") == f"In 2{d}0{d}0{d}8 x{d}8{d}6 3{d}.{d}5{d}배\n"
