"""Stage 6's operating point: precision/recall curve over the classifier threshold, and its choice.

Stage 6 drops a document when a lexicon rule fires *or* P(toxic) from the fastText model is at or
above ``classifier_threshold``. The curve here scores exactly that decision (lexicon rules from
the same config, the classifier at each threshold), so the threshold chosen on the development
sets is the one the stage runs with. Rule (issue 14): the threshold with the best F1 on the
development comment sets among those that drop at most 1 % of the clean-prose and 5 % of the
clean-informal development texts — a pretraining filter must not eat edited prose or everyday
chatter to catch a few more abusive comments.
"""
from __future__ import annotations

from dataclasses import dataclass

from data_prep.classifiers.train import prf

THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 … 0.95
MAX_CLEAN_DROP = {"clean_prose": 0.01, "clean_informal": 0.05}  # share of clean dev texts dropped


@dataclass
class Scored:
    """Per text: gold label (True = toxic), whether a lexicon rule drops it, and P(toxic)."""

    gold: list[bool]
    lexicon: list[bool]
    prob: list[float]

    def decisions(self, threshold: float) -> list[bool]:
        return [lx or p >= threshold for lx, p in zip(self.lexicon, self.prob)]


def score(cfg: dict, rows: list[tuple[str, str]], model: str | None = None) -> Scored:
    """Run stage 6's lexicon rules and classifier (``cfg`` = the ``toxicity`` config section;
    ``model`` overrides its ``classifier`` path) over ``(label, text)`` rows."""
    from datatrove.data import Document

    from data_prep.classifiers.fasttext_model import FastTextScorer
    from data_prep.filters.toxicity import ToxicityStage

    lexicon_stage = ToxicityStage("/tmp/midm_toxicity_counts", {**cfg, "classifier": None})
    lexicon_stage.setup()
    scorer = FastTextScorer(model or cfg["classifier"], cfg.get("classifier_max_chars", 2000))
    gold, lexicon, prob = [], [], []
    for i, (label, text) in enumerate(rows):
        gold.append(label == "toxic")
        lexicon.append(lexicon_stage.process(Document(text=text, id=str(i))) is not None)
        prob.append(scorer.prob(text, "toxic"))
    return Scored(gold, lexicon, prob)


def curve(scored: Scored, thresholds=THRESHOLDS) -> dict[str, dict]:
    """{threshold: precision/recall/F1 of the stage's drop decision}; on an all-clean set the
    interesting figure is ``drop_rate`` (share of texts dropped), also given."""
    out = {}
    for th in thresholds:
        pred = scored.decisions(th)
        out[f"{th:.2f}"] = prf(scored.gold, pred) | {"drop_rate": round(sum(pred) / max(1, len(pred)), 4)}
    return out


def choose_threshold(dev_curve: dict[str, dict], clean_curves: dict[str, dict[str, dict]],
                     max_drop: dict[str, float] | None = None) -> float:
    """Best dev F1 among thresholds that drop at most ``max_drop[name]`` of each clean dev set
    (``clean_curves[name]`` = :func:`curve` on it; ties: the higher threshold). Raises
    ``ValueError`` when no threshold qualifies."""
    max_drop = MAX_CLEAN_DROP if max_drop is None else max_drop
    ok = [th for th in dev_curve if all(c[th]["drop_rate"] <= max_drop[name] for name, c in clean_curves.items())]
    if not ok:
        raise ValueError(f"no threshold keeps the clean dev sets within {max_drop}")
    return float(max(ok, key=lambda th: (dev_curve[th]["f1"], float(th))))
