"""`midm data tokenize` throughput (docs/s and docs/s per worker), optionally beside Megatron-LM.

Any corpus (--input JSONL, field `text`) and any tokenizer directory (--tokenizer, the
`tokenizer.load_tokenizer` layout) can be given; by default it uses the 100k NSMC reviews and
trains a 16k byte-level BPE on them (what DESIGN.md measured Megatron-LM with). With
--megatron-lm PATH (a Megatron-LM checkout) the same corpus, tokenizer and worker count go
through its tools/preprocess_data.py and both timings are reported; otherwise the comparison
uses the figure its docs publish (6–7k docs/s with 16 workers ≈ 406 docs/s per worker).
Prints one JSON line.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PUBLISHED_DOCS_PER_S_PER_WORKER = 6500 / 16


def build_corpus(path: Path) -> None:
    with open(SHARED / "corpora/nsmc_raw_reviews/nsmc_style_100k.tsv", encoding="utf-8") as fh, \
            open(path, "w", encoding="utf-8") as out:
        for r in csv.DictReader(fh, delimiter="\t"):
            if r.get("document"):
                out.write(json.dumps({"id": r["review_id"], "text": r["document"]}, ensure_ascii=False) + "\n")


def build_tokenizer(corpus: Path, out: Path, vocab: int = 16000) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    texts = (json.loads(line)["text"] for line in open(corpus, encoding="utf-8"))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<pad>", "<|end_of_text|>"]
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab, special_tokens=specials,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    (out / "midm_tokenizer.json").write_text(json.dumps({
        "bos_id": 0, "pad_id": 1, "eos_id": 2, "vocab_size": tok.get_vocab_size(),
        "padded_vocab_size": -(-tok.get_vocab_size() // 64) * 64, "special_tokens": {s: i for i, s in enumerate(specials)},
        "byte_ids": [None, None]}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input")
    ap.add_argument("--tokenizer")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--megatron-lm", help="Megatron-LM checkout to run tools/preprocess_data.py side by side")
    args = ap.parse_args(argv)
    from data_prep.tokenization.megatron import main_tokenize

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = Path(args.input) if args.input else tmp / "nsmc.jsonl"
        if not args.input:
            build_corpus(corpus)
        tok_dir = Path(args.tokenizer) if args.tokenizer else tmp / "tok"
        if not args.tokenizer:
            build_tokenizer(corpus, tok_dir)
        ns = SimpleNamespace(input=str(corpus), out_prefix=str(tmp / "ours"), tokenizer=str(tok_dir),
                             workers=args.workers, text_key="text", shard_mb=2.0, batch_docs=2000,
                             no_progress=True, keep_shards=False)
        t0 = time.perf_counter()
        import megatron.core.datasets.indexed_dataset  # noqa: F401  (one-time import, reported apart)
        import_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        main_tokenize(ns)
        wall = time.perf_counter() - t0
        summary = json.loads(Path(f"{tmp / 'ours'}.summary.json").read_text())
        ours = summary["documents"] / wall / args.workers
        result = {"benchmark": "data_tokenize_throughput", "corpus": str(args.input or "nsmc 100k reviews"),
                  "mb": round(corpus.stat().st_size / 1e6, 2), "tokenizer": str(args.tokenizer or "16k byte-level BPE"),
                  "backend": summary["backend"], "workers": args.workers, "documents": summary["documents"],
                  "tokens": summary["tokens"], "megatron_core_import_s": round(import_s, 2), "wall_s": round(wall, 2),
                  "docs_per_s": round(summary["documents"] / wall), "docs_per_s_per_worker": round(ours),
                  "docs_per_s_incl_import": round(summary["documents"] / (wall + import_s)),
                  "load_average_1m": round(os.getloadavg()[0], 2)}
        if args.megatron_lm:
            cmd = [sys.executable, os.path.join(args.megatron_lm, "tools", "preprocess_data.py"), "--input", str(corpus),
                   "--output-prefix", str(tmp / "mlm"), "--tokenizer-type", "HuggingFaceTokenizer",
                   "--tokenizer-model", str(tok_dir), "--workers", str(args.workers), "--append-eod"]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": args.megatron_lm})
            base = summary["documents"] / (time.perf_counter() - t0) / args.workers
            result.update({"megatron_lm_docs_per_s_per_worker": round(base), "speedup_vs_megatron_lm": round(ours / base, 2)})
        else:
            result.update({"megatron_lm_published_docs_per_s_per_worker": round(PUBLISHED_DOCS_PER_S_PER_WORKER),
                           "speedup_vs_published": round(ours / PUBLISHED_DOCS_PER_S_PER_WORKER, 2)})
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
