"""Stages 1–3 on single documents: URL rules, normalisation, language ID with the Hangul check."""
from __future__ import annotations

import unicodedata

from datatrove.data import Document

from data_prep.config import load_config
from data_prep.filters.langid import LangIdStage
from data_prep.filters.normalize import normalize_text
from data_prep.filters.url_blocklist import UrlBlocklistStage


def _doc(text: str, **meta) -> Document:
    return Document(text=text, id="x", metadata=dict(meta))


def test_normalisation():
    mojibake = "ì•ˆë…•í•˜ì„¸ìš”"  # "안녕하세요" as UTF-8 read as CP1252
    assert normalize_text(mojibake) == "안녕하세요"
    jamo = unicodedata.normalize("NFD", "한국어")  # decomposed Hangul jamo
    assert normalize_text(jamo) == "한국어"
    assert normalize_text("a\u200b\x07b \t\u3000 c\r\n\n\n\n\nd  ") == "ab c\n\nd"
    # a single space stays, any other run of horizontal spaces (or one tab / no-break space) becomes one
    assert normalize_text("x y\u00a0z\tw  v \u2003 u\u1680t \n  s\u3000") == "x y z w v u\u1680t\ns"


def test_url_rules_without_ut1(tmp_path):
    cfg = load_config(None)["url"] | {"use_datatrove_lists": False, "blocked_domains": ["spam.example"]}
    stage = UrlBlocklistStage(str(tmp_path), cfg)
    stage.setup()
    assert stage.process(_doc("x", url="https://news.spam.example/a")) == "blocked_domain"
    assert stage.process(_doc("x", url="http://best-casino.kr/")) == "host_keyword"
    assert stage.process(_doc("x", url="http://win.bet/")) == "blocked_tld"
    assert stage.process(_doc("x", url="https://www.law.go.kr/법령")) is None
    assert stage.process(_doc("x")) is None and stage.counts["no_url"] == 1


def test_langid_keeps_korean_and_english_only(tmp_path):
    stage = LangIdStage(str(tmp_path), load_config(None)["langid"])
    stage.setup()
    ko, en = _doc("오늘은 날씨가 정말 좋네요. 공원에 갔습니다."), _doc("The weather is lovely today, so we went out.")
    assert stage.process(ko) is None and ko.metadata["_midm"]["lang"] == "ko"
    assert stage.process(en) is None and en.metadata["_midm"]["lang"] == "en"
    assert stage.process(_doc("これは日本語の文章です。今日はいい天気ですね。")) == "other_language"
    assert stage.process(_doc("ㅋㅋ")) == "too_few_letters"


TOXIC = {  # id: (text, the reason stage 6 must give)
    "three-terms": ("이 씨발 개새끼야 꺼져 병신아 진짜", "profanity_lexicon"),
    "dense": ("야 이 씨발 진짜 짜증나네 꺼져라 제발 다시는 보지말자", "profanity_density"),
    "gambling-spam": ("꽁머니 지급! 먹튀검증 완료 사이트 대출문의 환영", "spam_gambling_lexicon"),
    "classifier": ("씨발 진짜 너무 짜증나 죽겠네 왜 이래", "classifier"),
}
CLEAN = "오늘 회의는 오후 세 시에 시작합니다. 참석 부탁드립니다."


def test_toxicity_stage_drops_toxic_documents(tmp_path):
    """Stage 6 with the shipped lexicons and fastText model: each rule drops its document, a
    clean one passes with its P(toxic) recorded."""
    from data_prep.filters.toxicity import ToxicityStage

    stage = ToxicityStage(str(tmp_path), load_config(None)["toxicity"])
    stage.setup()
    for key, (text, reason) in TOXIC.items():
        assert stage.process(_doc(text)) == reason, key
    clean = _doc(CLEAN)
    assert stage.process(clean) is None and clean.metadata["_midm"]["toxicity"] < 0.5
    # abuse without a single lexicon term is the classifier's alone (the old precision-only
    # default let it through); edited prose passes
    assert stage.process(_doc("얼굴도 못생긴게 나대지 좀 마라 보기 싫다")) == "classifier"
    prose = _doc("행정안전부는 오는 3월부터 주민등록 등본을 온라인으로 발급받을 수 있도록 제도를 개선한다고 "
                 "밝혔다. 이번 조치로 민원인의 방문 부담이 줄어들 것으로 기대된다.")
    assert stage.process(prose) is None and prose.metadata["_midm"]["toxicity"] < 0.1


def test_toxicity_stage_in_the_pipeline(tmp_path):
    """Through `midm data filter --stages toxicity`: toxic documents end in rejects/toxicity with
    their reason, the clean one in the output, and the counts balance."""
    import gzip
    import json

    from data_prep.cli import main
    from tests.data_prep.conftest import read_output, write_jsonl

    records = [{"id": k, "text": t} for k, (t, _) in TOXIC.items()] + [{"id": "clean", "text": CLEAN}]
    write_jsonl(tmp_path / "in.jsonl", records)
    out = tmp_path / "out"
    assert main(["filter", str(tmp_path / "in.jsonl"), str(out), "--stages", "toxicity", "--keep-rejects",
                 "--tasks", "1"]) == 0
    assert [r["id"] for r in read_output(out)] == ["clean"]
    rejects = {}
    for f in (out / "rejects" / "toxicity").glob("*.jsonl.gz"):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            rejects.update((r["id"], r["_midm_reject"]["reason"]) for r in map(json.loads, fh))
    assert rejects == {k: reason for k, (_, reason) in TOXIC.items()}
    stats = json.loads((out / "stats.json").read_text())
    assert stats["balanced"] and stats["dropped"]["toxicity"] == {r: 1 for _, r in TOXIC.values()}
