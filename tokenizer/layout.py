"""Mi:dm 2.0's special-token layout, and the rule that scales it to any vocabulary size.

The published tokenizer (``shared/data/paper/midm2_special_tokens.json``) puts bos/pad/eos at ids
0/1/2 and 83 chat, markup and typed-PII tokens at 131301..131383; the embedding is padded to
131,392, so the last 8 ids (131384..131391) are never produced. We keep exactly that shape for
every size, so a 4k demo tokenizer and the full one differ only in how many learned pieces sit in
the middle:

    id 0 ``<|begin_of_text|>``, 1 ``<pad>``, 2 ``<|end_of_text|>``      (bos, pad, eos)
    id 3 ``<unk>`` (SentencePiece requires one; byte fallback means it is never emitted)
    ids 4.. ``\\n``, ``\\t`` (atomic, so line structure is not byte fallback), then 256 byte pieces
    learned BPE pieces (plus ``<|reserved_k|>`` fillers if the corpus cannot fill them)
    the 83 top specials, ending at ``vocab_size - 1``
    ``vocab_size .. padded_vocab_size - 1``: padding ids, never produced

where, for ``--vocab-size N``: ``vocab_size = N - 8`` (the published tokenizer's 8 spare ids)
and ``padded_vocab_size = N`` rounded up to a multiple of 64 (131,392 = 64 × 2053, not a multiple
of 128, so 64 is the multiple that reproduces the release). At N = 131,392 every special id equals
the published one; at N = 4,096 the top specials are 4,005..4,087.

The token strings are embedded here (not read from ``shared/``) so training works in a fresh clone.
"""
from __future__ import annotations

from dataclasses import dataclass

BOS, PAD, EOS, UNK = "<|begin_of_text|>", "<pad>", "<|end_of_text|>", "<unk>"
# Their ids: fixed for every vocabulary size (the published ones). The one place these numbers live.
BOS_ID, PAD_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
PUBLISHED_PADDED_VOCAB = 131_392
PUBLISHED_TOP_START = 131_301
SPARE_IDS = 8          # published: 131384..131391 are padding
PAD_MULTIPLE = 64
ATOMIC_WHITESPACE = ("\n", "\t")

# ids 131301..131383 of the published tokenizer, in id order (two irregular entries kept as published)
TOP_SPECIALS: tuple[str, ...] = (
    "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|eop_id|>",
    "<|begin_of_passage|>", "<|end_of_passage|>",
    "<img>", "</img>", "<ref>", "</ref>", "<box>", "</box>", "<quad>", "</quad>", "<imgpad>",
    "<table>", "</table>", "<tr>", "</tr>", "<td>", "</td>", "<chart>", "</chart>", "<caption>",
    "<thead>", "<tbody>", "<tfoot>", "<th>", "</caption>", "</thead>", "</tbody>", "</tfoot>\"",
    "</th>", "<h1>", "<h2>", "<h3>", "<h4>", "<h5>", "<h6>", "<blockquote>", "</h1>", "</h2>",
    "</h4>", "</h5>", "</h6>", "</blockquote>", "<strong>", "<em>", "<b>", "<i>", "<u>", "<sub>",
    "<sup>", "<code>", "</strong>", "</em>", "</b>", "</i>", "</u>", "</sub>", "</sup>", "</code>",
    "<|finetune_right_pad_id|>", "<|eom_id|>", "<|python_tag|>",
    "#@이름@#", "#@ID@#", "#@주민번호@#", "#@이메일@#", "#@계좌번호@#", "#@전화번호@#", "#@주소@#",
    "#@자동차번호@#", "#@사업자등록번호@#", "#@자동차운전면허번호@#", "#@여권번호@#",
    "#@외국인등록번호@#", "#@건보번호@#", "#@신용카드번호@#", "#@IP@#", "#@MAC주소@#",
    "#@SNS계정@#", "#@통관번호#",
)
PII_TOKENS = tuple(t for t in TOP_SPECIALS if t.startswith("#@"))
EOT = "<|eot_id|>"

# bos/pad/eos + unk + atomic whitespace + 256 bytes + top specials + spare ids
FIXED_IDS = 4 + len(ATOMIC_WHITESPACE) + 256 + len(TOP_SPECIALS) + SPARE_IDS
MIN_LEARNED = 64


@dataclass(frozen=True)
class Layout:
    """Where every class of token lives for one requested ``--vocab-size``."""

    requested: int
    vocab_size: int          # pieces in the SentencePiece model (ids 0..vocab_size-1)
    padded_vocab_size: int   # embedding rows (multiple of PAD_MULTIPLE)
    top_start: int           # id of <|eot_id|>

    @property
    def learned_budget(self) -> int:
        """Ids for learned BPE pieces (and the single characters they are built from)."""
        return self.top_start - (4 + len(ATOMIC_WHITESPACE) + 256)

    def special_tokens(self) -> dict[str, int]:
        out = {BOS: 0, PAD: 1, EOS: 2}
        out.update({tok: self.top_start + i for i, tok in enumerate(TOP_SPECIALS)})
        return out


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def layout_for(requested: int) -> Layout:
    """The layout for ``--vocab-size requested``; raises ValueError if it leaves no room to learn."""
    if requested < FIXED_IDS + MIN_LEARNED:
        raise ValueError(
            f"--vocab-size {requested} is too small: {FIXED_IDS} ids are fixed (bos/pad/eos/unk, "
            f"{len(ATOMIC_WHITESPACE)} whitespace, 256 bytes, {len(TOP_SPECIALS)} specials, "
            f"{SPARE_IDS} spare); use at least {FIXED_IDS + MIN_LEARNED}")
    vocab = requested - SPARE_IDS
    return Layout(requested=requested, vocab_size=vocab,
                  padded_vocab_size=round_up(requested, PAD_MULTIPLE),
                  top_start=vocab - len(TOP_SPECIALS))
