"""``midm tokenizer train``: SentencePiece BPE with byte fallback in Mi:dm's id layout.

Steps: build the weighted training file (:mod:`tokenizer.corpus`), pick the character coverage
(lowered automatically when a small vocabulary could not hold that many single characters),
train SentencePiece with every special token as a user-defined symbol, then move the top specials
to the end of the vocabulary (:mod:`tokenizer.layout`), write the HF files and check that the HF
tokenizer encodes a sample exactly like the SentencePiece model.

bos/pad/eos (ids 0/1/2) are SentencePiece *control* pieces and ``trainer_spec`` names them, so every
SentencePiece consumer reads the ids from the model itself: ``SentencePieceProcessor.bos_id()`` is
0, ``pad_id()`` 1, ``eos_id()`` 2, ``unk_id()`` 3 — what Megatron-LM's ``preprocess_data.py
--tokenizer-type SentencePieceTokenizer --append-eod`` and ``megatron.core.tokenizers`` append as
EOD. The chat, markup and typed-PII specials are user-defined pieces, matched in raw text by both
encoders (as Llama-3's HF tokenizer does). The HF tokenizer also matches the three control strings
in text (the chat template's ``<|begin_of_text|>`` becomes id 0); plain SentencePiece, by its own
rules, never turns text into a control id — the one place the two differ (``tokenizer/hf.py``).
"""
from __future__ import annotations

import io
import json
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from .config import TrainConfig
from .corpus import build_training_file, iter_training_lines
from .kiwi_seg import DELIMITER
from .api import META_FILE
from .layout import ATOMIC_WHITESPACE, BOS, EOS, PAD, PAD_MULTIPLE, SPARE_IDS, TOP_SPECIALS, UNK, Layout, layout_for

SUMMARY_FILE = "train_summary.json"
LAYOUT_RULE = (f"vocab_size = requested - {SPARE_IDS}; padded_vocab_size = requested rounded up to a multiple "
               f"of {PAD_MULTIPLE}; ids 0/1/2 = bos/pad/eos, 3 = unk, then \\n, \\t, 256 bytes, learned pieces; "
               f"the {len(TOP_SPECIALS)} chat/markup/PII specials occupy the last ids below vocab_size")


def _log(msg: str) -> None:
    print(f"[midm tokenizer] {msg}", file=sys.stderr, flush=True)


def choose_coverage(train_file: Path, wanted: float, max_chars: int) -> tuple[float, int, set[str] | None]:
    """Coverage to pass to SentencePiece, how many single characters it keeps, and (only when a
    small vocabulary cannot hold the characters that coverage needs) the set of characters to keep.

    SentencePiece refuses coverages below 0.98, so for tiny vocabularies we keep the
    ``max_chars`` most frequent characters ourselves (see :func:`restrict_characters`).
    """
    counts: Counter[str] = Counter()
    with open(train_file, encoding="utf-8") as fh:
        while chunk := fh.read(1 << 22):
            counts.update(chunk)
    for ch in ("\n", " ", "\t", DELIMITER):
        counts.pop(ch, None)
    total = sum(counts.values())
    if not total:
        raise ValueError("training text is empty")
    ranked = counts.most_common()
    acc, needed = 0, 0
    for _, f in ranked:
        if acc / total >= wanted:
            break
        acc += f
        needed += 1
    if needed <= max_chars:
        return wanted, needed, None
    keep = {ch for ch, _ in ranked[:max_chars]}
    covered = sum(f for _, f in ranked[:max_chars]) / total
    return covered, max_chars, keep


def restrict_characters(train_file: Path, keep: set[str]) -> None:
    """Replace characters outside ``keep`` by the pretokenization delimiter (SentencePiece drops it
    and never merges across it), as SentencePiece itself does with characters below its coverage."""
    tmp = train_file.with_suffix(".restricted")
    always = keep | {"\n", " ", "\t", DELIMITER}
    with open(train_file, encoding="utf-8") as src, open(tmp, "w", encoding="utf-8") as dst:
        for line in src:
            dst.write("".join(c if c in always else DELIMITER for c in line))
    tmp.replace(train_file)


