"""Toxicity filtering quality: stage 6 with the default config on an unseen Korean comment set.

Protocol (issue 14, data_prep/README.md "Toxicity"):
* train — BEEP! hate-speech train split, 80 % of KoSBi (by text hash), clean prose and informal text;
* dev — BEEP! dev split + the other 20 % of KoSBi, plus clean prose and clean informal text
  (10-star reviews) held out by hash: the threshold is chosen here
  (``data_prep/classifiers/operating_point.py``);
* report — the curse-detection comments (community sites, 5,825 labelled), never used for
  training or tuning.

Prints one JSON line: stage 6 at the default config on the report set (``report_default``),
the precision/recall/F1 curve over the classifier threshold on the report and dev sets, the
share of the clean dev texts the default drops, and the threshold the dev rule picks (which must be the
config's). ``python benchmarks/data_toxicity.py [--data ../shared/data]``
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datatrove.data import Document  # noqa: E402

from data_prep.classifiers import operating_point as op  # noqa: E402
from data_prep.classifiers.datasets import (  # noqa: E402
    TOXICITY_DEV_SETS, TOXICITY_REPORT_SET, curse_detection, toxicity_sets)
from data_prep.classifiers.train import MODELS, prf  # noqa: E402
from data_prep.config import load_config  # noqa: E402
from data_prep.filters.toxicity import ToxicityStage  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--model", default=str(MODELS / "toxicity.ftz"))
    args = ap.parse_args(argv)
    data = Path(args.data)
    t0 = time.perf_counter()
    cfg = load_config(None)["toxicity"]
    threshold = float(cfg["classifier_threshold"])
    sets = toxicity_sets(data)
    report_rows = curse_detection(data)
    report = op.score(cfg, report_rows, args.model)
    dev = op.score(cfg, [r for k in TOXICITY_DEV_SETS for r in sets[k][1]], args.model)
    clean = {k: op.score(cfg, sets[k][1], args.model) for k in op.MAX_CLEAN_DROP}
    dev_curve = op.curve(dev)
    stage = ToxicityStage("/tmp/midm_bench_counts", {**cfg, "classifier": args.model})
    stage.setup()  # the stage exactly as `midm data filter` runs it with the default config
    default = [stage.process(Document(text=t, id=str(i))) is not None for i, (_, t) in enumerate(report_rows)]
    out = {
        "benchmark": "data_toxicity", "model": args.model,
        "protocol": {"train": [f"{k}/train" for k in sets], "dev": [f"{k}/dev" for k in sets],
                     "report": TOXICITY_REPORT_SET,
                     "threshold_rule": f"best dev F1 with clean dev drop rates <= {op.MAX_CLEAN_DROP}"},
        "default_threshold": threshold,
        "threshold_chosen_on_dev": op.choose_threshold(dev_curve, {k: op.curve(v) for k, v in clean.items()}),
        "report_set": TOXICITY_REPORT_SET, "report_docs": len(report_rows),
        "report_default": prf(report.gold, default),
        "report_lexicon_rules_only": prf(report.gold, report.lexicon),
        "report_curve": op.curve(report),
        "dev_default": prf(dev.gold, dev.decisions(threshold)),
        "dev_curve": dev_curve,
        "clean_dev_docs": {k: len(v.gold) for k, v in clean.items()},
        "clean_dev_drop_rate_default": {k: round(sum(v.decisions(threshold)) / max(1, len(v.gold)), 4)
                                        for k, v in clean.items()},
        "seconds": round(time.perf_counter() - t0, 2),
    }
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
