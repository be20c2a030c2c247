"""``tokenizer/fingerprint.py``: tokenizers of the same size differ, the SentencePiece directory and
its Hugging Face copies (export, ``save_pretrained``, tokenizer.json alone) agree."""
from __future__ import annotations

import json
import shutil


def test_same_size_tokenizers_differ_and_every_copy_of_one_agrees(chat_tokenizer_dir, other_chat_tokenizer_dir,
                                                                    tmp_path):
    from transformers import AutoTokenizer

    from tokenizer.fingerprint import NoVocabulary, fingerprint, fingerprint_or_none

    sp_dir = chat_tokenizer_dir.parent / "sp"  # `midm tokenizer train` output; chat_tokenizer_dir is its export
    fp = fingerprint(sp_dir)
    assert len(fp) == 16 and int(fp, 16) >= 0
    meta = [json.loads((d / "midm_tokenizer.json").read_text()) for d in (chat_tokenizer_dir, other_chat_tokenizer_dir)]
    assert meta[0]["padded_vocab_size"] == meta[1]["padded_vocab_size"] == 2048
    assert fingerprint(other_chat_tokenizer_dir) != fp

    json_only = tmp_path / "json_only"  # what an HF repo without tokenizer.model holds
    json_only.mkdir()
    shutil.copy(chat_tokenizer_dir / "tokenizer.json", json_only)
    saved = tmp_path / "saved"  # what `midm convert to-hf --tokenizer` writes next to the model
    AutoTokenizer.from_pretrained(str(chat_tokenizer_dir)).save_pretrained(str(saved))
    assert not (saved / "tokenizer.model").exists()
    assert fingerprint(chat_tokenizer_dir) == fingerprint(json_only) == fingerprint(saved) == fp
    assert fingerprint(json_only / "tokenizer.json") == fp  # a file inside the directory names it too

    # the special-token layout counts: the same pieces with one more of them matched as an added token
    data = json.loads((json_only / "tokenizer.json").read_text(encoding="utf-8"))
    piece = next(p for p, i in data["model"]["vocab"].items() if i == 300)
    data["added_tokens"].append({"id": 300, "content": piece, "single_word": False, "lstrip": False,
                                 "rstrip": False, "normalized": False, "special": True})
    (json_only / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    assert fingerprint(json_only) != fp

    (json_only / "tokenizer.json").unlink()
    assert fingerprint_or_none(json_only) is None
    try:
        fingerprint(json_only)
    except NoVocabulary as err:
        assert "neither tokenizer.model" in str(err)
    else:
        raise AssertionError("an empty directory has no fingerprint")
