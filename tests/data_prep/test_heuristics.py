"""One-pass n-gram statistics agree with the naive Gopher definitions; rules and profiles fire."""
from __future__ import annotations

import random
from collections import Counter

from datatrove.data import Document

from data_prep.config import load_config
from data_prep.filters.heuristics import HeuristicsStage, check_rules
from data_prep.filters.text_stats import Segmenter, compute_stats, ko_function_words, ngram_stats


def naive_top(words, n):
    grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    best = max(grams.values())
    chars = max(sum(map(len, g)) for g, c in grams.items() if c == best)  # ties: most characters
    return 0.0 if best <= 1 else best * chars / sum(map(len, words))


def naive_dup(words, n):
    grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    covered = [False] * len(words)
    for i in range(len(words) - n + 1):
        if grams[tuple(words[i:i + n])] > 1:
            for k in range(i, i + n):
                covered[k] = True
    return sum(len(w) for w, c in zip(words, covered) if c) / sum(map(len, words))


def test_vectorised_ngram_stats_match_naive():
    rng = random.Random(0)
    for trial in range(60):
        # small vocabularies repeat n-grams; large ones give all-distinct words or no repeated bigram
        # (the shortcuts that skip the arrays)
        vocab = [f"w{i}" * rng.randint(1, 3) for i in range(rng.choice([rng.randint(2, 12), 500]))]
        words = [rng.choice(vocab) for _ in range(rng.randint(3 if len(vocab) > 12 else 12, 200))]
        top, dup = ngram_stats(words)
        assert list(top) == [n for n in (2, 3, 4) if n <= len(words)]
        assert list(dup) == [n for n in range(5, 11) if n <= len(words)]
        for n in top:
            assert abs(top[n] - naive_top(words, n)) < 1e-9
        for n in dup:
            assert abs(dup[n] - naive_dup(words, n)) < 1e-9


def test_rules_per_profile():
    cfg = load_config(None)["heuristics"]
    stage = HeuristicsStage("/tmp/unused", cfg)
    stage.setup()
    seg = Segmenter()
    spam = "오늘 특가 세일 지금 바로 구매하세요 최저가 보장 " * 40
    s = compute_stats(spam, seg.words(spam, "ko"), stage.stopwords["ko"])
    assert check_rules(s, stage.rules_for("ko", False, None)) is not None
    # the stage computes only the n-gram sizes a profile limits: same decision as computing all
    for rules in (stage.rules_for("ko", False, None), stage.rules_for("ko", True, None)):
        sizes = stage.ngram_sizes(rules)
        only = compute_stats(spam, seg.words(spam, "ko"), stage.stopwords["ko"], **sizes)
        assert set(only.top_ngram_char_frac) | set(only.dup_ngram_char_frac) == set(sum(sizes.values(), ()))
        assert check_rules(only, rules) == check_rules(s, rules)
    review = "배우들 연기가 정말 좋았고 음악도 훌륭했어요... 다시 보고 싶네요"
    assert seg.words(review, "ko")[:3] == ["배우들", "연기가", "정말"]  # eojeols, no Kiwi
    assert stage.process(Document(text=review, id="r", metadata={"_midm": {"lang": "ko"}})) is None
    english = ("The committee reviewed the proposal and decided that the funding should be extended to "
               "the next year, with a report to be delivered in the spring.\n") * 1
    s = compute_stats(english, seg.words(english, "en"), stage.stopwords["en"])
    assert check_rules(s, stage.rules_for("en", True, None)) is None
    # a source profile overrides the defaults (here: reviews allowed to be very short)
    stage.config["profiles"]["tiny"] = {"min_chars": 1, "min_words": 1, "min_stopwords": 0}
    stage.config["profiles_by_source"] = {"nsmc": "tiny"}
    s = compute_stats("최고!", seg.words("최고!", "ko"), stage.stopwords["ko"])
    assert check_rules(s, stage.rules_for("ko", True, "nsmc")) is None
    assert check_rules(s, stage.rules_for("ko", True, None)) == "too_short_chars"


def _ko(text: str) -> Document:
    return Document(text=text, id="x", metadata={"_midm": {"lang": "ko"}})


def test_kiwi_only_confirms_stopword_rejections():
    """The surface particle count is a lower bound of Kiwi's: Kiwi runs only where it would reject."""
    stage = HeuristicsStage("/tmp/unused", load_config(None)["heuristics"])
    stage.setup()
    sw = stage.stopwords["ko"]
    statute = "제1조(목적) 이 법은 국민의 권리와 의무를 정함을 목적으로 한다."
    assert {"은", "의", "와", "을", "으로"} <= ko_function_words(statute) & sw
    assert stage.process(_ko(statute)) is None and stage.counts["kiwi_docs"] == 0
    # no unambiguous particle on the surface: Kiwi is asked, finds 가 (subject particle), keeps it
    # the morpheme first, the character before it checked after it: at the text's start, after a
    # syllable, inside a longer word
    assert ko_function_words("것이 수 있다. 학교에서 집으로 갔다") == {"것", "수", "있", "에서", "으로"}
    assert ko_function_words("수박을 있었다 학교에서도 봤음") == {"을", "있"}
    assert ko_function_words("을 에서 의") == set()
    comment = "진짜 배우가 최고다 ㅋㅋ"
    assert not ko_function_words(comment) & sw
    assert stage.process(_ko(comment)) is None and stage.counts["kiwi_docs"] == 1
    # … and where Kiwi finds none either, the document is dropped for it
    assert stage.process(_ko("대박 대박 최고 최고 짱짱")) == "no_stopwords" and stage.counts["kiwi_docs"] == 2


def test_short_profile_switches_dup_ngram_rules_off():
    """``max_dup_ngram_char_frac: null`` in ``short`` removes the language's limits (``{}`` merged
    into them and changed nothing); long documents keep them."""
    stage = HeuristicsStage("/tmp/unused", load_config(None)["heuristics"])
    stage.setup()
    assert stage.ngram_sizes(stage.rules_for("ko", True, None))["dup_ns"] == ()
    assert stage.ngram_sizes(stage.rules_for("ko", False, None))["dup_ns"] == (5, 6, 7, 8, 9, 10)
    echo = "그 배우는 정말 연기를 잘 해서 보는 내내 감탄했다. 감독의 연출도 좋았고 음악도 훌륭했다. 그 배우는 정말 연기를 잘 해서 보는 내내 감탄했다."
    assert len(echo) < stage.config["short_doc_chars"]
    assert stage.process(_ko(echo)) is None
    stats = compute_stats(echo, Segmenter().words(echo, "ko"), frozenset(), stopwords_found=9, clean_words=True)
    # … whose duplicated 5-grams are over the Korean limit that `{}` used to leave in force
    assert stats.dup_ngram_char_frac[5] > stage.rules_for("ko", False, None)["max_dup_ngram_char_frac"][5]
