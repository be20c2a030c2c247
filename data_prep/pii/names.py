"""Person names and postal addresses: Kiwi morphology + gazetteer-style rules.

Regular expressions alone cannot tell ``김도현 사무관`` (a person) from ``이번 회의`` or
``강남`` (a district): both start with a common surname syllable. Candidates are 2–4-syllable
spans at the start of a Hangul run that begin with a Korean surname and are followed by nothing,
a title or a particle-like ending (regex only); Kiwi then analyses the Hangul run each one starts
(alone, cached per process: the same words recur), and the text around it when a title follows it.
A candidate is a name when

* the text around it says "person" — a title/honorific after it (``과장``, ``씨``, ``교수``, or
  ``외교부 장관``), a role label before it (``성명:``, ``담당자``, ``피고`` …), a parenthesis
  with an age/number/Hanja — and its syllables are given-name syllables or Kiwi reads a name; or
* in running prose (3–4 syllables), Kiwi analyses exactly that span as one proper noun (NNP) or
  an unknown noun, or as surname + one-syllable nouns (how it splits names it does not know); or
* it repeats a name accepted elsewhere in the document, or stands in a list next to one.

Never a name: what Kiwi knows as a common word (or a longer word starting there), a span with a
particle/ending inside it (``선수의``), titles themselves, and what reads as a place, institution
or loanword — a place Kiwi knows + 시/구/동/도… (``서초구``), a district after a city
(``안산시 단원구``), 당/궁/법/어… endings (``정의당``, ``국적법``), 동/도 endings without person
context (``화곡동``), loanword syllables (``유튜브``).

Measured with ``benchmarks/data_pii.py`` (data_prep/README.md, "PII"): the rules were developed
on ko_pii and KLUE-NER dev sentences 1–2,500; sentences 2,501–5,000 are the held-out report set.

Addresses: :mod:`data_prep.pii.addresses` (its district check uses this finder's Kiwi memo).
"""
from __future__ import annotations

import re
from typing import Iterator, NamedTuple

from data_prep.pii.addresses import find_addresses
from data_prep.pii.name_rules import (AFTER_PAREN, LABELS, SURNAMES_1, SURNAMES_2, TITLES, _GENERIC_LABEL,
                                      _GENERIC_LAST, _LOAN, _NOT_NAME_LAST, _PLACE_BEFORE, _PLACE_LAST,
                                      _PLACE_LAST_WEAK, _ROLE_BEFORE, _ROLE_LAST, _TITLE_AFTER_ORG, _TITLE_SET,
                                      _looks_like_name)
from data_prep.pii.patterns import Span

_UNIT_MAX = 12  # syllables of a candidate's Hangul run that Kiwi analyses (= the chunk)
_HANGUL_RUN = re.compile(r"[가-힣]+")
_CONTEXT_WIDTH = 12  # characters each side of a titled candidate that Kiwi reads with it


def _token_tuples(tokens) -> Iterator[tuple[int, int, str, bool]]:
    """Kiwi tokens as ``(start, length, tag, oov)``."""
    return ((t.start, t.len, t.tag, bool(getattr(t, "oov", False))) for t in tokens)


class _Cand(NamedTuple):
    """A name candidate: span, the rest of its eojeol, strict given-name syllables, ``씨``/age after."""

    start: int
    length: int
    form: str
    rest: str
    given_ok: bool
    personal: bool
    before: str  # up to 12 characters before it (for 안산시 단원구)


