"""Encoding throughput of a trained tokenizer (what ``midm data tokenize`` pays), one JSON line.

Compares ``MidmTokenizer.encode_batch`` (HF ``tokenizers``, Rust, parallel) with a plain loop
over ``SentencePieceProcessor.encode`` on the Korean + English training split, and checks that
both produce the same ids. CPU seconds are reported beside wall seconds because the 2 cores here
are shared (the load average is recorded too).

    nice .venv/bin/python benchmarks/tokenizer_throughput.py --tokenizer runs/tokenizer_bench/targets_131392
"""
from __future__ import annotations

import argparse
import json
import os
import time

import tokenizer_common as common


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tokenizer", default=str(common.WORK / "targets_131392"))
    ap.add_argument("--max-docs", type=int, default=60_000)
    args = ap.parse_args()
    import sentencepiece as spm

    from tokenizer import load_tokenizer

    paths = common.prepare()
    docs = []
    for key in ("train_ko_web", "train_en", "train_ko_other"):
        with open(paths[key], encoding="utf-8") as fh:
            docs += [json.loads(line)["text"] for line in fh]
    docs = docs[: args.max_docs]
    mb = sum(len(d.encode("utf-8")) for d in docs) / 1e6
    tok = load_tokenizer(args.tokenizer)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(args.tokenizer, "tokenizer.model"))
    t0, c0 = time.perf_counter(), time.process_time()
    hf_ids = tok.encode_batch(docs)
    t_hf, c_hf = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    sp_ids = [sp.encode(d) for d in docs]
    t_sp, c_sp = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({
        "benchmark": "tokenizer_throughput", "tokenizer": args.tokenizer, "docs": len(docs), "mb": round(mb, 2),
        "tokens": sum(map(len, hf_ids)), "cores": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "encode_batch_s": round(t_hf, 2), "encode_batch_cpu_s": round(c_hf, 2),
        "encode_batch_mb_per_s": round(mb / t_hf, 2),
        "sentencepiece_loop_s": round(t_sp, 2), "sentencepiece_loop_cpu_s": round(c_sp, 2),
        "sentencepiece_loop_mb_per_s": round(mb / t_sp, 2),
        "identical_ids": hf_ids == sp_ids,
    }))


if __name__ == "__main__":
    main()
