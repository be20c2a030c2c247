"""Rebuild the bundled demo sample from ../shared/data (run from the repository root).

Documents are grouped the way they appear on the web (a comment thread, a page of movie reviews,
an article), so the filters see realistic document lengths. Licenses: see ATTRIBUTION.md.
"""
from __future__ import annotations

import csv
import gzip
import json
import random
import re
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent


def grouped(lines: list[str], size: int) -> list[str]:
    return ["\n".join(lines[i:i + size]) for i in range(0, len(lines), size)]


def main() -> None:
    rng = random.Random(1234)
    docs: list[dict] = []
    corpora = SHARED / "corpora"

    comments = (corpora / "korean_hate_speech_unlabeled/unlabeled/unlabeled_comments_5.txt").read_text().splitlines()
    for i, text in enumerate(grouped([c for c in comments if c.strip()][:9000], 12)):
        docs.append({"id": f"comments-{i}", "source": "korean_hate_speech_unlabeled", "text": text})

    with open(corpora / "nsmc_raw_reviews/nsmc_style_100k.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))[:12000]
    by_movie: dict[str, list[str]] = {}
    for row in rows:
        by_movie.setdefault(row["movie_id"], []).append(row["document"])
    for movie, reviews in by_movie.items():
        for j, text in enumerate(grouped(reviews, 15)):
            docs.append({"id": f"nsmc-{movie}-{j}", "source": "nsmc", "text": text})

    for line in (corpora / "korean_statutes/korean_statutes_sample_every5th.jsonl").read_text().splitlines()[:150]:
        law = json.loads(line)
        docs.append({"id": f"statute-{law['law_id']}", "source": "korean_statutes", "text": law["text"][:5000]})

    with open(corpora / "songys_chatbot_data/ChatbotData.csv") as f:
        pairs = [f"{r['Q']}\n{r['A']}" for r in csv.DictReader(f)][:4000]
    for i, text in enumerate(grouped(pairs, 10)):
        docs.append({"id": f"chatbot-{i}", "source": "songys_chatbot", "text": text})

    wiki = (corpora / "english_wikitext2/valid.txt").read_text()
    for i, article in enumerate(re.split(r"\n \n = (?!=)", wiki)):
        text = re.sub(r" @(.)@ ", r"\1", article).replace(" , ", ", ").replace(" . ", ". ").strip(" =\n")
        if len(text) > 400:
            docs.append({"id": f"wikitext-{i}", "source": "wikitext2", "text": text[:6000]})

    plays = (corpora / "english_tinyshakespeare/input.txt").read_text()[:300_000].split("\n\n")
    for i, text in enumerate(grouped(plays, 12)):
        docs.append({"id": f"shakespeare-{i}", "source": "tinyshakespeare", "text": text})

    rng.shuffle(docs)
    with gzip.open(OUT / "web_sample.jsonl.gz", "wt", encoding="utf-8") as f:
        for doc in docs:
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")
    sizes: dict[str, int] = {}
    for doc in docs:
        sizes[doc["source"]] = sizes.get(doc["source"], 0) + len(doc["text"].encode())
    print(len(docs), "documents", {k: f"{v / 1e6:.2f} MB" for k, v in sizes.items()})


LABELS = {"entailment": 0, "neutral": 1, "contradiction": 2}


def write_benchmarks(per_label: int = 50) -> None:
    """KLUE-NLI and KorNLI dev samples in the Hugging Face Hub layout that `midm eval --data-dir` reads."""
    bench = SHARED / "benchmarks"
    klue = json.loads((bench / "klue_dev/klue-nli-v1.1_dev.json").read_text())
    rows = [{"guid": r["guid"], "source": r["source"], "premise": r["premise"], "hypothesis": r["hypothesis"],
             "label": LABELS[r["gold_label"]]} for r in klue]
    _write_hub(OUT / "benchmarks/klue/klue", "nli", _balanced(rows, per_label), "klue/klue", "KLUE-NLI dev")
    with open(bench / "kornlu/KorNLI/xnli.dev.ko.tsv") as f:
        rows = [{"premise": r["sentence1"], "hypothesis": r["sentence2"], "label": LABELS[r["gold_label"]]}
                for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if r["gold_label"] in LABELS]
    _write_hub(OUT / "benchmarks/kakaobrain/kor_nli", "xnli", _balanced(rows, per_label), "kakaobrain/kor_nli",
               "KorNLI (XNLI dev, Korean)")


def _balanced(rows: list[dict], per_label: int) -> list[dict]:
    taken: dict[int, int] = {}
    out = []
    for row in rows:
        if taken.get(row["label"], 0) < per_label:
            taken[row["label"]] = taken.get(row["label"], 0) + 1
            out.append(row)
    return out


def _write_hub(root: Path, config: str, rows: list[dict], hub_id: str, what: str) -> None:
    (root / config).mkdir(parents=True, exist_ok=True)
    with open(root / config / "validation.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    (root / "README.md").write_text(
        f"---\nlicense: cc-by-sa-4.0\nconfigs:\n- config_name: {config}\n  data_files:\n  - split: validation\n"
        f"    path: {config}/validation.jsonl\n---\nOffline copy in the Hub layout of `{hub_id}` (config `{config}`): "
        f"{len(rows)} rows of the {what} set, balanced over the 3 labels (see demo_data/ATTRIBUTION.md).\n")


if __name__ == "__main__":
    main()
    write_benchmarks()
