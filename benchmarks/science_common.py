"""Shared pieces of the tiny-scale science runs (DuS and prune + distill) on real text.

Data: Korean statutes and English Wikipedia from ``../shared/data`` (see its SOURCE.txt files),
cut into ~2 KB documents, byte-level tokenized exactly like the tests (UTF-8 bytes 0–255, EOD 256,
vocabulary padded to 384) and dealt round-robin into three *disjoint* Megatron prefixes:
``A`` (parent pretraining), ``B`` (continued training after DuS) and ``C`` (student training after
pruning), so every comparison trains on text its teacher/parent never saw, and all runs of one
comparison share the same validation split of the same prefix.

Every run goes through the real CLI (``python -m midm …``) in a subprocess, under ``nice``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from megatron_ext.run_files import read_curve, read_summary  # noqa: E402
from midm.runs import run_midm as runner  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "corpora"
VOCAB, EOD = 384, 256
SOURCES = (SHARED / "korean_statutes" / "korean_statutes_sample_every5th.jsonl",
           SHARED / "english_gensim_testdata" / "enwiki_sample_plaintext.jsonl")


def _documents(path: Path, chunk_bytes: int = 2048):
    for line in path.read_text(encoding="utf-8").splitlines():
        text = json.loads(line).get("text", "")
        data = text.encode("utf-8")
        for i in range(0, len(data), chunk_bytes):
            piece = data[i:i + chunk_bytes].decode("utf-8", errors="ignore").strip()
            if len(piece) > 200:
                yield piece


def byte_prefixes(out_dir: Path, total_bytes: int = 6_000_000) -> dict[str, str]:
    """Prefixes ``A`` (1/2 of the documents), ``B`` and ``C`` (1/4 each), built once."""
    import numpy as np
    import torch
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    out_dir.mkdir(parents=True, exist_ok=True)
    prefixes = {name: str(out_dir / f"science_{name}") for name in "ABC"}
    if all(Path(p + ".idx").exists() for p in prefixes.values()):
        return prefixes
    missing = [str(p) for p in SOURCES if not p.exists()]
    if missing:
        raise SystemExit(f"science benchmarks need ../shared/data: missing {missing}")
    streams = [_documents(p) for p in SOURCES]
    builders = {name: IndexedDatasetBuilder(p + ".bin", dtype=np.uint16) for name, p in prefixes.items()}
    deal, used, i = "AABC", 0, 0
    while used < total_bytes and streams:
        stream = streams[i % len(streams)]
        try:
            doc = next(stream)
        except StopIteration:
            streams.remove(stream)
            continue
        ids = list(doc.encode("utf-8")) + [EOD]
        # Consecutive documents alternate between the sources; deal them in pairs so that every
        # prefix gets the same Korean/English mix.
        builders[deal[(i // len(SOURCES)) % 4]].add_document(torch.tensor(ids, dtype=torch.int64), [len(ids)])
        used += len(ids)
        i += 1
    for name, builder in builders.items():
        builder.finalize(prefixes[name] + ".idx")
    return prefixes


def run_midm(args: list[str], log: Path, requeues: int = 3) -> None:
    """``python -m midm ARGS`` under nice, output to ``log`` (the shared runner, ``midm/runs.py``)."""
    runner(args, log, nice=10, env={"OMP_NUM_THREADS": "1"}, requeues=requeues)
    print(f"[science] done: midm {' '.join(args[:3])} … ({log})", file=sys.stderr, flush=True)


def train_sets(work: Path, name: str, prefix: str, steps: int, eval_interval: int) -> list[str]:
    return ["--set", f"data.blend={prefix}", "--set", f"model.vocab_size={VOCAB}", "--set", f"logging.dir={work}",
            "--set", f"logging.run_name={name}", "--set", f"train.steps={steps}",
            "--set", f"train.eval_interval={eval_interval}", "--set", "train.eval_steps=8",
            "--set", f"checkpoint.save_interval={steps}", "--set", "logging.tensorboard=false",
            "--set", "data.split=95,5,0"]


def val_curve(run_dir: Path) -> list[tuple[int, float]]:
    return read_curve(run_dir)["val_curve"]


def train_seconds(run_dirs: list[Path]) -> float:
    """Wall seconds of the training runs themselves (from each run's summary.json; reruns reuse them)."""
    return round(sum((read_summary(d) or {}).get("seconds", 0.0) for d in run_dirs), 1)


def plot(curves: dict[str, list[tuple[int, float]]], path: Path, title: str, tokens_per_step: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for label, points in curves.items():
        ax.plot([s * tokens_per_step for s, _ in points], [v for _, v in points], marker="o", ms=3, label=label,
                ls="--" if "seed" in label else "-")
    ax.set_xlabel("training tokens (this stage)")
    ax.set_ylabel("validation loss (nats/byte)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
