"""One Kiwi per process: the heuristics segmenter and the PII name rules share it, a new process
builds its own, and a separately built Kiwi segments exactly alike (so sharing changes no decision)."""
from __future__ import annotations

import os

from data_prep import kiwi_shared
from data_prep.filters.text_stats import Segmenter
from data_prep.pii.detector import PiiDetector

SAMPLE = ["김도현 사무관이 서울특별시 종로구 세종대로 209에서 회의를 열었다.",
          "배우들 연기가 정말 좋았고 음악도 훌륭했어요... 다시 보고 싶네요 ㅋㅋ",
          "제1조(목적) 이 법은 국민의 권리와 의무를 정함을 목적으로 한다.\n제2조(정의) 이 법에서 사용하는 용어의 뜻은 다음과 같다."]


def test_stages_share_one_kiwi_per_process(monkeypatch):
    seg, det = Segmenter(), PiiDetector()
    sw = frozenset(["이", "가", "을", "를", "은", "는", "의", "에", "에서", "로", "으로", "와", "과", "하", "되"])
    words = [seg.kiwi_stopwords(t, sw) for t in SAMPLE]
    masked = [det.detect(t) for t in SAMPLE]
    shared = kiwi_shared.shared_kiwi()
    assert seg._kiwi is shared and det.finder.kiwi is shared
    # another process (e.g. a forked datatrove worker) never reuses the parent's instance …
    monkeypatch.setattr(os, "getpid", lambda: -12345)
    fresh = kiwi_shared.shared_kiwi()
    assert fresh is not shared and kiwi_shared.shared_kiwi() is fresh
    # … and a Kiwi of its own gives the same words and the same PII spans as the shared one
    seg2, det2 = Segmenter(), PiiDetector()
    assert [seg2.kiwi_stopwords(t, sw) for t in SAMPLE] == words
    assert [det2.detect(t) for t in SAMPLE] == masked
    assert seg2._kiwi is fresh and det2.finder.kiwi is fresh
    assert any(s.type == "PERSON" for s in masked[0]) and any(s.type == "ADDRESS" for s in masked[0])
