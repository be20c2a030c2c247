"""Train, save (quantised ``.ftz``) and apply small fastText models.

fastText is the fast classifier the web-data literature uses (FineWeb-Edu/DCLM quality
filters); with character n-grams (``minn``/``maxn``) it copes with Korean agglutination
without a segmenter, predicts ~100k short documents/s per core, and quantised with a
vocabulary cutoff the model stays well under 1 MB, small enough to commit. Training runs
single-threaded with a fixed seed, so the same data gives the same model.
"""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path


def prepare(text: str, max_chars: int = 2000) -> str:
    """One line, lower-cased, whitespace-collapsed: the form used for training and prediction.

    ``" ".join(s.split())`` is ``re.sub(r"\\s+", " ", s).strip()`` (the same whitespace test) at half the cost."""
    return " ".join(text[:max_chars].split()).lower()


def train(examples: list[tuple[str, str]], out_path: str | Path, *, epoch: int = 15, dim: int = 32,
          minn: int = 1, maxn: int = 3, word_ngrams: int = 2, lr: float = 0.5, cutoff: int = 25000,
          seed: int = 0) -> Path:
    """``examples``: (label, text). Writes a quantised model to ``out_path`` (``.ftz``).

    fastText trains in a fresh (spawned) process: its SGD diverged to "Encountered NaN" on the very
    same data in a process where Kiwi (kiwipiepy's SIMD code) had run before, so the result must not
    depend on what the calling process did earlier. Raises RuntimeError as fastText does.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    rng = random.Random(seed)
    rows = [f"__label__{label} {prepare(text)}" for label, text in examples if prepare(text)]
    rng.shuffle(rows)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        train_file = os.path.join(tmp, "train.txt")
        Path(train_file).write_text("\n".join(rows) + "\n", encoding="utf-8")
        params = dict(epoch=epoch, dim=dim, minn=minn, maxn=maxn, wordNgrams=word_ngrams, lr=lr, seed=seed)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pool.submit(_train_quantize, train_file, str(out_path), params, cutoff).result()
    return out_path


def _train_quantize(train_file: str, out_path: str, params: dict, cutoff: int) -> None:
    import fasttext

    model = fasttext.train_supervised(input=train_file, thread=1, verbose=0, bucket=200000, **params)
    model.quantize(input=train_file, qnorm=True, retrain=True, cutoff=cutoff, thread=1, verbose=0)
    model.save_model(out_path)


class FastTextScorer:
    """Loads lazily; ``prob(text, label)`` = the model's probability of ``label``."""

    def __init__(self, path: str | Path, max_chars: int = 2000):
        self.path = str(path)
        self.max_chars = max_chars
        self._model = None

    def load(self):
        if self._model is None:
            if not Path(self.path).is_file():
                raise FileNotFoundError(
                    f"classifier model {self.path} not found: train it with `midm data train-classifier` "
                    f"(see data_prep/models/README.md) or disable the stage with --stages")
            import fasttext

            fasttext.FastText.eprint = lambda *a, **k: None  # silence the load warning
            self._model = fasttext.load_model(self.path)
        return self._model

    def prob(self, text: str, label: str) -> float:
        labels, probs = self.load().predict(prepare(text, self.max_chars), k=-1)
        for lab, p in zip(labels, probs):
            if lab == f"__label__{label}":
                return float(min(1.0, p))
        return 0.0