def _reorder(model_bytes: bytes, layout: Layout):
    """Move the top specials to the end, fill any shortfall with unused pieces, fix types."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.ParseFromString(model_bytes)
    top = set(TOP_SPECIALS)
    pieces = list(proto.pieces)
    head = [p for p in pieces if p.piece not in top]
    tail = sorted((p for p in pieces if p.piece in top), key=lambda p: TOP_SPECIALS.index(p.piece))
    if len(tail) != len(TOP_SPECIALS):
        raise AssertionError("SentencePiece dropped some special tokens")
    shortfall = layout.top_start - len(head)
    if shortfall < 0:
        raise AssertionError(f"SentencePiece returned {len(pieces)} pieces for a vocabulary of {layout.vocab_size}")
    fillers = []
    for k in range(shortfall):
        f = pb.ModelProto.SentencePiece(piece=f"<|reserved_{k}|>", score=0.0,
                                        type=pb.ModelProto.SentencePiece.UNUSED)
        fillers.append(f)
    del proto.pieces[:]
    for p in head + fillers + tail:
        q = proto.pieces.add()
        q.CopyFrom(p)
        if q.piece in (BOS, PAD, EOS):  # SentencePiece reports bos_id()/eos_id()/pad_id() only for control pieces
            q.type = pb.ModelProto.SentencePiece.CONTROL
    proto.trainer_spec.vocab_size = len(proto.pieces)
    spec = proto.trainer_spec
    spec.bos_id, spec.pad_id, spec.eos_id, spec.unk_id = 0, 1, 2, 3
    spec.bos_piece, spec.pad_piece, spec.eos_piece, spec.unk_piece = BOS, PAD, EOS, UNK
    want = {BOS: 0, PAD: 1, EOS: 2, UNK: 3, TOP_SPECIALS[0]: layout.top_start}
    for piece, pid in want.items():
        if proto.pieces[pid].piece != piece:
            raise AssertionError(f"{piece!r} is at id {[p.piece for p in proto.pieces].index(piece)}, not {pid}")
    if len(proto.pieces) != layout.vocab_size:
        raise AssertionError(f"vocabulary has {len(proto.pieces)} pieces, expected {layout.vocab_size}")
    return proto, shortfall


def _check_sentencepiece_ids(proto) -> None:
    """What any SentencePiece consumer will read from the model: bos 0, pad 1, eos 2, unk 3."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=proto.SerializeToString())
    got = (sp.bos_id(), sp.pad_id(), sp.eos_id(), sp.unk_id())
    if got != (0, 1, 2, 3):
        raise AssertionError(f"SentencePiece reads bos/pad/eos/unk ids {got} from the model, expected (0, 1, 2, 3)")


def sentencepiece_kwargs(cfg: TrainConfig, layout: Layout, coverage: float) -> dict:
    kw = dict(model_type="bpe", vocab_size=layout.vocab_size, character_coverage=coverage,
              byte_fallback=True, split_digits=cfg.split_digits and not cfg.digit_space_prefix,
              normalization_rule_name={"identity": "identity", "nfkc": "nfkc", "nmt_nfkc": "nmt_nfkc"}[cfg.normalization],
              remove_extra_whitespaces=False, add_dummy_prefix=cfg.add_dummy_prefix,
              max_sentencepiece_length=cfg.max_sentencepiece_length,
              split_by_unicode_script=cfg.split_by_unicode_script,
              max_sentence_length=cfg.max_line_chars * 4 + 16, hard_vocab_limit=False,
              bos_id=0, pad_id=1, eos_id=2, unk_id=3, bos_piece=BOS, pad_piece=PAD, eos_piece=EOS, unk_piece=UNK,
              user_defined_symbols=list(ATOMIC_WHITESPACE) + list(TOP_SPECIALS),
              num_threads=cfg.threads, input_sentence_size=0, shuffle_input_sentence=False,
              pretokenization_delimiter=DELIMITER, minloglevel=2)
    return kw


def probe_texts(inputs: list, text_field: str, n: int = 3000) -> list[str]:
    """Lines and multi-line snippets from the inputs plus special-token cases, for the equivalence check."""
    lines = []
    for i, line in enumerate(iter_training_lines(inputs, text_field, 2000)):
        if i % 7 == 0:
            lines.append(line)
        if len(lines) >= n:
            break
    joined = ["\n".join(lines[i:i + 5]) for i in range(0, min(len(lines), 500), 5)]
    specials = [f"{BOS}안녕 {TOP_SPECIALS[0]}\n{t}님 {t}:  x\t{EOS}" for t in TOP_SPECIALS]
    odd = ["", " ", "  앞뒤 공백  ", "\n\n", "漢字 ㉠ 😀 \u00a0 \u3000 \x00 \r\n", "12345 6.78 ٣", "<unk> <s> </s>"]
    return lines + joined + specials + odd


