"""Reading training/eval text and building the SentencePiece training file.

Inputs are what the data pipeline writes (JSONL or JSONL.gz with a ``text`` field) or plain text
(one document per line); directories are walked. Building the training file is two streaming
passes, so memory stays bounded by SentencePiece itself, not by us:

1. count characters per language (a line is Korean if it has at least as many Hangul letters
   as Latin letters, English if Latin letters dominate, "other" otherwise: the shared check in
   :mod:`data_prep.hangul`);
2. write every line ``weight`` times (the fractional part decided by a stable hash), with weights
   chosen so that Korean characters make up ``ko_ratio`` of the Korean+English characters. The
   under-represented language is repeated rather than the other one cut, so the majority's rare
   words still reach the trainer; ``max_train_chars`` then subsamples uniformly if set.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from data_prep.hangul import script_language

TEXT_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".txt", ".txt.gz", ".text")


def expand_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files named directly are taken as they are; directories contribute their text files, and a
    ``midm data filter`` output directory only its kept documents (:mod:`data_prep.docio.inputs`)."""
    from data_prep.docio.inputs import expand_inputs as expand

    return expand(paths, TEXT_SUFFIXES)


def is_jsonl(path: Path) -> bool:
    return path.name.lower().endswith((".jsonl", ".jsonl.gz", ".json.gz"))


def iter_documents(path: Path, text_field: str = "text", counts: Counter | None = None) -> Iterator[str]:
    """Documents of one file: JSONL records' ``text_field``, or non-empty lines of plain text.

    A damaged record (bad JSON, non-UTF-8 bytes, a broken gzip member …) is skipped and counted in
    ``counts`` by reason (:mod:`data_prep.docio.records`); a file that is not JSON Lines at all, or
    of which no line is readable, raises :class:`data_prep.errors.DataError` naming the format expected.
    """
    from data_prep.docio.records import JSONL_FORMAT, is_gzip, iter_lines, parse_record, sniff_jsonl
    from data_prep.errors import DataError

    path = Path(path)
    counts = Counter() if counts is None else counts
    jsonl = is_jsonl(path)
    expected = JSONL_FORMAT.format(key=text_field) if jsonl else "UTF-8 plain text, one document per line"
    if jsonl:
        problem = sniff_jsonl(path, text_field)
        if problem:
            raise DataError(f"{path}: expected {expected}; found {problem}")
    records = readable = 0
    with open(path, "rb") as fh:
        for raw in iter_lines(fh, gzip=is_gzip(path), stats=counts):
            if raw is None or not raw.strip():
                continue
            records += 1
            if jsonl:
                rec, reason = parse_record(raw, text_field)
                if rec is None:
                    counts[f"dropped:{reason}"] += 1
                    continue
                text = rec[text_field]
            else:
                try:
                    text = raw.decode("utf-8").rstrip("\r")
                except UnicodeDecodeError:
                    counts["dropped:invalid_utf8"] += 1
                    continue
                if not text.strip():
                    continue
            readable += 1
            yield text
    if records and not readable:
        reasons = {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("dropped:")}
        raise DataError(f"{path}: none of its {records} lines is readable ({reasons}); expected {expected}")


def iter_all_documents(paths: Iterable[str | os.PathLike], text_field: str = "text",
                       counts: Counter | None = None) -> Iterator[str]:
    for f in expand_inputs(paths):
        yield from iter_documents(f, text_field, counts)


def language_of(text: str) -> str:
    """``ko`` / ``en`` / ``other`` by script (the shared Hangul check, :func:`data_prep.hangul.script_language`)."""
    return script_language(text)


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


def iter_training_lines(paths: Iterable[str | os.PathLike], text_field: str, max_chars: int,
                        counts: Counter | None = None) -> Iterator[str]:
    for doc in iter_all_documents(paths, text_field, counts):
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
    skipped: dict[str, int] = field(default_factory=dict)  # damaged input by reason (records / gzip members)

    def as_dict(self) -> dict:
        total = self.written_chars["ko"] + self.written_chars["en"]
        return {"files": self.files, "input_lines": self.lines, "input_chars": self.chars, "skipped": self.skipped,
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
    skipped: Counter = Counter()
    for line in iter_training_lines(paths, text_field, max_line_chars, skipped):
        lang = language_of(line)
        stats.lines[lang] += 1
        stats.chars[lang] += len(line)
    stats.skipped = {k.removeprefix("dropped:"): v for k, v in sorted(skipped.items()) if v}
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
