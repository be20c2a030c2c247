"""`tokenizer.model` read by others: SentencePiece itself, megatron.core.tokenizers, and the code path
Megatron-LM's `tools/preprocess_data.py --tokenizer-type SentencePieceTokenizer --append-eod` runs
(`megatron.core.tokenizers.utils.build_tokenizer`, then `tokenize(text) + [eod]` per document).

Before, bos/pad/eos were user-defined pieces, so every one of these read eos as -1 and
preprocess_data crashed writing it to a uint16 array. Now they are control pieces named in the
trainer spec, and a Megatron-LM-tokenized document is id for id what `midm data tokenize` writes.
"""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import sentencepiece as spm

from tokenizer.layout import BOS, EOS, PAD, UNK


def test_sentencepiece_reads_the_special_ids_from_the_model(tiny_dir):
    from tokenizer.hf import load_proto

    sp = spm.SentencePieceProcessor(model_file=str(tiny_dir / "tokenizer.model"))
    assert (sp.bos_id(), sp.pad_id(), sp.eos_id(), sp.unk_id()) == (0, 1, 2, 3)
    assert [sp.id_to_piece(i) for i in range(4)] == [BOS, PAD, EOS, UNK]
    assert all(sp.is_control(i) for i in range(3)) and sp.is_unknown(3)
    spec = load_proto(tiny_dir / "tokenizer.model").trainer_spec
    assert (spec.bos_id, spec.pad_id, spec.eos_id, spec.unk_id) == (0, 1, 2, 3)
    assert (spec.bos_piece, spec.pad_piece, spec.eos_piece, spec.unk_piece) == (BOS, PAD, EOS, UNK)
    meta = json.loads((tiny_dir / "midm_tokenizer.json").read_text())
    assert (meta["bos_id"], meta["pad_id"], meta["eos_id"], meta["unk_id"]) == (0, 1, 2, 3)
    # the encoded text itself does not change: user-defined specials stay one id in SentencePiece too
    assert sp.encode("<|eot_id|>") == [meta["special_tokens"]["<|eot_id|>"]]


def _megatron_lm_sentencepiece(model_path: str):
    """What `preprocess_data.py --tokenizer-type SentencePieceTokenizer --tokenizer-model M` builds:
    its argument defaults (megatron/training/arguments.py, tools/preprocess_data.py get_args)."""
    from megatron.core.tokenizers.utils.build_tokenizer import build_tokenizer

    args = SimpleNamespace(tokenizer_type="SentencePieceTokenizer", tokenizer_model=model_path, chat_template=None,
                           tokenizer_sentencepiece_ignore_extra_whitespaces=False,
                           tokenizer_sentencepiece_legacy=False, special_tokens=None, metadata_path=None,
                           pad_vocab_size=False, rank=1, make_vocab_size_divisible_by=128,
                           tensor_model_parallel_size=1, vocab_extra_ids=0)
    return build_tokenizer(args)


def test_megatron_tokenizers_read_bos_eos_pad(tiny_dir):
    from megatron.core.tokenizers import MegatronTokenizer

    model = str(tiny_dir / "tokenizer.model")
    core = MegatronTokenizer.from_pretrained(tokenizer_path=model, metadata_path={"library": "sentencepiece"})
    lm = _megatron_lm_sentencepiece(model)
    for tok in (core, lm):
        assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.unk_id, tok.eod) == (0, 2, 1, 3, 2)
        np.array([tok.eod], dtype=np.uint16)  # preprocess_data's write of the EOD: raised OverflowError on -1


def test_megatron_lm_preprocessing_equals_midm_data_tokenize(tiny_dir, sample_lines, tmp_path):
    """Same documents through Megatron-LM's SentencePiece path and through `midm data tokenize`
    (default flags: HF twin of the model, gigatoken when installed): the same ids, EOD included."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    from data_prep.cli import main

    docs = [t for t in sample_lines if t.strip()][:200]
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in docs), encoding="utf-8")
    assert main(["tokenize", str(src), str(tmp_path / "ours"), "--tokenizer", str(tiny_dir)]) == 0
    ours = IndexedDataset(str(tmp_path / "ours"))
    lm = _megatron_lm_sentencepiece(str(tiny_dir / "tokenizer.model"))
    assert len(ours) == len(docs)
    for i, text in enumerate(docs):  # Encoder.encode with --append-eod: tokenize(text) + [eod]
        assert ours[i].tolist() == lm.tokenize(text) + [lm.eod], text[:80]
