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
