"""Decoding generated ids into text a person can read, byte tokens included.

Our tokenizer falls back to ``<0xXX>`` byte pieces for characters outside its vocabulary
(SentencePiece ``byte_fallback``; ``tokenizer/hf.py``). A sampled continuation can stop in the
middle of a multi-byte UTF-8 character (a Hangul syllable is 3 bytes), or a small model can emit byte
pieces that never form a character. ``tokenizers``' ``ByteFallback`` decoder turns every such byte
into U+FFFD, so a report shows runs of ``����``. Here the pieces are turned back into bytes and
decoded with Python's incremental UTF-8 decoder (the approach of HF ``TextStreamer``, which holds back
text until a character is complete): an incomplete sequence at the end is dropped and counted
(``dangling_bytes``), and bytes that are not UTF-8 inside the text are shown as ``⟨ec 9d⟩`` and
counted (``invalid_bytes``). Torch-free.
"""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Iterable

SPACE = "\u2581"  # SentencePiece's visible space (tokenizer/hf.py)
BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
ERRORS = "midm-hexbytes"


def _hex_bytes(err: UnicodeDecodeError) -> tuple[str, int]:
    bad = err.object[err.start:err.end]
    return "⟨" + " ".join(f"{b:02x}" for b in bad) + "⟩", err.end


codecs.register_error(ERRORS, _hex_bytes)


@dataclass(frozen=True)
class Decoded:
    """``text``: readable text; ``dangling_bytes``: bytes of an unfinished character dropped from the
    end; ``invalid_bytes``: bytes inside the text that form no UTF-8 character (shown as ``⟨xx⟩``)."""

    text: str
    dangling_bytes: int = 0
    invalid_bytes: int = 0


def pieces_to_bytes(pieces: Iterable[str], skip: frozenset[str] = frozenset()) -> bytes:
    """UTF-8 bytes of SentencePiece-style ``pieces`` (``▁`` = space, ``<0xXX>`` = one byte); ``skip``
    lists pieces (special tokens) to leave out."""
    out = bytearray()
    for piece in pieces:
        if piece in skip:
            continue
        byte = BYTE_PIECE.match(piece)
        out += bytes([int(byte.group(1), 16)]) if byte else piece.replace(SPACE, " ").encode("utf-8")
    return bytes(out)


def decode_bytes(data: bytes) -> Decoded:
    """Decode ``data`` as UTF-8: a trailing incomplete character is dropped, invalid bytes shown in hex."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors=ERRORS)
    text = decoder.decode(data, final=False)
    pending, _ = decoder.getstate()
    invalid = sum(len(m.group(0).split()) for m in re.finditer(r"⟨[0-9a-f ]+⟩", text))
    return Decoded(text=text, dangling_bytes=len(pending), invalid_bytes=invalid)


def decode_ids(tokenizer, ids: list[int], *, skip_special_tokens: bool = True) -> Decoded:
    """Decode ``ids`` (``[new_tokens]``) with a Hugging Face tokenizer exported by ``tokenizer/hf.py``
    (byte-fallback SentencePiece pieces; not meant for byte-level BPE tokenizers, whose pieces differ)."""
    pieces = tokenizer.convert_ids_to_tokens(list(ids))
    skip = frozenset(tokenizer.all_special_tokens) if skip_special_tokens else frozenset()
    return decode_bytes(pieces_to_bytes([p for p in pieces if p is not None], skip))
