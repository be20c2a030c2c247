"""``midm tokenizer train | eval | export`` (heavy libraries are imported inside each command)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from midm.errors import MidmError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="midm tokenizer", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a SentencePiece BPE tokenizer in Mi:dm's special-token layout",
                       description="Train on JSONL(.gz) (`text` field) or plain-text files/directories. Writes "
                                   "tokenizer.model, the HF files, midm_tokenizer.json and train_summary.json.")
    t.add_argument("--input", nargs="+", required=True, metavar="FILE_OR_DIR",
                   help="JSONL(.gz) with a `text` field or plain-text files, or directories of them (several allowed)")
    t.add_argument("--vocab-size", type=int, help="padded vocabulary size (131392 reproduces Mi:dm's ids)")
    t.add_argument("--output", required=True, metavar="DIR", help="directory to write the tokenizer into")
    t.add_argument("--config", metavar="FILE", help="YAML/JSON with TrainConfig keys (tokenizer/config.py)")
    t.add_argument("--ko-ratio", type=float, help="Korean share of Korean+English training characters")
    t.add_argument("--pretokenize", choices=["none", "kiwi"],
                   help="kiwi: split Korean at morpheme boundaries (Kiwi) before BPE; none: raw text "
                        "(default: the config's, none)")
    t.add_argument("--verbose", action="store_true", help="show SentencePiece's own progress log")
    t.add_argument("--plain", action="store_true",
                   help="train the baseline instead: SentencePiece BPE defaults, no layout (writes DIR/plain.model)")
    t.add_argument("--overwrite", action="store_true",
                   help="replace a tokenizer already in --output (.bin/.idx files made with it no longer match it)")

    e = sub.add_parser("eval", help="tokens/char, fertility, byte fallback, round trip vs baselines",
                       description="Writes eval.json, eval.md and eval.png into --output.")
    e.add_argument("--tokenizer", required=True, metavar="DIR", help="tokenizer directory from `midm tokenizer train`")
    e.add_argument("--text", nargs="+", required=True, metavar="[LABEL=]FILE",
                   help="held-out JSONL(.gz) with `text` or plain text (one document per line)")
    e.add_argument("--baseline", default="tekken,mistral-32k",
                   help="comma-separated: tekken, tekken-240718, mistral-32k, mistral-32k-v1, NAME=PATH; '' for none")
    e.add_argument("--name", default="midm", help="label of the evaluated tokenizer")
    e.add_argument("--max-docs", type=int, help="use at most this many documents per text file")
    e.add_argument("--output", metavar="DIR", help="default: TOKENIZER/eval")

    x = sub.add_parser("export", help="write a Hugging Face tokenizer directory (with chat template)",
                       description="Writes tokenizer.json, tokenizer_config.json (Llama-3-style chat template), "
                                   "special_tokens_map.json, plus tokenizer.model and midm_tokenizer.json.")
    x.add_argument("--tokenizer", required=True, metavar="DIR", help="tokenizer directory from `midm tokenizer train`")
    x.add_argument("--output", required=True, metavar="HF_DIR", help="Hugging Face tokenizer directory to write")
    x.add_argument("--model-max-length", type=int, default=32768,
                   help="model_max_length in tokenizer_config.json (default 32768, Mi:dm 2.0's context)")
    return p


class OutputExists(MidmError, RuntimeError):
    """``--output`` already holds a tokenizer and ``--overwrite`` was not given."""


def _refuse_to_replace(out: Path, names: tuple[str, ...]) -> None:
    """Raise ``OutputExists`` when ``out`` holds any of ``names``: checked before any training."""
    existing = [name for name in names if (out / name).exists()]
    if existing:
        raise OutputExists(f"{out} already holds a tokenizer ({', '.join(existing)}); data tokenized with it "
                           "(.bin/.idx) would no longer match a retrained one. Write to a new --output, or pass "
                           "--overwrite to replace it.")


def _train(args) -> int:
    from .api import META_FILE
    from .config import TrainConfig
    from .train import train, train_plain

    if not args.overwrite:
        _refuse_to_replace(Path(args.output), ("plain.model",) if args.plain else
                           ("tokenizer.model", META_FILE, "tokenizer.json"))
    cfg = TrainConfig.from_file(args.config) if args.config else TrainConfig()
    if args.vocab_size is not None:
        cfg.vocab_size = args.vocab_size
    if args.ko_ratio is not None:
        cfg.ko_ratio = args.ko_ratio
    if args.pretokenize is not None:
        cfg.pretokenize = args.pretokenize
    cfg.__post_init__()
    if args.plain:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        summary = train_plain(args.input, out / "plain.model", cfg.vocab_size, cfg.text_field)
        (out / "plain_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    else:
        summary = train(args.input, args.output, cfg, verbose=args.verbose)
    print(json.dumps(summary, ensure_ascii=False))
    return 0


def _eval(args) -> int:
    from .evaluate import evaluate, load_encoder, load_texts, midm_encoder, write_report

    encoders = [midm_encoder(args.name, args.tokenizer)]
    encoders += [load_encoder(s.strip()) for s in args.baseline.split(",") if s.strip()]
    textsets = dict(load_texts(spec, args.max_docs) for spec in args.text)
    ref = "tekken" if any(e.name == "tekken" for e in encoders) else encoders[0].name
    result = evaluate(encoders, textsets, reference=ref)
    result["tokenizer"] = str(args.tokenizer)
    paths = write_report(result, args.output or Path(args.tokenizer) / "eval")
    sys.stdout.write(Path(paths["markdown"]).read_text(encoding="utf-8"))
    print(json.dumps(paths))
    return 0


def _export(args) -> int:
    from .export import export

    print(json.dumps(export(args.tokenizer, args.output, model_max_length=args.model_max_length)))
    return 0


def main(argv: list[str] | None = None) -> int:
    from midm.errors import MidmError

    args = build_parser().parse_args(argv)
    try:
        return {"train": _train, "eval": _eval, "export": _export}[args.command](args)
    except (MidmError, FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"midm tokenizer {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
