"""Shared by benchmarks/tokenizer_*.py: the train / held-out split of ../shared/data corpora.

Korean web text (korean_hate_speech_unlabeled comments + news titles, NSMC reviews) and English
(WikiText-2 paragraphs, gensim Wikipedia articles) are de-duplicated exactly, then a stable hash of
each document's text puts ~10% of them in the held-out sets; the rest, plus the other corpora
(statutes, chatbot Q/A, parallel news, Debian/LibreOffice docs, kobill/kolaw, fortunes,
Shakespeare), is the training input. Hashing the text means duplicates never straddle the split.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("MIDM_SHARED_DATA", REPO.parent / "shared" / "data")) / "corpora"
WORK = Path(os.environ.get("MIDM_TOK_BENCH_DIR", REPO / "runs" / "tokenizer_bench"))
HELDOUT_FRACTION = 0.10


def _held_out(text: str) -> bool:
    h = hashlib.blake2b(("heldout:" + text).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**64 < HELDOUT_FRACTION


def _lines(path: Path) -> list[str]:
    return [ln.rstrip("\r") for ln in path.read_text(encoding="utf-8", errors="replace").split("\n") if ln.strip()]


def _jsonl_texts(path: Path, field: str = "text") -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.strip():
            t = json.loads(line).get(field)
            if t:
                out.append(t)
    return out


def korean_web() -> list[str]:
    docs = []
    d = SHARED / "korean_hate_speech_unlabeled"
    docs += _lines(d / "unlabeled" / "unlabeled_comments_5.txt")
    docs += [t.strip('"') for t in _lines(d / "news_title" / "unlabeled_comments.news_title_5.txt")]
    with open(SHARED / "nsmc_raw_reviews" / "nsmc_style_100k.tsv", encoding="utf-8") as fh:
        docs += [row["document"] for row in csv.DictReader(fh, delimiter="\t") if row.get("document", "").strip()]
    return docs


def english_eval_sources() -> list[str]:
    docs = []
    for name in ("valid.txt", "test.txt"):
        docs += [ln for ln in _lines(SHARED / "english_wikitext2" / name) if not ln.strip().startswith("=")]
    docs += _jsonl_texts(SHARED / "english_gensim_testdata" / "enwiki_sample_plaintext.jsonl")
    return docs


def korean_other() -> list[str]:
    docs = _jsonl_texts(SHARED / "korean_statutes" / "korean_statutes_sample_every5th.jsonl")
    with open(SHARED / "songys_chatbot_data" / "ChatbotData.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            docs += [row["Q"], row["A"]]
    for f in sorted((SHARED / "korean_english_parallel").rglob("*")):
        if f.suffix in (".ko", ".nk"):
            docs += _lines(f)
    for f in sorted((SHARED / "debian_ko_docs").glob("*.jsonl")):
        docs += _jsonl_texts(f)
    for f in sorted((SHARED / "konlpy_kobill_kolaw").rglob("*.txt")):
        docs.append(f.read_text(encoding="utf-8", errors="replace"))
    return docs


def english_other() -> list[str]:
    docs = []
    for f in sorted((SHARED / "english_fortunes").iterdir()):
        if f.is_file() and f.name != "SOURCE.txt":
            docs += [t.strip() for t in f.read_text(encoding="utf-8", errors="replace").split("\n%\n") if t.strip()]
    docs += [t for t in (SHARED / "english_tinyshakespeare" / "input.txt").read_text(encoding="utf-8").split("\n\n") if t.strip()]
    for f in sorted((SHARED / "korean_english_parallel").rglob("*.en")):
        docs += _lines(f)
    return docs


def _write(path: Path, docs: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")


def prepare(work: Path = WORK) -> dict[str, Path]:
    """Write (once) and return the split: train_*.jsonl and heldout_{ko_web,en}.jsonl."""
    work.mkdir(parents=True, exist_ok=True)
    paths = {k: work / f"{k}.jsonl" for k in ("train_ko_web", "train_ko_other", "train_en", "heldout_ko_web", "heldout_en")}
    if all(p.is_file() for p in paths.values()):
        return paths
    ko = list(dict.fromkeys(korean_web()))
    en = list(dict.fromkeys(english_eval_sources()))
    _write(paths["train_ko_web"], [d for d in ko if not _held_out(d)])
    _write(paths["heldout_ko_web"], [d for d in ko if _held_out(d)])
    _write(paths["train_en"], [d for d in en if not _held_out(d)] + english_other())
    _write(paths["heldout_en"], [d for d in en if _held_out(d)])
    _write(paths["train_ko_other"], korean_other())
    return paths


def train_inputs(paths: dict[str, Path]) -> list[str]:
    return [str(paths[k]) for k in ("train_ko_web", "train_ko_other", "train_en")]


def run_isolated(func: str, *args) -> dict:
    """Run ``module:function(*args)`` in a fresh process (so its peak RSS is its own); return its JSON."""
    import subprocess

    code = ("import json,sys,importlib;sys.path.insert(0,%r);sys.path.insert(0,%r);m,f=%r.split(':');"
            "r=getattr(importlib.import_module(m),f)(*json.loads(sys.argv[1]));print('\\n@@'+json.dumps(r))"
            % (str(REPO), str(Path(__file__).parent), func))
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(list(args))], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{func} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.rsplit("\n@@", 1)[1])
