"""PII detection: every structured type, checksums, names/addresses, exact placeholder tokens."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from data_prep.cli import main
from data_prep.pii import PII_TOKENS, PiiDetector, mask_text
from data_prep.pii import checksums as ck
from data_prep.pii import patterns
from tests.conftest import SHARED_DATA
from tests.data_prep.conftest import read_output, write_jsonl

SPECIAL_TOKENS = Path(__file__).resolve().parents[1] / "data" / "data_prep" / "midm2_pii_tokens.json"


@pytest.fixture(scope="module")
def det():
    return PiiDetector()


def types_in(det, text):
    return {(s.type, text[s.start:s.end]) for s in det.detect(text)}


@pytest.mark.parametrize("text,kind,value", [
    ("연락처 010-4582-7104 로 주세요", "PHONE", "010-4582-7104"),
    ("사무실 (02) 2110-6543 입니다", "PHONE", "(02) 2110-6543"),
    ("대표번호 1588-7234 로 문의", "PHONE", "1588-7234"),
    ("메일은 ms.kang@gmail.com 입니다", "EMAIL", "ms.kang@gmail.com"),
    ("주민등록번호 880101-1234568 확인", "RRN", "880101-1234568"),
    ("외국인등록번호: 850315-5345676", "FRN", "850315-5345676"),
    ("법인등록번호 110111-0247385 변경", "CORP_REG", "110111-0247385"),
    ("사업자등록번호 211-87-22658 입니다", "BUSINESS_REG", "211-87-22658"),
    ("카드번호: 5424-1234-5678-9012", "CARD", "5424-1234-5678-9012"),
    ("결제 4242424242424242 승인", "CARD", "4242424242424242"),
    ("입금 계좌: 신한은행 110-4872-153649", "ACCOUNT", "110-4872-153649"),
    ("접속 IP: 121.135.247.182 차단", "IP", "121.135.247.182"),
    ("여권번호 M84729168 으로", "PASSPORT", "M84729168"),
    ("운전면허번호: 12-23-456789-12", "DRIVER_LICENSE", "12-23-456789-12"),
    ("차량번호 47하2918 의 운반차량", "VEHICLE", "47하2918"),
    ("건강보험증 번호: 1-08472916384", "HEALTH_INSURANCE", "1-08472916384"),
    ("MAC 00:1A:2B:3C:4D:5E 등록", "MAC", "00:1A:2B:3C:4D:5E"),
    ("개인통관고유부호 P123456789012", "CUSTOMS", "P123456789012"),
    ("인스타그램 계정 @kim_jiwoo_94 로 연락", "SNS", "@kim_jiwoo_94"),
])
def test_structured_types(det, text, kind, value):
    assert (kind, value) in types_in(det, text)


# every alternative of every structured pattern, for the pre-check test below
_EVERY_ALTERNATIVE = [
    "☎ 1366, 01045827104, 1588-7234, +82 10-4582-7104, (02) 2110-6543, 031.123.4567",
    "880101-1234568, 880101 – *234567, 8801011234568, 110111-0247385, 211-87-22658, 2118722658",
    "5424-1234-5678-9012, 3782 822463 10005, 4242424242424242, 110-4872-153649, 11048721536490",
    "121.135.247.182, 0.0.0.0, 00:1A:2B:3C:4D:5E, aa-bb-cc-dd-ee-ff, M84729168, MC12345678, M123A4567, 123456789",
    "12-23-456789-12, 서울 23-456789-12, 47하2918, 서울 123 가 4567, 1-08472916384, 08472916384",
    "P123456789012, ms.kang@gmail.com, @kim_jiwoo_94, 1990년 12월, 제3조 1. 2. 3.",
]


@pytest.mark.parametrize("kind", sorted(patterns.RX))
def test_pre_checks_are_met_by_every_match(kind):
    """``NEEDS[kind]`` and ``MIN_DIGIT_RUN[kind]`` gate the scan for ``kind``: every match of ``RX[kind]``
    holds such a run of digits and contains one of the patterns (PHONE: every match that becomes a
    span, with the 12 characters before it)."""
    detect = dict(patterns.DETECTORS)[kind]
    matches = [(text, m) for text in _EVERY_ALTERNATIVE for m in patterns.RX[kind].finditer(text)]
    assert matches, f"no sample for {kind}"
    assert min(max(map(len, re.findall(r"\d+", m.group(0))), default=0) for _, m in matches) \
        >= patterns.MIN_DIGIT_RUN[kind]
    windows = [m.group(0) if kind != "PHONE" else text[max(0, m.start() - 12):m.end()]
               for text, m in matches if kind != "PHONE" or detect(text, m) is not None]
    assert all(any(p.search(w) for p in patterns.NEEDS[kind]) for w in windows)
    assert not any(p.search("개인정보가 없는 문장입니다. 제3조 1. 1990년 12월") for p in patterns.NEEDS[kind])


def test_combined_digit_pre_check_skips_no_span():
    """``find_structured`` first scans for all digit-initial pre-checks at once (``_DIGIT_NEEDS``): it
    matches wherever one of them does, and the spans equal those of every pattern run without any
    pre-check, on each sample alone (so each one's gating is exercised) and on the samples together."""
    digit_needs = [p for ps in patterns.NEEDS.values() for p in ps if p.pattern.startswith(r"\d")]
    pieces = [piece for text in _EVERY_ALTERNATIVE for piece in text.split(", ")]
    texts = pieces + _EVERY_ALTERNATIVE + ["개인정보가 없는 문장입니다. 제3조 1. 1990년 12월", "AA:BB:CC:DD:EE:FF", ""]
    for text in texts:
        assert (patterns._DIGIT_NEEDS.search(text) is None) == all(p.search(text) is None for p in digit_needs), text
        unfiltered = [span for kind, detect in patterns.DETECTORS for m in patterns.RX[kind].finditer(text)
                      if (span := detect(text, m)) is not None]
        assert list(patterns.find_structured(text)) == unfiltered, text
    assert sum(patterns._DIGIT_NEEDS.search(t) is None for t in pieces) >= 5  # the skip is taken


def test_names_need_context_and_addresses_need_structure(det):
    text = "담당자 이서연 주무관 (02-2110-6543) 과 김도현 사무관이 서울특별시 강서구 화곡로 287, 102동 1204호 를 방문했다."
    found = types_in(det, text)
    assert ("PERSON", "이서연") in found and ("PERSON", "김도현") in found
    assert ("ADDRESS", "서울특별시 강서구 화곡로 287, 102동 1204호") in found
    # common words starting with surname syllables, districts in prose, research "연구 활동"
    clean = "정부는 이번 연구 활동에서 전문성이 필요한 분야의 주민 의견을 모았다. 강남은 붐볐다."
    assert det.detect(clean) == []


def test_names_in_running_prose_lists_and_titles_but_not_places(det):
    """Kiwi's analysis finds names without a title; lists, a title after an organisation and
    ``씨``/age make context; places, institutions, loanwords and titles themselves are not names."""
    found = {text: [v for k, v in sorted(types_in(det, text)) if k == "PERSON"] for text in (
        "결승전에서 박서진은 두 골을 넣었고 한지호가 도움을 기록했다.",
        "출연: 김민재, 이서윤, 정하늘",
        "윤재민 교육부 차관이 이날 브리핑했다.",
        "가수 김수로 씨가 무대에 올랐다.",
        "김재현 소방경이 출동했다.")}
    assert list(found.values()) == [["박서진", "한지호"], ["김민재", "이서윤", "정하늘"], ["윤재민"], ["김수로"],
                                    ["김재현"]]
    for clean in ("서초구 주민들이 모였다.", "본인은 안산시 단원구에서 왔다.", "정의당은 논평을 냈다.",
                  "경복궁에서 행사가 열렸다.", "유튜브에서 화제다.", "한국어 교육 지원", "선수의 연기가 좋았다.",
                  "「국적법」 제6조", "화곡동에 산다."):
        assert det.detect(clean) == [], clean


def test_name_memos_change_speed_not_spans():
    """Kiwi reads each candidate's word once per process; a finder whose memos hold one entry
    (emptied all the time) finds the same spans, and a repeated word costs no second analysis."""
    from data_prep.pii.names import NameAddressFinder

    texts = ["결승전에서 박서진은 두 골을 넣었고 한지호가 도움을 기록했다. 이번 연구 활동에서 정부는 주민 의견을 모았다.",
             "가수 김수로 씨가 무대에 올랐다. 박서진은 한지호와 함께 귀국했다.",
             "출연: 김민재, 이서윤, 정하늘 / 서울특별시 강서구 화곡로 287",
             "결승전에서 박서진은 두 골을 넣었고 한지호가 도움을 기록했다."]
    big, tiny = NameAddressFinder(), NameAddressFinder(cache_words=1)
    assert [big.find(t) for t in texts] == [tiny.find(t) for t in texts]
    assert [texts[0][s.start:s.end] for s in big.find(texts[0]) if s.type == "PERSON"] == ["박서진", "한지호"]
    calls = []
    real = big.kiwi

    class Counting:
        def tokenize(self, text):
            calls.append(text)
            return real.tokenize(text)

    big._kiwi = Counting()
    big.find(texts[3])  # every word of it was read for texts[0]
    assert calls == []
    big.find("박서진은 새 팀으로 옮겼다.")
    assert calls == []  # "박서진은" again: memoised with its verdict


@pytest.mark.skipif(not (SHARED_DATA / "benchmarks" / "klue_dev").is_dir(), reason="needs ../shared/data")
def test_names_on_klue_ner_development_sentences(det):
    """Person names on 500 KLUE-NER dev sentences from the development half (the held-out half
    is for benchmarks/data_pii.py only): recall and precision stay where the rules put them."""
    from benchmarks.data_pii import _klue_sentences, klue_person

    sentences = _klue_sentences(SHARED_DATA / "benchmarks" / "klue_dev" / "klue-ner-v1.1_dev.tsv")[:500]
    scores = klue_person(det, sentences)
    assert scores["recall_korean_full_names"] >= 0.8 and scores["precision"] >= 0.88, scores


def test_checksums():
    assert ck.rrn_checksum_ok("880101-1234568") and not ck.rrn_checksum_ok("880101-1234567")
    assert ck.rrn_date_ok("880101-1") and not ck.rrn_date_ok("881301-1")
    assert ck.luhn_ok("4242 4242 4242 4242") and not ck.luhn_ok("4242 4242 4242 4241")
    assert ck.business_reg_ok("104-81-23454") is ck.business_reg_ok("1048123454")
    assert ck.corp_reg_ok("110111-0247385") in (True, False)
    # a digits-only 13-digit run is an RRN only with a valid check digit or a label
    det = PiiDetector(types=["RRN"])
    assert det.detect("번호 8801011234568") and not det.detect("번호 8801011234567")


def test_placeholders_are_the_published_special_tokens(det):
    published = set(json.loads(SPECIAL_TOKENS.read_text(encoding="utf-8"))["tokens"].values())
    assert set(PII_TOKENS.values()) <= published
    masked, counts = mask_text("전화 010-1234-5678, 메일 a.b@c.com", det.detect("전화 010-1234-5678, 메일 a.b@c.com"))
    assert masked == "전화 #@전화번호@#, 메일 #@이메일@#" and counts == {"PHONE": 1, "EMAIL": 1}


def test_pii_command_masks_and_counts(tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "1", "text": "신청인: 강민서 (주민등록번호 880101-1234568, 연락처 010-3815-2640)", "meta": 7},
        {"id": "2", "text": "개인정보가 없는 평범한 문장입니다."},
    ])
    out = tmp_path / "out"
    assert main(["pii", str(inp), str(out), "--fresh"]) == 0
    rows = {r["id"]: r for r in read_output(out)}
    assert rows["1"]["text"] == "신청인: #@이름@# (주민등록번호 #@주민번호@#, 연락처 #@전화번호@#)"
    assert rows["1"]["meta"] == 7 and rows["2"]["text"] == "개인정보가 없는 평범한 문장입니다."
    stats = json.loads((out / "stats.json").read_text())
    assert stats["balanced"] and stats["kept"] == 2
    assert stats["stages"]["pii"]["stats"]["masked:RRN"] == 1


