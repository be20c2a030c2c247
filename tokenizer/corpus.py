"""Reading training/eval text and building the SentencePiece training file.

Inputs are what the data pipeline writes (JSONL or JSONL.gz with a ``text`` field) or plain text
(one document per line); directories are walked. Building the training file is two streaming
passes, so memory stays bounded by SentencePiece itself, not by us:

1. count characters per language (a line is Korean if it has at least as many Hangul syllables
   as Latin letters, English if Latin letters dominate, "other" otherwise);
2. write every line ``weight`` times (the fractional part decided by a stable hash), with weights
   chosen so that Korean characters make up ``ko_ratio`` of the Korean+English characters. The
   under-represented language is repeated rather than the other one cut, so the majority's rare
   words still reach the trainer; ``max_train_chars`` then subsamples uniformly if set.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

TEXT_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".txt", ".txt.gz", ".text")
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LATIN = re.compile(r"[A-Za-z]")


def expand_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files named directly are taken as they are; directories contribute their text files."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")
                           and f.name.lower().endswith(TEXT_SUFFIXES))
            if not found:
                raise FileNotFoundError(f"{p}: directory has no {', '.join(TEXT_SUFFIXES)} files")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    return files


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="strict")
    return open(path, encoding="utf-8", errors="strict")


def is_jsonl(path: Path) -> bool:
    return path.name.lower().endswith((".jsonl", ".jsonl.gz", ".json.gz"))


def iter_documents(path: Path, text_field: str = "text") -> Iterator[str]:
    """Documents of one file: JSONL records' ``text_field``, or non-empty lines of plain text."""
    with _open_text(path) as fh:
        try:
            if is_jsonl(path):
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError as err:
                        raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
                    if not isinstance(rec, dict) or not isinstance(rec.get(text_field), str):
                        raise ValueError(f"{path}:{lineno}: record has no string field "
                                         f"{text_field!r} (keys: {sorted(rec)[:8] if isinstance(rec, dict) else type(rec).__name__})")
                    if rec[text_field]:
                        yield rec[text_field]
            else:
                for line in fh:
                    line = line.rstrip("\r\n")
                    if line.strip():
                        yield line
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); "
                             "convert it or pass JSONL") from None


def iter_all_documents(paths: Iterable[str | os.PathLike], text_field: str = "text") -> Iterator[str]:
    for f in expand_inputs(paths):
        yield from iter_documents(f, text_field)


def language_of(text: str) -> str:
    hangul = len(_HANGUL.findall(text))
    latin = len(_LATIN.findall(text))
    if hangul and hangul >= latin:
        return "ko"
    if latin > hangul:
        return "en"
    return "other"


