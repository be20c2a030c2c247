import pytest

from tokenizer import load_tokenizer
from tokenizer.config import TrainConfig
from tokenizer.kiwi_seg import DELIMITER, KiwiMarker
from tokenizer.train import train

pytest.importorskip("kiwipiepy")


def test_marks_morpheme_boundaries_inside_korean_words_only():
    marked = KiwiMarker()(["학교에서 공부했습니다. Hello world", ""])
    first = marked[0]
    assert first.replace(DELIMITER, "") == "학교에서 공부했습니다. Hello world"
    assert f"학교{DELIMITER}에서" in first
    assert "Hello world" in first and marked[1] == ""


def test_kiwi_pretokenized_training_keeps_exact_encoding(tmp_path, sample_inputs, sample_lines):
    out = tmp_path / "kiwi"
    summary = train(sample_inputs, out, TrainConfig(vocab_size=1024, pretokenize="kiwi", max_train_chars=60_000))
    assert summary["hf_equivalence"]["encode_mismatches"] == 0
    tok = load_tokenizer(out)
    assert all(DELIMITER not in tok.id_to_piece(i) for i in range(tok.vocab_size))
    for t in sample_lines[:100]:
        assert tok.decode(tok.encode(t)) == t
