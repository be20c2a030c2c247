"""Labelled examples for our two classifiers, with deterministic held-out splits.

Splits are by a hash of the text (not by position), so a re-run reproduces them exactly and
duplicates never straddle train and test. The hate-speech set keeps its own dev file as the
held-out part.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

from data_prep.docio.records import iter_records

Example = tuple[str, str]  # (label, text)


def held_out(text: str, fraction: float = 0.2) -> bool:
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


def _split(rows: list[Example], fraction: float = 0.2) -> tuple[list[Example], list[Example]]:
    train = [r for r in rows if not held_out(r[1], fraction)]
    test = [r for r in rows if held_out(r[1], fraction)]
    return train, test


def toxicity_sets(data: Path) -> dict[str, tuple[list[Example], list[Example]]]:
    """{set name: (train, test)} with labels ``toxic`` / ``clean``."""
    f = data / "filters"
    sets: dict[str, tuple[list[Example], list[Example]]] = {}

    def beep(path: Path) -> list[Example]:
        with open(path, encoding="utf-8") as fh:
            reader = csv.DictReader(fh, delimiter="\t")
            return [("toxic" if r["hate"] in ("hate", "offensive") else "clean", r["comments"]) for r in reader]

    beep_dir = f / "korean_hate_speech_beep" / "labeled"
    sets["korean_hate_speech"] = (beep(beep_dir / "train.tsv"), beep(beep_dir / "dev.tsv"))
    curse = []
    for line in (f / "curse_detection_2runo" / "dataset.txt").read_text(encoding="utf-8").splitlines():
        text, _, label = line.rpartition("|")
        if text.strip() and label.strip() in ("0", "1"):
            curse.append(("toxic" if label.strip() == "1" else "clean", text))
    sets["curse_detection"] = _split(curse)
    kosbi = json.loads((f / "kosbi_square" / "data" / "KoSBi" / "kosbi_test.json").read_text(encoding="utf-8"))
    sets["kosbi"] = _split([("toxic" if r["sentence_label"] == "unsafe" else "clean", r["sentence"]) for r in kosbi])
    return sets


def _chunks(text: str, size: int = 1500) -> list[str]:
    paras, out, cur = [p for p in re.split(r"\n+", text) if p.strip()], [], ""
    for p in paras:
        cur = f"{cur}\n{p}" if cur else p
        if len(cur) >= size:
            out.append(cur)
            cur = ""
    if len(cur) > 200:
        out.append(cur)
    return out


def quality_examples(data: Path, per_source: int = 2500) -> list[Example]:
    """``good``: edited prose (statutes, government news, Wikipedia, news). ``bad``: web chatter."""
    c = data / "corpora"
    good: list[str] = []
    for record in iter_records(c / "korean_statutes" / "korean_statutes_sample_every5th.jsonl"):
        good += _chunks(record["text"])[:3]
    good = good[:per_source]
    for name in ("korea_kr.txt", "wikipedia.txt"):
        good += _chunks((data / "filters" / "ko_pii" / "clean_docs" / name).read_text(encoding="utf-8"), 800)
    news_lines: list[str] = []
    for part in ("dev", "test"):
        news_lines += (c / "korean_english_parallel" / "korean-english-news-v1" /
                       f"korean-english-park.{part}.ko").read_text(encoding="utf-8").splitlines()
    good += ["\n".join(news_lines[i:i + 8]) for i in range(0, min(len(news_lines), per_source * 8), 8)]
    for record in iter_records(c / "english_gensim_testdata" / "enwiki_sample_plaintext.jsonl"):
        good += _chunks(record["text"])[:10]
    bad: list[str] = []
    for path in sorted((c / "korean_hate_speech_unlabeled" / "unlabeled").glob("*.txt")):
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        bad += ["\n".join(lines[i:i + 3]) for i in range(0, len(lines), 3)]
    bad = bad[:per_source]
    with open(c / "nsmc_raw_reviews" / "nsmc_style_100k.tsv", encoding="utf-8") as fh:
        reviews = [r["document"] for r in csv.DictReader(fh, delimiter="\t") if r.get("document")]
    bad += ["\n".join(reviews[i:i + 3]) for i in range(0, min(len(reviews), per_source * 3), 3)]
    return [("good", t) for t in good] + [("bad", t) for t in bad]