def train(inputs: list, output: str | Path, cfg: TrainConfig, *, verbose: bool = False) -> dict:
    """Train into ``output`` (created); return the summary that is also written as JSON there."""
    import sentencepiece as spm

    from .hf import compare_encodings, write_hf_files

    t0 = time.time()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    layout = layout_for(cfg.vocab_size)
    transform = None
    if cfg.pretokenize == "kiwi":
        from .kiwi_seg import KiwiMarker
        transform = KiwiMarker()
    with tempfile.TemporaryDirectory(prefix="midm_tok_") as tmp:
        train_file = Path(tmp) / "train.txt"
        _log(f"reading {len(inputs)} input path(s)")
        stats = build_training_file(inputs, train_file, text_field=cfg.text_field, ko_ratio=cfg.ko_ratio,
                                    max_train_chars=cfg.max_train_chars, max_line_chars=cfg.max_line_chars,
                                    transform=transform, progress=_log,
                                    mark_digits=DELIMITER if cfg.split_digits and cfg.digit_space_prefix else None)
        t_corpus = time.time() - t0
        max_chars = int(layout.learned_budget * cfg.max_required_chars_fraction)
        coverage, n_chars, keep = choose_coverage(train_file, cfg.character_coverage, max_chars)
        if keep is not None:
            _log(f"character coverage lowered {cfg.character_coverage} -> {coverage:.6f} so that single "
                 f"characters fit {max_chars} of {layout.learned_budget} learned ids (the rest: byte fallback)")
            restrict_characters(train_file, keep)
        _log(f"training SentencePiece BPE: {layout.vocab_size} pieces (padded {layout.padded_vocab_size}), "
             f"{stats.written_lines:,} lines")
        t1 = time.time()
        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(input=str(train_file), model_writer=buf,
                                       **{**sentencepiece_kwargs(cfg, layout, 1.0 if keep else coverage),
                                          "minloglevel": 0 if verbose else 2})
        t_sp = time.time() - t1
    proto, fillers = _reorder(buf.getvalue(), layout)
    _check_sentencepiece_ids(proto)
    (out / "tokenizer.model").write_bytes(proto.SerializeToString())
    meta = {
        "format_version": 1,
        "vocab_size": layout.vocab_size,
        "padded_vocab_size": layout.padded_vocab_size,
        "requested_vocab_size": layout.requested,
        "pad_multiple": PAD_MULTIPLE,
        "bos_id": 0, "pad_id": 1, "eos_id": 2, "unk_id": 3,
        "eot_id": layout.top_start,
        "byte_fallback": True,
        "byte_ids": [i for i, p in enumerate(proto.pieces) if p.type == 6][::255],
        "layout_rule": LAYOUT_RULE,
        "special_tokens": layout.special_tokens(),
        "reserved_fillers": fillers,
        "config": cfg.to_dict(),
    }
    (out / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if cfg.add_dummy_prefix or cfg.normalization != "identity":
        # only reachable through the ablation options: such a model has no exact HF twin
        check = {"skipped": f"no HF files: add_dummy_prefix={cfg.add_dummy_prefix}, "
                            f"normalization={cfg.normalization} (HF export needs False/identity)"}
        _log(f"WARNING: {check['skipped']}")
    else:
        write_hf_files(proto, out, meta)
        check = compare_encodings(out / "tokenizer.model", out / "tokenizer.json", probe_texts(inputs, cfg.text_field))
        if check["encode_mismatches"] or check["decode_mismatches"]:
            _log(f"WARNING: HF tokenizer differs from SentencePiece on {check}")
    summary = {
        "output": str(out), "layout": {"vocab_size": layout.vocab_size, "padded_vocab_size": layout.padded_vocab_size,
                                       "top_start": layout.top_start, "reserved_fillers": fillers},
        "corpus": stats.as_dict(), "character_coverage_used": coverage, "single_chars_kept": n_chars,
        "seconds": {"corpus": round(t_corpus, 2), "sentencepiece": round(t_sp, 2),
                    "total": round(time.time() - t0, 2)},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "hf_equivalence": check, "config": cfg.to_dict(),
    }
    (out / SUMMARY_FILE).write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    _log(f"wrote {out} in {summary['seconds']['total']} s")
    return summary


def train_plain(inputs: list, model_path: str | Path, vocab_size: int, text_field: str = "text",
                num_threads: int = 0) -> dict:
    """The baseline: SentencePiece BPE with its defaults on the same lines (no layout, no options)."""
    import os

    import sentencepiece as spm

    t0 = time.time()
    model_path = Path(model_path)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="midm_tok_plain_") as tmp:
        train_file = Path(tmp) / "train.txt"
        with open(train_file, "w", encoding="utf-8") as fh:
            for line in iter_training_lines(inputs, text_field, 2000):
                fh.write(line + "\n")
        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(input=str(train_file), model_writer=buf, model_type="bpe",
                                       vocab_size=vocab_size, num_threads=num_threads or os.cpu_count(),
                                       max_sentence_length=8016, minloglevel=2)
    model_path.write_bytes(buf.getvalue())
    return {"model": str(model_path), "vocab_size": vocab_size, "seconds": round(time.time() - t0, 2)}

