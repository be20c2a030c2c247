"""Stage 8 — model-based quality score with a top-fraction cut.

"Keep the best 90 %" needs the score distribution of *all* documents, which no single task
sees. So the stage runs in two steps: ``quality.score`` annotates each document with P(good)
from the fastText model (trained by ``midm data train-classifier quality``) and writes a
per-task histogram; after every task has finished, ``quality.cut`` merges the histograms,
derives the threshold for ``keep_top_fraction`` and drops the documents below it. Under
Slurm the cut is a dependent job, locally it simply runs after the scoring pass.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from datatrove.data import Document

from data_prep.classifiers.fasttext_model import FastTextScorer
from data_prep.filters.base import MidmStage

LOGIT_RANGE = 14.0  # histogram over clipped log-odds: fastText probabilities pile up near 0 and 1


def score_bin(p: float, bins: int) -> int:
    """Bin of P(good) on a log-odds scale (monotone in p, so thresholds carry over)."""
    p = min(max(p, 1e-7), 1 - 1e-7)
    z = min(max(float(np.log(p / (1 - p))), -LOGIT_RANGE), LOGIT_RANGE)
    return min(bins - 1, int((z + LOGIT_RANGE) / (2 * LOGIT_RANGE) * bins))


class QualityScoreStage(MidmStage):
    stage = "quality.score"

    def __init__(self, counts_dir: str, config: dict, hist_dir: str, rejects_dir: str | None = None):
        super().__init__(counts_dir, config, rejects_dir)
        self.hist_dir = hist_dir

    def setup(self) -> None:
        self.scorer = FastTextScorer(self.config["classifier"], self.config.get("classifier_max_chars", 4000))
        self.scorer.load()
        self.bins = int(self.config.get("histogram_bins", 1000))

    def process(self, doc: Document) -> str | None:
        if not hasattr(self, "hist") or self.hist is None:
            self.hist = np.zeros(self.bins, dtype=np.int64)
        p = self.scorer.prob(doc.text, "good")
        doc.metadata.setdefault("_midm", {})["quality"] = round(p, 7)
        self.hist[score_bin(p, self.bins)] += 1
        return None

    def finish(self, rank: int, world_size: int) -> None:
        hist = getattr(self, "hist", None)
        if hist is None:
            hist = np.zeros(self.bins, dtype=np.int64)
        Path(self.hist_dir).mkdir(parents=True, exist_ok=True)
        np.save(Path(self.hist_dir) / f"{rank:05d}.npy", hist)
        self.hist = None


def threshold_bin(hist: np.ndarray, keep: float) -> tuple[int, float]:
    """(boundary bin b, share of b to keep): bins above b are kept whole, b partly.

    fastText saturates (many documents score exactly its 1e-5 floor), so the boundary bin can
    hold many ties; a deterministic hash of the document id picks which of them stay, making
    the kept fraction match ``keep`` instead of overshooting.
    """
    total = int(hist.sum())
    if total == 0 or keep >= 1.0:
        return 0, 1.0
    want = keep * total
    above = 0
    for b in range(len(hist) - 1, -1, -1):
        if above + int(hist[b]) >= want:
            return b, (want - above) / int(hist[b])
        above += int(hist[b])
    return 0, 1.0


def id_fraction(doc_id: str) -> float:
    return int(hashlib.blake2b(str(doc_id).encode("utf-8"), digest_size=8).hexdigest(), 16) / 2**64


class QualityCutStage(MidmStage):
    stage = "quality.cut"

    def __init__(self, counts_dir: str, config: dict, hist_dir: str, rejects_dir: str | None = None):
        super().__init__(counts_dir, config, rejects_dir)
        self.hist_dir = hist_dir

    def setup(self) -> None:
        files = sorted(Path(self.hist_dir).glob("*.npy"))
        hist = sum((np.load(f) for f in files), np.zeros(int(self.config.get("histogram_bins", 1000)), np.int64))
        self.bins = len(hist)
        self.min_bin, self.boundary_share = threshold_bin(hist, float(self.config.get("keep_top_fraction", 1.0)))

    def process(self, doc: Document) -> str | None:
        b = score_bin(doc.metadata.get("_midm", {}).get("quality", 1.0), self.bins)
        if b < self.min_bin or (b == self.min_bin and id_fraction(doc.id) >= self.boundary_share):
            return "below_top_fraction"
        return None