class NameAddressFinder:
    """Uses the process's shared Kiwi (:func:`data_prep.kiwi_shared.shared_kiwi`), built lazily.

    ``cache_words`` bounds each per-process memo (Kiwi analyses per Hangul run and per context
    window, candidate verdicts per run, places; a full memo is emptied): ~260 bytes per entry
    measured, so at most ~100 MB per worker at the default. The memos only save time: spans are
    the same with any size (tested with 1).
    """

    def __init__(self, cache_words: int = 200_000) -> None:
        self._kiwi = None
        self.cache_words = cache_words
        self._words: dict[str, tuple] = {}
        self._places: dict[str, bool] = {}
        self._verdicts: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self._windows: dict[str, tuple] = {}

    @property
    def kiwi(self):
        if self._kiwi is None:
            from data_prep.kiwi_shared import shared_kiwi

            self._kiwi = shared_kiwi()
        return self._kiwi

    # the first 2–12 syllables of a Hangul run that starts with a surname syllable: the chunk whose
    # candidates are read, and Kiwi's analysis unit for them (see _unit). The surname class comes
    # first and the run start is checked after it (``(?<![가-힣].)``: no syllable before it), so sre
    # skips to surname syllables in C instead of trying a lookbehind at every character.
    _SURNAME_CHUNK = re.compile(r"[" + "".join(sorted(SURNAMES_1 | {s[0] for s in SURNAMES_2}))
                                + r"](?<![가-힣].)[가-힣]{1,11}")
    # what may follow a name inside its eojeol before Kiwi is asked (cheap pre-filter): nothing,
    # a title, or something that starts like a particle / copula
    _REST = re.compile(r"(?:$|[이가은는을를의에와과도만랑야아]|께|처럼|보다|부터|까지|한테|라는|라고|란|로|으로|였|나|씨|님|조차|마저|뿐|밖에)")
    _INFLECTED = {"XSV", "XSA", "VCP", "VV", "VA", "VX"}
    _COMMON_TAGS = {"NNG", "NNB", "NR", "NP", "MM", "MAG", "MAJ", "VV", "VA", "XR", "IC"}
    _AGE = r"\(\s*\d{1,3}\s*[,)·세]"  # 김성동(54), 박모(54·여)
    _PERSONAL = re.compile(r"\s*(?:씨|님|" + _AGE + ")")  # 김수로 씨, 김성동(54): a person even if it reads like a place
    _LIST_SEP = re.compile(r"^[\s,·/]*$")
    # a title or 씨/님/(age) right after a chunk: 이현도 씨, 김학규 시장, 김성동(54). The lookahead (a first
    # character of one of them) is implied by the alternation; it fails most positions at once instead of
    # after trying ~150 alternatives (it is tried after every surname chunk: 0.6 -> 0.25 CPU-s/600k).
    _TITLE_NEXT = re.compile(r"\s*(?=[(" + "".join(sorted({t[0] for t in TITLES})) + "])(?:" + _AGE + "|"
                             + "|".join(sorted(TITLES, key=len, reverse=True)) + ")")

    def window_tokens(self, text: str, start: int, end: int, cache: dict, context: bool = False) -> list:
        """Kiwi tokens ``(absolute start, length, tag, oov)`` around the candidate [start, end).

        A name, its particle or title, and what would veto it (``선수의``, ``이번에``) sit in the
        Hangul run that starts with it, so by default Kiwi analyses that run alone — from ``start``
        (a run's first syllable), at most :data:`_UNIT_MAX` syllables; punctuation and what follows
        it are left out — and the analysis is kept in a per-process cache keyed by that string: the
        same words recur across documents, and Kiwi (~16 µs per character here) is most of PII
        masking's cost.
        ``context=True`` (a candidate followed by a title, rare) asks for a window of
        :data:`_CONTEXT_WIDTH` characters each side, cut at whitespace, analysed once per process
        (memoised by the window's text: ~13% of windows recur across documents): a word alone can
        read differently (``가수 이현도 씨`` is a name in context, 이/현도 alone).
        Both are also kept in the document's ``cache`` by position.
        """
        if context:
            lo, hi = self._window(text, start, end, _CONTEXT_WIDTH)
            key = ("c", lo, hi)
            if key not in cache:
                window = text[lo:hi]
                toks = self._windows.get(window)
                if toks is None:  # the same window recurs across documents (boilerplate, repeated names)
                    toks = self._remember(self._windows, window, tuple(_token_tuples(self.kiwi.tokenize(window))))
                cache[key] = [(s + lo, n, tag, oov) for s, n, tag, oov in toks]
            return cache[key]
        toks = cache.get((start, end))  # a candidate is checked several times (veto, particle, name)
        if toks is None:
            unit = self._unit(text, start, end)
            toks = cache[start, end] = [(s + start, n, tag, oov) for s, n, tag, oov in self.word_tokens(unit)]
        return toks

    @staticmethod
    def _unit(text: str, start: int, end: int) -> str:
        """The analysis unit of a candidate: the Hangul run from ``start``, ≤ _UNIT_MAX syllables
        (never less than [start, end); for a candidate, the chunk ``_SURNAME_CHUNK`` matched)."""
        m = _HANGUL_RUN.match(text, start, start + _UNIT_MAX)
        return text[start:max(end, m.end() if m else start)]

    def word_tokens(self, word: str) -> tuple:
        """Kiwi's analysis of one word alone, ``((start, length, tag, oov), ...)``, cached."""
        toks = self._words.get(word)
        if toks is None:
            toks = self._remember(self._words, word, tuple(_token_tuples(self.kiwi.tokenize(word))))
        return toks

    def _remember(self, memo: dict, key, value):
        """``memo[key] = value``, the memo emptied first when it holds ``cache_words`` entries."""
        if len(memo) >= self.cache_words:
            memo.clear()
        memo[key] = value
        return value

    @staticmethod
    def _window(text: str, start: int, end: int, width: int) -> tuple[int, int]:
        lo = max(0, start - width)
        sp = text.find(" ", lo, start)
        lo = sp + 1 if sp != -1 else lo
        hi = min(len(text), end + width)
        sp = text.rfind(" ", end, hi)
        return lo, (sp if sp != -1 else hi)

    def _vetoed(self, text: str, start: int, length: int, strong: bool, cache: dict, context: bool = False) -> bool:
        toks = self.window_tokens(text, start, start + length, cache, context)
        exact = any(s == start and n == length for s, n, tag, oov in toks)  # (최성지+ㄴ: Kiwi's contraction)
        if not exact and any(start < s < start + length and (tag[0] in "JE" or tag in self._INFLECTED)
                             for s, n, tag, oov in toks):
            return True  # a particle or ending inside the span: 선수의, 은은한, 주연인
        first = [t for t in toks if t[0] == start]
        if any(n > length and tag.startswith("N") and not oov for s, n, tag, oov in first):
            return True  # Kiwi sees a longer word starting here
        if any(n == length and tag in self._COMMON_TAGS and not oov for s, n, tag, oov in first):
            return True  # a dictionary common word (정부, 이상, 주민 …), not a name
        if length == 2 and any(n == 2 and tag == "NNP" and not oov for s, n, tag, oov in first):
            return True  # 한국, 신한 …: a known proper noun, not a two-syllable name
        common_prefix = any(2 <= n < length and tag == "NNG" and not oov for s, n, tag, oov in first)
        return common_prefix and not strong  # 전문성, 고유가 …: starts with a dictionary word

    def _kiwi_says_name(self, text: str, start: int, length: int, cache: dict, context: bool = False) -> bool:
        """Kiwi analyses exactly this span as one proper noun (NNP: its dictionary and name model)
        or as one out-of-vocabulary noun (a name it has never seen: 노진구, 곽부성)."""
        return any(s == start and n == length and (tag == "NNP" or (tag == "NNG" and oov))
                   for s, n, tag, oov in self.window_tokens(text, start, start + length, cache, context))

    def _surname_then_syllables(self, text: str, start: int, length: int, cache: dict, context: bool = False) -> bool:
        """Kiwi splits the span into the surname as a proper noun + one-syllable nouns
        (최/NNP 민/NNG 호/NNB): how it analyses a name it does not know."""
        end = start + length
        pieces = [t for t in self.window_tokens(text, start, end, cache, context) if start <= t[0] < end]
        surname = 2 if text[start:start + 2] in SURNAMES_2 else 1
        if not pieces or pieces[0][2] != "NNP" or pieces[0][1] != surname or pieces[-1][0] + pieces[-1][1] != end:
            return False
        return all(tag in ("NNP", "NNG", "NNB", "NR") and n == 1 for _, n, tag, _ in pieces[1:])

    def _followed_by_particle(self, text: str, start: int, length: int, rest: str, cache: dict,
                              context: bool = False) -> bool:
        """Nothing, a title, or what Kiwi analyses as a particle / copula / suffix follows the span."""
        if not rest or rest.startswith(TITLES):
            return True
        end = start + length
        return any(s == end and (tag.startswith("J") or tag in ("VCP", "XSN"))
                   for s, n, tag, oov in self.window_tokens(text, start, end, cache, context))

    def _place(self, form: str, personal: bool, cache: dict, before: str = "") -> bool:
        """A place, not a personal name — unless ``personal`` context says otherwise: ``서초구``,
        ``원주시`` (a place Kiwi knows + a place suffix), ``안산시 단원구`` (a district after a city).
        Institution suffixes and loanwords (``정의당``, ``유튜브``) are :meth:`_never_form`'s, checked
        before this by every caller."""
        if personal or form[-1] not in _PLACE_LAST:
            return False
        if form[-1] in "시구동리" and _PLACE_BEFORE.search(before):
            return True  # 안산시 단원구, 인천광역시 연수구
        known = self._places.get(form)
        if known is None:
            toks = self.word_tokens(form[:-1])
            known = self._remember(self._places, form, len(toks) == 1 and toks[0][2] == "NNP" and not toks[0][3])
        return known

    def _strong_context(self, text: str, start: int, end: int, rest: str) -> bool:
        """Person context around the span [start, end): a title after it, a label or role before it,
        an age/number in parentheses after it, or quotes/commas around it."""
        return self._context_after(text, start, end, rest) or self._label_before(text, start)

    @staticmethod
    def _context_after(text: str, start: int, end: int, rest: str) -> bool:
        """The parts of :meth:`_strong_context` that depend on where the span ends."""
        after = text[end:end + 30]
        return (rest.startswith(TITLES)
                or after.lstrip().startswith(TITLES)
                or bool(_TITLE_AFTER_ORG.match(after))
                or bool(AFTER_PAREN.match(after))
                or (start > 0 and text[start - 1] in ",\"'" and end < len(text) and text[end] in ",\"'"))

    @staticmethod
    def _label_before(text: str, start: int) -> bool:
        """The parts of :meth:`_strong_context` that look before ``start`` only (the same for a
        chunk's 2-, 3- and 4-syllable candidates): a label (``성명:``), a generic ``…자:`` label or a
        numbered line, a role (``담당 주무관``).

        ``_GENERIC_LABEL`` ends in ``[:：.)]`` + spaces and ``_ROLE_BEFORE`` in a role syllable (+ 는/은)
        or an opening parenthesis + spaces, so each is searched only when the last non-space character
        before ``start`` is one of those (the line-long ``_GENERIC_LABEL`` search was most of this)."""
        window = text[max(0, start - 20):start]
        last = window.rstrip()[-1:]
        if not last:  # 20 spaces (or the text's start): look as far as each pattern does
            last = None
        return (bool(LABELS.search(window))
                or (last is None or last in _GENERIC_LAST) and (
                    bool(_GENERIC_LABEL.search(text[max(0, start - 14):start]))
                    or bool(_GENERIC_LABEL.search(text[text.rfind("\n", 0, start) + 1:start])))
                or (last is None or last in _ROLE_LAST) and bool(_ROLE_BEFORE.search(text[max(0, start - 10):start])))

    def _verdict(self, text: str, start: int, chunk: str, cache: dict) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(lengths, survivors)`` of a chunk (= its analysis unit, :meth:`_unit`), memoised.

        ``lengths``: its candidate lengths (3, 4, 2 syllables) — surname-initial and followed by
        nothing / a particle-like ending / a title inside the chunk (regex only). ``survivors``:
        those that pass the checks needing only the unit's analysis (:meth:`_never_form`, :meth:`_vetoed`
        as with person context, :meth:`_followed_by_particle`). Both depend on the unit alone.
        """
        # chunk[:n] starts with a surname: a two-syllable one + 1–2 syllables, a one-syllable one + 1–2
        double, single = chunk[:2] in SURNAMES_2, chunk[0] in SURNAMES_1
        lengths = tuple(n for n in (3, 4, 2) if len(chunk) >= n and (double and n > 2 or single and n < 4)
                        and (self._REST.match(chunk, n) or chunk.startswith(TITLES, n)))
        surv = tuple(n for n in lengths if not (
            self._never_form(chunk[:n])
            or self._vetoed(text, start, n, True, cache)
            or not self._followed_by_particle(text, start, n, chunk[n:], cache)))
        return self._remember(self._verdicts, chunk, (lengths, surv))

    def _cands(self, text: str, start: int, chunk: str, lengths: tuple[int, ...]) -> list[_Cand]:
        before = text[max(0, start - 12):start]
        return [_Cand(start, n, chunk[:n], chunk[n:], _looks_like_name(chunk[:n]),
                      bool(self._PERSONAL.match(text, start + n)), before) for n in lengths]

    def _titled(self, text: str, c: _Cand) -> bool:
        """A title or ``씨``/age right after the candidate (``이현도 씨``, ``김학규 시장``)."""
        return self._TITLE_NEXT.match(text, c.start + c.length) is not None

    @staticmethod
    def _never_form(form: str) -> bool:
        """Cheap, Kiwi-free rejections: titles themselves (사무관, 소방경), institution suffixes,
        loanword syllables."""
        return form in _TITLE_SET or form[-1] in _NOT_NAME_LAST or any(ch in _LOAN for ch in form[1:])

    def _rejected(self, text: str, c: _Cand, strong: bool, cache: dict, context: bool = False) -> bool:
        return (self._never_form(c.form)
                or self._vetoed(text, c.start, c.length, strong, cache, context)
                or self._place(c.form, c.personal, cache, c.before)
                or not self._followed_by_particle(text, c.start, c.length, c.rest, cache, context))

    def _context_name(self, text: str, c: _Cand, cache: dict, context: bool) -> bool:
        """A candidate with person context is a name: not rejected, and given-name syllables or
        Kiwi reads a name (the word alone, or with ``context`` the window around it)."""
        return not self._rejected(text, c, True, cache, context) and (
            c.given_ok or self._kiwi_says_name(text, c.start, c.length, cache, context)
            or self._surname_then_syllables(text, c.start, c.length, cache, context))

    def _prose_name(self, text: str, c: _Cand, accepted: set[str], cache: dict) -> bool:
        """A candidate in running prose is a name: not rejected, and a repeat of an accepted name,
        Kiwi reads a name, or — given-name syllables only — Kiwi splits it into short nouns one of
        which it knows as a name (한/MM 혜진/NNP, 김성/NNP 균/NNG: how it reads a name alone)."""
        return not self._rejected(text, c, False, cache) and (
            c.form in accepted or self._kiwi_says_name(text, c.start, c.length, cache)
            or self._surname_then_syllables(text, c.start, c.length, cache)
            or (c.given_ok and self._name_pieces(text, c.start, c.length, cache)))

    _PIECE_TAGS = frozenset(("NNP", "NNG", "NNB", "NR", "MM", "MAG"))

    def _name_pieces(self, text: str, start: int, length: int, cache: dict) -> bool:
        """The span is exactly 2–3 pieces of 1–2 syllables, nouns/determiners/adverbs, one a
        proper noun (NNP)."""
        end = start + length
        pieces = [t for t in self.window_tokens(text, start, end, cache) if start <= t[0] < end]
        if not 2 <= len(pieces) <= 3 or pieces[0][0] != start or pieces[-1][0] + pieces[-1][1] != end:
            return False
        return (all(tag in self._PIECE_TAGS and n <= 2 for _, n, tag, _ in pieces)
                and any(tag == "NNP" for _, _, tag, _ in pieces))

    def names(self, text: str, cache: dict) -> Iterator[Span]:
        """PERSON spans (score 1.0 with person context, 0.8 from Kiwi's analysis alone).

        Each candidate's Hangul run is read by Kiwi on its own first (:meth:`window_tokens`); a chunk
        none of whose candidates survives that (a common word, a particle inside …) is dropped
        before its context is looked at, unless a title follows it — then Kiwi reads the window
        around it too (``가수 이현도 씨``: 이/현도 alone, a name in context).
        """
        live: list[tuple[list[_Cand], list[_Cand], bool]] = []  # (alternatives, survivors, person context)
        verdict, title_next = self._verdicts.get, self._TITLE_NEXT.match
        for m in self._SURNAME_CHUNK.finditer(text):  # ~50 per document: keep this loop lean
            chunk = m.group()
            lengths, surv = verdict(chunk) or self._verdict(text, m.start(), chunk, cache)
            if not surv and not (lengths and title_next(text, m.end())):
                continue  # nothing survives its word's analysis, and no title follows the chunk
            start = m.start()
            alts = self._cands(text, start, chunk, lengths)
            keep = [c for c in alts if c.length in surv and not self._place(c.form, c.personal, cache, c.before)]
            titled = any(self._titled(text, c) for c in alts)
            if keep or titled:
                strong = titled or any(self._context_after(text, c.start, c.start + c.length, c.rest)
                                       for c in alts) or self._label_before(text, start)
                live.append((alts, keep, strong))
        if not live:
            return
        accepted: set[str] = set()
        chosen: dict[int, tuple[int, int, bool]] = {}
        # pass 2: person context + (given-name syllables, or Kiwi reads a name)
        for alts, keep, strong in live:
            for c in alts if strong else ():
                if self._context_name(text, c, cache, False) or (
                        self._titled(text, c) and self._context_name(text, c, cache, True)):
                    accepted.add(c.form)
                    chosen[c.start] = (c.start, c.length, True)
                    break
        # pass 3: running prose — Kiwi's own analysis (3–4 syllables) or a repeat of an accepted name
        for alts, keep, _ in live:
            for c in keep if alts[0].start not in chosen else ():
                if c.length < 3 or (c.form[-1] in _PLACE_LAST_WEAK and not c.personal):
                    continue  # 화곡동, 백령도 …: without person context a 동/도 ending is a place
                if self._prose_name(text, c, accepted, cache):
                    accepted.add(c.form)
                    chosen[c.start] = (c.start, c.length, False)
                    break
        # pass 4: enumerations — a bare candidate listed next to an accepted name (…, 김수로, 허준호)
        for alts, keep, _ in live:
            for c in keep if alts[0].start not in chosen and chosen else ():
                if c.rest:
                    continue
                gap = self._gap_to_name(text, c.start, c.start + c.length, chosen)
                # a bare space next to a name is not a list (김재현 소방경) unless the syllables are a name's
                if gap is not None and (c.given_ok or (gap.strip() and self._kiwi_says_name(text, c.start, c.length, cache))):
                    chosen[c.start] = (c.start, c.length, False)
                    break
        for start, length, strong in sorted(chosen.values()):
            yield Span(start, start + length, "PERSON", 1.0 if strong else 0.8)

    def _gap_to_name(self, text: str, start: int, end: int, chosen: dict) -> str | None:
        """The separator (``, `` / ``·`` / space) between [start, end) and an accepted name beside it."""
        for s, n, _ in chosen.values():
            gap = text[s + n:start] if s < start else text[end:s]
            if 0 < len(gap) <= 3 and self._LIST_SEP.match(gap):
                return gap
        return None

    def addresses(self, text: str, cache: dict) -> Iterator[Span]:
        """ADDRESS spans (:func:`data_prep.pii.addresses.find_addresses`, Kiwi through this finder)."""
        return find_addresses(text, lambda start, end: self.window_tokens(text, start, end, cache))

    def find(self, text: str, names: bool = True, addresses: bool = True) -> list[Span]:
        if not (names or addresses) or not any("가" <= c <= "힣" for c in text):
            return []
        cache: dict = {}
        out: list[Span] = []
        if names:
            out.extend(self.names(text, cache))
        if addresses:
            out.extend(self.addresses(text, cache))
        return out
