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


# Toxicity protocol (issue 14): train on the hate-speech train split, 80 % of KoSBi and clean prose /
# informal text; choose the threshold on the *dev* parts (hate-speech dev split, the other 20 % of
# KoSBi, clean dev texts); report on the curse-detection comments, which are used for nothing else.
TOXICITY_DEV_SETS = ("korean_hate_speech", "kosbi")
TOXICITY_REPORT_SET = "curse_detection"


def _beep(path: Path) -> list[Example]:
    with open(path, encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        return [("toxic" if r["hate"] in ("hate", "offensive") else "clean", r["comments"]) for r in reader]


def curse_detection(data: Path) -> list[Example]:
    """The report set: 5,825 community comments labelled curse (1) / not (0), all of them."""
    rows = []
    path = data / "filters" / "curse_detection_2runo" / "dataset.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        text, _, label = line.rpartition("|")
        if text.strip() and label.strip() in ("0", "1"):
            rows.append(("toxic" if label.strip() == "1" else "clean", text))
    return rows


def toxicity_sets(data: Path) -> dict[str, tuple[list[Example], list[Example]]]:
    """{set name: (train, dev)} for the toxicity classifier, labels ``toxic`` / ``clean``.

    ``korean_hate_speech`` (BEEP!, train / dev files), ``kosbi`` (80 / 20 % by text hash) and
    ``clean_prose`` (news, everyday sentences, statutes for training; other news and
    government/Wikipedia text as dev) and ``clean_informal`` (chatbot turns, 10-star movie
    reviews), all ``clean`` — the model is trained on the train parts and its threshold chosen
    on the dev parts. The report set
    (:func:`curse_detection`) is not in here on purpose.
    """
    f = data / "filters"
    sets: dict[str, tuple[list[Example], list[Example]]] = {}
    beep_dir = f / "korean_hate_speech_beep" / "labeled"
    sets["korean_hate_speech"] = (_beep(beep_dir / "train.tsv"), _beep(beep_dir / "dev.tsv"))
    kosbi = json.loads((f / "kosbi_square" / "data" / "KoSBi" / "kosbi_test.json").read_text(encoding="utf-8"))
    sets["kosbi"] = _split([("toxic" if r["sentence_label"] == "unsafe" else "clean", r["sentence"]) for r in kosbi])
    sets["clean_prose"] = clean_prose(data)
    sets["clean_informal"] = clean_informal(data)
    return sets


def clean_informal(data: Path, n_reviews: int = 5000) -> tuple[list[Example], list[Example]]:
    """(train, dev) of ``clean`` informal Korean: chatbot turns and 10-star movie reviews (NSMC).

    Comment style is not toxicity: trained on comments and prose alone, the model learns
    "informal = toxic" (measured: it dropped 25 of the 60 NSMC reviews in the test sample,
    praise included). Praise (rating 10) is a labelled-enough clean informal set; 20 % of it
    (by text hash) is the dev check of how much informal text the threshold drops.
    """
    c = data / "corpora"
    with open(c / "songys_chatbot_data" / "ChatbotData.csv", encoding="utf-8") as fh:
        chat = [(r["Q"], r["A"]) for r in csv.DictReader(fh)]
    with open(c / "nsmc_raw_reviews" / "nsmc_style_100k.tsv", encoding="utf-8") as fh:
        praise = [r["document"] for r in csv.DictReader(fh, delimiter="\t")
                  if r.get("rating") == "10" and r.get("document", "").strip()][:n_reviews]
    train = [t for q, a in chat[::4] for t in (q, a) if t.strip()]
    train += [t for t in praise if not held_out(t)]
    return [("clean", t) for t in train], [("clean", t) for t in praise if held_out(t)]


def clean_prose(data: Path) -> tuple[list[Example], list[Example]]:
    """(train, dev) of ``clean`` texts a web filter must pass: edited prose and polite chat.

    A model trained on comments alone calls most news prose "toxic" (measured: 46 % of news
    paragraphs at P >= 0.5), because prose is out of its distribution; these negatives, at
    comment length and at paragraph length, teach it otherwise. Train: news dev, JHE everyday
    sentences, statute articles; dev: news test paragraphs and the korea.kr / Wikipedia clean
    documents of ``ko_pii``.
    """
    c = data / "corpora"
    par = c / "korean_english_parallel"
    train: list[str] = []
    news = (par / "korean-english-news-v1" / "korean-english-park.dev.ko").read_text(encoding="utf-8").splitlines()
    train += [t for t in news if t.strip()]
    train += ["\n".join(news[i:i + 4]) for i in range(0, len(news), 4)]
    for name in ("jhe-koen-dev.ko", "jhe-koen-eval.ko"):
        train += [t for t in (par / "korean-english-jhe" / name).read_text(encoding="utf-8").splitlines() if t.strip()]
    statutes: list[str] = []
    for record in iter_records(c / "korean_statutes" / "korean_statutes_sample_every5th.jsonl"):
        statutes += [ln for ln in record["text"].splitlines() if len(ln) >= 20][:4]
    train += statutes[:1200]
    test_news = (par / "korean-english-news-v1" / "korean-english-park.test.ko").read_text(encoding="utf-8").splitlines()
    dev = ["\n".join(test_news[i:i + 8]) for i in range(0, len(test_news), 8)]
    for name in ("korea_kr.txt", "wikipedia.txt"):
        dev += _chunks((data / "filters" / "ko_pii" / "clean_docs" / name).read_text(encoding="utf-8"), 800)
    return [("clean", t) for t in train], [("clean", t) for t in dev]


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
