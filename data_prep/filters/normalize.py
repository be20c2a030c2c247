"""Stage 2 — normalisation: mojibake repair (ftfy), Unicode NFC, control characters, whitespace.

ftfy undoes the classic UTF-8-read-as-Latin-1/CP949 damage (``ì•ˆë…•`` → ``안녕``) and
normalises to NFC, which also recomposes Hangul jamo sequences into syllables. Then
control/format characters (except newline and tab) are removed, runs of spaces collapsed,
lines right-stripped and 3+ blank lines squeezed to one blank line. A document that becomes
empty is dropped (``empty_after_normalization``).
"""
from __future__ import annotations

import re
import unicodedata

from datatrove.data import Document

from data_prep.filters.base import MidmStage

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u200e\u200f\u2028\u2029\ufeff\ufffe]")
# a run of horizontal spaces that is not already one " ": two or more, or one of another kind. Single
# spaces between words are left alone (replacing each by itself was most of this stage's time); the
# leading character class lets sre skip to candidates in C. Runs never span a line break.
_SPACE = r"[ \t\u00a0\u3000\u2000-\u200a]"
_SPACES = re.compile(_SPACE + r"(?:" + _SPACE + r"+|(?<=[\t\u00a0\u3000\u2000-\u200a]))")
_BLANKS = re.compile(r"\n{3,}")
# characters that UTF-8 mis-decoded as Latin-1/CP1252 produces; clean Korean/English has none of
# them, so ftfy (the slowest part of this stage) only runs on text that may need it
_SUSPECT = re.compile(r"[\u0080-\u00ff\u0152-\u0192\u02c6-\u02dc\u2013-\u2122\ufffd]")


def normalize_text(text: str, fix_mojibake: bool = True) -> str:
    if fix_mojibake and _SUSPECT.search(text):
        import ftfy

        text = ftfy.fix_text(text, normalization="NFC", unescape_html=False, fix_latin_ligatures=True)
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text)
    text = "\n".join(map(str.strip, _SPACES.sub(" ", text).split("\n")))
    return _BLANKS.sub("\n\n", text).strip()


class NormalizeStage(MidmStage):
    stage = "normalize"

    def process(self, doc: Document) -> str | None:
        new = normalize_text(doc.text, self.config.get("fix_mojibake", True))
        if new != doc.text:
            self.counts["changed"] += 1
        doc.text = new
        return None if new else "empty_after_normalization"
