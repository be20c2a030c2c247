"""The SentencePiece model as a Hugging Face ``tokenizers`` BPE that encodes identically.

SentencePiece BPE repeatedly merges the adjacent pair whose merged piece scores highest; a
``tokenizers`` BPE merges the adjacent pair of lowest merge rank. Listing every (left, right) split
of each learned piece, ranked by the merged piece's score, makes the two pick the same pair at
every step. The rest is mapped one to one: spaces become ``▁`` (no dummy prefix), user-defined
pieces (the specials, ``\\n``, ``\\t``) are added tokens matched before BPE, characters outside the
vocabulary fall back to ``<0xXX>`` pieces. There is no pre-tokenizer: splitting at ``▁`` gives the
same ids (no piece has ``▁`` after its first character) but measured ~25% slower.

Control pieces (bos/pad/eos) are added tokens too, so the HF tokenizer turns the literal string
``<|begin_of_text|>`` into id 0 (the chat template relies on it), while SentencePiece by design
never makes a control id from text and decodes control ids to nothing. The comparisons below
therefore encode with SentencePiece the way special-token-aware consumers do — split at the
control strings, encode the pieces between them, put the control ids in between — and say how
many probe texts contained such a string (``control_literal_texts``).
"""
from __future__ import annotations

import json
from pathlib import Path

from .layout import BOS, EOS, PAD, EOT

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
SPACE = "\u2581"

CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + (message['content'] | trim) + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


def load_proto(model_path: str | Path):
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.ParseFromString(Path(model_path).read_bytes())
    return proto


def _merges(pieces: list[tuple[str, int, float]], vocab: dict[str, int]) -> list[tuple[str, str]]:
    ranked = []
    for pid, (piece, ptype, score) in enumerate(pieces):
        if ptype != NORMAL or len(piece) < 2:
            continue
        for i in range(1, len(piece)):
            left, right = piece[:i], piece[i:]
            lid, rid = vocab.get(left), vocab.get(right)
            if lid is None or rid is None:
                continue
            if pieces[lid][1] != NORMAL or pieces[rid][1] != NORMAL:
                continue
            ranked.append((-score, pid, lid, rid))
    ranked.sort()
    return [(pieces[lid][0], pieces[rid][0]) for _, _, lid, rid in ranked]


