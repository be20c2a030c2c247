"""`midm data tokenize` beside Megatron-LM's `tools/preprocess_data.py`: same corpus, tokenizer, workers.

Default corpus: ``--mb`` MB (default 100) of Korean JSONL built from ../shared/data (statutes,
NSMC reviews, hate-speech comments and news titles, Debian/LibreOffice docs), repeated with fresh
ids until the size is reached. Default tokenizer: ``midm tokenizer train --vocab-size 32768`` on the
first 20 MB of it (a real Mi:dm tokenizer directory: ``tokenizer.model`` + its HF twin).

Both sides run as users run them, each a fresh process timed from start to exit:

* ours: ``python -m midm data tokenize CORPUS PREFIX --tokenizer DIR --workers W`` (default flags);
* with ``--megatron-lm PATH`` (a Megatron-LM checkout; nothing of it is copied here):
  ``python PATH/tools/preprocess_data.py --input CORPUS --output-prefix P --tokenizer-type
  SentencePieceTokenizer --tokenizer-model DIR/tokenizer.model --workers W --append-eod``.

Then both ``.bin/.idx`` are opened with Megatron-Core's ``IndexedDataset`` and compared document by
document (``identical_ids``). Prints one JSON line: wall and CPU seconds (CPU: the process and its
workers; on a shared machine the steadier of the two), docs/s, the speed-up, the encoder backend
our summary reports, and the load average.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MIDM_SHARED_DATA", REPO.parent / "shared" / "data")) / "corpora"


def korean_texts() -> list[str]:
    sys.path.insert(0, str(REPO))
    from data_prep.docio.records import iter_records

    texts: list[str] = []
    for path in sorted((SHARED / "korean_statutes").glob("*.jsonl")) + sorted((SHARED / "debian_ko_docs").glob("*.jsonl")):
        texts += [r["text"] for r in iter_records(path)]
    with open(SHARED / "nsmc_raw_reviews" / "nsmc_style_100k.tsv", encoding="utf-8") as fh:
        texts += [r["document"] for r in csv.DictReader(fh, delimiter="\t") if r.get("document")]
    for path in sorted((SHARED / "korean_hate_speech_unlabeled").rglob("*.txt")):
        texts += [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return [t for t in texts if t.strip()]


def build_corpus(path: Path, megabytes: float) -> int:
    texts, size, n = korean_texts(), 0, 0
    with open(path, "w", encoding="utf-8") as out:
        while size < megabytes * 1e6:
            for text in texts:
                line = json.dumps({"id": f"doc{n}", "text": text}, ensure_ascii=False) + "\n"
                out.write(line)
                size += len(line.encode("utf-8"))
                n += 1
                if size >= megabytes * 1e6:
                    break
    return n


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and every process it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} … failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def same_ids(a: str, b: str) -> bool:
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    x, y = IndexedDataset(a), IndexedDataset(b)
    return len(x) == len(y) and all((x[i] == y[i]).all() for i in range(len(x)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", help="JSONL with `text` (default: --mb MB of Korean from ../shared/data)")
    ap.add_argument("--mb", type=float, default=100.0)
    ap.add_argument("--tokenizer", help="midm tokenizer directory (default: trained here, 32,768 ids)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--megatron-lm", help="Megatron-LM checkout: run its tools/preprocess_data.py side by side")
    ap.add_argument("--workdir", help="keep the corpus, tokenizer and outputs here (default: a temp dir)")
    args = ap.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        corpus = Path(args.input) if args.input else work / "corpus.jsonl"
        if not args.input and not corpus.exists():
            build_corpus(corpus, args.mb)
        tok = Path(args.tokenizer) if args.tokenizer else work / "tok"
        if not args.tokenizer and not (tok / "tokenizer.model").exists():
            sample = work / "tok_sample.jsonl"
            with open(corpus, "rb") as src, open(sample, "wb") as dst:
                for line in src:
                    dst.write(line)
                    if dst.tell() >= 20e6:
                        break
            timed([sys.executable, "-m", "midm", "tokenizer", "train", "--input", str(sample),
                   "--vocab-size", "32768", "--output", str(tok)], env)
        ours_prefix = work / "ours"
        for ext in (".bin", ".idx", ".summary.json"):
            Path(f"{ours_prefix}{ext}").unlink(missing_ok=True)
        ours_s, ours_cpu = timed([sys.executable, "-m", "midm", "data", "tokenize", str(corpus), str(ours_prefix),
                        "--tokenizer", str(tok), "--workers", str(args.workers)], env)
        summary = json.loads(Path(f"{ours_prefix}.summary.json").read_text())
        result = {"benchmark": "data_tokenize_throughput", "corpus_mb": round(corpus.stat().st_size / 1e6, 1),
                  "documents": summary["documents"], "tokens": summary["tokens"], "workers": args.workers,
                  "backend": summary["backend"], "backend_reason": summary["backend_reason"],
                  "midm_wall_s": round(ours_s, 1), "midm_cpu_s": round(ours_cpu, 1),
                  "midm_docs_per_s": round(summary["documents"] / ours_s)}
        if args.megatron_lm:
            mlm_prefix = work / "mlm"
            cmd = [sys.executable, str(Path(args.megatron_lm) / "tools" / "preprocess_data.py"), "--input", str(corpus),
                   "--output-prefix", str(mlm_prefix), "--tokenizer-type", "SentencePieceTokenizer",
                   "--tokenizer-model", str(tok / "tokenizer.model"), "--workers", str(args.workers), "--append-eod"]
            mlm_s, mlm_cpu = timed(cmd, {**env, "PYTHONPATH": str(args.megatron_lm)})
            result.update({"megatron_lm_wall_s": round(mlm_s, 1), "megatron_lm_cpu_s": round(mlm_cpu, 1),
                           "megatron_lm_docs_per_s": round(summary["documents"] / mlm_s),
                           "speedup": round(mlm_s / ours_s, 2), "cpu_ratio": round(mlm_cpu / ours_cpu, 2),
                           "identical_ids": same_ids(str(ours_prefix), f"{mlm_prefix}_text_document")})
        result["load_average_1m"] = round(os.getloadavg()[0], 2)
        result["cpus"] = os.cpu_count()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
