"""PII masking quality on ko_pii: span recall per type, precision, false positives on clean text.

A gold span counts as found when a predicted span with the *same placeholder token* overlaps
it and covers at least half of its non-space characters (gold spans often include a label
such as ``신한은행`` or ``팩스`` that need not be masked). A predicted span is correct when it
overlaps a gold span with the same token. Prints one JSON line.

    python benchmarks/data_pii.py [--data ../shared/data/filters/ko_pii]
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_prep.pii import PII_TOKENS, PiiDetector  # noqa: E402

GOLD_TO_OURS = {"PERSON": "PERSON", "PHONE": "PHONE", "FAX": "PHONE", "ADDRESS": "ADDRESS", "RRN": "RRN",
                "FRN": "FRN", "EMAIL": "EMAIL", "ACCOUNT": "ACCOUNT", "CARD": "CARD", "IP": "IP",
                "PASSPORT": "PASSPORT", "DRIVER_LICENSE": "DRIVER_LICENSE", "BUSINESS_REG": "BUSINESS_REG",
                "CORP_REG": "CORP_REG", "VEHICLE": "VEHICLE", "MEDICAL_INSURANCE": "HEALTH_INSURANCE"}
STRUCTURED = ["PHONE", "EMAIL", "RRN", "FRN", "ACCOUNT", "CARD", "IP", "PASSPORT", "DRIVER_LICENSE",
              "BUSINESS_REG", "CORP_REG", "VEHICLE", "HEALTH_INSURANCE"]


def covered(gold: dict, preds, token: str, text: str) -> bool:
    chars = [i for i in range(gold["start"], gold["end"]) if not text[i].isspace()]
    hit = set()
    for p in preds:
        if PII_TOKENS[p.type] == token and p.start < gold["end"] and p.end > gold["start"]:
            hit.update(range(max(p.start, gold["start"]), min(p.end, gold["end"])))
    return bool(chars) and sum(i in hit for i in chars) >= 0.5 * len(chars)


def klue_person(det, path: Path) -> dict:
    """Person names on KLUE-NER dev (news/wiki sentences, PS tags), a set the rules never saw.

    Only PS entities that are Korean full names (2–4 Hangul syllables starting with a common
    surname) count for recall: single surnames (박씨), foreign and stage names are not what the
    PII stage targets. ``person_predictions_outside_ps`` = predicted PERSON spans overlapping no
    PS entity at all, per 100 sentences (a false-positive proxy).
    """
    from data_prep.pii.names import SURNAMES_1, SURNAMES_2

    found = total = outside = sentences = 0
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        rows = [ln.split("\t") for ln in block.splitlines() if ln and not ln.startswith("##")]
        if not rows:
            continue
        sentences += 1
        text = "".join(r[0] for r in rows)
        ents, cur = [], None
        for i, r in enumerate(rows):
            tag = r[1] if len(r) > 1 else "O"
            if tag == "B-PS":
                cur = [i, i + 1]
                ents.append(cur)
            elif tag == "I-PS" and cur:
                cur[1] = i + 1
            else:
                cur = None
        preds = [p for p in det.detect(text) if p.type == "PERSON"]
        for a, b in ents:
            name = text[a:b]
            full = 2 <= len(name) <= 4 and all("가" <= c <= "힣" for c in name) and (
                name[0] in SURNAMES_1 or name[:2] in SURNAMES_2)
            if full:
                total += 1
                found += any(p.start < b and p.end > a for p in preds)
        outside += sum(not any(p.start < b and p.end > a for a, b in ents) for p in preds)
    return {"sentences": sentences, "korean_full_names": total, "recall": round(found / max(1, total), 4),
            "person_predictions_outside_ps_per_100_sentences": round(100 * outside / max(1, sentences), 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/filters/ko_pii"))
    ap.add_argument("--klue", default=str(Path(__file__).resolve().parents[2] /
                                          "shared/data/benchmarks/klue_dev/klue-ner-v1.1_dev.tsv"),
                    help="KLUE-NER dev: an independent check of person names (not used for tuning)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    det = PiiDetector()
    det.detect("담당자 김민수 과장, 서울특별시 강남구 역삼동 1")  # load Kiwi before timing
    found, total = Counter(), Counter()
    tp, fp, fp_types = 0, 0, Counter()
    misses = defaultdict(list)
    t0 = time.perf_counter()
    n_chars = 0
    docs = [json.loads(line) for line in open(Path(args.data) / "eval_corpus.jsonl", encoding="utf-8")]
    for d in docs:
        text = d["text"]
        n_chars += len(text)
        preds = det.detect(text)
        gold = [g for g in d["spans"]]
        for g in gold:
            ours = GOLD_TO_OURS.get(g["label"])
            if ours is None:
                continue
            total[ours] += 1
            if covered(g, preds, PII_TOKENS[ours], text):
                found[ours] += 1
            else:
                misses[ours].append((text[max(0, g["start"] - 12):g["start"]], g["text"]))
        for p in preds:
            ok = any(GOLD_TO_OURS.get(g["label"]) and PII_TOKENS[GOLD_TO_OURS[g["label"]]] == PII_TOKENS[p.type]
                     and p.start < g["end"] and p.end > g["start"] for g in gold)
            if ok:
                tp += 1
            else:
                fp += 1
                fp_types[p.type] += 1
                if args.verbose:
                    print("FP", p.type, repr(text[max(0, p.start - 10):p.start]), repr(text[p.start:p.end]), file=sys.stderr)
    elapsed = time.perf_counter() - t0
    if args.verbose:
        for k, v in misses.items():
            for m in v[:15]:
                print("MISS", k, m, file=sys.stderr)
    clean_fp = Counter()
    clean_chars = 0
    for f in sorted((Path(args.data) / "clean_docs").glob("*.txt")):
        for doc in re.split(r"^=== .* ===$", f.read_text(encoding="utf-8"), flags=re.M):
            if doc.strip():
                clean_chars += len(doc)
                for p in det.detect(doc):
                    clean_fp[p.type] += 1
                    if args.verbose:
                        print("CLEAN", p.type, repr(doc[max(0, p.start - 10):p.end + 5]), file=sys.stderr)
    klue = klue_person(det, Path(args.klue)) if Path(args.klue).is_file() else None
    recall = {k: round(found[k] / total[k], 4) for k in sorted(total)}
    s_found = sum(found[k] for k in STRUCTURED)
    s_total = sum(total[k] for k in STRUCTURED)
    print(json.dumps({
        "benchmark": "data_pii", "docs": len(docs), "gold_spans": sum(total.values()),
        "recall_per_type": recall, "support_per_type": dict(sorted(total.items())),
        "recall_structured_micro": round(s_found / s_total, 4),
        "recall_person": recall.get("PERSON"), "recall_address": recall.get("ADDRESS"),
        "precision": round(tp / max(1, tp + fp), 4), "false_positives_by_type": dict(fp_types),
        "clean_docs_chars": clean_chars, "clean_docs_detections_by_type": dict(clean_fp),
        "clean_docs_detections_per_10k_chars": round(10000 * sum(clean_fp.values()) / max(1, clean_chars), 3),
        "chars_per_s": round(n_chars / elapsed),
        "klue_ner_dev_person": klue,
    }, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
