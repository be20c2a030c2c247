import json
import random

import pytest
import sentencepiece as spm

from tokenizer import load_tokenizer
from tokenizer.config import TrainConfig
from tokenizer.layout import PII_TOKENS, PUBLISHED_PADDED_VOCAB, TOP_SPECIALS, layout_for
from tokenizer.train import train

from .conftest import PUBLISHED_SPECIALS

FUZZ_ALPHABET = ("가각간날닭뷁ㅋㅎㅏ 漢字㉠😀🇰🇷∑é ñ\u00a0\u3000\u200b\t\n\r\x00\x7f"
                 "abcXYZ0123456789.,!?<>|#@_-")


def _fuzz(n: int, seed: int = 0, extra: str = "") -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = "".join(rng.choice(FUZZ_ALPHABET + extra) for _ in range(rng.randint(0, 40)))
        if rng.random() < 0.5:
            s = s.replace("#", rng.choice(TOP_SPECIALS + ("<|begin_of_text|>", "<pad>", "<unk>")), 1)
        out.append(s)
    return out


def test_directory_contract(tiny_dir):
    names = {p.name for p in tiny_dir.iterdir()}
    assert {"tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
            "midm_tokenizer.json", "train_summary.json"} <= names
    meta = json.loads((tiny_dir / "midm_tokenizer.json").read_text(encoding="utf-8"))
    lay = layout_for(2048)
    assert (meta["vocab_size"], meta["padded_vocab_size"]) == (lay.vocab_size, lay.padded_vocab_size) == (2040, 2048)
    assert (meta["bos_id"], meta["pad_id"], meta["eos_id"]) == (0, 1, 2)
    assert meta["special_tokens"] == lay.special_tokens()
    sp = spm.SentencePieceProcessor(model_file=str(tiny_dir / "tokenizer.model"))
    assert sp.vocab_size() == meta["vocab_size"]
    for tok, i in meta["special_tokens"].items():
        assert sp.id_to_piece(i) == tok
    summary = json.loads((tiny_dir / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["hf_equivalence"]["encode_mismatches"] == 0 and summary["hf_equivalence"]["texts"] > 300


def test_api_roundtrip_no_unknown_and_special_tokens(tiny_dir, sample_lines):
    tok = load_tokenizer(tiny_dir)
    assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.vocab_size, tok.padded_vocab_size) == (0, 2, 1, 2040, 2048)
    texts = sample_lines + _fuzz(300)
    batch = tok.encode_batch(texts)
    assert batch == [tok.encode(t) for t in texts]
    unk = tok.meta["unk_id"]
    for text, ids in zip(texts, batch):
        assert unk not in ids
        assert tok.decode(ids) == text
        assert all(0 <= i < tok.vocab_size for i in ids)
    # typed PII placeholders and chat tokens are single ids wherever they appear in text
    for pii in PII_TOKENS:
        ids = tok.encode(f"고객 {pii}님께")
        assert tok.special_tokens[pii] in ids
    assert tok.encode("<|eot_id|>") == [tok.special_tokens["<|eot_id|>"]]
    assert tok.encode("") == []


def test_hf_tokenizer_equals_sentencepiece(tiny_dir, sample_lines):
    from tokenizer.hf import control_pieces, sp_decode_with_controls, sp_encode_with_controls

    sp = spm.SentencePieceProcessor(model_file=str(tiny_dir / "tokenizer.model"))
    tok = load_tokenizer(tiny_dir)
    texts = sample_lines + _fuzz(500, seed=1, extra="▁") + ["\n".join(sample_lines[:20])]
    controls = control_pieces(sp)
    assert controls == {"<|begin_of_text|>": 0, "<pad>": 1, "<|end_of_text|>": 2}
    plain = [t for t in texts if not any(c in t for c in controls)]
    assert tok.encode_batch(plain) == sp.encode(plain)  # plain SentencePiece, no help
    for t in plain:
        assert tok.decode(sp.encode(t)) == sp.decode(sp.encode(t))
    # the control strings in text: HF matches them (chat template), SentencePiece never does by itself
    literal = [t for t in texts if t not in plain] + [f"{c}안녕 {c}\n{c}x <|eot_id|>{c}" for c in controls]
    assert len(literal) >= 5
    assert tok.encode_batch(literal) == [sp_encode_with_controls(sp, t) for t in literal]
    assert all(tok.decode(ids) == sp_decode_with_controls(sp, ids) for ids in tok.encode_batch(literal))
    assert 0 not in sp.encode("<|begin_of_text|>") and tok.encode("<|begin_of_text|>") == [0]


def test_only_roundtrip_exception_is_the_whitespace_symbol(tiny_dir):
    """U+2581 is SentencePiece's own space marker: both encoders read it as a space (documented)."""
    tok = load_tokenizer(tiny_dir)
    assert tok.decode(tok.encode("a\u2581b")) == "a b"


def test_digits_split_and_bytes_fallback(tiny_dir):
    tok = load_tokenizer(tiny_dir)
    ids = tok.encode("2024년 12345")
    pieces = [tok.id_to_piece(i) for i in ids]
    assert all(len(p.strip("▁")) <= 1 for p in pieces if any(c.isdigit() for c in p))
    rare = tok.encode("𠜎")  # a CJK extension character no sample contains: 4 byte pieces
    assert len(rare) == 4 and all(tok.is_byte(i) for i in rare)


def test_transformers_autotokenizer_loads_train_dir(tiny_dir, sample_lines):
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoTokenizer.from_pretrained(str(tiny_dir))
    tok = load_tokenizer(tiny_dir)
    for t in sample_lines[:50] + _fuzz(50, seed=2):
        assert hf.encode(t, add_special_tokens=False) == tok.encode(t)
    assert (hf.bos_token_id, hf.eos_token_id, hf.pad_token_id) == (0, 2, 1)


def test_published_ids_at_full_vocab_size(tmp_path, sample_inputs):
    """At --vocab-size 131392 every special id equals the released one, even when a small corpus
    cannot fill the vocabulary (the gap becomes <|reserved_k|> pieces)."""
    out = tmp_path / "full"
    summary = train(sample_inputs[:1], out, TrainConfig(vocab_size=PUBLISHED_PADDED_VOCAB, max_train_chars=150_000))
    meta = json.loads((out / "midm_tokenizer.json").read_text(encoding="utf-8"))
    assert meta["vocab_size"] == 131_384 and meta["padded_vocab_size"] == 131_392
    assert meta["special_tokens"]["<|eot_id|>"] == 131_301 and meta["special_tokens"]["#@통관번호#"] == 131_383
    assert summary["layout"]["reserved_fillers"] > 0
    tok = load_tokenizer(out)
    assert tok.encode("#@주민번호@#") == [131_368]
    assert tok.decode(tok.encode("안녕 <|eot_id|>")) == "안녕 <|eot_id|>"
    published = json.loads(PUBLISHED_SPECIALS.read_text(encoding="utf-8"))["tokens"]
    assert {v: int(k) for k, v in published.items()} == meta["special_tokens"]
