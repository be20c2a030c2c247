"""``midm tokenizer eval``: compression, fertility, byte fallback and round trips beside baselines.

Every tokenizer is wrapped as an :class:`Encoder` with the same four questions: token ids of a
batch of documents, the text back from ids, how many tokens are byte fallback (pieces that are
not whole characters: ``<0xXX>`` pieces for SentencePiece models, partial UTF-8 byte strings for
byte-level Tekken) and how many are unknown. Offline baselines come from ``mistral-common``'s
package data; ``NAME=PATH`` adds any SentencePiece ``.model``, midm tokenizer directory or HF
``tokenizer.json`` (e.g. the plain SentencePiece trained on the same data).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .api import META_FILE
from .corpus import iter_documents

BUILTIN_BASELINES = {
    "tekken": "tekken_240911.json",            # Mistral NeMo / Tekken v3, 131,072 ids
    "tekken-240718": "tekken_240718.json",
    "mistral-32k": "mistral_instruct_tokenizer_240323.model.v3",  # Mistral 7B v0.3, 32,768 ids
    "mistral-32k-v1": "tokenizer.model.v1",     # Mistral 7B v0.1, 32,000 ids
}


@dataclass
class Encoder:
    name: str
    vocab_size: int
    encode_batch: Callable[[list[str]], list[list[int]]]
    decode: Callable[[list[int]], str]
    is_fallback: Callable[[int], bool]
    is_unknown: Callable[[int], bool]


def _mistral_data(filename: str) -> Path:
    try:
        import mistral_common
    except ImportError as err:
        raise RuntimeError("the tekken/mistral baselines need mistral-common (pip install mistral-common)") from err
    path = Path(mistral_common.__file__).parent / "data" / filename
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not shipped by this mistral-common version")
    return path


def sentencepiece_encoder(name: str, model_path: str | Path) -> Encoder:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    return Encoder(name, sp.vocab_size(), lambda texts: sp.encode(list(texts)), lambda ids: sp.decode(ids),
                   sp.is_byte, sp.is_unknown)


def tekken_encoder(name: str, path: str | Path) -> Encoder:
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer

    tk = Tekkenizer.from_file(str(path))
    partial: dict[int, bool] = {}

    def is_fallback(i: int) -> bool:
        """A byte-level token that is not whole UTF-8 characters on its own."""
        if i not in partial:
            if i < tk.num_special_tokens:
                partial[i] = False
            else:
                try:
                    tk.id_to_byte_piece(i).decode("utf-8")
                    partial[i] = False
                except UnicodeDecodeError:
                    partial[i] = True
        return partial[i]

    return Encoder(name, tk.n_words, lambda texts: [tk.encode(t, bos=False, eos=False) for t in texts],
                   lambda ids: tk.decode(ids), is_fallback, lambda i: i == tk.unk_id)


def midm_encoder(name: str, directory: str | Path) -> Encoder:
    from .api import load_tokenizer

    tok = load_tokenizer(directory)
    unk = tok.meta.get("unk_id", 3)
    return Encoder(name, tok.vocab_size, tok.encode_batch, tok.decode, tok.is_byte, lambda i: i == unk)


def hf_json_encoder(name: str, path: str | Path) -> Encoder:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    bytes_ = {tok.token_to_id(f"<0x{b:02X}>") for b in range(256)} - {None}
    return Encoder(name, tok.get_vocab_size(), lambda t: [e.ids for e in tok.encode_batch(list(t), add_special_tokens=False)],
                   lambda ids: tok.decode(ids, skip_special_tokens=False), lambda i: i in bytes_, lambda i: False)


def load_encoder(spec: str) -> Encoder:
    """``tekken``, ``mistral-32k``, … or ``NAME=PATH`` / ``PATH`` (SentencePiece model, midm dir, tokenizer.json)."""
    if spec in BUILTIN_BASELINES:
        path = _mistral_data(BUILTIN_BASELINES[spec])
        return tekken_encoder(spec, path) if path.suffix == ".json" else sentencepiece_encoder(spec, path)
    name, _, raw = spec.rpartition("=")
    p = Path(raw)
    name = name or p.stem
    if p.is_dir() and (p / META_FILE).is_file():
        return midm_encoder(name, p)
    if p.is_dir() and (p / "tokenizer.json").is_file():
        return hf_json_encoder(name, p / "tokenizer.json")
    if p.is_file() and p.name.endswith(".json"):
        return hf_json_encoder(name, p)
    if p.is_file():
        return sentencepiece_encoder(name, p)
    raise ValueError(f"unknown baseline {spec!r}: use one of {sorted(BUILTIN_BASELINES)} or NAME=PATH "
                     "(a SentencePiece .model, a midm tokenizer directory or a tokenizer.json)")


def load_texts(spec: str, max_docs: int | None = None) -> tuple[str, list[str]]:
    label, _, raw = spec.rpartition("=")
    path = Path(raw)
    label = label or path.name.split(".")[0]
    docs = []
    for doc in iter_documents(path):
        docs.append(doc)
        if max_docs and len(docs) >= max_docs:
            break
    if not docs:
        raise ValueError(f"{path}: no documents")
    return label, docs


def measure(enc: Encoder, docs: list[str], batch: int = 512) -> dict:
    tokens = fallback = unknown = exact = 0
    chars = sum(len(d) for d in docs)
    words = sum(len(d.split()) for d in docs)
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    for start in range(0, len(docs), batch):
        part = docs[start:start + batch]
        for doc, ids in zip(part, enc.encode_batch(part)):
            tokens += len(ids)
            fallback += sum(1 for i in ids if enc.is_fallback(i))
            unknown += sum(1 for i in ids if enc.is_unknown(i))
            exact += enc.decode(ids) == doc
    return {"docs": len(docs), "chars": chars, "words": words, "bytes": nbytes, "tokens": tokens,
            "tokens_per_char": round(tokens / chars, 5), "tokens_per_word": round(tokens / max(words, 1), 5),
            "bytes_per_token": round(nbytes / max(tokens, 1), 4),
            "byte_fallback_rate": round(fallback / max(tokens, 1), 6), "unk_rate": round(unknown / max(tokens, 1), 6),
            "roundtrip_exact": round(exact / len(docs), 6)}


def evaluate(encoders: list[Encoder], textsets: dict[str, list[str]], reference: str | None = "tekken") -> dict:
    rows = []
    for enc in encoders:
        for label, docs in textsets.items():
            rows.append({"tokenizer": enc.name, "vocab_size": enc.vocab_size, "text": label, **measure(enc, docs)})
    ref = {r["text"]: r["tokens_per_char"] for r in rows if r["tokenizer"] == reference}
    for r in rows:
        if r["text"] in ref:
            r[f"tokens_per_char_vs_{reference}"] = round(r["tokens_per_char"] / ref[r["text"]], 4)
    return {"reference": reference if ref else None, "rows": rows}


def markdown_table(result: dict) -> str:
    ref = result.get("reference")
    cols = ["tokenizer", "vocab_size", "text", "docs", "tokens_per_char", "tokens_per_word", "bytes_per_token",
            "byte_fallback_rate", "unk_rate", "roundtrip_exact"] + ([f"tokens_per_char_vs_{ref}"] if ref else [])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in result["rows"]:
        lines.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def chart(result: dict, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    texts = list(dict.fromkeys(r["text"] for r in result["rows"]))
    toks = list(dict.fromkeys(r["tokenizer"] for r in result["rows"]))
    val = {(r["tokenizer"], r["text"]): r["tokens_per_char"] for r in result["rows"]}
    sizes = {r["tokenizer"]: r["vocab_size"] for r in result["rows"]}
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(texts) * max(1, len(toks)) / 2), 4))
    width = 0.8 / len(toks)
    for k, name in enumerate(toks):
        xs = [i + (k - (len(toks) - 1) / 2) * width for i in range(len(texts))]
        ys = [val.get((name, t), 0.0) for t in texts]
        bars = ax.bar(xs, ys, width, label=f"{name} ({sizes[name]:,})")
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(range(len(texts)), texts)
    ax.set_ylabel("tokens per character (lower is better)")
    ax.set_title("Tokenizer compression on held-out text")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(result: dict, out_dir: str | Path) -> dict[str, str]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "eval.json", "markdown": out / "eval.md", "chart": out / "eval.png"}
    paths["json"].write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    paths["markdown"].write_text(markdown_table(result), encoding="utf-8")
    chart(result, paths["chart"])
    return {k: os.fspath(v) for k, v in paths.items()}
