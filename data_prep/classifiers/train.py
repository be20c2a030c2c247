"""``midm data train-classifier toxicity|quality --data ../shared/data``.

Trains the fastText model the default filter config points at, evaluates it on the held-out
parts and prints one JSON line (precision / recall / F1 per labelled set). For toxicity the
held-out parts are development sets: the line also carries stage 6's precision/recall curve on
them and the threshold the rule in ``operating_point`` picks (the default config's value); the
report set, curse-detection comments, is scored only by ``benchmarks/data_toxicity.py``. The committed
``data_prep/models/*.ftz`` were produced by exactly this command (see models/README.md).
"""
from __future__ import annotations

import json
from pathlib import Path

from data_prep.classifiers.datasets import TOXICITY_DEV_SETS, held_out, quality_examples, toxicity_sets
from data_prep.classifiers.fasttext_model import FastTextScorer, train

MODELS = Path(__file__).resolve().parents[1] / "models"


def prf(gold: list[bool], pred: list[bool]) -> dict:
    tp = sum(g and p for g, p in zip(gold, pred))
    fp = sum(p and not g for g, p in zip(gold, pred))
    fn = sum(g and not p for g, p in zip(gold, pred))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "n": len(gold),
            "positives": sum(gold)}


def evaluate(model_path: Path, tests: dict[str, list], positive: str, threshold: float = 0.5) -> dict:
    scorer = FastTextScorer(model_path)
    report = {}
    all_gold, all_pred = [], []
    for name, rows in tests.items():
        gold = [label == positive for label, _ in rows]
        pred = [scorer.prob(text, positive) >= threshold for _, text in rows]
        report[name] = prf(gold, pred)
        all_gold += gold
        all_pred += pred
    report["all"] = prf(all_gold, all_pred)
    return report


def main_train(args) -> int:
    data = Path(args.data)
    out = Path(args.out) if args.out else MODELS / f"{args.kind}.ftz"
    extra = {}
    if args.kind == "toxicity":
        from data_prep.classifiers import operating_point as op
        from data_prep.config import load_config

        sets = toxicity_sets(data)
        train_rows = [row for tr, _ in sets.values() for row in tr]
        # few epochs, low rate, no word bigrams: calibrated probabilities that transfer to
        # comments from other sites, not a fit of the training sites' phrasing (chosen on dev F1)
        train(train_rows, out, epoch=5, dim=32, minn=1, maxn=3, word_ngrams=1, lr=0.2)
        report = evaluate(out, {k: sets[k][1] for k in TOXICITY_DEV_SETS}, "toxic")
        cfg = load_config(None)["toxicity"]
        dev = op.score(cfg, [r for k in TOXICITY_DEV_SETS for r in sets[k][1]], str(out))
        dev_curve = op.curve(dev)
        clean = {k: op.curve(op.score(cfg, sets[k][1], str(out))) for k in op.MAX_CLEAN_DROP}
        extra = {"dev_curve": {th: v | {f"{k}_drop_rate": clean[k][th]["drop_rate"] for k in clean}
                               for th, v in dev_curve.items()},
                 "chosen_threshold": op.choose_threshold(dev_curve, clean),
                 "threshold_rule": f"best dev F1 with clean dev drop rates <= {op.MAX_CLEAN_DROP}"}
    else:
        rows = quality_examples(data)
        train_rows = [r for r in rows if not held_out(r[1], 0.1)]
        test_rows = [r for r in rows if held_out(r[1], 0.1)]
        train(train_rows, out, epoch=10, dim=32, minn=1, maxn=3, word_ngrams=1, lr=0.3)
        report = evaluate(out, {"heldout": test_rows}, "good")
    line = {"classifier": args.kind, "model": str(out), "model_bytes": out.stat().st_size,
            "train_examples": len(train_rows), "heldout": report} | extra
    print(json.dumps(line, ensure_ascii=False))
    if args.report:
        Path(args.report).write_text(json.dumps(line, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0
