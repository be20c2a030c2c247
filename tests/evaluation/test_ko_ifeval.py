"""Ko-IFEval checkers: each Korean adaptation on hand-made Korean responses that must pass and must
fail; where lm-eval's English checker decides differently, the test shows it (why we adapt)."""
from __future__ import annotations

import pytest
from lm_eval.tasks.ifeval import instructions as upstream

from evaluation.ko_ifeval import instructions, korean, scoring


def check(instruction_id: str, response: str, **kwargs) -> bool:
    doc = {"instruction_id_list": [instruction_id], "kwargs": [kwargs], "prompt": "프롬프트"}
    return scoring.follows(doc, response, loose=False)[0]


def upstream_check(cls, response: str, **kwargs) -> bool:
    checker = cls("x")
    checker.build_description(**kwargs)
    return checker.check_following(response)


def test_word_count_is_eojeol():
    text = "서울-부산 간 KTX는 2.5시간이 걸린다."           # 5 어절; \w+ finds 7 pieces
    assert korean.count_eojeol(text) == 5
    assert check("length_constraints:number_words", text, num_words=6, relation="less than")
    assert not check("length_constraints:number_words", text, num_words=6, relation="at least")
    assert not upstream_check(upstream.NumberOfWords, text, num_words=6, relation="less than")
    assert korean.count_eojeol("- 사과\n* 배\n— 끝") == 3  # bullets are not words


def test_sentence_count_follows_korean_endings():
    text = "나는 아침에 밥을 먹었다 그리고 학교에 갔다. 날씨가 좋네요!"  # 3 sentences, one without a period
    assert korean.count_sentences(text) == 3
    assert check("length_constraints:number_sentences", text, num_sentences=3, relation="at least")
    assert not check("length_constraints:number_sentences", text, num_sentences=3, relation="less than")
    assert check("length_constraints:number_sentences", "한 문장입니다.", num_sentences=2, relation="less than")


def test_first_word_of_paragraph_allows_particles():
    text = "서울은 한국의 수도입니다.\n\n부산은 항구 도시입니다."
    assert check("length_constraints:nth_paragraph_first_word", text, num_paragraphs=2, nth_paragraph=1,
                 first_word="서울")
    assert check("length_constraints:nth_paragraph_first_word", text, num_paragraphs=2, nth_paragraph=2,
                 first_word="부산")
    assert not upstream_check(upstream.ParagraphFirstWordCheck, text, num_paragraphs=2, nth_paragraph=1,
                              first_word="서울")
    other_noun = "서울특별시는 크다.\n\n부산은 항구 도시입니다."        # a different word, not 서울 + particle
    assert not check("length_constraints:nth_paragraph_first_word", other_noun, num_paragraphs=2,
                     nth_paragraph=1, first_word="서울")
    assert not check("length_constraints:nth_paragraph_first_word", text, num_paragraphs=3, nth_paragraph=1,
                     first_word="서울")                                 # paragraph count still checked


def test_forbidden_word_with_particle_is_found():
    text = "오늘은 사과를 두 개 먹었다."
    assert not check("keywords:forbidden_words", text, forbidden_words=["사과"])
    assert upstream_check(upstream.ForbiddenWords, text, forbidden_words=["사과"])  # \b사과\b misses 사과를
    assert check("keywords:forbidden_words", "오늘은 배를 먹었다. 의사과장님을 만났다.", forbidden_words=["사과"])
    assert not check("keywords:forbidden_words", "I like apples and an apple.", forbidden_words=["apple"])


def test_letter_frequency_counts_hangul():
    text = "가방과 가위를 가져가세요."                          # 가 ×4
    assert check("keywords:letter_frequency", text, letter="가", let_frequency=4, let_relation="at least")
    assert not check("keywords:letter_frequency", text, letter="가", let_frequency=5, let_relation="at least")
    assert check("keywords:letter_frequency", "각각", letter="ㄱ", let_frequency=4, let_relation="at least")
    assert not check("keywords:letter_frequency", "각각", letter="ㄱ", let_frequency=4, let_relation="less than")
    checker = instructions.KoreanLetterFrequency("x")
    checker.build_description(letter="가", let_frequency=1, let_relation="at least")
    assert checker.get_instruction_args()["letter"] == "가"


@pytest.mark.parametrize("include_spaces,limit,ok", [(False, 12, False), (False, 13, True), (True, 15, False),
                                                     (True, 16, True)])
def test_character_count(include_spaces, limit, ok):
    text = "한국어 글자 수를\n세어 봅시다"                   # 15 characters with spaces (not the line break), 12 without
    assert check("length_constraints:number_characters", text, num_characters=limit, relation="less than",
                 include_spaces=include_spaces) is ok


def test_speech_level():
    polite = "안녕하세요. 오늘 회의는 세 시에 시작합니다! 자료를 확인하셨나요?\n1. 회의실 예약"
    plain = "안녕. 오늘 회의는 세 시에 시작한다! 자료는 봤어?"
    mixed = "안녕하세요. 오늘 회의는 세 시에 시작한다."
    assert check("ko:speech_level", polite, speech_level="polite")
    assert not check("ko:speech_level", plain, speech_level="polite")
    assert not check("ko:speech_level", mixed, speech_level="polite")
    assert check("ko:speech_level", plain, speech_level="plain")
    assert not check("ko:speech_level", mixed, speech_level="plain")
    assert not check("ko:speech_level", "1. 사과\n2. 배", speech_level="polite")  # nothing to judge


def test_unchanged_checkers_still_work_on_korean():
    assert check("punctuation:no_comma", "쉼표 없이 씁니다.")
    assert not check("punctuation:no_comma", "사과, 배")
    assert check("detectable_format:title", "<<봄날>>\n꽃이 핀다.")
    assert check("startend:end_checker", "감사합니다. 더 궁금한 점이 있나요?", end_phrase="더 궁금한 점이 있나요?")
    assert check("language:response_language", "이 답변은 한국어로만 작성되었습니다. 영어는 쓰지 않았습니다.",
                 language="ko")
    assert not check("language:response_language", "This answer is written in English only.", language="ko")


def test_prompt_and_instruction_level_scores():
    doc = {"prompt": "p", "instruction_id_list": ["punctuation:no_comma", "detectable_format:title"],
           "kwargs": [{"num_words": None}, {}]}
    out = scoring.process_results(doc, ["<<제목>>\n쉼표가 없습니다."])
    assert out == {"prompt_level_strict_acc": True, "inst_level_strict_acc": [True, True],
                   "prompt_level_loose_acc": True, "inst_level_loose_acc": [True, True]}
    # loose accepts the response without its first line (an added preamble), strict does not
    out = scoring.process_results({**doc, "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]},
                                  ["네, 알겠습니다.\n쉼표 없는 답변입니다."])
    assert out["prompt_level_strict_acc"] is False and out["prompt_level_loose_acc"] is True
    assert scoring.agg_inst_level_acc([[True, False], [True]]) == pytest.approx(2 / 3)
    with pytest.raises(KeyError, match="unknown instruction"):
        scoring.follows({"prompt": "p", "instruction_id_list": ["no:such"], "kwargs": [{}]}, "x", loose=False)
