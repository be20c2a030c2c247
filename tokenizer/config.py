"""Training options (``--config FILE``: YAML or JSON with any of these keys).

Defaults are the outcome of the ablation in ``benchmarks/tokenizer_ablation.py`` (summary in
``tokenizer/README.md``): coverage 0.9995, cross-script pieces and ``▁``-prefixed digits each
improved held-out Korean compression without hurting English; NFKC and Kiwi morpheme
pre-segmentation did not and are off. Others are needed for the contract: byte fallback, identity
normalisation and no whitespace removal give exact round trips; no dummy prefix keeps the
SentencePiece model and its HF export identical around special tokens (measured cost: 0.9% more
Korean tokens). ``ko_ratio`` 0.7 trades Korean against English compression.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass
class TrainConfig:
    vocab_size: int = 131_392            # padded size; see tokenizer.layout for the id rule
    ko_ratio: float | None = 0.7         # Korean share of ko+en training characters (None: as given)
    character_coverage: float = 0.9995   # rest goes to byte fallback
    normalization: str = "identity"      # identity | nfkc | nmt_nfkc (the latter two lose round trips)
    split_digits: bool = True            # one digit per token
    digit_space_prefix: bool = True      # with split_digits: allow "▁7" (SentencePiece's own split keeps "▁" apart)
    add_dummy_prefix: bool = False
    pretokenize: str = "none"            # none | kiwi (Kiwi morpheme boundaries, training text only)
    max_sentencepiece_length: int = 16
    split_by_unicode_script: bool = False  # pieces may span scripts ("요~", "ㅋㅋ!!")
    max_train_chars: int | None = None   # uniform subsample of the (weighted) training text
    max_line_chars: int = 2000
    text_field: str = "text"
    num_threads: int = 0                 # 0: all cores
    max_required_chars_fraction: float = 0.5  # cap single characters at this share of learned ids

    def __post_init__(self) -> None:
        if self.normalization not in ("identity", "nfkc", "nmt_nfkc"):
            raise ValueError(f"normalization must be identity, nfkc or nmt_nfkc, not {self.normalization!r}")
        if self.pretokenize not in ("none", "kiwi"):
            raise ValueError(f"pretokenize must be 'none' or 'kiwi', not {self.pretokenize!r}")
        if not 0.0 < self.character_coverage <= 1.0:
            raise ValueError(f"character_coverage must be in (0, 1], got {self.character_coverage}")
        if self.ko_ratio is not None and not 0.0 < self.ko_ratio < 1.0:
            raise ValueError(f"ko_ratio must be in (0, 1) or null, got {self.ko_ratio}")

    @property
    def threads(self) -> int:
        return self.num_threads or os.cpu_count() or 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown tokenizer config keys {unknown}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "TrainConfig":
        p = Path(path)
        text = p.read_text(encoding="utf-8")
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml
            data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{p}: expected a mapping of options, got {type(data).__name__}")
        return cls.from_dict(data)
