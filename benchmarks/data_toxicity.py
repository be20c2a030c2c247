"""Toxicity filtering quality on the held-out parts of the labelled Korean sets.

Two views, both on the same held-out documents (hate-speech dev split; hash-split 20 % of the
curse-detection and KoSBi sets, never seen in training):
* ``classifier``: the committed fastText model alone at P(toxic) >= 0.5;
* ``stage``: what stage 6 actually drops with the default config (lexicons + classifier rule).
Prints one JSON line.   python benchmarks/data_toxicity.py [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datatrove.data import Document  # noqa: E402

from data_prep.classifiers.datasets import toxicity_sets  # noqa: E402
from data_prep.classifiers.train import MODELS, evaluate, prf  # noqa: E402
from data_prep.config import load_config  # noqa: E402
from data_prep.filters.toxicity import ToxicityStage  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--model", default=str(MODELS / "toxicity.ftz"))
    args = ap.parse_args(argv)
    tests = {k: te for k, (_, te) in toxicity_sets(Path(args.data)).items()}
    t0 = time.perf_counter()
    classifier = evaluate(Path(args.model), tests, "toxic")
    cfg = load_config(None)["toxicity"]
    cfg["classifier"] = args.model
    stage = ToxicityStage("/tmp/midm_bench_counts", cfg)
    stage.setup()
    stage_report, all_gold, all_pred = {}, [], []
    n = 0
    for name, rows in tests.items():
        gold = [label == "toxic" for label, _ in rows]
        pred = [stage.process(Document(text=text, id=str(i))) is not None for i, (_, text) in enumerate(rows)]
        stage_report[name] = prf(gold, pred)
        all_gold += gold
        all_pred += pred
        n += len(rows)
    stage_report["all"] = prf(all_gold, all_pred)
    rows = [r for v in tests.values() for r in v]
    probs = [stage.scorer.prob(text, "toxic") for _, text in rows]
    gold = [label == "toxic" for label, _ in rows]
    sweep = {str(th): prf(gold, [p >= th for p in probs]) for th in (0.5, 0.8, 0.9, 0.97, 0.99)}
    print(json.dumps({"benchmark": "data_toxicity", "model": args.model, "heldout_docs": n,
                      "classifier_at_0.5": classifier, "stage_default_config": stage_report,
                      "classifier_threshold_sweep_all": sweep,
                      "seconds": round(time.perf_counter() - t0, 2)}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