def split_line(line: str, max_chars: int) -> list[str]:
    """Cut an over-long line at spaces (SentencePiece silently skips sentences that are too long)."""
    if len(line) <= max_chars:
        return [line]
    out, start = [], 0
    while len(line) - start > max_chars:
        cut = line.rfind(" ", start + max_chars // 2, start + max_chars)
        cut = start + max_chars if cut <= start else cut
        out.append(line[start:cut])
        start = cut
    out.append(line[start:])
    return [s for s in out if s.strip()]


def iter_training_lines(paths: Iterable[str | os.PathLike], text_field: str, max_chars: int) -> Iterator[str]:
    for doc in iter_all_documents(paths, text_field):
        for line in doc.split("\n"):
            if line.strip():
                yield from split_line(line, max_chars)


def stable_fraction(text: str, salt: str = "") -> float:
    """A deterministic number in [0, 1) for a line: reproducible sampling without a RNG stream."""
    h = hashlib.blake2b((salt + text).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**64


@dataclass
class CorpusStats:
    files: int = 0
    lines: dict[str, int] = field(default_factory=lambda: {"ko": 0, "en": 0, "other": 0})
    chars: dict[str, int] = field(default_factory=lambda: {"ko": 0, "en": 0, "other": 0})
    weights: dict[str, float] = field(default_factory=dict)
    written_lines: int = 0
    written_chars: dict[str, int] = field(default_factory=lambda: {"ko": 0, "en": 0, "other": 0})

    def as_dict(self) -> dict:
        total = self.written_chars["ko"] + self.written_chars["en"]
        return {"files": self.files, "input_lines": self.lines, "input_chars": self.chars,
                "weights": self.weights, "written_lines": self.written_lines,
                "written_chars": self.written_chars,
                "written_ko_ratio": round(self.written_chars["ko"] / total, 4) if total else None}


def language_weights(chars: dict[str, int], ko_ratio: float | None, max_repeat: float = 8.0) -> dict[str, float]:
    """Per-language repeat factors giving Korean ``ko_ratio`` of the ko+en characters.

    The minority language is repeated up to ``max_repeat`` times; past that the majority is
    subsampled instead, so the training file never grows beyond ``max_repeat`` × the input.
    """
    w = {"ko": 1.0, "en": 1.0, "other": 1.0}
    ko, en = chars["ko"], chars["en"]
    if ko_ratio is None or not ko or not en:
        return w
    if not 0.0 < ko_ratio < 1.0:
        raise ValueError(f"ko_ratio must be in (0, 1), got {ko_ratio}")
    want = ko_ratio / (1 - ko_ratio)  # desired ko:en
    have = ko / en
    up, factor = ("ko", want / have) if have < want else ("en", have / want)
    w[up] = min(factor, max_repeat)
    w["en" if up == "ko" else "ko"] = w[up] / factor
    return w


def build_training_file(paths: Iterable[str | os.PathLike], out_path: Path, *, text_field: str = "text",
                        ko_ratio: float | None = None, max_train_chars: int | None = None,
                        max_line_chars: int = 2000,
                        transform: Callable[[list[str]], list[str]] | None = None,
                        mark_digits: str | None = None,
                        progress: Callable[[str], None] | None = None) -> CorpusStats:
    """Write the weighted, chunked training lines to ``out_path``; return what was read and written.

    ``transform`` (e.g. Kiwi morpheme marking) maps a batch of Korean lines to the text written;
    ``mark_digits`` (a delimiter) is put around every digit except after a space, so that a learned
    piece holds at most one digit and nothing else but the preceding space marker.
    """
    digit_re = re.compile(r"(?<=\d)(?=[^ ])|(?<=[^ ])(?=\d)") if mark_digits else None
    paths = list(paths)
    stats = CorpusStats(files=len(expand_inputs(paths)))
    for line in iter_training_lines(paths, text_field, max_line_chars):
        lang = language_of(line)
        stats.lines[lang] += 1
        stats.chars[lang] += len(line)
    if not sum(stats.lines.values()):
        raise ValueError(f"no text found in {', '.join(map(str, paths))}")
    weights = language_weights(stats.chars, ko_ratio)
    expected = sum(stats.chars[k] * weights[k] for k in weights)
    keep = 1.0 if not max_train_chars or expected <= max_train_chars else max_train_chars / expected
    stats.weights = {k: round(v * keep, 4) for k, v in weights.items()}
    if progress:
        progress(f"read {sum(stats.lines.values()):,} lines {stats.chars}; weights {stats.weights}")

    batch: list[tuple[str, int]] = []  # (line, repeats): each distinct line is transformed once

    def flush(fh) -> None:
        if not batch:
            return
        lines = transform([line for line, _ in batch]) if transform else [line for line, _ in batch]
        for line, (_, reps) in zip(lines, batch):
            if digit_re:
                line = digit_re.sub(mark_digits, line)
            for _ in range(reps):
                fh.write(line + "\n")
            stats.written_lines += reps
        batch.clear()

    with open(out_path, "w", encoding="utf-8") as fh:
        for line in iter_training_lines(paths, text_field, max_line_chars):
            lang = language_of(line)
            w = weights[lang] * keep
            reps = math.floor(w) + (1 if stable_fraction(line) < w - math.floor(w) else 0)
            if not reps:
                continue
            stats.written_chars[lang] += reps * len(line)
            if lang == "ko" and transform:
                batch.append((line, reps))
                if len(batch) >= 2048:
                    flush(fh)
            else:
                if digit_re:
                    line = digit_re.sub(mark_digits, line)
                for _ in range(reps):
                    fh.write(line + "\n")
                stats.written_lines += reps
        flush(fh)
    return stats
