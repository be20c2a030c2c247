"""Filter throughput: docs/s per core for the 8-stage pipeline, plus time per stage.

Runs ``midm data filter`` end to end with ONE task on ONE worker (so docs/s = docs/s/core) on
a corpus (default: a Korean web/review/statute mix built from ../shared/data), then replays
the documents through each stage object alone to attribute the time. Any JSONL corpus can be
given with --input. Prints one JSON line.

``--baseline fineweb2`` then runs, in the same process on the same corpus, datatrove's FineWeb-2
Korean chain (``benchmarks/fineweb2_chain.py``: its steps, ``kor_Hang`` thresholds and Kiwi
words; which steps and why some are left out are listed there and in the output) with one task on
one worker too, and reports both docs/s per core and ``ratio`` = ours / theirs. ``--repeat N`` runs
the two N times, alternating (ours, theirs, ours, …), so a changing machine load affects both alike;
CPU time is this process's plus its children's (``resource.getrusage``), and the ratios are computed
from the sums over the repeats.

    python benchmarks/data_filter_throughput.py [--input FILE.jsonl] [--docs 20000] [--baseline fineweb2] [--repeat 2]
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its waited-for children (all threads)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def default_corpus(path: Path, n_docs: int) -> None:
    """Web comments, movie reviews and statute articles in a 45/45/10 document mix."""
    docs = []
    for f in sorted(glob.glob(str(SHARED / "corpora/korean_hate_speech_unlabeled/unlabeled/*.txt"))):
        docs += [{"text": t.strip(), "source": "comments"} for t in open(f, encoding="utf-8") if t.strip()]
    comments = docs[: int(n_docs * 0.45)]
    with open(SHARED / "corpora/nsmc_raw_reviews/nsmc_style_100k.tsv", encoding="utf-8") as fh:
        reviews = [{"text": r["document"], "source": "nsmc"} for r in csv.DictReader(fh, delimiter="\t")
                   if r.get("document")][: int(n_docs * 0.45)]
    statutes = []
    for line in open(SHARED / "corpora/korean_statutes/korean_statutes_sample_every5th.jsonl", encoding="utf-8"):
        text = json.loads(line)["text"]
        statutes += [{"text": text[i:i + 4000], "source": "statutes"} for i in range(0, len(text), 4000)]
        if len(statutes) >= n_docs * 0.10:
            break
    with open(path, "w", encoding="utf-8") as fh:
        for i, d in enumerate(comments + reviews + statutes):
            fh.write(json.dumps({"id": str(i), **d}, ensure_ascii=False) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", help="JSONL corpus (default: built from ../shared/data)")
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--stages", default=None, help="comma list (default: all 8)")
    ap.add_argument("--baseline", choices=["fineweb2"], help="also time FineWeb-2's Korean chain (datatrove)")
    ap.add_argument("--no-replay", action="store_true", help="skip the per-stage replay timing")
    ap.add_argument("--repeat", type=int, default=1, help="run ours and the baseline N times, alternating")
    args = ap.parse_args(argv)
    from data_prep.config import load_config
    from data_prep.executors import ExecOptions
    from data_prep.pipeline import run_filter

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(args.input) if args.input else Path(tmp) / "corpus.jsonl"
        if not args.input:
            default_corpus(corpus, args.docs)
        n_bytes = corpus.stat().st_size
        stages = args.stages.split(",") if args.stages else None
        cfg = load_config(None, stages)
        cfg["io"]["tasks"] = 1
        ours_runs, base_runs = [], []
        for i in range(max(1, args.repeat)):
            t0, cpu0 = time.perf_counter(), cpu_seconds()  # tasks=1, workers=1: runs in this process
            stats = run_filter([str(corpus)], str(Path(tmp) / f"out{i}"), cfg, ExecOptions(kind="local", workers=1),
                               fresh=True)
            ours_runs.append((time.perf_counter() - t0, cpu_seconds() - cpu0))
            if args.baseline:
                base_runs.append(fineweb2_run(corpus, Path(tmp) / f"fineweb2_{i}"))
        wall, cpu = sum(r[0] for r in ours_runs), sum(r[1] for r in ours_runs)
        per_stage = None if args.no_replay else stage_times(corpus, cfg, Path(tmp) / "replay")
    n_runs = len(ours_runs)
    ours = stats["records_read"] * n_runs / wall
    extra = {}
    if base_runs:
        b_wall, b_cpu = sum(b["wall_s"] for b in base_runs), sum(b["cpu_s"] for b in base_runs)
        base = {**base_runs[-1], "wall_s": [b["wall_s"] for b in base_runs], "cpu_s": [b["cpu_s"] for b in base_runs],
                "docs_per_s_per_core": round(stats["records_read"] * n_runs / b_wall, 2),
                "docs_per_cpu_s": round(stats["records_read"] * n_runs / b_cpu, 2)}
        extra = {"ratio_docs_per_s_per_core": round(b_wall / wall, 2), "ratio_docs_per_cpu_s": round(b_cpu / cpu, 2),
                 "baseline": base}
    print(json.dumps({
        "benchmark": "data_filter_throughput", "corpus": str(args.input or "shared mix (comments/reviews/statutes)"),
        "docs": stats["records_read"], "mb": round(n_bytes / 1e6, 2), "kept": stats["kept"], "tasks": 1,
        "workers": 1, "repeat": n_runs, "wall_s": [round(r[0], 2) for r in ours_runs],
        "cpu_s": [round(r[1], 2) for r in ours_runs],
        "docs_per_s_per_core": round(ours, 1),
        "mb_per_s_per_core": round(n_bytes * n_runs / 1e6 / wall, 3),
        "docs_per_cpu_s": round(stats["records_read"] * n_runs / cpu, 1),
        "mb_per_cpu_s": round(n_bytes * n_runs / 1e6 / cpu, 3),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "stage_seconds_replay": per_stage, "dropped": stats["dropped"], "balanced": stats["balanced"], **extra,
    }, ensure_ascii=False))
    return 0


def fineweb2_run(corpus: Path, work: Path) -> dict:
    """Time FineWeb-2's Korean chain (``benchmarks/fineweb2_chain.py``) on ``corpus``, 1 task, 1 worker."""
    import gzip

    from fineweb2_chain import STEPS_LEFT_OUT, STEPS_RUN, fineweb2_executors

    n_docs = sum(1 for _ in open(corpus, encoding="utf-8"))
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    for ex in fineweb2_executors(corpus, work):
        ex.run()
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    kept = sum(1 for f in (work / "output").glob("*.jsonl.gz") for _ in gzip.open(f, "rt", encoding="utf-8"))
    return {"chain": "fineweb2 kor_Hang (datatrove)", "steps_run": STEPS_RUN, "steps_left_out": STEPS_LEFT_OUT,
            "kept": kept, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "docs_per_s_per_core": n_docs / wall, "docs_per_cpu_s": n_docs / cpu}


def stage_times(corpus: Path, cfg: dict, work: Path) -> dict:
    """Each streaming stage's own processing time on the documents that reach it."""
    from datatrove.data import Document

    from data_prep.pipeline import RunPaths, _stage_steps

    docs = []
    for i, line in enumerate(open(corpus, encoding="utf-8")):
        r = json.loads(line)
        docs.append(Document(text=r.pop("text"), id=str(r.pop("id", i)), metadata=r))
    names = [s for s in cfg["stages"] if s != "dedup"]
    steps = _stage_steps(names, cfg, RunPaths(work), keep_rejects=False)
    out = {}
    for name, step in zip(names, steps):
        t = time.perf_counter()
        step.setup()
        setup = time.perf_counter() - t
        t, c = time.perf_counter(), cpu_seconds()
        survivors = [d for d in docs if step.process(d) is None]
        out[name] = {"docs_in": len(docs), "seconds": round(time.perf_counter() - t, 3),
                     "cpu_s": round(cpu_seconds() - c, 3), "setup_s": round(setup, 2)}
        docs = survivors
    return out


if __name__ == "__main__":
    sys.exit(main())
