"""Person names and postal addresses: Kiwi morphology + gazetteer-style rules.

Regular expressions alone cannot tell ``김도현 사무관`` (a person) from ``이번 회의`` or
``강남`` (a district): both start with a common surname syllable. We segment with Kiwi and
accept a 2–4-syllable proper-noun token (NNP, or an out-of-vocabulary noun) when

* it starts with a Korean surname and the rest looks like a given name, and
* the document around it says "person": a title/honorific right after (``과장``, ``씨``,
  ``교수`` …), a role label right before (``성명:``, ``담당자``, ``피고``, ``환자`` …), a
  parenthesis with an age/number/Hanja after it, or the same string was already accepted
  elsewhere in the document; or, for 3–4 syllables, Kiwi itself analyses exactly that span
  as one proper noun (NNP) — this is what finds names in running prose.

Dictionary words are vetoed whatever the context (Kiwi: a known common noun, or a longer word
starting at the same place). Measured with ``benchmarks/data_pii.py``, which also reports
recall on KLUE-NER dev person names, a set these rules were not tuned on.

Addresses are matched as province/city → district → town/road → number sequences whose
named parts Kiwi confirms as proper nouns (so ``연구 활동`` is not ``…구 …동``).
"""
from __future__ import annotations

import re
from typing import Iterator

from data_prep.pii.patterns import Span

SURNAMES_2 = ("남궁", "황보", "제갈", "선우", "독고", "사공", "서문", "동방", "어금", "망절")
SURNAMES_1 = set("김이박최정강조윤장임한오서신권황안송류유전홍고문양손배백허남심노하곽성차주우구민진나지엄채원천방공현함변염여추도소석선설마길연위표명기반왕금옥육인맹제모탁국어은편용예봉경사부가복태목형계피두감음빈동온호범좌팽승간상갈단견당화창")
GIVEN = set("민서지현준우연영수진호훈은윤예린원도하혜재희경숙미정성동기태석철규상주아유나소빈율채다인용광명선혁찬환한승보건형순자옥애향란화식남일종근덕봉길춘열중웅완범겸후헌의효신래섭창택국익문욱세양모")
TITLES = ("씨", "님", "군", "양", "과장", "부장", "차장", "대리", "사원", "주임", "팀장", "실장", "국장", "본부장", "이사",
          "대표", "사장", "부사장", "회장", "위원장", "위원", "의원", "장관", "차관", "청장", "처장", "시장", "구청장",
          "사무관", "주무관", "서기관", "교수", "박사", "선생", "교사", "기자", "변호사", "검사", "판사", "재판장", "의사",
          "간호사", "원장", "소장", "관장", "감사", "감사실장", "경위", "경사", "경감", "경정", "순경", "대령", "중령",
          "소령", "대위", "중위", "소위", "병장", "상병", "일병", "이병", "하사", "중사", "상사", "전문의", "작가", "감독",
          "학생", "학부모", "목사", "신부", "스님", "할머니", "할아버지", "어머니", "아버지", "환자", "고객", "대표이사",
          "담임", "조교", "연구원", "전임", "책임", "수석", "선임", "공중보건의", "청소년지도사", "사회복지사", "간사",
          "총장", "학장", "이사장", "부회장", "상무", "전무", "지점장", "점장", "매니저", "코치", "선수", "임산부", "여사")
LABELS = re.compile(r"(성명|이름|성함|담당자?|작성자?|작성|환자|피의자|피고인?|원고|신청인|청구인|수신|참조|발신|보호자|대표자|"
                    r"대표이사|대표|응시자|지원자|임차인|임대인|매수인|매도인|배우자|수검자|입주자|민원인|고객명?|예금주|소유주|"
                    r"소유자|수취인|보유자|상속인|피상속인|사망자|면담자|평가자|감사관|위원장|근로자|사업주|선주|장남|장녀|차남|"
                    r"차녀|변호인|소송대리인|의뢰 의사|담당의|담당 교사|주관|기조연설자|본인|친구|아들|딸|남편|아내|부친|모친|"
                    r"user|name|Name|의원명|학생|성명\(한글\)|피해자|가해자|신고인|제보자|참석자|발표자|연락처|문의)"
                    r"\s*[:：]?\s*[\"'(\[]?\s*$")
AFTER_PAREN = re.compile(r"^\s*\((?:\d|만|[一-鿿]|[남여]|\w{0,4}[,)]|부친|모친|장남|장녀|배우자|본인)")
_GENERIC_LABEL = re.compile(r"(?:[가-힣]{1,6}(?:자|인|사|원|장|관|측|님)|작성|응대|판사|주관|담당)\s*[:：]\s*$|^\s*\d{1,2}[.)]\s*$")
_ROLE_BEFORE = re.compile(r"[가-힣]*(?:자|측|장|관|사|의원|교수|위원|담임|선생)(?:는|은)?\s*[(（]?\s*$")
_PLACE_SUFFIX = re.compile(r"^(시|도|구|군|동|읍|면|리|로|길|역|대|산|강|천|항|만|청|원|소|국|부|처|과|팀|실|당|교|社)")