def build_hf_tokenizer(proto):
    """A ``tokenizers.Tokenizer`` equivalent to the SentencePiece ``proto`` (identity normalisation)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers

    ns = proto.normalizer_spec
    if ns.add_dummy_prefix or ns.remove_extra_whitespaces:
        raise ValueError("HF export needs add_dummy_prefix=False and remove_extra_whitespaces=False "
                         "(what `midm tokenizer train` writes)")
    if proto.trainer_spec.model_type != 2:  # BPE
        raise ValueError("HF export supports SentencePiece BPE models only")
    pieces = [(p.piece, p.type, p.score) for p in proto.pieces]
    vocab = {piece: i for i, (piece, _, _) in enumerate(pieces)}
    if len(vocab) != len(pieces):
        raise ValueError("duplicate pieces in the SentencePiece model")
    unk = next(p for p, t, _ in pieces if t == UNKNOWN)
    model = models.BPE(vocab=vocab, merges=_merges(pieces, vocab), unk_token=unk,
                       byte_fallback=True, fuse_unk=True)
    tok = Tokenizer(model)
    norm = [normalizers.Replace(" ", SPACE)]
    if ns.precompiled_charsmap:
        norm.insert(0, normalizers.Precompiled(ns.precompiled_charsmap))
    tok.normalizer = normalizers.Sequence(norm)
    tok.decoder = decoders.Sequence([decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse()])
    added = []
    for piece, ptype, _ in pieces:
        if ptype in (USER_DEFINED, CONTROL):
            special = not piece.isspace()
            added.append(AddedToken(piece, special=special, normalized=False, single_word=False,
                                    lstrip=False, rstrip=False))
    tok.add_special_tokens([a for a in added if a.special])
    tok.add_tokens([a for a in added if not a.special])
    for a in added:  # added tokens must keep the SentencePiece ids
        if tok.token_to_id(a.content) != vocab[a.content]:
            raise AssertionError(f"added token {a.content!r} got id {tok.token_to_id(a.content)}, "
                                 f"expected {vocab[a.content]}")
    return tok


def write_hf_files(proto, out_dir: str | Path, meta: dict, *, chat_template: bool = True) -> list[str]:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_hf_tokenizer(proto)
    tok.save(str(out / "tokenizer.json"))
    specials = sorted(meta["special_tokens"].items(), key=lambda kv: kv[1])
    extra = [t for t, _ in specials if t not in (BOS, EOS, PAD)]
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS, "eos_token": EOS, "pad_token": PAD, "unk_token": None,
        "add_bos_token": False, "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": meta.get("model_max_length", 32768),
        "padding_side": "right",
        "extra_special_tokens": extra,
        "added_tokens_decoder": {
            str(i): {"content": t, "lstrip": False, "rstrip": False, "normalized": False,
                     "single_word": False, "special": True} for t, i in specials},
    }
    if chat_template:
        config["chat_template"] = CHAT_TEMPLATE
    (out / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n",
                                                encoding="utf-8")
    smap = {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD, "additional_special_tokens": extra}
    (out / "special_tokens_map.json").write_text(json.dumps(smap, ensure_ascii=False, indent=2) + "\n",
                                                  encoding="utf-8")
    return ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]


def control_pieces(sp) -> dict[str, int]:
    """{piece: id} of a SentencePiece processor's control pieces (bos/pad/eos here)."""
    return {sp.id_to_piece(i): i for i in range(sp.get_piece_size()) if sp.is_control(i)}


def sp_encode_with_controls(sp, text: str, controls: dict[str, int] | None = None) -> list[int]:
    """SentencePiece ids of ``text`` with control strings in it taken as their ids."""
    import re

    controls = control_pieces(sp) if controls is None else controls
    if not controls or not any(c in text for c in controls):
        return sp.encode(text)
    ids: list[int] = []
    for part in re.split("(" + "|".join(map(re.escape, controls)) + ")", text):
        if part in controls:
            ids.append(controls[part])
        elif part:
            ids += sp.encode(part)
    return ids


def sp_decode_with_controls(sp, ids: list[int], controls: dict[str, int] | None = None) -> str:
    """SentencePiece decoding that writes control ids as their strings (as the HF twin does)."""
    by_id = {i: p for p, i in (control_pieces(sp) if controls is None else controls).items()}
    out, run = [], []
    for i in ids:
        if i in by_id:
            out += [sp.decode(run), by_id[i]]
            run = []
        else:
            run.append(i)
    return "".join(out) + sp.decode(run)


def compare_encodings(sp_model: str | Path, hf_json: str | Path, texts: list[str]) -> dict:
    """Encode ``texts`` with both; report mismatches (and HF decode round trips)."""
    import sentencepiece as spm
    from tokenizers import Tokenizer

    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    hf = Tokenizer.from_file(str(hf_json))
    controls = control_pieces(sp)
    sp_ids = [sp_encode_with_controls(sp, t, controls) for t in texts]
    hf_ids = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    bad = [i for i, (a, b) in enumerate(zip(sp_ids, hf_ids)) if a != b]
    bad_decode = [i for i, ids in enumerate(hf_ids)
                  if hf.decode(ids, skip_special_tokens=False) != sp_decode_with_controls(sp, ids, controls)]
    return {"texts": len(texts), "encode_mismatches": len(bad), "decode_mismatches": len(bad_decode),
            "control_literal_texts": sum(any(c in t for c in controls) for t in texts),
            "first_mismatch": texts[bad[0]][:200] if bad else None}


__all__ = ["CHAT_TEMPLATE", "EOT", "build_hf_tokenizer", "write_hf_files", "compare_encodings", "load_proto",
           "control_pieces", "sp_encode_with_controls", "sp_decode_with_controls"]
