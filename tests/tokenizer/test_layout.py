import json

import pytest

from tokenizer.layout import (BOS, EOS, PAD, PUBLISHED_PADDED_VOCAB, PUBLISHED_TOP_START, TOP_SPECIALS,
                              layout_for)

from .conftest import PUBLISHED_SPECIALS


def test_published_layout_ids():
    lay = layout_for(PUBLISHED_PADDED_VOCAB)
    assert lay.vocab_size == 131_384 and lay.padded_vocab_size == 131_392
    st = lay.special_tokens()
    assert st[BOS] == 0 and st[PAD] == 1 and st[EOS] == 2
    assert st["<|eot_id|>"] == PUBLISHED_TOP_START == 131_301
    assert st["#@통관번호#"] == 131_383 and st["#@이름@#"] == 131_366
    assert len(st) == 3 + 83 == len(set(st.values()))


def test_embedded_specials_equal_published_file():
    published = {v: int(k) for k, v in json.loads(PUBLISHED_SPECIALS.read_text(encoding="utf-8"))["tokens"].items()}
    assert layout_for(PUBLISHED_PADDED_VOCAB).special_tokens() == published


def test_small_vocab_same_relative_layout():
    lay = layout_for(4096)
    assert (lay.vocab_size, lay.padded_vocab_size, lay.top_start) == (4088, 4096, 4005)
    assert max(lay.special_tokens().values()) == lay.vocab_size - 1
    odd = layout_for(4000)
    assert odd.vocab_size == 3992 and odd.padded_vocab_size % 64 == 0 and odd.padded_vocab_size >= 4000
    assert len(TOP_SPECIALS) == 83


def test_too_small_vocab_is_rejected_with_reason():
    with pytest.raises(ValueError, match="too small"):
        layout_for(300)
