"""Ablation of the Korean-aware training options (one JSON line per variant on stdout).

Each variant changes one option of ``BASE`` (plus the plain SentencePiece baseline, trained on
the same lines with SentencePiece's defaults, and ``final``, today's defaults), trains at ``--vocab-size``
on the training split of ../shared/data, and is measured with its SentencePiece model on the
held-out Korean web text and English (see tokenizer_common.py for the split).

    nice .venv/bin/python benchmarks/tokenizer_ablation.py [--vocab-size 32768] [--only kiwi,...]
"""
from __future__ import annotations

import argparse
import json
import time

import tokenizer_common as common

from tokenizer.config import TrainConfig
from tokenizer.evaluate import measure, sentencepiece_encoder
from tokenizer.train import train, train_plain

# The starting point each variant changes one thing of (the first candidate defaults); "final" is
# TrainConfig()'s defaults as chosen from these rows.
BASE = {"ko_ratio": 0.7, "character_coverage": 0.9999, "normalization": "identity", "split_digits": True,
        "digit_space_prefix": False, "add_dummy_prefix": False, "pretokenize": "none",
        "split_by_unicode_script": True}
VARIANTS: dict[str, dict] = {
    "base": {},
    "dummy_prefix": {"add_dummy_prefix": True},
    "no_split_digits": {"split_digits": False},
    "digit_space_prefix": {"digit_space_prefix": True},
    "coverage_0.9995": {"character_coverage": 0.9995},
    "coverage_1.0": {"character_coverage": 1.0},
    "nmt_nfkc": {"normalization": "nmt_nfkc"},
    "no_script_split": {"split_by_unicode_script": False},
    "ko_ratio_natural": {"ko_ratio": None},
    "ko_ratio_0.5": {"ko_ratio": 0.5},
    "ko_ratio_0.6": {"ko_ratio": 0.6},
    "ko_ratio_0.8": {"ko_ratio": 0.8},
    "kiwi": {"pretokenize": "kiwi"},
    "final": None,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--vocab-size", type=int, default=32768)
    ap.add_argument("--only", help="comma-separated variant names (plus 'plain')")
    args = ap.parse_args()
    paths = common.prepare()
    inputs = common.train_inputs(paths)
    held = {"ko_web": [json.loads(l)["text"] for l in open(paths["heldout_ko_web"], encoding="utf-8")],
            "en": [json.loads(l)["text"] for l in open(paths["heldout_en"], encoding="utf-8")]}
    names = args.only.split(",") if args.only else ["plain", *VARIANTS]
    base = {**TrainConfig(vocab_size=args.vocab_size).to_dict(), **BASE}
    for name in names:
        out = common.WORK / "ablation" / f"{args.vocab_size}_{name}"
        t0 = time.time()
        if name == "plain":
            info = train_plain(inputs, out / "plain.model", args.vocab_size - 8)
            model, changes, summary = out / "plain.model", {"sentencepiece_defaults": True}, {}
        else:
            changes = VARIANTS[name]
            cfg = TrainConfig(vocab_size=args.vocab_size) if changes is None else TrainConfig(**{**base, **changes})
            if changes is None:
                changes = {k: v for k, v in cfg.to_dict().items() if base.get(k) != v}
            summary = train(inputs, out, cfg)
            model = out / "tokenizer.model"
        seconds = round(time.time() - t0, 1)
        enc = sentencepiece_encoder(name, model)
        metrics = {label: measure(enc, docs) for label, docs in held.items()}
        row = {"benchmark": "tokenizer_ablation", "variant": name, "changes": changes,
               "vocab_size": args.vocab_size, "train_seconds": seconds,
               "coverage_used": summary.get("character_coverage_used"),
               "hf_equivalent": (summary.get("hf_equivalence", {}).get("encode_mismatches") == 0) if summary else None}
        for label, m in metrics.items():
            for key in ("tokens_per_char", "tokens_per_word", "byte_fallback_rate", "unk_rate", "roundtrip_exact"):
                row[f"{label}_{key}"] = m[key]
        print(json.dumps(row, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
