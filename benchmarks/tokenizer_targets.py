"""Train at one vocabulary size on the whole training split and check the issue's targets.

Prints one JSON line: training time and peak memory (measured in a fresh process), held-out
tokens/char, fertility, byte fallback and round trips for ours, the plain SentencePiece baseline
(same lines, same number of pieces, SentencePiece defaults), Tekken (131k) and Mistral's 32k
SentencePiece, plus the ratios the targets are stated in. The eval JSON/markdown/PNG are written
next to the tokenizer (runs/tokenizer_bench/targets_N/).

    nice .venv/bin/python benchmarks/tokenizer_targets.py --vocab-size 131392
"""
from __future__ import annotations

import argparse
import json
import time

import tokenizer_common as common


def _train_ours(inputs: list[str], out: str, vocab_size: int) -> dict:
    from tokenizer.config import TrainConfig
    from tokenizer.train import train

    return train(inputs, out, TrainConfig(vocab_size=vocab_size))


def _train_plain(inputs: list[str], model: str, pieces: int) -> dict:
    import resource

    from tokenizer.train import train_plain

    info = train_plain(inputs, model, pieces)
    info["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--vocab-size", type=int, default=131_392)
    args = ap.parse_args()
    paths = common.prepare()
    inputs = common.train_inputs(paths)
    out = common.WORK / f"targets_{args.vocab_size}"
    t0 = time.time()
    ours = common.run_isolated("tokenizer_targets:_train_ours", inputs, str(out), args.vocab_size)
    wall = round(time.time() - t0, 1)
    plain = common.run_isolated("tokenizer_targets:_train_plain", inputs, str(out / "plain.model"),
                                ours["layout"]["vocab_size"])

    from tokenizer.evaluate import evaluate, load_encoder, midm_encoder, write_report

    encoders = [midm_encoder("midm", out), load_encoder(f"plain-sp={out / 'plain.model'}"),
                load_encoder("tekken"), load_encoder("mistral-32k")]
    held = {"ko_web": [json.loads(l)["text"] for l in open(paths["heldout_ko_web"], encoding="utf-8")],
            "en": [json.loads(l)["text"] for l in open(paths["heldout_en"], encoding="utf-8")]}
    result = evaluate(encoders, held, reference="tekken")
    write_report(result, out / "eval")
    rows = {(r["tokenizer"], r["text"]): r for r in result["rows"]}
    line = {
        "benchmark": "tokenizer_targets", "vocab_size": args.vocab_size,
        "train_seconds": ours["seconds"], "train_wall_seconds_incl_startup": wall,
        "train_peak_rss_mb": ours["peak_rss_mb"], "hf_equivalence": ours["hf_equivalence"],
        "training_chars_written": ours["corpus"]["written_chars"], "reserved_fillers": ours["layout"]["reserved_fillers"],
        "plain_train_seconds": plain["seconds"], "plain_peak_rss_mb": plain["peak_rss_mb"],
        "heldout_docs": {k: len(v) for k, v in held.items()},
    }
    for (tok, text), r in rows.items():
        for key in ("tokens_per_char", "tokens_per_word", "byte_fallback_rate", "unk_rate", "roundtrip_exact"):
            line[f"{tok}.{text}.{key}"] = r[key]
    line["ko_web_ratio_vs_tekken"] = rows["midm", "ko_web"]["tokens_per_char_vs_tekken"]
    line["en_ratio_vs_tekken"] = rows["midm", "en"]["tokens_per_char_vs_tekken"]
    line["ko_web_ratio_vs_plain"] = round(rows["midm", "ko_web"]["tokens_per_char"] / rows["plain-sp", "ko_web"]["tokens_per_char"], 4)
    line["en_ratio_vs_plain"] = round(rows["midm", "en"]["tokens_per_char"] / rows["plain-sp", "en"]["tokens_per_char"], 4)
    big = args.vocab_size >= 100_000
    line["target_ko"] = "<= 0.75 x tekken" if big else "<= 1.0 x tekken"
    line["target_ko_met"] = line["ko_web_ratio_vs_tekken"] <= (0.75 if big else 1.0)
    if big:
        line["target_en"] = "<= 1.15 x tekken"
        line["target_en_met"] = line["en_ratio_vs_tekken"] <= 1.15
    print(json.dumps(line, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