def test_address_matches_are_the_patterns_own():
    """Trying the address pattern only where a hint is gives exactly the non-empty matches that
    scanning every position does (finditer), on texts with provinces, districts and look-alikes."""
    from data_prep.pii.addresses import _ADDRESS, _matches

    texts = ["서울특별시 강서구 화곡로 287, 102동 1204호 를 방문했다.", "경기도 성남시 분당구 판교역로 235 (삼평동)",
             "성남시 분당구에서 만나요. 안산시 단원구 고잔동 123", "시·도지사와 시장·군수·구청장은 관할 구역의",
             "대구광역시 수성구 범어동 1번지와 부산 해운대구 우동 1408", "이 연구 활동은 서초구 주민과 함께",
             "경기 결과 강남구 주민 (서울시 강남구 역삼동 100-1, 3층 301호)", "세종특별자치시 한누리대로 2130 세종시청"]
    for text in texts:
        assert [m.span() for m in _matches(text)] == [m.span() for m in _ADDRESS.finditer(text) if m.end() > m.start()], text


def test_name_prefilters_are_the_full_checks():
    """The name finder's cheap forms of its checks answer as the plain ones do, at every position of
    texts with labels, roles, numbered lines, titles, ages and names: the surname-chunk scan (surname
    class first, run start checked after it), the title-after check (first-character lookahead) and
    the label/role-before check (patterns searched only when the last character before can end one)."""
    from data_prep.pii import names

    finder = names.NameAddressFinder
    chunk = re.compile(r"(?<![가-힣])[" + "".join(sorted(names.SURNAMES_1 | {s[0] for s in names.SURNAMES_2}))
                       + r"][가-힣]{1,11}")
    title_next = re.compile(r"\s*(?:" + finder._AGE + "|" + "|".join(sorted(names.TITLES, key=len, reverse=True)) + ")")

    def label_before(text, start):
        return bool(names.LABELS.search(text[max(0, start - 20):start])
                    or names._GENERIC_LABEL.search(text[max(0, start - 14):start])
                    or names._GENERIC_LABEL.search(text[text.rfind("\n", 0, start) + 1:start])
                    or names._ROLE_BEFORE.search(text[max(0, start - 10):start]))

    texts = ["성명: 김민수 / 담당자 : 이서연", "작성자 :\n   박지훈 과장", "1. 최유진\n 12)  정하늘", "피고인 ( 한지호",
             "담당 주무관 김도현 사무관이", "신청인                         :   이현도 씨", "학부모는 (김성동(54)",
             "윤재민 교육부 차관이, '김수로', 가수 이현도씨", "위원은 이서윤 위원장과 박모(54·여) 씨",
             "응대：  김재현 소방경", "이름\t\t'정하늘'", "제3조 1. 1990년 12월 관계자: 남궁민"]
    texts += ["결승전에서 박서진은 두 골을 넣었고 한지호가 도움을 기록했다.", "출연: 김민재, 이서윤, 정하늘",
              "담당자 이서연 주무관 (02-2110-6543) 과 김도현 사무관이 서울특별시 강서구 화곡로 287, 102동 1204호 를 방문했다."]
    for text in texts:
        assert [m.span() for m in finder._SURNAME_CHUNK.finditer(text)] == [m.span() for m in chunk.finditer(text)]
        for i in range(len(text) + 1):
            assert bool(finder._TITLE_NEXT.match(text, i)) == bool(title_next.match(text, i)), (text, i)
            assert finder._label_before(text, i) == label_before(text, i), (text, i)
    assert sum(label_before(t, i) for t in texts for i in range(len(t))) >= 20  # the labels are there
