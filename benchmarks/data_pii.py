"""PII masking quality on ko_pii: span recall per type, precision, false positives on clean text.

Person names are also scored on KLUE-NER dev (``klue_ner_person``), split by position: sentences
1–2,500 and ko_pii are the development sets the name rules were written against; sentences
2,501–5,000 are the held-out report set, never inspected while writing them (data_prep/README.md,
"PII").

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


# The recall set's definition, fixed here and independent of the rules' own lists: PS entities
# that start with a common Korean surname (single, or compound for 3–4 syllables).
_SURNAMES_1 = set("김이박최정강조윤장임한오서신권황안송류유전홍고문양손배백허남심노하곽성차주우구민진나지엄채원천방공현함변염"
                  "여추도소석선설마길연위표명기반왕금옥육인맹제모탁국어은편용예봉경사부가복태목형계피두감음빈동온호범좌팽승간상갈단견당화창")
_SURNAMES_2 = ("남궁", "황보", "제갈", "선우", "독고", "사공", "서문", "동방", "어금", "망절")
KLUE_DEV_SENTENCES = 2500  # protocol: sentences 1–2500 develop the rules, 2501–5000 are held out


def _klue_sentences(path: Path) -> list[tuple[str, list[tuple[int, int]]]]:
    """KLUE-NER dev as (sentence, PS entity character spans)."""
    out = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        rows = [ln.split("\t") for ln in block.splitlines() if ln and not ln.startswith("##")]
        if not rows:
            continue
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
        out.append(("".join(r[0] for r in rows), [(a, b) for a, b in ents]))
    return out


def klue_person(det, sentences: list[tuple[str, list[tuple[int, int]]]]) -> dict:
    """Person names on KLUE-NER sentences (news, wiki, reviews; character-level PS tags).

    * ``recall_korean_full_names`` — PS entities of the standard Korean full-name shape: a
      common surname + two syllables (3 syllables), or a compound surname + one or two. This is
      what PII masking targets; it still includes foreign and fictional names of that shape.
    * ``recall_surname_initial_2to4`` — the wider set this benchmark used before (2–4 Hangul
      syllables starting with a surname syllable): it adds two-syllable mentions, mostly given
      names alone (서영, 지아) or one-syllable-given names (장혁), and names such as 도라에몽.
    * ``precision`` — predicted PERSON spans that overlap a PS entity / all predicted PERSON spans.
    """
    full = surname = fn = fs = ps_all = ps_found = tp = npred = 0
    for text, ents in sentences:
        preds = [p for p in det.detect(text) if p.type == "PERSON"]
        for a, b in ents:
            name = text[a:b]
            hit = any(p.start < b and p.end > a for p in preds)
            ps_all += 1
            ps_found += hit
            if 2 <= len(name) <= 4 and all("가" <= c <= "힣" for c in name) and (
                    name[0] in _SURNAMES_1 or name[:2] in _SURNAMES_2):
                surname += 1
                fs += hit
                if (len(name) == 3 and name[0] in _SURNAMES_1) or (name[:2] in _SURNAMES_2 and len(name) > 2):
                    full += 1
                    fn += hit
        npred += len(preds)
        tp += sum(any(p.start < b and p.end > a for a, b in ents) for p in preds)
    return {"sentences": len(sentences), "korean_full_names": full,
            "recall_korean_full_names": round(fn / max(1, full), 4),
            "surname_initial_2to4": surname, "recall_surname_initial_2to4": round(fs / max(1, surname), 4),
            "ps_entities": ps_all, "recall_all_ps": round(ps_found / max(1, ps_all), 4),
            "predicted_person_spans": npred, "precision": round(tp / max(1, npred), 4)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/filters/ko_pii"))
    ap.add_argument("--klue", default=str(Path(__file__).resolve().parents[2] /
                                          "shared/data/benchmarks/klue_dev/klue-ner-v1.1_dev.tsv"),
                    help="KLUE-NER dev: person names; its first 2,500 sentences develop the name rules, "
                         "the other 2,500 are held out (reported, never used for tuning)")
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
    klue = None
    if Path(args.klue).is_file():
        sentences = _klue_sentences(Path(args.klue))
        klue = {"dev_sentences_1_2500": klue_person(det, sentences[:KLUE_DEV_SENTENCES]),
                "heldout_sentences_2501_5000": klue_person(det, sentences[KLUE_DEV_SENTENCES:])}
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
        "klue_ner_person": klue,
    }, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
