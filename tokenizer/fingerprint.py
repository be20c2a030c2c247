"""``fingerprint(DIR)``: a short, stable digest of a tokenizer's vocabulary, whatever files hold it.

Two tokenizers with the same padded vocabulary size can still map ids to different pieces; data,
checkpoints and exports record this digest (``tokenizer_fingerprint``) so such a mix-up is caught
(``megatron_ext/tokenizer_check.py``). It covers what decides the meaning of an id:

* every piece in id order (ids no piece has are hashed as gaps);
* the special-token layout: which ids are matched as whole tokens before segmentation — SentencePiece
  *control*, *user-defined* and *unknown* pieces; in a Hugging Face ``tokenizer.json`` the
  ``added_tokens`` and the model's ``unk_token``.

Merge ranks, scores, normalisers and the chat template are left out (they change how text is cut,
not what an id means), so a ``midm tokenizer train`` directory (``tokenizer.model``) and its
``midm tokenizer export`` or ``save_pretrained`` copy (``tokenizer.json`` only) give the same digest
(tested). The SentencePiece model is read when present and parsable, else ``tokenizer.json``.

Digest: the first 16 hex digits (64 bits) of SHA-256 over ``"midm-tokenizer-v1\\n"``, the pieces in id
order joined by NUL (a gap is an empty string), ``"\\n"`` and the special ids in ascending order joined
by commas (UTF-8). Cost: ~0.1 s for a 131k-id SentencePiece model
(protobuf parse), more for a ``tokenizer.json`` with many merges (JSON parse). Torch-free.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

FIELD = "tokenizer_fingerprint"  # the key in summaries, index.json files and trainer_state.json
DIGITS = 16
_VERSION = b"midm-tokenizer-v1\n"
_SP_SPECIAL = (2, 3, 4)  # SentencePiece piece types UNKNOWN, CONTROL, USER_DEFINED (sentencepiece_model.proto)


class NoVocabulary(ValueError):
    """The directory holds neither a parsable ``tokenizer.model`` nor ``tokenizer.json`` with a vocabulary."""


def _digest(pieces: list[str | None], special: set[int]) -> str:
    h = hashlib.sha256(_VERSION)
    h.update("\0".join("" if p is None else p for p in pieces).encode("utf-8", "surrogatepass"))
    h.update(b"\n" + ",".join(map(str, sorted(special))).encode())
    return h.hexdigest()[:DIGITS]


def _from_sentencepiece(model: Path) -> str | None:
    try:
        from sentencepiece import sentencepiece_model_pb2 as pb
    except ImportError:
        return None
    proto = pb.ModelProto()
    try:
        proto.ParseFromString(model.read_bytes())
    except Exception:  # not a SentencePiece model (e.g. a tiktoken file under the same name)
        return None
    if not len(proto.pieces):
        return None
    pieces, special = [], set()
    for i, p in enumerate(proto.pieces):
        pieces.append(p.piece)
        if p.type in _SP_SPECIAL:
            special.add(i)
    return _digest(pieces, special)


def _from_tokenizer_json(path: Path) -> str:
    data = json.loads(path.read_text(encoding="utf-8"))
    model = data.get("model") or {}
    vocab = model.get("vocab")
    by_id: dict[int, str] = {}
    if isinstance(vocab, dict):  # BPE, WordPiece, WordLevel: {piece: id}
        by_id = {int(i): p for p, i in vocab.items()}
    elif isinstance(vocab, list):  # Unigram: [[piece, score], …] in id order
        by_id = {i: entry[0] for i, entry in enumerate(vocab)}
    added = data.get("added_tokens") or []
    for tok in added:
        by_id[int(tok["id"])] = tok["content"]
    if not by_id:
        raise NoVocabulary(f"{path}: no vocabulary in it")
    special = {int(tok["id"]) for tok in added}
    unk = model.get("unk_token")
    if isinstance(unk, str) and isinstance(vocab, dict) and unk in vocab:
        special.add(int(vocab[unk]))
    elif isinstance(model.get("unk_id"), int):  # Unigram names its unknown piece by id
        special.add(model["unk_id"])
    return _digest([by_id.get(i) for i in range(max(by_id) + 1)], special)


def fingerprint(directory: str | Path) -> str:
    """The 16-hex-digit vocabulary digest of a tokenizer directory (see the module docstring).

    ``directory`` may also be a file inside it. Reads ``tokenizer.model`` (SentencePiece) when present
    and parsable, else ``tokenizer.json`` (Hugging Face ``tokenizers``).

    Raises:
        NoVocabulary: neither file is there (e.g. a slow GPT-2 ``vocab.json`` directory) or holds one.
    """
    d = Path(directory)
    if d.is_file():
        d = d.parent
    if (d / "tokenizer.model").is_file():
        found = _from_sentencepiece(d / "tokenizer.model")
        if found is not None:
            return found
    if (d / "tokenizer.json").is_file():
        return _from_tokenizer_json(d / "tokenizer.json")
    raise NoVocabulary(f"{d}: neither tokenizer.model (SentencePiece) nor tokenizer.json to fingerprint")


def fingerprint_or_none(directory: str | Path) -> str | None:
    """:func:`fingerprint`, or None when the directory holds no vocabulary it can read (unknown)."""
    try:
        return fingerprint(directory)
    except (NoVocabulary, OSError, ValueError, KeyError, TypeError):
        return None


__all__ = ["FIELD", "NoVocabulary", "fingerprint", "fingerprint_or_none"]
