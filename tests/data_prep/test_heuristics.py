"""One-pass n-gram statistics agree with the naive Gopher definitions; rules and profiles fire."""
from __future__ import annotations

import random
from collections import Counter

from data_prep.config import load_config
from data_prep.filters.heuristics import HeuristicsStage, check_rules
from data_prep.filters.text_stats import Segmenter, compute_stats, ngram_stats


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
    for trial in range(30):
        vocab = [f"w{i}" * rng.randint(1, 3) for i in range(rng.randint(2, 12))]
        words = [rng.choice(vocab) for _ in range(rng.randint(12, 200))]
        top, dup = ngram_stats(words)
        for n in (2, 3, 4):
            assert abs(top[n] - naive_top(words, n)) < 1e-9
        for n in range(5, 11):
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
    s = compute_stats(review, seg.words(review, "ko"), stage.stopwords["ko"])
    assert check_rules(s, stage.rules_for("ko", True, None)) is None
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
