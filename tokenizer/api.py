"""``load_tokenizer(path) -> MidmTokenizer``: what the data pipeline and the demo encode with.

Encoding runs on the HF ``tokenizers`` Rust backend (``tokenizer.json`` in the directory), which
``midm tokenizer train`` checks against the SentencePiece model; ``encode_batch`` is parallel.
No bos/eos is ever added implicitly: callers append ``eos_id`` themselves.
"""
from __future__ import annotations

import json
from pathlib import Path

from midm.errors import MidmError

META_FILE = "midm_tokenizer.json"


class NotATokenizer(MidmError, FileNotFoundError):
    """The path is not a directory written by ``midm tokenizer train`` (one line, exit 2 at the CLI)."""


class MidmTokenizer:
    def __init__(self, directory: str | Path) -> None:
        from tokenizers import Tokenizer

        d = Path(directory)
        if d.is_file():
            d = d.parent
        meta_path, json_path = d / META_FILE, d / "tokenizer.json"
        missing = [p.name for p in (meta_path, json_path) if not p.is_file()]
        if missing:
            raise NotATokenizer(f"{d}: not a midm tokenizer directory (missing {', '.join(missing)}); "
                                    "create one with `midm tokenizer train`")
        self.directory = d
        self.meta: dict = json.loads(meta_path.read_text(encoding="utf-8"))
        self._tok = Tokenizer.from_file(str(json_path))
        self.bos_id: int = self.meta["bos_id"]
        self.eos_id: int = self.meta["eos_id"]
        self.pad_id: int = self.meta["pad_id"]
        self.vocab_size: int = self.meta["vocab_size"]
        self.padded_vocab_size: int = self.meta["padded_vocab_size"]
        self.special_tokens: dict[str, int] = dict(self.meta["special_tokens"])
        lo, hi = self.meta.get("byte_ids", [None, None])
        self._byte_range = (lo, hi)

    @property
    def eod(self) -> int:
        """Megatron's name for the end-of-document id."""
        return self.eos_id

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)

    def id_to_piece(self, i: int) -> str | None:
        return self._tok.id_to_token(int(i))

    def piece_to_id(self, piece: str) -> int | None:
        return self._tok.token_to_id(piece)

    def is_byte(self, i: int) -> bool:
        lo, hi = self._byte_range
        return lo is not None and lo <= i <= hi

    def __repr__(self) -> str:
        return (f"MidmTokenizer({str(self.directory)!r}, vocab_size={self.vocab_size}, "
                f"padded_vocab_size={self.padded_vocab_size})")


def load_tokenizer(path: str | Path) -> MidmTokenizer:
    return MidmTokenizer(path)