def _looks_like_name(form: str) -> bool:
    if not 2 <= len(form) <= 4 or not all("가" <= c <= "힣" for c in form):
        return False
    if form[:2] in SURNAMES_2 and len(form) in (3, 4):
        given = form[2:]
    elif form[0] in SURNAMES_1 and len(form) in (2, 3):
        given = form[1:]
    else:
        return False
    return all(c in GIVEN for c in given)


class NameAddressFinder:
    """Uses the process's shared Kiwi (:func:`data_prep.kiwi_shared.shared_kiwi`), built lazily."""

    def __init__(self) -> None:
        self._kiwi = None

    @property
    def kiwi(self):
        if self._kiwi is None:
            from data_prep.kiwi_shared import shared_kiwi

            self._kiwi = shared_kiwi()
        return self._kiwi

    # a Hangul run's first 2–9 syllables, only where it starts with a surname (the regex does the
    # filtering that used to be a Python test per run: most runs start elsewhere)
    _CHUNK = re.compile(r"(?<![가-힣])(?=[" + "".join(sorted(SURNAMES_1)) + "]|" + "|".join(SURNAMES_2)
                        + r")[가-힣]{2,9}")
    _PARTICLES = ("", "이", "가", "은", "는", "을", "를", "의", "에게", "께", "께서", "와", "과", "도", "만", "이가", "이는",
                  "이를", "이의", "이와", "이도", "에게서", "한테", "랑", "이랑", "로부터", "으로부터", "이에게", "이었", "이다",
                  "입니다", "이며", "이고", "이한테")
    _COMMON_TAGS = {"NNG", "NNB", "NR", "NP", "MM", "MAG", "MAJ", "VV", "VA", "XR", "IC"}

    # context on each side of a candidate that Kiwi sees (then cut at whitespace): 12 instead of 24
    # halves Kiwi's characters; measured, 3,184 of 3,188 documents keep the same spans (README)
    window_chars = 12

    def window_tokens(self, text: str, start: int, end: int, cache: dict) -> list:
        """Kiwi tokens (absolute offsets) of a window around [start, end), cut at whitespace.

        Kiwi is the expensive part of PII masking, so it only analyses the few windows where a
        name/address candidate has already passed the cheap regex and context checks.
        """
        lo = max(0, start - self.window_chars)
        sp = text.find(" ", lo, start)
        lo = sp + 1 if sp != -1 else lo
        hi = min(len(text), end + self.window_chars)
        sp = text.rfind(" ", end, hi)
        hi = sp if sp != -1 else hi
        key = (lo, hi)
        if key not in cache:
            cache[key] = [(t.start + lo, t.len, t.tag, bool(getattr(t, "oov", False)))
                          for t in self.kiwi.tokenize(text[lo:hi])]
        return cache[key]

    def _vetoed(self, text: str, start: int, length: int, strong: bool, cache: dict) -> bool:
        first = [t for t in self.window_tokens(text, start, start + length, cache) if t[0] == start]
        end = start + length
        if any(s + n > end and tag.startswith("N") and not oov for s, n, tag, oov in first):
            return True  # Kiwi sees a longer word starting here
        if any(n == length and tag in self._COMMON_TAGS and not oov for s, n, tag, oov in first):
            return True  # a dictionary common word (정부, 이상, 주민 …), not a name
        if length == 2 and any(n == 2 and tag == "NNP" and not oov for s, n, tag, oov in first):
            return True  # 한국, 신한 …: a known proper noun, not a two-syllable name
        common_prefix = any(2 <= n < length and tag == "NNG" and not oov for s, n, tag, oov in first)
        return common_prefix and not strong  # 전문성, 고유가 …: starts with a dictionary word

    def _kiwi_says_name(self, text: str, start: int, length: int, cache: dict) -> bool:
        """Kiwi analyses exactly this 3–4-syllable span as one proper noun (its name model)."""
        return any(s == start and n == length and tag == "NNP"
                   for s, n, tag, oov in self.window_tokens(text, start, start + length, cache))

    def names(self, text: str, cache: dict) -> Iterator[Span]:
        # pass 1 (regex only): candidates per Hangul chunk, alternatives in order 3, 4, 2 syllables
        chunks: list[tuple[list[tuple[int, int, str]], bool]] = []
        for m in self._CHUNK.finditer(text):
            chunk, start = m.group(0), m.start()
            if chunk[0] not in SURNAMES_1 and chunk[:2] not in SURNAMES_2:
                continue  # no alternative can pass _looks_like_name
            alts: list[tuple[int, int, str]] = []
            strong = False
            for length in (3, 4, 2):
                form, rest = chunk[:length], chunk[length:]
                if len(form) != length or not _looks_like_name(form):
                    continue
                titled = rest.startswith(TITLES)
                if rest not in self._PARTICLES and not titled:
                    continue
                end = start + length
                after = text[end:end + 12]
                strong = strong or (
                    titled
                    or after.lstrip().startswith(TITLES)
                    or bool(LABELS.search(text[max(0, start - 20):start]))
                    or bool(_GENERIC_LABEL.search(text[max(0, start - 14):start]))
                    or bool(_GENERIC_LABEL.search(text[text.rfind("\n", 0, start) + 1:start]))
                    or bool(_ROLE_BEFORE.search(text[max(0, start - 10):start]))
                    or bool(AFTER_PAREN.match(after))
                    or (start > 0 and text[start - 1] in ",\"'" and end < len(text) and text[end] in ",\"'")
                )
                alts.append((start, length, form))
            if alts:
                chunks.append((alts, strong))
        # pass 2: strong candidates, checked with Kiwi; pass 3: repeats of accepted names
        accepted: set[str] = set()
        chosen: dict[int, tuple[int, int, bool]] = {}
        for alts, strong in chunks:
            if strong:
                for start, length, form in alts:
                    if not self._vetoed(text, start, length, True, cache):
                        accepted.add(form)
                        chosen[start] = (start, length, True)
                        break
        for alts, strong in chunks:
            if strong:
                continue
            for start, length, form in alts:
                if length < 3 or self._vetoed(text, start, length, False, cache):
                    continue
                if form in accepted or self._kiwi_says_name(text, start, length, cache):
                    chosen[start] = (start, length, False)
                    break
        for start, length, strong in sorted(chosen.values()):
            yield Span(start, start + length, "PERSON", 1.0 if strong else 0.8)

    _SIDO = (r"서울특별시|서울시|서울|부산광역시|부산시|부산|대구광역시|대구시|대구|인천광역시|인천시|인천|광주광역시|광주시|"
             r"대전광역시|대전시|대전|울산광역시|울산시|울산|세종특별자치시|세종시|세종|경기도|경기|강원특별자치도|강원도|강원|"
             r"충청북도|충북|충청남도|충남|전북특별자치도|전라북도|전북|전라남도|전남|경상북도|경북|경상남도|경남|"
             r"제주특별자치도|제주도|제주")
    _ADDR = re.compile(
        r"(?<![가-힣])(?=[가-힣])(?:(?P<sido>" + _SIDO + r")\s+)?"
        r"(?P<sgg>(?:[가-힣]{1,5}(?:시|군|구)\s+){0,2}[가-힣]{1,5}(?:시|군|구))?"
        r"(?P<rest>(?:\s+[가-힣0-9]{1,8}(?:읍|면))?(?:\s+[가-힣0-9]{1,8}(?:동|리|가))?"
        r"(?:\s+[가-힣0-9]{1,12}(?:로|길)(?:\s?\d+(?:번길|길))?)?"
        r"(?:\s+(?:산\s?)?\d{1,5}(?:-\d{1,5})?(?:번지)?(?![\d.]))?)"
        r"(?P<detail>(?:,?\s+(?:[가-힣A-Za-z0-9]{1,12}\s)?\d{1,4}동\s?\d{1,5}호|,?\s+\d{1,3}층(?:\s?\d{1,5}호)?"
        r"|,?\s+\d{1,5}호)?(?:\s?\([가-힣A-Za-z0-9 ,]{2,30}\))?)"
    )

    def addresses(self, text: str, cache: dict) -> Iterator[Span]:
        for m in self._ADDR.finditer(text):
            sido, sgg, rest = m.group("sido"), m.group("sgg"), (m.group("rest") or "").strip()
            if not sgg and not (sido and rest):
                continue
            if not sido and not rest:
                continue  # a bare district name is not an address
            if not sido:
                s0 = m.start("sgg")
                toks = self.window_tokens(text, s0, m.end("sgg"), cache)
                if not any(t[0] == s0 and (t[2] == "NNP" or t[3]) for t in toks):
                    continue  # without a province, Kiwi must see the district as a proper noun
            start = m.start("sido") if sido else m.start("sgg")
            end = m.end("detail") if rest and m.group("detail") else (m.end("rest") if rest else m.end("sgg"))
            yield Span(start, end, "ADDRESS", 1.0 if rest else 0.8)

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
